"""``/metrics``: open grid cases by traffic light (DESIGN.md part 1, operations).

``helpline_cases_open{light="green|yellow|red|none"}``: ``none`` is an open case whose clock is not
running (waiting to be registered or dispatched, handled and waiting for its check, suspended).
Counted by the database when /metrics is read, with the same rules as ``timers.light``.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Gauge
from sqlalchemy import func, select

from helpline.cases.models import OPEN, Case
from helpline.cases.timers import RUNNING
from helpline.db import Database
from helpline.metrics import Metrics
from helpline.models import utcnow

LIGHTS = ("green", "yellow", "red", "none")


def _gauge(metrics: Metrics) -> Gauge:
    gauge = getattr(metrics, "cases_open", None)
    if gauge is None:
        gauge = Gauge("helpline_cases_open", "Open grid cases by traffic light (none: the clock is not running)",
                      ["light"], registry=metrics.registry)
        metrics.cases_open = gauge  # type: ignore[attr-defined]
    return gauge


async def light_counts(db: Database, now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    running = Case.status.in_(RUNNING) & Case.timer_started_at.is_not(None) & Case.due_at.is_not(None)
    count = select(func.count()).select_from(Case)
    async with db.read() as session:
        total = await session.scalar(count.where(Case.status.in_(OPEN))) or 0
        red = await session.scalar(count.where(running, Case.due_at < now)) or 0
        yellow = await session.scalar(count.where(running, Case.due_at >= now, Case.warn_at <= now)) or 0
        green = await session.scalar(count.where(running, Case.warn_at > now)) or 0
    return {"green": green, "yellow": yellow, "red": red, "none": total - green - yellow - red}


async def refresh_case_metrics(db: Database, metrics: Metrics) -> None:
    gauge = _gauge(metrics)
    for light, n in (await light_counts(db)).items():
        gauge.labels(light).set(n)
