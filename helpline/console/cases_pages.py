"""The console's Cases pages: the list of grid cases with filters, and one case with its timeline,
photos, recordings, map position and the actions its state and the user's role allow.

Nothing here decides what may happen to a case: the forms shown are those the workflow's own
checks (``check_role``, ``next_status``) let through, and every POST goes through
``helpline.cases.service.perform`` — the code the staff API (channels/cases_api.py), the dialogue
and the jobs use — with the API's own parameter reader (photos saved and checked there).
Department users see only their own department's cases: another's is 403 on the page, its
photos and its actions, and absent from the list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup
from sqlalchemy import select

from channels import cases_api
from helpline.appkeys import DB, SETTINGS
from helpline.cases import media as case_media
from helpline.cases import service, timers
from helpline.cases.data import departments, suggest_department, taxonomy
from helpline.cases.models import STATUSES, Case, CaseReport, CaseStep
from helpline.cases.workflow import ROLES as ACTION_ROLES
from helpline.cases.workflow import Actor, CaseError, check_role, next_status
from helpline.console.auth import check_department, require
from helpline.console.labels import CASE_ACTION_LABELS, CASE_STATUS_LABELS, LIGHT_LABELS, label
from helpline.console.live import console_write
from helpline.console.map import grid_svg
from helpline.console.pages import register_page
from helpline.console.render import flash, redirect, render
from helpline.grid import Grid, shipped_grid
from helpline.models import User, utcnow
from helpline.users import ROLES

PAGE_SIZE = 30
LIGHTS = ("green", "yellow", "red")
# The order the action forms appear in on a case page: the usual next step first.
FORM_ORDER = (
    "register", "dispatch", "accept", "handle", "check", "close", "request_extension", "approve_extension",
    "reject_extension", "return", "rework", "suspend", "resume", "reopen", "void",
)
# Actions a form leads to that are a step back or an end: drawn as secondary buttons.
SECONDARY = frozenset({"void", "return", "rework", "suspend", "reject_extension"})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/console/cases", cases_page)
    r.add_get("/console/cases/{number:\\d+}", case_page)
    r.add_get("/console/cases/{number:\\d+}/photo", case_photo)
    r.add_post("/console/cases/{number:\\d+}/{action:[a-z_]+}", case_action)
    register_page(app, "cases", "城管案件", "Cases", ROLES, "/console/cases")


def _tables(lang: str) -> dict[str, Any]:
    return {
        "case_status": lambda key: label(CASE_STATUS_LABELS, key, lang),
        "case_action": lambda key: label(CASE_ACTION_LABELS, key, lang),
        "light_label": lambda key: label(LIGHT_LABELS, key, lang),
    }


def _lang(request: web.Request) -> str:
    from helpline.console.render import lang_of

    return lang_of(request)


# -- the list ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filters:
    status: str = ""
    cls: str = ""
    department: str = ""
    cell: str = ""
    light: str = ""
    page: int = 1

    def query(self, **changes: Any) -> str:
        values = {"status": self.status, "class": self.cls, "department": self.department, "cell": self.cell,
                  "light": self.light, "page": self.page}
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v and not (k == "page" and v == 1)})


def _filters(request: web.Request, user: User) -> Filters:
    q = request.query
    status = q.get("status", "")
    light = q.get("light", "")
    try:
        page = max(1, min(int(q.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    department = q.get("department", "").strip()[:32]
    if user.role == "department":
        if department and department != user.department_code:
            raise web.HTTPForbidden(text="403: a department user sees only its own department's cases")
        department = user.department_code or ""
    return Filters(
        status=status if status in STATUSES else "",
        cls=q.get("class", "").strip().upper()[:8],
        department=department,
        cell=q.get("cell", "").strip()[:15],
        light=light if light in LIGHTS else "",
        page=page,
    )


async def cases_page(request: web.Request) -> web.Response:
    user = await require(request)
    f = _filters(request, user)
    query = select(Case).order_by(Case.id.desc())
    if user.role == "department":
        query = query.where(Case.department_code == (user.department_code or ""))
    elif f.department:
        query = query.where(Case.department_code == f.department)
    if f.status:
        query = query.where(Case.status == f.status)
    if f.cls:
        query = query.where(Case.class_code.startswith(f.cls, autoescape=True))
    if f.cell:
        query = query.where(Case.cell_id.startswith(f.cell, autoescape=True))
    now = utcnow()
    start = (f.page - 1) * PAGE_SIZE
    async with request.app[DB].read() as session:
        if f.light:  # the light is computed from the clock: filter the running cases in Python
            running = await session.scalars(query.where(Case.status.in_(timers.RUNNING)))
            matching = [c for c in running if timers.light(c, now) == f.light]
            rows = matching[start:start + PAGE_SIZE + 1]
        else:
            rows = list(await session.scalars(query.offset(start).limit(PAGE_SIZE + 1)))
        classes, depts = await taxonomy(session), await departments(session)
    grid = shipped_grid()
    lang = _lang(request)
    return await render(
        request,
        "console/cases.html",
        {
            "cases": rows[:PAGE_SIZE],
            "more": len(rows) > PAGE_SIZE,
            "f": f,
            "now": now,
            "light_of": lambda c: timers.light(c, now),
            "classes": classes,
            "depts": depts,
            "dept_choices": [d for d in depts.values() if d.kind == "department"],
            "cells": grid.by_id,
            "statuses": STATUSES,
            "lights": LIGHTS,
            "scoped": user.role == "department",
            **_tables(lang),
        },
        active="cases",
    )


# -- one case ---------------------------------------------------------------------------------


async def _case_for(session: Any, user: User, number: str) -> Case:
    """The case, or 404; 403 for a department user when it is another department's."""
    try:
        case = await service.load(session, number)
    except CaseError as exc:
        raise web.HTTPNotFound(text=f"404: {exc.message}") from None
    check_department(user, case.department_code)
    return case


def allowed_actions(case: Case, user: User) -> list[str]:
    """The actions ``user`` may take on ``case`` now, decided by the workflow's own checks."""
    if not user.active:
        return []
    actor = Actor.of_user(user)
    allowed = []
    for action in FORM_ORDER:
        if action not in ACTION_ROLES:
            continue
        try:
            check_role(case, action, actor, set())
            next_status(case, action)
        except CaseError:
            continue
        # The actions' own preconditions on the case (helpline/cases/actions.py).
        if action in ("approve_extension", "reject_extension") and not case.extension_request:
            continue
        if action == "request_extension" and case.extension_request:
            continue
        allowed.append(action)
    return allowed


def _photo_paths(case: Case, steps: list[CaseStep]) -> list[str]:
    paths = [str(m["path"]) for m in case.media or [] if isinstance(m, dict) and m.get("path")]
    for step in steps:
        paths.extend(str(p) for p in step.photos or [] if isinstance(p, str))
    return list(dict.fromkeys(paths))


def position_svg(grid: Grid, case: Case, title: str, lang: str) -> Markup | None:
    """The grid map with the case's cell shaded and a pin at its point (or its cell's middle)."""
    if case.cell_id is None or case.cell_id not in grid.by_id:
        return None
    width = 420
    svg = str(grid_svg(grid, {case.cell_id: 1}, title=title, width=width, lang=lang,
                       legend="案件所在网格" if lang == "zh" else "Case's cell"))
    west, south, east, north = grid.bbox
    k = math.cos(math.radians((south + north) / 2))
    pad = 8
    scale = (width - 2 * pad) / max((east - west) * k, 1e-9)
    cell = grid.by_id[case.cell_id]
    if case.lat is not None and case.lon is not None:
        lat, lon = case.lat, case.lon
    else:
        lat, lon = (cell.bbox[1] + cell.bbox[3]) / 2, (cell.bbox[0] + cell.bbox[2]) / 2
    x, y = pad + (lon - west) * k * scale, pad + (north - lat) * scale
    pin = (f'<g class="pin" pointer-events="none"><circle cx="{x:.1f}" cy="{y:.1f}" r="11" fill="#c0392b" '
           f'fill-opacity=".18"/><circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#c0392b" stroke="#fff" '
           f'stroke-width="2"/></g>')
    # The shaded cell carries a "1" from the layer; the pin says it better.
    svg = svg.replace('pointer-events="none">1</text>', 'pointer-events="none"></text>')
    return Markup(svg.replace("</svg>", pin + "</svg>"))


async def _context(request: web.Request, user: User, number: str) -> dict[str, Any]:
    lang = _lang(request)
    now = utcnow()
    async with request.app[DB].read() as session:
        case = await _case_for(session, user, number)
        steps = await service.steps(session, case)
        reports = list(await session.scalars(
            select(CaseReport).where(CaseReport.case_id == case.id).order_by(CaseReport.id)
        ))
        classes, depts = await taxonomy(session), await departments(session)
        user_ids = {int(s.actor[5:]) for s in steps if s.actor.startswith("user:") and s.actor[5:].isdigit()}
        names = {u.id: u.username for u in await session.scalars(select(User).where(User.id.in_(user_ids)))} \
            if user_ids else {}
        suggested = await suggest_department(session, case.class_code, case.cell_id, classes)
    grid = shipped_grid()
    cls = classes.get(case.class_code or "")
    dept = depts.get(case.department_code or "")
    media = [m for m in case.media or [] if isinstance(m, dict)]
    return {
        "case": case,
        "cls": cls,
        "dept": dept,
        "depts": depts,
        "dept_choices": [d for d in depts.values() if d.kind == "department" and d.active],
        "suggested": suggested,
        "classes": classes,
        "cell": grid.by_id.get(case.cell_id or ""),
        "light": timers.light(case, now),
        "steps": steps,
        "reports": reports,
        "names": names,
        "photos": _photo_paths(case, steps),
        "recordings": [u for u in (str(m["recording"]) for m in media if m.get("recording")) if _web_link(u)],
        "links": [u for u in (str(m["url"]) for m in media if m.get("url")) if _web_link(u)],
        "actions": allowed_actions(case, user),
        "secondary": SECONDARY,
        "map": position_svg(grid, case, ("案件位置 " if lang == "zh" else "Where case ") + case.number, lang),
        "limit_text": _limit_text(case.limit_minutes, lang),
        **_tables(lang),
    }


def _web_link(url: str) -> bool:
    """Only http(s) links are shown: a reporter's "url" could be javascript:…"""
    return url.startswith(("https://", "http://"))


def _limit_text(minutes: int | None, lang: str) -> str:
    if not minutes:
        return ""
    zh = lang == "zh"
    if minutes % 60:
        return f"{minutes}分钟" if zh else f"{minutes} min"
    hours = minutes // 60
    return f"{hours}工作小时" if zh else f"{hours} working hours"


async def case_page(request: web.Request) -> web.Response:
    user = await require(request)
    context = await _context(request, user, request.match_info["number"])
    return await render(request, "console/case.html", context, active="cases")


async def case_photo(request: web.Request) -> web.StreamResponse:
    """A photo of a case (the reporter's or a step's), only for those who may see the case."""
    user = await require(request)
    wanted = request.query.get("path", "")
    async with request.app[DB].read() as session:
        case = await _case_for(session, user, request.match_info["number"])
        known = _photo_paths(case, await service.steps(session, case))
    if wanted not in known:
        raise web.HTTPNotFound(text="404: this case has no such photo")
    path = case_media.resolve(request.app[SETTINGS].var_dir, wanted)
    if path is None:
        raise web.HTTPNotFound(text="404: the photo file is missing")
    kind = path.suffix.lstrip(".").lower()
    return web.FileResponse(path, headers={
        "Content-Type": case_media.CONTENT_TYPES.get(kind, "application/octet-stream"),
        "Cache-Control": "private, max-age=3600",
        "X-Content-Type-Options": "nosniff",
    })


async def case_action(request: web.Request) -> web.Response:
    """A workflow action from a case page's form: the same service call as the staff API's."""
    user = await require(request)
    number, action = request.match_info["number"], request.match_info["action"]
    back = f"/console/cases/{number}"
    async with request.app[DB].read() as session:
        await _case_for(session, user, number)  # 404 / 403 before any photo is saved
    saved: list[str] = []
    try:
        params = await cases_api._params(request)  # the API's reader: photos checked and saved
        saved = [p for p in params.get("photos", []) if isinstance(p, str)]
        params.pop("photo", None)  # a file input left empty arrives as an empty non-file field
        # An empty field of a form means "not given" (the service's defaults apply).
        params = {k: v for k, v in params.items() if not (isinstance(v, str) and not v.strip())}
        async with console_write(request) as session:
            case = await service.perform(session, number, action, Actor.of_user(user), utcnow(), **params)
            status = case.status
    except CaseError as exc:
        for path in saved:  # nothing changed: the photos of a refused action go too
            (request.app[SETTINGS].var_dir / path).unlink(missing_ok=True)
        if exc.status == 403:
            raise web.HTTPForbidden(text=f"403: {exc.message}") from None
        if exc.status == 404:
            raise web.HTTPNotFound(text=f"404: {exc.message}") from None
        name_zh, name_en = CASE_ACTION_LABELS.get(action, (action, action))
        flash(request, "error", f"未能{name_zh}：{exc.message}", f"Could not {name_en.lower()}: {exc.message}")
        return redirect(back)
    name_zh, name_en = CASE_ACTION_LABELS.get(action, (action, action))
    st_zh, st_en = CASE_STATUS_LABELS.get(status, (status, status))
    flash(request, "ok", f"已{name_zh}，案件现为“{st_zh}”。", f"{name_en}: done. The case is now {st_en.lower()}.")
    return redirect(back)
