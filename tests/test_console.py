"""The console's door: sign-in, sessions, lock-out, CSRF, and every permission rule, on the real
app and both databases."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import unquote

import pytest
from aiohttp import WSServerHandshakeError, web
from aiohttp.test_utils import TestClient
from browser.console_support import PASSWORD, csrf_of, login, make_user, page_token, post, resident_says
from sqlalchemy import select, update

from helpline.app import create_app
from helpline.config import Settings
from helpline.console import check_department, department_scope, register_page
from helpline.console.auth import LOCK_FOR, MAX_FAILURES, PERMISSIONS, can
from helpline.console.sessions import ABSOLUTE_S, COOKIE, IDLE_S, ConsoleSession, SessionCodec
from helpline.db import Database
from helpline.models import Event, User, utcnow
from knowledge.models import Article


async def events(db: Database, action: str) -> list[Event]:
    async with db.read() as session:
        return list(await session.scalars(select(Event).where(Event.action == action).order_by(Event.id)))


# -- signing in and out -------------------------------------------------------------------


async def test_pages_need_a_signed_in_user(client: TestClient) -> None:
    resp = await client.get("/console/queue", allow_redirects=False)
    assert resp.status == 303
    assert unquote(resp.headers["Location"]) == "/console/login?next=/console/queue"
    fragment = await client.get("/console/queue/items?fragment=1", allow_redirects=False)
    assert fragment.status == 401
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/console/ws")
    assert refused.value.status == 401


async def test_sign_in_sets_a_safe_cookie_and_is_audited(client: TestClient, db: Database) -> None:
    uid = await make_user(db, "lihua", "operator")
    resp = await login(client, "lihua")
    assert resp.headers["Location"] == "/console/"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("HttpOnly", "Path=/console", "SameSite=Lax"):
        assert flag in cookie
    assert "Secure" not in cookie  # the public URL is http here
    home = await client.get("/console/", allow_redirects=False)
    assert home.headers["Location"] == "/console/queue"
    page = await client.get("/console/queue")
    assert page.status == 200
    html = await page.text()
    assert "lihua" in html and "接待队列" in html
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert page.headers["Cache-Control"] == "no-store"
    [event] = await events(db, "auth.login")
    assert (event.actor, event.subject_id) == (f"user:{uid}", str(uid))


async def test_secure_cookie_when_served_over_https(aiohttp_client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    client = await aiohttp_client(create_app(dataclasses.replace(settings, public_url="https://line.example.org")))
    resp = await client.get("/console/login")
    assert "Secure" in resp.headers["Set-Cookie"]


async def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(client: TestClient, db: Database) -> None:
    await make_user(db, "lihua", "operator")
    page = await client.get("/console/login?next=%2Fconsole%2Fkb%3Fq%3D1")
    token = csrf_of(await page.text())
    resp = await client.post(
        "/console/login",
        data={"username": "lihua", "password": PASSWORD, "_csrf": token, "next": "/console/kb?q=1"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/console/kb?q=1"
    await post(client, "/console/logout")
    page = await client.get("/console/login")
    token = csrf_of(await page.text())
    resp = await client.post(
        "/console/login",
        data={"username": "lihua", "password": PASSWORD, "_csrf": token, "next": "//evil.example/console/"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/console/"


async def test_sign_out_ends_the_session_even_for_a_copied_cookie(
    client: TestClient,
    aiohttp_client,
    settings: Settings,
    db: Database,  # type: ignore[no-untyped-def]
) -> None:
    await make_user(db, "lihua", "operator")
    await login(client, "lihua")
    stolen = client.session.cookie_jar.filter_cookies(client.make_url("/console/"))[COOKIE].value
    resp = await post(client, "/console/logout")
    assert resp.headers["Location"] == "/console/login"
    assert len(await events(db, "auth.logout")) == 1
    assert (await client.get("/console/queue", allow_redirects=False)).status == 303
    # Someone who copied the cookie before the sign-out gets nothing either.
    other = await aiohttp_client(create_app(settings))
    other.session.cookie_jar.update_cookies({COOKIE: stolen}, other.make_url("/console/"))
    assert (await other.get("/console/queue", allow_redirects=False)).status == 303


async def test_wrong_password_and_unknown_user_are_refused_alike(client: TestClient, db: Database) -> None:
    await make_user(db, "lihua", "operator")
    wrong = await login(client, "lihua", "not-the-password", expect=401)
    unknown = await login(client, "nobody", PASSWORD, expect=401)
    assert "用户名或密码不正确" in await wrong.text()
    assert "用户名或密码不正确" in await unknown.text()
    failed = await events(db, "auth.login_failed")
    assert [e.data["reason"] for e in failed] == ["password", "unknown"]
    assert (await client.get("/console/queue", allow_redirects=False)).status == 303


async def test_five_failures_lock_the_account_for_fifteen_minutes(client: TestClient, db: Database) -> None:
    uid = await make_user(db, "lihua", "operator")
    for _ in range(MAX_FAILURES):
        await login(client, "lihua", "guess-guess", expect=401)
    async with db.read() as session:
        user = await session.get(User, uid)
        assert user is not None and user.locked_until is not None
        assert timedelta(minutes=14) < user.locked_until - utcnow() <= LOCK_FOR
    refused = await login(client, "lihua", PASSWORD, expect=401)  # the right password, but locked
    assert "锁定" in await refused.text()
    assert len(await events(db, "auth.locked")) == 1
    assert len(await events(db, "auth.login_refused")) == 1
    assert (await client.get("/console/queue", allow_redirects=False)).status == 303
    # When the lock has run out, the right password works and the count starts again.
    async with db.write() as session:
        await session.execute(update(User).where(User.id == uid).values(locked_until=utcnow() - timedelta(seconds=1)))
    await login(client, "lihua")
    async with db.read() as session:
        user = await session.get(User, uid)
        assert user is not None and (user.failed_logins, user.locked_until) == (0, None)


async def test_a_deactivated_account_cannot_sign_in_and_its_sessions_end(
    client: TestClient,
    aiohttp_client,
    settings: Settings,
    db: Database,  # type: ignore[no-untyped-def]
) -> None:
    uid = await make_user(db, "lihua", "operator")
    await make_user(db, "root", "admin")
    await login(client, "lihua")
    admin = await aiohttp_client(create_app(settings))
    await login(admin, "root")
    resp = await post(admin, f"/console/users/{uid}/deactivate")
    assert resp.status == 303
    assert (await client.get("/console/queue", allow_redirects=False)).status == 303
    await login(client, "lihua", expect=401)
    [event] = await events(db, "user.deactivated")
    assert event.subject_id == str(uid)


# -- CSRF and origin ----------------------------------------------------------------------


async def test_a_form_without_its_csrf_token_is_refused(client: TestClient, db: Database) -> None:
    await make_user(db, "lihua", "operator")
    await login(client, "lihua")
    handled = await resident_says(client, "转人工")
    path = f"/console/queue/{handled.conversation_id}/claim"
    for data in ({}, {"_csrf": "forged"}):
        resp = await client.post(path, data=data, allow_redirects=False, headers={"Accept": "text/html"})
        assert resp.status == 403
        assert "表单已过期" in await resp.text()  # a readable page, not a stack trace
    assert await events(db, "conversation.claimed") == []
    token = await page_token(client)
    cross = await client.post(
        path, data={"_csrf": token}, allow_redirects=False, headers={"Origin": "https://evil.example"}
    )
    assert cross.status == 403
    ok = await client.post(path, data={"_csrf": token}, allow_redirects=False)
    assert ok.status == 303


async def test_the_sign_in_form_needs_its_token_too(client: TestClient, db: Database) -> None:
    await make_user(db, "lihua", "operator")
    resp = await client.post("/console/login", data={"username": "lihua", "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 403
    assert await events(db, "auth.login") == []


async def test_the_token_changes_at_sign_in(client: TestClient, db: Database) -> None:
    await make_user(db, "lihua", "operator")
    before = csrf_of(await (await client.get("/console/login")).text())
    await login(client, "lihua")
    after = await page_token(client)
    assert before != after
    resp = await client.post("/console/logout", data={"_csrf": before}, allow_redirects=False)
    assert resp.status == 403


def test_session_cookie_is_signed_and_expires() -> None:
    codec = SessionCodec("a-secret-key-for-tests-only")
    session = ConsoleSession.fresh("en")
    session.uid = 7
    raw = codec.dumps(session)
    loaded = codec.loads(raw)
    assert loaded is not None and (loaded.uid, loaded.lang, loaded.sid) == (7, "en", session.sid)
    payload, signature = raw.split(".")
    forged = codec.dumps(ConsoleSession(sid=session.sid, uid=1)).split(".")[0]
    assert codec.loads(f"{forged}.{signature}") is None  # another payload under this signature
    assert SessionCodec("another-secret-key-entirely").loads(raw) is None
    assert codec.loads(raw, now=time.time() + IDLE_S + 5) is None  # idle too long
    old = ConsoleSession(sid="s" * 24, uid=7, iat=time.time() - ABSOLUTE_S - 5, seen=time.time())
    assert codec.loads(codec.dumps(old)) is None  # signed in too long ago
    assert codec.loads("garbage") is None and codec.loads(None) is None
    assert codec.csrf_token("a") != codec.csrf_token("b")


# -- permissions --------------------------------------------------------------------------


def test_the_permission_table() -> None:
    def user(role: str, department: str | None = None) -> User:
        return User(username=role, role=role, department_code=department, password_hash="x", active=True)

    operator, supervisor, department, admin = (
        user("operator"),
        user("supervisor"),
        user("department", "D01"),
        user("admin"),
    )
    assert not can(operator, "kb.retire") and can(supervisor, "kb.retire")  # an operator cannot delete
    assert not can(operator, "users.manage") and can(admin, "users.manage")
    assert not can(department, "queue.view") and not can(department, "conversation.view")
    assert can(department, "kb.view") and can(department, "dashboard.view")
    assert can(operator, "phone.view") and not can(admin, "phone.view") and not can(department, "phone.view")
    assert not can(operator, "conversation.takeover") and can(supervisor, "conversation.takeover")
    assert not can(None, "kb.view")
    assert not can(User(username="x", role="admin", password_hash="x", active=False), "kb.view")
    with pytest.raises(KeyError):
        can(operator, "no.such.permission")
    assert set().union(*PERMISSIONS.values()) == {"operator", "supervisor", "department", "admin"}


def test_a_department_user_acts_only_on_its_own_department() -> None:
    mine = User(username="d1", role="department", department_code="D01", password_hash="x", active=True)
    assert department_scope(mine) == "D01"
    check_department(mine, "D01")
    with pytest.raises(web.HTTPForbidden):
        check_department(mine, "D02")
    with pytest.raises(web.HTTPForbidden):
        check_department(mine, None)
    operator = User(username="op", role="operator", password_hash="x", active=True)
    assert department_scope(operator) is None
    check_department(operator, "D02")  # staff see every department


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("department", "/console/queue", 403),
        ("department", "/console/conversations", 403),
        ("department", "/console/users", 403),
        ("department", "/console/kb", 200),
        ("department", "/console/dashboard", 200),
        ("operator", "/console/users", 403),
        ("operator", "/console/queue", 200),
        ("supervisor", "/console/users", 403),
        ("admin", "/console/users", 200),
    ],
)
async def test_pages_answer_only_the_roles_they_are_for(
    client: TestClient, db: Database, role: str, path: str, status: int
) -> None:
    await make_user(db, "someone", role, department="D01" if role == "department" else None)
    await login(client, "someone")
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == status


async def test_an_operator_cannot_retire_an_article_and_a_supervisor_can(
    client: TestClient,
    aiohttp_client,
    settings: Settings,
    db: Database,  # type: ignore[no-untyped-def]
) -> None:
    await make_user(db, "oper", "operator")
    await make_user(db, "boss", "supervisor")
    async with db.read() as session:
        article_id = await session.scalar(select(Article.id).where(Article.status == "published").limit(1))
    await login(client, "oper")
    resp = await post(client, f"/console/kb/{article_id}/retire")
    assert resp.status == 403
    assert await events(db, "kb.retired") == []
    boss = await aiohttp_client(create_app(settings))
    await login(boss, "boss")
    assert (await post(boss, f"/console/kb/{article_id}/retire")).status == 303
    [event] = await events(db, "kb.retired")
    assert event.subject_id == str(article_id)
    async with db.write() as session:  # the shipped knowledge is kept between tests: put it back
        await session.execute(update(Article).where(Article.id == article_id).values(status="published"))


async def test_a_department_user_cannot_reach_residents_chats(client: TestClient, db: Database) -> None:
    await make_user(db, "dept", "department", department="D01")
    handled = await resident_says(client, "转人工")
    await login(client, "dept")
    assert (await client.get(f"/console/conversations/{handled.conversation_id}", allow_redirects=False)).status == 403
    resp = await post(client, f"/console/queue/{handled.conversation_id}/claim")
    assert resp.status == 403
    resp = await post(
        client, f"/console/conversations/{handled.conversation_id}/reply", {"text": "hello", "nonce": "n" * 16}
    )
    assert resp.status == 403


async def test_phone_numbers_are_masked_for_roles_that_do_not_call_back(
    client: TestClient,
    aiohttp_client,
    settings: Settings,
    db: Database,  # type: ignore[no-untyped-def]
) -> None:
    await make_user(db, "oper", "operator")
    await make_user(db, "root", "admin")
    await resident_says(client, "回电请打 139 1234 5678", address="tel:+8613800001234")
    handled = await resident_says(client, "转人工", address="tel:+8613800001234")
    await login(client, "oper")
    page = await (await client.get(f"/console/conversations/{handled.conversation_id}")).text()
    assert "+8613800001234" in page and "139 1234 5678" in page
    admin = await aiohttp_client(create_app(settings))
    await login(admin, "root")
    for path in ("/console/queue", f"/console/conversations/{handled.conversation_id}"):
        html = await (await admin.get(path)).text()
        assert "+8613800001234" not in html and "139 1234 5678" not in html, path
        assert "+861****1234" in html
    html = await (await admin.get(f"/console/conversations/{handled.conversation_id}")).text()
    assert "139****5678" in html


# -- accounts, language, navigation ---------------------------------------------------------


async def test_an_admin_adds_an_account_that_can_sign_in(
    client: TestClient,
    aiohttp_client,
    settings: Settings,
    db: Database,  # type: ignore[no-untyped-def]
) -> None:
    admin_id = await make_user(db, "root", "admin")
    await login(client, "root")
    bad = await post(
        client,
        "/console/users",
        {"username": "d1", "role": "department", "password": "long-enough-1"},
        token_page="/console/users",
    )
    assert bad.status == 400
    assert "department" in await bad.text()
    ok = await post(
        client,
        "/console/users",
        {"username": "wang.wei", "role": "department", "department": "CG01", "password": "long-enough-1"},
        token_page="/console/users",
    )
    assert ok.status == 303
    async with db.read() as session:
        user = await session.scalar(select(User).where(User.username == "wang.wei"))
        assert user is not None and user.password_hash.startswith("$argon2")
        assert (user.role, user.department_code) == ("department", "CG01")
    [event] = [e for e in await events(db, "user.created") if e.data["username"] == "wang.wei"]
    assert event.actor == f"user:{admin_id}"
    other = await aiohttp_client(create_app(settings))
    await login(other, "wang.wei", "long-enough-1")
    # An admin cannot lock themselves out.
    assert (await post(client, f"/console/users/{admin_id}/deactivate", token_page="/console/users")).status == 403


async def test_the_ui_speaks_both_languages_and_remembers_the_choice(client: TestClient, db: Database) -> None:
    await make_user(db, "lihua", "supervisor")
    await login(client, "lihua")
    zh = await (await client.get("/console/queue")).text()
    assert "接待队列" in zh and 'lang="zh-CN"' in zh
    en = await (await client.get("/console/queue?lang=en")).text()
    assert "Queue" in en and "接待队列" not in en and 'lang="en"' in en
    again = await (await client.get("/console/kb")).text()
    assert "Knowledge base" in again  # kept in the session


async def test_registered_pages_appear_for_their_roles_only(aiohttp_client, settings: Settings, db: Database) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings)

    async def reports(request: web.Request) -> web.Response:
        from helpline.console import render, require

        await require(request, "supervisor", "department")
        return await render(request, "console/error.html", {"code": 200, "zh": "报表", "en": "Reports", "detail": None})

    app.router.add_get("/console/reports", reports)
    register_page(app, "reports", "报表", "Reports", {"supervisor", "department"}, "/console/reports", order=30)
    with pytest.raises(ValueError):
        register_page(app, "reports", "报表", "Reports", {"supervisor"}, "/console/reports")
    with pytest.raises(ValueError):
        register_page(app, "elsewhere", "别处", "Elsewhere", {"admin"}, "/other")
    with pytest.raises(ValueError):
        register_page(app, "nobody", "无", "Nobody", {"janitor"}, "/console/nobody")
    client = await aiohttp_client(app)
    await make_user(db, "boss", "supervisor")
    await make_user(db, "oper", "operator")
    await login(client, "boss")
    html = await (await client.get("/console/queue")).text()
    assert (
        html.index('href="/console/conversations"')
        < html.index('href="/console/reports"')
        < html.index('href="/console/kb"')
    )
    await post(client, "/console/logout")
    await login(client, "oper")
    html = await (await client.get("/console/queue")).text()
    assert 'href="/console/reports"' not in html
    assert (await client.get("/console/reports", allow_redirects=False)).status == 403
