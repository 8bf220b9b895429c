"""What the portal's tests share: forms as a browser sends them (with the page's CSRF token),
the demo catalogue and departments, and ways to move a case or booking along through the real
services (as staff, providers and the scheduled jobs would)."""

from __future__ import annotations

import html as html_lib
import re
import struct
import zlib
from datetime import timedelta
from typing import Any

from aiohttp import FormData
from sqlalchemy import func, select

from helpline.booking.catalogue import load_shipped as load_catalogue
from helpline.booking.jobs import send_surveys
from helpline.booking.models import Booking
from helpline.booking.service import Rules
from helpline.cases import service as cases
from helpline.cases.data import load_shipped as load_departments
from helpline.cases.workflow import Actor
from helpline.config import Settings
from helpline.db import Database
from helpline.models import utcnow

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
OPERATOR = Actor("user:portal-test-operator", "operator")

# Points inside the demo grid (helpline/data/grid_cells.geojson).
INSIDE = (29.8709, 121.5490)
OUTSIDE = (30.5, 120.1)


def csrf_of(page: str) -> str:
    match = _CSRF.search(page)
    assert match, "the page has no form token"
    return match.group(1)


def errors_of(page: str) -> list[tuple[str, str]]:
    """The error summary's entries: (field id it links to, message)."""
    box = re.search(r'<div class="error-summary".*?</div>', page, re.S)
    if box is None:
        return []
    return [(f, html_lib.unescape(m)) for f, m in re.findall(r'<a href="#([\w-]+)">([^<]+)</a>', box.group(0))]


async def token(client: Any, path: str = "/") -> str:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return csrf_of(await resp.text())


async def post_form(client: Any, path: str, data: dict[str, str], *, page: str = "/", **kw: Any) -> Any:
    """POST a portal form with a fresh token from ``page`` (as the browser that shows it)."""
    return await client.post(path, data={**data, "csrf": await token(client, page)}, allow_redirects=False, **kw)


def png(width: int = 2, height: int = 2, pad: int = 0) -> bytes:
    """A real (tiny) PNG, optionally padded with a text chunk to reach a size."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    extra = chunk(b"tEXt", b"c\x00" + b"x" * pad) if pad else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + extra
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def report_form(csrf: str, photos: list[tuple[str, bytes, str]] = (), **fields: str) -> FormData:  # type: ignore[assignment]
    form = FormData()
    values = {"description": "路灯坏了，晚上一片黑", "class": "", "lat": str(INSIDE[0]), "lon": str(INSIDE[1]),
              "place": "", "phone": "13800138000", **fields}
    for name, value in values.items():
        form.add_field(name, value)
    for name, data, content_type in photos:
        form.add_field("photo", data, filename=name, content_type=content_type)
    form.add_field("csrf", csrf)
    return form


async def demo_data(settings: Settings) -> None:
    """The demo booking catalogue and the demo departments, as ``helpline serve`` loads them."""
    db = Database.from_url(settings.database_url)
    try:
        await load_catalogue(db, utcnow(), settings.zone, settings.default_region)
        await load_departments(db)
    finally:
        await db.dispose()


async def close_case(db: Database, number: str) -> None:
    """Take a reported case through the workflow to ``closed``, as the centre and department do."""
    async with db.write() as session:
        now = utcnow()
        await cases.perform(session, number, "register", OPERATOR, now)
        case = await cases.perform(session, number, "dispatch", OPERATOR, now)
        dept = Actor("user:portal-test-department", "department", department=case.department_code)
        await cases.perform(session, number, "accept", dept, now)
        await cases.perform(session, number, "handle", dept, now, note="灯已修好 / the lamp is fixed")
        await cases.perform(session, number, "check", OPERATOR, now, via="site")
        await cases.perform(session, number, "close", OPERATOR, now)


async def finish_booking(db: Database, settings: Settings, booking_id: str) -> None:
    """The follow-up job run after the booked visit: the booking is done and can be rated."""
    async with db.read() as session:
        booking = await session.get(Booking, booking_id)
        assert booking is not None
        ends = booking.ends_at
    await send_surveys(db, ends + timedelta(hours=2), Rules.of(settings))


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.read() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0
