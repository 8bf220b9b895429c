"""The dashboard: counts by channel, intent and local hour drawn as SVG, the grid map, and the
panels and map layers other packages register."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient
from browser.console_support import login, make_user, resident_says
from sqlalchemy import update

from helpline.app import create_app
from helpline.appkeys import INBOX
from helpline.config import Settings
from helpline.console import register_dashboard_panel, register_map_layer
from helpline.console.charts import heatmap, stacked_bars
from helpline.console.dashboard import traffic
from helpline.console.map import grid_svg
from helpline.db import Database
from helpline.grid import shipped_grid
from helpline.models import Message
from helpline.request import Channel, Location, Request

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_traffic_is_counted_in_the_centres_local_hours(client: TestClient, db: Database) -> None:
    await resident_says(client, "小麦赤霉病怎么防", address="tel:+8613800000001")
    await resident_says(client, "路灯坏了", address="tel:+8613800000002")
    await resident_says(client, "你好", address="telegram:99", channel=Channel.TELEGRAM)
    late = datetime.now(UTC).replace(hour=23, minute=30, second=0, microsecond=0) - timedelta(days=1)
    async with db.write() as session:  # 23:30 UTC is 07:30 the next day in Shanghai
        await session.execute(update(Message).where(Message.urn == "telegram:99").values(created_at=late))
    async with db.read() as session:
        data = await traffic(session, SHANGHAI)
    local = late.astimezone(SHANGHAI)
    assert (local.date(), 7, local.weekday(), "telegram", "menu", 1) in data.rows
    assert sum(n for *_, n in data.rows) == 3
    assert {row[3] for row in data.rows} == {"sms", "telegram"}
    heat = data.heat(local.date())
    assert heat[local.weekday()][7] == 1


async def test_the_dashboard_draws_its_figures(client: TestClient, db: Database) -> None:
    await resident_says(client, "小麦赤霉病怎么防", address="tel:+8613800000001")
    await resident_says(client, "转人工", address="tel:+8613800000001")
    await client.app[INBOX].handle(  # a located street report
        Request(channel=Channel.WEB, address="web:abc", text="路灯坏了", location=Location(29.873, 121.5447))
    )
    await make_user(db, "boss", "supervisor")
    await login(client, "boss")
    resp = await client.get("/console/dashboard")
    assert resp.status == 200
    html = await resp.text()
    assert html.count("<svg") >= 5
    assert re.search(r"<title>[^<]*短信: 2</title>", html)  # two SMS today, in the channel chart
    assert "正在等待" in html and "自动答复率" in html
    assert html.count('<path d="M') == len(shipped_grid().cells)  # every grid cell on the map
    assert "330203001001001" in html  # cell ids in the tooltips
    assert "<script" not in html.split("</head>")[1]  # pictures without scripts


async def test_panels_and_map_layers_from_other_packages(aiohttp_client, settings: Settings, db: Database) -> None:  # type: ignore[no-untyped-def]
    cell = shipped_grid().cells[3].id

    async def panel(request, session, user, lang):  # type: ignore[no-untyped-def]
        return "<p>probe panel 98%</p>" if lang == "en" else "<p>探针面板 98%</p>"

    async def layer(session, user):  # type: ignore[no-untyped-def]
        return {cell: 7.0}

    def build():  # type: ignore[no-untyped-def]
        app = create_app(settings)
        register_dashboard_panel(app, "probe", "探针", "Probe", {"supervisor"}, panel)
        register_map_layer(app, "test_cases", "测试案件", "Test cases", {"supervisor"}, layer)
        return app

    client = await aiohttp_client(build())
    await make_user(db, "boss", "supervisor")
    await make_user(db, "dept", "department", department="D01")
    await login(client, "boss")
    html = await (await client.get("/console/dashboard?layer=test_cases&lang=en")).text()
    assert "probe panel 98%" in html and "Probe" in html
    assert f"{cell} · Test cases 7</title>" in html
    other = await aiohttp_client(build())
    await login(other, "dept")
    html = await (await other.get("/console/dashboard?layer=test_cases")).text()
    assert "探针面板" not in html and "测试案件" not in html


def test_charts_are_plain_svg_with_exact_tooltips() -> None:
    svg = stacked_bars(["11-28", "11-29"], [("SMS", [3, 0]), ("Web", [1, 2])], title="t <x>")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<title>11-28 · SMS: 3</title>" in svg and "<title>11-29 · Web: 2</title>" in svg
    assert "t &lt;x&gt;" in svg and "<x>" not in svg
    assert "11-29 · SMS" not in svg  # nothing drawn for zero
    heat = heatmap([[0] * 24 for _ in range(6)] + [[0] * 23 + [5]], list("1234567"), title="h")
    assert "<title>7 23:00–23:59: 5</title>" in heat
    empty = grid_svg(shipped_grid(), {}, title="m", legend="x")
    assert empty.count('<path d="M') == len(shipped_grid().cells)
