"""City data for cases: the taxonomy with limits and departments, a city's own taxonomy and
calendar loaded into the database, departments and routing rules, the schema, and the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from test_cases_support import CELL_A, CELL_B, MON, act, at, report, staff, to_dispatched  # noqa: F401

from helpline.cases.data import (
    CaseDataError,
    calendar,
    import_document,
    read_departments_text,
    suggest_department,
    taxonomy,
)
from helpline.cases.models import Department
from helpline.cases.workflow import InvalidInput
from helpline.models import Base
from helpline.taxonomy import TaxonomyError, TimeLimit, parse_taxonomy, shipped_taxonomy

HEADER = "kind,major_code,major_zh,major_en,minor_code,minor_zh,minor_en,department,limit,area_limits\n"
CITY_TAXONOMY = HEADER + (
    "component,01,市政公用设施,Municipal utilities,18,路灯,Street lamp,LD,1d,\n"
    "event,01,市容环境,City appearance,02,暴露垃圾,Exposed waste,HW,3h,A:1h\n"
)


def test_the_shipped_taxonomy_has_departments_and_limits() -> None:
    classes = shipped_taxonomy()
    assert len(classes) == 128 and all(c.department and c.limit for c in classes.values())
    rubbish = classes["E0102"]
    assert rubbish.department == "HW" and rubbish.limit == TimeLimit(4, "hours")
    assert rubbish.limit_for("A") == TimeLimit(2, "hours") and rubbish.limit_for("C") == TimeLimit(8, "hours")
    assert rubbish.limit_for("B") == TimeLimit(4, "hours")
    assert classes["E0101"].limit == TimeLimit(4, "hours")  # illegal structure: stop within 4 working hours
    assert classes["E0103"].limit == TimeLimit(3, "days")  # accumulated muck: 2-4 working days
    assert str(classes["C0118"].limit) == "2d" and classes["C0118"].limit.describe("en") == "2 working days"
    reference = Path(__file__).parents[1] / "helpline" / "data" / "grid_taxonomy.csv"
    assert reference.read_text(encoding="utf-8").startswith(HEADER.strip())


@pytest.mark.parametrize(("text", "message"), [
    (HEADER + "component,01,a,b,18,c,d,LD,soon,\n", "a time limit looks like"),
    (HEADER + "component,01,a,b,18,c,d,LD,4h,A=2h\n", "area_limits entries look like"),
    (HEADER + "component,01,a,b,18,c,d,LD,,A:2h\n", "need a default limit"),
    (HEADER + "component,01,a,b,18,c,d,L D,4h,\n", "must be a code"),
    (HEADER.replace("area_limits", "colour") + "component,01,a,b,18,c,d,LD,4h,\n", "unknown column"),
    ("kind,major\ncomponent,01\n", "columns must start with"),
    (HEADER, "no classes"),
])
def test_a_malformed_taxonomy_names_the_line(text: str, message: str) -> None:
    with pytest.raises(TaxonomyError, match=message):
        parse_taxonomy(text, "city.csv")


async def test_a_city_loads_its_own_taxonomy(db, staff) -> None:
    async with db.write() as session:
        with pytest.raises(CaseDataError, match="unknown department code"):
            await import_document(session, "taxonomy", "bad.csv", CITY_TAXONOMY.replace(",HW,", ",XX,"), "test")
    async with db.read() as session:
        assert len(await taxonomy(session)) == 128  # nothing was loaded
    async with db.write() as session:
        assert await import_document(session, "taxonomy", "city.csv", CITY_TAXONOMY, "test") == 2
    async with db.read() as session:
        classes = await taxonomy(session)
    assert set(classes) == {"C0118", "E0102"} and classes["C0118"].minor_en == "Street lamp"
    number = await report(db, "E0102", CELL_A, MON)
    case = await to_dispatched(db, staff, number, MON)
    assert case.due_at == at(30, 9, 30)  # the city's 1 h in area A, not the shipped 2 h
    other = await report(db, "E0104", CELL_B, MON, urn=None)  # a class the city's list does not have
    with pytest.raises(InvalidInput, match="not in the taxonomy in force"):
        await act(db, other, "register", staff.operator, MON)
    await act(db, other, "register", staff.operator, MON, class_code="E0102")


async def test_a_city_loads_its_own_calendar(db, staff) -> None:
    city = "hours: ['09:00-17:00']\nweekdays: [mon, tue, wed, thu, fri, sat]\nholidays: [{date: 2026-11-30, name: 城市日}]\n"
    async with db.write() as session:
        with pytest.raises(CaseDataError, match="must look like"):
            await import_document(session, "calendar", "bad.yaml", "hours: ['nine to five']\nweekdays: [mon]", "test")
        assert await import_document(session, "calendar", "city.yaml", city, "test") == 1
    async with db.read() as session:
        cal = await calendar(session)
    assert cal.day_minutes == 480 and not cal.is_working_day(MON.date())
    number = await report(db, "E0102", CELL_B, MON)  # 4 h from Monday, a city holiday
    assert (await to_dispatched(db, staff, number, MON)).due_at == at(1, 13, month=12)


def test_departments_data_is_checked() -> None:
    base = "departments:\n  - {code: HW, name_zh: 环卫, name_en: Sanitation, contact_urn: 'tel:+8657400000001'}\n"
    rows, routes = read_departments_text(base + "routes:\n  - {class: E01, area: '330203002', department: HW}\n", "d.yaml")
    assert rows[0]["code"] == "HW" and routes[0].area_prefix == "330203002"
    for text, message in (
        (base.replace("tel:+8657400000001", "0574-1"), "contact_urn must be an address"),
        (base + "routes:\n  - {class: E01, department: ZZ}\n", "department 'ZZ' is not listed"),
        (base + "routes:\n  - {class: lamps, department: HW}\n", "class must be a code"),
        (base + "routes:\n  - {class: E01, area: '3302', department: HW}\n", "area must be a grid-cell id prefix"),
        (base.replace("name_en: Sanitation, ", ""), "name_en is required"),
        (base + "  - {code: HW, name_zh: a, name_en: b}\n", "must be unique"),
        (base.replace("}", ", forward: {kind: ftp, url: 'ftp://x'}}"), "forward.kind must be one of"),
        ("departments: [\n", "not valid YAML"),
    ):
        with pytest.raises(CaseDataError, match=message):
            read_departments_text(text, "d.yaml")


async def test_routing_prefers_the_most_specific_rule(db, staff) -> None:
    classes = shipped_taxonomy()
    async with db.write() as session:
        assert await suggest_department(session, "E0501", CELL_A, classes) == "RMJD"  # street order in Renmin street
        assert await suggest_department(session, "E0505", CELL_A, classes) == "JT"  # parking: traffic, even there
        assert await suggest_department(session, "E0501", CELL_B, classes) == "ZF"  # elsewhere: the taxonomy's default
        assert await suggest_department(session, "C0118", CELL_B, classes) == "LD"
        (await session.get(Department, "LD")).active = False
        assert await suggest_department(session, "C0118", CELL_B, classes) is None  # inactive: the dispatcher chooses
        assert await suggest_department(session, None, CELL_B, classes) is None


def _schema_diff(url: str) -> list[object]:
    from helpline.db import create_engine

    async def run() -> list[object]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}),
                                                  Base.metadata))
        finally:
            await engine.dispose()

    return asyncio.run(run())


MINE = ("departments", "case_routes", "cases", "case_reports", "case_steps", "open311_keys", "case_documents")


def test_the_migration_matches_the_models(db_url: str) -> None:
    """Migration 0006 was written by hand: autogenerate must find nothing to change in its tables."""
    diff = [d for d in _schema_diff(db_url) if any(f"'{t}'" in repr(d) for t in MINE)]
    assert diff == []


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    return subprocess.run([sys.executable, "-m", "helpline", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_command_line(tmp_path: Path) -> None:
    added = run_cli(["open311", "key", "add", "fixmystreet"], tmp_path)
    assert added.returncode == 0, added.stderr
    key = added.stdout.split("key for fixmystreet: ")[1].split()[0]
    listed = run_cli(["open311", "key", "list"], tmp_path)
    assert "fixmystreet" in listed.stdout and key not in listed.stdout and "active" in listed.stdout
    assert run_cli(["open311", "key", "revoke", "fixmystreet"], tmp_path).returncode == 0
    again = run_cli(["open311", "key", "revoke", "fixmystreet"], tmp_path)
    assert again.returncode == 1 and "revoked already" in again.stderr

    (tmp_path / "bad.csv").write_text(CITY_TAXONOMY.replace("1d", "soon"), encoding="utf-8")
    bad = run_cli(["cases", "import-taxonomy", "bad.csv"], tmp_path)
    assert bad.returncode == 1 and "nothing loaded" in bad.stderr and "bad.csv:2" in bad.stderr
    (tmp_path / "city.csv").write_text(CITY_TAXONOMY, encoding="utf-8")
    good = run_cli(["cases", "import-taxonomy", "city.csv"], tmp_path)
    assert good.returncode == 0 and "2 classes" in good.stdout
    (tmp_path / "cal.yaml").write_text("hours: ['08:00-12:00']\nweekdays: [mon]\n", encoding="utf-8")
    assert run_cli(["cases", "import-calendar", "cal.yaml"], tmp_path).returncode == 0
    shipped = Path(__file__).parents[1] / "helpline" / "data" / "departments.yaml"
    depts = run_cli(["cases", "import-departments", str(shipped)], tmp_path)
    assert depts.returncode == 0 and "12 departments and 2 routes" in depts.stdout
    figures = run_cli(["cases", "figures", "--by", "department"], tmp_path)
    assert figures.returncode == 0 and '"reported": 0' in figures.stdout
    exported = run_cli(["export", "cases", "--format", "csv"], tmp_path)
    assert exported.returncode == 0 and exported.stdout.startswith("id,status,class_code")
