"""Console accounts for admins: list, add, deactivate and reactivate, unlock after a lock-out.

Accounts are made by ``helpline.users.add_user`` — the same rules and argon2 hashes as
``helpline user add`` — and never deleted: a deactivated account keeps its name in the audit
log, and its sessions end at their next request.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from helpline.appkeys import DB
from helpline.console.auth import ROLE_LABELS, audit, require_permission
from helpline.console.live import console_write
from helpline.console.render import flash, redirect, render
from helpline.models import User, utcnow
from helpline.users import ROLES, UserError, add_user


async def _page(
    request: web.Request, values: dict[str, str] | None = None, error: str | None = None, status: int = 200
) -> web.Response:
    async with request.app[DB].read() as session:
        users = list(await session.scalars(select(User).order_by(User.active.desc(), User.role, User.username)))
    return await render(
        request,
        "console/users.html",
        {
            "users": users,
            "roles": ROLES,
            "role_labels": ROLE_LABELS,
            "values": values or {},
            "error": error,
            "now": utcnow(),
        },
        status=status,
        active="users",
    )


async def users_page(request: web.Request) -> web.Response:
    await require_permission(request, "users.manage")
    return await _page(request)


async def user_add(request: web.Request) -> web.Response:
    admin = await require_permission(request, "users.manage")
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in ("username", "role", "department")}
    password = str(form.get("password", ""))
    try:
        async with console_write(request) as session:
            user = await add_user(
                session,
                values["username"],
                values["role"],
                password,
                values["department"] or None,
                actor=f"user:{admin.id}",
            )
    except UserError as exc:
        return await _page(request, values, str(exc), status=400)
    flash(request, "ok", f"已创建账号 {user.username}。", f"Account {user.username} created.")
    return redirect("/console/users")


async def _change(request: web.Request, action: str) -> web.Response:
    admin = await require_permission(request, "users.manage")
    user_id = request.match_info["id"]
    async with console_write(request) as session:
        user = await session.get(User, int(user_id)) if user_id.isdigit() else None
        if user is None:
            raise web.HTTPNotFound(text="404: there is no such user")
        if action == "deactivate":
            if user.id == admin.id:
                raise web.HTTPForbidden(text="403: you cannot deactivate your own account")
            user.active = False
        elif action == "activate":
            user.active = True
        else:  # unlock
            user.locked_until = None
            user.failed_logins = 0
        audit(
            session,
            admin,
            f"user.{action}d" if action.endswith("e") else f"user.{action}ed",
            "user",
            user.id,
            {"username": user.username},
        )
    flash(request, "ok", "账号已更新。", "Account updated.")
    return redirect("/console/users")


async def user_deactivate(request: web.Request) -> web.Response:
    return await _change(request, "deactivate")


async def user_activate(request: web.Request) -> web.Response:
    return await _change(request, "activate")


async def user_unlock(request: web.Request) -> web.Response:
    return await _change(request, "unlock")
