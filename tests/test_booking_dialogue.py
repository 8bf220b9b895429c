"""The booking dialogue through the real router, on the web API and on signed Twilio SMS
(SQLite and PostgreSQL): booking, status, cancel and reschedule, providers' Y/N answers with
re-dispatch, and the follow-up rating by SMS."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilioApi
from fakes.twilio_api import twilio_api_fixture  # noqa: F401 (the twilio_api fixture)
from sqlalchemy import select
from test_booking_support import (
    PA_PHONE,
    PB_PHONE,
    ROUND_THE_CLOCK,
    RULES,
    VET_PHONE,
    ZONE,
    count_bookings,
    get_booking,
    load,
    next_hour_slot,
    outbox,
    provider,
    quiet_jobs,
    slot_state,
)
from twilio.request_validator import RequestValidator

from helpline.app import create_app
from helpline.booking.jobs import send_surveys
from helpline.booking.models import ACCEPTED, CANCELLED, COMPLETED, CONFIRMED, REFERRED, Booking
from helpline.booking.service import book
from helpline.config import Settings
from helpline.db import Database
from helpline.models import Conversation, utcnow
from helpline.paging import segment_count

RESIDENT = "+8613800138000"


@pytest.fixture
async def web(aiohttp_client, settings: Settings, db: Database):  # type: ignore[no-untyped-def]
    await load(db, ROUND_THE_CLOCK, utcnow())
    await quiet_jobs(db, settings)
    client = await aiohttp_client(create_app(settings))

    async def say(text: str, sender: str = "web:dlg") -> dict:
        resp = await client.post("/api/v1/messages", json={"from": sender, "text": text})
        assert resp.status == 200, await resp.text()
        return await resp.json()

    say.client = client  # type: ignore[attr-defined]
    return say


@pytest.fixture
async def sms(aiohttp_client, settings: Settings, db: Database, twilio_api: FakeTwilioApi):  # type: ignore[no-untyped-def]
    """Texts to the line as Twilio sends them (signed); what the line sends goes to a fake Twilio API."""
    await load(db, ROUND_THE_CLOCK, utcnow())
    await quiet_jobs(db, settings)
    twilio = dataclasses.replace(settings, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                                 twilio_from=FROM_NUMBER, twilio_api_url=twilio_api.url)
    client = await aiohttp_client(create_app(twilio))
    counter = iter(range(1, 10_000))

    async def text(body: str, sender: str = RESIDENT) -> str:
        form = {"MessageSid": f"SM{next(counter):032d}", "From": sender, "To": FROM_NUMBER, "Body": body}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(twilio.public_url + "/twilio/sms", form)
        resp = await client.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
        assert resp.status == 200, await resp.text()
        (message,) = [m.text or "" for m in ET.fromstring(await resp.text()).findall("Message")]
        assert segment_count(message) <= 2, message
        return message

    return text


def number_in(text: str) -> str:
    m = re.search(r"B\d{7}", text)
    assert m, text
    return m.group()


async def test_a_booking_by_chat_from_free_text_to_booking_number(web, db: Database) -> None:  # type: ignore[no-untyped-def]
    r = await web("水管漏了帮我找个师傅")
    assert r["intent"] == "booking" and "水管维修疏通" in r["reply"]["text"]
    keys = [o["key"] for o in r["reply"]["options"]]
    assert keys[:4] == ["1", "2", "3", "4"] and "9" in keys and "0" in keys
    first_label = r["reply"]["options"][0]["label"]
    r = await web("1")
    assert "地址" in r["reply"]["text"] and r["booking"] is None
    r = await web("海曙区石碶街道雅戈尔大道100号")
    assert "称呼" in r["reply"]["text"]
    r = await web("张先生")
    assert "请确认" in r["reply"]["text"] and "雅戈尔大道100号" in r["reply"]["text"] and "张先生" in r["reply"]["text"]
    assert first_label.split(" · ")[0] in r["reply"]["text"]
    r = await web("1")
    assert r["intent"] == "booking" and "预约成功" in r["reply"]["text"]
    booking = r["booking"]
    assert booking["status"] == "confirmed" and booking["number"] in r["reply"]["text"]
    row = await get_booking(db, booking["number"])
    assert (row.address, row.name, row.urn, row.channel) == ("海曙区石碶街道雅戈尔大道100号", "张先生", "web:dlg", "web")
    assert await slot_state(db, row.slot_id) == ((3, 1) if row.slot_id.startswith("pa-") else (1, 1))
    (job,) = await outbox(db, "dispatch")
    assert job.urn in (f"tel:{PA_PHONE}", f"tel:{PB_PHONE}") and booking["number"] in job.body
    # The next booking offers the address we know, and needs no name.
    await web("马桶堵了，约个水管工")
    r = await web("2")
    assert "1" in [o["key"] for o in r["reply"]["options"]] and "雅戈尔大道100号" in r["reply"]["text"]
    r = await web("1")
    assert "请确认" in r["reply"]["text"] and "张先生" in r["reply"]["text"]
    r = await web("确认")
    assert r["booking"]["status"] == "confirmed"
    assert await count_bookings(db) == 2
    # And its number finds it.
    digits = r["booking"]["number"][1:]
    r = await web(f"CX {digits}")
    assert r["intent"] == "case_status" and r["booking"]["number"] == f"B{digits}" and r["booking"]["address"]
    r = await web(f"CX {digits}", sender="web:someone-else")
    assert r["booking"]["number"] == f"B{digits}" and "address" not in r["booking"]


async def test_cancel_and_reschedule_by_chat(web, db: Database) -> None:  # type: ignore[no-untyped-def]
    await web("后天上午水管漏水，请安排师傅")
    await web("1")
    await web("海曙区鼓楼街道中山西路8号")
    await web("王女士")
    booked = (await web("1"))["booking"]
    when = (await get_booking(db, booked["number"])).starts_at.astimezone(ZONE)
    assert when.date() == (utcnow().astimezone(ZONE) + timedelta(days=2)).date() and when.hour < 12
    r = await web("我要改时间")
    assert "可以改到" in r["reply"]["text"] and booked["number"] in r["reply"]["text"]
    r = await web("大后天下午")
    assert len(r["reply"]["options"]) >= 3
    r = await web("2")
    assert "改到" in r["reply"]["text"] and "回复1确认" in r["reply"]["text"]
    r = await web("1")
    assert "已改好" in r["reply"]["text"]
    moved = await get_booking(db, booked["number"])
    assert moved.reschedules == 1 and moved.slot_id != booked["slot"]
    assert moved.starts_at.astimezone(ZONE).date() == (utcnow().astimezone(ZONE) + timedelta(days=3)).date()
    assert moved.starts_at.astimezone(ZONE).hour >= 12
    r = await web(f"取消预约 {booked['number']}")
    assert "确认取消" in r["reply"]["text"]
    r = await web("1")
    assert r["booking"]["status"] == "cancelled" and "已取消" in r["reply"]["text"]
    assert (await get_booking(db, booked["number"])).status == CANCELLED
    assert await slot_state(db, moved.slot_id) in ((3, 0), (1, 0))
    r = await web("cancel my booking")
    assert r["intent"] == "booking" and "You have no bookings to come" in r["reply"]["text"]


async def test_unknown_services_offer_the_catalogue_and_ties_are_asked(web) -> None:  # type: ignore[no-untyped-def]
    r = await web("我想预约")
    assert "哪一类" in r["reply"]["text"]
    assert [o["label"] for o in r["reply"]["options"]][:2] == ["家庭维修", "农业生产服务"]
    r = await web("1")
    assert [o["label"] for o in r["reply"]["options"]][:2] == ["电工维修", "水管维修疏通"]
    r = await web("2")
    assert "水管维修疏通可以预约" in r["reply"]["text"]
    r = await web("漏水又跳闸，约个师傅", sender="web:tie")
    assert "哪一项" in r["reply"]["text"]
    assert {o["label"] for o in r["reply"]["options"][:2]} == {"电工维修", "水管维修疏通"}


async def test_the_flow_lets_go_of_what_is_not_for_it(web, db: Database) -> None:  # type: ignore[no-untyped-def]
    await web("约个兽医看看我家的羊")
    r = await web("转人工")
    assert r["intent"] == "operator"
    await web("约个兽医看看我家的羊")
    r = await web("CX 1234567")
    assert r["intent"] == "case_status"
    await web("约个兽医看看我家的羊")
    assert (await web("1"))["intent"] == "booking"
    r = await web("取消")  # inside the dialogue: "never mind", not an unsubscribe
    assert r["intent"] == "booking" and "不再预约" in r["reply"]["text"]
    assert await count_bookings(db) == 0


async def test_a_slot_taken_meanwhile_is_offered_again_not_overbooked(web, db: Database) -> None:  # type: ignore[no-untyped-def]
    r = await web("明天帮我约个兽医")
    await web("1")
    await web("鄞江镇清源村12号")
    await web("何先生")
    async with db.read() as s:
        draft = (await s.scalar(select(Conversation.state).where(Conversation.channel == "web")))["booking"]
    taken = await web.client.post("/api/v1/bookings", json={"from": "web:quick", "service": "vet", "slot": draft["slot"],
                                                             "name": "快", "address": "鄞江镇1号"})
    assert taken.status == 201
    r = await web("1")
    assert "约满" in r["reply"]["text"] and r["reply"]["options"] and r["booking"] is None
    assert await slot_state(db, draft["slot"]) == (1, 1)
    assert await count_bookings(db) == 1


async def test_booking_by_sms_in_english_and_the_provider_accepts_by_sms(sms, db: Database, twilio_api) -> None:  # type: ignore[no-untyped-def]
    reply = await sms("book a vet for my goats on Friday")
    assert "Vet visit" in reply and "\n1 " in reply
    assert "Fri" in reply or "Nothing is free" in reply  # (late on a Friday night, Friday is over)
    assert "Please give the address" in await sms("1")
    assert "What name" in await sms("Qingyuan village 12, Yinjiang")
    reply = await sms("Li Hua")
    assert "Please confirm" in reply and "Li Hua" in reply
    reply = await sms("yes")
    assert "Booked" in reply
    number = number_in(reply)
    (job,) = await outbox(db, "dispatch")
    assert job.urn == f"tel:{VET_PHONE}" and f'Reply "Y {number}"' in job.body and RESIDENT in job.body
    for _ in range(100):  # the outbox worker sends it to the provider's phone
        if any(m["to"] == VET_PHONE for m in twilio_api.messages):
            break
        await asyncio.sleep(0.05)
    (sent,) = [m for m in twilio_api.messages if m["to"] == VET_PHONE]
    assert sent["body"] == job.body and sent["from"] == FROM_NUMBER
    answer = await sms(f"Y {number}", sender=VET_PHONE)
    assert f"Accepted {number}" in answer and "Qingyuan village 12" in answer
    assert (await get_booking(db, number)).status == ACCEPTED
    (notice,) = await outbox(db, "notice", f"tel:{RESIDENT}")
    assert "accepted" in notice.body
    # Someone else's phone cannot answer for the provider.
    stranger = await sms(f"N {number}", sender=PB_PHONE)
    assert "没有找到派给本号码的预约" in stranger
    assert (await get_booking(db, number)).status == ACCEPTED
    assert "accepted by the provider" in await sms(f"status B{number[1:]}")


async def test_a_chinese_sms_offer_fits_two_segments_uncut(sms) -> None:  # type: ignore[no-untyped-def]
    reply = await sms("马桶堵了 找个水管工明天上午来通")
    assert "水管维修疏通可以预约" in reply and "\n4 " in reply and "\n9 更晚的时间" in reply
    assert not reply.endswith("（回复M看下文）")
    assert "上门地址" in await sms("2")


async def test_declined_by_sms_goes_to_the_next_provider_then_to_an_operator(sms, db: Database) -> None:  # type: ignore[no-untyped-def]
    slot = next_hour_slot("pa", 5)
    async with db.write() as s:
        b = await book(s, service_code="plumbing", slot_id=slot, urn=f"tel:{RESIDENT}", name="张先生",
                       address="海曙区石碶街道雅戈尔大道100号", rules=RULES, now=utcnow(), actor="test", channel="sms")
    answer = await sms(f"N {b.number} 今天师傅都出去了", sender=PA_PHONE)
    assert "不派给您了" in answer
    moved = await get_booking(db, b.number)
    assert moved.status == CONFIRMED and moved.slot_id == slot.replace("pa-", "pb-")
    assert [o.urn for o in await outbox(db, "dispatch")] == [f"tel:{PA_PHONE}", f"tel:{PB_PHONE}"]
    assert await slot_state(db, slot) == (3, 0) and await slot_state(db, moved.slot_id) == (1, 1)
    await sms(f"拒 {b.number}", sender=PB_PHONE)
    referred = await get_booking(db, b.number)
    assert referred.status == REFERRED and not referred.holds_seat
    assert await slot_state(db, moved.slot_id) == (1, 0)
    async with db.read() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.contact_id == referred.contact_id))
    assert conv.status == "waiting"
    assert "话务员" in (await outbox(db, "notice", f"tel:{RESIDENT}"))[-1].body


async def _finished_booking(db: Database, survey_at_minutes_ago: int) -> Booking:
    """A booking that took place two days ago, surveyed ``survey_at_minutes_ago`` minutes ago."""
    now = utcnow()
    slot = next_hour_slot("pa", -48)
    async with db.write() as s:
        b = await book(s, service_code="plumbing", slot_id=slot, urn=f"tel:{RESIDENT}", name="张先生",
                       address="海曙区石碶街道雅戈尔大道100号", rules=RULES, now=now - timedelta(days=3),
                       actor="test", channel="sms")
    assert await send_surveys(db, now - timedelta(minutes=survey_at_minutes_ago), RULES) == 1
    return b


async def test_the_follow_up_rating_by_sms(sms, db: Database) -> None:  # type: ignore[no-untyped-def]
    b = await _finished_booking(db, survey_at_minutes_ago=1)
    (survey,) = await outbox(db, "survey")
    assert survey.urn == f"tel:{RESIDENT}" and "1-5" in survey.body
    reply = await sms("7")
    assert "1到5" in reply and "7" in reply
    assert (await get_booking(db, b.number)).rating is None
    reply = await sms("5")
    assert "5分" in reply
    rated = await get_booking(db, b.number)
    assert (rated.status, rated.rating) == (COMPLETED, 5)
    pa = await provider(db, "pa")
    assert (pa.rating_count, pa.score) == (1, 5.0)
    assert "便民服务热线" in await sms("你好")  # the dialogue is over: a greeting is a greeting


async def test_a_late_rating_is_still_taken_and_other_words_are_not(sms, db: Database) -> None:  # type: ignore[no-untyped-def]
    b = await _finished_booking(db, survey_at_minutes_ago=120)  # the dialogue step has lapsed
    reply = await sms("2")
    assert "2分" in reply and "话务员" in reply  # a poor rating reaches an operator
    assert (await get_booking(db, b.number)).rating == 2
    assert "便民服务热线" in await sms("你好")
    assert "2分" not in await sms("3")  # rated already: "3" is now a menu choice
    async with db.read() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.status == "waiting"))
    assert conv is not None
