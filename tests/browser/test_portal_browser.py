"""The resident portal in headless Chromium at a phone's size: ask (and a person when the answer
did not help), browse, book, report with a photo and a map tap, track and rate, and the core
paths with JavaScript switched off. Screenshots of each step go to tests/browser/artifacts/."""

from __future__ import annotations

import re
from typing import Any

from portal_support import Portal, page_weight, phone_page, portal  # noqa: F401 (the portal fixture)
from sqlalchemy import select
from test_portal_support import close_case, png

from helpline.booking.models import Booking
from helpline.cases.models import Case
from helpline.db import Database
from helpline.grid import locate, shipped_grid
from helpline.models import Conversation
from helpline.outbox import enqueue

PHONE_NUMBER = "13800138000"


async def test_ask_then_talk_to_an_operator(browser: Any, portal: Portal, db: Database, shot: Any) -> None:
    page = await phone_page(browser)
    await page.goto(portal.url + "/")
    assert await page_weight(page) < 30_000
    await shot(page, "1-home", full_page=True)
    await page.fill("#text", "小麦赤霉病怎么防")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#a-title")
    assert "赤霉病" in await page.inner_text("#a-title")
    assert await page.locator(".short").is_visible()
    await shot(page, "2-answer")
    await page.click("summary")  # the full answer
    await page.wait_for_selector(".prose p")
    await shot(page, "3-full-answer", full_page=True)

    await page.fill("#note", "打过药了还是有")
    await page.click("text=转人工服务")
    await page.wait_for_url("**/talk*")
    assert "已为您转人工" in await page.inner_text("main")
    async with db.read() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.channel == "web"))
    assert conv is not None and conv.status == "waiting"
    await shot(page, "4-talk-waiting")
    # An operator answers from the console (through the outbox): it appears without a reload.
    await page.evaluate("window.__noReload = true")
    urn = "web:" + next(c["value"] for c in await page.context.cookies() if c["name"] == "hl_sid")
    async with db.write() as s:
        await enqueue(s, urn, "您好！抽穗扬花期遇雨要抢晴喷药，我们也可以帮您约农技员上门。", "operator_reply")
    await page.locator(".bubbles li.op").wait_for(timeout=20_000)
    assert await page.evaluate("window.__noReload") is True
    await shot(page, "5-talk-reply", full_page=True)


async def test_browse_the_knowledge_base(browser: Any, portal: Portal, shot: Any) -> None:
    page = await phone_page(browser)
    await page.goto(portal.url + "/")
    await page.click(".paths >> text=便民知识")
    await page.wait_for_url("**/kb")
    await shot(page, "1-categories")
    await page.click("text=畜禽水产")
    await page.wait_for_url("**/kb/livestock")
    await shot(page, "2-livestock")
    await page.locator(".list a").first.click()
    await page.wait_for_selector("#a-title")
    assert await page.locator(".prose").is_visible() and await page.locator(".source").is_visible()
    assert await page_weight(page) < 30_000
    await shot(page, "3-article", full_page=True)
    await page.click(".lang")  # English, remembered
    await page.wait_for_selector("html[lang=en]")
    await shot(page, "4-article-en")
    await page.goto(portal.url + "/kb/farming")
    assert await page.get_attribute("html", "lang") == "en"
    await shot(page, "5-farming-en")
    await page.goto(portal.url + "/")
    await shot(page, "6-home-en", full_page=True)
    await page.goto(portal.url + "/report")
    await shot(page, "7-report-en", full_page=True)


async def test_book_a_service_then_change_and_cancel_it(browser: Any, portal: Portal, db: Database, shot: Any) -> None:
    page = await phone_page(browser)
    await page.goto(portal.url + "/book")
    await shot(page, "1-services")
    await page.click("text=水管维修疏通")
    await page.wait_for_selector("input[name=slot]")
    # The last day offered: well before the cut-off, so the booking can still be moved and cancelled.
    await page.locator(".days a").last.click()
    await page.wait_for_selector("input[name=slot]")
    await shot(page, "2-slots")
    await page.locator(".choice").first.click()
    await page.fill("#name", "王大妈")
    await page.fill("#phone", PHONE_NUMBER)
    await page.fill("#address", "幸福街道幸福村3组12号")
    await page.fill("#note", "厨房水管漏水")
    await shot(page, "3-form-filled", full_page=True)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/booking/*?new=1")
    number = (await page.inner_text(".big")).strip()
    assert re.fullmatch(r"B\d{7}", number)
    await shot(page, "4-confirmation", full_page=True)

    await page.click("a.button:has-text('改时间')")
    await page.wait_for_selector("input[name=slot]")
    await page.locator(".days a").last.click()  # again a day well before the cut-off
    await page.wait_for_selector("input[name=slot]")
    await page.locator(".choice").nth(1).click()
    await page.click("button[type=submit]")
    await page.wait_for_url("**/booking/*?done=moved")
    await shot(page, "5-moved")
    await page.click("summary")
    await page.click("text=确定取消预约")
    await page.wait_for_url("**/booking/*?done=cancelled")
    await shot(page, "6-cancelled")
    async with db.read() as s:
        booking = await s.scalar(select(Booking))
    assert booking.number == number and booking.status == "cancelled" and booking.reschedules == 1


async def test_report_a_problem_with_a_photo_and_a_map_tap(browser: Any, portal: Portal, db: Database, shot: Any,
                                                          tmp_path: Any) -> None:
    cell = shipped_grid().by_id["330203001001003"]
    west, south, east, north = cell.bbox
    here = {"latitude": (south + north) / 2, "longitude": (west + east) / 2}
    page = await phone_page(browser, geolocation=here, permissions=["geolocation"])
    await page.goto(portal.url + "/report")
    assert await page_weight(page) < 30_000
    await shot(page, "1-form")
    await page.fill("#description", "路灯不亮了，晚上很黑")
    await page.locator("#suggestion strong").wait_for()
    assert await page.input_value("#class") == "C0118"  # the router's suggestion, as they type
    await page.click("#locate")  # the browser's location
    await page.wait_for_function("document.getElementById('place-status').textContent.includes('幸福社区')")
    assert float(await page.input_value("#lat")) == round(here["latitude"], 6)
    # A tap on the map chooses another spot: the middle of a cell of 光明社区.
    target = shipped_grid().by_id["330203001005008"] if "330203001005008" in shipped_grid().by_id else None
    target = target or next(c for c in shipped_grid().cells if c.community == "光明社区")
    tw, ts, te, tn = target.bbox
    box = await page.locator("#gridmap").bounding_box()
    gw, gs, ge, gn = shipped_grid().bbox
    x = box["x"] + box["width"] * (((tw + te) / 2 - gw) / (ge - gw))
    y = box["y"] + box["height"] * ((gn - (ts + tn) / 2) / (gn - gs))
    await page.mouse.click(x, y)
    await page.wait_for_function(f"document.getElementById('place-status').textContent.includes('{target.name}')")
    photo = tmp_path / "lamp.png"
    photo.write_bytes(png(40, 30))
    await page.set_input_files("#photo", str(photo))
    await page.fill("#phone", PHONE_NUMBER)
    await page.locator("#place-status").scroll_into_view_if_needed()
    await shot(page, "2-map-tapped")
    await shot(page, "3-form-filled", full_page=True)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/report/done*")
    number = (await page.inner_text(".big")).strip()
    await shot(page, "4-case-number", full_page=True)
    async with db.read() as s:
        case = await s.scalar(select(Case))
    assert case.number == number and case.class_code == "C0118" and case.source == "web"
    assert case.cell_id == target.id == locate(case.lat, case.lon).id
    assert len(case.media) == 1


async def test_track_a_case_and_rate_it(browser: Any, portal: Portal, db: Database, shot: Any, tmp_path: Any) -> None:
    page = await phone_page(browser)
    await page.goto(portal.url + "/report")
    await page.fill("#description", "幸福菜市场门口垃圾堆了好几天")
    await page.fill("#place", "幸福菜市场")
    await page.fill("#phone", PHONE_NUMBER)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/report/done*")
    number = (await page.inner_text(".big")).strip()
    await close_case(db, number)

    await page.click("text=查询进度")
    await page.wait_for_url("**/track?n=*")
    assert await page.input_value("#number") == number
    await page.fill("#phone", "13900000000")  # not the phone it was reported with
    await page.click("button[type=submit]")
    await page.wait_for_selector("#error-summary")
    assert await page.evaluate("document.activeElement.id") == "error-summary"
    await shot(page, "1-not-found")
    await page.fill("#phone", PHONE_NUMBER)
    await page.click("button[type=submit]")
    await page.wait_for_selector("ol.timeline")
    assert "已结案" in await page.inner_text("main")
    await shot(page, "2-timeline", full_page=True)
    await page.click(".stars label:has-text('5')")
    await page.fill("#note", "修得很快，谢谢")
    await shot(page, "3-rating")
    await page.click("text=提交评价")
    await page.wait_for_selector(".notice")
    await shot(page, "4-rated")
    async with db.read() as s:
        case = await s.scalar(select(Case))
    assert case.rating == 5 and case.status == "closed"


async def test_the_core_paths_work_without_javascript(browser: Any, portal: Portal, db: Database, shot: Any,
                                                      tmp_path: Any) -> None:
    page = await phone_page(browser, java_script_enabled=False)
    await page.goto(portal.url + "/")
    await page.fill("#text", "低保怎么申请")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#a-title")
    await page.goto(portal.url + "/report")
    assert not await page.locator("#gridmap").is_visible()  # the map needs a script; the cell list does not
    await page.fill("#description", "井盖没了")
    await page.select_option("#cell", "330203002001005")
    photo = tmp_path / "hole.png"
    photo.write_bytes(png(30, 30))
    await page.set_input_files("#photo", str(photo))
    await page.fill("#phone", PHONE_NUMBER)
    await shot(page, "1-report-no-js", full_page=True)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/report/done*")
    await shot(page, "2-done-no-js")
    async with db.read() as s:
        case = await s.scalar(select(Case))
    assert case.cell_id == "330203002001005" and case.class_code is not None and len(case.media) == 1
    await page.goto(portal.url + "/book/vet")
    await page.locator(".choice").first.click()
    await page.fill("#name", "赵大伯")
    await page.fill("#phone", PHONE_NUMBER)
    await page.fill("#address", "春晓街道春晓村5组")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/booking/*?new=1")
