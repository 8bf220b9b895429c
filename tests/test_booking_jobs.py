"""Scheduled booking work driven by a controllable clock (JobRunner.run_once(now=…)): reminders the
day and the hour before (none when cancelled), unanswered dispatches, follow-up surveys, provider
scores and flags, suspension. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from test_booking_support import PB_PHONE, RESIDENT, RULES, T0, ZONE, get_booking, load, outbox, provider, slot_state

from helpline.booking.jobs import booking_jobs
from helpline.booking.models import COMPLETED, PROVIDER_SUSPENDED, Booking, Provider, Service
from helpline.booking.service import (
    BookingError,
    accept,
    book,
    cancel,
    find_booking,
    rate,
    reinstate_provider,
    reschedule,
    suspend_provider,
)
from helpline.booking.slots import ensure_slots, find_slots
from helpline.config import Settings
from helpline.db import Database
from helpline.jobs import JobRunner
from helpline.models import Conversation, Event

ADDRESS = "海曙区石碶街道雅戈尔大道100号"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


@pytest.fixture
def runner(db: Database, settings: Settings) -> JobRunner:
    return JobRunner(db, "test", booking_jobs(settings))


async def make(db: Database, slot: str, now: datetime = T0, urn: str = RESIDENT, *, accepted: bool = True) -> Booking:
    """A booking, accepted by its provider at once unless told otherwise (an unanswered one would
    time out and move on, which only the dispatch tests want)."""
    async with db.write() as s:
        b = await book(s, service_code="plumbing", slot_id=slot, urn=urn, name="张先生", address=ADDRESS,
                       rules=RULES, now=now, actor="test", channel="sms")
        if accepted:
            await accept(s, b, rules=RULES, now=now, actor="provider:test")
        return b


async def reminders(db: Database) -> list[str]:
    return [o.idempotency_key for o in await outbox(db, "reminder")]


async def test_reminders_the_day_before_and_the_hour_before(db: Database, runner: JobRunner) -> None:
    await load(db)
    b = await make(db, "pa-20261203-1000")  # Thursday 10:00, booked on Tuesday
    done = await runner.run_once(local(2, 9, 59), force=True)
    assert done["booking-reminders"] == 0 and await reminders(db) == []
    await runner.run_once(local(2, 10, 0), force=True)
    await runner.run_once(local(2, 10, 1), force=True)  # a second round: nothing twice
    assert await reminders(db) == [f"booking-{b.number}-remind-day-0"]
    (day,) = await outbox(db, "reminder")
    assert day.urn == RESIDENT and "明天" in day.body and b.number in day.body
    await runner.run_once(local(3, 8, 59), force=True)
    assert len(await reminders(db)) == 1
    await runner.run_once(local(3, 9, 0), force=True)
    await runner.run_once(local(3, 9, 30), force=True)
    assert await reminders(db) == [f"booking-{b.number}-remind-day-0", f"booking-{b.number}-remind-hour-0"]
    assert "1小时" in (await outbox(db, "reminder"))[-1].body


async def test_no_reminder_for_a_cancelled_booking_and_queued_ones_are_stopped(db: Database, runner: JobRunner) -> None:
    await load(db)
    gone = await make(db, "pa-20261203-1000")
    moved = await make(db, "pa-20261203-1300", urn="tel:+8613800138001")
    async with db.write() as s:
        await cancel(s, await find_booking(s, gone.number), rules=RULES, now=T0, actor="contact:1")
    await runner.run_once(local(2, 13, 0), force=True)
    assert await reminders(db) == [f"booking-{moved.number}-remind-day-0"]
    # Moved after its reminder was queued: the old one is stopped, the new time gets its own.
    async with db.write() as s:
        await reschedule(s, await find_booking(s, moved.number), "pa-20261204-1300", rules=RULES, now=local(2, 13, 5),
                         actor="contact:2")
    (old,) = await outbox(db, "reminder")
    assert old.status == "skipped" and old.last_error == "booking moved"
    await runner.run_once(local(3, 13, 0), force=True)
    assert await reminders(db) == [f"booking-{moved.number}-remind-day-0", f"booking-{moved.number}-remind-day-1"]
    async with db.write() as s:
        await cancel(s, await find_booking(s, moved.number), rules=RULES, now=local(3, 14), actor="contact:2")
    await runner.run_once(local(4, 12, 0), force=True)  # the hour before: cancelled, so nothing
    assert len(await reminders(db)) == 2
    assert [o.status for o in await outbox(db, "reminder")] == ["skipped", "skipped"]


async def test_a_late_booking_gets_only_the_hour_reminder(db: Database, runner: JobRunner) -> None:
    await load(db)
    b = await make(db, "pa-20261202-1000", now=local(1, 20))  # 14 hours ahead
    await runner.run_once(local(1, 20, 1), force=True)
    await runner.run_once(local(2, 9, 0), force=True)
    assert await reminders(db) == [f"booking-{b.number}-remind-hour-0"]


async def test_an_unanswered_dispatch_goes_to_the_next_provider(db: Database, runner: JobRunner) -> None:
    await load(db)
    b = await make(db, "pa-20261201-1300", accepted=False)  # 5 hours ahead: two hours to answer
    await runner.run_once(T0 + timedelta(hours=1, minutes=59), force=True)
    assert (await get_booking(db, b.number)).provider_id == (await provider(db, "pa")).id
    await runner.run_once(T0 + timedelta(hours=2), force=True)
    moved = await get_booking(db, b.number)
    assert moved.provider_id == (await provider(db, "pb")).id and moved.slot_id == "pb-20261201-1200"
    assert (await outbox(db, "dispatch"))[-1].urn == f"tel:{PB_PHONE}"
    assert await slot_state(db, "pa-20261201-1300") == (2, 0)
    async with db.read() as s:
        assert await s.scalar(select(Event.action).where(Event.action == "booking.timeout")) == "booking.timeout"


async def test_follow_up_survey_then_ratings_make_the_score(db: Database, runner: JobRunner, settings: Settings) -> None:
    await load(db)
    done = [await make(db, slot, urn=f"tel:+86138001380{i:02d}") for i, slot in
            enumerate(["pa-20261201-1000", "pa-20261201-1300", "pa-20261201-1500"])]
    cancelled = await make(db, "pa-20261201-1500", urn="tel:+8613800138099")
    async with db.write() as s:
        await cancel(s, await find_booking(s, cancelled.number), rules=RULES, now=T0, actor="contact:9")
    await runner.run_once(local(1, 17, 30), force=True)  # 15:00-17:00 not finished an hour ago yet
    assert len(await outbox(db, "survey")) == 2
    await runner.run_once(local(1, 18, 0), force=True)
    await runner.run_once(local(1, 18, 5), force=True)
    surveys = await outbox(db, "survey")
    assert sorted(o.urn for o in surveys) == sorted(b.urn for b in done)  # none for the cancelled booking
    assert all("1-5" in o.body for o in surveys)
    first = await get_booking(db, done[0].number)
    assert first.status == COMPLETED and first.survey_sent_at == local(1, 17, 30)
    async with db.read() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.contact_id == first.contact_id))
    assert conv.state["flow"] == "booking" and conv.state["booking"] == {"step": "rate", "target": first.id}

    rules = dataclasses.replace(RULES, min_score=settings.provider_min_score, min_ratings=settings.provider_min_ratings)
    for b, stars in zip(done, (1, 2, 2), strict=True):
        async with db.write() as s:
            await rate(s, await find_booking(s, b.number), stars, rules=rules, now=local(1, 19), actor="contact:x")
    pa = await provider(db, "pa")
    assert (pa.rating_count, pa.score) == (3, 1.67)
    assert pa.flagged_at == local(1, 19)
    async with db.read() as s:
        flagged = await s.scalar(select(Event).where(Event.action == "provider.flagged"))
    assert flagged.data == {"score": 1.67, "ratings": 3, "threshold": 3.0}


async def test_bad_ratings_are_refused_plainly(db: Database, runner: JobRunner) -> None:
    await load(db)
    b = await make(db, "pa-20261201-1000")
    async with db.write() as s:
        with pytest.raises(BookingError) as early:
            await rate(s, await find_booking(s, b.number), 5, rules=RULES, now=local(1, 11), actor="c")
    assert early.value.kind == "bad_state"
    await runner.run_once(local(1, 13, 30), force=True)
    for value in (0, 6, "5", 4.5, True):
        async with db.write() as s:
            with pytest.raises(BookingError) as bad:
                await rate(s, await find_booking(s, b.number), value, rules=RULES, now=local(1, 14), actor="c")
        assert bad.value.kind == "bad_rating" and "1 to 5" in bad.value.en
    async with db.write() as s:
        await rate(s, await find_booking(s, b.number), 4, rules=RULES, now=local(1, 14), actor="c")
    async with db.write() as s:
        with pytest.raises(BookingError) as twice:
            await rate(s, await find_booking(s, b.number), 5, rules=RULES, now=local(1, 14), actor="c")
    assert twice.value.kind == "already_rated"
    pa = await provider(db, "pa")
    assert (pa.rating_count, pa.score, pa.flagged_at) == (1, 4.0, None)


async def test_a_suspended_provider_gets_no_new_bookings(db: Database) -> None:
    await load(db)
    async with db.write() as s:
        pa = await s.scalar(select(Provider).where(Provider.code == "pa"))
        await suspend_provider(s, pa, now=T0, actor="user:admin", reason="complaints")
    assert (await provider(db, "pa")).status == PROVIDER_SUSPENDED
    with pytest.raises(BookingError) as info:
        await make(db, "pa-20261201-1300")
    assert info.value.kind == "provider_suspended" and info.value.http_status == 409
    async with db.write() as s:
        await ensure_slots(s, T0, ZONE)
    async with db.read() as s:
        plumbing = await s.scalar(select(Service.id).where(Service.code == "plumbing"))
        offered = {o.provider.code for o in await find_slots(s, plumbing, T0)}
    assert offered == {"pb"}
    async with db.write() as s:
        pa = await s.scalar(select(Provider).where(Provider.code == "pa"))
        await reinstate_provider(s, pa, now=T0, actor="user:admin")
    assert (await make(db, "pa-20261201-1300", accepted=False)).status == "confirmed"
    async with db.read() as s:
        actions = list(await s.scalars(select(Event.action).where(Event.subject_type == "provider").order_by(Event.id)))
    assert actions == ["provider.suspended", "provider.reinstated"]


def test_the_booking_settings_are_read_and_checked() -> None:
    from helpline.config import SettingsError

    env = {"HELPLINE_DATABASE_URL": "sqlite+aiosqlite:///x.db", "HELPLINE_BOOKING_CUTOFF_MINUTES": "90",
           "HELPLINE_PROVIDER_MIN_SCORE": "3.5", "HELPLINE_PROVIDER_MIN_RATINGS": "5"}
    s = Settings.from_env(env)
    assert (s.booking_cutoff_minutes, s.provider_min_score, s.provider_min_ratings) == (90, 3.5, 5)
    assert Settings.from_env({"HELPLINE_DATABASE_URL": "sqlite+aiosqlite:///x.db"}).provider_min_score == 3.0
    for name, value, words in (
        ("HELPLINE_PROVIDER_MIN_SCORE", "good", "HELPLINE_PROVIDER_MIN_SCORE must be a number"),
        ("HELPLINE_PROVIDER_MIN_SCORE", "7", "HELPLINE_PROVIDER_MIN_SCORE must be between 1 and 5"),
        ("HELPLINE_BOOKING_CUTOFF_MINUTES", "2h", "HELPLINE_BOOKING_CUTOFF_MINUTES must be a whole number"),
        ("HELPLINE_PROVIDER_MIN_RATINGS", "0", "HELPLINE_PROVIDER_MIN_RATINGS must be between 1 and 1000"),
    ):
        with pytest.raises(SettingsError) as info:
            Settings.from_env({**env, name: value})
        assert words in str(info.value)
