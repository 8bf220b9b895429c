"""Write every record of a kind to a stream, as JSON lines or CSV, without loading them all at once."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import IO, Any

from sqlalchemy import select

from helpline.booking.export import BOOKING_FIELDS, booking_rows
from helpline.cases.export import CASE_FIELDS, case_rows
from helpline.db import Database
from helpline.models import Message, OutboxItem

MESSAGE_FIELDS = (
    "id", "created_at", "channel", "direction", "urn", "provider_id", "conversation_id", "contact_id",
    "text", "lang", "intent", "status", "reply_to_id",
)


OUTBOX_FIELDS = (
    "id", "created_at", "channel", "urn", "kind", "status", "attempts", "max_attempts", "next_attempt_at",
    "provider_id", "sent_at", "last_error", "idempotency_key", "message_id", "body",
)


def _rows(model: type[Any], fields: tuple[str, ...]) -> Callable[[Database], AsyncIterator[dict[str, Any]]]:
    async def rows(db: Database) -> AsyncIterator[dict[str, Any]]:
        async with db.read() as session:
            query = select(model).order_by(model.id).execution_options(yield_per=500)
            async for row in await session.stream_scalars(query):
                yield {f: getattr(row, f) for f in fields}

    return rows


# Each kind: the rows, in id order, and the columns a CSV gets. The outbox export is how operators
# see dead letters (status "dead") until the console lists them.
EXPORTS = {
    "messages": (_rows(Message, MESSAGE_FIELDS), MESSAGE_FIELDS),
    "outbox": (_rows(OutboxItem, OUTBOX_FIELDS), OUTBOX_FIELDS),
    "bookings": (booking_rows, BOOKING_FIELDS),
    "cases": (case_rows, CASE_FIELDS),
}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def export(db: Database, kind: str, fmt: str, out: IO[str]) -> int:
    """Write all ``kind`` records to ``out``; returns how many were written."""
    rows, fields = EXPORTS[kind]
    count = 0
    writer = csv.DictWriter(out, fieldnames=fields) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    async for row in rows(db):
        plain = {k: _plain(v) for k, v in row.items()}
        if writer is not None:
            writer.writerow(plain)
        else:
            out.write(json.dumps(plain, ensure_ascii=False) + "\n")
        count += 1
    return count
