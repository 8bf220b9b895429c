"""Two ``helpline serve`` processes on one PostgreSQL database, as behind a reverse proxy.

* Both run the outbox worker: rows enqueued while both run are each sent exactly once — the fake
  Twilio receives every idempotency token once, so no row was even attempted twice.
* Both run the scheduled jobs: a booking whose hour-before reminder falls due is reminded once,
  by whichever instance took the job's lease, never by both.
* Both answer on one port (``--reuse-port``), and a flood through that port is stored once.
"""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import timedelta
from pathlib import Path

import pytest
from fakes.processes import FloodPlan, Serve, blast, free_port, inbound_keys, service_env
from fakes.telegram_api import FakeTelegramApi
from fakes.telegram_api import telegram_api_fixture  # noqa: F401 (the telegram_api fixture)
from fakes.twilio_api import FakeTwilioApi
from fakes.twilio_api import twilio_api_fixture  # noqa: F401 (the twilio_api fixture)
from sqlalchemy import select
from test_booking_support import ROUND_THE_CLOCK, RULES, load, next_hour_slot

from helpline.booking.service import accept, book
from helpline.db import Database
from helpline.export import EXPORTS
from helpline.models import OutboxItem, utcnow
from helpline.outbox import enqueue

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


async def _wait(condition, what: str, timeout: float = 40.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_two_instances_send_each_outbox_row_and_each_reminder_once(
    clean_db: str, tmp_path: Path, twilio_api: FakeTwilioApi, telegram_api: FakeTelegramApi,
) -> None:
    db = Database.from_url(clean_db)
    try:
        # A booking made three hours ago for a slot starting within the hour: its hour-before
        # reminder is due as soon as a jobs round runs.
        then = utcnow() - timedelta(hours=3)
        await load(db, ROUND_THE_CLOCK, then)
        async with db.write() as session:
            booking = await book(session, service_code="plumbing", slot_id=next_hour_slot("pa", 1),
                                 urn="tel:+8613800138000", name="张先生", address="海曙区石碶街道雅戈尔大道100号",
                                 rules=RULES, now=then, actor="test", channel="sms")
            await accept(session, booking, rules=RULES, now=then, actor="provider:test")
        reminder = f"booking-{booking.number}-remind-hour-0"

        twilio_api.slow(0.05)
        env = service_env(clean_db, tmp_path / "var", twilio_url=twilio_api.url, telegram_url=telegram_api.url)
        port = free_port()
        first = await Serve(env, port, tmp_path / "a.log", reuse_port=True).start()
        second = await Serve(env, port, tmp_path / "b.log", reuse_port=True).start()
        try:
            keys: list[str] = []
            for batch in range(6):  # rows enqueued over a couple of seconds while both workers poll
                async with db.write() as session:
                    for i in range(8):
                        item = await enqueue(session, f"tel:+86136{batch:02d}{i:06d}", f"停水通知 {batch}-{i}", "notice",
                                             key=f"multi-{batch}-{i}")
                        keys.append(item.idempotency_key)
                await asyncio.sleep(0.3)

            async def all_sent() -> bool:
                async with db.read() as session:
                    rows = list(await session.scalars(select(OutboxItem).where(OutboxItem.idempotency_key.in_(keys))))
                return len(rows) == len(keys) and all(r.status == "sent" for r in rows)

            await _wait(all_sent, "the outbox to drain")
            await _wait(lambda: _has(twilio_api, reminder), "the booking reminder")

            # A flood through the shared port is answered by both and stored once.
            plan = FloodPlan(run="multi", redeliver_every=4)
            items = [plan.next(i % 8) for i in range(120)]
            answers = await blast(first.url, items, concurrency=12)
            assert all(200 in a for a in answers.values()), collections.Counter(s for a in answers.values() for s in a)
            await asyncio.sleep(6)  # a jobs round or more in each instance (they poll every 5 s)
        finally:
            assert await first.stop() == 0
            assert await second.stop() == 0

        tokens = collections.Counter(twilio_api.tokens)
        assert all(tokens[k] == 1 for k in keys), {k: tokens[k] for k in keys if tokens[k] != 1}
        assert tokens[reminder] == 1
        async with db.read() as session:
            claimed_by = set(await session.scalars(
                select(OutboxItem.claimed_by).where(OutboxItem.idempotency_key.in_(keys))))
        assert claimed_by and None not in claimed_by
        rows = [r async for r in EXPORTS["messages"][0](db)]
        stored = collections.Counter(inbound_keys(rows))
        assert all(stored[k] == 1 for k in answers), [k for k in answers if stored[k] != 1]
    finally:
        await db.dispose()


async def _has(twilio_api: FakeTwilioApi, token: str) -> bool:
    return token in twilio_api.tokens
