"""The inbound pipeline every channel calls: store, route, store the reply — in one transaction.

Storing the inbound message, everything the handlers change and the reply commit together, so a
message is either fully handled or not at all, and the channel acknowledges only after the commit.
The provider's message id is unique per channel: a re-delivery finds the stored reply and gets
exactly the same answer, and two copies arriving at once collide on the unique index, after which
the loser reads the winner's reply.

**Group commit.** Messages that arrive while a transaction is running wait for the next one and
are handled together: one lookup of all their contacts and conversations, one multi-row insert of
the inbound messages, each routed in turn, one insert of the replies, one commit. Under a flood
this turns a commit per message into a commit per batch; when the line is quiet a batch is one
message and nothing waits. If a batch fails, each of its messages is retried alone, so one bad
message never takes the others with it. If a message still cannot be answered it is kept (status
``failed``) and the channel answers "try again"; the provider's retry then handles that same row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.config import Settings
from helpline.contacts import contacts_for, conversations_for
from helpline.db import Database
from helpline.lang import detect_lang
from helpline.logs import mask_urn
from helpline.metrics import Metrics
from helpline.models import Message, utcnow
from helpline.ratelimit import ContactLimiter, Verdict
from helpline.request import Channel, Intent, Reply, Request
from helpline.router import Context, Router

log = logging.getLogger("helpline.inbound")

_ATTEMPTS = 3
_BATCH_MAX = 64


class HandlingFailed(Exception):
    """The message is stored but could not be answered now; the sender should retry."""


@dataclass(frozen=True, slots=True)
class Handled:
    conversation_id: str
    message_id: int
    reply: Reply
    duplicate: bool


@dataclass(slots=True)
class _Pending:
    request: Request
    future: asyncio.Future[Handled]
    started: float = field(default_factory=time.perf_counter)


class Inbox:
    """Takes a channel's Request, returns the Reply; the one door into the router."""

    def __init__(self, db: Database, router: Router, settings: Settings, metrics: Metrics) -> None:
        self.db = db
        self.router = router
        self.settings = settings
        self.metrics = metrics
        self.limiter = ContactLimiter(settings.rate_limit_per_minute)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writers: list[asyncio.Task[None]] = []
        # One writer on SQLite (it has one write lock anyway); a few on PostgreSQL, which commits in parallel.
        self._writer_count = 1 if db.is_sqlite else 4

    async def handle(self, request: Request) -> Handled:
        """Store and answer one message; raises HandlingFailed when it could only be stored."""
        if not self._writers:
            self._writers = [asyncio.create_task(self._writer()) for _ in range(self._writer_count)]
        pending = _Pending(request, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(pending)
        return await asyncio.shield(pending.future)

    async def close(self) -> None:
        """Finish what is queued, then stop the writers (graceful shutdown)."""
        await self._queue.join()
        for task in self._writers:
            task.cancel()
        for task in self._writers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._writers = []

    async def _writer(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH_MAX and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._run(batch)
            except Exception:  # pragma: no cover - _run settles every future itself
                log.exception("event=inbox.writer_error")
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _run(self, batch: list[_Pending]) -> None:
        self.metrics.batch.observe(len(batch))
        try:
            results = await self._process([p.request for p in batch])
        except Exception as exc:
            if len(batch) == 1 and not isinstance(exc, IntegrityError):
                await self._give_up(batch[0], exc)
                return
            # Retry each message alone, so a bad one cannot take the batch down with it.
            for pending in batch:
                await self._run_alone(pending)
            return
        for pending, handled in zip(batch, results, strict=True):
            self._settle(pending, handled)

    async def _run_alone(self, pending: _Pending) -> None:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                (handled,) = await self._process([pending.request])
            except IntegrityError as exc:
                # A concurrent first message from the same address or with the same provider id
                # (another instance) won the race; the next attempt sees its rows.
                if attempt == _ATTEMPTS:
                    await self._give_up(pending, exc)
                    return
            except Exception as exc:
                await self._give_up(pending, exc)
                return
            else:
                self._settle(pending, handled)
                return

    def _settle(self, pending: _Pending, handled: Handled) -> None:
        elapsed = time.perf_counter() - pending.started
        request = pending.request
        self.metrics.observe_message(request.channel, handled.reply.intent, elapsed, handled.duplicate)
        log.info(
            "event=message.handled channel=%s contact=%s intent=%s lang=%s duplicate=%s ms=%.1f",
            request.channel, mask_urn(request.address), handled.reply.intent, handled.reply.lang,
            handled.duplicate, elapsed * 1000,
        )
        if not pending.future.done():
            pending.future.set_result(handled)

    async def _give_up(self, pending: _Pending, exc: BaseException) -> None:
        request = pending.request
        log.error(
            "event=message.failed channel=%s contact=%s error=%r",
            request.channel, mask_urn(request.address), exc, exc_info=exc,
        )
        await self._keep_failed(request)
        if not pending.future.done():
            pending.future.set_exception(HandlingFailed("the message was kept but could not be answered"))

    async def _process(self, requests: list[Request]) -> list[Handled]:
        """Handle a batch in one transaction; returns one Handled per request, in order."""
        async with self.db.write() as session:
            now = utcnow()
            answered, stored = await self._earlier(session, requests)
            fresh: dict[tuple[str, str], int] = {}  # provider key -> index of its first copy here
            todo: list[int] = []
            for i, req in enumerate(requests):
                key = _key(req)
                if key is None or (key not in answered and key not in fresh):
                    if key is not None:
                        fresh[key] = i
                    todo.append(i)
            contacts = await contacts_for(session, {requests[i].address for i in todo}) if todo else {}
            convs = (
                await conversations_for(
                    session, [(contacts[requests[i].address], requests[i].channel.value) for i in todo], now
                )
                if todo
                else {}
            )
            replies: dict[int, Reply] = {}
            for i in todo:
                req = requests[i]
                contact = contacts[req.address]
                conv = convs[(contact.id, req.channel.value)]
                lang = req.lang or detect_lang(req.text, conv.lang or contact.lang or self.settings.default_lang)
                if (throttle := self._throttle(req, lang)) is not None:
                    replies[i] = throttle  # stored below, not routed: the conversation is left as it was
                    continue
                ctx = Context(
                    session=session, settings=self.settings, request=req, lang=lang,
                    contact=contact, conversation=conv, now=now,
                )
                reply = await self.router.route(ctx)
                replies[i] = reply
                conv.lang = contact.lang = reply.lang
                conv.last_intent = reply.intent.value
                conv.updated_at = now
                if reply.urgent:
                    conv.urgent = contact.urgent = True
            await session.flush()
            # The messages go in with plain multi-row inserts: for a flood this is the hot path.
            conv_of = {i: convs[(contacts[requests[i].address].id, requests[i].channel.value)].id for i in todo}
            ids: dict[int, int] = {}
            new = [i for i in todo if _key(requests[i]) not in stored]
            if new:
                rows = [_inbound_row(requests[i], conv_of[i], contacts[requests[i].address].id, replies[i]) for i in new]
                result = await session.execute(
                    insert(Message.__table__).returning(Message.id, sort_by_parameter_order=True), rows
                )
                ids.update(zip(new, result.scalars(), strict=True))
            for i in todo:
                earlier = stored.get(_key(requests[i]) or ("", ""))
                if earlier is not None:  # kept as failed before: this is its retry
                    earlier.status, earlier.intent, earlier.lang = "handled", replies[i].intent.value, replies[i].lang
                    earlier.conversation_id = conv_of[i]
                    ids[i] = earlier.id
            await session.flush()
            if todo:
                await session.execute(
                    insert(Message.__table__),
                    [
                        _reply_row(requests[i], conv_of[i], contacts[requests[i].address].id, replies[i], ids[i], now)
                        for i in todo
                    ],
                )

        results: list[Handled] = []
        for i, req in enumerate(requests):
            key = _key(req)
            if i in replies:
                results.append(Handled(conv_of[i], ids[i], replies[i], False))
            elif key in answered:
                msg, reply = answered[key]
                results.append(Handled(msg.conversation_id, msg.id, reply, True))
            else:  # a second copy within this batch: same answer as the first
                first = results[fresh[key]] if key is not None else None
                assert first is not None
                results.append(Handled(first.conversation_id, first.message_id, first.reply, True))
        return results

    def _throttle(self, req: Request, lang: str) -> Reply | None:
        """The answer for a sender over the rate limit, or None to route the message as usual.

        A call paces itself, and an emergency is always answered, however many came before it.
        """
        if req.channel is Channel.VOICE:
            return None
        verdict = self.limiter.check(req.address)
        if verdict is Verdict.ALLOW:
            return None
        if self.router.classifier.classify(req.text, lang).intent is Intent.EMERGENCY:
            return None
        log.warning("event=message.throttled channel=%s contact=%s verdict=%s",
                    req.channel, mask_urn(req.address), verdict.value)
        return Reply(text=throttle_text(lang) if verdict is Verdict.REFUSE else "", intent=Intent.UNKNOWN,
                     lang=lang, throttled=True)

    async def _earlier(
        self, session: AsyncSession, requests: list[Request]
    ) -> tuple[dict[tuple[str, str], tuple[Message, Reply]], dict[tuple[str, str], Message]]:
        """Messages of this batch stored before: answered ones (with their reply) and unanswered ones."""
        by_channel: dict[str, set[str]] = {}
        for req in requests:
            if req.provider_id is not None:
                by_channel.setdefault(req.channel.value, set()).add(req.provider_id)
        stored: dict[tuple[str, str], Message] = {}
        for channel, ids in by_channel.items():
            rows = await session.scalars(
                select(Message).where(
                    Message.channel == channel, Message.provider_id.in_(ids), Message.direction == "in"
                )
            )
            stored.update({(m.channel, m.provider_id or ""): m for m in rows})
        answered: dict[tuple[str, str], tuple[Message, Reply]] = {}
        if stored:
            by_id = {m.id: key for key, m in stored.items()}
            outs = await session.scalars(
                select(Message).where(Message.reply_to_id.in_(by_id), Message.direction == "out")
            )
            for out in outs:
                key = by_id[out.reply_to_id or 0]
                reply = Reply.from_dict(out.meta["response"])
                if out.meta.get("urgent") or out.meta.get("throttled"):
                    reply = replace(reply, urgent=bool(out.meta.get("urgent")), throttled=bool(out.meta.get("throttled")))
                answered[key] = (stored.pop(key), reply)
        return answered, stored

    async def _keep_failed(self, request: Request) -> None:
        """Keep a message we could not answer, so it is neither lost nor stored twice."""
        try:
            async with self.db.write() as session:
                answered, stored = await self._earlier(session, [request])
                if answered or stored:
                    return
                contacts = await contacts_for(session, [request.address])
                contact = contacts[request.address]
                convs = await conversations_for(session, [(contact, request.channel.value)], utcnow())
                msg = _message(request, convs[(contact.id, request.channel.value)].id, contact.id)
                msg.status = "failed"
                session.add(msg)
        except Exception:
            log.exception("event=message.lost channel=%s contact=%s", request.channel, mask_urn(request.address))


def throttle_text(lang: str) -> str:
    """What a sender over the rate limit is told, once a minute at most."""
    if lang == "zh":
        return "您发送的消息太多太快了，我们已经收到，会有人查看。请一分钟后再发。如有紧急情况请直接拨打110、119或120。"
    return ("You are sending messages too fast. We have received them and a person will look at them; please wait "
            "a minute before sending more. In an emergency call 110, 119 or 120.")


def _key(request: Request) -> tuple[str, str] | None:
    return None if request.provider_id is None else (request.channel.value, request.provider_id)


def _inbound_row(request: Request, conversation_id: str, contact_id: int, reply: Reply) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id, "contact_id": contact_id, "channel": request.channel.value,
        "direction": "in", "urn": request.address, "provider_id": request.provider_id, "text": request.text,
        "lang": reply.lang, "intent": reply.intent.value, "status": "throttled" if reply.throttled else "handled",
        "reply_to_id": None,
        "meta": _meta(request), "created_at": request.received_at,
    }


def _reply_row(
    request: Request, conversation_id: str, contact_id: int, reply: Reply, inbound_id: int, now: datetime
) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id, "contact_id": contact_id, "channel": request.channel.value,
        "direction": "out", "urn": request.address, "provider_id": None, "text": reply.text,
        "lang": reply.lang, "intent": reply.intent.value, "status": "replied", "reply_to_id": inbound_id,
        "meta": {"response": reply.to_dict(), "urgent": reply.urgent, "throttled": reply.throttled}, "created_at": now,
    }


def _meta(request: Request) -> dict[str, Any]:
    if request.location is None:
        return {}
    return {"location": {"lat": request.location.lat, "lon": request.location.lon}}


def _message(request: Request, conversation_id: str, contact_id: int) -> Message:
    return Message(
        conversation_id=conversation_id, contact_id=contact_id, channel=request.channel.value,
        direction="in", urn=request.address, provider_id=request.provider_id, text=request.text,
        lang=request.lang, status="received", meta=_meta(request), created_at=request.received_at,
    )
