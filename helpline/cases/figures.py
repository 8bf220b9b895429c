"""The figures a centre is judged by (DESIGN.md part 3), for the cases reported in a period,
overall and by department, class, major class or period (day, ISO week or month).

Counts are of cases, each case judged by where it stands now:

- dispatched: cases dispatched at least once (应派遣/应结案 — every figure below but handling and
  satisfaction is a share of these)
- dispatch accuracy (准确派遣率) = (dispatched − cases returned by a department or reworked) / dispatched
- on-time handling (按时处置率) = cases whose handling feedback in force came within the time limit
  / cases with a handling feedback in force
- closure rate (结案率) = closed / dispatched
- on-time closure (按期结案率) = closed by the deadline in force / dispatched
- rework rate (返工率) = cases reworked at least once / dispatched
- time to close: hours from report to closure (calendar time), average and median, closed cases
- satisfaction: the average rating (1-5) and the share of 4s and 5s among rated cases

A rate whose denominator is zero is ``null``. Rates are rounded to four places, hours to two.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.cases.data import calendar, departments, taxonomy
from helpline.cases.models import CLOSED, VOIDED, Case

GROUPINGS = ("department", "class", "major", "period")
PERIODS = ("day", "week", "month")


@dataclass
class Tally:
    reported: int = 0
    voided: int = 0
    dispatched: int = 0
    misdispatched: int = 0
    handled: int = 0
    handled_on_time: int = 0
    closed: int = 0
    closed_on_time: int = 0
    reworked: int = 0
    returned: int = 0
    reopened: int = 0
    hours_to_close: list[float] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)

    def add(self, case: Case) -> None:
        self.reported += 1
        self.voided += case.status == VOIDED
        if case.dispatch_count > 0:
            self.dispatched += 1
            self.misdispatched += case.return_count > 0 or case.rework_count > 0
            self.reworked += case.rework_count > 0
            self.returned += case.return_count > 0
            self.reopened += case.reopen_count > 0
        if case.handled_on_time is not None:
            self.handled += 1
            self.handled_on_time += bool(case.handled_on_time)
        if case.status == CLOSED and case.closed_at is not None:
            self.closed += 1
            self.closed_on_time += bool(case.closed_on_time)
            self.hours_to_close.append((case.closed_at - case.reported_at).total_seconds() / 3600)
        if case.rating is not None:
            self.ratings.append(case.rating)

    def to_dict(self) -> dict[str, Any]:
        closing = self.hours_to_close
        return {
            "reported": self.reported,
            "voided": self.voided,
            "dispatched": self.dispatched,
            "dispatch_accuracy": _rate(self.dispatched - self.misdispatched, self.dispatched),
            "handled": self.handled,
            "handled_on_time": self.handled_on_time,
            "on_time_handling_rate": _rate(self.handled_on_time, self.handled),
            "closed": self.closed,
            "closed_on_time": self.closed_on_time,
            "closure_rate": _rate(self.closed, self.dispatched),
            "on_time_closure_rate": _rate(self.closed_on_time, self.dispatched),
            "reworked": self.reworked,
            "rework_rate": _rate(self.reworked, self.dispatched),
            "returned": self.returned,
            "reopened": self.reopened,
            "avg_hours_to_close": round(statistics.fmean(closing), 2) if closing else None,
            "median_hours_to_close": round(statistics.median(closing), 2) if closing else None,
            "rated": len(self.ratings),
            "avg_rating": round(statistics.fmean(self.ratings), 2) if self.ratings else None,
            "satisfied_rate": _rate(sum(r >= 4 for r in self.ratings), len(self.ratings)),
        }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def period_key(at: datetime, zone: ZoneInfo, period: str) -> str:
    local = at.astimezone(zone)
    if period == "day":
        return local.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.strftime("%Y-%m")


def tally(cases: Iterable[Case], key: Any = None) -> tuple[Tally, dict[str, Tally]]:
    """The overall tally and, with ``key`` (case -> group key), one per group."""
    total, groups = Tally(), defaultdict(Tally)
    for case in cases:
        total.add(case)
        if key is not None:
            groups[key(case)].add(case)
    return total, dict(groups)


async def figures(
    session: AsyncSession, start: datetime, end: datetime, by: str | None = None, period: str = "month",
    department: str | None = None,
) -> dict[str, Any]:
    """The figures for cases reported in [start, end), overall and grouped ``by``."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    if end <= start:
        raise ValueError("the end of the period must be after its start")
    query = select(Case).where(Case.reported_at >= start, Case.reported_at < end).order_by(Case.id)
    if department is not None:
        query = query.where(Case.department_code == department)
    cases = list(await session.scalars(query))
    zone = (await calendar(session)).zone
    keys = {
        "department": lambda c: c.department_code or "-",
        "class": lambda c: c.class_code or "-",
        "major": lambda c: (c.class_code or "-")[:3],
        "period": lambda c: period_key(c.reported_at, zone, period),
    }
    total, groups = tally(cases, keys[by] if by else None)
    names: dict[str, str] = {}
    if by == "department":
        names = {code: d.name_zh for code, d in (await departments(session)).items()}
    elif by in ("class", "major"):
        for cls in (await taxonomy(session)).values():
            names[cls.code] = cls.minor_zh
            names.setdefault(cls.code[:3], cls.major_zh)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "by": by,
        "period": period if by == "period" else None,
        "department": department,
        "total": total.to_dict(),
        "groups": [{"key": k, "name": names.get(k), **groups[k].to_dict()} for k in sorted(groups)],
    }
