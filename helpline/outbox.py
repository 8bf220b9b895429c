"""The durable outbox: messages that are not the immediate reply are written here, in the same
transaction as the change that caused them, and sent later by the outbox worker.

Writing the message and its cause together means a reminder is never lost because the process
died after the booking was saved, and never sent for a booking whose transaction rolled back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.contacts import contacts_for, conversations_for, urn_scheme
from helpline.models import Message, OutboxItem, new_id, utcnow

# Which channel carries a message to an address of each scheme.
CHANNEL_OF_SCHEME = {"tel": "sms", "telegram": "telegram", "web": "web"}


def channel_for(urn: str) -> str:
    try:
        return CHANNEL_OF_SCHEME[urn_scheme(urn)]
    except KeyError:
        raise ValueError(f"no channel can send to {urn!r}") from None


async def enqueue(
    session: AsyncSession,
    urn: str,
    body: str,
    kind: str,
    *,
    key: str | None = None,
    channel: str | None = None,
    now: datetime | None = None,
) -> OutboxItem:
    """Queue ``body`` for ``urn`` in the caller's transaction; returns the outbox row.

    ``key`` makes the enqueue itself idempotent (a reminder for booking 42 is queued once however
    often the scheduler runs); without one a fresh key is made. The message also appears in the
    contact's conversation at once, as ``queued``, so operators see what is on its way.
    """
    if key is not None:
        existing = await session.scalar(select(OutboxItem).where(OutboxItem.idempotency_key == key))
        if existing is not None:
            return existing
    now = now or utcnow()
    channel = channel or channel_for(urn)
    contact = (await contacts_for(session, [urn]))[urn]
    conv = (await conversations_for(session, [(contact, channel)], now))[(contact.id, channel)]
    message = Message(
        conversation_id=conv.id,
        contact_id=contact.id,
        channel=channel,
        direction="out",
        urn=urn,
        text=body,
        status="queued",
        meta={"kind": kind},
        created_at=now,
    )
    session.add(message)
    await session.flush()
    item = OutboxItem(
        idempotency_key=key or f"ob-{new_id()}",
        channel=channel,
        urn=urn,
        body=body,
        kind=kind,
        message_id=message.id,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(item)
    await session.flush()
    return item
