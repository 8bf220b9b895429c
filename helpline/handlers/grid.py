"""Street problems (grid cases): name the standard class, find the place and its grid cell, queue it.

The router recognises the class from the taxonomy; the full case workflow (registration,
dispatch, time limits) builds on this. The place becomes a unit grid cell (helpline/grid.py):
from the coordinates the channel sent, or from a road or landmark of the gazetteer named in the
typed place. A typed place the gazetteer does not know is still recorded, as text, for the
operator. Until a case is registered, the report draft (class, words, place, cell, lat, lon) is
kept in the conversation state under ``report`` and an operator is asked to register it.
"""

from __future__ import annotations

from typing import Any

from helpline.grid import Cell, locate, resolve_place
from helpline.handlers.operator import request_operator
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


async def _record(ctx: Context, report: dict[str, Any], cell: Cell | None, lat: float | None, lon: float | None,
                  place: str | None, landmark: str | None = None) -> None:
    """Keep the finished draft for the operator who registers the case, and queue the conversation."""
    draft = {**report, "place": place, "cell": cell.id if cell else None, "lat": lat, "lon": lon}
    draft.pop("outside", None)
    if landmark is not None:
        draft["landmark"] = landmark
    ctx.set_state(flow=None, report=draft)  # flow is over; the draft waits for registration
    await request_operator(ctx, "grid_case")


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
        await _record(ctx, report, cell, where.lat, where.lon, place[:200] or None)
    elif (resolved := resolve_place(place)) is not None:
        landmark, cell = resolved
        await _record(ctx, report, cell, landmark.lat, landmark.lon, place[:200], landmark.name)
    else:
        cell = None  # unknown to the gazetteer: the operator places it from the words
        await _record(ctx, report, None, None, None, place[:200])
    return Reply(
        text=ctx.t(
            f"已记录：{cls.minor_zh}问题，地点“{place}”。{_cell_text(ctx, cell)}"
            "我们会登记立案并派给责任部门，案件号稍后发给您。",
            f"Recorded: {cls.minor_en.lower()} at “{place}”{_cell_text(ctx, cell)}. We will register it and "
            "pass it to the responsible department; you will get a case number shortly.",
        ),
        intent=Intent.GRID_CASE,
        lang=ctx.lang,
        grid=grid_object(code),
    )


async def grid_case(ctx: Context) -> Reply | None:
    report = ctx.state.get("report") if ctx.state.get("flow") == Intent.GRID_CASE.value else None
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
    ctx.set_state(flow=Intent.GRID_CASE.value, report=report)
    where = ctx.request.location
    if where is not None:
        cell = locate(where.lat, where.lon)
        if cell is None:
            return _outside(ctx, cls, report, where)
        await _record(ctx, report, cell, where.lat, where.lon, None)
        return Reply(
            text=ctx.t(
                f"已收到您反映的{cls.minor_zh}问题（{kind_zh}：{cls.major_zh}），位置已记录。{_cell_text(ctx, cell)}"
                "我们会登记立案并派给责任部门。",
                f"Thank you: your report of a {cls.minor_en.lower()} ({cls.major_en.lower()}) and its location are "
                f"recorded{_cell_text(ctx, cell)}. We will register it and pass it to the responsible department.",
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
