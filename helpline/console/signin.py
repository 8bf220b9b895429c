"""The sign-in and sign-out pages, and ``/console/`` itself (the user's first page)."""

from __future__ import annotations

from aiohttp import web

from helpline.appkeys import DB
from helpline.console.auth import authenticate, current_user, end_session, safe_next, start_session
from helpline.console.pages import pages_for
from helpline.console.render import lang_of, redirect, render, translator


async def home(request: web.Request) -> web.Response:
    """``/console/``: the first page the user's role may see (the queue for operators)."""
    user = await current_user(request)
    if user is None:
        return redirect("/console/login")
    pages = pages_for(request.app, user.role)
    return redirect(pages[0].path if pages else "/console/kb")


async def login_page(request: web.Request) -> web.Response:
    if await current_user(request) is not None:
        return redirect(safe_next(request.query.get("next")) or "/console/")
    return await render(
        request,
        "console/login.html",
        {"next": safe_next(request.query.get("next")) or "", "username": "", "error": None},
    )


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))[:1024]
    target = safe_next(str(form.get("next", ""))) or "/console/"
    tr = translator(lang_of(request))
    if not username or not password:
        error = tr("请输入用户名和密码。", "Enter your user name and password.")
        return await render(
            request, "console/login.html", {"next": target, "username": username, "error": error}, status=400
        )
    result = await authenticate(request.app[DB], username, password, request.remote)
    if result.user is None:
        if result.reason == "locked":
            error = tr(
                "多次登录失败，账号已临时锁定15分钟。请稍后再试或联系管理员。",
                "Too many failed attempts: the account is locked for 15 minutes. "
                "Try again later or ask an administrator.",
            )
        else:
            error = tr("用户名或密码不正确。", "Wrong user name or password.")
        return await render(
            request, "console/login.html", {"next": target, "username": username, "error": error}, status=401
        )
    start_session(request, result.user)
    return redirect(target)


async def logout(request: web.Request) -> web.Response:
    await end_session(request)
    return redirect("/console/login")
