"""The Cases and Bookings pages in a real browser: a resident's report arrives; an operator
registers and dispatches it; the department accepts it and reports it handled with a photo; the
operator checks and closes it. Then a booking is accepted on the provider's behalf and the week
calendar and providers render. Screenshots of each step go to tests/browser/artifacts/."""

from __future__ import annotations

import struct
import zlib
from typing import Any

from console_support import make_user
from test_cases_support import CELL_B, centre, staff  # noqa: F401
from test_console_browser import Live, live, new_page, sign_in  # noqa: F401 (the live fixture)
from fakes.twilio_api import twilio_api_fixture  # noqa: F401 (the twilio_api fixture)
from test_booking_support import ROUND_THE_CLOCK, ZONE, get_booking, load, next_hour_slot

from helpline.booking.service import Rules, book
from helpline.cases import service
from helpline.cases.models import Case
from helpline.cases.workflow import Actor
from helpline.contacts import contacts_for
from helpline.db import Database
from helpline.models import utcnow

RESIDENT = "tel:+8613912345678"


def png(width: int = 96, height: int = 72) -> bytes:
    """A small real PNG (a dusk-blue street with a yellow lamp), made without an image library."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            lamp = (x - 60) ** 2 + (y - 20) ** 2 < 90
            row += bytes((250, 204, 60) if lamp else ((60, 64, 72) if y > 52 else (70, 96, 150)))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows)))
            + chunk(b"IEND", b""))


async def resident_reports(db: Database) -> str:
    """A resident's report as the line files it (through the case service), with a recording."""
    lat, lon = centre(CELL_B)
    async with db.write() as session:
        contact = (await contacts_for(session, [RESIDENT]))[RESIDENT]
        done = await service.report(session, service.NewReport(
            class_code="C0118", description="幸福路12号门口的路灯晚上不亮，已经三天了，走路很黑。", source="voice",
            lat=lat, lon=lon, address="幸福路12号门口", urn=RESIDENT, contact_id=contact.id,
            media=[{"recording": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"}],
        ), Actor.reporter(contact.id), utcnow())
        return done.case.number


async def status_of(db: Database, number: str) -> str:
    async with db.read() as session:
        case = await session.get(Case, int(number) - 100000)
        assert case is not None
        return case.status


async def do(page: Any, action: str, note: str | None = None, photo: bytes | None = None) -> None:
    """Open an action's form on the case page, fill it in and send it."""
    box = page.locator(f"details.act[data-action={action}]")
    if await box.get_attribute("open") is None:
        await box.locator("summary").click()
    if note is not None:
        await box.locator("textarea[name=note]").fill(note)
    if photo is not None:
        await box.locator("input[name=photo]").set_input_files(
            files=[{"name": "after.png", "mimeType": "image/png", "buffer": photo}]
        )
    await box.locator("button[type=submit]").click()
    await page.wait_for_selector(".flash")


async def test_a_case_from_report_to_closure_and_a_booking_accepted(
    browser: Any, live: Live, db: Database, staff: Any, shot: Any  # noqa: F811
) -> None:
    number = await resident_reports(db)
    for i in range(3):  # a few other cases, as a list looks in the morning
        lat, lon = centre(("330203002001005", "330203001003004", "330203001001002")[i])
        async with db.write() as session:
            await service.report(session, service.NewReport(
                class_code=("C0101", "C0204", "E0101")[i], description=("井盖缺失", "垃圾桶满溢", "占道经营")[i],
                source="sms", lat=lat, lon=lon, address="人民路", urn=None), Actor.api("test"), utcnow())
    op = await new_page(browser)
    await sign_in(op, live, "op1", "/console/cases")
    await op.wait_for_selector("table.cases-table")
    assert number in await op.content()
    await shot(op, "1-cases-list")

    await op.click(f"a[href='/console/cases/{number}']")
    await op.wait_for_selector("details.act[data-action=register]")
    assert "+8613912345678" in await op.content()  # operators see the number to call back
    await do(op, "register", "电话核实，情况属实")
    assert await status_of(db, number) == "registered"
    await do(op, "dispatch")
    assert await status_of(db, number) == "dispatched"
    await op.wait_for_selector(".light-tag.l-green")
    await shot(op, "2-case-dispatched", full_page=True)

    dept = await new_page(browser)
    await sign_in(dept, live, "ld1", f"/console/cases/{number}")
    await dept.wait_for_selector("details.act[data-action=accept]")
    assert "8613912345678" not in await dept.content()  # masked for a department
    await shot(dept, "2b-department-to-do", full_page=True)
    await do(dept, "accept", "已派维修班")
    await do(dept, "handle", "更换了灯具和镇流器，已恢复照明。", png())
    assert await status_of(db, number) == "handled"
    await dept.wait_for_selector(".case-timeline .thumbs img")
    loaded = await dept.locator(".case-timeline .thumbs img").first.evaluate("i => i.complete && i.naturalWidth")
    assert loaded == 96  # the photo came through the authorised route
    await shot(dept, "3-case-handled-by-department", full_page=True)

    await op.goto(live.url + f"/console/cases/{number}")
    await do(op, "check", "现场核查，路灯已亮")
    await do(op, "close")
    assert await status_of(db, number) == "closed"
    assert await op.locator("details.act").count() == 0
    await shot(op, "4-case-closed", full_page=True)
    await op.goto(live.url + f"/console/cases/{number}?lang=en")
    await shot(op, "5-case-closed-en", full_page=True)

    # Bookings: one comes in, the provider confirms by phone, the operator accepts for it.
    await load(db, ROUND_THE_CLOCK, now=utcnow())
    await make_user(db, "sup2", "supervisor")
    numbers = []
    for code, service_code, hours in (("pa", "plumbing", 4), ("pb", "plumbing", 5), ("vet1", "vet", 26),
                                      ("day", "electrician", 30)):
        async with db.write() as session:
            try:
                booking = await book(session, service_code=service_code, slot_id=next_hour_slot(code, hours),
                                     urn="tel:+8613800138000", name="王阿姨", address="幸福街道幸福小区3幢",
                                     rules=Rules(zone=ZONE), now=utcnow(), actor="test", channel="sms")
            except Exception:  # noqa: BLE001 - the day-shift provider may not work at that hour
                continue
            numbers.append(booking.number)
    first = numbers[0]
    await op.goto(live.url + f"/console/bookings/{first}")
    await op.wait_for_selector("details.act[data-action=accept]")
    await shot(op, "6-booking-before")
    await op.locator("details.act[data-action=accept] button[type=submit]").click()
    await op.wait_for_selector(".flash.ok")
    assert (await get_booking(db, first)).status == "accepted"
    await shot(op, "7-booking-accepted", full_page=True)
    await op.goto(live.url + "/console/bookings?view=week")
    await op.wait_for_selector(".week .bk.bs-accepted")
    await shot(op, "8-bookings-week")
    await op.goto(live.url + "/console/bookings")
    await shot(op, "9-bookings-list")
    sup = await new_page(browser)
    await sign_in(sup, live, "sup2", "/console/providers")
    await sup.wait_for_selector("table.providers-table")
    await shot(sup, "10-providers")
