"""The inbound pipeline every channel calls: store, route, store the reply — in one transaction.

Storing the inbound message, everything the handlers change and the reply commit together, so a
message is either fully handled or not at all. The provider's message id is unique per channel:
a re-delivery finds the stored reply and gets exactly the same answer, and two copies arriving at
once collide on the unique index, after which the loser reads the winner's reply.

If routing itself fails, the message is still kept (status ``failed``) in its own transaction, and
the channel answers "try again"; the provider's retry then handles that same stored row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.config import Settings
from helpline.contacts import contact_for, current_conversation
from helpline.db import Database
from helpline.lang import detect_lang
from helpline.logs import mask_urn
from helpline.metrics import Metrics
from helpline.models import Message, utcnow
from helpline.request import Reply, Request
from helpline.router import Context, Router

log = logging.getLogger("helpline.inbound")

_ATTEMPTS = 3


class HandlingFailed(Exception):
    """The message is stored but could not be answered now; the sender should retry."""


@dataclass(frozen=True, slots=True)
class Handled:
    conversation_id: str
    message_id: int
    reply: Reply
    duplicate: bool


class Inbox:
    """Takes a channel's Request, returns the Reply; the one door into the router."""

    def __init__(self, db: Database, router: Router, settings: Settings, metrics: Metrics) -> None:
        self.db = db
        self.router = router
        self.settings = settings
        self.metrics = metrics

    async def handle(self, request: Request) -> Handled:
        started = time.perf_counter()
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                handled = await self._handle_once(request)
                break
            except IntegrityError:
                # A concurrent first message from the same address or with the same provider id
                # won the race; the next attempt sees its rows.
                if attempt == _ATTEMPTS:
                    await self._keep_failed(request)
                    raise HandlingFailed("conflicting concurrent deliveries") from None
            except Exception:
                log.exception(
                    "event=message.failed channel=%s contact=%s", request.channel, mask_urn(request.address)
                )
                await self._keep_failed(request)
                raise HandlingFailed("the message could not be handled") from None
        elapsed = time.perf_counter() - started
        self.metrics.observe_message(request.channel, handled.reply.intent, elapsed, handled.duplicate)
        log.info(
            "event=message.handled channel=%s contact=%s intent=%s lang=%s duplicate=%s ms=%.1f",
            request.channel,
            mask_urn(request.address),
            handled.reply.intent,
            handled.reply.lang,
            handled.duplicate,
            elapsed * 1000,
        )
        return handled

    async def _handle_once(self, request: Request) -> Handled:
        async with self.db.write() as session:
            inbound = await self._stored(session, request)
            if inbound is not None:
                answered = await session.scalar(
                    select(Message).where(Message.reply_to_id == inbound.id, Message.direction == "out")
                )
                if answered is not None:
                    return Handled(
                        inbound.conversation_id, inbound.id, Reply.from_dict(answered.meta["response"]), True
                    )
            now = utcnow()
            contact, _address = await contact_for(session, request.address)
            conv = await current_conversation(session, contact, request.channel, now)
            fallback_lang = conv.lang or contact.lang or self.settings.default_lang
            lang = request.lang or detect_lang(request.text, fallback_lang)
            if inbound is None:
                inbound = self._message(request, conv.id, contact.id, lang)
                session.add(inbound)
                await session.flush()
            ctx = Context(
                session=session,
                settings=self.settings,
                request=request,
                lang=lang,
                contact=contact,
                conversation=conv,
                now=now,
            )
            reply = await self.router.route(ctx)
            inbound.status = "handled"
            inbound.intent = reply.intent.value
            inbound.lang = reply.lang
            inbound.conversation_id = conv.id
            conv.lang = contact.lang = reply.lang
            conv.last_intent = reply.intent.value
            conv.updated_at = now
            if reply.urgent:
                conv.urgent = contact.urgent = True
            session.add(
                Message(
                    conversation_id=conv.id,
                    contact_id=contact.id,
                    channel=request.channel.value,
                    direction="out",
                    urn=request.address,
                    text=reply.text,
                    lang=reply.lang,
                    intent=reply.intent.value,
                    status="replied",
                    reply_to_id=inbound.id,
                    meta={"response": reply.to_dict(), "urgent": reply.urgent},
                    created_at=utcnow(),
                )
            )
            await session.flush()
            return Handled(conv.id, inbound.id, reply, False)

    async def _stored(self, session: AsyncSession, request: Request) -> Message | None:
        if request.provider_id is None:
            return None
        return await session.scalar(
            select(Message).where(
                Message.channel == request.channel.value,
                Message.provider_id == request.provider_id,
                Message.direction == "in",
            )
        )

    def _message(self, request: Request, conversation_id: str, contact_id: int, lang: str | None) -> Message:
        meta: dict[str, object] = {}
        if request.location is not None:
            meta["location"] = {"lat": request.location.lat, "lon": request.location.lon}
        return Message(
            conversation_id=conversation_id,
            contact_id=contact_id,
            channel=request.channel.value,
            direction="in",
            urn=request.address,
            provider_id=request.provider_id,
            text=request.text,
            lang=lang,
            status="received",
            meta=meta,
            created_at=request.received_at,
        )

    async def _keep_failed(self, request: Request) -> None:
        """Keep a message we could not answer, so it is neither lost nor stored twice."""
        try:
            async with self.db.write() as session:
                if await self._stored(session, request) is not None:
                    return
                now = utcnow()
                contact, _ = await contact_for(session, request.address)
                conv = await current_conversation(session, contact, request.channel, now)
                msg = self._message(request, conv.id, contact.id, request.lang)
                msg.status = "failed"
                session.add(msg)
        except Exception:
            log.exception("event=message.lost channel=%s contact=%s", request.channel, mask_urn(request.address))
