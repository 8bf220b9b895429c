"""The console's middleware: session, CSRF check, security headers, and readable error pages.

It is installed on the whole application but acts only on paths under ``/console``, so every
console page — including those other packages register — gets the same protection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from helpline.console.sessions import COOKIE_PATH, SAFE_METHODS, check_csrf, finish, get_session
from helpline.http import json_error

log = logging.getLogger("helpline.console")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_MESSAGES = {
    401: ("请先登录。", "Please sign in first."),
    403: (
        "您没有权限执行此操作，或表单已过期（请刷新页面后重试）。",
        "You may not do this, or the form has expired (reload the page and try again).",
    ),
    404: ("找不到这个页面或记录。", "There is no such page or record."),
    405: ("不支持这种请求方式。", "This request method is not allowed here."),
    409: ("这条记录刚被别人改动了，请刷新后再试。", "Someone else has just changed this record; reload and try again."),
}


def in_console(path: str) -> bool:
    return path == COOKIE_PATH or path.startswith(COOKIE_PATH + "/")


async def _error_page(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    from helpline.console.render import render  # render imports auth, which imports sessions

    zh, en = _MESSAGES.get(exc.status, ("出错了。", "Something went wrong."))
    detail = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else None
    return await render(
        request, "console/error.html", {"code": exc.status, "zh": zh, "en": en, "detail": detail}, status=exc.status
    )


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "") and "fragment" not in request.query


def _is_api(request: web.Request) -> bool:
    """``/console/api/…`` (e.g. the cases API) answers errors as JSON, like the rest of our APIs."""
    return request.path.startswith("/console/api/")


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not in_console(request.path) or request.path.startswith("/console/static/"):
        return await handler(request)  # static files need no session (and set no cookie)
    get_session(request)
    try:
        if request.method not in SAFE_METHODS:
            await check_csrf(request, get_session(request))
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and _is_api(request):
            message = exc.text.split(": ", 1)[1] if exc.text and ": " in exc.text else exc.reason.lower()
            response = json_error(exc.status, message)
        elif exc.status >= 400 and _wants_html(request):
            try:
                response = await _error_page(request, exc)
            except Exception:  # the error page itself must never hide the original answer
                log.exception("event=console.error_page_failed status=%s", exc.status)
                finish(request, exc)
                raise exc from None
        else:
            finish(request, exc)
            raise
    finish(request, response)
    return response
