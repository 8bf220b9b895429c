"""Scheduled jobs: due times, one runner at a time across instances, failures retried next turn."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from helpline.db import Database
from helpline.jobs import Job, JobRunner

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


async def test_job_runs_when_due_and_not_before(db: Database) -> None:
    seen: list[datetime] = []

    async def tick(_db: Database, now: datetime) -> int:
        seen.append(now)
        return 1

    runner = JobRunner(db, "one", [Job("tick", tick, every=timedelta(minutes=10))])
    assert await runner.run_once(T0) == {"tick": 1}
    assert await runner.run_once(T0 + timedelta(minutes=5)) == {}
    assert await runner.run_once(T0 + timedelta(minutes=10)) == {"tick": 1}
    assert seen == [T0, T0 + timedelta(minutes=10)]
    assert await runner.run_once(T0 + timedelta(minutes=11), force=True) == {"tick": 1}


async def test_two_instances_never_run_a_job_at_once(db: Database) -> None:
    running = 0
    overlaps = 0
    runs = 0

    async def slow(_db: Database, _now: datetime) -> int:
        nonlocal running, overlaps, runs
        running += 1
        overlaps += running > 1
        await asyncio.sleep(0.05)
        running -= 1
        runs += 1
        return 1

    other = Database.from_url(str(db.engine.url.render_as_string(hide_password=False)))
    try:
        a = JobRunner(db, "a", [Job("slow", slow)])
        b = JobRunner(other, "b", [Job("slow", slow)])
        results = await asyncio.gather(*(r.run_once(T0) for r in (a, b, a, b)))
    finally:
        await other.dispose()
    assert overlaps == 0
    assert runs == 1  # the first round moved next_run_at past T0, so the others found nothing due
    assert sum(r.get("slow", 0) for r in results) == 1


async def test_failed_job_is_retried_at_its_next_turn_and_others_still_run(db: Database) -> None:
    calls = {"bad": 0, "good": 0}

    async def bad(_db: Database, _now: datetime) -> int:
        calls["bad"] += 1
        raise RuntimeError("boom")

    async def good(_db: Database, _now: datetime) -> int:
        calls["good"] += 1
        return 0

    runner = JobRunner(db, "one", [Job("bad", bad), Job("good", good)])
    assert await runner.run_once(T0) == {"good": 0}
    assert await runner.run_once(T0 + timedelta(minutes=1)) == {"good": 0}
    assert calls == {"bad": 2, "good": 2}


async def test_a_stale_lease_is_taken_over(db: Database) -> None:
    from sqlalchemy import update

    from helpline.models import JobLease

    async def work(_db: Database, _now: datetime) -> int:
        return 1

    runner = JobRunner(db, "one", [Job("work", work, lease=timedelta(minutes=5))])
    await runner.run_once(T0)
    async with db.write() as session:  # an instance died holding the job
        await session.execute(
            update(JobLease).values(held_by="dead", held_until=T0 + timedelta(minutes=6), next_run_at=T0)
        )
    assert await runner.run_once(T0 + timedelta(minutes=2)) == {}
    assert await runner.run_once(T0 + timedelta(minutes=7)) == {"work": 1}
