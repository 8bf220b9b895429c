"""Booking on the portal: services, free times, the form, the confirmation with its number and
its link, cancelling and changing the time from that link — with the real booking service."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from test_portal_support import count, demo_data, errors_of, post_form

from helpline.booking.models import Booking, Slot

GOOD = {"name": "王大妈", "phone": "138 0013 8000", "address": "幸福街道幸福村3组12号", "note": "厨房水管漏水"}


@pytest.fixture
async def demo(settings) -> None:  # type: ignore[no-untyped-def]
    await demo_data(settings)


def free_slots(page: str) -> list[str]:
    return re.findall(r'name="slot" value="([^"]+)"', page)


async def slots_of(client, code: str = "plumbing", day: str = "") -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """The booking page of a day and its free slots; by default the last day offered, so that the
    booking is well before the cut-off whatever the time of day the tests run at."""
    if not day:
        first = await (await client.get(f"/book/{code}")).text()
        days = re.findall(r"\?day=(\d{4}-\d{2}-\d{2})#slot", first)
        day = days[-1] if days else ""
    resp = await client.get(f"/book/{code}" + (f"?day={day}" if day else ""))
    assert resp.status == 200
    page = await resp.text()
    return page, free_slots(page)


async def book(client, slot: str, **fields: str):  # type: ignore[no-untyped-def]
    return await post_form(client, "/book/plumbing", {**GOOD, "slot": slot, **fields}, page="/book/plumbing")


async def test_services_and_a_services_free_times(client, demo) -> None:
    services = await (await client.get("/book")).text()
    assert 'href="/book/plumbing"' in services and "水管维修疏通" in services and 'href="/book/vet"' in services
    page, slots = await slots_of(client)
    assert slots, "the demo plumbers have free times in the next two weeks"
    assert '<label for="name">' in page and '<label for="phone">' in page and '<label for="address">' in page
    assert 'href="?day=' in page  # days are links: no JavaScript needed


async def test_booking_gives_the_number_and_a_link_to_manage_it(client, db, demo) -> None:
    _, slots = await slots_of(client)
    resp = await book(client, slots[0])
    assert resp.status == 303
    location = resp.headers["Location"]
    match = re.fullmatch(r"/booking/([0-9a-f]{32})\?new=1", location)
    assert match
    async with db.read() as s:
        booking = await s.get(Booking, match.group(1))
    assert booking is not None and booking.slot_id == slots[0]
    assert booking.urn == booking.notify_urn == "tel:+8613800138000"
    assert booking.name == "王大妈" and booking.note == "厨房水管漏水"
    page = await (await client.get(location)).text()
    assert "预约成功" in page and booking.number in page
    assert f"/booking/{booking.id}/reschedule" in page and f"/booking/{booking.id}/cancel" in page


async def test_the_same_form_sent_twice_books_once(client, db, demo) -> None:
    page, slots = await slots_of(client)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = {**GOOD, "slot": slots[0], "csrf": csrf}
    first = await client.post("/book/plumbing", data=form, allow_redirects=False)
    second = await client.post("/book/plumbing", data=form, allow_redirects=False)
    assert first.status == second.status == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert await count(db, Booking) == 1
    async with db.read() as s:
        assert (await s.get(Slot, slots[0])).booked == 1


async def test_missing_and_wrong_fields_are_listed_and_nothing_is_booked(client, db, demo) -> None:
    resp = await post_form(client, "/book/plumbing", {"name": "", "phone": "12", "address": "x", "note": ""},
                           page="/book/plumbing")
    assert resp.status == 400
    page = await resp.text()
    assert [f for f, _ in errors_of(page)] == ["slot", "name", "phone", "address"]
    assert page.count('aria-invalid="true"') == 3  # name, phone, address (the times are a group)
    assert await count(db, Booking) == 0


async def test_a_time_taken_meanwhile_is_explained_and_the_form_kept(client, db, demo) -> None:
    _, slots = await slots_of(client)
    async with db.write() as s:  # someone else took every seat of that time
        slot = await s.get(Slot, slots[0])
        slot.booked = slot.capacity
    resp = await book(client, slots[0])
    assert resp.status == 409
    page = await resp.text()
    assert errors_of(page) == [("slot", "这个时间刚刚被约满了，请另选一个时间。")]
    assert 'value="王大妈"' in page  # what was typed is still there
    assert await count(db, Booking) == 0


async def test_cancel_and_change_the_time_from_the_link(client, db, demo) -> None:
    _, slots = await slots_of(client)
    location = (await book(client, slots[0])).headers["Location"].split("?")[0]
    first = await client.get(location + "/reschedule")
    assert first.status == 200
    # A time on the last day offered, so that the moved booking can still be cancelled.
    day = re.findall(r"\?day=(\d{4}-\d{2}-\d{2})#slot", await first.text())[-1]
    reschedule = await client.get(location + f"/reschedule?day={day}")
    others = free_slots(await reschedule.text())
    assert others and slots[0] not in others
    moved = await post_form(client, location + "/reschedule", {"slot": others[0]},
                            page=location + f"/reschedule?day={day}")
    assert moved.status == 303 and moved.headers["Location"].endswith("?done=moved")
    async with db.read() as s:
        booking = await s.scalar(select(Booking))
        assert booking.slot_id == others[0]
        assert (await s.get(Slot, slots[0])).booked == 0 and (await s.get(Slot, others[0])).booked == 1
    cancelled = await post_form(client, location + "/cancel", {}, page=location)
    assert cancelled.status == 303 and cancelled.headers["Location"].endswith("?done=cancelled")
    async with db.read() as s:
        booking = await s.scalar(select(Booking))
        assert booking.status == "cancelled"
        assert (await s.get(Slot, others[0])).booked == 0
    page = await (await client.get(location)).text()
    assert "<dd>已取消</dd>" in page and "/cancel" not in page  # nothing left to change


async def test_a_booking_link_must_be_the_real_id(client, demo) -> None:
    assert (await client.get("/booking/B1234567")).status == 404
    assert (await client.get("/booking/" + "a" * 32)).status == 404
