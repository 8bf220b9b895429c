"""Traffic lights and the escalation job, driven by a controlled clock through the real JobRunner."""

from __future__ import annotations

from test_cases_support import CELL_B, MON, act, at, get, outbox, report, staff, timeline, to_dispatched  # noqa: F401

from helpline.app import build_jobs
from helpline.cases import timers
from helpline.jobs import JobRunner

HW_CONTACT = "tel:+8657487000102"
HW_SUPERVISOR = "tel:+8613900000102"
CENTRE_SUPERVISORS = {"tel:+8613900000001", "tel:+8613900000002"}


async def test_the_light_turns_yellow_at_80_percent_and_red_after_the_limit(db, staff) -> None:
    number = await report(db, "E0102", CELL_B, MON)  # 4 working hours
    case = await to_dispatched(db, staff, number, MON)
    assert case.warn_at == at(30, 11, 42) and case.due_at == at(30, 14)  # 192 and 240 working minutes
    assert [timers.light(case, t) for t in (at(30, 11), at(30, 11, 42), at(30, 13), at(30, 14), at(30, 14, 1))] == [
        "green", "yellow", "yellow", "yellow", "red"]
    case = await act(db, number, "accept", staff.hw, at(30, 9))
    assert timers.light(case, at(30, 9)) == "green"
    case = await act(db, number, "handle", staff.hw, at(30, 15), note="done")
    assert timers.light(case, at(30, 15)) is None  # the clock has stopped


async def test_the_job_warns_the_department_once_and_escalates_to_supervisors_once(db, staff, settings) -> None:
    runner = JobRunner(db, "test-instance", build_jobs(settings))
    number = await report(db, "E0102", CELL_B, MON)
    await to_dispatched(db, staff, number, MON)
    assert (await runner.run_once(now=at(30, 11), force=True))["case_escalation"] == 0
    assert (await runner.run_once(now=at(30, 11, 45), force=True))["case_escalation"] == 1
    assert (await runner.run_once(now=at(30, 11, 50), force=True))["case_escalation"] == 0
    (warning,) = await outbox(db, "case_warning")
    assert warning.urn == HW_CONTACT and "黄灯" in warning.body and number in warning.body
    assert await outbox(db, "case_escalation") == []

    assert (await runner.run_once(now=at(30, 14, 5), force=True))["case_escalation"] == 1
    assert (await runner.run_once(now=at(30, 14, 10), force=True))["case_escalation"] == 0
    red = await outbox(db, "case_escalation")
    assert {o.urn for o in red} == {HW_SUPERVISOR, *CENTRE_SUPERVISORS} and len(red) == 3
    assert all("红灯" in o.body and number in o.body and "区环境卫生管理处" in o.body for o in red)
    assert [s.action for s in await timeline(db, number)][-2:] == ["warn", "escalate"]
    assert (await get(db, number)).escalated_at == at(30, 14, 5)

    # An approved extension gives a new deadline; passing that one is escalated again.
    await act(db, number, "request_extension", staff.hw, at(30, 14, 30), amount=2, unit="hours", note="车坏了")
    case = await act(db, number, "approve_extension", staff.supervisor, at(30, 14, 30))
    assert case.due_at == at(30, 16) and case.escalated_at is None
    assert (await runner.run_once(now=at(30, 16, 1), force=True))["case_escalation"] == 1
    assert len(await outbox(db, "case_escalation")) == 6


async def test_a_case_found_already_red_gets_no_late_yellow_notice(db, staff) -> None:
    number = await report(db, "E0102", CELL_B, MON)
    await to_dispatched(db, staff, number, MON)
    assert await timers.escalate(db, at(1, 9, month=12)) == 1
    assert await timers.escalate(db, at(1, 10, month=12)) == 0
    assert await outbox(db, "case_warning") == []
    assert len(await outbox(db, "case_escalation")) == 3


async def test_handled_and_suspended_cases_are_not_escalated(db, staff) -> None:
    handled = await report(db, "E0102", CELL_B, MON)
    await to_dispatched(db, staff, handled, MON)
    await act(db, handled, "accept", staff.hw, at(30, 9))
    await act(db, handled, "handle", staff.hw, at(30, 10), note="ok")
    waiting = await report(db, "E0104", CELL_B, MON, urn=None)  # dirty road, 3 h
    await to_dispatched(db, staff, waiting, MON)
    await act(db, waiting, "suspend", staff.supervisor, at(30, 9), note="待协调")
    assert await timers.escalate(db, at(2, 12, month=12)) == 0
    assert await outbox(db, "case_escalation") == []


async def test_metrics_count_open_cases_by_light(client, db, staff) -> None:
    from datetime import timedelta

    from helpline.models import utcnow

    now = utcnow()
    late = await report(db, "E0102", CELL_B, now - timedelta(days=10), urn=None)
    await to_dispatched(db, staff, late, now - timedelta(days=10))  # long overdue
    fresh = await report(db, "C0118", CELL_B, now, urn=None)
    await to_dispatched(db, staff, fresh, now)  # two working days ahead
    await report(db, "E0104", CELL_B, now, urn=None)  # not dispatched: no clock
    body = await (await client.get("/metrics")).text()
    lines = {line.split(" ")[0]: float(line.split(" ")[1]) for line in body.splitlines()
             if line.startswith("helpline_cases_open{")}
    assert lines == {'helpline_cases_open{light="green"}': 1.0, 'helpline_cases_open{light="yellow"}': 0.0,
                     'helpline_cases_open{light="red"}': 1.0, 'helpline_cases_open{light="none"}': 1.0}
