"""Scheduled booking work: slots ahead, reminders, unanswered dispatches, follow-up surveys.

Each job is a plain function of the database and the time (tests pass any ``now``), safe to run
twice for the same moment: rows are marked (``reminded_day_at``, ``survey_sent_at``) in the same
transaction that queues the message, and the outbox keys (``booking-B1234567-remind-day-0``) make a
repeat after a crash a no-op.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from helpline.booking import texts
from helpline.booking.models import ACTIVE, COMPLETED, Booking, Dispatch
from helpline.booking.service import DISPATCH_TIMEOUT, BookingError, Rules, booking_facts, decline
from helpline.booking.slots import ensure_slots
from helpline.contacts import contact_for, current_conversation
from helpline.db import Database
from helpline.jobs import Job
from helpline.outbox import channel_for, enqueue

DAY_BEFORE = timedelta(hours=24)
HOUR_BEFORE = timedelta(hours=1)
SURVEY_AFTER = timedelta(hours=1)  # after the slot ends, time for the job to be finished
SURVEY_UNTIL = timedelta(days=3)  # a survey later than this is pointless
BATCH = 200


async def generate_slots(db: Database, now: datetime, rules: Rules) -> int:
    async with db.write() as session:
        return await ensure_slots(session, now, rules.zone)


async def send_reminders(db: Database, now: datetime, rules: Rules) -> int:
    """The day-before and hour-before reminders of active bookings, once each per agreed time.

    A reminder is only sent if the booking existed when it fell due (one made 3 hours ahead
    gets no "tomorrow" message), and never for a cancelled or referred booking.
    """
    sent = 0
    async with db.write() as session:
        for kind, ahead, marker in (("day", DAY_BEFORE, Booking.reminded_day_at), ("hour", HOUR_BEFORE, Booking.reminded_hour_at)):
            due = await session.scalars(
                select(Booking)
                .where(Booking.status.in_(ACTIVE), marker.is_(None), Booking.starts_at > now,
                       Booking.starts_at <= now + ahead)
                .order_by(Booking.starts_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)  # one being cancelled right now waits for the next round
            )
            for booking in due:
                if kind == "day":
                    booking.reminded_day_at = now
                else:
                    booking.reminded_hour_at = now
                if kind == "day" and booking.starts_at - now <= HOUR_BEFORE:
                    continue  # the hour reminder says it better
                if booking.scheduled_at > booking.starts_at - ahead:
                    continue  # booked (or moved) after the reminder was due: the confirmation said it
                service, provider = await booking_facts(session, booking)
                await enqueue(session, booking.notify_urn, texts.reminder(booking, service, provider, rules.zone, kind),
                              "reminder", key=f"booking-{booking.number}-remind-{kind}-{booking.reschedules}", now=now)
                sent += 1
    return sent


async def expire_dispatches(db: Database, now: datetime, rules: Rules) -> int:
    """A provider that does not answer in time is treated as declining: the next one is asked,
    or an operator. The deadline is two hours, or half the time left before the slot if less."""
    count = 0
    async with db.write() as session:
        rows = (await session.execute(
            select(Dispatch, Booking)
            .join(Booking, Booking.id == Dispatch.booking_id)
            .where(Dispatch.answer.is_(None), Booking.status.in_(ACTIVE))
            .order_by(Dispatch.sent_at)
            .limit(BATCH)
        )).all()
        for dispatch, booking in rows:
            deadline = min(dispatch.sent_at + DISPATCH_TIMEOUT, dispatch.sent_at + (booking.starts_at - dispatch.sent_at) / 2)
            if now < deadline:
                continue
            # The provider may be answering right now: take the booking's row (as its answer
            # does) and look again, so an acceptance is never overwritten by a timeout.
            await session.execute(select(Booking.id).where(Booking.id == booking.id).with_for_update())
            await session.refresh(booking)
            await session.refresh(dispatch)
            if dispatch.answer is not None or booking.status not in ACTIVE:
                continue
            try:
                await decline(session, booking, rules=rules, now=now, actor="system:jobs",
                              reason="no answer in time", answer="timeout")
            except BookingError:
                continue
            count += 1
    return count


async def send_surveys(db: Database, now: datetime, rules: Rules) -> int:
    """After the slot: the booking is done, and the resident is asked to rate it 1-5 (回访).

    The resident's conversation is set to take a bare "1".."5" as the rating.
    """
    sent = 0
    async with db.write() as session:
        due = await session.scalars(
            select(Booking)
            .where(Booking.status.in_(ACTIVE), Booking.ends_at <= now - SURVEY_AFTER)
            .order_by(Booking.ends_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        for booking in due:
            booking.status, booking.completed_at, booking.updated_at = COMPLETED, now, now
            if now - booking.ends_at > SURVEY_UNTIL:
                continue
            service, provider = await booking_facts(session, booking)
            booking.survey_sent_at = now
            await enqueue(session, booking.notify_urn, texts.survey(booking, service, provider), "survey",
                          key=f"booking-{booking.number}-survey", now=now)
            contact = await contact_for(session, booking.notify_urn)
            conversation = await current_conversation(session, contact, channel_for(booking.notify_urn), now)
            conversation.state = {**(conversation.state or {}), "flow": "booking",
                                  "booking": {"step": "rate", "target": booking.id}}
            conversation.updated_at = now
            sent += 1
    return sent


def booking_jobs(settings: object) -> list[Job]:
    """The booking jobs, bound to the line's settings, for helpline.app.build_jobs."""
    rules = Rules.of(settings)

    def bind(fn):  # type: ignore[no-untyped-def]
        async def run(db: Database, now: datetime) -> int:
            return await fn(db, now, rules)

        return run

    return [
        Job("booking-slots", bind(generate_slots), every=timedelta(hours=1)),
        Job("booking-reminders", bind(send_reminders), every=timedelta(minutes=1)),
        Job("booking-dispatch-timeouts", bind(expire_dispatches), every=timedelta(minutes=5)),
        Job("booking-surveys", bind(send_surveys), every=timedelta(minutes=5)),
    ]

