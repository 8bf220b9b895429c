"""What residents say about their cases in a conversation: "CX 100001" (status), and the answer to
the satisfaction question at closure (a bare 1-5, "不满意"/"reopen", or "CX 100001 4" any time).

Case actions taken from a message run in a savepoint, so a refusal leaves the message's
transaction as it was and the resident gets a plain answer instead of an error.
"""

from __future__ import annotations

import re

from helpline.cases import service
from helpline.cases.data import calendar, departments, taxonomy
from helpline.cases.models import Case, case_id_of
from helpline.cases.notify import SURVEY_STATE
from helpline.cases.views import reply_case
from helpline.cases.workflow import Actor, CaseError
from helpline.request import Intent, Reply
from helpline.router import Context

STATUS_NAMES = {
    "reported": ("已受理，待核实立案", "received, waiting to be verified"),
    "registered": ("已立案，待派遣", "registered, waiting to be dispatched"),
    "dispatched": ("已派遣给责任部门", "with the responsible department"),
    "in_progress": ("责任部门处置中", "being dealt with by the department"),
    "handled": ("已处置，待核查", "dealt with, waiting to be checked"),
    "checked": ("已核查，待结案", "checked, about to be closed"),
    "closed": ("已结案", "closed"),
    "voided": ("未予立案", "not registered"),
    "returned": ("待重新派遣", "waiting to be passed to another department"),
    "suspended": ("暂缓办理（挂账）", "on hold"),
}
_RATING = re.compile(r"^\s*(?:评分|打分|rating|rate)?\s*([1-5])\s*(?:分|星|stars?|/5)?\s*[.。!！]?\s*$", re.IGNORECASE)
# Before the number in "CX 100001 4" / "案件100001 5分": only a command word may stand there.
_COMMAND = re.compile(r"^\s*(?:cx|st|zt|status|查询|进度|查|案件号?|编号|单号|工单)?[\s#:：]*$", re.IGNORECASE)
REOPEN_WORDS = ("不满意", "没修好", "没有修好", "没解决", "没有解决", "重新处理", "重办", "reopen", "not fixed",
                "not satisfied", "unsatisfied", "dissatisfied")


def status_name(status: str, lang: str) -> str:
    zh, en = STATUS_NAMES.get(status, (status, status))
    return zh if lang == "zh" else en


def _wants_reopen(text: str) -> bool:
    folded = text.lower()
    return any(word in folded for word in REOPEN_WORDS)


async def status_reply(ctx: Context, case: Case, intro: str = "") -> Reply:
    cls = (await taxonomy(ctx.session)).get(case.class_code or "")
    dept = (await departments(ctx.session)).get(case.department_code or "")
    what = cls.name(ctx.lang) if cls else ctx.t("城市管理问题", "street problem")
    parts = [ctx.t(f"案件{case.number}（{what}）：{status_name(case.status, 'zh')}。",
                   f"Case {case.number} ({what.lower()}): {status_name(case.status, 'en')}.")]
    if dept is not None and case.status not in ("reported", "registered", "voided"):
        parts.append(ctx.t(f"责任部门：{dept.name_zh}。", f"Department: {dept.name_en}."))
    if case.due_at is not None and case.status in ("dispatched", "in_progress"):
        local = case.due_at.astimezone((await calendar(ctx.session)).zone)
        parts.append(ctx.t(f"预计{local.month}月{local.day}日{local:%H:%M}前完成。",
                           f"Expected by {local:%d %b %H:%M}."))
    if case.status_note and case.status in ("handled", "checked", "closed", "voided"):
        parts.append(ctx.t(f"说明：{case.status_note}", f"Note: {case.status_note}"))
    text = intro + ("".join(parts) if ctx.lang == "zh" else " ".join(parts))
    return Reply(text=text, intent=Intent.CASE_STATUS, lang=ctx.lang, case=reply_case(case, ctx.now))


async def lookup(ctx: Context, number: str) -> Reply | None:
    """The StatusDesk lookup for case numbers; a rating after the number ("CX 100001 4") is taken too."""
    case_id = case_id_of(number)
    if case_id is None:
        return None
    case = await ctx.session.get(Case, case_id)
    if case is None:
        return None
    text = ctx.request.text
    at = text.find(number)
    head, tail = (text[:at], text[at + len(number):]) if at >= 0 else (text, "")
    rating = _RATING.match(tail) if _COMMAND.match(head) else None
    if rating is not None or _wants_reopen(tail):
        return await answer_survey(ctx, case, int(rating.group(1)) if rating else None, Intent.CASE_STATUS)
    return await status_reply(ctx, case)


async def answer_survey(ctx: Context, case: Case, rating: int | None, intent: Intent = Intent.GRID_CASE) -> Reply:
    """Record the reporter's rating (1-2 reopen the case), or reopen on "不满意" without a number."""
    actor = Actor.reporter(ctx.contact.id)
    try:
        async with ctx.session.begin_nested():
            if rating is not None:
                await service.perform(ctx.session, case, "rate", actor, ctx.now, rating=rating)
            else:
                await service.perform(ctx.session, case, "reopen", actor, ctx.now, note=ctx.request.text.strip()[:500])
    except CaseError as exc:
        await ctx.session.refresh(case)
        if exc.status == 403:
            text = ctx.t(f"只有反映案件{case.number}的居民可以评价它。", f"Only the people who reported case {case.number} can rate it.")
        else:
            text = ctx.t(f"案件{case.number}目前{status_name(case.status, 'zh')}，办结后才能评价。",
                         f"Case {case.number} is {status_name(case.status, 'en')}; it can be rated once it is closed.")
        return Reply(text=text, intent=intent, lang=ctx.lang, case=reply_case(case, ctx.now))
    if case.status == "closed":
        text = ctx.t(f"感谢您的评价（{rating}分）！案件{case.number}已结案。",
                     f"Thank you for rating case {case.number}: {rating} out of 5.")
    else:
        dept = (await departments(ctx.session)).get(case.department_code or "")
        name = dept.name(ctx.lang) if dept else ctx.t("责任部门", "the department")
        text = ctx.t(f"很抱歉没让您满意。案件{case.number}已重新交{name}处理，进度会通知您。",
                     f"We are sorry. Case {case.number} is reopened and back with {name}; we will keep you posted.")
    return Reply(text=text, intent=intent, lang=ctx.lang, case=reply_case(case, ctx.now))


async def survey_answer(ctx: Context) -> Reply | None:
    """A message while the satisfaction question is open: the answer, or None if it is something else."""
    number = str(ctx.state.get(SURVEY_STATE) or "")
    case_id = case_id_of(number)
    case = await ctx.session.get(Case, case_id) if case_id else None
    text = ctx.request.text
    match = _RATING.match(text)
    if case is None or (match is None and not _wants_reopen(text)):
        return None
    ctx.set_state(flow=None, **{SURVEY_STATE: None})
    return await answer_survey(ctx, case, int(match.group(1)) if match else None)

