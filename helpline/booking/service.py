"""The booking service: book, cancel, reschedule, accept, decline, rate, suspend — each a plain
async function over the caller's ``AsyncSession`` and an explicit ``now``.

Channels (the JSON API, the dialogue), the scheduled jobs and the operator console all call
these, naming an ``actor`` ("contact:12", "api:web:abc", "provider:hs-anjia", "user:alice",
"system:jobs") that the audit log records with every change.

**No overbooking.** A seat is taken by one conditional UPDATE, ``booked = booked + 1 WHERE
booked < capacity``, inside the booking's transaction; zero rows changed means the slot is full.
PostgreSQL re-checks the condition after waiting for a concurrent writer's row lock, SQLite
runs one writer at a time (BEGIN IMMEDIATE), so neither can count past capacity whatever the
number of processes. Everything that can refuse a booking is checked before the seat is taken,
so a refusal writes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.booking import texts
from helpline.booking.models import (
    ACCEPTED,
    ACTIVE,
    CANCELLED,
    COMPLETED,
    CONFIRMED,
    PROVIDER_ACTIVE,
    PROVIDER_SUSPENDED,
    REFERRED,
    Booking,
    Dispatch,
    Holiday,
    Provider,
    ProviderService,
    Service,
    Slot,
)
from helpline.booking.slots import (
    HORIZON_DAYS,
    covers,
    ensure_slots,
    find_slots,
    holiday_days,
    known_areas,
    local_day,
    parse_slot_id,
    planned,
    sync_slots,
)
from helpline.contacts import contact_for, current_conversation
from helpline.models import Contact, Event, OutboxItem
from helpline.outbox import enqueue

# How long a provider has to answer a dispatch before the next one is asked.
DISPATCH_TIMEOUT = timedelta(hours=2)


class BookingError(Exception):
    """A refusal with its reason in both languages. ``kind`` tells the API which status to answer:
    ``slot_full``, ``provider_suspended``, ``too_late``, ``bad_state`` are conflicts (409),
    ``not_found`` is 404, the rest are bad input (400)."""

    CONFLICTS = frozenset({"slot_full", "provider_suspended", "too_late", "bad_state", "already_rated"})

    def __init__(self, kind: str, en: str, zh: str) -> None:
        super().__init__(en)
        self.kind = kind
        self.en = en
        self.zh = zh

    def text(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    @property
    def http_status(self) -> int:
        if self.kind == "not_found":
            return 404
        return 409 if self.kind in self.CONFLICTS else 400


@dataclass(frozen=True, slots=True)
class Rules:
    """The settings the service needs (from helpline.config.Settings)."""

    zone: ZoneInfo
    cutoff: timedelta = timedelta(minutes=120)
    min_score: float = 3.0
    min_ratings: int = 3

    @classmethod
    def of(cls, settings: Any) -> Rules:
        return cls(
            zone=settings.zone,
            cutoff=timedelta(minutes=settings.booking_cutoff_minutes),
            min_score=settings.provider_min_score,
            min_ratings=settings.provider_min_ratings,
        )


def audit(session: AsyncSession, actor: str, action: str, subject_type: str, subject_id: str, data: dict[str, Any]) -> None:
    session.add(Event(actor=actor[:100], action=action, subject_type=subject_type, subject_id=subject_id[:64], data=data))


def _audit(session: AsyncSession, actor: str, action: str, booking: Booking, **data: Any) -> None:
    audit(session, actor, action, "booking", booking.id, {"number": booking.number, **data})


# -- reading ----------------------------------------------------------------------------------


async def service_by_code(session: AsyncSession, code: str) -> Service:
    service = await session.scalar(select(Service).where(Service.code == code))
    if service is None or not service.active:
        raise BookingError(
            "unknown_service",
            f"unknown service {code!r}; GET /api/v1/services lists the services",
            f"没有“{code}”这项服务。",
        )
    return service


async def active_services(session: AsyncSession) -> list[Service]:
    return list(await session.scalars(select(Service).where(Service.active.is_(True)).order_by(Service.sort, Service.code)))


async def find_booking(session: AsyncSession, key: str, *, lock: bool = False) -> Booking | None:
    """A booking by its id or its number ("B1234567", or just the digits)."""
    key = key.strip()
    if not key:
        return None
    number = key.upper() if key[:1] in "bB" else f"B{key}"
    query = select(Booking).where((Booking.id == key) | (Booking.number == number))
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def booking_facts(session: AsyncSession, booking: Booking) -> tuple[Service, Provider]:
    service = await session.get(Service, booking.service_id)
    provider = await session.get(Provider, booking.provider_id)
    assert service is not None and provider is not None
    return service, provider


def booking_dict(booking: Booking, service: Service, provider: Provider, lang: str, zone: ZoneInfo,
                 *, private: bool = True) -> dict[str, Any]:
    """The booking as the API and replies show it; ``private`` adds the resident's name and address."""
    data: dict[str, Any] = {
        "id": booking.id,
        "number": booking.number,
        "status": booking.status,
        "status_text": texts.status(booking.status, lang),
        "service": service.code,
        "service_name": service.name(lang),
        "slot": booking.slot_id,
        "start": booking.starts_at.astimezone(zone).isoformat(),
        "end": booking.ends_at.astimezone(zone).isoformat(),
        "provider": {"code": provider.code, "name": provider.name(lang)},
    }
    if private:
        data.update({
            "name": booking.name, "address": booking.address, "note": booking.note, "rating": booking.rating,
            "created_at": booking.created_at.astimezone(zone).isoformat(),
        })
    return data


# -- slots and seats --------------------------------------------------------------------------


async def resolve_slot(session: AsyncSession, slot_id: str, now: datetime, zone: ZoneInfo) -> tuple[Slot, Provider]:
    """The slot with this id, made on demand from the provider's plan if it is a real slot not
    generated yet; otherwise a BookingError that says why there is no such slot."""
    slot = await session.get(Slot, slot_id)
    if slot is None:
        parsed = parse_slot_id(slot_id)
        provider = None
        if parsed is not None:
            provider = await session.scalar(select(Provider).where(Provider.code == parsed[0]))
        if parsed is None or provider is None:
            raise BookingError("unknown_slot", f"no slot {slot_id!r}; ask GET /api/v1/services/{{code}}/slots for slots",
                               "没有这个时段。")
        local = parsed[1]
        start = local.replace(tzinfo=zone).astimezone(UTC)
        if start <= now:
            raise _past(slot_id)
        if local.date() > local_day(now, zone) + timedelta(days=HORIZON_DAYS):
            raise BookingError("too_far", f"slot {slot_id!r} is more than {HORIZON_DAYS} days ahead; bookings open "
                               f"{HORIZON_DAYS} days in advance", f"只能预约{HORIZON_DAYS}天以内的时段。")
        holidays = await holiday_days(session)
        if slot_id not in {sid for sid, _, _ in planned(provider, local.date(), zone, holidays)}:
            if local.date() in holidays and not provider.works_holidays:
                holiday = await session.get(Holiday, local.date())
                name = holiday.name_en if holiday else "a public holiday"
                raise BookingError("outside_hours", f"slot {slot_id!r} falls on {name} ({local.date()}), when "
                                   f"{provider.name_en} does not work", f"{local.date()}是节假日，该服务商不上班。")
            raise BookingError("outside_hours", f"slot {slot_id!r} is outside {provider.name_en}'s working hours "
                               f"({_plan_text(provider)})", f"该时间不在服务商的工作时间内（{_plan_text(provider)}）。")
        await sync_slots(session, provider, local.date(), local.date(), zone, holidays)
        slot = await session.get(Slot, slot_id)
        if slot is None:  # pragma: no cover - planned() said it exists
            raise BookingError("unknown_slot", f"no slot {slot_id!r}", "没有这个时段。")
        return slot, provider
    provider = await session.get(Provider, slot.provider_id)
    assert provider is not None
    return slot, provider


def _plan_text(provider: Provider) -> str:
    return "; ".join(f"{','.join(e['days'])} {' '.join(e['hours'])}" for e in provider.plan or [])


def _past(slot_id: str) -> BookingError:
    return BookingError("slot_past", f"slot {slot_id!r} has already begun or is over", "这个时段已经过去了。")


async def _check_bookable(session: AsyncSession, service: Service, slot: Slot, provider: Provider, address: str,
                          now: datetime) -> None:
    """Every reason a slot cannot take this booking, checked before a seat is taken."""
    offers = await session.scalar(
        select(ProviderService.provider_id).where(
            ProviderService.provider_id == provider.id, ProviderService.service_id == service.id
        )
    )
    if offers is None:
        raise BookingError("unknown_slot", f"slot {slot.id!r} is not a slot of service {service.code!r}",
                           f"这个时段不属于“{service.name_zh}”服务。")
    if provider.status != PROVIDER_ACTIVE:
        raise BookingError("provider_suspended", f"{provider.name_en} takes no new bookings at present; choose another slot",
                           f"{provider.name_zh}暂停接单，请选择其他时段。")
    if slot.starts_at <= now:
        raise _past(slot.id)
    if slot.starts_at < now + timedelta(minutes=provider.lead_minutes):
        hours = provider.lead_minutes / 60
        raise BookingError("too_soon", f"{provider.name_en} needs {hours:g} hours' notice; slot {slot.id!r} is too soon",
                           f"该服务商需要提前{hours:g}小时预约，这个时段太近了。")
    if slot.capacity <= 0:
        raise BookingError("outside_hours", f"slot {slot.id!r} is no longer in {provider.name_en}'s working plan",
                           "这个时段已不在服务商的工作时间内。")
    if not covers(provider, address, await known_areas(session)):
        areas = "、".join(provider.areas)
        raise BookingError("not_covered", f"{provider.name_en} does not serve that address (it serves {', '.join(provider.areas)})",
                           f"{provider.name_zh}的服务范围是{areas}，不包括这个地址。")


async def take_seat(session: AsyncSession, slot_id: str) -> None:
    """One seat of the slot, or BookingError("slot_full"): the only way ``booked`` goes up."""
    result = await session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.booked < Slot.capacity)
        .values(booked=Slot.booked + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise BookingError("slot_full", f"slot {slot_id!r} is full; choose another slot", "这个时段已经约满了，请选择其他时段。")


async def release_seat(session: AsyncSession, slot_id: str) -> None:
    await session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.booked > 0)
        .values(booked=Slot.booked - 1)
        .execution_options(synchronize_session=False)
    )


async def slot_counts(session: AsyncSession, slot_id: str) -> tuple[int, int]:
    """(capacity, booked) as the database has them now."""
    row = (await session.execute(select(Slot.capacity, Slot.booked).where(Slot.id == slot_id))).one()
    return int(row[0]), int(row[1])


async def _new_number(session: AsyncSession) -> str:
    """A short number people can read out: "B" and seven digits, unused so far."""
    for _ in range(20):
        number = f"B{secrets.randbelow(9_000_000) + 1_000_000}"
        if await session.scalar(select(Booking.id).where(Booking.number == number)) is None:
            return number
    raise RuntimeError("no free booking number found")  # pragma: no cover - 9 million numbers


# -- the operations ---------------------------------------------------------------------------


async def book(
    session: AsyncSession,
    *,
    service_code: str,
    slot_id: str,
    urn: str,
    name: str,
    address: str,
    rules: Rules,
    now: datetime,
    actor: str,
    channel: str,
    lang: str = "zh",
    note: str = "",
    notify_urn: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    confirm: bool = False,
) -> Booking:
    """Book a seat in a slot and send the job to its provider; raises BookingError, having
    written nothing, when the booking cannot be made. ``confirm`` also sends the resident a
    confirmation (for bookings not made in a conversation, which confirms by its reply)."""
    service = await service_by_code(session, service_code)
    slot, provider = await resolve_slot(session, slot_id, now, rules.zone)
    await _check_bookable(session, service, slot, provider, address, now)
    await take_seat(session, slot.id)
    contact = await contact_for(session, urn)
    if not contact.name:
        contact.name = name
    booking = Booking(
        number=await _new_number(session), contact_id=contact.id, urn=urn, notify_urn=notify_urn or urn,
        channel=channel, lang=lang, service_id=service.id, provider_id=provider.id, slot_id=slot.id, holds_seat=True,
        starts_at=slot.starts_at, ends_at=slot.ends_at, name=name, address=address, note=note, status=CONFIRMED,
        idempotency_key=idempotency_key, request_hash=request_hash, reschedules=0, scheduled_at=now,
        created_at=now, updated_at=now,
    )
    session.add(booking)
    await session.flush()
    _audit(session, actor, "booking.created", booking, service=service.code, slot=slot.id, provider=provider.code)
    await _dispatch(session, booking, service, provider, now, rules.zone, actor)
    if confirm and notify_urn:
        await enqueue(session, booking.notify_urn, texts.confirmation(booking, service, rules.zone), "notice",
                      key=f"booking-{booking.number}-confirmed", now=now)
    return booking


async def _dispatch(session: AsyncSession, booking: Booking, service: Service, provider: Provider, now: datetime,
                    zone: ZoneInfo, actor: str, *, moved: bool = False) -> Dispatch:
    """Send the job to the provider by SMS (through the outbox) and wait for its answer."""
    dispatch = Dispatch(booking_id=booking.id, provider_id=provider.id, sent_at=now)
    session.add(dispatch)
    await session.flush()
    await enqueue(session, provider.urn, texts.dispatch(booking, service, provider, zone, moved=moved), "dispatch",
                  key=f"booking-{booking.number}-dispatch-{dispatch.id}", now=now)
    _audit(session, actor, "booking.dispatched", booking, provider=provider.code, dispatch=dispatch.id)
    return dispatch


async def _current_dispatch(session: AsyncSession, booking: Booking) -> Dispatch | None:
    """The latest dispatch still standing: unanswered, or accepted."""
    return await session.scalar(
        select(Dispatch)
        .where(Dispatch.booking_id == booking.id, (Dispatch.answer.is_(None)) | (Dispatch.answer == "accepted"))
        .order_by(Dispatch.id.desc())
        .limit(1)
    )


async def _withdraw(session: AsyncSession, booking: Booking, now: datetime, actor: str, why: str) -> None:
    """Tell the provider holding the job that it is off, and close its dispatch."""
    dispatch = await _current_dispatch(session, booking)
    if dispatch is None:
        return
    if dispatch.answer is None:
        dispatch.answer, dispatch.answered_at, dispatch.answered_by = "withdrawn", now, actor[:100]
    provider = await session.get(Provider, dispatch.provider_id)
    assert provider is not None
    await enqueue(session, provider.urn, texts.withdrawn(booking, provider, why), "dispatch",
                  key=f"booking-{booking.number}-withdrawn-{dispatch.id}", now=now)


async def _skip_reminders(session: AsyncSession, booking: Booking, now: datetime, why: str) -> None:
    """Reminders queued for the old time (or a cancelled booking) must not go out."""
    await session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.idempotency_key.like(f"booking-{booking.number}-remind-%"),
            OutboxItem.status.in_(("pending", "failed")),
        )
        .values(status="skipped", last_error=why, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )


def check_cutoff(booking: Booking, rules: Rules, now: datetime, action: str) -> None:
    """Cancelling or moving (``action`` "cancel" or "reschedule") closes ``rules.cutoff`` before the slot."""
    what_en, what_zh = ("cancelled", "取消") if action == "cancel" else ("moved", "改时间")
    if now > booking.starts_at - rules.cutoff:
        minutes = int(rules.cutoff.total_seconds() // 60)
        span = f"{minutes // 60} hours" if minutes % 60 == 0 else f"{minutes} minutes"
        span_zh = f"{minutes // 60}小时" if minutes % 60 == 0 else f"{minutes}分钟"
        raise BookingError(
            "too_late",
            f"booking {booking.number} can no longer be {what_en}: that closes {span} before the slot starts; "
            "please call the line and an operator will help",
            f"预约{booking.number}开始前{span_zh}内不能再{what_zh}，请致电热线由话务员为您处理。",
        )


async def cancel(session: AsyncSession, booking: Booking, *, rules: Rules, now: datetime, actor: str,
                 reason: str = "", force: bool = False) -> Booking:
    """Cancel and give the seat back. Cancelling a cancelled booking changes nothing. Past the
    cut-off only an operator may cancel (``force``)."""
    if booking.status == CANCELLED:
        return booking
    if booking.status not in (*ACTIVE, REFERRED):
        raise BookingError("bad_state", f"booking {booking.number} is {booking.status} and cannot be cancelled",
                           f"预约{booking.number}{texts.status(booking.status, 'zh')}，不能取消。")
    if not force:
        check_cutoff(booking, rules, now, "cancel")
    if booking.holds_seat:
        await release_seat(session, booking.slot_id)
        booking.holds_seat = False
    await _withdraw(session, booking, now, actor, "cancelled")
    await _skip_reminders(session, booking, now, "booking cancelled")
    booking.status, booking.cancelled_at, booking.cancel_reason = CANCELLED, now, (reason or None) and reason[:500]
    booking.updated_at = now
    _audit(session, actor, "booking.cancelled", booking, reason=reason[:500], forced=force)
    return booking


async def reschedule(session: AsyncSession, booking: Booking, slot_id: str, *, rules: Rules, now: datetime,
                     actor: str, force: bool = False) -> Booking:
    """Move the booking to another slot of the same service: the new seat is taken before the
    old one is given back, so a full new slot leaves the booking as it was."""
    if booking.status not in ACTIVE:
        raise BookingError("bad_state", f"booking {booking.number} is {booking.status} and cannot be moved",
                           f"预约{booking.number}{texts.status(booking.status, 'zh')}，不能改时间。")
    if not force:
        check_cutoff(booking, rules, now, "reschedule")
    if slot_id == booking.slot_id:
        raise BookingError("bad_input", f"booking {booking.number} is already in slot {slot_id!r}", "已经是这个时段了。")
    service = await session.get(Service, booking.service_id)
    assert service is not None
    slot, provider = await resolve_slot(session, slot_id, now, rules.zone)
    await _check_bookable(session, service, slot, provider, booking.address, now)
    await take_seat(session, slot.id)
    if booking.holds_seat:
        await release_seat(session, booking.slot_id)
    old = {"slot": booking.slot_id, "provider_id": booking.provider_id}
    await _withdraw(session, booking, now, actor, "moved")
    await _skip_reminders(session, booking, now, "booking moved")
    booking.slot_id, booking.provider_id, booking.holds_seat = slot.id, provider.id, True
    booking.starts_at, booking.ends_at = slot.starts_at, slot.ends_at
    booking.status, booking.accepted_at = CONFIRMED, None
    booking.reschedules += 1
    booking.scheduled_at, booking.updated_at = now, now
    booking.reminded_day_at = booking.reminded_hour_at = None
    _audit(session, actor, "booking.rescheduled", booking, old_slot=old["slot"], slot=slot.id, provider=provider.code)
    await _dispatch(session, booking, service, provider, now, rules.zone, actor, moved=old["provider_id"] == provider.id)
    return booking


async def accept(session: AsyncSession, booking: Booking, *, rules: Rules, now: datetime, actor: str,
                 provider: Provider | None = None) -> Booking:
    """The provider takes the job (by SMS, or an operator on its behalf). ``provider``, when
    given, must be the one the job was sent to. Accepting twice changes nothing."""
    dispatch = await _current_dispatch(session, booking)
    if dispatch is None or booking.status not in ACTIVE:
        raise BookingError("bad_state", f"booking {booking.number} is {booking.status}: there is nothing to accept",
                           f"预约{booking.number}{texts.status(booking.status, 'zh')}，无需接单。")
    if provider is not None and dispatch.provider_id != provider.id:
        raise BookingError("not_provider", f"booking {booking.number} was not sent to {provider.name_en}",
                           f"预约{booking.number}没有派给{provider.name_zh}。")
    if dispatch.answer == "accepted":
        return booking
    dispatch.answer, dispatch.answered_at, dispatch.answered_by = "accepted", now, actor[:100]
    booking.status, booking.accepted_at, booking.updated_at = ACCEPTED, now, now
    service, holder = await booking_facts(session, booking)
    await enqueue(session, booking.notify_urn, texts.accepted(booking, service, holder, rules.zone), "notice",
                  key=f"booking-{booking.number}-accepted-{dispatch.id}", now=now)
    _audit(session, actor, "booking.accepted", booking, provider=holder.code)
    return booking


async def decline(session: AsyncSession, booking: Booking, *, rules: Rules, now: datetime, actor: str,
                  provider: Provider | None = None, reason: str = "", answer: str = "declined") -> Booking:
    """The provider cannot do it (or did not answer in time: ``answer="timeout"``). The job goes
    to the next provider of the service with a free seat at that time; when there is none, the
    seat is given back and an operator takes over (conversation "waiting", as for any hand-off)."""
    dispatch = await _current_dispatch(session, booking)
    if dispatch is None or booking.status not in ACTIVE:
        raise BookingError("bad_state", f"booking {booking.number} is {booking.status}: there is nothing to decline",
                           f"预约{booking.number}{texts.status(booking.status, 'zh')}，无需拒单。")
    if provider is not None and dispatch.provider_id != provider.id:
        raise BookingError("not_provider", f"booking {booking.number} was not sent to {provider.name_en}",
                           f"预约{booking.number}没有派给{provider.name_zh}。")
    dispatch.answer, dispatch.answered_at, dispatch.answered_by = answer, now, actor[:100]
    dispatch.reason = reason[:500] or None
    service, declined_by = await booking_facts(session, booking)
    _audit(session, actor, f"booking.{answer}", booking, provider=declined_by.code, reason=reason[:500])
    tried = set(await session.scalars(select(Dispatch.provider_id).where(Dispatch.booking_id == booking.id)))
    await ensure_slots(session, now, rules.zone)
    for offer in await _alternatives(session, booking, service, tried, now):
        try:
            await take_seat(session, offer.slot.id)
        except BookingError:
            continue  # taken meanwhile (a full slot's UPDATE changes nothing): try the next one
        if booking.holds_seat:
            await release_seat(session, booking.slot_id)
        booking.slot_id, booking.provider_id, booking.holds_seat = offer.slot.id, offer.provider.id, True
        booking.starts_at, booking.ends_at = offer.slot.starts_at, offer.slot.ends_at
        booking.status, booking.accepted_at, booking.updated_at = CONFIRMED, None, now
        await _dispatch(session, booking, service, offer.provider, now, rules.zone, "system:booking")
        await enqueue(session, booking.notify_urn, texts.reassigned(booking, service, offer.provider, rules.zone),
                      "notice", key=f"booking-{booking.number}-reassigned-{dispatch.id}", now=now)
        return booking
    if booking.holds_seat:
        await release_seat(session, booking.slot_id)
        booking.holds_seat = False
    booking.status, booking.updated_at = REFERRED, now
    await _skip_reminders(session, booking, now, "booking referred to an operator")
    await hand_to_operator(session, booking, "booking_declined", now)
    await enqueue(session, booking.notify_urn, texts.referred(booking, service), "notice",
                  key=f"booking-{booking.number}-referred", now=now)
    return booking


async def _alternatives(session: AsyncSession, booking: Booking, service: Service, tried: set[int],
                        now: datetime) -> list[Any]:
    """Free slots of other providers that cover the booking's start: the same start first."""
    offers = await find_slots(
        session, service.id, now, start=booking.starts_at - timedelta(hours=12), end=booking.starts_at + timedelta(minutes=1),
        exclude_providers=tried, address=booking.address,
    )
    fitting = [o for o in offers if o.slot.starts_at <= booking.starts_at < o.slot.ends_at]
    fitting.sort(key=lambda o: (o.slot.starts_at != booking.starts_at, -(o.provider.score or 0.0), o.slot.id))
    return fitting


async def hand_to_operator(session: AsyncSession, booking: Booking, reason: str, now: datetime) -> None:
    """Queue the resident's conversation for an operator, as helpline.handlers.operator does."""
    contact = await session.get(Contact, booking.contact_id)
    assert contact is not None
    conversation = await current_conversation(session, contact, booking.channel, now)
    if conversation.status != "waiting":
        conversation.status = "waiting"
        audit(session, "system:booking", "handoff.requested", "conversation", conversation.id,
              {"reason": reason, "booking": booking.number})


async def rate(session: AsyncSession, booking: Booking, rating: Any, *, rules: Rules, now: datetime, actor: str) -> Provider:
    """The resident's follow-up rating (1-5) of a finished booking; it rolls up into the
    provider's score, and a provider whose score falls below the threshold (after enough
    ratings) is flagged for review. Returns the provider with its new score."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise BookingError("bad_rating", f"a rating is a whole number from 1 to 5, not {rating!r}",
                           "请回复1到5之间的一个数字：5非常满意，1很不满意。")
    if booking.rating is not None:
        raise BookingError("already_rated", f"booking {booking.number} was already rated {booking.rating}",
                           f"预约{booking.number}已经评过{booking.rating}分了，谢谢。")
    if booking.status != COMPLETED and not (booking.status in ACTIVE and booking.ends_at <= now):
        raise BookingError("bad_state", f"booking {booking.number} is {booking.status}: only a finished booking is rated",
                           f"预约{booking.number}还没有完成，完成后再评价。")
    booking.rating, booking.rated_at, booking.updated_at = rating, now, now
    await session.execute(
        update(Provider)
        .where(Provider.id == booking.provider_id)
        .values(rating_sum=Provider.rating_sum + rating, rating_count=Provider.rating_count + 1)
        .execution_options(synchronize_session=False)
    )
    provider = await session.get(Provider, booking.provider_id)
    assert provider is not None
    await session.refresh(provider)
    _audit(session, actor, "booking.rated", booking, rating=rating, provider=provider.code)
    score = provider.score
    if (score is not None and provider.rating_count >= rules.min_ratings and score < rules.min_score
            and provider.flagged_at is None):
        provider.flagged_at = now
        audit(session, "system:booking", "provider.flagged", "provider", provider.code,
              {"score": score, "ratings": provider.rating_count, "threshold": rules.min_score})
    return provider


async def suspend_provider(session: AsyncSession, provider: Provider, *, now: datetime, actor: str, reason: str = "") -> Provider:
    """No new bookings for this provider; bookings it already has stand (re-dispatch them by hand)."""
    provider.status, provider.status_reason, provider.updated_at = PROVIDER_SUSPENDED, reason[:500] or None, now
    audit(session, actor, "provider.suspended", "provider", provider.code, {"reason": reason[:500]})
    return provider


async def reinstate_provider(session: AsyncSession, provider: Provider, *, now: datetime, actor: str) -> Provider:
    """Take bookings again; the review flag is cleared (the review is done)."""
    provider.status, provider.status_reason, provider.flagged_at, provider.updated_at = PROVIDER_ACTIVE, None, None, now
    audit(session, actor, "provider.reinstated", "provider", provider.code, {})
    return provider


async def upcoming(session: AsyncSession, contact_id: int, now: datetime) -> list[Booking]:
    """The contact's bookings still to come, soonest first."""
    return list(await session.scalars(
        select(Booking)
        .where(Booking.contact_id == contact_id, Booking.status.in_(ACTIVE), Booking.starts_at > now)
        .order_by(Booking.starts_at)
    ))


async def last_address(session: AsyncSession, contact_id: int) -> str | None:
    """The address of the contact's latest booking, to offer again."""
    return await session.scalar(
        select(Booking.address).where(Booking.contact_id == contact_id).order_by(Booking.created_at.desc()).limit(1)
    )


async def awaiting_rating(session: AsyncSession, contact_id: int, now: datetime, *, urn: str | None = None,
                          within: timedelta = timedelta(days=7)) -> Booking | None:
    """The latest booking of the contact (or whose survey went to ``urn``) with its survey sent
    within ``within`` and unanswered."""
    mine = Booking.contact_id == contact_id
    if urn is not None:
        mine = mine | (Booking.notify_urn == urn)
    return await session.scalar(
        select(Booking)
        .where(mine, Booking.survey_sent_at.is_not(None),
               Booking.survey_sent_at >= now - within, Booking.rating.is_(None), Booking.status == COMPLETED)
        .order_by(Booking.survey_sent_at.desc())
        .limit(1)
    )
