"""The case workflow on the service layer, on SQLite and PostgreSQL: the seven steps with their
audit trail, rework, return, extension, suspension, reopening, and every refusal leaving the case
exactly as it was."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from test_cases_support import (  # noqa: F401  (staff is a fixture)
    CELL_A,
    CELL_B,
    CELL_C,
    MON,
    act,
    at,
    get,
    outbox,
    report,
    staff,
    timeline,
    to_dispatched,
)

from helpline.cases.models import Case, CaseReport
from helpline.cases.notify import SURVEY_STATE
from helpline.cases.workflow import TRANSITIONS, Actor, Conflict, InvalidInput, NotAllowed
from helpline.contacts import contacts_for
from helpline.models import ContactAddress, Conversation, Event

REPORTER = "tel:+8613800000001"


async def reporter_actor(db) -> Actor:  # type: ignore[no-untyped-def]
    async with db.write() as session:
        return Actor.reporter((await contacts_for(session, [REPORTER]))[REPORTER].id)


async def test_the_seven_steps_end_to_end_with_an_audit_trail(db, staff) -> None:
    number = await report(db, "C0118", CELL_B, MON, text="路灯坏了")
    case = await get(db, number)
    assert case.status == "reported" and case.number == number and len(number) == 6 and number.isdigit()

    await act(db, number, "register", staff.operator, at(30, 9))
    case = await act(db, number, "dispatch", staff.operator, at(30, 9))  # department from the routing table
    assert case.department_code == "LD" and case.status == "dispatched"
    assert case.limit_minutes == 900  # street light, area class B: 2 working days
    assert case.due_at == at(2, 9, month=12)  # Mon 9:00 + 15 working hours = Wed 9:00
    await act(db, number, "accept", staff.ld, at(30, 10))
    await act(db, number, "handle", staff.ld, at(30, 15), note="更换灯泡", photos=["media/cases/abc.jpg"])
    case = await get(db, number)
    assert case.status == "handled" and case.handled_on_time is True and case.timer_started_at is None
    await act(db, number, "check", staff.operator, at(30, 16), via="site", note="已亮")
    case = await act(db, number, "close", staff.operator, at(30, 16, 30))
    assert case.status == "closed" and case.closed_on_time is True

    me = await reporter_actor(db)
    case = await act(db, number, "rate", me, at(30, 17), rating=5)
    assert case.status == "closed" and case.rating == 5

    steps = await timeline(db, number)
    assert [(s.action, s.from_status, s.to_status) for s in steps] == [
        ("report", None, "reported"), ("register", "reported", "registered"), ("dispatch", "registered", "dispatched"),
        ("accept", "dispatched", "in_progress"), ("handle", "in_progress", "handled"), ("check", "handled", "checked"),
        ("close", "checked", "closed"), ("rate", "closed", "closed"),
    ]
    assert [s.actor_role for s in steps] == ["reporter", "operator", "operator", "department", "department",
                                              "operator", "operator", "reporter"]
    assert steps[4].note == "更换灯泡" and steps[4].photos == ["media/cases/abc.jpg"]
    assert steps[3].actor == staff.ld.ref and steps[3].at == at(30, 10)
    async with db.read() as session:
        events = list(await session.scalars(select(Event.action).where(Event.subject_id == number).order_by(Event.id)))
        conv = await session.scalar(
            select(Conversation).join(ContactAddress, ContactAddress.contact_id == Conversation.contact_id)
            .where(ContactAddress.urn == REPORTER, Conversation.channel == "sms")
        )
    assert events == [f"case.{s.action}" for s in steps]

    # The reporter heard of each major step, the department got its task, and closure asked for a rating.
    updates = [o.body for o in await outbox(db, "case_update") if o.urn == REPORTER]
    assert len(updates) == 3 and "已核实立案" in updates[0] and "区路灯管理所" in updates[1] and "更换灯泡" in updates[2]
    (task,) = await outbox(db, "case_task")
    assert task.urn == "tel:+8657487000110" and number in task.body and "路灯" in task.body
    (survey,) = await outbox(db, "survey")
    assert survey.urn == REPORTER and "1-5" in survey.body
    assert conv.state["flow"] == "grid_case" and conv.state[SURVEY_STATE] == number


async def test_illegal_transitions_are_refused_and_change_nothing(db, staff) -> None:
    number = await report(db, "C0118", CELL_B, MON)
    before = (await get(db, number)).updated_at
    with pytest.raises(Conflict, match=r"cannot close case \d+: it is 'reported', and close needs 'checked'"):
        await act(db, number, "close", staff.operator, at(30, 9))
    with pytest.raises(Conflict, match="dispatch needs 'registered' or 'returned'"):
        await act(db, number, "dispatch", staff.operator, at(30, 9))
    await act(db, number, "register", staff.operator, at(30, 9))
    with pytest.raises(NotAllowed, match="a supervisor may not handle"):
        await act(db, number, "handle", staff.supervisor, at(30, 9))  # handling is the department's
    with pytest.raises(InvalidInput, match="unknown action"):
        await act(db, number, "teleport", staff.operator, at(30, 9))
    with pytest.raises(InvalidInput, match="dispatch takes no colour"):
        await act(db, number, "dispatch", staff.operator, at(30, 9), colour="red")
    case = await get(db, number)
    assert case.status == "registered" and case.dispatch_count == 0 and case.updated_at == at(30, 9)
    assert before == MON
    assert [s.action for s in await timeline(db, number)] == ["report", "register"]
    # Every move in the table starts from a real status and names a known action.
    assert {s for s, _ in TRANSITIONS} <= {"reported", "registered", "dispatched", "in_progress", "handled",
                                           "checked", "closed", "returned", "suspended"}


async def test_a_department_acts_only_on_its_own_cases(db, staff) -> None:
    number = await report(db, "C0118", CELL_B, MON)
    await to_dispatched(db, staff, number, at(30, 9))
    with pytest.raises(NotAllowed, match=f"department HW cannot act on case {number}: it is with LD"):
        await act(db, number, "accept", staff.hw, at(30, 10))
    with pytest.raises(NotAllowed, match="an operator may not accept"):
        await act(db, number, "accept", staff.operator, at(30, 10))
    with pytest.raises(NotAllowed, match="a department may not close"):
        await act(db, number, "close", staff.ld, at(30, 10))
    with pytest.raises(NotAllowed, match="a reporter may not dispatch"):
        await act(db, number, "dispatch", await reporter_actor(db), at(30, 10))
    case = await get(db, number)
    assert case.status == "dispatched" and [s.action for s in await timeline(db, number)][-1] == "dispatch"


async def test_bad_input_is_refused_with_its_reason(db, staff) -> None:
    number = await report(db, "C0118", CELL_B, MON)
    with pytest.raises(InvalidInput, match="outside the service area"):
        await act(db, number, "register", staff.operator, at(30, 9), lat=30.2, lon=120.1)
    with pytest.raises(InvalidInput, match="not in the taxonomy"):
        await act(db, number, "register", staff.operator, at(30, 9), class_code="C9999")
    with pytest.raises(InvalidInput, match="void needs reason"):
        await act(db, number, "void", staff.operator, at(30, 9))
    with pytest.raises(InvalidInput, match="duplicate_of: no case numbered 999999"):
        await act(db, number, "void", staff.operator, at(30, 9), reason="duplicate", duplicate_of="999999")
    await act(db, number, "register", staff.operator, at(30, 9))
    with pytest.raises(InvalidInput, match="unknown department 'XX'"):
        await act(db, number, "dispatch", staff.operator, at(30, 9), department="XX")
    with pytest.raises(InvalidInput, match="unknown department 'CENTRE'"):  # the centre is not a department to send to
        await act(db, number, "dispatch", staff.operator, at(30, 9), department="CENTRE")
    with pytest.raises(InvalidInput, match="a time limit looks like"):
        await act(db, number, "dispatch", staff.operator, at(30, 9), limit="soon")
    await act(db, number, "dispatch", staff.operator, at(30, 9))
    await act(db, number, "accept", staff.ld, at(30, 9))
    with pytest.raises(InvalidInput, match="handle needs a note"):
        await act(db, number, "handle", staff.ld, at(30, 10))
    with pytest.raises(InvalidInput, match="not a saved photo path"):
        await act(db, number, "handle", staff.ld, at(30, 10), note="done", photos=["../../etc/passwd"])
    with pytest.raises(InvalidInput, match="return needs a note"):
        await act(db, number, "return", staff.ld, at(30, 10))
    with pytest.raises(InvalidInput, match="amount must be"):
        await act(db, number, "request_extension", staff.ld, at(30, 10), amount=0, unit="days", note="x")
    case = await get(db, number)
    assert case.status == "in_progress" and case.handled_at is None and case.extension_request is None
    assert [s.action for s in await timeline(db, number)] == ["report", "register", "dispatch", "accept"]


async def test_rework_sends_it_back_to_the_same_department_with_a_fresh_clock(db, staff) -> None:
    number = await report(db, "E0102", CELL_B, MON)  # exposed rubbish: 4 working hours in area B
    case = await to_dispatched(db, staff, number, MON)
    assert case.department_code == "HW" and case.due_at == at(30, 14)
    await act(db, number, "accept", staff.hw, at(30, 9))
    await act(db, number, "handle", staff.hw, at(30, 10), note="已清运")
    with pytest.raises(InvalidInput, match="rework needs a note"):
        await act(db, number, "rework", staff.operator, at(30, 11))
    case = await act(db, number, "rework", staff.operator, at(30, 11), note="现场仍有垃圾")
    assert case.status == "dispatched" and case.department_code == "HW" and case.rework_count == 1
    assert case.due_at == at(30, 16, 30) and case.handled_on_time is None  # 11:00 + 4 h over lunch
    rework = [o for o in await outbox(db, "case_task") if "返工" in o.body]
    assert len(rework) == 1 and "现场仍有垃圾" in rework[0].body and rework[0].urn == "tel:+8657487000102"
    await act(db, number, "accept", staff.hw, at(30, 13, 40))
    case = await act(db, number, "handle", staff.hw, at(30, 16, 45), note="再次清运")  # late this time
    assert case.handled_on_time is False
    await act(db, number, "check", staff.operator, at(30, 17))
    case = await act(db, number, "close", staff.operator, at(30, 17, 10))
    assert case.closed_on_time is False and case.rework_count == 1


async def test_a_return_goes_to_the_dispatcher_who_sends_it_on(db, staff) -> None:
    number = await report(db, "C0118", CELL_B, MON)
    case = await to_dispatched(db, staff, number, MON, department="SZ")  # the wrong department
    assert case.department_code == "SZ"
    case = await act(db, number, "return", staff.sz, at(30, 9), note="路灯归路灯所")
    assert case.status == "returned" and case.return_count == 1 and case.due_at is None and case.timer_started_at is None
    with pytest.raises(NotAllowed):
        await act(db, number, "accept", staff.ld, at(30, 9, 30))  # not LD's until dispatched to LD
    case = await act(db, number, "dispatch", staff.operator, at(30, 10), department="LD")
    assert case.status == "dispatched" and case.department_code == "LD" and case.dispatch_count == 2
    tasks = await outbox(db, "case_task")
    assert [t.urn for t in tasks] == ["tel:+8657487000101", "tel:+8657487000110"]
    dispatched = [o for o in await outbox(db, "case_update") if "已派给" in o.body]
    assert len(dispatched) == 2 and "区市政工程管理所" in dispatched[0].body and "区路灯管理所" in dispatched[1].body


async def test_an_extension_is_asked_by_the_department_and_decided_by_a_supervisor(db, staff) -> None:
    number = await report(db, "E0102", CELL_B, MON)
    await to_dispatched(db, staff, number, MON)
    case = await act(db, number, "request_extension", staff.hw, at(30, 9), amount=1, unit="days", note="需要吊车")
    assert case.extension_request["amount"] == 1 and case.due_at == at(30, 14)
    with pytest.raises(Conflict, match="already has an extension request"):
        await act(db, number, "request_extension", staff.hw, at(30, 9), amount=2, unit="hours", note="again")
    with pytest.raises(NotAllowed, match="an operator may not approve extension"):
        await act(db, number, "approve_extension", staff.operator, at(30, 9))
    case = await act(db, number, "approve_extension", staff.supervisor, at(30, 10))
    assert case.limit_minutes == 240 + 450 and case.due_at == at(1, 14, month=12) and case.extension_count == 1
    with pytest.raises(Conflict, match="no extension request"):
        await act(db, number, "reject_extension", staff.supervisor, at(30, 10))
    await act(db, number, "request_extension", staff.hw, at(30, 11), amount=3, unit="hours", note="more")
    case = await act(db, number, "reject_extension", staff.supervisor, at(30, 11), note="不批准")
    assert case.extension_request is None and case.due_at == at(1, 14, month=12)


async def test_a_suspension_stops_the_clock_until_it_resumes(db, staff) -> None:
    number = await report(db, "E0102", CELL_B, MON)
    await to_dispatched(db, staff, number, MON)  # due 14:00
    with pytest.raises(NotAllowed, match="needs supervisor"):
        await act(db, number, "suspend", staff.operator, at(30, 10, 30), note="待预算")
    case = await act(db, number, "suspend", staff.supervisor, at(30, 10, 30), note="待预算")
    assert case.status == "suspended" and case.due_at is None and case.timer_used_minutes == 120
    case = await act(db, number, "resume", staff.supervisor, at(1, 9, month=12))
    assert case.status == "dispatched" and case.due_at == at(1, 11, month=12)  # the 2 hours left


async def test_time_limits_follow_the_area_class(db, staff) -> None:
    due = {}
    for cell in (CELL_A, CELL_B, CELL_C):
        number = await report(db, "E0102", cell, MON, urn=None)
        due[cell] = (await to_dispatched(db, staff, number, MON)).due_at
    assert due == {CELL_A: at(30, 10, 30), CELL_B: at(30, 14), CELL_C: at(1, 9, month=12)}  # 2 h, 4 h, 8 h


async def test_a_dissatisfied_reporter_reopens_the_case(db, staff) -> None:
    number = await report(db, "C0118", CELL_B, MON)
    await to_dispatched(db, staff, number, MON)
    await act(db, number, "accept", staff.ld, at(30, 9))
    await act(db, number, "handle", staff.ld, at(30, 10), note="修好了")
    await act(db, number, "check", staff.operator, at(30, 11), via="reporter")
    await act(db, number, "close", staff.operator, at(30, 11))
    async with db.write() as session:
        stranger = Actor.reporter((await contacts_for(session, ["tel:+8613999999999"]))["tel:+8613999999999"].id)
    with pytest.raises(NotAllowed, match="only a person who reported"):
        await act(db, number, "rate", stranger, at(30, 12), rating=1)
    case = await act(db, number, "rate", await reporter_actor(db), at(30, 12), rating=2)
    assert case.status == "dispatched" and case.department_code == "LD" and case.reopen_count == 1
    assert case.rating == 2 and case.closed_at is None and case.due_at is not None
    assert [s.action for s in await timeline(db, number)][-2:] == ["rate", "reopen"]
    assert any("群众不满意" in t.body for t in await outbox(db, "case_task"))
    assert any("重新交" in u.body for u in await outbox(db, "case_update"))
    async with db.read() as session:
        (row,) = (await session.scalars(select(CaseReport).where(CaseReport.case_id == case.id))).all()
    assert row.rating == 2


async def test_void_as_invalid_or_as_a_duplicate(db, staff) -> None:
    first = await report(db, "C0118", CELL_B, MON)
    other = await report(db, "C0118", CELL_C, MON, urn="tel:+8613800000002")
    junk = await report(db, "C0118", CELL_A, MON, urn="tel:+8613800000003")
    with pytest.raises(InvalidInput, match="void needs a note"):
        await act(db, junk, "void", staff.operator, at(30, 9), reason="invalid")
    case = await act(db, junk, "void", staff.operator, at(30, 9), reason="invalid", note="无法核实")
    assert case.status == "voided" and case.status_note == "无法核实"
    with pytest.raises(InvalidInput, match="must be another case that is still open"):
        await act(db, other, "void", staff.operator, at(30, 9), reason="duplicate", duplicate_of=junk)
    case = await act(db, other, "void", staff.operator, at(30, 9), reason="duplicate", duplicate_of=first)
    assert case.duplicate_of_id is not None and case.void_reason == "duplicate"
    target = await get(db, first)
    assert target.reports_count == 2
    async with db.read() as session:
        urns = set(await session.scalars(select(CaseReport.urn).where(CaseReport.case_id == target.id)))
    assert urns == {"tel:+8613800000001", "tel:+8613800000002"}
    told = [o for o in await outbox(db, "case_update") if o.urn == "tel:+8613800000002"]
    assert len(told) == 1 and first in told[0].body


async def test_closing_a_case_never_dispatched_is_a_conflict(db, staff) -> None:
    number = await report(db, "C0118", CELL_B, MON)
    await act(db, number, "register", staff.operator, at(30, 9))
    with pytest.raises(Conflict) as refused:
        await act(db, number, "close", staff.operator, at(30, 9))
    assert refused.value.status == 409
    async with db.read() as session:
        case = await session.scalar(select(Case).where(Case.status == "closed"))
    assert case is None
