"""Scheduled jobs: booking reminders, follow-up surveys, time-limit escalations.

Every instance runs a ``JobRunner``; a job runs in at most one instance at a time, because each
round first takes the job's row in ``job_leases`` with one conditional UPDATE (an atomic
compare-and-set on every database). A job must still be safe to run twice for the same moment
(an instance may die after doing the work and before the lease runs out): jobs write their
messages through the outbox with idempotency keys (``booking-42-reminder-day``), so a repeat is
a no-op.

A job is a plain async function of the database and the time, so tests drive it with any clock:
``await runner.run_once(now=datetime(...))``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from helpline.db import Database
from helpline.models import JobLease, utcnow

log = logging.getLogger("helpline.jobs")

POLL_SECONDS = 5.0

# What a job does for one moment; returns how many things it did (messages queued, cases flagged).
JobFunction = Callable[[Database, datetime], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    run: JobFunction
    every: timedelta = timedelta(minutes=1)
    # Longest a round may take; past this another instance may take the job over.
    lease: timedelta = timedelta(minutes=5)


class JobRunner:
    """Runs registered jobs when they are due, in whichever instance takes the lease first."""

    def __init__(self, db: Database, instance_id: str, jobs: list[Job] | None = None) -> None:
        self.db = db
        self.instance_id = instance_id[:64]
        self.jobs: dict[str, Job] = {}
        for job in jobs or []:
            self.add(job)

    def add(self, job: Job) -> None:
        if job.name in self.jobs:
            raise ValueError(f"a job named {job.name!r} is already registered")
        self.jobs[job.name] = job

    async def run_once(self, now: datetime | None = None, *, force: bool = False) -> dict[str, int]:
        """Run every job that is due at ``now`` (all of them with ``force``); returns counts by job.

        A job that fails is logged and tried again at its next turn; the others still run.
        """
        now = now or utcnow()
        done: dict[str, int] = {}
        for job in self.jobs.values():
            if not await self._take(job, now, force):
                continue
            try:
                done[job.name] = await job.run(self.db, now)
            except Exception:
                log.exception("event=job.failed job=%s instance=%s", job.name, self.instance_id)
                await self._finish(job, now, ok=False)
                continue
            await self._finish(job, now, ok=True)
            if done[job.name]:
                log.info("event=job.done job=%s count=%s", job.name, done[job.name])
        return done

    async def run(self, stop: asyncio.Event, poll: float = POLL_SECONDS) -> None:
        """Run due jobs until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # the database may be away for a moment; try again next poll
                log.exception("event=job.round_failed instance=%s", self.instance_id)
            try:
                await asyncio.wait_for(stop.wait(), poll)
            except TimeoutError:
                pass

    async def _take(self, job: Job, now: datetime, force: bool) -> bool:
        """Compare-and-set the job's lease: due (or forced) and not held by a live round elsewhere."""
        free = or_(JobLease.held_until.is_(None), JobLease.held_until < now)
        due = JobLease.next_run_at <= now
        condition = free if force else free & due
        for _attempt in range(2):
            async with self.db.write() as session:
                taken = await session.execute(
                    update(JobLease)
                    .where((JobLease.name == job.name) & condition)
                    .values(held_by=self.instance_id, held_until=now + job.lease)
                )
                if taken.rowcount == 1:
                    return True
                exists = await session.scalar(select(JobLease.name).where(JobLease.name == job.name))
                if exists is not None:
                    return False
            try:  # first run anywhere: create the row, then take it with the same compare-and-set
                async with self.db.write() as session:
                    session.add(JobLease(name=job.name, next_run_at=now, held_by=None, held_until=None))
            except IntegrityError:
                pass  # another instance created it first
        return False

    async def _finish(self, job: Job, now: datetime, *, ok: bool) -> None:
        async with self.db.write() as session:
            values: dict[str, object] = {"held_by": None, "held_until": None, "next_run_at": now + job.every}
            if ok:
                values["last_run_at"] = now
            await session.execute(
                update(JobLease)
                .where((JobLease.name == job.name) & (JobLease.held_by == self.instance_id))
                .values(**values)
            )
