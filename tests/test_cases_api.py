"""The staff's case API under /console/api/cases: signed in through the console's real form, CSRF
on every POST, roles and departments enforced, photos uploaded, figures served; both databases."""

from __future__ import annotations

import pytest
from aiohttp import FormData
from browser.console_support import login, page_token
from test_cases_support import CELL_B, report, staff  # noqa: F401

from helpline.app import create_app
from helpline.cases.models import Case
from helpline.models import utcnow

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 500


@pytest.fixture
async def api(aiohttp_client, settings, staff):  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(settings))


async def as_user(client, username: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    await login(client, username)
    return {"X-CSRF-Token": await page_token(client, "/console/kb")}


async def test_the_api_needs_a_signed_in_user_and_a_csrf_token(api, db) -> None:
    number = await report(db, "C0118", CELL_B, utcnow())
    assert (await api.get("/console/api/cases")).status == 401
    assert (await api.get(f"/console/api/cases/{number}")).status == 401
    headers = await as_user(api, "op1")
    refused = await api.post(f"/console/api/cases/{number}/register", json={})
    assert refused.status == 403
    ok = await api.post(f"/console/api/cases/{number}/register", json={}, headers=headers)
    assert ok.status == 200 and (await ok.json())["status"] == "registered"


async def test_dispatcher_and_department_work_a_case_through_the_api(api, db, settings) -> None:
    number = await report(db, "C0118", CELL_B, utcnow(), text="路灯坏了")
    headers = await as_user(api, "op1")
    listing = await (await api.get("/console/api/cases?status=reported")).json()
    assert [c["id"] for c in listing["cases"]] == [number] and listing["cases"][0]["class"]["minor"] == "路灯"
    for action, body in (("register", {"note": "核实属实"}), ("dispatch", {})):
        resp = await api.post(f"/console/api/cases/{number}/{action}", json=body, headers=headers)
        assert resp.status == 200, await resp.text()
    view = await resp.json()
    assert view["status"] == "dispatched" and view["department"]["code"] == "LD" and view["light"] == "green"
    conflict = await api.post(f"/console/api/cases/{number}/close", json={}, headers=headers)
    assert conflict.status == 409 and "close needs 'checked'" in (await conflict.json())["error"]

    headers = await as_user(api, "hw1")  # sanitation: not this case's department
    assert (await api.get(f"/console/api/cases/{number}")).status == 403
    other = await api.post(f"/console/api/cases/{number}/accept", json={}, headers=headers)
    assert other.status == 403 and "department HW cannot act" in (await other.json())["error"]
    assert (await (await api.get("/console/api/cases")).json())["cases"] == []
    assert (await api.get("/console/api/cases?department=LD")).status == 403

    headers = await as_user(api, "ld1")
    assert (await api.post(f"/console/api/cases/{number}/accept", json={}, headers=headers)).status == 200
    bad = FormData()
    bad.add_field("note", "修好了")
    bad.add_field("photo", b"not a photo", filename="x.jpg", content_type="image/jpeg")
    refused = await api.post(f"/console/api/cases/{number}/handle", data=bad, headers=headers)
    assert refused.status == 400 and "JPEG, PNG or WebP" in (await refused.json())["error"]
    form = FormData()
    form.add_field("note", "更换了灯具")
    form.add_field("photo", JPEG, filename="after.jpg", content_type="image/jpeg")
    done = await api.post(f"/console/api/cases/{number}/handle", data=form, headers=headers)
    assert done.status == 200, await done.text()
    detail = await (await api.get(f"/console/api/cases/{number}")).json()
    handle = detail["timeline"][-1]
    assert handle["action"] == "handle" and handle["note"] == "更换了灯具" and len(handle["photos"]) == 1
    assert (settings.var_dir / handle["photos"][0]).read_bytes() == JPEG
    assert detail["reporters"][0]["address"].startswith("tel:+86") and "****" in detail["reporters"][0]["address"]
    assert len(list((settings.var_dir / "media" / "cases").iterdir())) == 1  # the refused photo was not kept


async def test_bad_parameters_are_400_and_unknown_cases_404(api, db) -> None:
    number = await report(db, "C0118", CELL_B, utcnow())
    headers = await as_user(api, "op1")
    resp = await api.post(f"/console/api/cases/{number}/void", json={"reason": "bored"}, headers=headers)
    assert resp.status == 400 and "void needs reason" in (await resp.json())["error"]
    resp = await api.post(f"/console/api/cases/{number}/register", data=b"{oops", headers={**headers,
                          "Content-Type": "application/json"})
    assert resp.status == 400 and "not valid JSON" in (await resp.json())["error"]
    assert (await api.get("/console/api/cases/999999")).status == 404
    assert (await api.post("/console/api/cases/999999/register", json={}, headers=headers)).status == 404
    assert (await api.get("/console/api/cases?status=lost")).status == 400
    async with db.read() as session:
        assert (await session.get(Case, int(number) - 100000)).status == "reported"


async def test_figures_for_the_console(api, db) -> None:
    await report(db, "C0118", CELL_B, utcnow())
    await as_user(api, "op1")
    data = await (await api.get("/console/api/cases/figures?by=department")).json()
    assert data["total"]["reported"] == 1 and data["by"] == "department"
    assert (await api.get("/console/api/cases/figures?by=colour")).status == 400
    assert (await api.get("/console/api/cases/figures?from=yesterday")).status == 400
    await as_user(api, "hw1")
    mine = await (await api.get("/console/api/cases/figures")).json()
    assert mine["department"] == "HW" and mine["total"]["reported"] == 0
    assert (await api.get("/console/api/cases/figures?department=LD")).status == 403
    page = await api.get("/console/dashboard")
    html = await page.text()
    assert page.status == 200 and "数字城管指标" in html
    # Pictures, not only the table: the timers of cases in hand, drawn as bars.
    assert 'aria-label="办理中案件的计时灯"' in html and "绿灯 正常" in html and "满意度(均分)" in html
