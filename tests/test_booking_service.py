"""The booking service with an explicit clock, on SQLite and PostgreSQL: slots from plans, seats,
refusals that write nothing, cancel/reschedule with the cut-off, provider accept/decline with
re-dispatch, and no overbooking between two engines (two processes' worth of connections)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from test_booking_support import (
    DAYTIME,
    PA_PHONE,
    PB_PHONE,
    RESIDENT,
    RULES,
    T0,
    ZONE,
    count_bookings,
    get_booking,
    load,
    outbox,
    slot_state,
)

from helpline.booking.catalogue import import_catalogue, parse_catalogue
from helpline.booking.models import ACCEPTED, CANCELLED, CONFIRMED, REFERRED, Booking, Dispatch, Provider, Service, Slot
from helpline.booking.service import (
    BookingError,
    accept,
    book,
    cancel,
    decline,
    find_booking,
    reschedule,
)
from helpline.booking.slots import ensure_slots, find_slots, parse_plan
from helpline.db import Database
from helpline.models import Conversation, Event, OutboxItem

ADDRESS = "海曙区石碶街道雅戈尔大道100号"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


async def make(db: Database, slot: str, *, service: str = "plumbing", now: datetime = T0, urn: str = RESIDENT,
               address: str = ADDRESS) -> Booking:
    async with db.write() as s:
        return await book(s, service_code=service, slot_id=slot, urn=urn, name="张先生", address=address,
                          rules=RULES, now=now, actor="test", channel="sms")


async def refused(db: Database, call) -> BookingError:  # type: ignore[no-untyped-def]
    with pytest.raises(BookingError) as info:
        async with db.write() as s:
            await call(s)
    return info.value


async def test_slots_follow_working_plans_holidays_and_notice(db: Database) -> None:
    await load(db)
    async with db.write() as s:
        created = await ensure_slots(s, T0, ZONE)
        again = await ensure_slots(s, T0, ZONE)
    assert created > 0 and again == 0
    async with db.read() as s:
        ids = set(await s.scalars(select(Slot.id)))
        slot = await s.get(Slot, "pa-20261201-1000")
        plumbing = await s.scalar(select(Service.id).where(Service.code == "plumbing"))
        first = await find_slots(s, plumbing, T0, limit=3)
    # Alpha works Mon-Sat 08-12 and 13-17 in 2-hour slots; not on Sunday, not on the holiday.
    assert {"pa-20261201-0800", "pa-20261201-1000", "pa-20261201-1300", "pa-20261201-1500"} <= ids
    assert "pa-20261201-1200" not in ids and "pa-20261206-1000" not in ids and "pa-20261210-1000" not in ids
    assert "pb-20261210-1000" in ids  # Beta works holidays
    assert slot is not None and slot.capacity == 2 and slot.booked == 0
    assert slot.starts_at == local(1, 10) and slot.ends_at == local(1, 12)
    # At 08:00: Alpha needs 2 hours' notice, Beta 1 hour; Beta's 08:00 has begun.
    assert [(o.slot.id, o.slot.starts_at) for o in first][:2] == [
        ("pa-20261201-1000", local(1, 10)), ("pb-20261201-1000", local(1, 10))
    ]


def test_plans_in_both_forms() -> None:
    assert parse_plan("mon-fri 08:00-12:00 13:00-17:00; sat 09:00-12:00") == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "hours": ["08:00-12:00", "13:00-17:00"]},
        {"days": ["sat"], "hours": ["09:00-12:00"]},
    ]
    assert parse_plan([{"days": "daily", "hours": ["00:00-24:00"]}])[0]["days"] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


async def test_a_booking_takes_a_seat_and_is_sent_to_the_provider(db: Database) -> None:
    await load(db)
    b = await make(db, "pa-20261201-1000")
    assert re.fullmatch(r"B\d{7}", b.number) and len(b.id) == 32
    assert b.status == CONFIRMED and b.starts_at == local(1, 10)
    assert await slot_state(db, "pa-20261201-1000") == (2, 1)
    (job,) = await outbox(db, "dispatch")
    assert job.urn == f"tel:{PA_PHONE}"
    assert f"Y {b.number}" in job.body and f"N {b.number}" in job.body and ADDRESS in job.body
    assert "12月1日(周二)10:00-12:00" in job.body
    async with db.read() as s:
        actions = set(await s.scalars(select(Event.action).where(Event.subject_id == b.id)))
        dispatches = list(await s.scalars(select(Dispatch)))
    assert {"booking.created", "booking.dispatched"} <= actions
    assert len(dispatches) == 1 and dispatches[0].answer is None


@pytest.mark.parametrize(
    ("service", "slot", "now", "address", "kind", "words"),
    [
        ("massage", "pa-20261201-1000", T0, ADDRESS, "unknown_service", "unknown service 'massage'"),
        ("plumbing", "no-such-slot", T0, ADDRESS, "unknown_slot", "no slot 'no-such-slot'"),
        ("plumbing", "pa-20261130-1000", T0, ADDRESS, "slot_past", "already begun or is over"),
        ("plumbing", "pb-20261201-0800", T0, ADDRESS, "slot_past", "already begun"),
        ("plumbing", "pa-20261201-0900", T0, ADDRESS, "outside_hours", "outside Alpha Plumbing's working hours"),
        ("plumbing", "pa-20261206-1000", T0, ADDRESS, "outside_hours", "outside Alpha Plumbing's working hours"),
        ("plumbing", "pa-20261210-1000", T0, ADDRESS, "outside_hours", "Test holiday"),
        ("plumbing", "pa-20261201-1000", T0 + timedelta(minutes=1), ADDRESS, "too_soon", "2 hours' notice"),
        ("plumbing", "pa-20270301-1000", T0, ADDRESS, "too_far", "days ahead"),
        ("plumbing", "vet1-20261202-0900", T0, ADDRESS, "unknown_slot", "not a slot of service 'plumbing'"),
        ("plumbing", "pb-20261201-1000", T0, "海曙区古林镇张家村5号", "not_covered", "does not serve that address"),
    ],
)
async def test_refusals_say_why_and_write_nothing(db: Database, service, slot, now, address, kind, words) -> None:  # type: ignore[no-untyped-def]
    await load(db)
    async with db.read() as s:
        slots_before = await s.scalar(select(func.count()).select_from(Slot))
    exc = await refused(db, lambda s: book(s, service_code=service, slot_id=slot, urn=RESIDENT, name="张", address=address,
                                           rules=RULES, now=now, actor="test", channel="sms"))
    assert exc.kind == kind and words in exc.en, exc.en
    assert exc.zh and exc.http_status in (400, 409)
    assert await count_bookings(db) == 0
    assert await outbox(db) == []
    async with db.read() as s:
        assert await s.scalar(select(func.max(Slot.booked))) in (None, 0)
        assert await s.scalar(select(func.count()).select_from(Slot)) == slots_before


async def test_a_full_slot_refuses_the_next_booking(db: Database) -> None:
    await load(db)
    await make(db, "pb-20261201-1000")
    exc = await refused(db, lambda s: book(s, service_code="plumbing", slot_id="pb-20261201-1000", urn="tel:+8613800138001",
                                           name="李", address=ADDRESS, rules=RULES, now=T0, actor="t", channel="sms"))
    assert exc.kind == "slot_full" and exc.http_status == 409
    assert await slot_state(db, "pb-20261201-1000") == (1, 1)
    assert await count_bookings(db) == 1


async def test_two_engines_booking_one_slot_at_once_never_overbook(db: Database) -> None:
    """Two engines stand for two server processes: 24 attempts at a slot of capacity 2."""
    await load(db)
    other = Database.from_url(db.engine.url.render_as_string(hide_password=False))
    outcomes: list[str] = []

    async def attempt(i: int) -> None:
        engine = db if i % 2 else other
        try:
            async with engine.write() as s:
                await book(s, service_code="plumbing", slot_id="pa-20261201-1300", urn=f"tel:+86138001380{i:02d}",
                           name=f"居民{i}", address=ADDRESS, rules=RULES, now=T0, actor="t", channel="sms")
            outcomes.append("booked")
        except BookingError as exc:
            outcomes.append(exc.kind)

    try:
        await asyncio.gather(*(attempt(i) for i in range(24)))
    finally:
        await other.dispose()
    assert sorted(outcomes) == ["booked"] * 2 + ["slot_full"] * 22
    assert await slot_state(db, "pa-20261201-1300") == (2, 2)
    assert await count_bookings(db, Booking.slot_id == "pa-20261201-1300") == 2


async def test_cancel_gives_the_seat_back_before_the_cutoff_only(db: Database) -> None:
    await load(db)
    b = await make(db, "pa-20261201-1300")
    late = await refused(db, lambda s: _cancel(s, b.id, T0 + timedelta(hours=3, minutes=1)))  # 11:01, cut-off 11:00
    assert late.kind == "too_late" and late.http_status == 409 and "2 hours" in late.en
    assert (await get_booking(db, b.number)).status == CONFIRMED
    assert await slot_state(db, "pa-20261201-1300") == (2, 1)
    async with db.write() as s:
        await _cancel(s, b.id, T0 + timedelta(hours=3))
    again = await get_booking(db, b.number)
    assert again.status == CANCELLED and not again.holds_seat and again.cancelled_at == T0 + timedelta(hours=3)
    assert await slot_state(db, "pa-20261201-1300") == (2, 0)
    withdrawn = [o for o in await outbox(db, "dispatch") if "取消" in o.body]
    assert len(withdrawn) == 1 and withdrawn[0].urn == f"tel:{PA_PHONE}"
    async with db.write() as s:  # cancelling twice changes nothing
        await _cancel(s, b.id, T0 + timedelta(hours=4))
    assert await slot_state(db, "pa-20261201-1300") == (2, 0)
    # An operator may cancel after the cut-off.
    b2 = await make(db, "pa-20261201-1500")
    async with db.write() as s:
        row = await find_booking(s, b2.number)
        await cancel(s, row, rules=RULES, now=T0 + timedelta(hours=6), actor="user:op", force=True)
    assert (await get_booking(db, b2.number)).status == CANCELLED


async def _cancel(s, booking_id: str, now: datetime) -> None:  # type: ignore[no-untyped-def]
    row = await find_booking(s, booking_id, lock=True)
    await cancel(s, row, rules=RULES, now=now, actor="contact:1")


async def test_reschedule_moves_the_seat_or_leaves_the_booking_as_it_was(db: Database) -> None:
    await load(db)
    b = await make(db, "pa-20261202-1000")
    await make(db, "pb-20261202-1400", urn="tel:+8613800138009")  # Beta's 14:00 is now full
    async with db.write() as s:
        row = await find_booking(s, b.number, lock=True)
        await reschedule(s, row, "pa-20261202-1300", rules=RULES, now=T0, actor="contact:1")
    moved = await get_booking(db, b.number)
    assert moved.slot_id == "pa-20261202-1300" and moved.starts_at == local(2, 13) and moved.reschedules == 1
    assert await slot_state(db, "pa-20261202-1000") == (2, 0)
    assert await slot_state(db, "pa-20261202-1300") == (2, 1)
    assert any("改期" in o.body for o in await outbox(db, "dispatch"))
    full = await refused(db, lambda s: _move(s, b.number, "pb-20261202-1400", T0))
    assert full.kind == "slot_full"
    assert (await get_booking(db, b.number)).slot_id == "pa-20261202-1300"
    assert await slot_state(db, "pa-20261202-1300") == (2, 1)
    late = await refused(db, lambda s: _move(s, b.number, "pa-20261202-1500", local(2, 11, 30)))
    assert late.kind == "too_late"


async def _move(s, number: str, slot: str, now: datetime) -> None:  # type: ignore[no-untyped-def]
    row = await find_booking(s, number, lock=True)
    await reschedule(s, row, slot, rules=RULES, now=now, actor="contact:1")


async def test_accept_and_who_may_answer(db: Database) -> None:
    await load(db)
    b = await make(db, "pa-20261201-1300")
    async with db.read() as s:
        pa = await s.scalar(select(Provider).where(Provider.code == "pa"))
        pb = await s.scalar(select(Provider).where(Provider.code == "pb"))
    wrong = await refused(db, lambda s: _accept(s, b.number, pb))
    assert wrong.kind == "not_provider"
    async with db.write() as s:
        await _accept(s, b.number, pa)
        await _accept(s, b.number, pa)  # twice: no change
    assert (await get_booking(db, b.number)).status == ACCEPTED
    (notice,) = await outbox(db, "notice", RESIDENT)
    assert "甲水电已接单" in notice.body


async def _accept(s, number: str, provider) -> None:  # type: ignore[no-untyped-def]
    row = await find_booking(s, number, lock=True)
    await accept(s, row, rules=RULES, now=T0, actor=f"provider:{provider.code}", provider=provider)


async def test_decline_redispatches_to_the_next_provider_then_to_an_operator(db: Database) -> None:
    await load(db)
    b = await make(db, "pa-20261201-1000")
    async with db.write() as s:
        row = await find_booking(s, b.number, lock=True)
        await decline(s, row, rules=RULES, now=T0 + timedelta(minutes=5), actor="provider:pa", reason="没空")
    moved = await get_booking(db, b.number)
    assert (moved.slot_id, moved.status, moved.starts_at) == ("pb-20261201-1000", CONFIRMED, local(1, 10))
    assert await slot_state(db, "pa-20261201-1000") == (2, 0)
    assert await slot_state(db, "pb-20261201-1000") == (1, 1)
    sent_to = [o.urn for o in await outbox(db, "dispatch")]
    assert sent_to == [f"tel:{PA_PHONE}", f"tel:{PB_PHONE}"]
    (notice,) = await outbox(db, "notice", RESIDENT)
    assert "乙管道" in notice.body
    async with db.write() as s:
        row = await find_booking(s, b.number, lock=True)
        await decline(s, row, rules=RULES, now=T0 + timedelta(minutes=10), actor="provider:pb")
    referred = await get_booking(db, b.number)
    assert referred.status == REFERRED and not referred.holds_seat
    assert await slot_state(db, "pb-20261201-1000") == (1, 0)
    async with db.read() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.contact_id == referred.contact_id,
                                                          Conversation.channel == "sms"))
        handoff = await s.scalar(select(Event).where(Event.action == "handoff.requested"))
        answers = list(await s.scalars(select(Dispatch.answer).order_by(Dispatch.id)))
    assert conv is not None and conv.status == "waiting"
    assert handoff is not None and handoff.data["reason"] == "booking_declined"
    assert answers == ["declined", "declined"]
    assert any("话务员" in o.body for o in await outbox(db, "notice", RESIDENT))


async def test_the_service_is_callable_for_an_operator_with_an_actor(db: Database) -> None:
    await load(db)
    b = await make(db, "pa-20261201-1300")
    async with db.write() as s:
        row = await find_booking(s, b.number, lock=True)
        await accept(s, row, rules=RULES, now=T0, actor="user:operator1")
    async with db.read() as s:
        ev = await s.scalar(select(Event).where(Event.action == "booking.accepted"))
    assert ev.actor == "user:operator1" and ev.subject_type == "booking" and ev.subject_id == b.id


async def test_catalogue_changes_rebuild_future_slots(db: Database) -> None:
    await load(db)
    b = await make(db, "pa-20261202-1500")
    async with db.write() as s:
        await ensure_slots(s, T0, ZONE)
    changed = DAYTIME.replace('plan: "mon-sat 08:00-12:00 13:00-17:00"', 'plan: "mon-sat 08:00-12:00"').replace(
        "    capacity: 2\n", "    capacity: 4\n")
    async with db.write() as s:
        await import_catalogue(s, parse_catalogue(changed, "changed.yaml"), T0, ZONE)
    async with db.read() as s:
        kept = await s.get(Slot, "pa-20261202-1500")
        gone = await s.get(Slot, "pa-20261202-1300")
        morning = await s.get(Slot, "pa-20261202-1000")
    assert gone is None  # never booked, no longer planned: removed
    assert kept is not None and kept.capacity == 0 and kept.booked == 1  # the booking in it stands, nothing more
    assert morning is not None and morning.capacity == 4
    assert (await get_booking(db, b.number)).status == CONFIRMED


async def test_outbox_rows_have_idempotent_keys(db: Database) -> None:
    await load(db)
    b = await make(db, "pa-20261201-1300")
    async with db.read() as s:
        keys = list(await s.scalars(select(OutboxItem.idempotency_key)))
    assert len(keys) == 1 and re.fullmatch(rf"booking-{b.number}-dispatch-\d+", keys[0])
