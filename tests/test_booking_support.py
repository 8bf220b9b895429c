"""Shared pieces of the booking tests: small catalogues, a clock, and ways to look at the results.

Two catalogues: ``DAYTIME`` has realistic working plans and a holiday, for tests that pass an
explicit ``now``; ``ROUND_THE_CLOCK`` has providers that work every hour of every day with no
notice, for tests that go through the running app (which uses the real clock).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from helpline.booking.catalogue import import_catalogue, parse_catalogue
from helpline.booking.models import Booking, Provider, Slot
from helpline.booking.service import Rules
from helpline.db import Database
from helpline.models import OutboxItem, utcnow

ZONE = ZoneInfo("Asia/Shanghai")
RULES = Rules(zone=ZONE)
# Tuesday 1 December 2026, 08:00 in Ningbo.
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=ZONE).astimezone(UTC)
RESIDENT = "tel:+8613800138000"
PA_PHONE, PB_PHONE, VET_PHONE = "+8613900000001", "+8613900000002", "+8613900000003"

# The categories and services every test catalogue shares; the catalogues differ in providers.
SERVICES = """
categories:
  - {code: repair, zh: 家庭维修, en: Home repairs, sort: 1}
  - {code: farm, zh: 农业生产服务, en: Farm services, sort: 2}
services:
  - code: plumbing
    category: repair
    zh: 水管维修疏通
    en: Plumbing
    keywords_zh: [水管, 漏水, 马桶, 下水道, 水管工]
    keywords_en: [plumber, pipe, leak, drain]
  - code: electrician
    category: repair
    zh: 电工维修
    en: Electrician
    keywords_zh: [电工, 插座, 跳闸]
    keywords_en: [electrician, socket, wiring]
  - code: vet
    category: farm
    zh: 兽医出诊
    en: Vet visit
    keywords_zh: [兽医, 羊, 牛, 猪]
    keywords_en: [vet, goats, cows, pigs]
"""

DAYTIME = SERVICES + f"""
providers:
  - code: pa
    zh: 甲水电
    en: Alpha Plumbing
    phone: "{PA_PHONE}"
    services: [plumbing, electrician]
    plan: "mon-sat 08:00-12:00 13:00-17:00"
    slot_minutes: 120
    capacity: 2
    lead_hours: 2
  - code: pb
    zh: 乙管道
    en: Beta Drains
    phone: "{PB_PHONE}"
    services: [plumbing]
    areas: [石碶街道, 鼓楼街道]
    plan: "daily 08:00-18:00"
    slot_minutes: 120
    capacity: 1
    lead_hours: 1
    works_holidays: true
  - code: vet1
    zh: 鄞江兽医
    en: Yinjiang Vets
    phone: "{VET_PHONE}"
    lang: en
    services: [vet]
    areas: [古林镇, 鄞江镇]
    plan: "mon-fri 09:00-11:00"
    slot_minutes: 120
    capacity: 1
    lead_hours: 24
holidays:
  - {{date: 2026-12-10, zh: 测试假日, en: Test holiday}}
"""

ROUND_THE_CLOCK = SERVICES + f"""
providers:
  - code: pa
    zh: 甲水电
    en: Alpha Plumbing
    phone: "{PA_PHONE}"
    services: [plumbing]
    plan: "daily 00:00-24:00"
    slot_minutes: 60
    capacity: 3
    lead_hours: 0
    works_holidays: true
  - code: pb
    zh: 乙管道
    en: Beta Drains
    phone: "{PB_PHONE}"
    services: [plumbing]
    plan: "daily 00:00-24:00"
    slot_minutes: 60
    capacity: 1
    lead_hours: 0
    works_holidays: true
  - code: vet1
    zh: 鄞江兽医
    en: Yinjiang Vets
    phone: "{VET_PHONE}"
    lang: en
    services: [vet]
    plan: "daily 00:00-24:00"
    slot_minutes: 60
    capacity: 1
    lead_hours: 0
    works_holidays: true
  - code: day
    zh: 白班电工
    en: Day Electricians
    phone: "+8613900000004"
    services: [electrician]
    plan: "daily 09:00-17:00"
    slot_minutes: 120
    capacity: 1
    lead_hours: 0
"""


async def load(db: Database, text: str = DAYTIME, now: datetime | None = None) -> None:
    async with db.write() as session:
        await import_catalogue(session, parse_catalogue(text, "test.yaml"), now or T0, ZONE)


async def outbox(db: Database, kind: str | None = None, urn: str | None = None) -> list[OutboxItem]:
    async with db.read() as session:
        query = select(OutboxItem).order_by(OutboxItem.id)
        if kind is not None:
            query = query.where(OutboxItem.kind == kind)
        if urn is not None:
            query = query.where(OutboxItem.urn == urn)
        return list(await session.scalars(query))


async def slot_state(db: Database, slot_id: str) -> tuple[int, int]:
    async with db.read() as session:
        slot = await session.get(Slot, slot_id)
        assert slot is not None
        return slot.capacity, slot.booked


async def count_bookings(db: Database, *where: Any) -> int:
    async with db.read() as session:
        return await session.scalar(select(func.count()).select_from(Booking).where(*where)) or 0


async def get_booking(db: Database, number: str) -> Booking:
    async with db.read() as session:
        booking = await session.scalar(select(Booking).where(Booking.number == number))
        assert booking is not None
        return booking


async def provider(db: Database, code: str) -> Provider:
    async with db.read() as session:
        p = await session.scalar(select(Provider).where(Provider.code == code))
        assert p is not None
        return p


def next_hour_slot(code: str, hours_ahead: int = 3) -> str:
    """The id of a ROUND_THE_CLOCK slot starting ``hours_ahead`` whole hours from the real now."""
    local = utcnow().astimezone(ZONE).replace(minute=0, second=0, microsecond=0)
    start = local + timedelta(hours=hours_ahead)
    return f"{code}-{start:%Y%m%d}-{start:%H%M}"


async def quiet_jobs(db: Database, settings: Any) -> None:
    """Hold the app's scheduled jobs for a day, so a test on the running app (real clock) is not
    raced by a background round; the jobs themselves are tested with explicit clocks."""
    from helpline.app import build_jobs
    from helpline.models import JobLease

    async with db.write() as session:
        for job in build_jobs(settings):
            session.add(JobLease(name=job.name, next_run_at=utcnow() + timedelta(days=1)))
