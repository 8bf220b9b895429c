"""The booking JSON API on the running app (real clock), SQLite and PostgreSQL: catalogue, slots,
bookings, clear 4xx answers that write nothing, idempotent double submission, and many
concurrent bookings at one slot finding exactly its capacity."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from test_booking_support import (
    ROUND_THE_CLOCK,
    ZONE,
    count_bookings,
    load,
    next_hour_slot,
    outbox,
    quiet_jobs,
    slot_state,
)

from helpline.app import create_app
from helpline.booking.models import Booking
from helpline.config import Settings
from helpline.db import Database
from helpline.export import export
from helpline.models import Event, utcnow

BODY = {"from": "web:api-test", "service": "plumbing", "name": "张先生", "address": "海曙区石碶街道雅戈尔大道100号",
        "note": "厨房水管漏水"}


@pytest.fixture
async def api(aiohttp_client, settings: Settings, db: Database):  # type: ignore[no-untyped-def]
    await load(db, ROUND_THE_CLOCK, utcnow())
    await quiet_jobs(db, settings)
    return await aiohttp_client(create_app(settings))


async def test_services_list_the_catalogue(api) -> None:  # type: ignore[no-untyped-def]
    resp = await api.get("/api/v1/services?lang=en")
    assert resp.status == 200
    services = await resp.json()
    assert [s["code"] for s in services] == ["electrician", "plumbing", "vet"]  # by category, then code
    plumbing = services[1]
    assert (plumbing["name"], plumbing["category"], plumbing["category_name"]) == ("Plumbing", "repair", "Home repairs")
    assert {p["code"] for p in plumbing["providers"]} == {"pa", "pb"}
    zh = await (await api.get("/api/v1/services", headers={"Accept-Language": "zh-CN"})).json()
    assert zh[1]["name"] == "水管维修疏通"


async def test_slots_of_a_service(api) -> None:  # type: ignore[no-untyped-def]
    resp = await api.get("/api/v1/services/plumbing/slots?days=1")
    assert resp.status == 200
    slots = await resp.json()
    assert slots and set(slots[0]) == {"slot", "start", "end", "capacity", "remaining", "provider"}
    starts = [s["start"] for s in slots]
    assert starts == sorted(starts)
    pa = [s for s in slots if s["provider"]["code"] == "pa"]
    assert pa[0]["capacity"] == 3 and pa[0]["remaining"] == 3 and pa[0]["start"].endswith("+08:00")
    tomorrow = (utcnow().astimezone(ZONE) + timedelta(days=1)).date()
    later = await (await api.get(f"/api/v1/services/plumbing/slots?from={tomorrow}&days=1")).json()
    assert later and all(s["start"].startswith(str(tomorrow)) for s in later)
    assert len({s["slot"] for s in later}) == 48  # two providers, 24 hourly slots each


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/api/v1/services/massage/slots", 404, "unknown service 'massage'"),
        ("/api/v1/services/plumbing/slots?days=0", 400, "'days' must be between 1 and 14"),
        ("/api/v1/services/plumbing/slots?days=x", 400, "'days' must be a whole number"),
        ("/api/v1/services/plumbing/slots?from=yesterday", 400, "'from' must be a date"),
        ("/api/v1/bookings/0123456789abcdef0123456789abcdef", 404, "no booking"),
        ("/api/v1/bookings/B1234567", 404, "32-character"),
    ],
)
async def test_lookups_that_find_nothing_say_so(api, path, status, words) -> None:  # type: ignore[no-untyped-def]
    resp = await api.get(path)
    assert resp.status == status
    assert words in (await resp.json())["error"]


async def test_book_read_and_cancel(api, db: Database) -> None:  # type: ignore[no-untyped-def]
    slot = next_hour_slot("pa", 5)
    resp = await api.post("/api/v1/bookings", json={**BODY, "slot": slot, "phone": "138 0013 8000"})
    assert resp.status == 201, await resp.text()
    booking = await resp.json()
    assert booking["status"] == "confirmed" and booking["slot"] == slot and booking["service"] == "plumbing"
    assert booking["number"].startswith("B") and booking["provider"]["code"] == "pa"
    assert resp.headers["Location"] == f"/api/v1/bookings/{booking['id']}"
    assert await slot_state(db, slot) == (3, 1)
    (confirm,) = await outbox(db, "notice")
    assert confirm.urn == "tel:+8613800138000" and booking["number"] in confirm.body
    (job,) = await outbox(db, "dispatch")
    assert "厨房水管漏水" in job.body and "+8613800138000" in job.body
    got = await (await api.get(f"/api/v1/bookings/{booking['id']}")).json()
    assert got == booking
    cancelled = await api.post(f"/api/v1/bookings/{booking['id']}/cancel", json={"reason": "fixed it myself"})
    assert cancelled.status == 200 and (await cancelled.json())["status"] == "cancelled"
    assert await slot_state(db, slot) == (3, 0)
    again = await api.post(f"/api/v1/bookings/{booking['id']}/cancel")
    assert again.status == 200 and (await again.json())["status"] == "cancelled"
    async with db.read() as s:
        actors = set(await s.scalars(select(Event.actor).where(Event.subject_id == booking["id"])))
    assert actors == {"api:web:api-test"}


async def test_cancelling_after_the_cutoff_is_refused(api, db: Database) -> None:  # type: ignore[no-untyped-def]
    slot = next_hour_slot("pa", 1)  # starts within the hour: the 2-hour cut-off has passed
    booking = await (await api.post("/api/v1/bookings", json={**BODY, "slot": slot})).json()
    resp = await api.post(f"/api/v1/bookings/{booking['id']}/cancel")
    assert resp.status == 409
    body = await resp.json()
    assert "can no longer be cancelled" in body["error"] and body["reason"] == "too_late"
    assert (await (await api.get(f"/api/v1/bookings/{booking['id']}")).json())["status"] == "confirmed"
    assert await slot_state(db, slot) == (3, 1)


async def test_reschedule_by_api(api, db: Database) -> None:  # type: ignore[no-untyped-def]
    first, second = next_hour_slot("pa", 5), next_hour_slot("pb", 7)
    booking = await (await api.post("/api/v1/bookings", json={**BODY, "slot": first})).json()
    resp = await api.post(f"/api/v1/bookings/{booking['id']}/reschedule", json={"slot": second})
    assert resp.status == 200, await resp.text()
    moved = await resp.json()
    assert moved["slot"] == second and moved["provider"]["code"] == "pb"
    assert await slot_state(db, first) == (3, 0) and await slot_state(db, second) == (1, 1)
    missing = await api.post(f"/api/v1/bookings/{booking['id']}/reschedule", json={})
    assert missing.status == 400 and "'slot'" in (await missing.json())["error"]


def _past_slot() -> str:
    yesterday = utcnow().astimezone(ZONE) - timedelta(days=1)
    return f"pa-{yesterday:%Y%m%d}-1000"


def _night_slot() -> str:
    tomorrow = utcnow().astimezone(ZONE) + timedelta(days=1)
    return f"day-{tomorrow:%Y%m%d}-0300"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"from": None}, "missing field 'from'"),
        ({"from": "email:someone"}, "'from' must be"),
        ({"service": None}, "missing field 'service'"),
        ({"service": 7}, "'service' must be a string"),
        ({"slot": None}, "missing field 'slot'"),
        ({"name": "  "}, "'name' is empty"),
        ({"address": "x"}, "'address' is too short"),
        ({"note": "n" * 1001}, "'note' is too long"),
        ({"phone": "call me"}, "'phone' is not a phone number"),
        ({"lang": "fr"}, "'lang' must be"),
        ({"service": "massage"}, "unknown service 'massage'"),
        ({"slot": "pa-2026"}, "no slot 'pa-2026'"),
        ({"slot": "PAST"}, "already begun or is over"),
        ({"slot": "NIGHT", "service": "electrician"}, "outside Day Electricians's working hours"),
        ({"slot": "VET", "service": "plumbing"}, "not a slot of service 'plumbing'"),
    ],
)
async def test_bad_bookings_get_a_clear_400_and_write_nothing(api, db: Database, change, words) -> None:  # type: ignore[no-untyped-def]
    body = {**BODY, "slot": next_hour_slot("pa", 5), **change}
    body["slot"] = {"PAST": _past_slot(), "NIGHT": _night_slot(), "VET": next_hour_slot("vet1", 5)}.get(body["slot"], body["slot"])
    body = {k: v for k, v in body.items() if v is not None}
    resp = await api.post("/api/v1/bookings", json=body)
    assert resp.status == 400, await resp.text()
    assert words in (await resp.json())["error"]
    assert await count_bookings(db) == 0 and await outbox(db) == []


@pytest.mark.parametrize(("data", "headers", "words"), [
    ("not json", {"Content-Type": "application/json"}, "not valid JSON"),
    ("[1, 2]", {"Content-Type": "application/json"}, "must be a JSON object"),
    ("service=plumbing", {"Content-Type": "application/x-www-form-urlencoded"}, "must be JSON"),
])
async def test_a_body_that_is_not_a_json_object_is_a_400(api, data, headers, words) -> None:  # type: ignore[no-untyped-def]
    resp = await api.post("/api/v1/bookings", data=data, headers=headers)
    assert resp.status == 400 and words in (await resp.json())["error"]


async def test_double_submission_of_the_same_form_books_once(api, db: Database) -> None:  # type: ignore[no-untyped-def]
    body = {**BODY, "slot": next_hour_slot("pa", 5)}
    headers = {"Idempotency-Key": "form-7f3a"}
    first, second = await asyncio.gather(
        api.post("/api/v1/bookings", json=body, headers=headers), api.post("/api/v1/bookings", json=body, headers=headers)
    )
    assert (first.status, second.status) == (201, 201)
    a, b = await first.json(), await second.json()
    assert a["id"] == b["id"] and a["number"] == b["number"]
    assert await count_bookings(db) == 1 and await slot_state(db, body["slot"]) == (3, 1)
    assert len(await outbox(db, "dispatch")) == 1
    other = await api.post("/api/v1/bookings", json={**body, "name": "李四"}, headers=headers)
    assert other.status == 422 and "different booking" in (await other.json())["error"]
    assert await count_bookings(db) == 1


async def test_many_concurrent_bookings_fill_a_slot_exactly(api, db: Database) -> None:  # type: ignore[no-untyped-def]
    """20 residents at once for a slot with 3 seats: exactly 3 booked, 17 told it is full (409)."""
    slot = next_hour_slot("pa", 6)
    responses = await asyncio.gather(*(
        api.post("/api/v1/bookings", json={**BODY, "from": f"web:resident{i}", "slot": slot}) for i in range(20)
    ))
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] * 3 + [409] * 17
    errors = {(await r.json())["error"] for r in responses if r.status == 409}
    assert errors == {f"slot {slot!r} is full; choose another slot"}
    assert await slot_state(db, slot) == (3, 3)
    assert await count_bookings(db, Booking.slot_id == slot) == 3
    assert len(await outbox(db, "dispatch")) == 3
    listed = await (await api.get("/api/v1/services/plumbing/slots?days=2")).json()
    assert [s["remaining"] for s in listed if s["slot"] == slot] == [0]


async def test_export_bookings(api, db: Database) -> None:  # type: ignore[no-untyped-def]
    made = [await (await api.post("/api/v1/bookings", json={**BODY, "from": f"web:x{i}", "slot": next_hour_slot("pa", 5 + i)})).json()
            for i in range(2)]
    out = io.StringIO()
    assert await export(db, "bookings", "csv", out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["number"] for r in rows] == [b["number"] for b in made]
    assert rows[0]["service"] == "plumbing" and rows[0]["provider"] == "pa" and rows[0]["status"] == "confirmed"
    out = io.StringIO()
    await export(db, "bookings", "jsonl", out)
    first = json.loads(out.getvalue().splitlines()[0])
    assert first["address"] == BODY["address"] and first["starts_at"].endswith("+00:00")
