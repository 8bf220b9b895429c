"""Every intent end to end through the API and the inbox: the reply, the structured fields, the records."""

from __future__ import annotations

from sqlalchemy import select

from helpline.app import build_router
from helpline.config import Settings
from helpline.db import Database
from helpline.inbound import Inbox
from helpline.metrics import Metrics
from helpline.models import Contact, Conversation, Event
from helpline.request import Channel, Intent, Request


async def post(client, text: str, sender: str = "web:r1", **extra):  # type: ignore[no-untyped-def]
    resp = await client.post("/api/v1/messages", json={"from": sender, "text": text, **extra})
    assert resp.status == 200
    return await resp.json()


async def test_a_question_is_answered_in_full_with_its_source(client) -> None:
    body = await post(client, "稻瘟病怎么防治")
    assert body["intent"] == "knowledge"
    assert body["article"]["id"] == "rice-blast" and "稻瘟" in body["article"]["title"]
    assert "来源" in body["reply"]["text"]
    assert body["reply"]["options"][-1]["key"] == "0"


async def test_a_related_topic_can_be_opened_by_its_number(client) -> None:
    first = await post(client, "tomato leaves curling yellow", "web:rel")
    related = [o for o in first["reply"]["options"] if o["key"] != "0"]
    assert related
    second = await post(client, related[0]["key"], "web:rel")
    assert second["intent"] == "knowledge" and second["article"]["title"] == related[0]["label"]


async def test_sms_and_voice_get_the_short_answer(db: Database, settings: Settings) -> None:
    inbox = Inbox(db, build_router(), settings, Metrics())
    try:
        sms = await inbox.handle(Request(Channel.SMS, "tel:+8613800000001", "赤霉病"))
        voice = await inbox.handle(Request(Channel.VOICE, "tel:+8613800000002", "赤霉病"))
    finally:
        await inbox.close()
    for handled in (sms, voice):
        assert handled.reply.article and handled.reply.article["id"] == "wheat-fusarium-head-blight"
        assert len(handled.reply.text) <= 120 and "http" not in handled.reply.text and "来源" not in handled.reply.text


async def test_a_vague_question_offers_topics_and_an_expert(client) -> None:
    body = await post(client, "羊 病了")
    assert body["intent"] in ("unknown", "knowledge")
    assert any(o["key"] == "0" for o in body["reply"]["options"])


async def test_a_street_problem_carries_its_grid_class_and_asks_where(client, db) -> None:
    body = await post(client, "路口的路灯坏了好几天了", "web:grid")
    assert body["intent"] == "grid_case"
    assert body["grid"] == {"kind": "component", "major_code": "01", "major": "公用设施", "minor_code": "18", "minor": "路灯"}
    assert "地点" in body["reply"]["text"]
    place = await post(client, "幸福路和人民路交叉口", "web:grid")
    assert place["intent"] == "grid_case" and place["grid"]["minor_code"] == "18"
    assert "幸福路和人民路交叉口" in place["reply"]["text"]
    # The report is now a case (status "reported", waiting to be registered), not an operator hand-off.
    assert place["case"]["status"] == "reported" and place["case"]["id"] in place["reply"]["text"]
    async with db.read() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.id == body["conversation_id"]))
        events = (await s.scalars(select(Event).where(Event.action == "case.report"))).all()
    assert conv.status == "open" and [e.subject_id for e in events] == [place["case"]["id"]]


async def test_a_street_problem_with_a_location_needs_no_question(client) -> None:
    body = await post(client, "there is a pothole outside the school", "web:geo", location={"lat": 29.87, "lon": 121.55})
    assert body["intent"] == "grid_case" and body["grid"]["minor_code"] == "10" and body["grid"]["kind"] == "event"
    assert "recorded" in body["reply"]["text"]


async def test_an_emergency_gets_the_number_and_flags_the_contact(client, db) -> None:
    body = await post(client, "救命 我爸突然晕倒了 叫不醒", "web:sos")
    assert body["intent"] == "emergency" and "120" in body["reply"]["text"]
    async with db.read() as s:
        contact = await s.scalar(select(Contact).join(Conversation).where(Conversation.id == body["conversation_id"]))
        conv = await s.scalar(select(Conversation).where(Conversation.id == body["conversation_id"]))
        event = await s.scalar(select(Event).where(Event.action == "contact.urgent"))
    assert contact.urgent and conv.urgent
    assert event.data["kind"] == "medical" and event.data["number"] == "120"


async def test_an_emergency_interrupts_a_dialogue(client) -> None:
    await post(client, "路灯坏了", "web:int")  # now waiting for a place
    body = await post(client, "fire! the house is on fire", "web:int")
    assert body["intent"] == "emergency" and "119" in body["reply"]["text"]


async def test_status_asks_for_the_number_then_says_what_it_found(client) -> None:
    first = await post(client, "我反映的问题处理了没", "web:st")
    assert first["intent"] == "case_status" and "案件号" in first["reply"]["text"]
    second = await post(client, "54321", "web:st")
    assert second["intent"] == "case_status" and "54321" in second["reply"]["text"]


async def test_asking_for_a_person_queues_the_conversation(client, db) -> None:
    body = await post(client, "I want to talk to a real person", "web:op")
    assert body["intent"] == "operator"
    async with db.read() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.id == body["conversation_id"]))
    assert conv.status == "waiting"
    # the conversation goes on in the same place while it waits
    again = await post(client, "hello?", "web:op")
    assert again["conversation_id"] == body["conversation_id"]


async def test_a_booking_request_is_understood(client) -> None:
    body = await post(client, "家里水管漏了，明天上午找个师傅来修")
    assert body["intent"] == "booking" and body["booking"] is None


async def test_menu_zero_reaches_an_operator(client) -> None:
    await post(client, "你好", "web:m0")
    body = await post(client, "0", "web:m0")
    assert body["intent"] == Intent.OPERATOR.value
