"""Messages about a case that are not an immediate reply: reporter updates at each major step, the
satisfaction question at closure, task notices to departments, warnings and escalations.

All go through the outbox in the transaction of the step that causes them, with idempotency keys
made of the case, the step and the case's round (dispatches, reworks, reopenings), so a step
repeated by a retry is not announced twice, while a second dispatch after a return is.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.cases.data import calendar, taxonomy
from helpline.cases.models import Case, CaseReport, Department
from helpline.contacts import current_conversation
from helpline.models import Contact
from helpline.outbox import channel_for, enqueue
from helpline.request import Intent

SURVEY_STATE = "survey"  # conversation state key: the case number whose rating we wait for


def _round(case: Case) -> str:
    return f"{case.dispatch_count}.{case.rework_count}.{case.reopen_count}"


def _when(at: datetime | None, zone: ZoneInfo, lang: str) -> str:
    if at is None:
        return "-"
    local = at.astimezone(zone)
    return f"{local.month}月{local.day}日 {local:%H:%M}" if lang == "zh" else f"{local:%d %b %H:%M}"


async def _facts(session: AsyncSession, case: Case) -> tuple[dict[str, str], dict[str, str], ZoneInfo]:
    """The class name and the place in both languages, and the local time zone."""
    cls = (await taxonomy(session)).get(case.class_code or "")
    what = {"zh": cls.minor_zh if cls else "城市管理", "en": cls.minor_en.lower() if cls else "street problem"}
    place = case.address or case.landmark or (case.cell_id and f"网格{case.cell_id}") or "-"
    return what, {"zh": place, "en": place}, (await calendar(session)).zone


async def _reporters(session: AsyncSession, case: Case) -> list[tuple[CaseReport, str]]:
    """Each reachable reporter once (by address), with their language."""
    reports = list(await session.scalars(
        select(CaseReport).where(CaseReport.case_id == case.id, CaseReport.urn.is_not(None)).order_by(CaseReport.id)
    ))
    langs = {}
    ids = {r.contact_id for r in reports if r.contact_id is not None}
    if ids:
        langs = dict((await session.execute(select(Contact.id, Contact.lang).where(Contact.id.in_(ids)))).all())
    seen: set[str] = set()
    out = []
    for report in reports:
        if report.urn in seen or report.urn is None:
            continue
        try:
            channel_for(report.urn)
        except ValueError:
            continue  # an address no channel can send to
        seen.add(report.urn)
        out.append((report, langs.get(report.contact_id) or "zh"))
    return out


async def reporters(session: AsyncSession, case: Case, step: str, now: datetime, *,
                    department: Department | None = None, note: str | None = None,
                    duplicate_of: str | None = None) -> int:
    """Tell every reporter that the case reached ``step``; returns how many messages were queued."""
    what, place, zone = await _facts(session, case)
    n = case.number
    dept_zh = department.name_zh if department else "责任部门"
    dept_en = department.name_en if department else "the responsible department"
    texts = {
        "registered": (f"您反映的{what['zh']}问题（案件号{n}）已核实立案，将派给责任部门处理。查询进度请回复 CX {n}。",
                       f"Your report of a {what['en']} (case {n}) is verified and registered. Reply CX {n} for progress."),
        "voided": (f"经核实，您反映的问题（案件号{n}）未予立案：{note or '无法核实'}。如有疑问请回复0转人工。",
                   f"Your report (case {n}) was not registered: {note or 'it could not be verified'}. Reply 0 for an operator."),
        "duplicate": (f"您反映的问题已有案件{duplicate_of}在办理，已并入该案件，进度会一并通知您。",
                      f"Your report is already being handled as case {duplicate_of}; we merged it and will keep you posted."),
        "dispatched": (f"您反映的{what['zh']}问题（案件号{n}）已派给{dept_zh}处理，预计{_when(case.due_at, zone, 'zh')}前完成。",
                       f"Case {n} ({what['en']}) is with {dept_en}, expected by {_when(case.due_at, zone, 'en')}."),
        "handled": (f"{dept_zh}已处理您反映的问题（案件号{n}）：{note or '已处置'}。我们核查后结案。",
                    f"{dept_en} has dealt with case {n}: {note or 'done'}. We will check it and close the case."),
        "reopened": (f"您对案件{n}的处理不满意，已重新交{dept_zh}处理，预计{_when(case.due_at, zone, 'zh')}前完成。",
                     f"Case {n} is reopened and back with {dept_en}, expected by {_when(case.due_at, zone, 'en')}."),
    }
    zh, en = texts[step]
    queued = 0
    for report, lang in await _reporters(session, case):
        assert report.urn is not None
        await enqueue(session, report.urn, zh if lang == "zh" else en, "case_update",
                      key=f"case-{case.id}-{step}-{_round(case)}-r{report.id}", now=now)
        queued += 1
    return queued


async def ask_satisfaction(session: AsyncSession, case: Case, now: datetime) -> int:
    """At closure: ask each reporter for a rating 1-5, and make a bare digit in their conversation
    on that channel the answer (for as long as the dialogue stays open; "案件<number> 5分" or
    ``CX <number> <1-5>`` works at any time, through the status desk)."""
    n = case.number
    zh = (f"您反映的问题（案件号{n}）已办结。请为处理结果打分：回复1-5（5非常满意，1很不满意）；"
          f"回复“不满意”我们会重新处理。之后也可发送“案件{n} 5分”这样的短信评价。")
    en = (f"Case {n} is closed. How satisfied are you? Reply 1-5 (5 = very satisfied, 1 = not at all); "
          f"reply 'reopen' if it is not fixed. Later, send 'CX {n} <1-5>'.")
    queued = 0
    for report, lang in await _reporters(session, case):
        assert report.urn is not None
        item = await enqueue(session, report.urn, zh if lang == "zh" else en, "survey",
                             key=f"case-{case.id}-survey-{_round(case)}-r{report.id}", now=now)
        contact = await session.get(Contact, report.contact_id) if report.contact_id else None
        if contact is not None:
            conv = await current_conversation(session, contact, item.channel, now)
            state = dict(conv.state or {})
            if state.get("flow") != Intent.GRID_CASE.value:
                state.pop("report", None)  # a draft whose dialogue has lapsed must not take the answer as its place
            conv.state = {**state, "flow": Intent.GRID_CASE.value, SURVEY_STATE: n}
            conv.updated_at = now
        queued += 1
    return queued


async def department_task(session: AsyncSession, case: Case, dept: Department, kind: str, now: datetime,
                          note: str | None = None) -> bool:
    """A task notice to the department's duty contact: a new task, rework, or a reopened case."""
    if not dept.contact_urn:
        return False
    what, place, zone = await _facts(session, case)
    head = {"task": "新任务", "rework": "返工", "reopen": "群众不满意重办"}[kind]
    extra = f"原因：{note}。" if note and kind != "task" else ""
    cell = f"（网格{case.cell_id}）" if case.cell_id else ""
    body = (f"【数字城管】{head} 案件{case.number}：{what['zh']}，{place['zh']}{cell}。{extra}"
            f"请于{_when(case.due_at, zone, 'zh')}前处置并反馈。")
    await enqueue(session, dept.contact_urn, body, "case_task", key=f"case-{case.id}-{kind}-{_round(case)}-d", now=now)
    return True


async def warning(session: AsyncSession, case: Case, dept: Department | None, now: datetime) -> bool:
    """Yellow: 80 % of the time limit used."""
    if dept is None or not dept.contact_urn:
        return False
    what, place, zone = await _facts(session, case)
    body = (f"【数字城管】黄灯提醒 案件{case.number}：{what['zh']}，{place['zh']}，"
            f"将于{_when(case.due_at, zone, 'zh')}到期，请抓紧处置。")
    await enqueue(session, dept.contact_urn, body, "case_warning",
                  key=f"case-{case.id}-yellow-{_round(case)}-{case.extension_count}", now=now)
    return True


async def escalation(session: AsyncSession, case: Case, dept: Department | None, urns: list[str], now: datetime) -> int:
    """Red: the time limit has passed; every supervisor is told once."""
    what, place, zone = await _facts(session, case)
    who = dept.name_zh if dept else "未派遣"
    body = (f"【数字城管】红灯督办 案件{case.number}：{what['zh']}，{place['zh']}，责任部门{who}，"
            f"已于{_when(case.due_at, zone, 'zh')}超期未处置。")
    for urn in urns:
        tag = hashlib.sha256(urn.encode()).hexdigest()[:12]
        await enqueue(session, urn, body, "case_escalation",
                      key=f"case-{case.id}-red-{_round(case)}-{case.extension_count}-{tag}", now=now)
    return len(urns)
