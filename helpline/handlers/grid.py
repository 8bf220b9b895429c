"""Street problems (grid cases): name the standard class, find the place and its grid cell, open
the case and give its number.

The router recognises the class from the taxonomy. The place becomes a unit grid cell
(helpline/grid.py): from the coordinates the channel sent, or from a road or landmark of the
gazetteer named in the typed place. A typed place the gazetteer does not know still makes a case,
with the place in words, for the operator who registers it to locate. Until the place is known
the report is a draft kept in the conversation state under ``report`` (class, words, and photos or
a recording the channel attached); then the case is opened in status ``reported``
(helpline/cases/service.py) — or, when an open case of the same class lies close by, the report
joins it and the resident gets that case's number.

The same flow also takes the answer to the satisfaction question sent at a case's closure
(helpline/cases/dialogue.py): a bare 1-5, or "不满意" to reopen.
"""

from __future__ import annotations

from typing import Any

from helpline.cases import service
from helpline.cases.dialogue import status_name, survey_answer
from helpline.cases.notify import SURVEY_STATE
from helpline.cases.views import reply_case
from helpline.cases.workflow import Actor
from helpline.grid import Cell, locate, resolve_place
from helpline.request import Intent, Location, Reply
from helpline.router import Context
from helpline.taxonomy import GridClass, shipped_taxonomy


def grid_object(code: str) -> dict[str, str] | None:
    cls = shipped_taxonomy().get(code)
    return cls.to_dict() if cls else None


def _cell_text(ctx: Context, cell: Cell | None) -> str:
    if cell is None:
        return ""
    return ctx.t(f"网格：{cell.name}（{cell.id}）。", f" (grid cell {cell.id})")


async def _open_case(ctx: Context, report: dict[str, Any], cell: Cell | None, lat: float | None, lon: float | None,
                     place: str | None, landmark: str | None = None) -> service.Reported:
    """The draft is complete: open the case (or join the open one it repeats); the flow is over."""
    media = [{"path": p} for p in report.get("media", []) if isinstance(p, str)]
    if report.get("recording_url"):
        media.append({"recording": str(report["recording_url"])})
    new = service.NewReport(
        class_code=report["code"], description=str(report.get("text", "")), source=ctx.request.channel.value,
        lat=lat, lon=lon, cell_id=cell.id if cell else None, address=place, landmark=landmark,
        urn=ctx.request.address, contact_id=ctx.contact.id, media=media,
    )
    done = await service.report(ctx.session, new, Actor.reporter(ctx.contact.id), ctx.now)
    ctx.set_state(flow=None, report=None, case=done.case.number)
    return done


def _outside(ctx: Context, cls: GridClass, report: dict[str, Any], where: Location, place: str = "") -> Reply:
    """Coordinates outside every cell: keep waiting for the place, in words this time."""
    ctx.set_state(
        flow=Intent.GRID_CASE.value,
        report={**report, "lat": where.lat, "lon": where.lon, "outside": True},
    )
    named_zh = f"“{place}”" if place else ""
    named_en = f" “{place}”" if place else ""
    return Reply(
        text=ctx.t(
            f"抱歉，您发送的位置{named_zh}（{where.lat:.5f}, {where.lon:.5f}）不在本热线的网格服务区域内。"
            f"请告诉我们{cls.minor_zh}问题附近的标志性建筑，或详细地址（路名和门牌号）。",
            f"Sorry, the location you sent{named_en} ({where.lat:.5f}, {where.lon:.5f}) is outside our service "
            f"area. Please tell us a landmark near the {cls.minor_en.lower()} problem, or the address "
            "(street and number).",
        ),
        intent=Intent.GRID_CASE,
        lang=ctx.lang,
        grid=grid_object(report["code"]),
    )


def _opened(ctx: Context, cls: GridClass, done: service.Reported, head_zh: str, head_en: str) -> Reply:
    """The answer once the case exists: its number first (an SMS may be cut), then what happens next."""
    case, n = done.case, done.case.number
    if done.linked:
        text = ctx.t(
            f"已记录。这个{cls.minor_zh}问题已有居民反映，案件号{n}（{status_name(case.status, 'zh')}），"
            f"您的反映已并入该案件（共{case.reports_count}人反映），进度会一并通知您。查询请发 CX {n}。",
            f"Recorded: this {cls.minor_en.lower()} problem was already reported as case {n} "
            f"({status_name(case.status, 'en')}). We added your report ({case.reports_count} reports) and will keep "
            f"you posted. Send CX {n} for progress.",
        )
    else:
        text = ctx.t(
            f"{head_zh}案件号{n}。我们会核实立案并派给责任部门处理，进度会通知您；查询请发 CX {n}。",
            f"{head_en} Your case number is {n}. We will verify it and pass it to the responsible department; "
            f"send CX {n} for progress.",
        )
    return Reply(text=text, intent=Intent.GRID_CASE, lang=ctx.lang, grid=grid_object(cls.code),
                 case=reply_case(case, ctx.now))


async def _place_given(ctx: Context, report: dict[str, Any]) -> Reply:
    """The message after the question: a location from the channel, or the place in words."""
    code = report["code"]
    cls = shipped_taxonomy()[code]
    place = ctx.request.text.strip()
    where = ctx.request.location
    if where is not None:  # the channel's coordinates win; the text is a venue name or a marker
        cell = locate(where.lat, where.lon)
        if cell is None:
            return _outside(ctx, cls, report, where, place)
        done = await _open_case(ctx, report, cell, where.lat, where.lon, place[:200] or None)
    elif not place:
        return _ask_place(ctx, cls, report)
    elif (resolved := resolve_place(place)) is not None:
        landmark, cell = resolved
        done = await _open_case(ctx, report, cell, landmark.lat, landmark.lon, place[:200], landmark.name)
    else:
        cell = None  # unknown to the gazetteer: the operator places it from the words
        done = await _open_case(ctx, report, None, None, None, place[:200])
    where_zh = f"地点“{place}”" if place else "位置已记录"
    where_en = f" at “{place}”" if place else " at the location you sent"
    return _opened(
        ctx, cls, done,
        f"已记录：{cls.minor_zh}问题，{where_zh}。{_cell_text(ctx, cell)}",
        f"Recorded: {cls.minor_en.lower()}{where_en}{_cell_text(ctx, cell)}.",
    )


def _ask_place(ctx: Context, cls: GridClass, report: dict[str, Any]) -> Reply:
    kind_zh = "部件" if cls.kind == "component" else "事件"
    ctx.set_state(flow=Intent.GRID_CASE.value, report=report, **{SURVEY_STATE: None})  # a new report supersedes
    return Reply(
        text=ctx.t(
            f"收到，您反映的是{cls.minor_zh}问题（{kind_zh}：{cls.major_zh}）。请告诉我们具体地点，例如路名和门牌号、附近的标志性建筑。",
            f"Got it: a {cls.minor_en.lower()} problem ({cls.major_en.lower()}). Where exactly is it? "
            "Please give the street and number or a landmark nearby.",
        ),
        intent=Intent.GRID_CASE,
        lang=ctx.lang,
        grid=grid_object(cls.code),
    )


async def grid_case(ctx: Context) -> Reply | None:
    in_flow = ctx.state.get("flow") == Intent.GRID_CASE.value
    if in_flow and ctx.state.get(SURVEY_STATE):
        answered = await survey_answer(ctx)
        if answered is not None:
            return answered
        ctx.set_state(**{SURVEY_STATE: None})  # something else: the question lapses
        if ctx.state.get("report") is None and ctx.classification.intent is not Intent.GRID_CASE:
            return None  # no report in progress either: let the router take it
    report = ctx.state.get("report") if in_flow else None
    if report is not None and ctx.classification.intent is not Intent.GRID_CASE:
        if ctx.classification.intent not in (Intent.KNOWLEDGE, Intent.UNKNOWN):
            return None  # a different request: let the router take it
        return await _place_given(ctx, report)  # the message that follows the question is the place
    code = (ctx.classification.category or {}).get("code")
    if code is None:
        return None
    cls = shipped_taxonomy()[code]
    kind_zh = "部件" if cls.kind == "component" else "事件"
    report = {"code": code, "text": ctx.request.text[:500]}
    draft = ctx.state.get("report")
    if isinstance(draft, dict):  # photos or a recording that came before the words stay with the report
        report.update({k: draft[k] for k in ("media", "recording_url") if k in draft})
    where = ctx.request.location
    if where is None:
        return _ask_place(ctx, cls, report)
    cell = locate(where.lat, where.lon)
    if cell is None:
        return _outside(ctx, cls, report, where)
    done = await _open_case(ctx, report, cell, where.lat, where.lon, None)
    return _opened(
        ctx, cls, done,
        f"已收到您反映的{cls.minor_zh}问题（{kind_zh}：{cls.major_zh}），位置已记录。{_cell_text(ctx, cell)}",
        f"Thank you: your report of a {cls.minor_en.lower()} ({cls.major_en.lower()}) and its location are "
        f"recorded{_cell_text(ctx, cell)}.",
    )
