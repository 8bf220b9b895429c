"""The service catalogue as files: read YAML or CSV, check every entry, and upsert it.

A file is checked completely before anything is written, and every problem is reported with the
file's name and line, so an import is all or nothing. YAML holds any of ``categories``,
``services``, ``providers`` and ``holidays``; a CSV holds one kind, told by its columns (see
README, "Bookings"). Lists in CSV cells are separated by ``|``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.booking.models import Holiday, Provider, ProviderService, Service, ServiceCategory
from helpline.booking.slots import PlanError, parse_plan, resync
from helpline.db import Database
from helpline.phones import to_e164

SHIPPED = "booking_catalogue.yaml"
_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class CatalogueError(ValueError):
    """The file is malformed; ``problems`` are "file:line: what is wrong", one per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class CategoryData:
    code: str
    name_zh: str
    name_en: str
    sort: int | None  # None: as it is (a category named in a services CSV keeps its place)


@dataclass(frozen=True)
class ServiceData:
    code: str
    category: str
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    keywords_zh: tuple[str, ...]
    keywords_en: tuple[str, ...]
    active: bool
    sort: int


@dataclass(frozen=True)
class ProviderData:
    code: str
    name_zh: str
    name_en: str
    phone: str
    contact_name: str | None
    lang: str
    services: tuple[str, ...]
    areas: tuple[str, ...]
    plan: tuple[Any, ...]
    slot_minutes: int
    capacity: int
    lead_minutes: int
    works_holidays: bool


@dataclass(frozen=True)
class HolidayData:
    day: date
    name_zh: str
    name_en: str


@dataclass
class Catalogue:
    source: str
    categories: list[CategoryData] = field(default_factory=list)
    services: list[ServiceData] = field(default_factory=list)
    providers: list[ProviderData] = field(default_factory=list)
    holidays: list[HolidayData] = field(default_factory=list)
    # Where each entry was written, for problems found later (against the database).
    lines: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.created} new, {self.updated} updated, {self.unchanged} unchanged"


# -- reading ----------------------------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """A safe loader that notes the line of every mapping, so problems can name it."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)
# Dates stay text until checked here: YAML's own reading of 2026-02-30 is an exception, not a problem report.
_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


class _Checker:
    """Collects problems with the file's name and line instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(f"{self.source}:{line or '?'}: {message}")

    def text(self, entry: dict[str, Any], key: str, line: int, limit: int, required: bool = True) -> str:
        value = entry.get(key)
        if value is None or str(value).strip() == "":
            if required:
                self.problem(line, f"missing '{key}'")
            return ""
        text = str(value).strip()
        if len(text) > limit:
            self.problem(line, f"'{key}' is longer than {limit} characters")
        return text

    def code(self, entry: dict[str, Any], line: int, key: str = "code") -> str:
        code = self.text(entry, key, line, 32)
        if code and not _CODE.match(code):
            self.problem(line, f"'{key}' {code!r} must be lower-case letters, digits and '-' (at most 32)")
        return code

    def words(self, entry: dict[str, Any], key: str, line: int) -> tuple[str, ...]:
        value = entry.get(key)
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            value = [w for w in value.split("|")]
        if not isinstance(value, list) or not all(isinstance(w, str | int) for w in value):
            self.problem(line, f"'{key}' must be a list of words")
            return ()
        return tuple(str(w).strip() for w in value if str(w).strip())

    def number(self, entry: dict[str, Any], key: str, line: int, default: float, lo: float, hi: float) -> float:
        value = entry.get(key)
        if value is None or value == "":
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.problem(line, f"'{key}' must be a number, not {value!r}")
            return default
        if not lo <= number <= hi:
            self.problem(line, f"'{key}' must be between {lo:g} and {hi:g}, not {value!r}")
        return number

    def flag(self, entry: dict[str, Any], key: str, line: int, default: bool) -> bool:
        value = entry.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "y", "是"):
            return True
        if text in ("0", "false", "no", "n", "否"):
            return False
        self.problem(line, f"'{key}' must be true or false, not {value!r}")
        return default

    def unknown(self, entry: dict[str, Any], allowed: set[str], line: int) -> None:
        for key in sorted(set(entry) - allowed - {"__line__"}):
            self.problem(line, f"unknown field {key!r}")


CATEGORY_FIELDS = {"code", "zh", "en", "sort"}
SERVICE_FIELDS = {"code", "category", "zh", "en", "description_zh", "description_en", "keywords_zh", "keywords_en",
                  "active", "sort", "category_zh", "category_en"}
PROVIDER_FIELDS = {"code", "zh", "en", "phone", "contact", "lang", "services", "areas", "plan", "slot_minutes", "capacity",
                   "lead_hours", "works_holidays"}
HOLIDAY_FIELDS = {"date", "zh", "en"}


def _category(c: _Checker, entry: dict[str, Any], line: int) -> CategoryData:
    c.unknown(entry, CATEGORY_FIELDS, line)
    sort = None if entry.get("sort") in (None, "") else int(c.number(entry, "sort", line, 0, -10_000, 10_000))
    return CategoryData(c.code(entry, line), c.text(entry, "zh", line, 100), c.text(entry, "en", line, 100), sort)


def _service(c: _Checker, entry: dict[str, Any], line: int) -> ServiceData:
    c.unknown(entry, SERVICE_FIELDS, line)
    return ServiceData(
        code=c.code(entry, line),
        category=c.code(entry, line, "category"),
        name_zh=c.text(entry, "zh", line, 100),
        name_en=c.text(entry, "en", line, 100),
        description_zh=c.text(entry, "description_zh", line, 2000, required=False),
        description_en=c.text(entry, "description_en", line, 2000, required=False),
        keywords_zh=c.words(entry, "keywords_zh", line),
        keywords_en=c.words(entry, "keywords_en", line),
        active=c.flag(entry, "active", line, True),
        sort=int(c.number(entry, "sort", line, 0, -10_000, 10_000)),
    )


def _provider(c: _Checker, entry: dict[str, Any], line: int, region: str) -> ProviderData:
    c.unknown(entry, PROVIDER_FIELDS, line)
    raw_phone = c.text(entry, "phone", line, 32)
    phone = to_e164(raw_phone, region) if raw_phone else None
    if raw_phone and phone is None:
        c.problem(line, f"'phone' {raw_phone!r} is not a phone number")
    services = c.words(entry, "services", line)
    if not services:
        c.problem(line, "missing 'services' (the codes of the services this provider offers)")
    for code in services:
        if not _CODE.match(code):
            c.problem(line, f"service code {code!r} is not a valid code")
    plan: list[Any] = []
    if entry.get("plan") in (None, "", []):
        c.problem(line, "missing 'plan' (working days and hours, e.g. 'mon-fri 08:00-12:00 13:00-17:00')")
    else:
        try:
            plan = parse_plan(entry["plan"])
        except PlanError as exc:
            c.problem(line, f"'plan': {exc}")
    slot_minutes = int(c.number(entry, "slot_minutes", line, 120, 15, 720))
    for item in plan:
        for window in item["hours"]:
            start, end = (int(a) * 60 + int(b) for a, b in (t.split(":") for t in window.split("-")))
            if end - start < slot_minutes:
                c.problem(line, f"working hours {window} are shorter than one slot ({slot_minutes} minutes)")
    return ProviderData(
        code=c.code(entry, line),
        name_zh=c.text(entry, "zh", line, 200),
        name_en=c.text(entry, "en", line, 200),
        phone=phone or "",
        contact_name=c.text(entry, "contact", line, 100, required=False) or None,
        lang=_lang(c, entry, line),
        services=services,
        areas=c.words(entry, "areas", line),
        plan=tuple(plan),
        slot_minutes=slot_minutes,
        capacity=int(c.number(entry, "capacity", line, 1, 1, 1000)),
        lead_minutes=round(c.number(entry, "lead_hours", line, 2, 0, 24 * 30) * 60),
        works_holidays=c.flag(entry, "works_holidays", line, False),
    )


def _lang(c: _Checker, entry: dict[str, Any], line: int) -> str:
    lang = c.text(entry, "lang", line, 8, required=False) or "zh"
    if lang not in ("zh", "en"):
        c.problem(line, f"'lang' must be zh or en, not {lang!r}")
    return lang


def _holiday(c: _Checker, entry: dict[str, Any], line: int) -> HolidayData | None:
    c.unknown(entry, HOLIDAY_FIELDS, line)
    value = entry.get("date")
    day: date | None = None
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip())
        except ValueError:
            c.problem(line, f"'date' {value!r} is not a date like 2026-10-01")
    name_zh, name_en = c.text(entry, "zh", line, 100), c.text(entry, "en", line, 100)
    return HolidayData(day, name_zh, name_en) if day else None


def parse_catalogue(text: str, source: str, region: str = "CN") -> Catalogue:
    """Read a catalogue from YAML or CSV text (CSV when ``source`` ends in .csv)."""
    if source.lower().endswith(".csv"):
        return _parse_csv(text, source, region)
    c = _Checker(source)
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CatalogueError([f"{source}:{mark.line + 1 if mark else '?'}: not valid YAML: "
                              f"{getattr(exc, 'problem', None) or exc}"]) from None
    if not isinstance(data, dict):
        raise CatalogueError([f"{source}:1: expected a mapping with categories, services, providers or holidays"])
    cat = Catalogue(source)
    c.unknown(data, {"categories", "services", "providers", "holidays"}, 1)
    readers: dict[str, Callable[[dict[str, Any], int], Any]] = {
        "categories": lambda e, ln: _category(c, e, ln),
        "services": lambda e, ln: _service(c, e, ln),
        "providers": lambda e, ln: _provider(c, e, ln, region),
        "holidays": lambda e, ln: _holiday(c, e, ln),
    }
    for kind, read in readers.items():
        entries = data.get(kind) or []
        if not isinstance(entries, list):
            c.problem(data.get("__line__", 1), f"'{kind}' must be a list")
            continue
        for entry in entries:
            if not isinstance(entry, dict):
                c.problem(None, f"an entry of '{kind}' is not a mapping: {entry!r}")
                continue
            _add(cat, kind, read(entry, entry.get("__line__", 0)), entry.get("__line__", 0), c)
    if c.problems:
        raise CatalogueError(c.problems)
    return cat


def _parse_csv(text: str, source: str, region: str) -> Catalogue:
    c = _Checker(source)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = set(reader.fieldnames or [])
    if {"code", "phone"} <= columns:
        kind, allowed = "providers", PROVIDER_FIELDS
    elif {"code", "category"} <= columns:
        kind, allowed = "services", SERVICE_FIELDS
    elif "date" in columns:
        kind, allowed = "holidays", HOLIDAY_FIELDS
    elif {"code", "zh", "en"} <= columns:
        kind, allowed = "categories", CATEGORY_FIELDS
    else:
        raise CatalogueError([f"{source}:1: cannot tell what the columns {sorted(columns)} hold; "
                              "see README 'Bookings' for the columns of services, providers, holidays"])
    for column in sorted(columns - allowed):
        c.problem(1, f"unknown column {column!r}")
    cat = Catalogue(source)
    categories: dict[str, CategoryData] = {}
    for row in reader:
        line = reader.line_num
        entry = {k: v for k, v in row.items() if k is not None and k in allowed and v not in (None, "")}
        if None in row:
            c.problem(line, "more cells than columns")
        if kind == "services":
            if entry.get("category_zh") or entry.get("category_en"):
                cat_entry = {"code": entry.get("category"), "zh": entry.get("category_zh"), "en": entry.get("category_en")}
                category = _category(c, cat_entry, line)
                if category.code and category.code not in categories:
                    categories[category.code] = category
                    _add(cat, "categories", category, line, c)
            entry.pop("category_zh", None)
            entry.pop("category_en", None)
            _add(cat, kind, _service(c, entry, line), line, c)
        elif kind == "providers":
            _add(cat, kind, _provider(c, entry, line, region), line, c)
        elif kind == "holidays":
            _add(cat, kind, _holiday(c, entry, line), line, c)
        else:
            _add(cat, kind, _category(c, entry, line), line, c)
    if c.problems:
        raise CatalogueError(c.problems)
    return cat


def _add(cat: Catalogue, kind: str, item: Any, line: int, c: _Checker) -> None:
    if item is None:
        return
    key = (kind, str(item.day) if kind == "holidays" else item.code)
    if key in cat.lines:
        singular = {"categories": "category", "services": "service", "providers": "provider", "holidays": "holiday"}[kind]
        c.problem(line, f"{singular} {key[1]!r} is already defined on line {cat.lines[key]}")
        return
    cat.lines[key] = line
    getattr(cat, kind).append(item)


def read_path(path: Path, region: str = "CN") -> Catalogue:
    """Read a catalogue file; a file that cannot be read is a CatalogueError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError([f"{path}: cannot read: {exc}"]) from None
    return parse_catalogue(text, str(path), region)


def shipped_catalogue(region: str = "CN") -> Catalogue:
    text = files("helpline").joinpath("data", SHIPPED).read_text(encoding="utf-8")
    return parse_catalogue(text, f"helpline/data/{SHIPPED}", region)


# -- writing ----------------------------------------------------------------------------------


async def import_catalogue(
    session: AsyncSession, cat: Catalogue, now: datetime, zone: ZoneInfo, *, only_new: bool = False
) -> ImportResult:
    """Upsert the catalogue by code (holidays by date) in the caller's transaction.

    References (a service's category, a provider's services) may point into the file or the
    database; anything unresolved raises CatalogueError before a row is written. With
    ``only_new`` existing entries are left as they are (the shipped demo data must not undo
    what staff changed). Providers whose plan changed, and all of them when holidays changed,
    get their future slots rebuilt.
    """
    result = ImportResult()
    problems: list[str] = []

    def line(kind: str, key: str) -> str:
        return f"{cat.source}:{cat.lines.get((kind, key), '?')}"

    known_categories = {r.code: r for r in await session.scalars(select(ServiceCategory))}
    known_services = {r.code: r for r in await session.scalars(select(Service))}
    known_providers = {r.code: r for r in await session.scalars(select(Provider))}
    for s in cat.services:
        if s.category not in known_categories and s.category not in {c.code for c in cat.categories}:
            problems.append(f"{line('services', s.code)}: unknown category {s.category!r}")
    file_services = {s.code for s in cat.services}
    for p in cat.providers:
        for code in p.services:
            if code not in known_services and code not in file_services:
                problems.append(f"{line('providers', p.code)}: unknown service {code!r}")
    if problems:
        raise CatalogueError(problems)

    def apply(row: Any, values: dict[str, Any]) -> bool:
        changed = False
        for key, value in values.items():
            if getattr(row, key) != value:
                setattr(row, key, value)
                changed = True
        return changed

    def count(created: bool, changed: bool) -> None:
        if created:
            result.created += 1
        elif changed:
            result.updated += 1
        else:
            result.unchanged += 1

    for cd in cat.categories:
        row = known_categories.get(cd.code)
        if row is not None and only_new:
            result.unchanged += 1
            continue
        created = row is None
        if row is None:
            row = known_categories[cd.code] = ServiceCategory(code=cd.code, sort=0)
            session.add(row)
        values: dict[str, Any] = {"name_zh": cd.name_zh, "name_en": cd.name_en}
        if cd.sort is not None:
            values["sort"] = cd.sort
        count(created, apply(row, values))
    await session.flush()
    for sd in cat.services:
        srow = known_services.get(sd.code)
        if srow is not None and only_new:
            result.unchanged += 1
            continue
        created = srow is None
        if srow is None:
            srow = known_services[sd.code] = Service(code=sd.code)
            session.add(srow)
        values = {
            "category_id": known_categories[sd.category].id, "name_zh": sd.name_zh, "name_en": sd.name_en,
            "description_zh": sd.description_zh, "description_en": sd.description_en,
            "keywords_zh": list(sd.keywords_zh), "keywords_en": list(sd.keywords_en), "active": sd.active,
            "sort": sd.sort,
        }
        count(created, apply(srow, values))
    await session.flush()
    replanned: list[Provider] = []
    for pd in cat.providers:
        prow = known_providers.get(pd.code)
        if prow is not None and only_new:
            result.unchanged += 1
            continue
        created = prow is None
        if prow is None:
            prow = known_providers[pd.code] = Provider(code=pd.code, rating_sum=0, rating_count=0, status="active")
            session.add(prow)
        plan_before = (prow.plan, prow.slot_minutes, prow.capacity, prow.works_holidays)
        values = {
            "name_zh": pd.name_zh, "name_en": pd.name_en, "phone": pd.phone, "contact_name": pd.contact_name,
            "lang": pd.lang,
            "areas": list(pd.areas), "plan": list(pd.plan), "slot_minutes": pd.slot_minutes,
            "capacity": pd.capacity, "lead_minutes": pd.lead_minutes, "works_holidays": pd.works_holidays,
        }
        changed = apply(prow, values)
        await session.flush()
        wanted = {known_services[code].id for code in pd.services}
        have = set(await session.scalars(select(ProviderService.service_id).where(ProviderService.provider_id == prow.id)))
        if wanted != have:
            changed = True
            await session.execute(
                delete(ProviderService).where(
                    ProviderService.provider_id == prow.id, ProviderService.service_id.in_(have - wanted)
                )
            )
            session.add_all(ProviderService(provider_id=prow.id, service_id=sid) for sid in wanted - have)
        if not created and plan_before != (prow.plan, prow.slot_minutes, prow.capacity, prow.works_holidays):
            replanned.append(prow)
        count(created, changed)
    holidays_changed = False
    for hd in cat.holidays:
        hrow = await session.get(Holiday, hd.day)
        if hrow is not None and only_new:
            result.unchanged += 1
            continue
        created = hrow is None
        if hrow is None:
            hrow = Holiday(day=hd.day)
            session.add(hrow)
        changed = apply(hrow, {"name_zh": hd.name_zh, "name_en": hd.name_en})
        holidays_changed = holidays_changed or created
        count(created, changed)
    await session.flush()
    if holidays_changed:
        replanned = [p for p in known_providers.values() if p.slots_until is not None]
    if replanned:
        await resync(session, replanned, now, zone)
    return result


async def import_file(db: Database, path: Path, now: datetime, zone: ZoneInfo, region: str = "CN") -> ImportResult:
    """Read and import a file in one transaction: all of it, or (on any problem) nothing."""
    cat = read_path(path, region)
    async with db.write() as session:
        return await import_catalogue(session, cat, now, zone)


async def load_shipped(db: Database, now: datetime, zone: ZoneInfo, region: str = "CN") -> ImportResult:
    """The demo catalogue that ships with the package: entries not yet in the database are added.

    Several instances may start at once: one that loses the race to insert retries and then
    finds the rows in place.
    """
    cat = shipped_catalogue(region)
    for attempt in range(3):
        try:
            async with db.write() as session:
                return await import_catalogue(session, cat, now, zone, only_new=True)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
