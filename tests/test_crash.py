"""kill -9 in the middle of a flood, then restart: nothing answered is lost, nothing is doubled.

A real ``helpline serve`` process takes a flood of signed SMS webhooks, API messages and Telegram
updates (with re-deliveries) while its outbox worker sends queued SMS to the fake Twilio, which
answers slowly so that sends are in flight. The process is killed with SIGKILL (no shutdown hook
runs, claimed outbox rows stay claimed), started again, and the senders retry whatever was not
answered, as Twilio and Telegram do. Afterwards:

* every message ever answered 200 is in ``helpline export messages``, and no message is there twice;
* every outbox row is ``sent``, and the fake Twilio accepted each exactly once (counted by the
  idempotency token it receives), including rows the killed process had claimed and was sending.

The outbox lease is cut to 3 s (HELPLINE_OUTBOX_LEASE_SECONDS) so the killed process's rows come back
quickly. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path

import aiohttp
from fakes.processes import FloodPlan, Item, Serve, blast, export, free_port, inbound_keys, send, service_env
from fakes.telegram_api import FakeTelegramApi
from fakes.telegram_api import telegram_api_fixture  # noqa: F401 (the telegram_api fixture)
from fakes.twilio_api import FakeTwilioApi
from fakes.twilio_api import twilio_api_fixture  # noqa: F401 (the twilio_api fixture)
from sqlalchemy import func, select

from helpline.db import Database
from helpline.models import OutboxItem
from helpline.outbox import enqueue

ROWS_BEFORE = 12
ROWS_DURING = 12


async def _queue(db: Database, prefix: str, n: int) -> list[str]:
    keys = []
    async with db.write() as session:
        for i in range(n):
            item = await enqueue(session, f"tel:+86137{i:08d}", f"通知 {prefix}{i}: 明天上午停水", "notice",
                                 key=f"crash-{prefix}-{i}")
            keys.append(item.idempotency_key)
    return keys


async def _statuses(db: Database) -> dict[str, int]:
    async with db.read() as session:
        rows = await session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status))
        return {status: int(n) for status, n in rows}


async def test_kill_9_mid_flood_then_restart_loses_and_doubles_nothing(
    clean_db: str, tmp_path: Path, twilio_api: FakeTwilioApi, telegram_api: FakeTelegramApi,
) -> None:
    db = Database.from_url(clean_db)
    try:
        keys = await _queue(db, "before", ROWS_BEFORE)
        twilio_api.slow(1.5)  # each send takes a while: some are in flight when the kill comes
        env = service_env(clean_db, tmp_path / "var", twilio_url=twilio_api.url, telegram_url=telegram_api.url,
                          outbox_lease_seconds="3")
        port = free_port()
        server = await Serve(env, port, tmp_path / "serve.log").start()

        plan = FloodPlan(run="crash", redeliver_every=6)
        sent: list[Item] = []
        answers: dict[tuple[str, str], list[int | str]] = collections.defaultdict(list)
        killed = asyncio.Event()

        async def client(i: int, session: aiohttp.ClientSession) -> None:
            while not killed.is_set():
                item = plan.next(i)
                sent.append(item)
                answers[(item[0], item[1])].append(await send(session, server.url, item))

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            flood = asyncio.gather(*(client(i, session) for i in range(12)))
            keys += await _queue(db, "during", ROWS_DURING)  # enqueued while the flood runs
            deadline = time.monotonic() + 20
            # Kill once the flood is well under way and a send is in flight at the fake Twilio.
            while not (len(sent) >= 60 and twilio_api.requests > len(twilio_api.messages)):
                assert time.monotonic() < deadline, f"no send in flight: {server.log_tail()}"
                await asyncio.sleep(0.02)
            await server.kill9()
            killed.set()
            await flood
        claimed = (await _statuses(db)).get("sending", 0)
        assert claimed >= 1, "the killed process held no claimed outbox row"
        answered_before = {k for k, a in answers.items() if 200 in a}
        assert answered_before and any(200 not in a for a in answers.values()), "the kill did not land mid-flood"

        twilio_api.slow(0)
        server = await Serve(env, port, tmp_path / "serve.log").start()
        # The providers retry what was not answered (and re-send some that were).
        unanswered = [item for item in dict(((i[0], i[1]), i) for i in sent).values()
                      if 200 not in answers[(item[0], item[1])]]
        for key, got in (await blast(server.url, unanswered + sent[::5], concurrency=8)).items():
            answers[key] += got
        deadline = time.monotonic() + 30
        while (await _statuses(db)).get("sent", 0) < len(keys):
            assert time.monotonic() < deadline, f"outbox not drained: {await _statuses(db)}\n{server.log_tail()}"
            await asyncio.sleep(0.2)
        assert await server.stop() == 0
    finally:
        await db.dispose()

    # Every message answered 200 is stored exactly once; none is stored twice.
    stored = collections.Counter(inbound_keys(await export(env, "messages")))
    distinct = {(i[0], i[1]) for i in sent}
    assert all(200 in answers[k] for k in distinct), "a retried message was still not answered"
    assert {k: n for k, n in stored.items() if n > 1} == {}
    assert all(stored[k] == 1 for k in distinct)
    # Every outbox row went out exactly once, counted by the idempotency token the fake received.
    outbox = await export(env, "outbox")
    assert sorted(r["idempotency_key"] for r in outbox) == sorted(keys)
    assert {r["status"] for r in outbox} == {"sent"}
    accepted = collections.Counter(m["idempotency_token"] for m in twilio_api.messages)
    assert accepted == collections.Counter(keys)
    # Some rows reached the fake twice (sent by the killed process, then again after its lease ran
    # out): the token made the repeat a no-op.
    assert len(twilio_api.tokens) > len(twilio_api.messages)
