"""A case's clock in working time, its traffic light, and the job that escalates overdue cases.

The clock starts at dispatch with the class's time limit (for the cell's area class), stops when
the department reports the case handled or returns it, pauses while the case is suspended, and
starts afresh on rework or reopening. ``warn_at`` is when 80 % of the limit is used and
``due_at`` when all of it is: before warn_at the light is green, then yellow, and red once
``due_at`` has passed. Being instants, they let the job find cases that changed colour with one
indexed query, and they need no recomputation while nothing happens to the case.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.cases import notify
from helpline.cases.data import departments
from helpline.cases.models import DISPATCHED, IN_PROGRESS, Case, CaseStep
from helpline.cases.worktime import WorkCalendar
from helpline.db import Database
from helpline.models import Event

log = logging.getLogger("helpline.cases")

WARN_SHARE = 0.8
RUNNING = (DISPATCHED, IN_PROGRESS)
BATCH = 200


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def used_minutes(case: Case, cal: WorkCalendar, now: datetime) -> float:
    """Working minutes used so far (before any pause, plus since the clock last started)."""
    used = case.timer_used_minutes or 0.0
    if case.timer_started_at is not None:
        used += _minutes(cal.elapsed(case.timer_started_at, now))
    return used


def _deadlines(case: Case, cal: WorkCalendar) -> None:
    assert case.timer_started_at is not None and case.limit_minutes is not None
    used = case.timer_used_minutes or 0.0
    case.due_at = cal.add(case.timer_started_at, timedelta(minutes=max(0.0, case.limit_minutes - used)))
    case.warn_at = cal.add(case.timer_started_at, timedelta(minutes=max(0.0, case.limit_minutes * WARN_SHARE - used)))


def start(case: Case, cal: WorkCalendar, limit: timedelta, now: datetime) -> None:
    """A fresh clock (dispatch, rework, reopening): the whole limit from now."""
    case.limit_minutes = round(_minutes(limit))
    case.timer_used_minutes = 0.0
    case.timer_started_at = now
    case.warned_at = case.escalated_at = None
    _deadlines(case, cal)


def stop(case: Case, cal: WorkCalendar, now: datetime) -> None:
    """Handled or returned: the time used is kept; due_at stays as the deadline that applied."""
    if case.timer_started_at is not None:
        case.timer_used_minutes = used_minutes(case, cal, now)
        case.timer_started_at = None
    case.warn_at = None


def pause(case: Case, cal: WorkCalendar, now: datetime) -> None:
    """Suspended: no deadline while the case waits."""
    stop(case, cal, now)
    case.due_at = None


def resume(case: Case, cal: WorkCalendar, now: datetime) -> None:
    if case.limit_minutes is None:
        return  # the case was never dispatched: there is no clock to resume
    case.timer_started_at = now
    _deadlines(case, cal)


def extend(case: Case, cal: WorkCalendar, extra: timedelta, now: datetime) -> None:
    """An approved extension: a longer limit, later deadlines, and warnings may come again."""
    case.limit_minutes = (case.limit_minutes or 0) + round(_minutes(extra))
    if case.timer_started_at is not None:
        _deadlines(case, cal)
        if case.due_at is not None and case.due_at > now:
            case.escalated_at = None
        if case.warn_at is not None and case.warn_at > now:
            case.warned_at = None


def light(case: Case, now: datetime) -> str | None:
    """green / yellow / red while the clock runs; None when it does not."""
    if case.timer_started_at is None or case.due_at is None:
        return None
    if now > case.due_at:
        return "red"
    if case.warn_at is not None and now >= case.warn_at:
        return "yellow"
    return "green"


async def escalate(db: Database, now: datetime) -> int:
    """The scheduled job: tell a department when its case turns yellow, and the supervisors (the
    department's and the centre's) when it turns red — once each, through the outbox."""
    done = 0
    async with db.write() as session:
        query = (
            select(Case)
            .where(Case.status.in_(RUNNING), Case.escalated_at.is_(None), Case.due_at < now)
            .order_by(Case.due_at).limit(BATCH)
        )
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        overdue = list(await session.scalars(query))
        warn_query = (
            select(Case)
            .where(Case.status.in_(RUNNING), Case.warned_at.is_(None), Case.warn_at <= now, Case.due_at >= now)
            .order_by(Case.warn_at).limit(BATCH)
        )
        if not db.is_sqlite:
            warn_query = warn_query.with_for_update(skip_locked=True)
        warning = list(await session.scalars(warn_query))
        if not overdue and not warning:
            return 0
        depts = await departments(session)
        centre = [d for d in depts.values() if d.kind == "centre" and d.active]
        for case in overdue:
            dept = depts.get(case.department_code or "")
            urns = list(dict.fromkeys([*(dept.supervisors if dept else []), *(u for c in centre for u in c.supervisors)]))
            await notify.escalation(session, case, dept, urns, now)
            case.escalated_at = now
            case.warned_at = case.warned_at or now  # red includes yellow: no late yellow notice
            _step(session, case, "escalate", now, {"to": urns})
            done += 1
        for case in warning:
            dept = depts.get(case.department_code or "")
            await notify.warning(session, case, dept, now)
            case.warned_at = now
            _step(session, case, "warn", now, {"to": [dept.contact_urn] if dept and dept.contact_urn else []})
            done += 1
    if done:
        log.info("event=cases.escalated red=%d yellow=%d", len(overdue), len(warning))
    return done


def _step(session: AsyncSession, case: Case, action: str, now: datetime, data: dict[str, Any]) -> None:
    session.add(CaseStep(case_id=case.id, at=now, action=action, from_status=case.status, to_status=case.status,
                         actor="system", actor_role="system", department_code=case.department_code, photos=[],
                         data=data))
    session.add(Event(at=now, actor="system", action=f"case.{action}", subject_type="case", subject_id=case.number,
                      data=data))
