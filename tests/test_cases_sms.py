"""A resident's case by SMS, end to end on the real app (signed Twilio webhooks, the real router):
report -> case number -> dispatch -> handle -> check -> close -> satisfaction by a bare digit;
a dissatisfied answer reopens the case; "CX <number>" answers its status, "案件<number> 5分" rates."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select
from test_cases_support import act, get, make_staff, outbox, timeline
from twilio.request_validator import RequestValidator

from helpline.app import create_app
from helpline.cases.data import load_shipped
from helpline.models import ContactAddress, Conversation, utcnow

TOKEN = "test-auth-token-0123456789abcdef"
RESIDENT = "+8613800138000"


@pytest.fixture
async def sms(aiohttp_client, settings, db):  # type: ignore[no-untyped-def]
    # Only the auth token: webhooks are signed, and without account and sender the outbox worker
    # skips SMS rows instead of sending them anywhere.
    signed = dataclasses.replace(settings, twilio_auth_token=TOKEN)
    await load_shipped(db)
    client = await aiohttp_client(create_app(signed))
    counter = iter(range(1, 10_000))

    async def send(body: str, sender: str = RESIDENT) -> str:
        form = {"MessageSid": f"SM{next(counter):032d}", "From": sender, "To": "+8657400000000", "Body": body,
                "AccountSid": "AC" + "0" * 32}
        url = signed.public_url + "/twilio/sms"
        headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form)}
        resp = await client.post("/twilio/sms", data=form, headers=headers)
        assert resp.status == 200, await resp.text()
        return " ".join(m.text or "" for m in ET.fromstring(await resp.text()).findall("Message"))

    return send


def number_in(text: str) -> str:
    match = re.search(r"案件号[：:]?\s*(\d{6})", text)
    assert match, text
    return match.group(1)


async def close_case(db, number: str) -> None:  # type: ignore[no-untyped-def]
    staff = await make_staff(db)
    now = utcnow()
    await act(db, number, "register", staff.operator, now)
    await act(db, number, "dispatch", staff.operator, now)
    await act(db, number, "accept", staff.ld, now)
    await act(db, number, "handle", staff.ld, now, note="灯已修复")
    await act(db, number, "check", staff.operator, now, via="site")
    await act(db, number, "close", staff.operator, now)


async def survey_state(db) -> dict:  # type: ignore[no-untyped-def]
    async with db.read() as s:
        conv = await s.scalar(
            select(Conversation).join(ContactAddress, ContactAddress.contact_id == Conversation.contact_id)
            .where(ContactAddress.urn == f"tel:{RESIDENT}", Conversation.channel == "sms", Conversation.status == "open")
        )
    return conv.state


async def test_a_case_by_sms_from_report_to_rating(sms, db) -> None:
    asked = await sms("路口路灯坏了")
    assert "地点" in asked
    filed = await sms("中心小学门口")
    number = number_in(filed)
    assert "已记录" in filed and "CX " + number in filed
    case = await get(db, number)
    assert case.status == "reported" and case.source == "sms" and case.class_code == "C0118"

    status = await sms(f"CX {number}")
    assert number in status and "待核实" in status

    await close_case(db, number)
    updates = [o.body for o in await outbox(db) if o.urn == f"tel:{RESIDENT}"]
    assert [u[:4] for u in updates[:3]] == ["您反映的"[:4]] * 2 + ["区路灯管"] and "1-5" in updates[-1]
    assert (await survey_state(db))["survey"] == number

    thanks = await sms("4")
    assert "感谢您的评价（4分）" in thanks
    case = await get(db, number)
    assert case.rating == 4 and case.status == "closed"
    assert "survey" not in await survey_state(db) and "flow" not in await survey_state(db)
    assert [s.action for s in await timeline(db, number)][-1] == "rate"

    # Afterwards a bare digit is no longer a rating, but "CX <number> <rating>" still is.
    await sms("2")
    assert (await get(db, number)).rating == 4
    again = await sms(f"案件{number} 5分")
    assert "感谢您的评价（5分）" in again and number in again
    assert (await get(db, number)).rating == 4  # the lowest rating given stands


async def test_a_dissatisfied_answer_reopens_the_case(sms, db) -> None:
    await sms("路灯坏了")
    number = number_in(await sms("幸福路12号"))
    await close_case(db, number)
    answer = await sms("不满意，还是不亮")
    assert "重新交区路灯管理所处理" in answer and number in answer
    case = await get(db, number)
    assert case.status == "dispatched" and case.reopen_count == 1 and case.rating is None
    status = await sms(f"CX {number}")
    assert "已派遣" in status and "区路灯管理所" in status and "预计" in status


async def test_only_a_reporter_rates_and_only_a_closed_case(sms, db) -> None:
    await sms("路灯坏了")
    number = number_in(await sms("幸福路12号"))
    early = await sms(f"案件{number} 5分")
    assert "办结后才能评价" in early and (await get(db, number)).rating is None
    await close_case(db, number)
    stranger = await sms(f"案件{number} 不满意", sender="+8613900009999")
    assert "只有反映" in stranger
    case = await get(db, number)
    assert case.status == "closed" and case.rating is None


async def test_a_new_report_while_the_rating_is_awaited(sms, db) -> None:
    await sms("路灯坏了")
    first = number_in(await sms("幸福路12号"))
    await close_case(db, first)
    assert (await survey_state(db))["survey"] == first
    asked = await sms("井盖丢了")  # not a rating: a new problem
    assert "地点" in asked and "survey" not in await survey_state(db)
    second = number_in(await sms("中心小学门口"))
    assert second != first and (await get(db, second)).class_code == "C0114"
    assert (await get(db, first)).rating is None


async def test_a_status_question_with_other_digits_is_not_a_rating(sms, db) -> None:
    await sms("路灯坏了")
    number = number_in(await sms("幸福路12号"))
    await close_case(db, number)
    answer = await sms(f"案件{number} 是不是3天前就修好了")
    assert "已结案" in answer and (await get(db, number)).rating is None
    answer = await sms(f"我上次报的{number} 2")
    assert "已结案" in answer and (await get(db, number)).rating is None
    answer = await sms(f"CX{number} 3分")
    assert "3" in answer and (await get(db, number)).rating == 3
