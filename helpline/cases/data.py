"""The city's case data: taxonomy and work calendar (documents), departments and routing rules.

The taxonomy and the calendar in force are the latest loaded documents of their kind, or the
shipped files when a city has loaded none; so every instance sees the same data, and what was in
force when is on record. Departments and routes are rows (admins change contacts and
forwarding without a deploy); the shipped demo set is loaded once into an empty database.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.cases.models import CaseDocument, CaseRoute, Department
from helpline.cases.worktime import CalendarError, WorkCalendar, calendar_from_text
from helpline.db import Database
from helpline.models import Event, utcnow
from helpline.taxonomy import GridClass, TaxonomyError, data_path, parse_taxonomy, shipped_taxonomy

_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_URN = re.compile(r"^(tel:\+\d{6,15}|telegram:-?\d{1,20})$")
_CLASS_PREFIX = re.compile(r"^([CE](\d{2}(\d{2})?)?)?$")
_AREA = re.compile(r"^(\d{6}|\d{9}|\d{12}|\d{15})?$")
FORWARD_KINDS = ("open311", "webhook")
_parsed_taxonomies: dict[str, dict[str, GridClass]] = {}
_parsed_calendars: dict[str, WorkCalendar] = {}


class CaseDataError(ValueError):
    """A data file is wrong; the message names the file and the entry."""


def _sha(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


async def _latest(session: AsyncSession, kind: str) -> tuple[str, str] | None:
    row = (await session.execute(
        select(CaseDocument.sha256, CaseDocument.content)
        .where(CaseDocument.kind == kind).order_by(CaseDocument.id.desc()).limit(1)
    )).first()
    return (row.sha256, row.content) if row is not None else None


async def taxonomy(session: AsyncSession) -> dict[str, GridClass]:
    """The classes in force: the city's latest imported list, or the shipped one."""
    latest = await _latest(session, "taxonomy")
    if latest is None:
        return shipped_taxonomy()
    sha, content = latest
    if sha not in _parsed_taxonomies:
        _parsed_taxonomies[sha] = parse_taxonomy(content, "taxonomy in the database")
    return _parsed_taxonomies[sha]


def shipped_calendar() -> WorkCalendar:
    return _calendar_of(data_path("worktime.yaml").read_text(encoding="utf-8"), "helpline/data/worktime.yaml")


def _calendar_of(content: str, source: str) -> WorkCalendar:
    sha = _sha(content)
    if sha not in _parsed_calendars:
        _parsed_calendars[sha] = calendar_from_text(content, source)
    return _parsed_calendars[sha]


async def calendar(session: AsyncSession) -> WorkCalendar:
    """The work calendar in force: the city's latest imported one, or the shipped one."""
    latest = await _latest(session, "calendar")
    if latest is None:
        return shipped_calendar()
    return _calendar_of(latest[1], "calendar in the database")


async def import_document(session: AsyncSession, kind: str, name: str, content: str, actor: str) -> int:
    """Validate and store a taxonomy CSV or calendar YAML; it is in force from this commit on.
    Returns how many classes (taxonomy) or special days (calendar) it has."""
    try:
        if kind == "taxonomy":
            classes = parse_taxonomy(content, name)
            known = set(await session.scalars(select(Department.code)))
            unknown = sorted({c.department for c in classes.values() if c.department and c.department not in known})
            if unknown:
                raise CaseDataError(f"{name}: unknown department code(s) {', '.join(unknown)}; import departments first")
            count = len(classes)
        elif kind == "calendar":
            cal = calendar_from_text(content, name)
            count = len(cal.holidays) + len(cal.workdays)
        else:
            raise CaseDataError(f"unknown document kind {kind!r}")
    except (TaxonomyError, CalendarError) as exc:
        raise CaseDataError(str(exc)) from None
    session.add(CaseDocument(kind=kind, name=name[:200], content=content, sha256=_sha(content), loaded_by=actor))
    session.add(Event(actor=actor, action=f"cases.{kind}_imported", subject_type="case_data", subject_id=kind,
                      data={"name": name[:200], "count": count}))
    return count


# -- departments and routes -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    class_prefix: str
    area_prefix: str
    department: str


def _urns(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and _URN.match(v) for v in value):
        raise CaseDataError(f"{where}: must be a list of addresses such as tel:+8657487000000")
    return list(value)


def _department(entry: Any, where: str, kind: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise CaseDataError(f"{where}: must be a mapping")
    code = str(entry.get("code") or "")
    if not _CODE.match(code):
        raise CaseDataError(f"{where}: code must be 1-32 letters, digits, '_' or '-'")
    for key in ("name_zh", "name_en"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise CaseDataError(f"{where} ({code}): {key} is required")
    contact = entry.get("contact_urn")
    if contact is not None and (not isinstance(contact, str) or not _URN.match(contact)):
        raise CaseDataError(f"{where} ({code}): contact_urn must be an address such as tel:+8657487000000")
    row: dict[str, Any] = {
        "code": code, "kind": kind, "name_zh": entry["name_zh"].strip(), "name_en": entry["name_en"].strip(),
        "contact_name": entry.get("contact_name"), "contact_urn": contact,
        "supervisors": _urns(entry.get("supervisors"), f"{where} ({code}): supervisors"),
        "active": bool(entry.get("active", True)),
        "forward_kind": None, "forward_url": None, "forward_secret": None, "forward_jurisdiction": None,
    }
    forward = entry.get("forward")
    if forward is not None:
        if not isinstance(forward, dict) or forward.get("kind") not in FORWARD_KINDS:
            raise CaseDataError(f"{where} ({code}): forward.kind must be one of {', '.join(FORWARD_KINDS)}")
        url = str(forward.get("url") or "")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CaseDataError(f"{where} ({code}): forward.url must be an http(s) URL")
        row.update(forward_kind=forward["kind"], forward_url=url.rstrip("/"),
                   forward_secret=forward.get("secret"), forward_jurisdiction=forward.get("jurisdiction"))
    return row


def parse_departments(data: Any, source: str) -> tuple[list[dict[str, Any]], list[Route]]:
    """Department rows and routes from the YAML data (see helpline/data/departments.yaml)."""
    if not isinstance(data, dict) or not isinstance(data.get("departments"), list):
        raise CaseDataError(f"{source}: needs a 'departments' list")
    rows = []
    if data.get("centre") is not None:
        rows.append(_department(data["centre"], f"{source}: centre", "centre"))
    rows += [_department(e, f"{source}: departments entry {n}", "department")
             for n, e in enumerate(data["departments"], start=1)]
    codes = [r["code"] for r in rows]
    if len(set(codes)) != len(codes):
        raise CaseDataError(f"{source}: department codes must be unique")
    departments = {r["code"] for r in rows if r["kind"] == "department"}
    routes: list[Route] = []
    for n, entry in enumerate(data.get("routes") or [], start=1):
        where = f"{source}: routes entry {n}"
        if not isinstance(entry, dict):
            raise CaseDataError(f"{where}: must be a mapping {{class, area, department}}")
        cls, area, dept = str(entry.get("class") or ""), str(entry.get("area") or ""), str(entry.get("department") or "")
        if not _CLASS_PREFIX.match(cls):
            raise CaseDataError(f"{where}: class must be a code such as E0102, a major class such as E01, or C/E")
        if not _AREA.match(area):
            raise CaseDataError(f"{where}: area must be a grid-cell id prefix of 6, 9, 12 or 15 digits")
        if dept not in departments:
            raise CaseDataError(f"{where}: department {dept!r} is not listed")
        routes.append(Route(cls, area, dept))
    if len({(r.class_prefix, r.area_prefix) for r in routes}) != len(routes):
        raise CaseDataError(f"{source}: two routes have the same class and area")
    return rows, routes


async def store_departments(
    session: AsyncSession, rows: list[dict[str, Any]], routes: list[Route], origin: str, actor: str
) -> None:
    """Insert or update the departments and replace the routing rules."""
    now = utcnow()
    for row in rows:
        dept = await session.get(Department, row["code"])
        if dept is None:
            session.add(Department(**row, origin=origin, updated_at=now))
        else:
            for key, value in row.items():
                setattr(dept, key, value)
            dept.origin, dept.updated_at = origin, now
    await session.flush()
    await session.execute(delete(CaseRoute))
    session.add_all(CaseRoute(class_prefix=r.class_prefix, area_prefix=r.area_prefix,
                              department_code=r.department, origin=origin) for r in routes)
    session.add(Event(actor=actor, action="cases.departments_loaded", subject_type="case_data", subject_id="departments",
                      data={"departments": len(rows), "routes": len(routes), "origin": origin}))


def read_departments_text(text: str, source: str) -> tuple[list[dict[str, Any]], list[Route]]:
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise CaseDataError(f"{source}: not valid YAML: {exc}") from None
    return parse_departments(data, source)


async def load_shipped_departments(session: AsyncSession) -> bool:
    """The demo departments and routes, into a database that has no departments yet."""
    if await session.scalar(select(func.count()).select_from(Department)):
        return False
    path = data_path("departments.yaml")
    rows, routes = read_departments_text(path.read_text(encoding="utf-8"), "helpline/data/departments.yaml")
    await store_departments(session, rows, routes, "shipped", "system")
    return True


async def load_shipped(db: Database) -> None:
    """What ``helpline serve`` needs on a fresh database (taxonomy and calendar ship as files)."""
    async with db.write() as session:
        await load_shipped_departments(session)


async def routes(session: AsyncSession) -> list[Route]:
    rows = await session.execute(select(CaseRoute.class_prefix, CaseRoute.area_prefix, CaseRoute.department_code))
    return [Route(c, a, d) for c, a, d in rows]


async def suggest_department(
    session: AsyncSession, class_code: str | None, cell_id: str | None, classes: dict[str, GridClass]
) -> str | None:
    """The department a case should go to: the most specific routing rule, else the class's default;
    only an active department of kind ``department``."""
    if class_code is None:
        return None
    cell = cell_id or ""
    matching = [r for r in await routes(session) if class_code.startswith(r.class_prefix) and cell.startswith(r.area_prefix)]
    matching.sort(key=lambda r: (len(r.class_prefix), len(r.area_prefix)), reverse=True)
    candidates = [r.department for r in matching]
    cls = classes.get(class_code)
    if cls is not None and cls.department:
        candidates.append(cls.department)
    for code in candidates:
        dept = await session.get(Department, code)
        if dept is not None and dept.active and dept.kind == "department":
            return code
    return None


async def departments(session: AsyncSession) -> dict[str, Department]:
    return {d.code: d for d in await session.scalars(select(Department).order_by(Department.code))}

