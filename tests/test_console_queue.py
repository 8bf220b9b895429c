"""The live queue and a conversation at work: order, claims (one winner), replies through the
outbox to a fake Twilio, closing, history across channels, and the WebSocket signal."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from aiohttp import WSMsgType, WSServerHandshakeError
from aiohttp.test_utils import TestClient
from browser.console_support import (
    eventually,
    login,
    make_user,
    nonce_of,
    page_token,
    post,
    resident_says,
    with_twilio,
)
from fakes.twilio_api import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    FakeTwilioApi,
    twilio_api_fixture,  # noqa: F401 (the twilio_api fixture)
)
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from helpline.app import create_app
from helpline.config import Settings
from helpline.console.conversations import canned_replies
from helpline.console.queue import claim, load_queue
from helpline.db import Database
from helpline.models import Conversation, Event, Message, OutboxItem, User
from helpline.request import Channel

PHONE = "tel:+8613800001234"


@pytest.fixture
async def sms_client(aiohttp_client, settings: Settings, twilio_api: FakeTwilioApi) -> TestClient:  # type: ignore[no-untyped-def]
    """The whole app, its outbox worker sending SMS to the fake Twilio API."""
    return await aiohttp_client(create_app(with_twilio(settings, twilio_api.url, ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER)))


async def audit(db: Database, action: str) -> list[Event]:
    async with db.read() as session:
        return list(await session.scalars(select(Event).where(Event.action == action).order_by(Event.id)))


async def status_of(db: Database, conversation_id: str) -> str:
    async with db.read() as session:
        conv = await session.get(Conversation, conversation_id)
        assert conv is not None
        return conv.status


# -- what is in the queue, in which order ------------------------------------------------------


async def test_queue_puts_emergencies_first_then_hand_offs_then_unanswered(client: TestClient, db: Database) -> None:
    asked = await resident_says(client, "转人工", address="tel:+8613800000001")
    unsure = await resident_says(client, "xq zzv blorp", address="tel:+8613800000002")
    fire = await resident_says(client, "我家着火了", address="tel:+8613800000003")
    await resident_says(client, "你好", address="tel:+8613800000004")  # answered by the menu: not in the queue
    async with db.read() as session:
        items = await load_queue(session)
    order = [(i.conversation.id, i.reason) for i in items]
    assert order == [
        (fire.conversation_id, "emergency"),
        (asked.conversation_id, "asked"),
        (unsure.conversation_id, "unsure"),
    ]
    await make_user(db, "oper", "operator")
    await login(client, "oper")
    html = await (await client.get("/console/queue")).text()
    assert html.index("紧急求助") < html.index("转人工") < html.index("机器人未能回答")
    assert "+8613800000004" not in html
    count = await (await client.get("/console/queue/count", headers={"Accept": "application/json"})).json()
    assert count == {"waiting": 2, "urgent": 1}


async def test_two_operators_claiming_at_once_one_wins(client: TestClient, db: Database) -> None:
    handled = await resident_says(client, "转人工")
    a, b = await make_user(db, "oper-a", "operator"), await make_user(db, "oper-b", "operator")

    async def take(uid: int) -> bool:
        async with db.write() as session:
            user = await session.get(User, uid)
            assert user is not None
            return (await claim(session, user, handled.conversation_id)).ok

    results = await asyncio.gather(take(a), take(b))
    assert sorted(results) == [False, True]
    assert len(await audit(db, "conversation.claimed")) == 1
    assert await status_of(db, handled.conversation_id) == "assigned"


async def test_a_taken_conversation_tells_the_next_operator_who_has_it(
    client: TestClient,
    aiohttp_client,
    settings: Settings,
    db: Database,  # type: ignore[no-untyped-def]
) -> None:
    handled = await resident_says(client, "转人工")
    await make_user(db, "oper-a", "operator")
    await make_user(db, "oper-b", "operator")
    await login(client, "oper-a")
    resp = await post(client, f"/console/queue/{handled.conversation_id}/claim")
    assert resp.headers["Location"] == f"/console/conversations/{handled.conversation_id}"
    other = await aiohttp_client(create_app(settings))
    await login(other, "oper-b")
    resp = await post(other, f"/console/queue/{handled.conversation_id}/claim")
    assert resp.headers["Location"] == "/console/queue"
    assert "oper-a 已经接手了这个会话" in await (await other.get("/console/queue")).text()
    # Nor can the second operator answer or close it.
    resp = await post(
        other, f"/console/conversations/{handled.conversation_id}/reply", {"text": "hi", "nonce": "x" * 16}
    )
    assert resp.status == 409
    resp = await post(other, f"/console/conversations/{handled.conversation_id}/close")
    assert resp.status == 403
    assert await status_of(db, handled.conversation_id) == "assigned"


async def test_a_supervisor_takes_over_and_releases(
    client: TestClient,
    aiohttp_client,
    settings: Settings,
    db: Database,  # type: ignore[no-untyped-def]
) -> None:
    handled = await resident_says(client, "转人工")
    await make_user(db, "oper", "operator")
    boss_id = await make_user(db, "boss", "supervisor")
    await login(client, "oper")
    await post(client, f"/console/queue/{handled.conversation_id}/claim")
    boss = await aiohttp_client(create_app(settings))
    await login(boss, "boss")
    resp = await post(boss, f"/console/queue/{handled.conversation_id}/claim", {"take_over": "1"})
    assert resp.headers["Location"] == f"/console/conversations/{handled.conversation_id}"
    [event] = await audit(db, "conversation.taken_over")
    assert event.actor == f"user:{boss_id}"
    assert (await post(boss, f"/console/conversations/{handled.conversation_id}/release")).status == 303
    assert await status_of(db, handled.conversation_id) == "waiting"
    assert len(await audit(db, "conversation.released")) == 1


# -- replying and closing -------------------------------------------------------------------


async def test_a_reply_reaches_the_resident_by_sms_once(
    sms_client: TestClient, db: Database, twilio_api: FakeTwilioApi
) -> None:
    handled = await resident_says(sms_client, "转人工")
    uid = await make_user(db, "oper", "operator")
    await login(sms_client, "oper")
    page = await (await sms_client.get(f"/console/conversations/{handled.conversation_id}")).text()
    token, nonce = await page_token(sms_client, f"/console/conversations/{handled.conversation_id}"), nonce_of(page)
    form = {"text": "您好，农技员明天上午到您家查看。", "nonce": nonce}
    first = await post(sms_client, f"/console/conversations/{handled.conversation_id}/reply", form, token=token)
    again = await post(sms_client, f"/console/conversations/{handled.conversation_id}/reply", form, token=token)
    assert first.status == again.status == 303

    async def sent() -> bool:
        return len(twilio_api.messages) == 1

    await eventually(sent)
    [sms] = twilio_api.messages
    assert (sms["to"], sms["body"]) == ("+8613800001234", "您好，农技员明天上午到您家查看。")

    async def marked_sent() -> bool:
        async with db.read() as session:
            return (await session.scalar(select(OutboxItem.status))) == "sent"

    await eventually(marked_sent)
    async with db.read() as session:
        message = await session.scalar(select(Message).where(Message.meta["kind"].as_string() == "operator_reply"))
        assert message is not None and message.status == "sent" and message.meta["user_id"] == uid
    [replied] = await audit(db, "conversation.replied")
    assert replied.actor == f"user:{uid}" and replied.data["channel"] == "sms"
    assert await status_of(db, handled.conversation_id) == "assigned"  # replying took it
    thread = await (await sms_client.get(f"/console/conversations/{handled.conversation_id}/thread?fragment=1")).text()
    assert "农技员明天上午" in thread and 'data-status="sent"' in thread
    assert "<html" not in thread  # a fragment, not a page


async def test_an_empty_reply_sends_nothing(sms_client: TestClient, db: Database) -> None:
    handled = await resident_says(sms_client, "转人工")
    await make_user(db, "oper", "operator")
    await login(sms_client, "oper")
    resp = await post(
        sms_client, f"/console/conversations/{handled.conversation_id}/reply", {"text": "  ", "nonce": "n" * 16}
    )
    assert resp.status == 303
    async with db.read() as session:
        assert await session.scalar(select(OutboxItem.id)) is None


async def test_closing_ends_the_conversation_and_the_next_message_starts_anew(client: TestClient, db: Database) -> None:
    handled = await resident_says(client, "转人工")
    uid = await make_user(db, "oper", "operator")
    await login(client, "oper")
    await post(client, f"/console/queue/{handled.conversation_id}/claim")
    resp = await post(client, f"/console/conversations/{handled.conversation_id}/close", {"note": "已解答"})
    assert resp.headers["Location"] == "/console/queue"
    assert await status_of(db, handled.conversation_id) == "closed"
    [event] = await audit(db, "conversation.closed")
    assert (event.actor, event.data) == (f"user:{uid}", {"from": "assigned", "note": "已解答"})
    async with db.read() as session:
        assert await load_queue(session) == []
    later = await resident_says(client, "你好")
    assert later.conversation_id != handled.conversation_id


async def test_history_shows_every_channel_of_the_contact(client: TestClient, db: Database) -> None:
    await resident_says(client, "小麦赤霉病怎么防", channel=Channel.VOICE)
    handled = await resident_says(client, "转人工")  # by SMS, same number
    await make_user(db, "oper", "operator")
    await login(client, "oper")
    page = await (await client.get(f"/console/conversations/{handled.conversation_id}")).text()
    html = page[page.index('<ol class="timeline">') :]
    assert "小麦赤霉病怎么防" in html and "转人工" in html
    assert html.index("小麦赤霉病怎么防") < html.index("转人工")
    assert len(re.findall(r'class="sep', html)) == 2  # one separator per conversation (voice, then SMS)


async def test_canned_replies_and_articles_fill_the_reply_in_the_residents_language(
    client: TestClient, db: Database
) -> None:
    handled = await resident_says(client, "I want a real person", address="telegram:4242", channel=Channel.TELEGRAM)
    await make_user(db, "oper", "operator")
    await login(client, "oper")
    canned = canned_replies()
    assert {c.key for c in canned} >= {"greeting", "closing"} and all(c.text_zh and c.text_en for c in canned)
    base = f"/console/conversations/{handled.conversation_id}"
    html = await (await client.get(f"{base}?canned=greeting")).text()
    greeting = next(c for c in canned if c.key == "greeting")
    assert f">{greeting.text_en}</textarea>" in html
    html = await (await client.get(f"{base}?kb=wheat+scab")).text()
    slug = re.search(r'data-article-slug="([a-z0-9-]+)"', html)
    assert slug, "the knowledge search found nothing to insert"
    html = await (await client.get(f"{base}?attach={slug.group(1)}")).text()
    assert f'name="article" value="{slug.group(1)}"' in html
    nonce = nonce_of(html)
    text = re.search(r'<textarea id="reply-text"[^>]*>([^<]+)</textarea>', html)
    assert text and text.group(1).isascii()  # the English short answer, for an English-speaking resident
    resp = await post(client, f"{base}/reply", {"text": text.group(1), "nonce": nonce, "article": slug.group(1)})
    assert resp.status == 303
    [replied] = await audit(db, "conversation.replied")
    assert (replied.data["channel"], replied.data["article"]) == ("telegram", slug.group(1))


# -- live updates ---------------------------------------------------------------------------


async def test_the_socket_signals_a_new_hand_off(client: TestClient, db: Database) -> None:
    await make_user(db, "oper", "operator")
    await login(client, "oper")
    async with client.ws_connect("/console/ws") as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello"
        await resident_says(client, "转人工")
        changed = await ws.receive_json(timeout=5)  # seen by the poll of the change fingerprint
        assert changed["type"] == "changed"
        items = await (await client.get("/console/queue/items?fragment=1")).text()
        assert "转人工" in items


async def test_a_console_action_is_signalled_at_once(client: TestClient, db: Database) -> None:
    handled = await resident_says(client, "转人工")
    await make_user(db, "oper", "operator")
    await login(client, "oper")
    async with client.ws_connect("/console/ws") as ws:
        await ws.receive_json(timeout=5)
        await post(client, f"/console/queue/{handled.conversation_id}/claim")
        msg = await ws.receive(timeout=3)
        assert msg.type == WSMsgType.TEXT and '"changed"' in msg.data


async def test_the_socket_refuses_other_sites(client: TestClient, db: Database) -> None:
    await make_user(db, "oper", "operator")
    await login(client, "oper")
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/console/ws", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403


async def test_postgresql_tells_the_other_instances_at_once(
    client: TestClient,
    aiohttp_client,
    settings: Settings,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """Two instances on one database: a claim on one reaches a socket on the other by NOTIFY,
    long before the (here slowed down) poll would notice it."""
    if settings.is_sqlite:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite the poll carries changes between instances")
    from helpline.console import live

    monkeypatch.setattr(live, "POLL_SECONDS", 30.0)
    handled = await resident_says(client, "转人工")
    await make_user(db, "oper-a", "operator")
    await make_user(db, "oper-b", "operator")
    await login(client, "oper-a")
    other = await aiohttp_client(create_app(settings))
    await login(other, "oper-b")
    async with client.ws_connect("/console/ws") as ws:
        await ws.receive_json(timeout=5)
        await asyncio.sleep(0.5)  # the first turn of the watcher: LISTEN is in place
        await post(other, f"/console/queue/{handled.conversation_id}/claim")
        changed = await ws.receive_json(timeout=3)
        assert changed["type"] == "changed"


async def test_looking_a_resident_up_by_number(client: TestClient, db: Database) -> None:
    await resident_says(client, "小麦赤霉病怎么防", address="tel:+8613800007777")
    await resident_says(client, "转人工", address="tel:+8613900008888")
    await make_user(db, "oper", "operator")
    await login(client, "oper")
    found = await (await client.get("/console/conversations?q=7777")).text()
    assert "+8613800007777" in found and "+8613900008888" not in found
    waiting = await (await client.get("/console/conversations?status=waiting")).text()
    assert "+8613900008888" in waiting and "+8613800007777" not in waiting
    missing = await client.get("/console/conversations/nope", headers={"Accept": "text/html"})
    assert missing.status == 404
    assert "找不到" in await missing.text()


class _Caller:
    """A caller as Twilio relays them (signed webhooks, following the TwiML's action URLs)."""

    def __init__(self, client: TestClient, settings: Settings, number: str) -> None:
        self.client, self.settings, self.number = client, settings, number
        self.sid = "CA" + secrets.token_hex(16)
        self.twiml: ET.Element | None = None

    async def post(self, url: str, **extra: str) -> ET.Element:
        form = {"CallSid": self.sid, "AccountSid": ACCOUNT_SID, "From": self.number, "To": "+8657181890",
                "CallStatus": "in-progress", **extra}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(self.settings.public_url + url, form)
        resp = await self.client.post(url, data=form, headers={"X-Twilio-Signature": signature})
        assert resp.status == 200, await resp.text()
        self.twiml = ET.fromstring(await resp.text())
        return self.twiml

    async def press(self, digits: str) -> ET.Element:
        assert self.twiml is not None
        gather = self.twiml.find("Gather")
        assert gather is not None
        return await self.post(gather.get("action", ""), Digits=digits)

    async def record(self, url: str) -> ET.Element:
        assert self.twiml is not None
        record = self.twiml.find("Record")
        assert record is not None
        return await self.post(record.get("action", ""), RecordingUrl=url, RecordingSid="RE" + "1" * 32,
                               RecordingDuration="7", Digits="#")


async def test_voicemails_and_call_backs_come_before_hand_offs(
    aiohttp_client, settings: Settings, db: Database  # type: ignore[no-untyped-def]
) -> None:
    """Out of hours a caller leaves a voicemail and another asks for a call-back (the real voice
    menu); they wait ahead of a chat hand-off, and the recording is on the conversation page."""
    from channels import twilio_voice

    voice = dataclasses.replace(settings, twilio_auth_token=AUTH_TOKEN)
    app = create_app(voice)
    twilio_voice.setup(app, clock=lambda: datetime(2026, 12, 1, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    client = await aiohttp_client(app)
    chat = await resident_says(client, "I want a real person", address="telegram:31", channel=Channel.TELEGRAM)
    voicemail = _Caller(client, voice, "+8613800000011")
    await voicemail.post("/twilio/voice", CallStatus="ringing")
    await voicemail.press("0")
    await voicemail.press("1")
    await voicemail.record("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE77")
    callback = _Caller(client, voice, "+8613800000022")
    await callback.post("/twilio/voice", CallStatus="ringing")
    await callback.press("0")
    await callback.press("2")
    async with db.read() as session:
        items = await load_queue(session)
    assert [i.reason for i in items] == ["voicemail", "callback", "asked"]
    assert items[2].conversation.id == chat.conversation_id
    await make_user(db, "oper", "operator")
    await login(client, "oper")
    page = await (await client.get(f"/console/conversations/{items[0].conversation.id}")).text()
    assert "Recordings/RE77" in page and "语音留言" in page
