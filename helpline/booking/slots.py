"""Slots from providers' working plans: cut each working window into slots, skip holidays, keep
the rows in step with the plan, and find the free ones.

A plan is weekly and in the centre's time zone: ``[{"days": ["mon", …], "hours": ["08:00-12:00"]}]``.
Slots are rows (so capacity can be enforced by the database) generated ahead for a horizon by a
job, and on demand for a day someone asks about. Their ids are stable and readable,
``<provider>-<YYYYMMDD>-<HHMM>`` in local time, so regenerating a plan names the same slot the
same way and a slot id alone says which provider, day and time it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.booking.models import PROVIDER_ACTIVE, Booking, Holiday, Provider, ProviderService, Slot

HORIZON_DAYS = 14  # slots exist this many days ahead
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_SLOT_ID = re.compile(r"^(?P<code>[a-z0-9][a-z0-9-]{0,31})-(?P<day>\d{8})-(?P<hm>\d{4})$")


class PlanError(ValueError):
    """A working plan that cannot be read; the message says which part."""


@dataclass(frozen=True, slots=True)
class Window:
    """Working time within a day, in minutes from local midnight (end may be 1440)."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"


def parse_days(value: Any) -> list[str]:
    """``[mon, tue]``, ``"mon-fri"``, ``"sat,sun"``, ``"daily"`` → day codes in week order."""
    items = value if isinstance(value, list) else re.split(r"[,|\s]+", str(value).strip())
    wanted: set[str] = set()
    for raw in items:
        item = str(raw).strip().lower()
        if not item:
            continue
        if item in ("daily", "every", "all"):
            wanted.update(DAYS)
        elif "-" in item:
            first, _, last = item.partition("-")
            if first not in DAYS or last not in DAYS:
                raise PlanError(f"unknown day range {raw!r} (use mon-fri)")
            i, j = DAYS.index(first), DAYS.index(last)
            wanted.update(DAYS[i : j + 1] if i <= j else DAYS[i:] + DAYS[: j + 1])
        elif item in DAYS:
            wanted.add(item)
        else:
            raise PlanError(f"unknown day {raw!r} (use mon, tue, wed, thu, fri, sat, sun)")
    if not wanted:
        raise PlanError("a plan entry names no days")
    return [d for d in DAYS if d in wanted]


def parse_window(value: Any) -> Window:
    m = _WINDOW.match(str(value))
    if not m:
        raise PlanError(f"working hours {value!r} are not like 08:00-12:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60 or start >= end:
        raise PlanError(f"working hours {value!r} do not make a period within one day")
    return Window(start, end)


def parse_plan(value: Any) -> list[dict[str, list[str]]]:
    """A plan in its stored form from a list of entries or the compact text
    ``"mon-fri 08:00-12:00 13:00-17:00; sat 09:00-12:00"``."""
    if isinstance(value, str):
        entries: list[Any] = []
        for part in (p.strip() for p in value.split(";")):
            if not part:
                continue
            words = part.split()
            hours = [w for w in words if _WINDOW.match(w)]
            days = [w for w in words if not _WINDOW.match(w)]
            entries.append({"days": days, "hours": hours})
    elif isinstance(value, list):
        entries = value
    else:
        raise PlanError("a plan is a list of {days, hours} entries or text like 'mon-fri 08:00-12:00'")
    plan: list[dict[str, list[str]]] = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) - {"days", "hours", "__line__"}:
            raise PlanError("each plan entry has exactly 'days' and 'hours'")
        hours = entry.get("hours")
        if isinstance(hours, str):
            hours = [h for h in re.split(r"[,|\s]+", hours) if h]
        if not hours:
            raise PlanError("a plan entry has no working hours")
        windows = sorted((parse_window(h) for h in hours), key=lambda w: w.start)
        for a, b in zip(windows, windows[1:], strict=False):
            if b.start < a.end:
                raise PlanError(f"working hours {a} and {b} overlap")
        plan.append({"days": parse_days(entry.get("days", [])), "hours": [str(w) for w in windows]})
    if not plan:
        raise PlanError("the plan is empty")
    return plan


def slot_id(provider_code: str, local_start: datetime) -> str:
    return f"{provider_code}-{local_start:%Y%m%d}-{local_start:%H%M}"


def parse_slot_id(value: str) -> tuple[str, datetime] | None:
    """(provider code, naive local start) from a slot id, or None when it is not one."""
    m = _SLOT_ID.match(value)
    if not m:
        return None
    try:
        start = datetime.strptime(m["day"] + m["hm"], "%Y%m%d%H%M")
    except ValueError:
        return None
    return m["code"], start


def planned(provider: Provider, day: date, zone: ZoneInfo, holidays: set[date]) -> list[tuple[str, datetime, datetime]]:
    """The provider's slots on one local day: (id, start UTC, end UTC)."""
    if day in holidays and not provider.works_holidays:
        return []
    weekday = DAYS[day.weekday()]
    length = provider.slot_minutes
    out: list[tuple[str, datetime, datetime]] = []
    midnight = datetime.combine(day, time(0))
    for entry in provider.plan or []:
        if weekday not in entry.get("days", []):
            continue
        for text in entry.get("hours", []):
            window = parse_window(text)
            at = window.start
            while at + length <= window.end:
                local = midnight + timedelta(minutes=at)
                start = local.replace(tzinfo=zone).astimezone(UTC)
                end = (local + timedelta(minutes=length)).replace(tzinfo=zone).astimezone(UTC)
                out.append((slot_id(provider.code, local), start, end))
                at += length
    return sorted(out, key=lambda s: s[1])


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Local midnight of ``day``, in UTC."""
    return datetime.combine(day, time(0)).replace(tzinfo=zone).astimezone(UTC)


async def holiday_days(session: AsyncSession) -> set[date]:
    return set(await session.scalars(select(Holiday.day)))


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def sync_slots(
    session: AsyncSession, provider: Provider, first: date, last: date, zone: ZoneInfo, holidays: set[date]
) -> int:
    """Make the provider's slot rows for local days ``first``..``last`` match its plan.

    Missing slots are inserted (a concurrent insert of the same slot is ignored), capacities
    follow the plan, and slots the plan no longer has are deleted when nobody ever booked them,
    else closed (capacity 0: the bookings already in them stand). Returns slots inserted.
    """
    if last < first:
        return 0
    desired: dict[str, tuple[datetime, datetime]] = {}
    day = first
    while day <= last:
        for sid, start, end in planned(provider, day, zone, holidays):
            desired[sid] = (start, end)
        day += timedelta(days=1)
    lo, hi = day_start(first, zone), day_start(last + timedelta(days=1), zone)
    existing = {
        s.id: s
        for s in await session.scalars(
            select(Slot).where(Slot.provider_id == provider.id, Slot.starts_at >= lo, Slot.starts_at < hi)
        )
    }
    missing = [
        {"id": sid, "provider_id": provider.id, "starts_at": start, "ends_at": end,
         "capacity": provider.capacity, "booked": 0}
        for sid, (start, end) in desired.items()
        if sid not in existing
    ]
    if missing:
        stmt = _insert(session)(Slot).on_conflict_do_nothing()
        await session.execute(stmt, missing)
    stale_capacity = [sid for sid, s in existing.items() if sid in desired and s.capacity != provider.capacity]
    if stale_capacity:
        await session.execute(
            update(Slot).where(Slot.id.in_(stale_capacity)).values(capacity=provider.capacity),
            execution_options={"synchronize_session": False},
        )
    gone = [sid for sid in existing if sid not in desired]
    if gone:
        used = exists().where(Booking.slot_id == Slot.id)
        await session.execute(
            delete(Slot).where(Slot.id.in_(gone), Slot.booked == 0, ~used),
            execution_options={"synchronize_session": False},
        )
        await session.execute(
            update(Slot).where(Slot.id.in_(gone)).values(capacity=0),
            execution_options={"synchronize_session": False},
        )
    for s in existing.values():  # the ORM copies may be stale after the bulk statements
        session.expire(s)
    return len(missing)


async def ensure_slots(
    session: AsyncSession, now: datetime, zone: ZoneInfo, days: int = HORIZON_DAYS,
    providers: Sequence[Provider] | None = None,
) -> int:
    """Extend every active provider's slots to ``days`` ahead of today; returns slots created."""
    today = local_day(now, zone)
    target = today + timedelta(days=days)
    if providers is None:
        providers = list(await session.scalars(select(Provider).where(Provider.status == PROVIDER_ACTIVE)))
    behind = [p for p in providers if p.slots_until is None or p.slots_until < target]
    if not behind:
        return 0
    holidays = await holiday_days(session)
    created = 0
    for provider in behind:
        first = today if provider.slots_until is None or provider.slots_until < today else provider.slots_until + timedelta(days=1)
        created += await sync_slots(session, provider, first, target, zone, holidays)
        provider.slots_until = target
    return created


async def resync(session: AsyncSession, providers: Iterable[Provider], now: datetime, zone: ZoneInfo) -> None:
    """After a plan or the holidays changed: rebuild the future slots of these providers."""
    holidays = await holiday_days(session)
    today = local_day(now, zone)
    for provider in providers:
        last = max(provider.slots_until or today, today + timedelta(days=HORIZON_DAYS))
        await sync_slots(session, provider, today, last, zone, holidays)
        provider.slots_until = last


def covers(provider: Provider, address: str, known_areas: set[str]) -> bool:
    """Whether the provider serves the address: it serves everywhere (no areas listed), or the
    address names one of its areas, or the address names no area we know (then the provider
    and the operator judge, rather than the line refusing a booking it cannot place)."""
    areas = [str(a) for a in provider.areas or []]
    if not areas:
        return True
    named = {a for a in known_areas if a and a in address}
    return not named or any(a in address for a in areas)


@dataclass(frozen=True, slots=True)
class Offer:
    slot: Slot
    provider: Provider


async def find_slots(
    session: AsyncSession,
    service_id: int,
    now: datetime,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    free_only: bool = True,
    exclude_providers: Iterable[int] = (),
    address: str | None = None,
) -> list[Offer]:
    """Bookable slots of a service's active providers, earliest first (better-rated first at the
    same time): after each provider's minimum notice, within [start, end)."""
    start = max(start or now, now)
    query = (
        select(Slot, Provider)
        .join(Provider, Provider.id == Slot.provider_id)
        .join(ProviderService, (ProviderService.provider_id == Provider.id) & (ProviderService.service_id == service_id))
        .where(Provider.status == PROVIDER_ACTIVE, Slot.starts_at >= start, Slot.capacity > 0)
        .order_by(Slot.starts_at, Slot.id)
    )
    if end is not None:
        query = query.where(Slot.starts_at < end)
    if free_only:
        query = query.where(Slot.booked < Slot.capacity)
    excluded = set(exclude_providers)
    known = await known_areas(session) if address else set()
    offers: list[Offer] = []
    for slot, provider in (await session.execute(query)).all():
        if provider.id in excluded or slot.starts_at < now + timedelta(minutes=provider.lead_minutes):
            continue
        if address and not covers(provider, address, known):
            continue
        offers.append(Offer(slot, provider))
    offers.sort(key=lambda o: (o.slot.starts_at, -(o.provider.score or 0.0), o.slot.id))
    return offers[:limit] if limit is not None else offers


async def known_areas(session: AsyncSession) -> set[str]:
    return {str(a) for areas in await session.scalars(select(Provider.areas)) for a in areas or []}
