"""Write every record of a kind to a stream, as JSON lines or CSV, without loading them all at once."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import IO, Any

from sqlalchemy import select

from helpline.db import Database
from helpline.models import Message

MESSAGE_FIELDS = (
    "id", "created_at", "channel", "direction", "urn", "provider_id", "conversation_id", "contact_id",
    "text", "lang", "intent", "status", "reply_to_id",
)


async def _messages(db: Database) -> AsyncIterator[dict[str, Any]]:
    async with db.read() as session:
        result = await session.stream_scalars(select(Message).order_by(Message.id).execution_options(yield_per=500))
        async for m in result:
            yield {f: getattr(m, f) for f in MESSAGE_FIELDS}


EXPORTS = {"messages": (_messages, MESSAGE_FIELDS)}


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
