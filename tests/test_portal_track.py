"""Tracking on the portal: a case or booking by number and phone, its timeline, department and
expected completion, the rating when done — and nothing at all for a wrong phone number."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from test_portal_support import (
    OPERATOR,
    close_case,
    csrf_of,
    demo_data,
    finish_booking,
    png,
    post_form,
    report_form,
    token,
)

from helpline.booking.models import Booking, Provider
from helpline.cases import service as cases
from helpline.cases.models import Case, CaseReport
from helpline.models import utcnow

PHONE = "13800138000"


@pytest.fixture
async def demo(settings) -> None:  # type: ignore[no-untyped-def]
    await demo_data(settings)


async def reported(client) -> str:  # type: ignore[no-untyped-def]
    resp = await client.post("/report", data=report_form(await token(client, "/report"), [("a.png", png(), "image/png")],
                                                         phone=PHONE), allow_redirects=False)
    assert resp.status == 303
    return re.search(r"n=(\d+)", resp.headers["Location"]).group(1)


async def booked(client) -> str:  # type: ignore[no-untyped-def]
    page = await (await client.get("/book/plumbing")).text()
    slot = re.search(r'name="slot" value="([^"]+)"', page).group(1)
    resp = await post_form(client, "/book/plumbing", {"slot": slot, "name": "李四", "phone": PHONE,
                                                      "address": "幸福街道幸福村1组1号"}, page="/book/plumbing")
    assert resp.status == 303
    return resp.headers["Location"].split("/")[2].split("?")[0]


async def track(client, number: str, phone: str = PHONE):  # type: ignore[no-untyped-def]
    return await post_form(client, "/track", {"number": number, "phone": phone}, page="/track")


def without_echo(page: str) -> str:
    """The page without its fresh token and without the two values the resident typed."""
    return re.sub(r'name="(csrf|number|phone)" value="[^"]*"', "", page)


async def test_a_case_by_number_and_phone_shows_its_timeline_department_and_expected_time(client, db, demo) -> None:
    number = await reported(client)
    page = await (await track(client, number)).text()
    assert f"案件 {number}" in page and "已受理，待核实立案" in page and "已收到反映" in page
    async with db.write() as s:
        await cases.perform(s, number, "register", OPERATOR, utcnow())
        case = await cases.perform(s, number, "dispatch", OPERATOR, utcnow())
        assert case.due_at is not None
    page = await (await track(client, f"CX {number}", "+86 138 0013 8000")).text()  # written other ways
    assert "派给责任部门：" in page and "责任部门" in page and "预计完成" in page
    assert "can_rate" not in page and 'action="/track/rate"' not in page


async def test_a_wrong_phone_gets_exactly_what_a_wrong_number_gets(client, demo) -> None:
    number = await reported(client)
    wrong_phone = await track(client, number, "13900000000")
    wrong_number = await track(client, str(int(number) + 1))
    assert wrong_phone.status == wrong_number.status == 404
    a, b = await wrong_phone.text(), await wrong_number.text()
    assert "没有找到与这个号码和手机号码都相符的记录" in a
    assert without_echo(a) == without_echo(b)
    assert "路灯" not in a and "幸福" not in a  # nothing about the case leaks


async def test_a_closed_case_is_rated_and_a_low_rating_reopens_it(client, db, demo) -> None:
    number = await reported(client)
    await close_case(db, number)
    page = await (await track(client, number)).text()
    assert "已结案" in page and 'action="/track/rate"' in page and "灯已修好" in page
    form = {"number": number, "phone": PHONE, "rating": "2", "note": "还是不亮", "csrf": csrf_of(page)}
    resp = await client.post("/track/rate", data=form)
    assert resp.status == 200
    page = await resp.text()
    assert "已重新交部门办理" in page and "重新办理" in page
    async with db.read() as s:
        case = await s.scalar(select(Case))
        report = await s.scalar(select(CaseReport))
    assert report.rating == 2 and case.status == "dispatched" and case.reopen_count == 1
    assert 'action="/track/rate"' not in page  # one rating per reporter
    again = await client.post("/track/rate", data={**form, "rating": "5"})  # the old form sent again
    assert again.status == 200
    async with db.read() as s:
        assert (await s.scalar(select(CaseReport))).rating == 2


async def test_a_good_rating_closes_the_matter(client, db, demo) -> None:
    number = await reported(client)
    await close_case(db, number)
    page = await (await track(client, number)).text()
    resp = await client.post("/track/rate", data={"number": number, "phone": PHONE, "rating": "5", "csrf": csrf_of(page)})
    assert "谢谢您的评价" in await resp.text()
    async with db.read() as s:
        case = await s.scalar(select(Case))
    assert case.status == "closed" and case.rating == 5


async def test_a_booking_is_tracked_and_rated_once_done(client, db, settings, demo) -> None:
    booking_id = await booked(client)
    async with db.read() as s:
        booking = await s.get(Booking, booking_id)
    page = await (await track(client, booking.number)).text()
    assert f"预约 {booking.number}" in page and "预约成功" in page and f'href="/booking/{booking_id}"' in page
    assert (await track(client, booking.number, "13900000000")).status == 404
    await finish_booking(db, settings, booking_id)
    page = await (await track(client, booking.number.lower())).text()
    assert "已完成" in page and 'action="/track/rate"' in page
    resp = await client.post("/track/rate", data={"number": booking.number, "phone": PHONE, "rating": "4",
                                                  "csrf": csrf_of(page)})
    assert "谢谢您的评价" in await resp.text()
    async with db.read() as s:
        booking = await s.get(Booking, booking_id)
        provider = await s.get(Provider, booking.provider_id)
    assert booking.rating == 4 and provider.rating_count == 1


async def test_missing_fields_and_too_many_tries(client, demo) -> None:
    resp = await track(client, "", "")
    assert resp.status == 400
    page = await resp.text()
    assert 'href="#number"' in page and 'href="#phone"' in page
    statuses = [(await track(client, str(100000 + i))).status for i in range(1, 14)]
    assert statuses[:11] == [404] * 11 and 429 in statuses[11:]
