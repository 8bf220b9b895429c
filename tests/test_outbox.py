"""The outbox end to end: enqueue in a transaction, the worker sends through the real twilio
client to a fake Twilio API, results land in the database. Runs on SQLite and PostgreSQL.

Retries are stepped with an explicit clock (``run_once(now=...)``); nothing sleeps for backoff.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilioApi
from fakes.twilio_api import twilio_api_fixture  # noqa: F401 (the twilio_api fixture)
from sqlalchemy import func, select, update

from channels.twilio_sender import TwilioSmsSender, build_sms_sender
from helpline.config import Settings
from helpline.db import Database
from helpline.metrics import Metrics
from helpline.models import ContactAddress, Message, OutboxItem, utcnow
from helpline.outbox import enqueue
from helpline.outbox_worker import (
    OutboxWorker,
    PermanentSendError,
    Sender,
    TemporarySendError,
    outbox_depth,
    refresh_outbox_metrics,
)

URN = "tel:+8613800001234"


@pytest.fixture
def sms_settings(settings: Settings, twilio_api: FakeTwilioApi) -> Settings:
    return dataclasses.replace(
        settings,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from=FROM_NUMBER,
        twilio_api_url=twilio_api.url,
    )


@pytest.fixture
async def sender(sms_settings: Settings) -> AsyncIterator[TwilioSmsSender]:
    sms = build_sms_sender(sms_settings)
    assert sms is not None
    yield sms
    await sms.close()


@pytest.fixture
def worker(db: Database, sms_settings: Settings, sender: TwilioSmsSender) -> OutboxWorker:
    return make_worker(db, sms_settings, {"sms": sender})


def make_worker(db: Database, settings: Settings, senders: dict[str, Sender], name: str = "w1") -> OutboxWorker:
    return OutboxWorker(db, settings, Metrics(), senders, name)


async def queue(db: Database, body: str = "您的预约明天上午9点", urn: str = URN, key: str | None = None) -> int:
    async with db.write() as session:
        item = await enqueue(session, urn, body, "reminder", key=key)
        return item.id


async def row(db: Database, item_id: int) -> OutboxItem:
    async with db.read() as session:
        item = await session.get(OutboxItem, item_id)
        assert item is not None
        return item


async def message_of(db: Database, item: OutboxItem) -> Message:
    async with db.read() as session:
        message = await session.get(Message, item.message_id)
        assert message is not None
        return message


def counted(worker: OutboxWorker, result: str) -> float:
    return worker.metrics.outbox.labels("sms", result)._value.get()


# -- the happy path and the write side ---------------------------------------------------


async def test_rolled_back_enqueue_sends_nothing(
    db: Database, worker: OutboxWorker, twilio_api: FakeTwilioApi
) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            await enqueue(session, URN, "never", "notice")
            raise RuntimeError("the booking failed")
    assert await worker.run_once() == 0
    assert twilio_api.requests == 0
    assert (await outbox_depth(db))["pending"] == 0


async def test_enqueued_message_is_sent_once(
    db: Database, worker: OutboxWorker, sms_settings: Settings, twilio_api: FakeTwilioApi
) -> None:
    item_id = await queue(db, "您的预约明天上午9点")
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0  # nothing left: not sent again

    [sent] = twilio_api.messages
    assert (sent["to"], sent["from"], sent["body"]) == ("+8613800001234", FROM_NUMBER, "您的预约明天上午9点")
    assert sent["status_callback"] == sms_settings.public_url + "/twilio/status"
    item = await row(db, item_id)
    assert sent["idempotency_token"] == item.idempotency_key
    assert (item.status, item.provider_id, item.attempts) == ("sent", sent["sid"], 0)
    assert item.sent_at is not None
    assert item.provider_id.startswith("SM") and len(item.provider_id) == 34
    message = await message_of(db, item)
    assert (message.status, message.provider_id, message.direction) == ("sent", sent["sid"], "out")
    assert counted(worker, "sent") == 1
    assert twilio_api.requests == 1


async def test_enqueue_key_is_idempotent(
    db: Database, worker: OutboxWorker, twilio_api: FakeTwilioApi
) -> None:
    first = await queue(db, key="booking:42:reminder")
    second = await queue(db, key="booking:42:reminder")
    assert first == second
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxItem)) == 1
        assert await session.scalar(select(func.count()).select_from(Message)) == 1
    await worker.run_once()
    assert len(twilio_api.messages) == 1


# -- not sending ---------------------------------------------------------------------------


async def test_opted_out_address_is_skipped(
    db: Database, worker: OutboxWorker, twilio_api: FakeTwilioApi
) -> None:
    item_id = await queue(db)
    async with db.write() as session:
        await session.execute(
            update(ContactAddress).where(ContactAddress.urn == URN).values(opted_out_at=utcnow())
        )
    assert await worker.run_once() == 1
    item = await row(db, item_id)
    assert (item.status, item.last_error) == ("skipped", "recipient opted out")
    assert (await message_of(db, item)).status == "skipped"
    assert twilio_api.requests == 0
    assert counted(worker, "skipped") == 1


async def test_channel_without_sender_is_skipped(db: Database, settings: Settings) -> None:
    worker = make_worker(db, settings, {})  # Twilio not configured
    assert build_sms_sender(settings) is None
    item_id = await queue(db)
    assert await worker.run_once() == 1
    item = await row(db, item_id)
    assert item.status == "skipped" and "sms" in (item.last_error or "")


# -- retries -------------------------------------------------------------------------------


async def test_server_errors_are_retried_with_backoff(
    db: Database, worker: OutboxWorker, twilio_api: FakeTwilioApi
) -> None:
    twilio_api.fail_next(2, status=500)
    item_id = await queue(db)
    t0 = utcnow()

    await worker.run_once(now=t0)
    first = await row(db, item_id)
    assert (first.status, first.attempts) == ("failed", 1)
    assert "500" in (first.last_error or "")
    assert timedelta(seconds=1.5) <= first.next_attempt_at - t0 <= timedelta(seconds=2.5)
    assert await worker.run_once(now=t0 + timedelta(seconds=1)) == 0  # not due yet

    t1 = first.next_attempt_at
    await worker.run_once(now=t1)
    second = await row(db, item_id)
    assert (second.status, second.attempts) == ("failed", 2)
    assert timedelta(seconds=3) <= second.next_attempt_at - t1 <= timedelta(seconds=5)  # doubled

    await worker.run_once(now=second.next_attempt_at)
    done = await row(db, item_id)
    assert (done.status, done.attempts, done.last_error) == ("sent", 2, None)
    assert twilio_api.requests == 3
    assert len(twilio_api.messages) == 1
    assert set(twilio_api.tokens) == {done.idempotency_key}  # every try carried the same token
    assert (await message_of(db, done)).status == "sent"
    assert counted(worker, "failed") == 2


@pytest.mark.parametrize(
    ("mode", "error"),
    [("timeout", "TimeoutError"), ("slow", "TimeoutError"), ("refuse", "unreachable"), ("500", "twilio 500")],
)
async def test_unreachable_provider_is_retried(
    db: Database, sms_settings: Settings, worker: OutboxWorker, twilio_api: FakeTwilioApi,
    mode: str, error: str,
) -> None:
    impatient = TwilioSmsSender(sms_settings, timeout=0.5)  # gives up long before the fake answers
    try:
        if mode == "slow":
            twilio_api.slow(30)
        else:
            twilio_api.fail_mode(mode)
        item_id = await queue(db)
        await make_worker(db, sms_settings, {"sms": impatient}, "impatient").run_once()
        failed = await row(db, item_id)
        assert (failed.status, failed.attempts) == ("failed", 1)
        assert error in (failed.last_error or "")
    finally:
        await impatient.close()
    twilio_api.fail_mode(None)
    twilio_api.slow(0)
    await worker.run_once(now=failed.next_attempt_at)  # any worker may take the retry
    assert (await row(db, item_id)).status == "sent"
    assert len(twilio_api.messages) == 1


async def test_connection_refused_is_temporary(
    db: Database, sms_settings: Settings, twilio_api: FakeTwilioApi
) -> None:
    url = twilio_api.url
    await twilio_api.close()  # nothing listens there any more
    sender = TwilioSmsSender(dataclasses.replace(sms_settings, twilio_api_url=url))
    try:
        item_id = await queue(db)
        async with db.read() as session:
            item = await session.get(OutboxItem, item_id)
        assert item is not None
        with pytest.raises(TemporarySendError, match="unreachable"):
            await sender.send(item)
    finally:
        await sender.close()


async def test_invalid_number_is_dead_at_once(
    db: Database, worker: OutboxWorker, twilio_api: FakeTwilioApi
) -> None:
    twilio_api.reject("+8613800009999", code=21211)
    item_id = await queue(db, urn="tel:+8613800009999")
    await worker.run_once()
    item = await row(db, item_id)
    assert (item.status, item.attempts) == ("dead", 1)
    assert "21211" in (item.last_error or "")
    assert (await message_of(db, item)).status == "failed"
    assert twilio_api.requests == 1 and twilio_api.messages == []
    assert counted(worker, "dead") == 1


async def test_unsubscribed_recipient_is_dead_and_opted_out(
    db: Database, worker: OutboxWorker, twilio_api: FakeTwilioApi
) -> None:
    twilio_api.reject("+8613800001234", code=21610)
    first = await queue(db)
    await worker.run_once()
    assert (await row(db, first)).status == "dead"
    async with db.read() as session:
        address = await session.scalar(select(ContactAddress).where(ContactAddress.urn == URN))
        assert address is not None and address.opted_out_at is not None
    later = await queue(db, "another reminder")
    await worker.run_once()
    assert (await row(db, later)).status == "skipped"
    assert twilio_api.requests == 1  # the later message never reached the provider


async def test_exhausted_attempts_make_the_row_dead(
    db: Database, worker: OutboxWorker, twilio_api: FakeTwilioApi
) -> None:
    twilio_api.fail_mode("500")
    item_id = await queue(db)
    now = utcnow()
    for _ in range(20):
        item = await row(db, item_id)
        if item.status == "dead":
            break
        now = max(now, item.next_attempt_at)
        await worker.run_once(now=now)
    item = await row(db, item_id)
    assert (item.status, item.attempts, item.max_attempts) == ("dead", 8, 8)
    assert (await message_of(db, item)).status == "failed"
    assert twilio_api.requests == 8
    assert (await outbox_depth(db))["dead"] == 1


# -- crashes and concurrency -----------------------------------------------------------------


async def test_crashed_worker_row_is_reclaimed_and_sent_once(
    db: Database, worker: OutboxWorker, sender: TwilioSmsSender, twilio_api: FakeTwilioApi
) -> None:
    item_id = await queue(db)
    t0 = utcnow()
    # The crashed worker claimed the row, Twilio accepted the message, then the process died.
    crashed_sid = await sender.send(await row(db, item_id))
    async with db.write() as session:
        await session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id)
            .values(status="sending", claimed_by="crashed", claimed_until=t0 + timedelta(seconds=60))
        )
    assert await worker.run_once(now=t0) == 0  # its lease still holds
    assert await worker.run_once(now=t0 + timedelta(seconds=61)) == 1
    item = await row(db, item_id)
    assert (item.status, item.provider_id, item.claimed_by) == ("sent", crashed_sid, "w1")
    assert len(twilio_api.messages) == 1  # the fake dropped the repeat on its idempotency token
    assert twilio_api.requests == 2


class _OvertakenSender:
    """Sends, but meanwhile another worker has taken the row over (our lease ran out mid-send)."""

    def __init__(self, db: Database, inner: Sender) -> None:
        self.db, self.inner = db, inner

    async def send(self, item: OutboxItem) -> str:
        async with self.db.write() as session:
            await session.execute(update(OutboxItem).where(OutboxItem.id == item.id).values(claimed_by="other"))
        return await self.inner.send(item)


async def test_worker_that_lost_its_lease_does_not_record(
    db: Database, sms_settings: Settings, sender: TwilioSmsSender
) -> None:
    worker = make_worker(db, sms_settings, {"sms": _OvertakenSender(db, sender)})
    item_id = await queue(db)
    await worker.run_once()
    item = await row(db, item_id)
    assert (item.status, item.claimed_by, item.provider_id) == ("sending", "other", None)


async def test_two_workers_send_every_row_exactly_once(
    settings: Settings, sms_settings: Settings, twilio_api: FakeTwilioApi
) -> None:
    dbs = [Database.from_url(settings.database_url) for _ in range(2)]
    senders = [TwilioSmsSender(sms_settings) for _ in range(2)]
    try:
        async with dbs[0].write() as session:
            for n in range(200):
                await enqueue(session, f"tel:+86138000{n % 20:05d}", f"notice {n}", "notice")
        workers = [
            OutboxWorker(db, sms_settings, Metrics(), {"sms": s}, f"worker-{i}", batch_size=10)
            for i, (db, s) in enumerate(zip(dbs, senders, strict=True))
        ]

        async def drain(worker: OutboxWorker) -> int:
            total = 0
            while done := await worker.run_once():
                total += done
            return total

        totals = await asyncio.gather(*(drain(w) for w in workers))
        assert sum(totals) == 200
        assert len(twilio_api.messages) == 200
        tokens = [m["idempotency_token"] for m in twilio_api.messages]
        assert len(set(tokens)) == 200
        async with dbs[0].read() as session:  # each request carried its own row's token
            keys = dict((await session.execute(select(OutboxItem.body, OutboxItem.idempotency_key))).all())
        assert {m["body"]: m["idempotency_token"] for m in twilio_api.messages} == keys
        assert twilio_api.requests == 200  # no row was even attempted twice
        assert sorted(m["body"] for m in twilio_api.messages) == sorted(f"notice {n}" for n in range(200))
        async with dbs[0].read() as session:
            by_status = select(OutboxItem.status, func.count()).group_by(OutboxItem.status)
            assert dict((await session.execute(by_status)).all()) == {"sent": 200}
            sids = set(await session.scalars(select(OutboxItem.provider_id)))
            assert sids == {m["sid"] for m in twilio_api.messages}
    finally:
        for s in senders:
            await s.close()
        for db in dbs:
            await db.dispose()


# -- the running loop and operations ---------------------------------------------------------


async def test_run_sends_when_notified_and_stops_cleanly(
    db: Database, worker: OutboxWorker, twilio_api: FakeTwilioApi
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        item_id = await queue(db)
        worker.notify()
        async with asyncio.timeout(30):  # a bound for a hung test, not a speed assertion
            while (await row(db, item_id)).status != "sent":
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task
    assert len(twilio_api.messages) == 1


async def test_release_claims_hands_rows_back(db: Database, worker: OutboxWorker) -> None:
    item_id = await queue(db)
    async with db.write() as session:
        await session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id)
            .values(status="sending", claimed_by="w1", claimed_until=utcnow() + timedelta(seconds=60))
        )
    assert await worker.release_claims() == 1
    item = await row(db, item_id)
    assert (item.status, item.claimed_by) == ("pending", None)


async def test_outbox_depth_and_metrics(
    db: Database, worker: OutboxWorker, twilio_api: FakeTwilioApi
) -> None:
    twilio_api.reject("+8613800009999")
    await queue(db, urn="tel:+8613800009999")
    await queue(db)
    await worker.run_once()
    await queue(db, "waiting")
    depth = await outbox_depth(db)
    assert (depth["sent"], depth["dead"], depth["pending"], depth["failed"]) == (1, 1, 1, 0)
    await refresh_outbox_metrics(db, worker.metrics)
    text = worker.metrics.render().decode()
    assert 'helpline_outbox_depth{status="pending"} 1.0' in text
    assert 'helpline_outbox_total{channel="sms",result="sent"} 1.0' in text
    assert "helpline_outbox_oldest_waiting_seconds" in text


# -- the sender alone ------------------------------------------------------------------------


async def test_wrong_credentials_are_refused_by_the_fake(
    db: Database, sms_settings: Settings, twilio_api: FakeTwilioApi
) -> None:
    sender = TwilioSmsSender(dataclasses.replace(sms_settings, twilio_auth_token="wrong"))
    try:
        item = await row(db, await queue(db))
        with pytest.raises(TemporarySendError, match="401 code=20003"):
            await sender.send(item)
    finally:
        await sender.close()
    assert twilio_api.requests == 0


async def test_non_phone_address_is_permanent(db: Database, sender: TwilioSmsSender) -> None:
    item = await row(db, await queue(db, urn="web:abc123", key="x"))
    with pytest.raises(PermanentSendError):
        await sender.send(item)
