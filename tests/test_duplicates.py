"""Re-deliveries during a flood never make a second message, case or booking.

Residents hold real dialogues with the running app at the same time — street-light reports by SMS,
Telegram and the JSON API (each ends in a case), plumber bookings by SMS (each ends in a booking)
— and every step arrives three times at once (Twilio re-sending a webhook whose answer was late,
Telegram re-delivering an update, an API client retrying with its Idempotency-Key), and once more
later, after the dialogue has moved on. Every copy must get the first copy's answer, and the
database must hold each message once, one case per report and one booking per booking.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fakes.telegram_api import TOKEN, FakeTelegramApi
from fakes.telegram_api import telegram_api_fixture  # noqa: F401 (the telegram_api fixture)
from sqlalchemy import func, select
from test_booking_support import ROUND_THE_CLOCK, load, quiet_jobs
from twilio.request_validator import RequestValidator

from helpline.app import create_app
from helpline.booking.models import Booking
from helpline.cases.data import load_shipped as load_departments
from helpline.cases.models import Case
from helpline.config import Settings
from helpline.db import Database
from helpline.models import Message, utcnow

AUTH = "dup-auth-token-0123456789abcdef"
SECRET = "dup-secret-123"
REPORT = "路口路灯坏了"
# A place per reporter: reports of one problem close together are rightly merged into one case.
PLACES = ("幸福路与人民路交叉口", "和平路与春晓路交叉口", "光明路与解放路交叉口", "中心小学门口", "第二中学门口",
          "幸福幼儿园门口", "幸福菜市场门口", "光明超市门口", "社区卫生服务中心门口", "人民公园门口")
BOOKING = ("水管漏了帮我找个师傅", "{choice}", "海曙区石碶街道雅戈尔大道{n}号", "张先生", "1")
COPIES = 3


@pytest.fixture
async def line(aiohttp_client, settings: Settings, db: Database, telegram_api: FakeTelegramApi):  # type: ignore[no-untyped-def]
    await load(db, ROUND_THE_CLOCK, utcnow())
    await load_departments(db)
    await quiet_jobs(db, settings)
    live = dataclasses.replace(settings, twilio_auth_token=AUTH, telegram_token=TOKEN, telegram_secret=SECRET,
                               telegram_api_url=telegram_api.url)
    return await aiohttp_client(create_app(live)), live


class Resident:
    """One person on one channel; ``say`` sends a step COPIES times at once and returns the answers."""

    def __init__(self, client: Any, settings: Settings, channel: str, n: int) -> None:
        self.client, self.settings, self.channel, self.n = client, settings, channel, n
        self.steps: list[tuple[str, str]] = []  # (provider id, text) of each step sent

    async def say(self, text: str, copies: int = COPIES, provider_id: str | None = None) -> list[str]:
        pid = provider_id or f"{self.channel}-{self.n}-{len(self.steps)}"
        if provider_id is None:
            self.steps.append((pid, text))
        return list(await asyncio.gather(*(self._send(pid, text) for _ in range(copies))))

    async def _send(self, pid: str, text: str) -> str:
        if self.channel == "sms":
            form = {"MessageSid": "SM" + pid.replace("-", "x").ljust(32, "0"), "From": f"+86138001{self.n:05d}",
                    "To": "+8657400000000", "Body": text, "AccountSid": "AC" + "0" * 32}
            signature = RequestValidator(AUTH).compute_signature(self.settings.public_url + "/twilio/sms", form)
            resp = await self.client.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
            assert resp.status == 200, await resp.text()
            return " ".join(m.text or "" for m in ET.fromstring(await resp.text()).findall("Message"))
        if self.channel == "web":
            resp = await self.client.post("/api/v1/messages", json={"from": f"web:dup{self.n}", "text": text},
                                          headers={"Idempotency-Key": pid})
            assert resp.status == 200, await resp.text()
            return (await resp.json())["reply"]["text"]
        update_id = 900_000 + self.n * 100 + int(pid.rsplit("-", 1)[1])
        chat = 880_000 + self.n
        update = {"update_id": update_id, "message": {
            "message_id": update_id, "date": 1_700_000_000, "text": text,
            "chat": {"id": chat, "type": "private", "first_name": "R"},
            "from": {"id": chat, "is_bot": False, "first_name": "R", "language_code": "zh"}}}
        resp = await self.client.post("/telegram/webhook", data=json.dumps(update, ensure_ascii=False),
                                      headers={"X-Telegram-Bot-Api-Secret-Token": SECRET,
                                               "Content-Type": "application/json"})
        assert resp.status == 200, await resp.text()
        return str(update_id)  # the answer goes to the fake Bot API, checked there


async def _report(r: Resident) -> str:
    first = await r.say(REPORT)
    filed = await r.say(PLACES[r.n])
    late = await r.say(REPORT, copies=1, provider_id=r.steps[0][0])  # a late re-delivery of step one
    if r.channel != "telegram":
        assert len(set(first)) == 1 and len(set(filed)) == 1, (first, filed)
        assert late == first[:1]
        assert re.search(r"案件号[：:]?\s*\d{6}", filed[0]), filed[0]
    return filed[0]


async def _book(r: Resident, choice: int) -> str:
    answers = []
    for step in BOOKING:
        answers.append(await r.say(step.format(choice=choice, n=100 + r.n)))
        assert len(set(answers[-1])) == 1, answers[-1]
    assert await r.say(BOOKING[0], copies=1, provider_id=r.steps[0][0]) == answers[0][:1]
    assert "预约成功" in answers[-1][0], answers[-1][0]
    return answers[-1][0]


async def _count(db: Database, model: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_redeliveries_during_a_flood_never_make_a_second_message_case_or_booking(
    line, db: Database, telegram_api: FakeTelegramApi,  # type: ignore[no-untyped-def]
) -> None:
    client, settings = line
    reporters = [Resident(client, settings, ch, n) for n, ch in enumerate(["sms"] * 4 + ["telegram"] * 3 + ["web"] * 3)]
    bookers = [Resident(client, settings, "sms", 50 + n) for n in range(3)]
    await asyncio.gather(*(_report(r) for r in reporters), *(_book(r, n + 1) for n, r in enumerate(bookers)))

    # Each step is stored once (inbound), with one answer, whatever the number of copies.
    async with db.read() as session:
        rows = (await session.execute(
            select(Message.channel, Message.provider_id).where(Message.direction == "in"))).all()
    per_step = collections.Counter(rows)
    assert {k: n for k, n in per_step.items() if n > 1} == {}
    steps = sum(len(r.steps) for r in reporters + bookers)
    assert len(rows) == steps
    async with db.read() as session:
        replies = await session.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "out", Message.reply_to_id.is_not(None)))
    assert replies == steps
    # One case per report, one booking per booking.
    assert await _count(db, Case) == len(reporters)
    assert await _count(db, Booking) == len(bookers)
    # Telegram: every step was answered; the late re-delivery (after the answer went out) got nothing.
    for r in (r for r in reporters if r.channel == "telegram"):
        sent = [p["text"] for p in telegram_api.sent(880_000 + r.n)]
        assert sent and re.search(r"案件号[：:]?\s*\d{6}", sent[-1]), sent
        k, m = sent.count(sent[0]), sent.count(sent[-1])
        assert sent == [sent[0]] * k + [sent[-1]] * m and k <= COPIES and m <= COPIES, sent


async def test_a_late_telegram_redelivery_is_not_answered_again(
    line, db: Database, telegram_api: FakeTelegramApi,  # type: ignore[no-untyped-def]
) -> None:
    client, settings = line
    r = Resident(client, settings, "telegram", 7)
    await r.say("你好", copies=1)
    await r.say("你好", copies=1, provider_id=r.steps[0][0])  # Telegram re-sends after the answer went out
    await r.say("你好", copies=1, provider_id=r.steps[0][0])
    assert len(telegram_api.sent(880_007)) == 1


async def test_concurrent_copies_of_a_telegram_update_are_answered_once(
    line, db: Database, telegram_api: FakeTelegramApi,  # type: ignore[no-untyped-def]
) -> None:
    client, settings = line
    r = Resident(client, settings, "telegram", 8)
    await r.say("你好", copies=COPIES)
    async with db.read() as session:
        stored = await session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in"))
    assert stored == 1
    assert len(telegram_api.sent(880_008)) == 1
