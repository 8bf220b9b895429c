"""The booking data model: the catalogue (categories, services, partner providers, holidays),
slots with their capacity, bookings, and each dispatch of a booking to a provider.

Capacity lives in ``booking_slots.booked``; it only ever moves by one conditional UPDATE
(``booked < capacity``), so no database and no number of processes can overbook a slot.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from helpline.models import Base, new_id, utcnow

# Booking states. A booking "holds a seat" (counts in its slot's ``booked``) while confirmed or
# accepted; cancelled and referred bookings have given theirs back.
CONFIRMED = "confirmed"  # seat held, sent to the provider, waiting for its answer
ACCEPTED = "accepted"  # the provider will come
COMPLETED = "completed"  # the slot is over; the follow-up survey went out
CANCELLED = "cancelled"  # by the resident or an operator
REFERRED = "referred"  # no provider could take it: an operator arranges it
ACTIVE = (CONFIRMED, ACCEPTED)
STATUSES = (CONFIRMED, ACCEPTED, COMPLETED, CANCELLED, REFERRED)

PROVIDER_ACTIVE = "active"
PROVIDER_SUSPENDED = "suspended"


class ServiceCategory(Base):
    """A group of services, as the line's menu shows them (farm services, home repairs …)."""

    __tablename__ = "booking_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    sort: Mapped[int] = mapped_column(Integer, default=0)

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en


class Service(Base):
    """Something a resident can book, with the words residents use for it in both languages."""

    __tablename__ = "booking_services"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("booking_categories.id", ondelete="RESTRICT"), index=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    keywords_zh: Mapped[list[Any]] = mapped_column(JSON, default=list)
    keywords_en: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en


class Provider(Base):
    """A partner firm (加盟企业): where it works, when, how many jobs at once, how to reach it.

    ``plan`` is the weekly working plan, ``[{"days": ["mon", …], "hours": ["08:00-12:00", …]}]``
    in the centre's time zone; each window is cut into ``slot_minutes`` slots of ``capacity``
    seats. ``lead_minutes`` is the least notice it needs. The rating sums make its score.
    """

    __tablename__ = "booking_providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32), index=True)  # E.164: dispatch SMS go here
    contact_name: Mapped[str | None] = mapped_column(String(100))
    lang: Mapped[str] = mapped_column(String(8), default="zh")  # of the dispatch messages
    areas: Mapped[list[Any]] = mapped_column(JSON, default=list)  # empty: the whole district
    plan: Mapped[list[Any]] = mapped_column(JSON, default=list)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=120)
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    lead_minutes: Mapped[int] = mapped_column(Integer, default=120)
    works_holidays: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=PROVIDER_ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    flagged_at: Mapped[datetime | None] = mapped_column()
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    slots_until: Mapped[date | None] = mapped_column(Date)  # slots exist up to this local day
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en

    @property
    def score(self) -> float | None:
        """The mean follow-up rating (1-5), or None before the first rating."""
        return round(self.rating_sum / self.rating_count, 2) if self.rating_count else None

    @property
    def urn(self) -> str:
        return f"tel:{self.phone}"


class ProviderService(Base):
    """Which provider serves which service."""

    __tablename__ = "booking_provider_services"

    provider_id: Mapped[int] = mapped_column(ForeignKey("booking_providers.id", ondelete="CASCADE"), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("booking_services.id", ondelete="CASCADE"), primary_key=True)


class Holiday(Base):
    """A public holiday: providers that do not work holidays have no slots on it."""

    __tablename__ = "booking_holidays"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))


class Slot(Base):
    """One bookable period of one provider. The id is stable and readable: ``<provider>-<YYYYMMDD>-<HHMM>``
    in local time, so a plan regenerated tomorrow names the same slots the same way."""

    __tablename__ = "booking_slots"
    __table_args__ = (
        UniqueConstraint("provider_id", "starts_at"),
        CheckConstraint("booked >= 0", name="booked_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("booking_providers.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime] = mapped_column()
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def remaining(self) -> int:
        return max(0, self.capacity - self.booked)


class Booking(Base):
    """A resident's booking of a service in a slot. ``id`` is unguessable (it is the API's handle,
    so nobody reads another's address by counting); ``number`` is what people say and type."""

    __tablename__ = "bookings"
    __table_args__ = (Index("ix_bookings_status_starts", "status", "starts_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    urn: Mapped[str] = mapped_column(String(200))  # where the booking was made from
    notify_urn: Mapped[str] = mapped_column(String(200))  # where reminders and surveys go
    channel: Mapped[str] = mapped_column(String(16))
    lang: Mapped[str] = mapped_column(String(8))
    service_id: Mapped[int] = mapped_column(ForeignKey("booking_services.id", ondelete="RESTRICT"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("booking_providers.id", ondelete="RESTRICT"), index=True)
    slot_id: Mapped[str] = mapped_column(ForeignKey("booking_slots.id", ondelete="RESTRICT"), index=True)
    holds_seat: Mapped[bool] = mapped_column(Boolean, default=True)
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(300))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=CONFIRMED)
    # Double submission of one form: the same key (per sender) finds the first booking.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    reschedules: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_at: Mapped[datetime] = mapped_column(default=utcnow)  # when the current time was agreed
    reminded_day_at: Mapped[datetime | None] = mapped_column()
    reminded_hour_at: Mapped[datetime | None] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column()
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    completed_at: Mapped[datetime | None] = mapped_column()
    survey_sent_at: Mapped[datetime | None] = mapped_column()
    rating: Mapped[int | None] = mapped_column(Integer)
    rated_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Dispatch(Base):
    """One time a booking was sent to a provider, and what the provider answered.

    ``answer`` is None while waiting, then accepted | declined | timeout | withdrawn.
    """

    __tablename__ = "booking_dispatches"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[str] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("booking_providers.id", ondelete="CASCADE"), index=True)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    answer: Mapped[str | None] = mapped_column(String(16))
    answered_at: Mapped[datetime | None] = mapped_column()
    answered_by: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(500))
