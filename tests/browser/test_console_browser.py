"""The console in a real browser: sign in, watch a hand-off arrive in the queue without a
reload, take it, answer with a canned reply, see the SMS reach the (fake) Twilio API and the
thread say "sent", close it; the dashboard and the knowledge editor render. Screenshots of each
step are saved for people to look at."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port
from console_support import PASSWORD, eventually, make_user
from fakes.twilio_api import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    FakeTwilioApi,
    twilio_api_fixture,  # noqa: F401 (the twilio_api fixture)
)
from sqlalchemy import update
from twilio.request_validator import RequestValidator

from helpline.app import create_app
from helpline.appkeys import INBOX
from helpline.config import Settings
from helpline.db import Database
from helpline.models import Message, utcnow
from helpline.request import Channel, Location, Request

RESIDENT = "+8613912345678"
VIEWPORT = {"width": 1440, "height": 900}


@dataclasses.dataclass
class Live:
    server: TestServer
    url: str
    app: Any

    async def text_in(self, body: str, sender: str = RESIDENT, sid: str = "SM" + "1" * 32) -> None:
        """An SMS as Twilio delivers it: a signed webhook to /twilio/sms."""
        form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": sender, "To": FROM_NUMBER, "Body": body}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(self.url + "/twilio/sms", form)
        async with aiohttp.ClientSession() as http:
            resp = await http.post(self.url + "/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
            assert resp.status == 200, await resp.text()


@pytest.fixture
async def live(settings: Settings, twilio_api: FakeTwilioApi) -> AsyncIterator[Live]:
    """The whole service on a real port, sending SMS to the fake Twilio API."""
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(
        dataclasses.replace(
            settings,
            public_url=url,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_from=FROM_NUMBER,
            twilio_api_url=twilio_api.url,
        )
    )
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield Live(server, url, app)
    finally:
        await server.close()


async def new_page(browser: Any, lang: str = "zh-CN") -> Any:
    context = await browser.new_context(viewport=VIEWPORT, locale=lang, device_scale_factor=1)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    return page


async def sign_in(page: Any, live: Live, username: str, path: str = "/console/") -> None:
    await page.goto(live.url + path)
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("header.top")


async def seed_queue(live: Live) -> None:
    """A few residents waiting, as a morning on the line looks."""
    inbox = live.app[INBOX]
    for channel, address, text in (
        (Channel.SMS, "tel:+8613700001111", "我家着火了，厨房冒烟"),
        (Channel.TELEGRAM, "telegram:5550001", "I want to talk to a person"),
        (Channel.SMS, "tel:+8613600002222", "我家的猫会唱歌"),
        (Channel.WEB, "web:visitor42", "人工服务"),
    ):
        await inbox.handle(Request(channel=channel, address=address, text=text))


async def test_an_operator_answers_a_resident_from_the_live_queue(
    browser: Any, live: Live, db: Database, twilio_api: FakeTwilioApi, shot: Any
) -> None:
    await make_user(db, "lihua", "operator")
    await seed_queue(live)
    page = await new_page(browser)
    await page.goto(live.url + "/console/queue")
    assert "/console/login" in page.url  # the queue needs a signed-in user
    await shot(page, "1-login")
    await sign_in(page, live, "lihua")
    assert page.url.endswith("/console/queue")
    await page.wait_for_selector("[data-live-status=on]")
    await page.evaluate("window.__noReload = true")
    await shot(page, "2-queue-before")

    # A resident texts while the operator looks at the queue: it appears without a reload.
    await live.text_in("转人工，我想问问补贴的事")
    item = page.locator(".qitem", has_text="我想问问补贴的事")
    await item.wait_for()
    assert await page.evaluate("window.__noReload") is True
    assert await page.locator(".qitem").first.get_attribute("class") == "qitem r-emergency"
    await shot(page, "3-queue-live")

    await item.locator("[data-claim]").click()
    await page.wait_for_selector("#reply-text")
    assert "/console/conversations/" in page.url
    await page.locator(".chip", has_text="问候").click()
    await page.locator("#reply-text").press("End")
    await page.locator("#reply-text").type("补贴申请请带身份证和承包合同到镇农办。")
    await shot(page, "4-conversation-composing")
    await page.locator("#reply-text").press("Control+Enter")
    await page.wait_for_url("**/console/conversations/*")

    async def arrived() -> bool:
        return any(m["to"] == RESIDENT for m in twilio_api.messages)

    await eventually(arrived)
    [sms] = [m for m in twilio_api.messages if m["to"] == RESIDENT]
    assert sms["body"].startswith("您好，我是热线话务员") and sms["body"].endswith("到镇农办。")
    # The thread follows the outbox: queued, then sent, without a reload.
    await page.wait_for_selector(".msg.op [data-status=sent]")
    await shot(page, "5-conversation-sent")

    await page.fill("input[name=note]", "已告知补贴申请材料")
    await page.click("[data-close]")
    await page.wait_for_url("**/console/queue")
    assert await page.locator(".flash.ok").inner_text() == "会话已结束。"
    assert await page.locator(".qitem", has_text="我想问问补贴的事").count() == 0
    await shot(page, "6-queue-after")


async def test_the_dashboard_draws_the_line_and_the_grid(browser: Any, live: Live, db: Database, shot: Any) -> None:
    await make_user(db, "zhang", "supervisor")
    texts = [
        "小麦赤霉病怎么防",
        "低保怎么申请",
        "路灯坏了",
        "你好",
        "转人工",
        "水稻稻瘟病",
        "猪不吃食",
        "我家的猫会唱歌",
    ]
    channels = [Channel.SMS, Channel.VOICE, Channel.TELEGRAM, Channel.WEB]
    inbox = live.app[INBOX]
    n = 0
    for day in range(10):
        for k in range(3 + (day * 7) % 5):
            channel = channels[(day + k) % len(channels)]
            address = {"sms": "tel:+86139000", "voice": "tel:+86139000", "telegram": "telegram:77", "web": "web:v"}[
                channel.value
            ] + f"{n:05d}"
            location = Location(29.8725 + 0.0009 * (k % 4), 121.5448 + 0.0011 * (day % 6)) if k == 0 else None
            text = "路灯坏了" if location else texts[(day + k) % len(texts)]
            handled = await inbox.handle(Request(channel=channel, address=address, text=text, location=location))
            async with db.write() as session:  # spread over the last ten days and the working hours
                at = utcnow() - timedelta(days=day, hours=(k * 5) % 11)
                await session.execute(update(Message).where(Message.id == handled.message_id).values(created_at=at))
            n += 1
    page = await new_page(browser)
    await sign_in(page, live, "zhang", "/console/dashboard")
    await page.wait_for_selector("svg.map")
    assert await page.locator("svg.map path").count() >= 60
    assert await page.locator("svg.chart rect").count() > 40
    assert await page.locator(".kpi").count() == 8
    await shot(page, "dashboard", full_page=True)
    await page.goto(live.url + "/console/dashboard?lang=en")
    await page.wait_for_selector("svg.map")
    assert "Requests per day" in await page.content()
    await shot(page, "dashboard-en", full_page=True)


async def test_the_knowledge_editor(browser: Any, live: Live, db: Database, shot: Any) -> None:
    await make_user(db, "zhang", "supervisor")
    page = await new_page(browser)
    await sign_in(page, live, "zhang", "/console/kb")
    await page.fill("input[name=q]", "赤霉")
    await page.press("input[name=q]", "Enter")
    await page.wait_for_selector("table.grid-table tbody tr a")
    await shot(page, "kb-search")
    await page.locator("table.grid-table tbody tr a").first.click()
    await page.wait_for_selector("form.kb-form")
    assert await page.locator("textarea[name=short_zh]").input_value()
    await shot(page, "kb-article", full_page=True)
    await page.goto(live.url + "/console/kb/new")
    await page.evaluate("document.querySelector('form.kb-form').noValidate = true")  # the server checks too
    await page.fill("input[name=slug]", "x")
    await page.fill("input[name=title_zh]", "测试")
    await page.fill("input[name=reviewed]", "2026-11-01")
    await page.locator("button[type=submit]", has_text="保存草稿").click()
    await page.wait_for_selector(".flash.error")
    assert await page.locator("label.bad").count() >= 5
    await shot(page, "kb-invalid")


async def test_the_console_in_english(browser: Any, live: Live, db: Database, shot: Any) -> None:
    await make_user(db, "mary", "operator")
    await seed_queue(live)
    page = await new_page(browser, "en-GB")
    await page.goto(live.url + "/console/login")
    assert await page.locator("h1").inner_text() == "Helpline Console"  # the browser's language
    await sign_in(page, live, "mary")
    await page.wait_for_selector(".qitem")
    assert "Waiting for a person" in await page.content()
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    await shot(page, "queue-en")
    await page.keyboard.press("Enter")
    await page.wait_for_selector(".timeline")
    await shot(page, "conversation-en")
    await page.goto(live.url + "/console/conversations")
    await page.wait_for_selector("table.grid-table tbody tr")
    await shot(page, "conversations-en")
    # Sign out from the top bar; an admin signs in and sees the accounts (numbers masked for them).
    await page.click("header.top form button")
    await page.wait_for_url("**/console/login")
    await make_user(db, "root", "admin")
    await sign_in(page, live, "root", "/console/users")
    assert await page.locator("table.grid-table tbody tr").count() == 2
    await shot(page, "users-en")
    await page.goto(live.url + "/console/queue")
    assert "+8613700001111" not in await page.content()
