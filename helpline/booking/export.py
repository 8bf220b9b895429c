"""Bookings for ``helpline export bookings``: one row per booking, with its service and provider codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select

from helpline.booking.models import Booking, Provider, Service
from helpline.db import Database

BOOKING_FIELDS = (
    "number", "id", "status", "service", "provider", "slot_id", "starts_at", "ends_at", "name", "address", "note",
    "urn", "notify_urn", "channel", "lang", "created_at", "accepted_at", "cancelled_at", "cancel_reason",
    "completed_at", "rating", "rated_at", "reschedules",
)


async def booking_rows(db: Database) -> AsyncIterator[dict[str, Any]]:
    """Every booking in the order they were made, streamed."""
    async with db.read() as session:
        query = (
            select(Booking, Service.code, Provider.code)
            .join(Service, Service.id == Booking.service_id)
            .join(Provider, Provider.id == Booking.provider_id)
            .order_by(Booking.created_at, Booking.number)
            .execution_options(yield_per=500)
        )
        async for booking, service, provider in await session.stream(query):
            row = {f: getattr(booking, f, None) for f in BOOKING_FIELDS}
            row["service"], row["provider"] = service, provider
            yield row
