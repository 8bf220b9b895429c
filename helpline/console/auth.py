"""Who may do what in the console: roles and permissions, sign-in with lock-out, sign-out.

Every page handler starts with ``user = await require(request, ...)``: it sends a visitor who is
not signed in to the sign-in page (or answers 401 to a script) and answers 403 to a role the
page is not for. Hiding a link is never the protection; this call is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.appkeys import DB
from helpline.console.sessions import ConsoleSession, get_session, set_session
from helpline.db import Database
from helpline.models import Event, User, utcnow
from helpline.users import ROLES, hash_password, verify_password

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)

ROLE_LABELS = {
    "operator": ("话务员", "Operator"),
    "supervisor": ("值班长", "Supervisor"),
    "department": ("职能部门", "Department"),
    "admin": ("系统管理员", "Administrator"),
}

_STAFF = frozenset({"operator", "supervisor", "admin"})
# The permission table. A department user works only on its own department's cases (see
# ``check_department``); it reads the knowledge base and the dashboard but not residents' chats.
# Phone numbers are shown in full only to the roles that call residents back.
PERMISSIONS: dict[str, frozenset[str]] = {
    "queue.view": _STAFF,
    "conversation.view": _STAFF,
    "conversation.claim": _STAFF,
    "conversation.reply": _STAFF,
    "conversation.close": _STAFF,
    "conversation.takeover": frozenset({"supervisor", "admin"}),  # act on another operator's claim
    "kb.view": frozenset(ROLES),
    "kb.edit": _STAFF,
    "kb.publish": frozenset({"supervisor", "admin"}),
    "kb.retire": frozenset({"supervisor", "admin"}),  # the knowledge base's "delete"
    "dashboard.view": frozenset(ROLES),
    "users.manage": frozenset({"admin"}),
    "phone.view": frozenset({"operator", "supervisor"}),
}


def can(user: User | None, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return user is not None and user.active and user.role in PERMISSIONS[permission]


def roles_with(permission: str) -> frozenset[str]:
    return PERMISSIONS[permission]


def department_scope(user: User) -> str | None:
    """The department a user is confined to, or None for roles that see every department."""
    return user.department_code if user.role == "department" else None


def check_department(user: User, department_code: str | None) -> None:
    """403 unless ``user`` may see and act on a record owned by ``department_code``."""
    scope = department_scope(user)
    if user.role == "department" and (scope is None or scope != department_code):
        raise web.HTTPForbidden(text="403: this record belongs to another department")


# The signed-in user, read once per request (None: nobody, or a session that has ended).
_USER: web.RequestKey[User | None] = web.RequestKey("console_user")


async def current_user(request: web.Request) -> User | None:
    """The signed-in, active user of a live (not logged-out) session; read once per request."""
    if _USER in request:
        return request[_USER]
    session = get_session(request)
    user: User | None = None
    if session.uid is not None:
        async with request.app[DB].read() as db:
            user = await db.get(User, session.uid)
            ended = await db.scalar(
                select(Event.id)
                .where(Event.subject_type == "session", Event.subject_id == session.sid, Event.action == "auth.logout")
                .limit(1)
            )
        if user is None or not user.active or ended is not None:
            user = None
            session.uid = None
            session.changed = True
    request[_USER] = user
    return user


def _wants_page(request: web.Request) -> bool:
    """A browser opening a page (sent to sign in), not a script fetching a fragment (told 401)."""
    return (
        request.method == "GET"
        and not request.path.startswith("/console/api/")
        and "fragment" not in request.query
        and "application/json" not in request.headers.get("Accept", "")
        and request.headers.get("Upgrade", "").lower() != "websocket"
    )


async def require(request: web.Request, *roles: str) -> User:
    """The signed-in user, if their role is one of ``roles`` (any role when none are given)."""
    user = await current_user(request)
    if user is None:
        if _wants_page(request):
            raise web.HTTPSeeOther(f"/console/login?next={quote(request.path_qs, safe='')}")
        raise web.HTTPUnauthorized(text="401: sign in to the console first")
    if roles and user.role not in roles:
        raise web.HTTPForbidden(text="403: your role may not do this")
    return user


async def require_permission(request: web.Request, permission: str) -> User:
    return await require(request, *PERMISSIONS[permission])


def actor(user: User) -> str:
    return f"user:{user.id}"


def audit(
    session: AsyncSession,
    user: User | None,
    action: str,
    subject_type: str,
    subject_id: Any,
    data: dict[str, Any] | None = None,
) -> None:
    """One line in the audit log, in the caller's transaction: the action and its record commit together."""
    session.add(
        Event(
            actor=actor(user) if user else "anonymous",
            action=action,
            subject_type=subject_type,
            subject_id=str(subject_id)[:64],
            data=data or {},
        )
    )


# -- sign-in ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User | None
    reason: str  # ok | bad | locked
    locked_until: datetime | None = None


@cache
def _dummy_hash() -> str:
    """Checked against when the user does not exist, so timing does not tell which names do."""
    return hash_password("helpline-no-such-user")


async def authenticate(
    db: Database, username: str, password: str, remote: str | None = None, now: datetime | None = None
) -> LoginResult:
    """Check a password; five failures in a row lock the account for fifteen minutes.

    The password hash is checked outside any transaction (argon2 takes tens of milliseconds);
    the outcome is written with conditional updates, so parallel attempts cannot slip past the
    lock: a success only counts if the account is still unlocked at that moment.
    """
    now = now or utcnow()
    async with db.read() as session:
        user = await session.scalar(select(User).where(User.username == username))
    where = {"ip": remote} if remote else {}
    if user is None or not user.active:
        await asyncio.to_thread(verify_password, user.password_hash if user else _dummy_hash(), password)
        async with db.write() as session:
            session.add(
                Event(
                    actor="anonymous",
                    action="auth.login_failed",
                    subject_type="user",
                    subject_id=str(user.id) if user else f"name:{username}"[:64],
                    data={"username": username[:64], "reason": "inactive" if user else "unknown", **where},
                )
            )
        return LoginResult(None, "bad")
    if user.locked_until is not None and user.locked_until > now:
        async with db.write() as session:
            audit(session, None, "auth.login_refused", "user", user.id, {"reason": "locked", **where})
        return LoginResult(None, "locked", user.locked_until)
    ok = await asyncio.to_thread(verify_password, user.password_hash, password)
    async with db.write() as session:
        if ok:
            result = await session.execute(
                update(User)
                .where(User.id == user.id, (User.locked_until.is_(None)) | (User.locked_until <= now))
                .values(failed_logins=0, locked_until=None)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                session.add(
                    Event(
                        actor=f"user:{user.id}",
                        action="auth.login",
                        subject_type="user",
                        subject_id=str(user.id),
                        data=where,
                    )
                )
                return LoginResult(user, "ok")
            audit(session, None, "auth.login_refused", "user", user.id, {"reason": "locked", **where})
            return LoginResult(None, "locked")
        failures = await session.scalar(
            update(User)
            .where(User.id == user.id)
            .values(failed_logins=User.failed_logins + 1)
            .returning(User.failed_logins)
        )
        audit(
            session, None, "auth.login_failed", "user", user.id, {"reason": "password", "failures": failures, **where}
        )
        if failures is not None and failures >= MAX_FAILURES:
            until = now + LOCK_FOR
            await session.execute(update(User).where(User.id == user.id).values(locked_until=until, failed_logins=0))
            audit(session, None, "auth.locked", "user", user.id, {"until": until.isoformat(), **where})
            return LoginResult(None, "locked", until)
    return LoginResult(None, "bad")


def start_session(request: web.Request, user: User) -> ConsoleSession:
    """A new session id at sign-in (the anonymous one is dropped: no session fixation)."""
    old = get_session(request)
    session = ConsoleSession.fresh(lang=old.lang)
    session.uid = user.id
    set_session(request, session)
    request[_USER] = user
    return session


async def end_session(request: web.Request) -> None:
    session = get_session(request)
    user = await current_user(request)
    if user is not None:
        async with request.app[DB].write() as db:
            audit(db, user, "auth.logout", "session", session.sid, {"user": user.id})
    set_session(request, ConsoleSession.fresh(lang=session.lang))
    request[_USER] = None


def safe_next(target: str | None) -> str | None:
    """Only a path inside the console: never another site (an open redirect)."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return None
