"""The sending side of the durable outbox: claim due rows with a lease, send them, record results.

Any number of workers (one per instance) may run against one database. A row is claimed in a
short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite ``BEGIN IMMEDIATE``
already serialises writers), sent *outside* any transaction, and its result recorded in another
short transaction that only applies while the row is still claimed by this worker with this very
lease. A worker that died (or stalled past its lease) leaves rows in ``sending``; the next claim
takes them back. That may send a message twice if the provider accepted it just before the crash:
the row's ``idempotency_key`` goes to the provider so that it can drop the repeat where it is able
to (see ``channels/twilio_sender.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.config import Settings
from helpline.db import Database
from helpline.logs import mask_urn
from helpline.metrics import Metrics
from helpline.models import ContactAddress, Message, OutboxItem, utcnow

log = logging.getLogger("helpline.outbox")

BATCH_SIZE = 50
LEASE = timedelta(seconds=60)
POLL_SECONDS = 1.0
SEND_CONCURRENCY = 8
BACKOFF_BASE = 2.0  # seconds before the first retry; doubles each attempt
BACKOFF_CAP = 600.0  # never wait more than 10 minutes between attempts
JITTER = 0.2  # +/- 20 %, so rows that failed together do not retry together
# Rows still waiting to be sent: what "outbox depth" means for operators.
WAITING = ("pending", "failed", "sending")


class SendError(Exception):
    """A provider refused or could not take a message."""


class PermanentSendError(SendError):
    """Sending again will not help (invalid number, unsubscribed recipient): the row goes ``dead``.

    ``opted_out`` says the provider knows the recipient unsubscribed, so the address is marked
    opted out and nothing else is sent to it.
    """

    def __init__(self, message: str, *, opted_out: bool = False) -> None:
        super().__init__(message)
        self.opted_out = opted_out


class TemporarySendError(SendError):
    """Worth retrying later (timeouts, connection errors, provider 5xx, rate limits)."""


class Sender(Protocol):
    """Sends one outbox row on one channel; returns the provider's message id."""

    async def send(self, item: OutboxItem) -> str: ...


@dataclass(frozen=True)
class _Claim:
    """What this worker holds: the rows and the lease that fences their results."""

    items: list[OutboxItem]
    lease_until: datetime
    claimed_at: float  # loop time, to stop starting sends when the lease runs short


def default_instance_id() -> str:
    """A worker name unique per process (host, pid, random): the claim fence relies on it."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Delay before the next try after ``attempts`` failures: 2 s, 4 s, 8 s … capped at 10 min, jittered."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    jitter = 1 + JITTER * (2 * (rng or random).random() - 1)
    return timedelta(seconds=min(BACKOFF_CAP, delay * jitter))


class OutboxWorker:
    """Claims and sends due outbox rows; one per process, any number per database."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        metrics: Metrics,
        senders: dict[str, Sender],
        instance_id: str,
        *,
        batch_size: int = BATCH_SIZE,
        lease: timedelta = LEASE,
        rng: random.Random | None = None,
    ) -> None:
        if len(instance_id) > 64:
            raise ValueError("instance_id must fit outbox.claimed_by (64 characters)")
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.senders = senders
        self.instance_id = instance_id
        self.batch_size = batch_size
        self.lease = lease
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._sending = asyncio.Semaphore(SEND_CONCURRENCY)

    def notify(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; the batch in hand is finished first, then claims are released."""
        log.info("event=outbox.worker_start instance=%s", self.instance_id)
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    done = await self.run_once()
                except Exception:
                    log.exception("event=outbox.run_failed instance=%s", self.instance_id)
                    done = 0
                if done < self.batch_size:  # a full batch means more may be due: go again at once
                    await self._idle(stop)
        finally:
            await self.release_claims()
            log.info("event=outbox.worker_stop instance=%s", self.instance_id)

    async def _idle(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def run_once(self, now: datetime | None = None) -> int:
        """Claim the due rows, send them and record the results; returns how many rows were handled.

        ``now`` is the clock for this round (due times, lease, backoff, sent_at), so tests can
        step through retries without sleeping.
        """
        now = now or utcnow()
        claim, handled = await self._claim(now)
        if claim.items:
            await asyncio.gather(*(self._deliver(item, claim, now) for item in claim.items))
        return handled + len(claim.items)

    # -- claiming -------------------------------------------------------------------------

    async def _claim(self, now: datetime) -> tuple[_Claim, int]:
        """Take up to a batch of due rows; rows that must not be sent are settled right here.

        Returns the rows to send and how many were settled (skipped) without sending.
        """
        lease_until = now + self.lease
        due = (
            (OutboxItem.status.in_(("pending", "failed")) & (OutboxItem.next_attempt_at <= now))
            | ((OutboxItem.status == "sending") & (OutboxItem.claimed_until < now))
        )
        query = select(OutboxItem).where(due).order_by(OutboxItem.next_attempt_at, OutboxItem.id)
        query = query.limit(self.batch_size)
        if not self.db.is_sqlite:  # SQLite has no row locks: BEGIN IMMEDIATE already excludes other writers
            query = query.with_for_update(skip_locked=True)
        async with self.db.write() as session:
            rows = list(await session.scalars(query))
            opted_out = await _opted_out(session, {row.urn for row in rows})
            to_send: list[OutboxItem] = []
            skipped: list[tuple[OutboxItem, str]] = []
            for row in rows:
                if row.status == "sending":
                    log.warning("event=outbox.reclaimed id=%s from=%s", row.id, row.claimed_by)
                if row.urn in opted_out:
                    skipped.append((row, "recipient opted out"))
                elif row.channel not in self.senders:
                    skipped.append((row, f"no sender for channel {row.channel!r} (not configured)"))
                else:
                    row.status = "sending"
                    row.claimed_by = self.instance_id
                    row.claimed_until = lease_until
                    to_send.append(row)
            for row, reason in skipped:
                row.status = "skipped"
                row.last_error = reason
                row.claimed_by = None
                row.claimed_until = None
            await _set_message_status(session, [row.message_id for row, _ in skipped], "skipped")
        for row, reason in skipped:
            self.metrics.outbox.labels(row.channel, "skipped").inc()
            log.info("event=outbox.skipped id=%s urn=%s reason=%r", row.id, mask_urn(row.urn), reason)
        loop_now = asyncio.get_running_loop().time()
        return _Claim(to_send, lease_until, loop_now), len(skipped)

    async def release_claims(self) -> int:
        """Hand back rows this worker claimed but did not finish (graceful shutdown)."""
        try:
            async with self.db.write() as session:
                result = await session.execute(
                    update(OutboxItem)
                    .where(OutboxItem.status == "sending", OutboxItem.claimed_by == self.instance_id)
                    .values(
                        status=case((OutboxItem.attempts > 0, "failed"), else_="pending"),
                        claimed_by=None,
                        claimed_until=None,
                    )
                    .execution_options(synchronize_session=False)
                )
        except Exception:
            log.exception("event=outbox.release_failed instance=%s", self.instance_id)
            return 0
        released: int = result.rowcount or 0  # type: ignore[attr-defined]
        if released:
            log.info("event=outbox.released instance=%s rows=%d", self.instance_id, released)
        return released

    # -- sending --------------------------------------------------------------------------

    async def _deliver(self, item: OutboxItem, claim: _Claim, now: datetime) -> None:
        async with self._sending:
            elapsed = asyncio.get_running_loop().time() - claim.claimed_at
            if elapsed > self.lease.total_seconds() / 2:
                # Too late to start: another worker may take the row soon after the lease ends.
                await self._release_one(item, claim)
                return
            sender = self.senders[item.channel]
            try:
                provider_id = await sender.send(item)
            except PermanentSendError as exc:
                await self._record_failure(item, claim, now, str(exc), permanent=True, opted_out=exc.opted_out)
            except TemporarySendError as exc:
                await self._record_failure(item, claim, now, str(exc), permanent=False)
            except Exception as exc:  # a bug in a sender must not kill the worker; retry like a 5xx
                log.exception("event=outbox.sender_crashed id=%s channel=%s", item.id, item.channel)
                await self._record_failure(item, claim, now, f"{type(exc).__name__}: {exc}", permanent=False)
            else:
                await self._record_sent(item, claim, now, provider_id)

    def _still_mine(self, item: OutboxItem, claim: _Claim) -> ColumnElement[bool]:
        """The fence: the row is still ``sending`` under exactly the lease this worker took."""
        return (
            (OutboxItem.id == item.id)
            & (OutboxItem.status == "sending")
            & (OutboxItem.claimed_by == self.instance_id)
            & (OutboxItem.claimed_until == claim.lease_until)
        )

    async def _record_sent(self, item: OutboxItem, claim: _Claim, now: datetime, provider_id: str) -> None:
        async with self.db.write() as session:
            result = await session.execute(
                update(OutboxItem)
                .where(self._still_mine(item, claim))
                .values(status="sent", provider_id=provider_id, sent_at=now, claimed_until=None, last_error=None)
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                log.warning("event=outbox.lease_lost id=%s result=sent sid=%s", item.id, provider_id)
                return
            if item.message_id is not None:
                # A status callback may already have moved the message on; only "queued" becomes "sent".
                await session.execute(
                    update(Message)
                    .where(Message.id == item.message_id)
                    .values(
                        provider_id=provider_id,
                        status=case((Message.status == "queued", "sent"), else_=Message.status),
                    )
                    .execution_options(synchronize_session=False)
                )
        self.metrics.outbox.labels(item.channel, "sent").inc()
        log.info(
            "event=outbox.sent id=%s channel=%s urn=%s provider_id=%s attempt=%d",
            item.id, item.channel, mask_urn(item.urn), provider_id, item.attempts + 1,
        )

    async def _record_failure(
        self,
        item: OutboxItem,
        claim: _Claim,
        now: datetime,
        error: str,
        *,
        permanent: bool,
        opted_out: bool = False,
    ) -> None:
        attempts = item.attempts + 1
        dead = permanent or attempts >= item.max_attempts
        values: dict[str, object] = {"attempts": attempts, "last_error": error[:2000], "claimed_until": None}
        if dead:
            values["status"] = "dead"
        else:
            values["status"] = "failed"
            values["next_attempt_at"] = now + backoff(attempts, self._rng)
        async with self.db.write() as session:
            result = await session.execute(
                update(OutboxItem)
                .where(self._still_mine(item, claim))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                log.warning("event=outbox.lease_lost id=%s result=failed", item.id)
                return
            if dead:
                await _set_message_status(session, [item.message_id], "failed")
            if opted_out:
                await session.execute(
                    update(ContactAddress)
                    .where(ContactAddress.urn == item.urn, ContactAddress.opted_out_at.is_(None))
                    .values(opted_out_at=now)
                    .execution_options(synchronize_session=False)
                )
        result_label = "dead" if dead else "failed"
        self.metrics.outbox.labels(item.channel, result_label).inc()
        log.log(
            logging.ERROR if dead else logging.WARNING,
            "event=outbox.%s id=%s channel=%s urn=%s attempt=%d/%d error=%r",
            result_label, item.id, item.channel, mask_urn(item.urn), attempts, item.max_attempts,
            _without_address(error, item.urn),
        )

    async def _release_one(self, item: OutboxItem, claim: _Claim) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(OutboxItem)
                .where(self._still_mine(item, claim))
                .values(status="failed" if item.attempts else "pending", claimed_by=None, claimed_until=None)
                .execution_options(synchronize_session=False)
            )


def _without_address(error: str, urn: str) -> str:
    """Provider errors quote the number ("Invalid 'To' Phone Number: +86…"); logs get it masked."""
    address = urn.partition(":")[2]
    return error.replace(address, mask_urn(urn).partition(":")[2]) if address else error


async def _opted_out(session: AsyncSession, urns: set[str]) -> set[str]:
    if not urns:
        return set()
    rows = await session.scalars(
        select(ContactAddress.urn).where(ContactAddress.urn.in_(urns), ContactAddress.opted_out_at.is_not(None))
    )
    return set(rows)


async def _set_message_status(session: AsyncSession, message_ids: list[int | None], status: str) -> None:
    ids = [mid for mid in message_ids if mid is not None]
    if ids:
        await session.execute(
            update(Message).where(Message.id.in_(ids)).values(status=status)
            .execution_options(synchronize_session=False)
        )


async def outbox_depth(db: Database) -> dict[str, int]:
    """How many outbox rows are in each status (every status present, zero when none)."""
    async with db.read() as session:
        rows = await session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status))
        counts = {status: 0 for status in ("pending", "sending", "sent", "failed", "dead", "skipped")}
        counts.update({status: int(n) for status, n in rows})
    return counts


async def oldest_waiting_age(db: Database, now: datetime | None = None) -> float:
    """Seconds since the oldest row still waiting to be sent was queued (0 when none waits)."""
    async with db.read() as session:
        oldest = await session.scalar(
            select(func.min(OutboxItem.created_at)).where(OutboxItem.status.in_(WAITING))
        )
    if oldest is None:
        return 0.0
    return max(0.0, ((now or utcnow()) - oldest).total_seconds())


async def refresh_outbox_metrics(db: Database, metrics: Metrics) -> None:
    """Set the outbox gauges (call before rendering /metrics)."""
    for status, n in (await outbox_depth(db)).items():
        metrics.outbox_depth.labels(status).set(n)
    metrics.outbox_oldest_age.set(await oldest_waiting_age(db))
