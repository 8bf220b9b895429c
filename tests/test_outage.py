"""Provider outages: the fake Twilio and Telegram APIs fail for a while (500s, dropped connections,
no answer at all); outbound messages wait in the outbox with backoff and all arrive once the fakes
recover, each once; past the retry limit they are dead letters that operators see.

The running app's own outbox worker (real twilio and aiogram clients) is stepped with its
``run_once(now=...)`` clock a day ahead, so the worker's background loop (on the real clock)
never finds these rows due and nothing sleeps for backoff. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from datetime import datetime, timedelta

import pytest
from fakes.telegram_api import TOKEN, FakeTelegramApi
from fakes.telegram_api import telegram_api_fixture  # noqa: F401 (the telegram_api fixture)
from fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilioApi
from fakes.twilio_api import twilio_api_fixture  # noqa: F401 (the twilio_api fixture)
from sqlalchemy import select

from channels.telegram_sender import TelegramSender
from channels.twilio_sender import TwilioSmsSender
from helpline.app import create_app
from helpline.appkeys import OUTBOX
from helpline.config import Settings
from helpline.db import Database
from helpline.export import export
from helpline.metrics import Metrics
from helpline.models import OutboxItem, utcnow
from helpline.outbox import enqueue
from helpline.outbox_worker import BACKOFF_CAP, OutboxWorker

N = 4  # rows per channel


@pytest.fixture
def live_settings(settings: Settings, twilio_api: FakeTwilioApi, telegram_api: FakeTelegramApi) -> Settings:
    return dataclasses.replace(
        settings, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, twilio_from=FROM_NUMBER,
        twilio_api_url=twilio_api.url, telegram_token=TOKEN, telegram_secret="outage-secret",
        telegram_api_url=telegram_api.url,
    )


@pytest.fixture
async def app_client(aiohttp_client, live_settings: Settings):  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(live_settings))


async def _queue(db: Database, at: datetime) -> list[str]:
    keys = []
    async with db.write() as session:
        for i in range(N):
            for urn in (f"tel:+8613900{i:06d}", f"telegram:{5000 + i}"):
                item = await enqueue(session, urn, f"台风预警 {i}：请留在室内", "notice", key=f"outage-{urn}", now=at)
                keys.append(item.idempotency_key)
    return keys


async def _rows(db: Database) -> list[OutboxItem]:
    async with db.read() as session:
        return list(await session.scalars(select(OutboxItem).order_by(OutboxItem.id)))


def _both(twilio_api: FakeTwilioApi, telegram_api: FakeTelegramApi, mode: str | None) -> None:
    twilio_api.fail_mode(mode)
    telegram_api.fail_mode(mode)


async def test_an_outage_holds_messages_with_backoff_and_all_arrive_once_after_it(
    app_client, db: Database, twilio_api: FakeTwilioApi, telegram_api: FakeTelegramApi,  # type: ignore[no-untyped-def]
) -> None:
    worker: OutboxWorker = app_client.server.app[OUTBOX]
    t0 = utcnow() + timedelta(days=1)  # the worker's own loop (real clock) never finds these rows due
    keys = await _queue(db, t0)
    now = t0
    for mode in ("500", "refuse", "500"):
        _both(twilio_api, telegram_api, mode)
        assert await worker.run_once(now=now) == 2 * N
        rows = await _rows(db)
        assert {r.status for r in rows} == {"failed"}
        # Each waits its backoff: nothing is due a moment later.
        assert await worker.run_once(now=now + timedelta(seconds=1)) == 0
        now = max(r.next_attempt_at for r in rows) + timedelta(seconds=1)
    assert [r.attempts for r in await _rows(db)] == [3] * (2 * N)
    assert twilio_api.messages == [] and telegram_api.sent() == []

    _both(twilio_api, telegram_api, None)  # the providers are back
    assert await worker.run_once(now=now) == 2 * N
    assert await worker.run_once(now=now + timedelta(hours=1)) == 0
    rows = await _rows(db)
    assert {r.status for r in rows} == {"sent"}
    assert sorted(m["idempotency_token"] for m in twilio_api.messages) == sorted(k for k in keys if "tel:" in k)
    assert sorted(p["chat_id"] for p in telegram_api.sent()) == [5000 + i for i in range(N)]


async def test_providers_that_do_not_answer_are_timed_out_and_retried(
    db: Database, live_settings: Settings, twilio_api: FakeTwilioApi, telegram_api: FakeTelegramApi,
) -> None:
    """No answer at all: the senders give up after their timeout (short here) and the rows wait."""
    sms = TwilioSmsSender(live_settings, timeout=0.5)
    telegram = TelegramSender(live_settings, db=db)
    telegram.bot.session.timeout = 0.5
    worker = OutboxWorker(db, live_settings, Metrics(), {"sms": sms, "telegram": telegram}, "outage-timeouts")
    try:
        t0 = utcnow()
        await _queue(db, t0)
        _both(twilio_api, telegram_api, "timeout")
        assert await worker.run_once(now=t0) == 2 * N
        rows = await _rows(db)
        assert {r.status for r in rows} == {"failed"}
        assert all(re.search(r"timeout|unreachable|network", r.last_error or "", re.I) for r in rows), \
            [r.last_error for r in rows]
        _both(twilio_api, telegram_api, None)
        assert await worker.run_once(now=t0 + timedelta(minutes=1)) == 2 * N
        assert {r.status for r in await _rows(db)} == {"sent"}
        assert len(twilio_api.messages) == N and len(telegram_api.sent()) == N
    finally:
        await sms.close()
        await telegram.close()


async def test_past_the_retry_limit_rows_are_dead_letters_operators_can_see(
    app_client, db: Database, twilio_api: FakeTwilioApi, telegram_api: FakeTelegramApi,  # type: ignore[no-untyped-def]
) -> None:
    worker: OutboxWorker = app_client.server.app[OUTBOX]
    t0 = utcnow() + timedelta(days=1)
    await _queue(db, t0)
    _both(twilio_api, telegram_api, "500")
    now = t0
    for attempt in range(1, 9):
        assert await worker.run_once(now=now) == 2 * N, f"attempt {attempt}"
        now += timedelta(seconds=BACKOFF_CAP * 1.3)
    rows = await _rows(db)
    assert {r.status for r in rows} == {"dead"}
    assert {r.attempts for r in rows} == {8}
    _both(twilio_api, telegram_api, None)
    assert await worker.run_once(now=now + timedelta(days=1)) == 0  # dead letters are not retried
    assert twilio_api.messages == [] and telegram_api.sent() == []

    # What operators see: the export lists them with the last error, /metrics counts them.
    out = io.StringIO()
    await export(db, "outbox", "jsonl", out)
    exported = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["status"] for r in exported] == ["dead"] * (2 * N)
    assert all("500" in (r["last_error"] or "") or "Internal" in (r["last_error"] or "") for r in exported)
    metrics = await (await app_client.get("/metrics")).text()
    assert f'helpline_outbox_depth{{status="dead"}} {2 * N}.0' in metrics
    assert re.search(r'helpline_outbox_total\{channel="sms",result="dead"\} 4\.0', metrics)
