"""The staff's JSON API for grid cases, under ``/console/api/cases`` (the console's session cookie
is scoped to ``/console``), so the console's sign-in, CSRF check (``X-CSRF-Token`` header on
POST) and roles protect it exactly as they protect the console's pages.

- ``GET  /console/api/cases?status=&department=&light=&limit=&offset=``: the case list
- ``GET  /console/api/cases/figures?from=&to=&by=department|class|major|period&period=day|week|month``
- ``GET  /console/api/cases/{number}``: one case with its reporters (addresses masked) and timeline
- ``POST /console/api/cases/{number}/{action}``: a workflow action; JSON parameters, or a
  multipart form whose ``photo`` files are saved and passed as ``photos``

Department users see and act on their own department's cases only (the workflow checks it, and
the list and figures are confined to it). Refusals are ``{"error": "…"}`` with 400, 403, 404 or
409, and nothing changes. The figures endpoint is what the console's dashboard panels and any
other dashboard read.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select

from helpline.appkeys import DB, SETTINGS
from helpline.cases import figures as case_figures
from helpline.cases import media as case_media
from helpline.cases import service, timers
from helpline.cases.data import departments, taxonomy
from helpline.cases.models import STATUSES, Case
from helpline.cases.views import case_detail, case_view
from helpline.cases.workflow import Actor, CaseError, InvalidInput
from helpline.console.auth import require
from helpline.http import json_error, json_response
from helpline.models import User, utcnow

PREFIX = "/console/api/cases"
MAX_LIST = 500
MAX_PHOTOS = 10


def setup(app: web.Application) -> None:
    from helpline.cases import panels

    panels.setup(app)  # the dashboard's figures table and open-cases map layer
    r = app.router
    r.add_get(PREFIX, list_cases)
    r.add_get(f"{PREFIX}/figures", figures)
    r.add_get(PREFIX + "/{number:\\d+}", get_case)
    r.add_post(PREFIX + "/{number:\\d+}/{action:[a-z_]+}", act)


def _lang(request: web.Request) -> str:
    return "en" if request.query.get("lang") == "en" else "zh"


async def list_cases(request: web.Request) -> web.Response:
    user = await require(request)
    q = request.query
    statuses = [s for s in q.get("status", "").split(",") if s]
    if any(s not in STATUSES for s in statuses):
        return json_error(400, f"status must be among {', '.join(STATUSES)}")
    light = q.get("light")
    if light not in (None, "green", "yellow", "red"):
        return json_error(400, "light must be green, yellow or red")
    try:
        limit = min(int(q.get("limit", "100")), MAX_LIST)
        offset = max(int(q.get("offset", "0")), 0)
    except ValueError:
        return json_error(400, "limit and offset must be whole numbers")
    query = select(Case).order_by(Case.id.desc())
    department = user.department_code if user.role == "department" else q.get("department")
    if user.role == "department" and q.get("department") not in (None, department):
        return json_error(403, "a department user sees only its own department's cases")
    if department:
        query = query.where(Case.department_code == department)
    if statuses:
        query = query.where(Case.status.in_(statuses))
    if light is not None:
        query = query.where(Case.status.in_(timers.RUNNING))
    now = utcnow()
    async with request.app[DB].read() as session:
        rows = list(await session.scalars(query if light else query.offset(offset).limit(limit)))
        if light is not None:
            rows = [c for c in rows if timers.light(c, now) == light][offset:offset + limit]
        classes, depts = await taxonomy(session), await departments(session)
    views = [case_view(c, classes, depts, now, _lang(request)) for c in rows]
    return json_response({"cases": views, "count": len(views)})


async def get_case(request: web.Request) -> web.Response:
    user = await require(request)
    async with request.app[DB].read() as session:
        try:
            case = await service.load(session, request.match_info["number"])
        except CaseError as exc:
            return json_error(exc.status, exc.message)
        if user.role == "department" and case.department_code != user.department_code:
            return json_error(403, f"case {case.number} is not your department's")
        return json_response(await case_detail(session, case, utcnow(), _lang(request)))


async def _params(request: web.Request) -> dict[str, Any]:
    """Action parameters from JSON, or from a multipart form with photos (saved first)."""
    if request.content_type == "application/json":
        try:
            body = json.loads(await request.read() or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object")
        return body
    if request.content_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise InvalidInput("send the parameters as JSON, or as a form (multipart with photo files)")
    form = await request.post()
    params: dict[str, Any] = {}
    photos: list[bytes] = []
    for key, value in form.items():
        if key == "_csrf":
            continue
        if isinstance(value, web.FileField):
            if key != "photo":
                raise InvalidInput(f"unexpected file field {key!r} (photos go in 'photo')")
            photos.append(value.file.read())
        elif key == "photo" and not str(value):
            continue  # a browser's file input left empty: no photo, not a text field
        elif key in ("amount", "rating"):
            try:
                params[key] = int(str(value))
            except ValueError:
                raise InvalidInput(f"{key} must be a whole number") from None
        elif key in ("lat", "lon"):
            try:
                params[key] = float(str(value))
            except ValueError:
                raise InvalidInput(f"{key} must be a number") from None
        else:
            params[key] = str(value)
    if len(photos) > MAX_PHOTOS:
        raise InvalidInput(f"at most {MAX_PHOTOS} photos")
    for data in photos:  # all checked before any is saved
        if not data or len(data) > case_media.MAX_BYTES or case_media.sniff(data) is None:
            raise InvalidInput(f"photos must be JPEG, PNG or WebP images of at most {case_media.MAX_BYTES} bytes")
    if photos:
        var_dir = request.app[SETTINGS].var_dir
        params["photos"] = [case_media.save_photo(var_dir, data) for data in photos]
    return params


async def act(request: web.Request) -> web.Response:
    user = await require(request)
    action = request.match_info["action"]
    saved: list[str] = []
    try:
        params = await _params(request)
        saved = [p for p in params.get("photos", []) if isinstance(p, str)] if request.content_type != "application/json" else []
        async with request.app[DB].write() as session:
            case = await service.perform(session, request.match_info["number"], action, Actor.of_user(user),
                                         utcnow(), **params)
            view = case_view(case, await taxonomy(session), await departments(session), utcnow(), _lang(request))
    except CaseError as exc:
        for path in saved:  # nothing changed: the photos of a refused action go too
            (request.app[SETTINGS].var_dir / path).unlink(missing_ok=True)
        return json_error(exc.status, exc.message)
    return json_response(view)


def _bound(value: str | None, name: str, zone: Any, default: datetime) -> datetime:
    """A date (local midnight) or a date-time with offset."""
    if not value:
        return default
    try:
        if len(value) == 10:
            return datetime.combine(datetime.fromisoformat(value).date(), time(0), zone)
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be a date (2026-11-01) or a date-time with offset") from None
    if at.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone offset (or give a plain date)")
    return at


async def figures(request: web.Request) -> web.Response:
    user = await require(request)
    q = request.query
    zone = request.app[SETTINGS].zone
    now = utcnow().astimezone(zone)
    first = datetime.combine(now.date().replace(day=1), time(0), zone)
    try:
        start = _bound(q.get("from"), "from", zone, first)
        end = _bound(q.get("to"), "to", zone, now + timedelta(seconds=1))
    except CaseError as exc:
        return json_error(exc.status, exc.message)
    department = _scope(user, q.get("department"))
    if isinstance(department, web.Response):
        return department
    async with request.app[DB].read() as session:
        try:
            data = await case_figures.figures(session, start, end, q.get("by") or None, q.get("period", "month"),
                                              department)
        except ValueError as exc:
            return json_error(400, str(exc))
    return json_response(data)


def _scope(user: User, asked: str | None) -> str | None | web.Response:
    if user.role != "department":
        return asked
    if asked not in (None, user.department_code):
        return json_error(403, "a department user sees only its own department's figures")
    return user.department_code
