"""The voice channel, driven as Twilio drives it: signed webhooks, whole calls walked by following
the action URLs of the TwiML it returns, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from channels import twilio_voice
from helpline.app import create_app
from helpline.config import Settings
from helpline.db import Database
from helpline.models import Call, Conversation, Event, Message, OutboxItem
from helpline.phone_sim import Line, run

TOKEN = "test-twilio-auth-token-0123456789"
CALLER = "+8613800138000"
URN = "tel:+8613800138000"
OPEN = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
CLOSED = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 23:00 in Asia/Shanghai
FUSARIUM_ZH = "扬花初期见花打药"
FUSARIUM_EN = "fusarium head blight"


class Clock:
    """The time the voice channel sees, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def voice_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, twilio_auth_token=TOKEN)


@pytest.fixture
def clock() -> Clock:
    return Clock(OPEN)


@pytest.fixture
async def line(aiohttp_client, voice_settings: Settings, clock: Clock):  # type: ignore[no-untyped-def]
    """The whole app with the voice channel, on a real test server."""
    app = create_app(voice_settings)
    twilio_voice.setup(app, clock=clock)
    return await aiohttp_client(app)


def sign(url: str, fields: dict[str, str], token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, fields)


class Caller:
    """A caller as Twilio relays them: each step posts the current TwiML's action URL, signed."""

    def __init__(self, client: Any, settings: Settings, number: str = CALLER) -> None:
        self.client = client
        self.settings = settings
        self.number = number
        self.sid = "CA" + secrets.token_hex(16)
        self.twiml: ET.Element | None = None

    def fields(self, **extra: str) -> dict[str, str]:
        return {"CallSid": self.sid, "AccountSid": "AC" + "0" * 32, "From": self.number, "To": "+8657181890",
                "CallStatus": "in-progress", "Direction": "inbound", **extra}

    async def post(self, url: str, fields: dict[str, str] | None = None) -> ET.Element:
        fields = self.fields() if fields is None else fields
        headers = {"X-Twilio-Signature": sign(self.settings.public_url + url, fields)}
        resp = await self.client.post(url, data=fields, headers=headers)
        body = await resp.text()
        assert resp.status == 200, body
        assert resp.content_type == "application/xml"
        self.twiml = ET.fromstring(body)
        return self.twiml

    async def call(self) -> ET.Element:
        return await self.post("/twilio/voice", self.fields(CallStatus="ringing"))

    def gather(self) -> ET.Element:
        assert self.twiml is not None
        gather = self.twiml.find("Gather")
        assert gather is not None, ET.tostring(self.twiml, encoding="unicode")
        return gather

    async def press(self, digits: str) -> ET.Element:
        return await self.post(self.gather().get("action", ""), self.fields(Digits=digits))

    async def speak(self, words: str) -> ET.Element:
        gather = self.gather()
        assert "speech" in gather.get("input", "")
        return await self.post(gather.get("action", ""), self.fields(SpeechResult=words, Confidence="0.9"))

    async def silence(self) -> ET.Element:
        """Say nothing: Twilio goes on with the verb after the Gather (a Redirect)."""
        assert self.twiml is not None
        redirect = self.twiml.find("Redirect")
        assert redirect is not None and redirect.text
        return await self.post(redirect.text, self.fields())

    async def record(self, url: str, transcript: str | None = None) -> ET.Element:
        assert self.twiml is not None
        record = self.twiml.find("Record")
        assert record is not None
        rec = {"RecordingUrl": url, "RecordingSid": "RE" + secrets.token_hex(16), "RecordingDuration": "7"}
        callback = record.get("transcribeCallback")
        if transcript is not None and callback:
            transcription = {"TranscriptionText": transcript, "TranscriptionStatus": "completed"}
            await self.post(callback, self.fields(**rec, **transcription))
        return await self.post(record.get("action", ""), self.fields(**rec, Digits="#"))

    def said(self) -> str:
        assert self.twiml is not None
        return " ".join((say.text or "") for say in self.twiml.iter("Say"))


async def rows(db: Database, model: Any, *where: Any) -> list[Any]:
    async with db.read() as session:
        return list(await session.scalars(select(model).where(*where)))


async def the_call(db: Database, caller: Caller) -> Call:
    (call,) = await rows(db, Call, Call.call_sid == caller.sid)
    return call


async def test_farming_question_by_speech_answered_then_sent_by_sms(line, voice_settings, db) -> None:
    caller = Caller(line, voice_settings)
    menu = await caller.call()
    gather = caller.gather()
    assert gather.get("input") == "dtmf speech" and gather.get("language") == "zh-CN"
    assert gather.get("action", "").startswith("/twilio/voice/")
    zh = [s for s in gather.iter("Say") if s.get("language") == "zh-CN"]
    assert "热线" in (zh[0].text or "") and any("农业" in (s.text or "") for s in zh)
    assert any(s.get("language") == "en-US" and "English" in (s.text or "") for s in menu.iter("Say"))

    await caller.press("1")
    assert "赤霉病" in caller.said() and caller.gather().get("input") == "dtmf speech"
    await caller.speak("赤霉病")
    assert FUSARIUM_ZH in caller.said()
    assert "短信" in caller.said()  # the options after an answer

    await caller.press("2")
    assert "短信" in caller.said()
    (item,) = await rows(db, OutboxItem, OutboxItem.urn == URN)
    assert item.kind == "voice_answer" and item.channel == "sms" and FUSARIUM_ZH in item.body
    await caller.press("2")  # pressed twice: still one text
    assert len(await rows(db, OutboxItem, OutboxItem.urn == URN)) == 1

    await caller.press("1")  # hear it again
    assert FUSARIUM_ZH in caller.said()

    (asked,) = await rows(db, Message, Message.channel == "voice", Message.direction == "in")
    assert asked.text == "赤霉病" and asked.urn == URN and asked.intent == "knowledge"
    assert asked.provider_id is not None and asked.provider_id.startswith(caller.sid + ":")
    call = await the_call(db, caller)
    assert call.urn == URN and call.lang == "zh" and call.conversation_id == asked.conversation_id
    assert [(p["menu"], p["input"], p["via"]) for p in call.path[:3]] == [
        ("call", None, None), ("main", "1", "dtmf"), ("ask", "赤霉病", "speech")
    ]


async def test_english_by_key_9(line, voice_settings, db) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.press("9")
    gather = caller.gather()
    assert gather.get("language") == "en-US"
    assert [s.get("language") for s in gather.iter("Say")] == ["en-US", "zh-CN"]  # "中文服务请按9" in Mandarin
    assert "farming advice press 1" in caller.said()
    assert "lang=en" in gather.get("action", "")
    await caller.press("1")
    await caller.speak("wheat scab")
    assert FUSARIUM_EN in caller.said().lower()
    call = await the_call(db, caller)
    assert call.lang == "en"


async def test_saying_english_switches_too_and_a_spoken_question_needs_no_menu(line, voice_settings) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.speak("English")
    assert caller.gather().get("language") == "en-US"
    await caller.speak("how do I control fusarium head blight in my wheat")
    assert FUSARIUM_EN in caller.said().lower()


async def test_a_question_not_understood_twice_goes_to_an_operator(line, voice_settings, db) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.press("2")
    await caller.speak("qwertyuiop asdf")
    assert "没能听懂" in caller.said() and "speech" in caller.gather().get("input", "")
    twiml = await caller.speak("zxcvbnm qwerty")
    assert twiml.find("Enqueue") is not None and "没能听懂" in caller.said()
    (conv,) = await rows(db, Conversation, Conversation.channel == "voice")
    assert conv.status == "waiting"


async def test_report_with_recording_and_place_is_coded_and_confirmed(line, voice_settings, db) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.press("4")
    record = caller.twiml.find("Record") if caller.twiml is not None else None
    assert record is not None and record.get("maxLength") == "60" and record.get("action")
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
    await caller.record(url, transcript="路灯坏了")
    assert "地点" in caller.said()
    await caller.speak("幸福路口")
    said = caller.said()
    assert "路灯" in said and "幸福路口" in said

    call = await the_call(db, caller)
    assert [r["url"] for r in call.recordings] == [url]
    assert call.recordings[0]["transcript"] == "路灯坏了" and call.recordings[0]["grid"]["minor"] == "路灯"
    (event,) = await rows(db, Event, Event.action == "report.recorded")
    assert event.data["recording_url"] == url and event.data["place"] == "幸福路口"
    (conv,) = await rows(db, Conversation, Conversation.id == call.conversation_id)
    assert conv.status == "waiting" and "report" not in conv.state
    (sms,) = await rows(db, OutboxItem, OutboxItem.urn == URN)
    assert "路灯" in sms.body


async def test_report_without_transcript_asks_the_place_if_the_caller_named_the_problem(
    line, voice_settings, db
) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.press("4")
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE2"
    await caller.record(url)
    (conv,) = await rows(db, Conversation, Conversation.channel == "voice")
    assert conv.state["report"]["recording_url"] == url  # the draft
    await caller.speak("路灯不亮了")
    assert "路灯" in caller.said() and "地点" in caller.said()
    (conv,) = await rows(db, Conversation, Conversation.channel == "voice")
    assert conv.state["report"]["recording_url"] == url and conv.state["report"]["code"]
    await caller.speak("幸福路12号")
    assert "幸福路12号" in caller.said()
    assert len(await rows(db, OutboxItem, OutboxItem.urn == URN)) == 1
    assert len(await rows(db, Event, Event.action == "report.recorded")) == 1


async def test_report_the_router_cannot_code_goes_to_an_operator_with_its_recording(line, voice_settings, db) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.press("4")
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE3"
    await caller.record(url)
    await caller.press("12")
    assert "录音" in caller.said() and caller.gather().get("action", "").startswith("/twilio/voice/menu/choice")
    (event,) = await rows(db, Event, Event.action == "report.recorded")
    assert event.data["recording_url"] == url and event.data["grid"] is None
    (conv,) = await rows(db, Conversation, Conversation.channel == "voice")
    assert conv.status == "waiting"
    (sms,) = await rows(db, OutboxItem, OutboxItem.urn == URN)
    assert "12" in sms.body


async def test_status_by_keypad(line, voice_settings, db) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.press("5")
    gather = caller.gather()
    assert gather.get("input") == "dtmf" and gather.get("finishOnKey") == "#"
    await caller.press("12")
    assert "太短" in caller.said()
    await caller.press("12345")
    assert "12345" in caller.said()
    msgs = await rows(db, Message, Message.channel == "voice", Message.direction == "in")
    assert [(m.text, m.intent) for m in msgs] == [("CX 12345", "case_status")]


async def test_booking_by_speech(line, voice_settings, db) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.press("3")
    await caller.speak("水管漏了，明天上午找个师傅")
    assert "预约" in caller.said()
    (msg,) = await rows(db, Message, Message.channel == "voice", Message.direction == "in")
    assert msg.intent == "booking"


async def test_operator_in_opening_hours_enqueues_with_hold_position(line, voice_settings, db) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    twiml = await caller.press("0")
    enqueue = twiml.find("Enqueue")
    assert enqueue is not None and enqueue.text == "helpline" and enqueue.get("waitUrl")
    (conv,) = await rows(db, Conversation, Conversation.channel == "voice")
    assert conv.status == "waiting"
    assert len(await rows(db, Event, Event.action == "handoff.requested")) == 1

    hold = await caller.post(enqueue.get("waitUrl", ""), {"CallSid": caller.sid, "QueuePosition": "3",
                                                        "QueueSid": "QU1", "AvgQueueTime": "20"})
    assert "还有2位" in caller.said()
    gather = hold.find("Gather")
    assert gather is not None
    leave = await caller.post(gather.get("action", ""), {"CallSid": caller.sid, "Digits": "*"})
    assert leave.find("Leave") is not None
    await caller.post(enqueue.get("action", ""), caller.fields(QueueResult="leave"))
    assert "留言" in caller.said()  # leaving the queue offers a message or a call-back
    await caller.post(enqueue.get("action", ""), caller.fields(QueueResult="bridged"))
    assert caller.twiml is not None and caller.twiml.find("Hangup") is not None


async def test_operator_out_of_hours_offers_voicemail_and_call_back(line, voice_settings, db, clock) -> None:
    clock.now = CLOSED
    caller = Caller(line, voice_settings)
    await caller.call()
    twiml = await caller.press("0")
    assert twiml.find("Enqueue") is None and "非工作时间" in caller.said()
    await caller.press("1")
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE9"
    await caller.record(url)
    assert "留言已收到" in caller.said() and caller.twiml is not None and caller.twiml.find("Hangup") is not None
    call = await the_call(db, caller)
    assert call.recordings[0]["url"] == url and call.recordings[0]["kind"] == "voicemail"
    (event,) = await rows(db, Event, Event.action == "voicemail.left")
    assert event.data["recording_url"] == url and event.subject_id == call.conversation_id
    (conv,) = await rows(db, Conversation, Conversation.id == call.conversation_id)
    assert conv.status == "waiting"

    again = Caller(line, voice_settings)
    await again.call()
    await again.press("0")
    await again.press("2")
    assert "8000" in again.said() and again.twiml is not None and again.twiml.find("Hangup") is not None
    await again.post("/twilio/voice/offline?lang=zh&s=2&r=0", again.fields(Digits="2"))  # re-sent
    (callback,) = await rows(db, Event, Event.action == "callback.requested")
    assert callback.data["call_sid"] == again.sid and callback.data["urn"] == URN


async def test_silence_repeats_once_then_says_goodbye(line, voice_settings) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.silence()
    assert "没有听到" in caller.said() and caller.gather() is not None
    final = await caller.silence()
    assert final.find("Hangup") is not None and "再见" in caller.said()


async def test_unknown_digit_is_said_and_the_menu_repeated(line, voice_settings) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.press("7")
    assert "没有这个选项" in caller.said() and "农业" in caller.said()
    assert caller.gather().get("action", "").startswith("/twilio/voice/menu/choice")


async def test_status_callback_stores_duration(line, voice_settings, db) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.post("/twilio/voice/status", caller.fields(CallStatus="completed", CallDuration="42"))
    call = await the_call(db, caller)
    assert call.status == "completed" and call.duration_s == 42 and call.ended_at is not None


async def test_resent_webhook_is_stored_once_and_answered_the_same(line, voice_settings, db) -> None:
    caller = Caller(line, voice_settings)
    await caller.call()
    await caller.call()  # Twilio re-sends the first webhook too
    await caller.press("1")
    action = caller.gather().get("action", "")
    first = await caller.post(action, caller.fields(SpeechResult="赤霉病"))
    second = await caller.post(action, caller.fields(SpeechResult="赤霉病"))
    assert ET.tostring(first) == ET.tostring(second)
    assert len(await rows(db, Message, Message.channel == "voice", Message.direction == "in")) == 1
    assert len(await rows(db, Message, Message.channel == "voice", Message.direction == "out")) == 1
    call = await the_call(db, caller)
    assert [p["menu"] for p in call.path] == ["call", "main", "ask"]


@pytest.mark.parametrize("signature", [None, "d3Jvbmc="])
async def test_unsigned_or_wrongly_signed_webhooks_get_403_and_nothing_is_stored(
    line, voice_settings, db, signature
) -> None:
    caller = Caller(line, voice_settings)
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    for path in ("/twilio/voice", "/twilio/voice/heard?lang=zh&s=1&r=0&mode=ask", "/twilio/voice/status"):
        resp = await line.post(path, data=caller.fields(SpeechResult="赤霉病", CallStatus="completed"), headers=headers)
        assert resp.status == 403
    # Signed with another token, or for another URL: refused as well.
    fields = caller.fields()
    bad = {"X-Twilio-Signature": sign(voice_settings.public_url + "/twilio/voice/menu", fields)}
    assert (await line.post("/twilio/voice", data=fields, headers=bad)).status == 403
    other = {"X-Twilio-Signature": sign(voice_settings.public_url + "/twilio/voice", fields, token="another-token")}
    assert (await line.post("/twilio/voice", data=fields, headers=other)).status == 403
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Call)) == 0
        assert await session.scalar(select(func.count()).select_from(Message)) == 0


async def test_missing_fields_and_bad_parameters_get_400_json(line, voice_settings) -> None:
    caller = Caller(line, voice_settings)
    for path, fields in (
        ("/twilio/voice", {"From": CALLER}),
        ("/twilio/voice", {"CallSid": caller.sid}),
        ("/twilio/voice/status", {"CallSid": caller.sid}),
        ("/twilio/voice/heard?lang=fr&s=1&r=0&mode=ask", caller.fields()),
        ("/twilio/voice/heard?lang=zh&s=1&r=0&mode=sing", caller.fields()),
        ("/twilio/voice/answer?lang=zh&s=x&r=0&q=ask.1", caller.fields()),
    ):
        headers = {"X-Twilio-Signature": sign(voice_settings.public_url + path, fields)}
        resp = await line.post(path, data=fields, headers=headers)
        assert resp.status == 400, path
        assert "error" in await resp.json()


async def test_phone_simulator_plays_a_scripted_call(line, voice_settings, db) -> None:
    script = iter(["1", "赤霉病", "2", "", ""])
    heard: list[str] = []

    async def read(prompt: str) -> str | None:
        return next(script, None)

    base = str(line.make_url("")).rstrip("/")
    phone = Line(base_url=base, caller=CALLER, auth_token=TOKEN, public_url=voice_settings.public_url)
    await run(phone, read, heard.append)
    transcript = "\n".join(heard)
    assert "农业" in transcript and FUSARIUM_ZH in transcript and "答案会用短信" in transcript
    assert "再见" in transcript and "call ended" in transcript
    (item,) = await rows(db, OutboxItem, OutboxItem.urn == URN)
    assert item.kind == "voice_answer"
    (call,) = await rows(db, Call)
    assert call.status == "completed" and call.duration_s is not None and call.duration_s >= 1


async def test_helpline_phone_command_reports_a_problem_from_stdin(line, voice_settings, db) -> None:
    base = str(line.make_url("")).rstrip("/")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    env |= {"HELPLINE_TWILIO_AUTH_TOKEN": TOKEN, "HELPLINE_PUBLIC_URL": voice_settings.public_url,
            "HELPLINE_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "helpline", "phone", "--url", base, "--from", CALLER,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await proc.communicate("4\n井盖丢了\n人民路口\n".encode())
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "井盖" in text and "人民路口" in text and "(recorded: https://api.twilio.com/" in text
    (call,) = await rows(db, Call)
    assert call.recordings and call.recordings[0]["transcript"] == "井盖丢了"
    assert call.status == "completed"


def test_setup_twice_only_swaps_the_clock(voice_settings) -> None:
    """The app factory may register the channel already; a test's second setup just fixes the time."""
    app = create_app(voice_settings)
    twilio_voice.setup(app)
    routes = len(app.router.routes())
    twilio_voice.setup(app, clock=Clock(CLOSED))
    assert len(app.router.routes()) == routes and app[twilio_voice.CLOCK]() == CLOSED
    assert not twilio_voice.is_open(CLOSED, voice_settings.zone) and twilio_voice.is_open(OPEN, voice_settings.zone)
