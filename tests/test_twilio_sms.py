"""The SMS channel: signed Twilio webhooks in, TwiML out, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from helpline.app import create_app
from helpline.config import Settings
from helpline.db import Database
from helpline.models import ContactAddress, Message
from helpline.paging import paginate, segment_count
from helpline.request import Channel, Intent, Reply
from knowledge.loader import ArticleData
from knowledge.search import refresh_terms

TOKEN = "test-auth-token-0123456789abcdef"
SENDER = "+8613800138000"


@pytest.fixture
def twilio_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, twilio_account_sid="AC" + "0" * 32, twilio_auth_token=TOKEN, twilio_from="+8657400000000"
    )


@pytest.fixture
async def sms(aiohttp_client, twilio_settings: Settings):  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(twilio_settings))
    counter = iter(range(1, 10_000))

    async def send(body: str, *, sid: str | None = None, sender: str = SENDER, sign: bool = True, **extra: str):
        form = {"MessageSid": sid or f"SM{next(counter):032d}", "From": sender, "To": "+8657400000000",
                "Body": body, "AccountSid": "AC" + "0" * 32, **extra}
        headers = {}
        if sign:
            url = twilio_settings.public_url + "/twilio/sms"
            headers["X-Twilio-Signature"] = RequestValidator(TOKEN).compute_signature(url, form)
        return await client.post("/twilio/sms", data=form, headers=headers)

    send.client = client  # type: ignore[attr-defined]
    return send


async def texts(resp) -> list[str]:  # type: ignore[no-untyped-def]
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/xml"
    root = ET.fromstring(await resp.text())
    assert root.tag == "Response"
    return [m.text or "" for m in root.findall("Message")]


async def count(db: Database, *where) -> int:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        return await s.scalar(select(func.count()).select_from(Message).where(*where)) or 0


async def test_a_greeting_by_sms_gets_the_menu(sms, db) -> None:
    (reply,) = await texts(await sms("你好"))
    assert "便民服务热线" in reply and "1 农业技术咨询" in reply
    assert segment_count(reply) <= 2
    async with db.read() as s:
        msg = await s.scalar(select(Message).where(Message.direction == "in"))
    assert msg.channel == "sms" and msg.urn == f"tel:{SENDER}" and msg.provider_id.startswith("SM")


async def test_a_question_gets_the_short_answer(sms) -> None:
    (reply,) = await texts(await sms("小麦赤霉病怎么防"))
    assert "赤霉" in reply and "来源" not in reply and segment_count(reply) <= 2


async def test_numbers_are_normalised_to_e164(sms, db) -> None:
    await texts(await sms("hi", sender="138 0013 8001"))
    async with db.read() as s:
        urns = (await s.scalars(select(ContactAddress.urn))).all()
    assert urns == ["tel:+8613800138001"]


async def test_a_resent_webhook_is_stored_once_and_answered_the_same(sms, db) -> None:
    first = await texts(await sms("hello", sid="SM" + "a" * 32))
    again = await texts(await sms("hello", sid="SM" + "a" * 32))
    assert first == again
    assert await count(db, Message.direction == "in") == 1
    assert await count(db, Message.direction == "out") == 1


@pytest.mark.parametrize("signature", [None, "bm90IGEgc2lnbmF0dXJl"])
async def test_unsigned_or_wrongly_signed_webhooks_are_refused(sms, db, signature) -> None:
    form = {"MessageSid": "SM" + "b" * 32, "From": SENDER, "Body": "hi"}
    headers = {"X-Twilio-Signature": signature} if signature else {}
    resp = await sms.client.post("/twilio/sms", data=form, headers=headers)
    assert resp.status == 403
    assert await count(db) == 0


async def test_a_signature_over_other_fields_is_refused(sms, db, twilio_settings) -> None:
    form = {"MessageSid": "SM" + "c" * 32, "From": SENDER, "Body": "hi"}
    url = twilio_settings.public_url + "/twilio/sms"
    signature = RequestValidator(TOKEN).compute_signature(url, {**form, "Body": "something else"})
    resp = await sms.client.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
    assert resp.status == 403 and await count(db) == 0


@pytest.mark.parametrize(("drop", "needle"), [("MessageSid", "'MessageSid'"), ("From", "'From'")])
async def test_missing_fields_are_a_clear_400(sms, twilio_settings, drop, needle) -> None:
    form = {"MessageSid": "SM" + "d" * 32, "From": SENDER, "Body": "hi"}
    del form[drop]
    url = twilio_settings.public_url + "/twilio/sms"
    headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form)}
    resp = await sms.client.post("/twilio/sms", data=form, headers=headers)
    assert resp.status == 400 and needle in (await resp.json())["error"]


async def test_stop_and_start(sms, db) -> None:
    (stopped,) = await texts(await sms("STOP"))
    assert "START" in stopped
    async with db.read() as s:
        assert (await s.scalar(select(ContactAddress.opted_out_at))) is not None
    (started,) = await texts(await sms("start"))
    assert "订阅" in started or "subscribed" in started
    async with db.read() as s:
        assert (await s.scalar(select(ContactAddress.opted_out_at))) is None
    (zh,) = await texts(await sms("退订"))
    assert "退订" in zh


@pytest.mark.parametrize("body", ["HELP", "帮助"])
async def test_help_lists_what_the_line_does(sms, body) -> None:
    (reply,) = await texts(await sms(body))
    assert "1 " in reply and "0 " in reply


async def test_status_by_number(sms) -> None:
    (reply,) = await texts(await sms("CX 12345"))
    assert "12345" in reply


@pytest.mark.parametrize("body", ["", "   ", "👍👍👍", "你好 hello 😀 路灯 broken", "x" * 5000])
async def test_odd_bodies_get_a_sensible_answer(sms, body) -> None:
    (reply,) = await texts(await sms(body))
    assert reply.strip() and segment_count(reply) <= 2


async def test_a_long_answer_is_cut_and_the_rest_follows_on_request(sms, db) -> None:
    # An English answer with one curly quote needs UCS-2: only 134 characters fit in two segments.
    long_short = ("Drain the field for a week and do not add nitrogen now’ because it feeds the disease. "
                  "Spray a fungicide registered for this disease at the label rate. "
                  "If more than a tenth of the plants show it call your station.")
    article = ArticleData("sms-long-test", "crops", None, "测试长文", "Zqlong paging test", {"zh": ["测长"], "en": ["zqlong"]},
                          "短。", long_short, "全。", "Full.", "test", None, date(2026, 11, 1))
    from knowledge.loader import import_articles

    async with db.write() as s:
        await import_articles(s, [article])
        await refresh_terms(s)
    (first,) = await texts(await sms("zqlong"))
    assert first.endswith("(Reply M for more)") and segment_count(first) <= 2
    (rest,) = await texts(await sms("M"))
    assert "station" in rest
    assert (first.replace(" (Reply M for more)", "") + " " + rest).split() == long_short.split()


async def test_delivery_reports_move_the_message_forward(sms, db, twilio_settings) -> None:
    await texts(await sms("hello", sid="SM" + "e" * 32))
    async with db.write() as s:
        out = await s.scalar(select(Message).where(Message.direction == "out"))
        out.provider_id, out.status = "SM" + "f" * 32, "sent"
    url = twilio_settings.public_url + "/twilio/status"
    validator = RequestValidator(TOKEN)

    async def report(status: str) -> int:
        form = {"MessageSid": "SM" + "f" * 32, "MessageStatus": status, "To": SENDER}
        resp = await sms.client.post("/twilio/status", data=form,
                                     headers={"X-Twilio-Signature": validator.compute_signature(url, form)})
        return resp.status

    assert await report("delivered") == 204
    assert await report("sent") == 204  # late and out of order: ignored
    async with db.read() as s:
        assert await s.scalar(select(Message.status).where(Message.provider_id == "SM" + "f" * 32)) == "delivered"
    assert await report("teleported") == 400
    resp = await sms.client.post("/twilio/status", data={"MessageSid": "SM1", "MessageStatus": "sent"})
    assert resp.status == 403


def test_paginate_cuts_at_a_sentence_end() -> None:
    text = "第一句话说明情况。" * 20
    reply, rest = paginate(Reply(text, Intent.KNOWLEDGE, "zh"), Channel.SMS)
    assert segment_count(reply.text) <= 2 and reply.text.endswith("。（回复M看下文）") and rest
    same, nothing = paginate(Reply(text, Intent.KNOWLEDGE, "zh"), Channel.WEB)
    assert same.text == text and nothing == ""


async def test_an_sms_flood_costs_one_refusal_then_no_outbound_messages(sms, db) -> None:  # type: ignore[no-untyped-def]
    from helpline.appkeys import INBOX

    limit = sms.client.app[INBOX].limiter.per_minute
    sender = "+8613700000001"
    replies = [await texts(await sms(f"hello {n}", sid=f"SMflood{n:04d}", sender=sender)) for n in range(limit + 4)]
    assert all(len(r) == 1 for r in replies[:limit])
    assert len(replies[limit]) == 1 and "too fast" in replies[limit][0]
    assert replies[limit + 1 :] == [[]] * 3  # silence: no outbound SMS is paid for
    # A re-sent webhook of a silenced message stays silent (the same answer as before).
    assert await texts(await sms(f"hello {limit + 2}", sid=f"SMflood{limit + 2:04d}", sender=sender)) == []
    assert await count(db, Message.channel == "sms", Message.direction == "in") == limit + 4
    assert await count(db, Message.status == "throttled") == 4
