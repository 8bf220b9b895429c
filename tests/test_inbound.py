"""The inbound pipeline: group commit, isolation of a failing message, nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from helpline.app import build_router
from helpline.classify import RuleClassifier
from helpline.config import Settings
from helpline.db import Database
from helpline.handlers import menu
from helpline.inbound import HandlingFailed, Inbox
from helpline.metrics import Metrics
from helpline.models import Message
from helpline.request import Channel, Intent, Reply, Request
from helpline.router import Context, Router


def exploding_router(state: dict[str, bool]) -> Router:
    """The real menu, plus a handler that fails on 'boom' while state['broken'] is set."""

    async def fallback(ctx: Context) -> Reply:
        if "boom" in ctx.request.text and state["broken"]:
            raise RuntimeError("handler bug")
        return await menu.fallback(ctx)

    router = Router(RuleClassifier.shipped(), fallback)
    router.register(Intent.MENU, menu.menu)
    return router


async def stored(db: Database) -> list[Message]:
    async with db.read() as s:
        return list((await s.scalars(select(Message).order_by(Message.id))).all())


async def test_concurrent_messages_commit_together(db: Database, settings: Settings) -> None:
    metrics = Metrics()
    inbox = Inbox(db, build_router(), settings, metrics)
    try:
        results = await asyncio.gather(*(inbox.handle(Request(Channel.WEB, f"web:g{i}", "你好")) for i in range(40)))
    finally:
        await inbox.close()
    assert all(r.reply.intent is Intent.MENU for r in results)
    assert len({r.message_id for r in results}) == 40
    batches = metrics.batch.collect()[0].samples
    count = next(s.value for s in batches if s.name.endswith("_count"))
    assert count < 40  # group commit happened
    rows = await stored(db)
    assert len(rows) == 80
    # every reply points at its own inbound message, in the same conversation
    by_id = {m.id: m for m in rows}
    for out in (m for m in rows if m.direction == "out"):
        assert by_id[out.reply_to_id].conversation_id == out.conversation_id


async def test_messages_of_one_contact_in_one_batch_keep_their_order(db: Database, settings: Settings) -> None:
    inbox = Inbox(db, build_router(), settings, Metrics())
    try:
        first, second = await asyncio.gather(
            inbox.handle(Request(Channel.WEB, "web:order", "hello")),
            inbox.handle(Request(Channel.WEB, "web:order", "5")),
        )
    finally:
        await inbox.close()
    assert first.reply.intent is Intent.MENU
    # the second message saw the menu the first one opened
    assert "case or booking number" in second.reply.text
    assert first.conversation_id == second.conversation_id


async def test_one_failing_message_does_not_take_its_batch_down(db: Database, settings: Settings) -> None:
    state = {"broken": True}
    inbox = Inbox(db, exploding_router(state), settings, Metrics())
    try:
        requests = [Request(Channel.WEB, f"web:b{i}", "boom" if i == 3 else "hi", provider_id=f"p{i}") for i in range(8)]
        results = await asyncio.gather(*(inbox.handle(r) for r in requests), return_exceptions=True)
        assert isinstance(results[3], HandlingFailed)
        assert all(not isinstance(r, Exception) for i, r in enumerate(results) if i != 3)
        rows = await stored(db)
        failed = [m for m in rows if m.status == "failed"]
        assert [m.provider_id for m in failed] == ["p3"]  # kept, not lost
        assert sum(1 for m in rows if m.direction == "in") == 8

        # The provider retries once the fault is gone: the same stored row is answered, not a new one.
        state["broken"] = False
        again = await inbox.handle(requests[3])
        assert again.reply.intent is Intent.UNKNOWN and again.message_id == failed[0].id
        rows = await stored(db)
        assert sum(1 for m in rows if m.direction == "in") == 8
        assert sum(1 for m in rows if m.direction == "out") == 8
        assert not [m for m in rows if m.status == "failed"]
    finally:
        await inbox.close()


async def test_duplicates_inside_one_batch_are_stored_once(db: Database, settings: Settings) -> None:
    inbox = Inbox(db, build_router(), settings, Metrics())
    try:
        results = await asyncio.gather(
            *(inbox.handle(Request(Channel.WEB, "web:d", "hello", provider_id="same")) for _ in range(5))
        )
    finally:
        await inbox.close()
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.message_id for r in results}) == 1
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Message)) == 2


async def test_two_instances_racing_on_one_provider_id(db_url: str, settings: Settings) -> None:
    """Two inboxes on two engines stand for two server processes receiving the same re-delivery."""
    dbs = [Database.from_url(db_url), Database.from_url(db_url)]
    inboxes = [Inbox(d, build_router(), settings, Metrics()) for d in dbs]
    try:
        results = await asyncio.gather(
            *(inboxes[i % 2].handle(Request(Channel.WEB, f"web:r{i % 3}", "hi", provider_id=f"x{i % 4}")) for i in range(24))
        )
    finally:
        for inbox in inboxes:
            await inbox.close()
        for d in dbs:
            await d.dispose()
    assert len({r.message_id for r in results}) == 4
    check = Database.from_url(db_url)
    try:
        async with check.read() as s:
            assert await s.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) == 4
    finally:
        await check.dispose()


@pytest.mark.parametrize("text", ["", "x" * 10])
async def test_close_is_safe_when_idle(db: Database, settings: Settings, text: str) -> None:
    inbox = Inbox(db, build_router(), settings, Metrics())
    if text:
        await inbox.handle(Request(Channel.WEB, "web:c", text))
    await inbox.close()
    await inbox.close()
