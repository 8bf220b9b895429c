"""The console's Bookings pages on the real app and both databases: list, week calendar and
filters; accepting and declining for a provider, moving and cancelling for a resident (the
service's cut-off applies unless the operator confirms); providers with scores, suspended and
reinstated by supervisors only; CSRF; phone numbers masked for roles that do not call back."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from browser.console_support import login, make_user, page_token, post
from sqlalchemy import select
from test_booking_support import ROUND_THE_CLOCK, ZONE, get_booking, load, next_hour_slot, provider, slot_state

from helpline.app import create_app
from helpline.booking.models import Dispatch
from helpline.booking.service import Rules, book
from helpline.db import Database
from helpline.models import Event, utcnow

RESIDENT = "tel:+8613800138000"


@pytest.fixture
async def desk(aiohttp_client, settings, db):  # type: ignore[no-untyped-def]
    await load(db, ROUND_THE_CLOCK, now=utcnow())
    for name, role, dept in (("op1", "operator", None), ("sup1", "supervisor", None), ("adm1", "admin", None),
                             ("hw1", "department", "HW")):
        await make_user(db, name, role, dept)
    return await aiohttp_client(create_app(settings))


async def booked(db: Database, slot: str, service: str = "plumbing") -> str:
    async with db.write() as session:
        booking = await book(session, service_code=service, slot_id=slot, urn=RESIDENT, name="王阿姨",
                             address="幸福街道幸福小区3幢", rules=Rules(zone=ZONE), now=utcnow(), actor="test",
                             channel="sms")
        return booking.number


async def act(client: TestClient, number: str, action: str, data: dict[str, str] | None = None) -> Any:
    token = await page_token(client, f"/console/bookings/{number}")
    return await post(client, f"/console/bookings/{number}/{action}", data or {}, token=token)


async def flashed(client: TestClient, resp: Any) -> str:
    assert resp.status == 303, await resp.text()
    return await (await client.get(resp.headers["Location"])).text()


async def test_list_week_and_filters(desk: TestClient, db: Database) -> None:
    soon = await booked(db, next_hour_slot("pa", 5))
    vet = await booked(db, next_hour_slot("vet1", 6), "vet")
    await login(desk, "op1")

    async def listed(query: str = "") -> set[str]:
        resp = await desk.get(f"/console/bookings{query}")
        assert resp.status == 200, await resp.text()
        return set(re.findall(r'href="/console/bookings/(B\d+)"', await resp.text()))

    assert await listed() == {soon, vet}
    assert await listed("?service=vet") == {vet}
    assert await listed("?provider=pa") == {soon}
    assert await listed("?status=accepted") == set()
    assert await listed("?status=confirmed") == {soon, vet}
    day = (utcnow().astimezone(ZONE) + timedelta(hours=5)).date()
    assert soon in await listed(f"?date={day.isoformat()}")
    assert await listed(f"?date={(day - timedelta(days=3)).isoformat()}") == set()
    week = await (await desk.get(f"/console/bookings?view=week&date={day.isoformat()}")).text()
    assert week.count('class="day') == 7 and soon in week and vet in week and "水管维修疏通" in week
    assert set(re.findall(r'href="/console/bookings/(B\d+)"', week)) == {soon, vet}
    later = (await desk.get(f"/console/bookings?view=week&date={(day + timedelta(days=14)).isoformat()}"))
    assert soon not in await later.text()
    english = await (await desk.get("/console/bookings?lang=en")).text()
    assert "Awaiting provider" in english and "Plumbing" in english


async def test_only_the_centre_sees_bookings(desk: TestClient, db: Database) -> None:
    number = await booked(db, next_hour_slot("pa", 5))
    await login(desk, "hw1")
    for path in ("/console/bookings", f"/console/bookings/{number}", "/console/providers"):
        assert (await desk.get(path)).status == 403, path
    nav = await (await desk.get("/console/kb")).text()
    assert "/console/bookings" not in nav and "/console/cases" in nav
    assert (await post(desk, f"/console/bookings/{number}/cancel", token_page="/console/kb")).status == 403
    assert (await get_booking(db, number)).status == "confirmed"


async def test_accept_and_decline_on_the_providers_behalf(desk: TestClient, db: Database) -> None:
    first = await booked(db, next_hour_slot("pa", 5))
    await login(desk, "op1")
    page = await (await desk.get(f"/console/bookings/{first}")).text()
    assert f'action="/console/bookings/{first}/accept"' in page
    text = await flashed(desk, await act(desk, first, "accept"))
    assert "已代服务商接单" in text
    booking = await get_booking(db, first)
    assert booking.status == "accepted"
    async with db.read() as session:
        dispatch = (await session.scalars(select(Dispatch).where(Dispatch.booking_id == booking.id))).one()
        assert dispatch.answer == "accepted" and dispatch.answered_by.startswith("user:")
    page = await (await desk.get(f"/console/bookings/{first}")).text()
    assert f'action="/console/bookings/{first}/accept"' not in page  # nothing left to accept

    second = await booked(db, next_hour_slot("pa", 6))
    text = await flashed(desk, await act(desk, second, "decline", {"reason": "师傅病了"}))
    moved = await get_booking(db, second)
    assert moved.status == "confirmed" and moved.provider_id == (await provider(db, "pb")).id  # passed on to pb
    assert "乙管道" in text and "师傅病了" in text


async def test_move_and_cancel_for_the_resident_with_the_services_cut_off(desk: TestClient, db: Database) -> None:
    old_slot, new_slot = next_hour_slot("pa", 5), next_hour_slot("pa", 8)
    number = await booked(db, old_slot)
    await login(desk, "op1")
    page = await (await desk.get(f"/console/bookings/{number}")).text()
    assert f'value="{new_slot}"' in page and f'value="{old_slot}"' not in page
    text = await flashed(desk, await act(desk, number, "reschedule", {"slot": new_slot}))
    assert "已改约" in text
    assert (await get_booking(db, number)).slot_id == new_slot
    assert (await slot_state(db, old_slot))[1] == 0 and (await slot_state(db, new_slot))[1] == 1

    late = await booked(db, next_hour_slot("pa", 1))  # starts within the two-hour cut-off
    page = await (await desk.get(f"/console/bookings/{late}")).text()
    assert "已过截止时间" in page and 'name="force"' in page
    text = await flashed(desk, await act(desk, late, "cancel", {"reason": "居民来电"}))
    assert "开始前2小时内不能再取消" in text and (await get_booking(db, late)).status == "confirmed"
    text = await flashed(desk, await act(desk, late, "cancel", {"reason": "居民来电", "force": "1"}))
    cancelled = await get_booking(db, late)
    assert "预约已取消" in text and cancelled.status == "cancelled" and cancelled.cancel_reason == "居民来电"
    async with db.read() as session:
        event = (await session.scalars(select(Event).where(Event.action == "booking.cancelled"))).one()
        assert event.actor.startswith("user:") and event.data["forced"] is True
    text = await flashed(desk, await act(desk, late, "reschedule", {"slot": new_slot}))
    assert "不能改时间" in text  # a cancelled booking cannot be moved


async def test_csrf_is_required(desk: TestClient, db: Database) -> None:
    number = await booked(db, next_hour_slot("pa", 5))
    await login(desk, "sup1")
    for path in (f"/console/bookings/{number}/cancel", f"/console/bookings/{number}/accept", "/console/providers/pa/suspend"):
        resp = await desk.post(path, data={"reason": "x", "force": "1"}, allow_redirects=False)
        assert resp.status == 403, path
    assert (await get_booking(db, number)).status == "confirmed" and (await provider(db, "pa")).status == "active"


async def test_providers_scores_and_suspension_by_supervisors(desk: TestClient, db: Database) -> None:
    await login(desk, "op1")
    page = await (await desk.get("/console/providers")).text()
    assert "甲水电" in page and "/console/providers/pa/suspend" not in page
    assert (await post(desk, "/console/providers/pa/suspend", {"reason": "投诉"}, token_page="/console/providers")).status == 403
    assert (await provider(db, "pa")).status == "active"
    async with db.write() as session:  # three poor ratings: flagged for review
        from helpline.booking.models import Provider

        pa = (await session.scalars(select(Provider).where(Provider.code == "pa"))).one()
        pa.rating_sum, pa.rating_count, pa.flagged_at = 5, 3, utcnow()
    await login(desk, "sup1")
    page = await (await desk.get("/console/providers")).text()
    assert "评分过低，待复核" in page and "★ 1.67" in page
    assert page.index('data-provider="pa"') < page.index('data-provider="pb"')  # attention first
    text = await flashed(desk, await post(desk, "/console/providers/pa/suspend", {"reason": ""},
                                          token_page="/console/providers"))
    assert "须说明原因" in text and (await provider(db, "pa")).status == "active"
    text = await flashed(desk, await post(desk, "/console/providers/pa/suspend", {"reason": "多次投诉"},
                                          token_page="/console/providers"))
    pa = await provider(db, "pa")
    assert pa.status == "suspended" and pa.status_reason == "多次投诉" and "已暂停甲水电接单" in text
    text = await flashed(desk, await post(desk, "/console/providers/pa/reinstate", token_page="/console/providers"))
    pa = await provider(db, "pa")
    assert pa.status == "active" and pa.flagged_at is None and "恢复接单" in text
    await login(desk, "adm1")
    assert (await flashed(desk, await post(desk, "/console/providers/pb/suspend", {"reason": "合同到期"},
                                           token_page="/console/providers")))
    assert (await provider(db, "pb")).status == "suspended"


async def test_phone_numbers_are_masked_for_roles_that_do_not_call_back(desk: TestClient, db: Database) -> None:
    number = await booked(db, next_hour_slot("pa", 5))
    await login(desk, "op1")
    for path in (f"/console/bookings/{number}", "/console/bookings", "/console/providers"):
        assert "13800138000" in await (await desk.get(path)).text() or path == "/console/providers"
    assert "+8613900000001" in await (await desk.get("/console/providers")).text()
    await login(desk, "adm1")
    for path in (f"/console/bookings/{number}", "/console/bookings", "/console/providers"):
        html = await (await desk.get(path)).text()
        assert "13800138000" not in html and "13900000001" not in html, path
    assert "+861****8000" in await (await desk.get(f"/console/bookings/{number}")).text()
