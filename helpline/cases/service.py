"""The case service: report a problem (or join the open case it repeats), and act on a case.

Every function takes the caller's ``AsyncSession`` (whatever it writes commits with the caller's
transaction), an ``Actor`` and ``now``, so the dialogue, the Open311 API, the operator console
and the scheduled jobs all call the same code. Refusals raise ``CaseError`` subclasses (400, 403,
404, 409) before anything is changed; the caller rolls back on any exception anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.cases import actions
from helpline.cases.data import calendar, taxonomy
from helpline.cases.duplicates import find_duplicate
from helpline.cases.models import REPORTED, Case, CaseReport, CaseStep, case_id_of
from helpline.cases.workflow import Actor, InvalidInput, NotFound, check_role, next_status
from helpline.grid import locate, shipped_grid
from helpline.models import Event

_CLASS = re.compile(r"^[CE]\d{4}$")


@dataclass(frozen=True)
class NewReport:
    """What a reporter tells us. A location is coordinates (placed in their grid cell), a cell id,
    or only words (``address``) that an operator places at registration."""

    class_code: str | None
    description: str
    source: str  # sms | voice | telegram | web | open311 | console
    lat: float | None = None
    lon: float | None = None
    cell_id: str | None = None
    address: str | None = None
    landmark: str | None = None
    urn: str | None = None
    contact_id: int | None = None
    media: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reported:
    case: Case
    report: CaseReport
    linked: bool  # True: the report joined an open case instead of opening one


async def report(session: AsyncSession, new: NewReport, actor: Actor, now: datetime) -> Reported:
    """Open a case in status ``reported``, or link the report to the open case it repeats."""
    if new.class_code is not None and not _CLASS.match(new.class_code):
        raise InvalidInput(f"class code {new.class_code!r} must be a kind letter and four digits, e.g. C0118")
    if (new.lat is None) != (new.lon is None):
        raise InvalidInput("give both lat and lon, or neither")
    cell_id, area_class = new.cell_id, None
    if new.lat is not None and new.lon is not None:
        cell = locate(new.lat, new.lon)
        if cell is None:
            raise InvalidInput(f"the point ({new.lat}, {new.lon}) is outside the service area: no grid cell holds it")
        cell_id, area_class = cell.id, cell.area_class
    elif cell_id is not None:
        known = shipped_grid().by_id.get(cell_id)
        if known is None:
            raise InvalidInput(f"unknown grid cell {cell_id!r}")
        area_class = known.area_class
    if cell_id is None and not (new.address or "").strip():
        raise InvalidInput("a report needs a location: coordinates, a grid cell or the place in words")
    existing = await find_duplicate(session, new.class_code, new.lat, new.lon, now)
    case = existing or Case(
        status=REPORTED, class_code=new.class_code, description=new.description[:4000],
        address=(new.address or None) and new.address[:300], landmark=new.landmark, cell_id=cell_id,
        area_class=area_class, lat=new.lat, lon=new.lon, source=new.source, media=list(new.media),
        attributes=dict(new.attributes), reports_count=1, reported_at=now, updated_at=now,
    )
    if existing is None:
        session.add(case)
        await session.flush()
    else:
        case.reports_count += 1
        case.media = [*case.media, *new.media]
        case.updated_at = now
    entry = CaseReport(
        case_id=case.id, contact_id=new.contact_id, urn=new.urn, channel=new.source, text=new.description[:4000],
        address=new.address, lat=new.lat, lon=new.lon, details=dict(new.details), reported_at=now,
    )
    session.add(entry)
    action = "link" if existing else "report"
    write_step(session, case, actor, now, action, None if existing is None else case.status, note=None,
               photos=[m["path"] for m in new.media if "path" in m], data={"channel": new.source})
    await session.flush()
    return Reported(case, entry, linked=existing is not None)


async def load(session: AsyncSession, number: str | int, *, lock: bool = False) -> Case:
    """The case with this number (``"100001"``) or row id (an int); NotFound otherwise."""
    case_id = number if isinstance(number, int) else case_id_of(str(number))
    query = select(Case).where(Case.id == (case_id or 0))
    if lock and session.bind is not None and session.bind.dialect.name != "sqlite":
        query = query.with_for_update()
    case = await session.scalar(query) if case_id else None
    if case is None:
        raise NotFound(f"no case numbered {number}")
    return case


async def steps(session: AsyncSession, case: Case) -> list[CaseStep]:
    return list(await session.scalars(select(CaseStep).where(CaseStep.case_id == case.id).order_by(CaseStep.id)))


async def reports(session: AsyncSession, case: Case) -> list[CaseReport]:
    return list(await session.scalars(select(CaseReport).where(CaseReport.case_id == case.id).order_by(CaseReport.id)))


async def perform(
    session: AsyncSession, number: str | Case, action: str, actor: Actor, now: datetime, **params: Any
) -> Case:
    """Take ``action`` on a case: role and ownership checked, then the transition table, then the
    action's own rules; the status moves, and the timeline and audit log record it.

    Parameters by action: register(class_code?, lat?, lon?, cell_id?, address?, note?),
    void(reason: invalid|duplicate, duplicate_of? (a case number), note?), dispatch(department?,
    limit? e.g. "4h", note?), accept(note?), return(note), request_extension(amount, unit:
    hours|days, note), approve_extension(note?), reject_extension(note?), handle(note, photos?),
    check(via: site|reporter|photo, note?, photos?), rework(note, limit?), close(note?), suspend(note),
    resume(note?), rate(rating 1-5, note?), reopen(note?). ``photos`` are paths saved by
    ``helpline.cases.media.save_photo``.
    """
    if action not in actions.HANDLERS:
        raise InvalidInput(f"unknown action {action!r}; actions are {', '.join(actions.HANDLERS)}")
    unknown = set(params) - actions.PARAMS[action]
    if unknown:
        raise InvalidInput(f"{action} takes no {', '.join(sorted(unknown))}")
    case = number if isinstance(number, Case) else await load(session, number, lock=True)
    reporters: set[int] = set()
    if actor.role == "reporter":
        reporters = {r.contact_id for r in await reports(session, case) if r.contact_id is not None}
    check_role(case, action, actor, reporters)
    before = case.status
    target = next_status(case, action)
    ctx = actions.Act(session, case, actor, now, params, await calendar(session), await taxonomy(session), target, action)
    outcome = await actions.HANDLERS[action](ctx)
    case.status = ctx.target
    case.updated_at = now
    write_step(session, case, actor, now, action, before, note=outcome.note, photos=outcome.photos, data=outcome.data)
    await session.flush()
    for follow in outcome.then:  # e.g. a rating of 1-2 reopens the case
        await perform(session, case, follow, actor, now, note=outcome.note)
    return case


def write_step(
    session: AsyncSession, case: Case, actor: Actor, now: datetime, action: str, before: str | None,
    *, note: str | None, photos: list[str], data: dict[str, Any],
) -> None:
    """One timeline row and one audit event for the action."""
    session.add(CaseStep(
        case_id=case.id, at=now, action=action, from_status=before, to_status=case.status, actor=actor.ref,
        actor_role=actor.role, department_code=case.department_code, note=note, photos=photos, data=data,
    ))
    session.add(Event(
        at=now, actor=actor.ref, action=f"case.{action}", subject_type="case", subject_id=case.number,
        data={"from": before, "to": case.status, **({"note": note[:500]} if note else {})},
    ))


async def register(session: AsyncSession, number: str, actor: Actor, now: datetime, **params: Any) -> Case:
    return await perform(session, number, "register", actor, now, **params)


async def dispatch(session: AsyncSession, number: str, actor: Actor, now: datetime, **params: Any) -> Case:
    return await perform(session, number, "dispatch", actor, now, **params)


async def handle(session: AsyncSession, number: str, actor: Actor, now: datetime, **params: Any) -> Case:
    return await perform(session, number, "handle", actor, now, **params)


async def close(session: AsyncSession, number: str, actor: Actor, now: datetime, **params: Any) -> Case:
    return await perform(session, number, "close", actor, now, **params)
