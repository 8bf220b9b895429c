"""Street problems (grid cases): name the standard class, ask for the place, queue it for registration.

The router recognises the class from the taxonomy; the full case workflow (registration,
dispatch, time limits) builds on this. Until a case is registered, the report and its place are
kept in the conversation and an operator is asked to register it.
"""

from __future__ import annotations

from helpline.handlers.operator import request_operator
from helpline.request import Intent, Reply
from helpline.router import Context
from helpline.taxonomy import shipped_taxonomy


def grid_object(code: str) -> dict[str, str] | None:
    cls = shipped_taxonomy().get(code)
    return cls.to_dict() if cls else None


async def grid_case(ctx: Context) -> Reply | None:
    report = ctx.state.get("report") if ctx.state.get("flow") == Intent.GRID_CASE.value else None
    if report is not None and ctx.classification.intent is not Intent.GRID_CASE:
        if ctx.classification.intent not in (Intent.KNOWLEDGE, Intent.UNKNOWN):
            return None  # a different request: let the router take it
        # The message that follows the question is the place.
        ctx.set_state(flow=None, report=None)
        await request_operator(ctx, "grid_case")
        code = report["code"]
        cls = shipped_taxonomy()[code]
        return Reply(
            text=ctx.t(
                f"已记录：{cls.minor_zh}问题，地点“{ctx.request.text.strip()}”。我们会登记立案并派给责任部门，案件号稍后发给您。",
                f"Recorded: {cls.minor_en.lower()} at “{ctx.request.text.strip()}”. We will register it and pass it "
                "to the responsible department; you will get a case number shortly.",
            ),
            intent=Intent.GRID_CASE,
            lang=ctx.lang,
            grid=grid_object(code),
        )
    code = (ctx.classification.category or {}).get("code")
    if code is None:
        return None
    cls = shipped_taxonomy()[code]
    kind_zh = "部件" if cls.kind == "component" else "事件"
    ctx.set_state(flow=Intent.GRID_CASE.value, report={"code": code, "text": ctx.request.text[:500]})
    if ctx.request.location is not None:
        ctx.set_state(flow=None, report=None)
        await request_operator(ctx, "grid_case")
        return Reply(
            text=ctx.t(
                f"已收到您反映的{cls.minor_zh}问题（{kind_zh}：{cls.major_zh}），位置已记录。我们会登记立案并派给责任部门。",
                f"Thank you: your report of a {cls.minor_en.lower()} ({cls.major_en.lower()}) and its location are "
                "recorded. We will register it and pass it to the responsible department.",
            ),
            intent=Intent.GRID_CASE,
            lang=ctx.lang,
            grid=grid_object(code),
        )
    return Reply(
        text=ctx.t(
            f"收到，您反映的是{cls.minor_zh}问题（{kind_zh}：{cls.major_zh}）。请告诉我们具体地点，例如路名和门牌号、附近的标志性建筑。",
            f"Got it: a {cls.minor_en.lower()} problem ({cls.major_en.lower()}). Where exactly is it? "
            "Please give the street and number or a landmark nearby.",
        ),
        intent=Intent.GRID_CASE,
        lang=ctx.lang,
        grid=grid_object(code),
    )
