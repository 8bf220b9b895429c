"""Duplicate reports: the same class close by and soon after joins the open case; the dialogue
tells the resident the existing case number."""

from __future__ import annotations

from sqlalchemy import select
from test_cases_support import CELL_B, MON, act, at, get, report, staff, to_dispatched  # noqa: F401

from helpline.cases.duplicates import distance_m
from helpline.cases.models import CaseReport

DEG_25M = 25 / 111_195  # about 25 m of latitude in degrees


def test_distance() -> None:
    assert round(distance_m(29.87, 121.55, 29.87 + DEG_25M, 121.55), 1) == 25.0
    assert 96 < distance_m(29.87, 121.55, 29.87, 121.551) < 97


async def test_a_report_close_by_joins_the_open_case(db, staff) -> None:
    first = await report(db, "C0118", CELL_B, MON)
    second = await report(db, "C0118", CELL_B, at(30, 15), urn="tel:+8613800000002", offset=(DEG_25M, 0))
    third = await report(db, "C0118", CELL_B, at(1, 8, month=12), urn="tel:+8613800000003", offset=(-DEG_25M, 0))
    assert first == second == third
    case = await get(db, first)
    assert case.reports_count == 3
    async with db.read() as session:
        urns = list(await session.scalars(select(CaseReport.urn).where(CaseReport.case_id == case.id)
                                          .order_by(CaseReport.id)))
    assert urns == ["tel:+8613800000001", "tel:+8613800000002", "tel:+8613800000003"]


async def test_what_is_not_a_duplicate(db, staff) -> None:
    first = await report(db, "C0118", CELL_B, MON)
    assert await report(db, "C0117", CELL_B, MON, urn=None) != first  # another class
    assert await report(db, "C0118", CELL_B, MON, urn=None, offset=(3 * DEG_25M, 0)) != first  # 75 m away
    assert await report(db, "C0118", CELL_B, at(1, 9, month=12), urn=None) != first  # more than 24 h later
    done = await report(db, "E0102", CELL_B, MON, urn=None)
    await to_dispatched(db, staff, done, MON)
    await act(db, done, "accept", staff.hw, at(30, 9))
    await act(db, done, "handle", staff.hw, at(30, 9, 30), note="ok")
    await act(db, done, "check", staff.operator, at(30, 10))
    await act(db, done, "close", staff.operator, at(30, 10))
    assert await report(db, "E0102", CELL_B, at(30, 11), urn=None) != done  # a closed case is not joined
    assert (await get(db, first)).reports_count == 1


async def test_the_dialogue_gives_the_existing_case_number(client, db) -> None:
    first = await client.post("/api/v1/messages", json={"from": "web:dupa", "text": "路灯坏了",
                                                        "location": {"lat": 29.8707, "lon": 121.5490}})
    body1 = await first.json()
    second = await client.post("/api/v1/messages", json={"from": "web:dupb", "text": "这里路灯不亮了",
                                                         "location": {"lat": 29.8708, "lon": 121.5490}})
    body2 = await second.json()
    number = body1["case"]["id"]
    assert body2["case"]["id"] == number and body2["case"]["reports"] == 2
    assert "已有居民反映" in body2["reply"]["text"] and number in body2["reply"]["text"]
