"""The console's Cases pages on the real app and both databases: the list and its filters, a case
page with its timeline, photos and map, the action forms each role and state allow, and every
refusal (another department's case, a role that may not act, a missing CSRF token, an illegal
transition) leaving the case as it was."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from browser.console_support import login, page_token, post
from sqlalchemy import func, select, update
from test_cases_support import CELL_A, CELL_B, report, staff  # noqa: F401

from helpline.app import create_app
from helpline.cases.models import Case, CaseStep
from helpline.console.cases_pages import allowed_actions
from helpline.db import Database
from helpline.grid import shipped_grid
from helpline.models import User, utcnow

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 500
RESIDENT = "tel:+8613800000001"


@pytest.fixture
async def app_client(aiohttp_client, settings, staff):  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(settings))


async def case_of(db: Database, number: str) -> Case:
    async with db.read() as session:
        case = await session.get(Case, int(number) - 100000)
        assert case is not None
        return case


async def step_count(db: Database, number: str) -> int:
    async with db.read() as session:
        return await session.scalar(
            select(func.count()).select_from(CaseStep).where(CaseStep.case_id == int(number) - 100000)
        ) or 0


async def act(client: TestClient, number: str, action: str, data: dict[str, str] | None = None) -> Any:
    token = await page_token(client, f"/console/cases/{number}")
    return await post(client, f"/console/cases/{number}/{action}", data or {}, token=token)


def forms_on(html: str, number: str) -> set[str]:
    return set(re.findall(rf'action="/console/cases/{number}/([a-z_]+)"', html))


async def dispatched_case(client: TestClient, db: Database, text: str = "路灯不亮了") -> str:
    """A street-light case (class C0118, routed to LD) registered and dispatched by op1 through the forms."""
    number = await report(db, "C0118", CELL_B, utcnow(), urn=RESIDENT, text=text)
    await login(client, "op1")
    for action in ("register", "dispatch"):
        resp = await act(client, number, action, {"note": ""})
        assert resp.status == 303, await resp.text()
    assert (await case_of(db, number)).status == "dispatched"
    return number


# -- the list ---------------------------------------------------------------------------------


async def test_the_list_filters_by_status_class_department_cell_and_light(app_client: TestClient, db: Database) -> None:
    lamp = await dispatched_case(app_client, db)
    other = await report(db, "C0101", CELL_A, utcnow(), text="井盖缺失")

    async def listed(query: str = "") -> set[str]:
        resp = await app_client.get(f"/console/cases{query}")
        assert resp.status == 200, await resp.text()
        return set(re.findall(r'href="/console/cases/(\d+)"', await resp.text()))

    assert await listed() == {lamp, other}
    assert await listed("?status=dispatched") == {lamp}
    assert await listed("?status=reported") == {other}
    assert await listed("?class=C0118") == {lamp}
    assert await listed("?class=C01") == {lamp, other}
    assert await listed("?department=LD") == {lamp}
    assert await listed("?department=HW") == set()
    assert await listed(f"?cell={CELL_A}") == {other}
    assert await listed(f"?cell={CELL_B[:12]}") == {lamp}
    assert await listed("?light=green") == {lamp}
    assert await listed("?light=red") == set()
    async with db.write() as session:  # the clock ran out
        await session.execute(update(Case).where(Case.id == int(lamp) - 100000)
                              .values(due_at=utcnow() - timedelta(minutes=1), warn_at=utcnow() - timedelta(hours=1)))
    assert await listed("?light=red") == {lamp}
    assert await listed("?light=green") == set()
    page = await (await app_client.get("/console/cases?light=red")).text()
    assert "红灯·已超时" in page and "城管案件" in page
    english = await (await app_client.get("/console/cases?lang=en")).text()
    assert "Dispatched" in english and "Any department" in english and "城管案件" not in english


async def test_the_list_pages(app_client: TestClient, db: Database) -> None:
    cells = [c.id for c in shipped_grid().cells]
    numbers = [await report(db, "C0118" if i % 2 else "C0101", cells[i], utcnow()) for i in range(32)]
    await login(app_client, "op1")
    first = await (await app_client.get("/console/cases")).text()
    second = await (await app_client.get("/console/cases?page=2")).text()
    on_first = set(re.findall(r'href="/console/cases/(\d+)"', first))
    on_second = set(re.findall(r'href="/console/cases/(\d+)"', second))
    assert len(on_first) == 30 and len(on_second) == 2 and on_first | on_second == set(numbers)
    assert "page=2" in first and "上一页" not in first and "上一页" in second and "下一页" not in second


# -- department isolation ---------------------------------------------------------------------


async def test_a_department_sees_and_acts_on_its_own_cases_only(app_client: TestClient, db: Database,
                                                               settings: Any) -> None:
    number = await dispatched_case(app_client, db)
    await login(app_client, "ld1")  # street lighting: this case's department
    assert number in await (await app_client.get("/console/cases")).text()
    assert (await act(app_client, number, "accept")).status == 303
    form = FormData()
    form.add_field("_csrf", await page_token(app_client, f"/console/cases/{number}"))
    form.add_field("note", "更换了灯具")
    form.add_field("photo", JPEG, filename="after.jpg", content_type="image/jpeg")
    resp = await app_client.post(f"/console/cases/{number}/handle", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    case = await case_of(db, number)
    assert case.status == "handled"
    async with db.read() as session:
        photo = (await session.scalars(select(CaseStep).where(CaseStep.action == "handle"))).one().photos[0]
    mine = await app_client.get(f"/console/cases/{number}/photo", params={"path": photo})
    assert mine.status == 200 and mine.headers["Content-Type"] == "image/jpeg" and await mine.read() == JPEG

    await login(app_client, "hw1")  # sanitation: another department
    listing = await (await app_client.get("/console/cases")).text()
    assert number not in listing and "没有符合条件的案件" in listing
    assert (await app_client.get("/console/cases?department=LD")).status == 403
    assert (await app_client.get(f"/console/cases/{number}")).status == 403
    assert (await app_client.get(f"/console/cases/{number}/photo", params={"path": photo})).status == 403
    steps = await step_count(db, number)
    for action in ("accept", "handle", "return", "check"):
        resp = await post(app_client, f"/console/cases/{number}/{action}", {"note": "不是我们的"},
                          token_page="/console/cases")
        assert resp.status == 403, action
    assert (await case_of(db, number)).status == "handled" and await step_count(db, number) == steps

    await login(app_client, "op1")  # the centre sees every photo; but only the case's own
    assert (await app_client.get(f"/console/cases/{number}/photo", params={"path": photo})).status == 200
    assert (await app_client.get(f"/console/cases/{number}/photo",
                                 params={"path": "media/cases/../../secret"})).status == 404
    other = await report(db, "C0101", CELL_A, utcnow())
    assert (await app_client.get(f"/console/cases/{other}/photo", params={"path": photo})).status == 404
    assert (await app_client.get("/console/cases/999999")).status == 404


# -- the forms each role and state allow ------------------------------------------------------


async def test_each_role_gets_only_the_forms_the_workflow_allows(app_client: TestClient, db: Database) -> None:
    number = await report(db, "C0118", CELL_B, utcnow(), urn=RESIDENT)
    await login(app_client, "op1")
    html = await (await app_client.get(f"/console/cases/{number}")).text()
    assert forms_on(html, number) == {"register", "void"}
    await act(app_client, number, "register")
    assert forms_on(await (await app_client.get(f"/console/cases/{number}")).text(), number) == {"dispatch", "void"}
    await login(app_client, "sup1")
    html = await (await app_client.get(f"/console/cases/{number}")).text()
    assert forms_on(html, number) == {"dispatch", "void", "suspend"}
    await act(app_client, number, "dispatch")
    await login(app_client, "ld1")
    html = await (await app_client.get(f"/console/cases/{number}")).text()
    assert forms_on(html, number) == {"accept", "return", "request_extension"}
    await act(app_client, number, "request_extension", {"amount": "2", "unit": "days", "note": "需要更换电缆"})
    html = await (await app_client.get(f"/console/cases/{number}")).text()
    assert forms_on(html, number) == {"accept", "return"}  # one request at a time
    await login(app_client, "sup1")
    html = await (await app_client.get(f"/console/cases/{number}")).text()
    assert {"approve_extension", "reject_extension", "suspend"} <= forms_on(html, number)
    assert "需要更换电缆" in html
    await login(app_client, "op1")
    html = await (await app_client.get(f"/console/cases/{number}")).text()
    assert forms_on(html, number) == set()  # the centre waits for the department
    assert "没有可办理的操作" in html
    async with db.read() as session:
        admin = User(username="adm", role="admin", password_hash="x", active=True)
        case = await session.get(Case, int(number) - 100000)
        assert case is not None
        assert allowed_actions(case, admin) == []  # an administrator does not work cases


async def test_role_rules_are_enforced_on_post_and_nothing_changes(app_client: TestClient, db: Database) -> None:
    number = await dispatched_case(app_client, db)
    steps = await step_count(db, number)
    # op1 is signed in: an operator may not suspend, decide extensions or reopen (supervisors do)
    for action, data in (("suspend", {"note": "等待"}), ("approve_extension", {}), ("reopen", {}),
                         ("accept", {}), ("handle", {"note": "x"})):
        resp = await act(app_client, number, action, data)
        assert resp.status == 403, (action, await resp.text())
        assert "may not" in await resp.text()
    # there is no delete: an unknown action is refused with its reason, and nothing changes
    resp = await act(app_client, number, "delete")
    assert resp.status == 303
    page = await (await app_client.get(resp.headers["Location"])).text()
    assert "unknown action &#39;delete&#39;" in page or "unknown action 'delete'" in page
    await login(app_client, "ld1")  # a department may not close or dispatch
    for action, data in (("close", {"note": "x"}), ("dispatch", {}), ("void", {"reason": "invalid", "note": "x"}),
                         ("register", {})):
        assert (await act(app_client, number, action, data)).status == 403, action
    case = await case_of(db, number)
    assert case.status == "dispatched" and await step_count(db, number) == steps


async def test_a_post_without_csrf_is_refused(app_client: TestClient, db: Database) -> None:
    number = await report(db, "C0118", CELL_B, utcnow())
    await login(app_client, "op1")
    resp = await app_client.post(f"/console/cases/{number}/register", data={"note": "x"}, allow_redirects=False)
    assert resp.status == 403
    wrong = await app_client.post(f"/console/cases/{number}/register", data={"note": "x", "_csrf": "forged"},
                                  allow_redirects=False)
    assert wrong.status == 403
    assert (await case_of(db, number)).status == "reported" and await step_count(db, number) == 1


async def test_an_illegal_transition_says_why_and_changes_nothing(app_client: TestClient, db: Database) -> None:
    number = await dispatched_case(app_client, db)
    steps = await step_count(db, number)
    resp = await act(app_client, number, "close", {"note": "先结了"})
    assert resp.status == 303 and resp.headers["Location"] == f"/console/cases/{number}"
    page = await (await app_client.get(resp.headers["Location"])).text()
    assert "未能结案" in page and "close needs &#39;checked&#39;" in page
    assert (await case_of(db, number)).status == "dispatched" and await step_count(db, number) == steps
    # a required note missing: the action's own rule, in the same way
    await login(app_client, "ld1")
    resp = await act(app_client, number, "return", {"note": "  "})
    page = await (await app_client.get(resp.headers["Location"])).text()
    assert "return needs a note" in page
    assert (await case_of(db, number)).status == "dispatched" and await step_count(db, number) == steps
    # a bad photo is refused and not kept
    await act(app_client, number, "accept")
    form = FormData()
    form.add_field("_csrf", await page_token(app_client, f"/console/cases/{number}"))
    form.add_field("note", "修好了")
    form.add_field("photo", b"not a photo", filename="x.jpg", content_type="image/jpeg")
    resp = await app_client.post(f"/console/cases/{number}/handle", data=form, allow_redirects=False)
    page = await (await app_client.get(resp.headers["Location"])).text()
    assert "JPEG, PNG or WebP" in page and (await case_of(db, number)).status == "in_progress"


# -- the whole way, and what each role is shown -----------------------------------------------


async def test_the_case_page_shows_timeline_photos_map_and_masks_phones(app_client: TestClient, db: Database) -> None:
    number = await dispatched_case(app_client, db, text="路灯坏了，电话13800000001")
    await login(app_client, "ld1")
    await act(app_client, number, "accept", {"note": "已签收"})
    form = FormData()
    form.add_field("_csrf", await page_token(app_client, f"/console/cases/{number}"))
    form.add_field("note", "更换了灯具")
    form.add_field("photo", b"", filename="", content_type="application/octet-stream")  # no file chosen
    resp = await app_client.post(f"/console/cases/{number}/handle", data=form, allow_redirects=False)
    assert resp.status == 303 and (await case_of(db, number)).status == "handled", await resp.text()
    dept_page = await (await app_client.get(f"/console/cases/{number}")).text()
    assert "13800000001" not in dept_page and "138****0001" in dept_page  # masked for a department
    await login(app_client, "op1")
    for action, data in (("check", {"via": "site", "note": "现场核查合格"}), ("close", {"note": ""})):
        resp = await act(app_client, number, action, data)
        page = await (await app_client.get(resp.headers["Location"])).text()
        assert "flash ok" in page, page
    case = await case_of(db, number)
    assert case.status == "closed" and case.closed_on_time is True
    html = await (await app_client.get(f"/console/cases/{number}")).text()
    assert "+8613800000001" in html  # an operator calls residents back
    for words in ("立案", "派遣", "签收", "处置反馈", "核查通过", "结案", "更换了灯具", "现场核查合格", "已结案",
                  "路灯", "<svg class=\"map\"", "class=\"pin\""):
        assert words in html, words
    assert forms_on(html, number) == set()
    await login(app_client, "sup1")
    html = await (await app_client.get(f"/console/cases/{number}?lang=en")).text()
    assert forms_on(html, number) == {"reopen"} and "Timeline" in html and "Closed" in html
