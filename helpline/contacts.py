"""Contacts and their conversations: find or create them for an address, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.models import Contact, ContactAddress, Conversation

# A conversation idle this long is closed; the next message opens a new one with fresh state.
CONVERSATION_IDLE = timedelta(hours=24)
# A dialogue step (a menu choice, a booking waiting for a slot) idle this long is forgotten.
FLOW_IDLE = timedelta(minutes=30)


def urn_scheme(urn: str) -> str:
    return urn.split(":", 1)[0]


async def contact_for(session: AsyncSession, urn: str) -> tuple[Contact, ContactAddress]:
    """The contact who owns ``urn``, created on first contact."""
    row = (
        await session.execute(
            select(ContactAddress, Contact)
            .join(Contact, Contact.id == ContactAddress.contact_id)
            .where(ContactAddress.urn == urn)
        )
    ).first()
    if row is not None:
        return row[1], row[0]
    contact = Contact()
    session.add(contact)
    await session.flush()
    address = ContactAddress(contact_id=contact.id, urn=urn, scheme=urn_scheme(urn))
    session.add(address)
    await session.flush()
    return contact, address


async def current_conversation(
    session: AsyncSession, contact: Contact, channel: str, now: datetime
) -> Conversation:
    """The contact's open conversation on ``channel``; a stale one is closed and a new one begun."""
    conv = await session.scalar(
        select(Conversation)
        .where(
            Conversation.contact_id == contact.id,
            Conversation.channel == channel,
            Conversation.status == "open",
        )
        .order_by(Conversation.updated_at.desc())
        .limit(1)
    )
    if conv is not None and now - conv.updated_at > CONVERSATION_IDLE:
        conv.status = "closed"
        conv = None
    if conv is None:
        conv = Conversation(contact_id=contact.id, channel=channel, state={}, lang=contact.lang, started_at=now, updated_at=now)
        session.add(conv)
        await session.flush()
    elif conv.state.get("flow") and now - conv.updated_at > FLOW_IDLE:
        conv.state = {k: v for k, v in conv.state.items() if k != "flow"}
    return conv
