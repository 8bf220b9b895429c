"""What each workflow action does to a case, once the role and the transition are allowed.

Each handler validates its parameters first and raises before changing anything; then it sets the
case's fields, runs the clock (helpline/cases/timers.py) and queues the messages the step causes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.cases import forwarding, notify, timers
from helpline.cases.data import suggest_department
from helpline.cases.models import OPEN, Case, CaseReport, Department
from helpline.cases.workflow import Actor, Conflict, InvalidInput, NotFound
from helpline.cases.worktime import WorkCalendar
from helpline.grid import locate, shipped_grid
from helpline.taxonomy import GridClass, TimeLimit

_PHOTO = re.compile(r"^media/[A-Za-z0-9_./-]{1,200}$")
MAX_NOTE = 2000
MAX_PHOTOS = 10


@dataclass
class Act:
    session: AsyncSession
    case: Case
    actor: Actor
    now: datetime
    params: dict[str, Any]
    cal: WorkCalendar
    classes: dict[str, GridClass]
    target: str
    action: str = ""


@dataclass
class Outcome:
    note: str | None = None
    photos: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    then: list[str] = field(default_factory=list)


def _note(ctx: Act, *, required: str | None = None) -> str | None:
    value = ctx.params.get("note")
    if value is not None and not isinstance(value, str):
        raise InvalidInput("note must be text")
    text = (value or "").strip()
    if not text and required:
        raise InvalidInput(f"{ctx.action} needs a note: {required}")
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"note is too long: {len(text)} characters, at most {MAX_NOTE}")
    return text or None


def _photos(ctx: Act) -> list[str]:
    photos = ctx.params.get("photos") or []
    if not isinstance(photos, list) or len(photos) > MAX_PHOTOS:
        raise InvalidInput(f"photos must be a list of at most {MAX_PHOTOS} saved photo paths")
    for path in photos:
        if not isinstance(path, str) or not _PHOTO.match(path) or ".." in path:
            raise InvalidInput(f"photo {path!r} is not a saved photo path (media/...)")
    return list(photos)


def _class(ctx: Act, code: str | None) -> GridClass:
    cls = ctx.classes.get(code or "")
    if cls is None:
        raise InvalidInput(f"class {code!r} is not in the taxonomy in force; give class_code (e.g. C0118)")
    return cls


def _limit(ctx: Act) -> timedelta:
    """The case's time limit as working time: the ``limit`` parameter, else the class's (area class)."""
    given = ctx.params.get("limit")
    if given is not None:
        try:
            return ctx.cal.work_of(TimeLimit.parse(str(given)))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    cls = _class(ctx, ctx.case.class_code)
    limit = cls.limit_for(ctx.case.area_class)
    if limit is None:
        raise InvalidInput(f"class {cls.code} has no time limit in the taxonomy; give limit (e.g. 4h or 2d)")
    return ctx.cal.work_of(limit)


async def _department(ctx: Act, code: str | None) -> Department:
    if code is None:
        raise InvalidInput("no department: give department (a department code)")
    dept = await ctx.session.get(Department, code)
    if dept is None or dept.kind != "department":
        raise InvalidInput(f"unknown department {code!r}")
    if not dept.active:
        raise InvalidInput(f"department {code} is inactive")
    return dept


async def register(ctx: Act) -> Outcome:
    case, p = ctx.case, ctx.params
    code = p.get("class_code", case.class_code)
    _class(ctx, code)
    lat, lon, cell_id = p.get("lat"), p.get("lon"), p.get("cell_id")
    if (lat is None) != (lon is None):
        raise InvalidInput("give both lat and lon, or neither")
    cell = None
    if lat is not None:
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
            raise InvalidInput("lat and lon must be numbers")
        cell = locate(float(lat), float(lon))
        if cell is None:
            raise InvalidInput(f"the point ({lat}, {lon}) is outside the service area: no grid cell holds it")
    elif cell_id is not None:
        cell = shipped_grid().by_id.get(str(cell_id))
        if cell is None:
            raise InvalidInput(f"unknown grid cell {cell_id!r}")
    if cell is None and case.cell_id is None:
        raise InvalidInput(f"case {case.number} has no grid cell yet: give lat and lon, or cell_id")
    note = _note(ctx)
    case.class_code = code
    if cell is not None:
        case.cell_id, case.area_class = cell.id, cell.area_class
        if lat is not None:
            case.lat, case.lon = float(lat), float(lon)
    if isinstance(p.get("address"), str) and p["address"].strip():
        case.address = p["address"].strip()[:300]
    case.registered_at = ctx.now
    case.status_note = note
    await notify.reporters(ctx.session, case, "registered", ctx.now)
    return Outcome(note, data={"class_code": code, "cell_id": case.cell_id})


async def void(ctx: Act) -> Outcome:
    case, reason = ctx.case, ctx.params.get("reason")
    if reason not in ("invalid", "duplicate"):
        raise InvalidInput("void needs reason: invalid or duplicate")
    target: Case | None = None
    if reason == "duplicate":
        from helpline.cases.service import load

        number = str(ctx.params.get("duplicate_of") or "")
        try:
            target = await load(ctx.session, number)
        except NotFound:
            raise InvalidInput(f"duplicate_of: no case numbered {number or '(none given)'}") from None
        if target.id == case.id or target.status not in OPEN:
            raise InvalidInput(f"duplicate_of: case {target.number} must be another case that is still open")
    note = _note(ctx, required="why the report is invalid" if reason == "invalid" else None)
    case.void_reason, case.voided_at = reason, ctx.now
    case.status_note = note or (f"duplicate of {target.number}" if target else None)
    if target is not None:
        await notify.reporters(ctx.session, case, "duplicate", ctx.now, duplicate_of=target.number)
        case.duplicate_of_id = target.id
        await ctx.session.execute(
            update(CaseReport).where(CaseReport.case_id == case.id).values(case_id=target.id)
            .execution_options(synchronize_session=False)
        )
        target.reports_count += case.reports_count
        target.updated_at = ctx.now
    else:
        await notify.reporters(ctx.session, case, "voided", ctx.now, note=note)
    return Outcome(note, data={"reason": reason, "duplicate_of": target.number if target else None})


async def dispatch(ctx: Act) -> Outcome:
    case = ctx.case
    code = ctx.params.get("department") or await suggest_department(ctx.session, case.class_code, case.cell_id, ctx.classes)
    dept = await _department(ctx, code)
    limit = _limit(ctx)
    note = _note(ctx)
    case.department_code = dept.code
    case.dispatch_count += 1
    case.dispatched_at = ctx.now
    case.handled_on_time = case.closed_on_time = None
    case.extension_request = None
    timers.start(case, ctx.cal, limit, ctx.now)
    case.status_note = note
    await notify.department_task(ctx.session, case, dept, "task", ctx.now)
    await notify.reporters(ctx.session, case, "dispatched", ctx.now, department=dept)
    forwarded = await forwarding.enqueue(ctx.session, case, dept, ctx.now)
    return Outcome(note, data={"department": dept.code, "limit_minutes": case.limit_minutes,
                               "due_at": case.due_at.isoformat() if case.due_at else None, "forwarded": forwarded})


async def accept(ctx: Act) -> Outcome:
    return Outcome(_note(ctx))


async def return_(ctx: Act) -> Outcome:
    note = _note(ctx, required="why the case is not this department's")
    case = ctx.case
    timers.stop(case, ctx.cal, ctx.now)
    case.due_at = None
    case.return_count += 1
    case.extension_request = None
    return Outcome(note, data={"department": case.department_code})


async def request_extension(ctx: Act) -> Outcome:
    case, p = ctx.case, ctx.params
    amount, unit = p.get("amount"), p.get("unit")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= 999:
        raise InvalidInput("amount must be a whole number from 1 to 999")
    if unit not in ("hours", "days"):
        raise InvalidInput("unit must be hours or days")
    note = _note(ctx, required="why more time is needed")
    if case.extension_request:
        raise Conflict(f"case {case.number} already has an extension request waiting for a supervisor")
    case.extension_request = {"amount": amount, "unit": unit, "note": note, "by": ctx.actor.ref,
                              "at": ctx.now.isoformat()}
    return Outcome(note, data={"amount": amount, "unit": unit})


async def approve_extension(ctx: Act) -> Outcome:
    case = ctx.case
    request = case.extension_request
    if not request:
        raise Conflict(f"case {case.number} has no extension request to decide")
    note = _note(ctx)
    extra = ctx.cal.work_of(TimeLimit(int(request["amount"]), str(request["unit"])))
    timers.extend(case, ctx.cal, extra, ctx.now)
    case.extension_count += 1
    case.extension_request = None
    return Outcome(note, data={**request, "due_at": case.due_at.isoformat() if case.due_at else None})


async def reject_extension(ctx: Act) -> Outcome:
    if not ctx.case.extension_request:
        raise Conflict(f"case {ctx.case.number} has no extension request to decide")
    note = _note(ctx)
    request, ctx.case.extension_request = ctx.case.extension_request, None
    return Outcome(note, data=request)


async def handle(ctx: Act) -> Outcome:
    note = _note(ctx, required="what was done")
    photos = _photos(ctx)
    case = ctx.case
    timers.stop(case, ctx.cal, ctx.now)
    case.handled_at = ctx.now
    case.handled_on_time = case.due_at is not None and ctx.now <= case.due_at
    case.extension_request = None
    case.status_note = note
    dept = await ctx.session.get(Department, case.department_code or "")
    await notify.reporters(ctx.session, case, "handled", ctx.now, department=dept, note=note)
    return Outcome(note, photos, {"on_time": case.handled_on_time})


async def check(ctx: Act) -> Outcome:
    via = ctx.params.get("via", "site")
    if via not in ("site", "reporter", "photo"):
        raise InvalidInput("via must be site, reporter or photo")
    note, photos = _note(ctx), _photos(ctx)
    ctx.case.checked_at = ctx.now
    return Outcome(note, photos, {"via": via})


async def _again(ctx: Act) -> Department:
    """Back to the same department with a fresh clock (rework, reopening)."""
    case = ctx.case
    dept = await _department(ctx, case.department_code)
    try:
        limit = _limit(ctx)
    except InvalidInput:
        if ctx.params.get("limit") is not None or not case.limit_minutes:
            raise
        limit = timedelta(minutes=case.limit_minutes)  # the class lost its limit: keep the last one
    timers.start(case, ctx.cal, limit, ctx.now)
    case.dispatched_at = ctx.now
    case.handled_at = case.checked_at = case.closed_at = None
    case.handled_on_time = case.closed_on_time = None
    return dept


async def rework(ctx: Act) -> Outcome:
    note = _note(ctx, required="what the check found")
    ctx.case.rework_count += 1
    dept = await _again(ctx)
    ctx.case.status_note = note
    await notify.department_task(ctx.session, ctx.case, dept, "rework", ctx.now, note)
    return Outcome(note, data={"department": dept.code, "due_at": ctx.case.due_at.isoformat() if ctx.case.due_at else None})


async def close(ctx: Act) -> Outcome:
    note = _note(ctx)
    case = ctx.case
    case.closed_at = ctx.now
    case.closed_on_time = case.due_at is not None and ctx.now <= case.due_at
    case.status_note = note or case.status_note
    await notify.ask_satisfaction(ctx.session, case, ctx.now)
    return Outcome(note, data={"on_time": case.closed_on_time})


async def suspend(ctx: Act) -> Outcome:
    note = _note(ctx, required="why the case waits")
    case = ctx.case
    case.suspended_from = case.status
    timers.pause(case, ctx.cal, ctx.now)
    case.status_note = note
    return Outcome(note, data={"from": case.suspended_from})


async def resume(ctx: Act) -> Outcome:
    case = ctx.case
    ctx.target = case.suspended_from or ctx.target
    if ctx.target in timers.RUNNING:
        timers.resume(case, ctx.cal, ctx.now)
    case.suspended_from = None
    return Outcome(_note(ctx), data={"to": ctx.target})


async def rate(ctx: Act) -> Outcome:
    rating = ctx.params.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidInput("rating must be a whole number from 1 to 5")
    note = _note(ctx)
    await ctx.session.execute(
        update(CaseReport)
        .where(CaseReport.case_id == ctx.case.id, CaseReport.contact_id == ctx.actor.contact_id)
        .values(rating=rating, rated_at=ctx.now).execution_options(synchronize_session=False)
    )
    case = ctx.case
    case.rating = rating if case.rating is None else min(case.rating, rating)
    return Outcome(note, data={"rating": rating}, then=["reopen"] if rating <= 2 else [])


async def reopen(ctx: Act) -> Outcome:
    note = _note(ctx) or "群众不满意"
    ctx.case.reopen_count += 1
    dept = await _again(ctx)
    ctx.case.status_note = note
    await notify.department_task(ctx.session, ctx.case, dept, "reopen", ctx.now, note)
    await notify.reporters(ctx.session, ctx.case, "reopened", ctx.now, department=dept)
    return Outcome(note, data={"department": dept.code})


Handler = Callable[[Act], Awaitable[Outcome]]
HANDLERS: dict[str, Handler] = {
    "register": register, "void": void, "dispatch": dispatch, "accept": accept, "return": return_,
    "request_extension": request_extension, "approve_extension": approve_extension,
    "reject_extension": reject_extension, "handle": handle, "check": check, "rework": rework,
    "close": close, "suspend": suspend, "resume": resume, "rate": rate, "reopen": reopen,
}
PARAMS: dict[str, set[str]] = {
    "register": {"class_code", "lat", "lon", "cell_id", "address", "note"},
    "void": {"reason", "duplicate_of", "note"},
    "dispatch": {"department", "limit", "note"},
    "accept": {"note"},
    "return": {"note"},
    "request_extension": {"amount", "unit", "note"},
    "approve_extension": {"note"},
    "reject_extension": {"note"},
    "handle": {"note", "photos"},
    "check": {"via", "note", "photos"},
    "rework": {"note", "limit"},
    "close": {"note"},
    "suspend": {"note"},
    "resume": {"note"},
    "rate": {"rating", "note"},
    "reopen": {"note"},
}
