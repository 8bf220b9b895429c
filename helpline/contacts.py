"""Contacts and their conversations, found or created in bulk inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
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


async def contacts_for(session: AsyncSession, urns: Iterable[str]) -> dict[str, Contact]:
    """The contact owning each address; contacts are created on first contact (one flush for all)."""
    wanted = set(urns)
    rows = await session.execute(
        select(ContactAddress.urn, Contact)
        .join(Contact, Contact.id == ContactAddress.contact_id)
        .where(ContactAddress.urn.in_(wanted))
    )
    found: dict[str, Contact] = {urn: contact for urn, contact in rows}
    missing = sorted(wanted - found.keys())
    if missing:
        fresh = {urn: Contact() for urn in missing}
        session.add_all(fresh.values())
        await session.flush()
        session.add_all(ContactAddress(contact_id=c.id, urn=urn, scheme=urn_scheme(urn)) for urn, c in fresh.items())
        await session.flush()
        found.update(fresh)
    return found


async def contact_for(session: AsyncSession, urn: str) -> Contact:
    return (await contacts_for(session, [urn]))[urn]


async def conversations_for(
    session: AsyncSession, keys: Iterable[tuple[Contact, str]], now: datetime
) -> dict[tuple[int, str], Conversation]:
    """Each contact's open conversation on a channel; stale ones are closed and new ones begun."""
    wanted = {(contact.id, channel): contact for contact, channel in keys}
    rows = await session.scalars(
        select(Conversation)
        .where(
            Conversation.contact_id.in_({cid for cid, _ in wanted}),
            Conversation.status != "closed",
        )
        .order_by(Conversation.updated_at)
    )
    found: dict[tuple[int, str], Conversation] = {}
    for conv in rows:  # oldest first, so the newest open one wins
        if (conv.contact_id, conv.channel) in wanted:
            found[(conv.contact_id, conv.channel)] = conv
    for key, conv in list(found.items()):
        if now - conv.updated_at > CONVERSATION_IDLE:
            conv.status = "closed"
            del found[key]
        elif conv.state.get("flow") and now - conv.updated_at > FLOW_IDLE:
            conv.state = {k: v for k, v in conv.state.items() if k != "flow"}
    missing = [key for key in wanted if key not in found]
    for cid, channel in missing:
        conv = Conversation(
            contact_id=cid, channel=channel, state={}, lang=wanted[(cid, channel)].lang, started_at=now, updated_at=now
        )
        session.add(conv)
        found[(cid, channel)] = conv
    if missing:
        await session.flush()
    return found


async def current_conversation(session: AsyncSession, contact: Contact, channel: str, now: datetime) -> Conversation:
    return (await conversations_for(session, [(contact, channel)], now))[(contact.id, channel)]
