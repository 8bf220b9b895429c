"""Cases as plain dicts: for the dialogue's reply, the staff API and console, forwarding, export.

Reporter's personal details (addresses, names, phone numbers) only appear in the staff detail
view; anything public (Open311, forwarding) carries the description with long digit runs masked,
since residents often type their phone number into the words.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from helpline.cases import timers
from helpline.cases.data import departments, taxonomy
from helpline.cases.models import Case, Department
from helpline.config import Settings
from helpline.logs import mask_urn
from helpline.taxonomy import GridClass

_LONG_DIGITS = re.compile(r"\d{7,}")


def public_text(text: str) -> str:
    """Words safe to publish: digit runs of 7+ (phone and id numbers) masked."""
    return _LONG_DIGITS.sub(lambda m: m.group()[:3] + "*" * (len(m.group()) - 3), text)


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def reply_case(case: Case, now: datetime) -> dict[str, Any]:
    """The ``case`` object of a dialogue reply (DESIGN.md part 2): id and status, and a little more."""
    return {
        "id": case.number, "status": case.status, "department": case.department_code,
        "expected": iso(case.due_at), "reports": case.reports_count,
    }


def class_view(cls: GridClass | None, code: str | None, lang: str) -> dict[str, Any] | None:
    if code is None:
        return None
    if cls is None:
        return {"code": code, "kind": None, "major": None, "minor": None}
    return {"code": code, "kind": cls.kind, "major_code": cls.major_code, "major": cls.major(lang),
            "minor_code": cls.minor_code, "minor": cls.name(lang)}


def media_urls(case: Case, public_url: str) -> list[str]:
    """Public URLs of the case's photos: a reporter's link as given, our own files served by Open311."""
    urls = []
    for n, item in enumerate(case.media or []):
        if item.get("url"):
            urls.append(str(item["url"]))
        elif item.get("path"):
            urls.append(f"{public_url}/open311/v2/media/{case.number}/{n}")
    return urls


def case_view(case: Case, classes: dict[str, GridClass], depts: dict[str, Department], now: datetime,
              lang: str = "zh") -> dict[str, Any]:
    """The case as the staff list and the console show it (no personal details)."""
    dept = depts.get(case.department_code or "")
    return {
        "id": case.number,
        "status": case.status,
        "class": class_view(classes.get(case.class_code or ""), case.class_code, lang),
        "description": case.description,
        "address": case.address,
        "landmark": case.landmark,
        "cell_id": case.cell_id,
        "area_class": case.area_class,
        "lat": case.lat,
        "lon": case.lon,
        "source": case.source,
        "reports": case.reports_count,
        "department": {"code": dept.code, "name": dept.name(lang)} if dept else None,
        "light": timers.light(case, now),
        "limit_minutes": case.limit_minutes,
        "warn_at": iso(case.warn_at),
        "due_at": iso(case.due_at),
        "status_note": case.status_note,
        "extension_request": case.extension_request,
        "counts": {"dispatch": case.dispatch_count, "return": case.return_count, "rework": case.rework_count,
                   "reopen": case.reopen_count, "extension": case.extension_count},
        "handled_on_time": case.handled_on_time,
        "closed_on_time": case.closed_on_time,
        "rating": case.rating,
        "void_reason": case.void_reason,
        "external_id": case.external_id,
        "media": case.media,
        "reported_at": iso(case.reported_at),
        "registered_at": iso(case.registered_at),
        "dispatched_at": iso(case.dispatched_at),
        "handled_at": iso(case.handled_at),
        "checked_at": iso(case.checked_at),
        "closed_at": iso(case.closed_at),
        "voided_at": iso(case.voided_at),
        "updated_at": iso(case.updated_at),
    }


async def case_detail(session: AsyncSession, case: Case, now: datetime, lang: str = "zh") -> dict[str, Any]:
    """The case with its reports (addresses masked) and its whole timeline."""
    from helpline.cases.service import reports, steps

    view = case_view(case, await taxonomy(session), await departments(session), now, lang)
    view["reporters"] = [
        {"channel": r.channel, "address": mask_urn(r.urn) if r.urn else None, "text": r.text,
         "rating": r.rating, "reported_at": iso(r.reported_at)}
        for r in await reports(session, case)
    ]
    view["timeline"] = [
        {"at": iso(s.at), "action": s.action, "from": s.from_status, "to": s.to_status, "actor": s.actor,
         "role": s.actor_role, "department": s.department_code, "note": s.note, "photos": s.photos, "data": s.data}
        for s in await steps(session, case)
    ]
    return view


async def forward_payload(session: AsyncSession, case: Case, settings: Settings) -> dict[str, Any]:
    """What a department's webhook receives."""
    classes = await taxonomy(session)
    cls = classes.get(case.class_code or "")
    return {
        "event": "case.dispatched",
        "case": {
            "id": case.number, "status": case.status, "service_code": case.class_code,
            "class": class_view(cls, case.class_code, "zh"), "description": public_text(case.description),
            "address": case.address or case.landmark, "cell_id": case.cell_id, "lat": case.lat, "lon": case.lon,
            "department": case.department_code, "due_at": iso(case.due_at), "reported_at": iso(case.reported_at),
            "dispatched_at": iso(case.dispatched_at), "media_urls": media_urls(case, settings.public_url),
            "url": f"{settings.public_url}/open311/v2/requests/{case.number}.json",
        },
    }


async def open311_form(session: AsyncSession, case: Case, dept: Department, settings: Settings) -> dict[str, str]:
    """A GeoReport v2 POST for a department's Open311 platform (no personal details of reporters)."""
    form = {
        "service_code": case.class_code or "",
        "description": f"[{case.number}] {public_text(case.description)}"[:4000],
    }
    if dept.forward_secret:
        form["api_key"] = dept.forward_secret
    if dept.forward_jurisdiction:
        form["jurisdiction_id"] = dept.forward_jurisdiction
    if case.lat is not None and case.lon is not None:
        form["lat"], form["long"] = repr(case.lat), repr(case.lon)
    if case.address or case.landmark:
        form["address_string"] = str(case.address or case.landmark)
    urls = media_urls(case, settings.public_url)
    if urls:
        form["media_url"] = urls[0]
    return form
