"""The centre's figures computed on a known set of seven cases, overall and grouped, and the
``cases`` export; on both databases."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest
from test_cases_support import CELL_A, CELL_B, CELL_C, MON, act, at, get, report, staff  # noqa: F401

from helpline.cases.export import CASE_FIELDS
from helpline.cases.figures import figures
from helpline.cases.workflow import Actor
from helpline.contacts import contacts_for
from helpline.export import export

NOV = (at(1, 0), at(1, 0, month=12))


async def known_cases(db, staff) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A: on time, closed, rated 5. B: handled late, closed late, rated 3. C: reworked, then on time.
    D: sent to the wrong department, returned, re-dispatched. E: voided. F: only reported.
    G: handled on time, checked, not closed."""
    n: dict[str, str] = {}
    n["A"] = await report(db, "C0118", CELL_B, MON, urn="tel:+8613800000011")
    await act(db, n["A"], "register", staff.operator, MON)
    await act(db, n["A"], "dispatch", staff.operator, MON)
    await act(db, n["A"], "accept", staff.ld, at(30, 9))
    await act(db, n["A"], "handle", staff.ld, at(30, 10), note="ok")
    await act(db, n["A"], "check", staff.operator, at(30, 16))
    await act(db, n["A"], "close", staff.operator, at(30, 16, 30))

    n["B"] = await report(db, "E0102", CELL_A, MON, urn="tel:+8613800000012")  # area A: 2 h, due 10:30
    await act(db, n["B"], "register", staff.operator, MON)
    await act(db, n["B"], "dispatch", staff.operator, MON)
    await act(db, n["B"], "accept", staff.hw, at(30, 9))
    await act(db, n["B"], "handle", staff.hw, at(30, 11), note="late")
    await act(db, n["B"], "check", staff.operator, at(30, 12))
    await act(db, n["B"], "close", staff.operator, at(1, 10, 30, month=12))

    n["C"] = await report(db, "E0102", CELL_C, at(30, 9), urn=None)  # area C: 8 h
    await act(db, n["C"], "register", staff.operator, at(30, 9))
    await act(db, n["C"], "dispatch", staff.operator, at(30, 9))
    await act(db, n["C"], "accept", staff.hw, at(30, 9, 30))
    await act(db, n["C"], "handle", staff.hw, at(30, 10), note="first")
    await act(db, n["C"], "rework", staff.operator, at(30, 11), note="not clean")
    await act(db, n["C"], "accept", staff.hw, at(30, 11, 30))
    await act(db, n["C"], "handle", staff.hw, at(30, 14), note="second")
    await act(db, n["C"], "check", staff.operator, at(30, 15))
    await act(db, n["C"], "close", staff.operator, at(30, 17))

    n["D"] = await report(db, "C0118", CELL_C, MON, urn=None)
    await act(db, n["D"], "register", staff.operator, MON)
    await act(db, n["D"], "dispatch", staff.operator, MON, department="SZ")
    await act(db, n["D"], "return", staff.sz, at(30, 9), note="not ours")
    await act(db, n["D"], "dispatch", staff.operator, at(30, 9, 30), department="LD")

    n["E"] = await report(db, "C0118", CELL_A, MON, urn=None)
    await act(db, n["E"], "void", staff.operator, MON, reason="invalid", note="test message")

    n["F"] = await report(db, "E0104", CELL_B, MON, urn=None)

    n["G"] = await report(db, "E0104", CELL_A, MON, urn=None)  # dirty road, area A: 2 h
    await act(db, n["G"], "register", staff.operator, MON)
    await act(db, n["G"], "dispatch", staff.operator, MON)
    await act(db, n["G"], "accept", staff.hw, at(30, 9))
    await act(db, n["G"], "handle", staff.hw, at(30, 10), note="swept")
    await act(db, n["G"], "check", staff.operator, at(30, 10, 30))

    async with db.write() as session:
        contacts = await contacts_for(session, ["tel:+8613800000011", "tel:+8613800000012"])
    await act(db, n["A"], "rate", Actor.reporter(contacts["tel:+8613800000011"].id), at(30, 17), rating=5)
    await act(db, n["B"], "rate", Actor.reporter(contacts["tel:+8613800000012"].id), at(1, 11, month=12), rating=3)
    return n


async def test_the_figures_of_a_known_set_of_cases(db, staff) -> None:
    n = await known_cases(db, staff)
    assert (await get(db, n["C"])).rework_count == 1 and (await get(db, n["D"])).return_count == 1
    async with db.read() as session:
        data = await figures(session, *NOV)
    assert data["total"] == {
        "reported": 7, "voided": 1, "dispatched": 5,
        "dispatch_accuracy": 0.6,  # (5 - C reworked - D returned) / 5
        "handled": 4, "handled_on_time": 3, "on_time_handling_rate": 0.75,  # A, C, G of A, B, C, G
        "closed": 3, "closed_on_time": 2, "closure_rate": 0.6, "on_time_closure_rate": 0.4,
        "reworked": 1, "rework_rate": 0.2, "returned": 1, "reopened": 0,
        "avg_hours_to_close": 14.0, "median_hours_to_close": 8.0,  # A 8 h, B 26 h, C 8 h
        "rated": 2, "avg_rating": 4.0, "satisfied_rate": 0.5,
    }
    assert data["groups"] == [] and data["by"] is None


async def test_the_figures_by_department_class_and_period(db, staff) -> None:
    await known_cases(db, staff)
    async with db.read() as session:
        by_dept = await figures(session, *NOV, by="department")
        by_class = await figures(session, *NOV, by="class")
        by_major = await figures(session, *NOV, by="major")
        by_day = await figures(session, *NOV, by="period", period="day")
        hw_only = await figures(session, *NOV, department="HW")
        december = await figures(session, at(1, 0, month=12), at(1, 0, month=12).replace(month=12, day=31))
    depts = {g["key"]: g for g in by_dept["groups"]}
    assert set(depts) == {"-", "HW", "LD"}
    assert depts["LD"]["name"] == "区路灯管理所" and depts["LD"]["dispatched"] == 2 and depts["LD"]["dispatch_accuracy"] == 0.5
    assert depts["HW"]["dispatched"] == 3 and depts["HW"]["dispatch_accuracy"] == 0.6667
    assert depts["HW"]["on_time_handling_rate"] == 0.6667 and depts["HW"]["closure_rate"] == 0.6667
    assert depts["-"]["reported"] == 2 and depts["-"]["dispatch_accuracy"] is None  # E (voided) and F
    classes = {g["key"]: (g["name"], g["reported"]) for g in by_class["groups"]}
    assert classes == {"C0118": ("路灯", 3), "E0102": ("暴露垃圾", 2), "E0104": ("道路不洁", 2)}
    assert {g["key"]: g["reported"] for g in by_major["groups"]} == {"C01": 3, "E01": 4}
    assert [(g["key"], g["reported"]) for g in by_day["groups"]] == [("2026-11-30", 7)]
    assert hw_only["total"]["reported"] == 3 and hw_only["department"] == "HW"
    assert december["total"]["reported"] == 0 and december["total"]["closure_rate"] is None


async def test_bad_figure_requests_are_refused(db) -> None:
    async with db.read() as session:
        for kwargs, message in (({"by": "colour"}, "by must be one of"), ({"period": "year"}, "period must be"),):
            with pytest.raises(ValueError, match=message):
                await figures(session, *NOV, **kwargs)
        with pytest.raises(ValueError, match="after its start"):
            await figures(session, NOV[1], NOV[0])


async def test_export_cases_as_csv_and_json_lines(db, staff) -> None:
    n = await known_cases(db, staff)
    out = io.StringIO()
    assert await export(db, "cases", "csv", out) == 7
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == CASE_FIELDS and [r["id"] for r in rows] == [n[k] for k in "ABCDEFG"]
    a = rows[0]
    assert a["status"] == "closed" and a["department_code"] == "LD" and a["rating"] == "5" and a["handled_on_time"] == "True"
    assert datetime.fromisoformat(a["closed_at"]) == at(30, 16, 30)
    out = io.StringIO()
    await export(db, "cases", "jsonl", out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[4]["void_reason"] == "invalid" and lines[3]["return_count"] == 1
    assert "tel:" not in out.getvalue()  # no reporters' addresses
