"""The dashboard: how the line is doing, in pictures — requests by channel and intent per day,
the busiest hours, what reached operators, and the grid map.

Counting is done by the database, grouped by UTC hour, channel and intent (a few thousand rows
at most for four weeks, however many messages there were); the hours are then moved into the
centre's time zone here, so days and hours are the centre's, on SQLite and PostgreSQL alike.
Figures that need cases (cases by class and department, on-time rates, time to close, dispatch
accuracy) come as panels and a map layer that the cases package registers
(``helpline.console.pages``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.appkeys import DB, SETTINGS
from helpline.console.auth import require_permission
from helpline.console.charts import PALETTE, hbars, heatmap, stacked_bars
from helpline.console.labels import CHANNEL_LABELS, INTENT_LABELS, label
from helpline.console.map import grid_svg
from helpline.console.pages import layers_for, panels_for
from helpline.console.queue import REASON_ACTIONS, load_queue
from helpline.console.render import lang_of, render, translator
from helpline.grid import shipped_grid
from helpline.models import Event, Message, OutboxItem, User, utcnow
from helpline.request import Intent

DAYS = 14
HEAT_DAYS = 28
WEEKDAYS = (
    ("周一", "Mon"),
    ("周二", "Tue"),
    ("周三", "Wed"),
    ("周四", "Thu"),
    ("周五", "Fri"),
    ("周六", "Sat"),
    ("周日", "Sun"),
)
CHANNEL_COLORS = {"sms": "#3b74c4", "voice": "#2a9d8f", "telegram": "#8e6bbf", "web": "#e0a030"}


@dataclass(slots=True)
class Traffic:
    """Inbound requests in the centre's local time: (day, hour, weekday, channel, intent) -> n."""

    rows: list[tuple[date, int, int, str, str, int]]

    def by_day(self, days: list[date], by: str) -> dict[str, list[int]]:
        """Counts per day for each channel (``by="channel"``) or intent (``by="intent"``)."""
        index = {d: i for i, d in enumerate(days)}
        out: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
        for day, _, _, channel, intent, n in self.rows:
            if day in index:
                out[channel if by == "channel" else intent][index[day]] += n
        return dict(out)

    def heat(self, since: date) -> list[list[int]]:
        matrix = [[0] * 24 for _ in range(7)]
        for day, hour, weekday, _, _, n in self.rows:
            if day >= since:
                matrix[weekday][hour] += n
        return matrix

    def total(self, since: date) -> Counter[str]:
        counts: Counter[str] = Counter()
        for day, _, _, _, intent, n in self.rows:
            if day >= since:
                counts[intent] += n
        return counts


async def traffic(session: AsyncSession, zone: Any, days: int = HEAT_DAYS, now: datetime | None = None) -> Traffic:
    now = now or utcnow()
    since = now - timedelta(days=days + 1)
    if session.get_bind().dialect.name == "sqlite":
        hour = func.strftime(literal_column("'%Y-%m-%d %H'"), Message.created_at)
    else:  # literals, not parameters: PostgreSQL must see the same expression in SELECT and GROUP BY
        hour = func.to_char(
            func.timezone(literal_column("'UTC'"), Message.created_at), literal_column("'YYYY-MM-DD HH24'")
        )
    rows = (
        await session.execute(
            select(hour, Message.channel, Message.intent, func.count())
            .where(Message.direction == "in", Message.created_at >= since)
            .group_by(hour, Message.channel, Message.intent)
        )
    ).all()
    out = []
    for bucket, channel, intent, n in rows:
        local = datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(zone)
        out.append((local.date(), local.hour, local.weekday(), channel, intent or "unknown", n))
    return Traffic(out)


async def _kpis(session: AsyncSession, today: date, zone: Any, tr: Any, traffic_: Traffic) -> list[dict[str, Any]]:
    week = today - timedelta(days=6)
    now = utcnow()
    counts = traffic_.total(week)
    total = sum(counts.values())
    unanswered = counts.get("unknown", 0) + counts.get("operator", 0)
    today_n = sum(traffic_.total(today).values())
    since = now - timedelta(days=7)
    events = (
        await session.execute(
            select(Event.subject_id, Event.action, Event.at)
            .where(
                Event.subject_type == "conversation",
                Event.at >= since - timedelta(days=1),
                Event.action.in_((*REASON_ACTIONS, "conversation.claimed", "conversation.replied")),
            )
            .order_by(Event.id)
        )
    ).all()
    asked: dict[str, datetime] = {}
    waits: list[float] = []
    handoffs = replies = 0
    for conv_id, action, at in events:
        if action in REASON_ACTIONS:
            asked.setdefault(conv_id, at)
            handoffs += at >= since
        elif action == "conversation.claimed" and conv_id in asked:
            if at >= since:
                waits.append((at - asked.pop(conv_id)).total_seconds())
        elif action == "conversation.replied":
            replies += at >= since
    waits.sort()
    median = waits[len(waits) // 2] if waits else None
    queue = [i for i in await load_queue(session) if i.conversation.status != "assigned" and i.reason != "unsure"]
    stuck = await session.scalar(select(func.count()).select_from(OutboxItem).where(OutboxItem.status == "dead"))
    return [
        {"label": tr("今日来访", "Requests today"), "value": today_n},
        {"label": tr("近7天来访", "Requests, 7 days"), "value": total},
        {
            "label": tr("自动答复率", "Answered automatically"),
            "value": f"{100 * (total - unanswered) / total:.0f}%" if total else "–",
        },
        {"label": tr("近7天转人工", "Hand-offs, 7 days"), "value": handoffs},
        {"label": tr("正在等待", "Waiting now"), "value": len(queue), "warn": bool(queue)},
        {
            "label": tr("接手等待中位数", "Median wait to claim"),
            "value": _duration(median, tr) if median is not None else "–",
        },
        {"label": tr("近7天人工回复", "Operator replies, 7 days"), "value": replies},
        {"label": tr("发送失败", "Undeliverable"), "value": stuck or 0, "warn": bool(stuck)},
    ]


def _duration(seconds: float, tr: Any) -> str:
    if seconds < 60:
        return tr(f"{seconds:.0f}秒", f"{seconds:.0f} s")
    if seconds < 3600:
        return tr(f"{seconds / 60:.0f}分钟", f"{seconds / 60:.0f} min")
    return tr(f"{seconds / 3600:.1f}小时", f"{seconds / 3600:.1f} h")


async def reports_by_cell(session: AsyncSession, _user: User, days: int = 30) -> dict[str, float]:
    """Street reports with a shared location in the last ``days``, counted per grid cell."""
    grid = shipped_grid()
    rows = await session.scalars(
        select(Message.meta)
        .where(
            Message.direction == "in",
            Message.intent == Intent.GRID_CASE.value,
            Message.created_at >= utcnow() - timedelta(days=days),
        )
        .order_by(Message.id.desc())
        .limit(5000)
    )
    counts: Counter[str] = Counter()
    for meta in rows:
        where = (meta or {}).get("location")
        if isinstance(where, dict):
            cell = grid.locate(float(where.get("lat", 0)), float(where.get("lon", 0)))
            if cell is not None:
                counts[cell.id] += 1
    return dict(counts)


async def dashboard_page(request: web.Request) -> web.Response:
    user = await require_permission(request, "dashboard.view")
    lang = lang_of(request)
    tr = translator(lang)
    zone = request.app[SETTINGS].zone
    today = utcnow().astimezone(zone).date()
    days = [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    day_labels = [d.strftime("%m-%d") for d in days]
    layers = layers_for(request.app, user.role)
    chosen = request.query.get("layer")
    layer = next((m for m in layers if m.key == chosen), None)
    async with request.app[DB].read() as session:
        data = await traffic(session, zone)
        kpis = await _kpis(session, today, zone, tr, data)
        if layer is not None:
            cell_values, legend = await layer.values(session, user), layer.title(lang)
        else:
            cell_values, legend = await reports_by_cell(session, user), tr("近30天定位报事", "Located reports, 30 days")
        panels = [(p, await p.render(request, session, user, lang)) for p in panels_for(request.app, user.role)]
    by_channel = data.by_day(days, "channel")
    by_intent = data.by_day(days, "intent")
    channels = [c for c in CHANNEL_LABELS if c in by_channel] + [c for c in by_channel if c not in CHANNEL_LABELS]
    intents = [i for i in INTENT_LABELS if i in by_intent] + [i for i in by_intent if i not in INTENT_LABELS]

    charts = {
        "channels": stacked_bars(
            day_labels,
            [(label(CHANNEL_LABELS, c, lang), by_channel[c]) for c in channels],
            title=tr("每日来访（按渠道）", "Requests per day by channel"),
            colors=[CHANNEL_COLORS.get(c, PALETTE[-1]) for c in channels],
        ),
        "intents": stacked_bars(
            day_labels,
            [(label(INTENT_LABELS, i, lang), by_intent[i]) for i in intents],
            title=tr("每日来访（按类型）", "Requests per day by intent"),
        ),
        "intent_totals": hbars(
            sorted(
                ((label(INTENT_LABELS, k, lang), float(v)) for k, v in data.total(days[0]).items()), key=lambda x: -x[1]
            ),
            title=tr("近14天来访类型", "Intents, 14 days"),
        ),
        "heat": heatmap(
            data.heat(today - timedelta(days=HEAT_DAYS - 1)),
            [w[0 if lang == "zh" else 1] for w in WEEKDAYS],
            title=tr("繁忙时段（近28天）", "Busiest hours (28 days)"),
        ),
        "map": grid_svg(shipped_grid(), cell_values, title=tr("网格地图", "Grid map"), legend=legend, lang=lang),
    }
    return await render(
        request,
        "console/dashboard.html",
        {
            "kpis": kpis,
            "charts": charts,
            "panels": panels,
            "layers": layers,
            "layer": layer,
            "has_traffic": bool(data.rows),
        },
        active="dashboard",
    )
