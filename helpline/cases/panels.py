"""What grid cases add to the console's dashboard: pictures of the open cases' timers and of each
department's on-time and satisfaction figures, a table of the centre's figures for the current
month by department, and a map layer of open cases per grid cell (with the console's
``register_dashboard_panel`` / ``register_map_layer``). Department users see their own only.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from aiohttp import web
from markupsafe import escape
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.appkeys import SETTINGS
from helpline.cases.figures import figures
from helpline.cases.models import OPEN, Case
from helpline.cases.timers import light
from helpline.console.charts import hbars
from helpline.models import User, utcnow
from helpline.users import ROLES

COLUMNS = (
    ("dispatched", "派遣", "Dispatched", False), ("dispatch_accuracy", "准确派遣率", "Dispatch accuracy", True),
    ("on_time_handling_rate", "按时处置率", "On-time handling", True), ("closure_rate", "结案率", "Closure", True),
    ("on_time_closure_rate", "按期结案率", "On-time closure", True), ("rework_rate", "返工率", "Rework", True),
    ("avg_hours_to_close", "平均结案时长(时)", "Avg hours to close", False),
    ("avg_rating", "满意度(均分)", "Satisfaction (avg)", False),
)
LIGHTS = (("green", "绿灯 正常", "Green: on time", "#2f9e5b"), ("yellow", "黄灯 将超时", "Yellow: due soon", "#e0a030"),
          ("red", "红灯 已超时", "Red: overdue", "#d1483d"))


def _cell(value: Any, rate: bool) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f}%" if rate else str(value)


async def figures_panel(request: web.Request, session: AsyncSession, user: User, lang: str) -> str:
    zone = request.app[SETTINGS].zone
    now = utcnow().astimezone(zone)
    start = datetime.combine(now.date().replace(day=1), time(0), zone)
    scope = user.department_code if user.role == "department" else None
    data = await figures(session, start, now + timedelta(seconds=1), "department", department=scope)
    zh = lang == "zh"
    head = "".join(f"<th>{escape(z if zh else e)}</th>" for _, z, e, _ in COLUMNS)
    rows = []
    for group in [*data["groups"], {"key": "合计" if zh else "Total", "name": None, **data["total"]}]:
        name = escape(group.get("name") or group["key"])
        cells = "".join(f"<td>{_cell(group[k], rate)}</td>" for k, _, _, rate in COLUMNS)
        rows.append(f"<tr><th scope=\"row\">{name}</th>{cells}</tr>")
    caption = "本月上报的案件" if zh else "Cases reported this month"
    table = (f"<table class=\"figures\"><caption>{escape(caption)}</caption><thead><tr><th></th>{head}</tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>")
    return await _pictures(session, user, data["groups"], zh) + table


async def _pictures(session: AsyncSession, user: User, groups: list[dict[str, Any]], zh: bool) -> str:
    """Open cases by traffic light, and each department's on-time handling and satisfaction, as bars."""
    query = select(Case).where(Case.status.in_(OPEN), Case.timer_started_at.is_not(None))
    if user.role == "department":
        query = query.where(Case.department_code == user.department_code)
    now = utcnow()
    counts = {key: 0 for key, *_ in LIGHTS}
    for case in await session.scalars(query.limit(10_000)):
        shade = light(case, now)
        if shade in counts:
            counts[shade] += 1
    title = "办理中案件的计时灯" if zh else "Cases in hand, by timer"
    charts = [(title, hbars([(z if zh else e, counts[key]) for key, z, e, _ in LIGHTS], title=title,
                            colors=[c for *_, c in LIGHTS], width=420))]
    named = [(str(g.get("name") or g["key"]), g) for g in groups]
    on_time = [(n, round(g["on_time_handling_rate"] * 100, 1)) for n, g in named
               if g.get("on_time_handling_rate") is not None]
    if on_time:
        title = "按时处置率（本月）" if zh else "On-time handling (this month)"
        charts.append((title, hbars(on_time, title=title, unit="%", width=420)))
    rated = [(n, g["avg_rating"]) for n, g in named if g.get("avg_rating") is not None]
    if rated:
        title = "满意度均分（本月，满分5）" if zh else "Satisfaction (this month, of 5)"
        charts.append((title, hbars(rated, title=title, width=420)))
    parts = "".join(f'<figure class="case-chart"><figcaption>{escape(t)}</figcaption>{c}</figure>' for t, c in charts)
    return f'<div class="case-charts">{parts}</div>'


async def open_cases_layer(session: AsyncSession, user: User) -> dict[str, float]:
    query = select(Case.cell_id, func.count()).where(Case.status.in_(OPEN), Case.cell_id.is_not(None))
    if user.role == "department":
        query = query.where(Case.department_code == user.department_code)
    rows = await session.execute(query.group_by(Case.cell_id))
    return {cell: float(n) for cell, n in rows if cell}


def setup(app: web.Application) -> None:
    from helpline.console.pages import register_dashboard_panel, register_map_layer

    register_dashboard_panel(app, "case_figures", "数字城管指标", "City-management figures", ROLES, figures_panel, 20)
    register_map_layer(app, "open_cases", "未结案件", "Open cases", ROLES, open_cases_layer, 10)
