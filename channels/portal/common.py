"""What every portal page shares: language, the session cookie, CSRF tokens, rendering, errors.

* **Language**: Chinese by default; ``?lang=en`` (or ``zh``) switches and is remembered in a
  cookie; a form may carry ``lang`` too, so a browser without cookies keeps its language.
* **Session**: ``hl_sid``, a random id in an HttpOnly, SameSite=Lax cookie. The web channel's
  address of the resident is ``web:<sid>`` (the same cookie the JSON-free portal always used).
* **CSRF**: every form carries ``csrf`` = ``<time>.<nonce>.<signature>``, the signature an HMAC
  of the session id, the time and the nonce under a key derived from the deployment's secret.
  A cross-site page cannot read the cookie or forge the signature, and the SameSite cookie is not
  even sent with a cross-site POST. The nonce is also the form's idempotency key: the same form
  sent twice (a double tap, a re-sent POST) is handled once.
* **Pages** are rendered small: one stylesheet and one script (cached for a year, versioned by
  their content hash), gzip when the browser takes it, no fonts, no third parties, a strict CSP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from helpline.appkeys import SETTINGS
from helpline.logs import request_id
from helpline.ratelimit import ContactLimiter, Verdict

log = logging.getLogger("helpline.portal")

SESSION_COOKIE = "hl_sid"
LANG_COOKIE = "hl_lang"
LANGS = ("zh", "en")
SID = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_TOKEN = re.compile(r"^([0-9a-z]{1,12})\.([A-Za-z0-9_-]{8,32})\.([A-Za-z0-9_-]{20,64})$")
TOKEN_MAX_AGE = 12 * 3600  # a form left open longer is asked to be sent again (its contents kept)
# Paths the portal answers (its error pages are HTML); everything else is another channel's.
PREFIXES = ("/ask", "/talk", "/kb", "/book", "/booking", "/report", "/track", "/portal")

KEYS: web.AppKey[PortalKeys] = web.AppKey("portal_keys")
_SID_KEY: web.RequestKey[str] = web.RequestKey("portal_sid")
_LANG_KEY: web.RequestKey[str] = web.RequestKey("portal_lang")


def is_portal(path: str) -> bool:
    return path == "/" or any(path == p or path.startswith(p + "/") for p in PREFIXES)


@dataclass(frozen=True)
class PortalKeys:
    """Keys derived from the deployment's secret (so every instance signs alike)."""

    csrf: bytes
    links: bytes

    @classmethod
    def derive(cls, secret: str) -> PortalKeys:
        root = secret.encode()
        return cls(
            csrf=hmac.new(root, b"helpline portal csrf v1", hashlib.sha256).digest(),
            links=hmac.new(root, b"helpline portal links v1", hashlib.sha256).digest(),
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- session and language ------------------------------------------------------------------------


def session_id(request: web.Request) -> str:
    """This browser's session id (a new one if it has none yet; the response sets the cookie)."""
    sid = request.get(_SID_KEY)
    if sid is None:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        sid = cookie if SID.match(cookie) else secrets.token_urlsafe(16)
        request[_SID_KEY] = sid
    return str(sid)


def web_address(request: web.Request) -> str:
    return f"web:{session_id(request)}"


def lang_of(request: web.Request, form: Any = None) -> str:
    """?lang= first, then the form's lang, then the cookie, then the line's default (Chinese)."""
    chosen = request.get(_LANG_KEY)
    if chosen is not None:
        return str(chosen)
    for value in (request.query.get("lang"), form.get("lang") if form is not None else None,
                  request.cookies.get(LANG_COOKIE)):
        if value in LANGS:
            request[_LANG_KEY] = value
            return str(value)
    default = request.app[SETTINGS].default_lang
    return default if default in LANGS else "zh"


def remember(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Set the session and language cookies when they are new or changed."""
    secure = request.app[SETTINGS].public_url.startswith("https://")
    sid = session_id(request)
    if request.cookies.get(SESSION_COOKIE) != sid:
        response.set_cookie(SESSION_COOKIE, sid, max_age=180 * 24 * 3600, httponly=True, samesite="Lax",
                            secure=secure, path="/")
    lang = request.get(_LANG_KEY) or (request.query.get("lang") if request.query.get("lang") in LANGS else None)
    if lang is not None and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                            secure=secure, path="/")
    return response


def tr(lang: str) -> Callable[[str, str], str]:
    def t(zh: str, en: str) -> str:
        return zh if lang == "zh" else en

    return t


# -- CSRF tokens (also the forms' idempotency keys) ------------------------------------------------


def _signature(request: web.Request, stamp: str, nonce: str) -> str:
    key = request.app[KEYS].csrf
    mac = hmac.new(key, f"{session_id(request)}|{stamp}|{nonce}".encode(), hashlib.sha256).digest()
    return _b64(mac[:24])


def new_token(request: web.Request) -> str:
    stamp = _base36(int(time.time()))
    nonce = secrets.token_urlsafe(12)
    return f"{stamp}.{nonce}.{_signature(request, stamp, nonce)}"


def check_token(request: web.Request, form: Any) -> str | None:
    """The form's nonce when its token is this session's and fresh, else None."""
    match = _TOKEN.match(str(form.get("csrf", "")))
    if match is None or request.cookies.get(SESSION_COOKIE) != session_id(request):
        return None
    stamp, nonce, signature = match.groups()
    if not hmac.compare_digest(signature, _signature(request, stamp, nonce)):
        return None
    age = time.time() - int(stamp, 36)
    if not -300 <= age <= TOKEN_MAX_AGE:
        return None
    return nonce


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def sign_link(request: web.Request, *parts: str) -> str:
    """A short signature binding ``parts`` to this session (e.g. a case number shown once)."""
    mac = hmac.new(request.app[KEYS].links, "|".join((session_id(request), *parts)).encode(), hashlib.sha256)
    return _b64(mac.digest()[:12])


def check_link(request: web.Request, signature: str, *parts: str) -> bool:
    return hmac.compare_digest(signature.encode(), sign_link(request, *parts).encode())


# -- how often one browser (and one network address) may send a form that writes ------------------

FORM_LIMITS: web.AppKey[tuple[ContactLimiter, ContactLimiter]] = web.AppKey("portal_form_limits")
FORMS_PER_BROWSER = 10  # reports and bookings a minute from one browser
FORMS_PER_ADDRESS = 60  # … from one address (a village or a school may share one)


def setup_limits(app: web.Application) -> None:
    app[FORM_LIMITS] = (ContactLimiter(FORMS_PER_BROWSER), ContactLimiter(FORMS_PER_ADDRESS))


def too_many(request: web.Request) -> bool:
    """Count one report or booking; True when this browser or address has sent too many this minute."""
    browser, network = request.app[FORM_LIMITS]
    return (browser.check(session_id(request)) is not Verdict.ALLOW
            or network.check(request.remote or "?") is not Verdict.ALLOW)


# -- rendering -------------------------------------------------------------------------------------


STATIC: web.AppKey[dict[str, tuple[bytes, str, str]]] = web.AppKey("portal_static")
_TYPES = {".css": "text/css", ".js": "application/javascript", ".svg": "image/svg+xml"}


def load_static() -> dict[str, tuple[bytes, str, str]]:
    """The portal's static files: name -> (body, content type, content hash)."""
    folder = files("templates") / "portal" / "static"
    found: dict[str, tuple[bytes, str, str]] = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1]
        if item.is_file() and suffix in _TYPES:
            body = item.read_bytes()
            found[item.name] = (body, _TYPES[suffix], hashlib.sha256(body).hexdigest()[:10])
    return found


def static_url(request: web.Request, name: str) -> str:
    entry = request.app.get(STATIC, {}).get(name)
    return f"/portal/static/{name}?v={entry[2]}" if entry else f"/portal/static/{name}"


async def static_file(request: web.Request) -> web.StreamResponse:
    entry = request.app.get(STATIC, {}).get(request.match_info["name"])
    if entry is None:
        raise web.HTTPNotFound()
    body, content_type, digest = entry
    etag = f'"{digest}"'
    versioned = request.query.get("v") == digest
    headers = {"ETag": etag,
               "Cache-Control": "public, max-age=31536000, immutable" if versioned else "public, max-age=3600"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    response = web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)
    response.enable_compression()
    return response


def when(at: datetime | None, request: web.Request, lang: str, *, with_time: bool = True) -> str:
    """A moment in the centre's time zone, as people write it."""
    if at is None:
        return ""
    local = at.astimezone(request.app[SETTINGS].zone)
    weekday = "一二三四五六日"[local.weekday()]
    if lang == "zh":
        day = f"{local.month}月{local.day}日（周{weekday}）"
        return f"{day} {local:%H:%M}" if with_time else day
    day = f"{local:%a} {local.day} {local:%b}"
    return f"{day}, {local:%H:%M}" if with_time else day


def page(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200,
         form: Any = None, title: tuple[str, str] | None = None) -> web.Response:
    """Render a portal page with what every page needs, and set the session/language cookies."""
    lang = lang_of(request, form)
    t = tr(lang)
    base: dict[str, Any] = {
        "lang": lang,
        "t": t,
        "csrf": new_token(request),
        "path": request.path,
        "switch_url": f"{_page_of(request)}?lang={'en' if lang == 'zh' else 'zh'}",
        "css": static_url(request, "portal.css"),
        "js": static_url(request, "portal.js"),
        "icons": static_url(request, "icons.svg"),
        "title": t(*title) if title else None,
        "when": lambda at, with_time=True: when(at, request, lang, with_time=with_time),
        "q": quote,
    }
    if request.method == "GET" and request.query_string:
        # Keep the page's other query parameters when switching language (a day, a number).
        others = [(k, v) for k, v in request.query.items() if k != "lang"]
        target = "en" if lang == "zh" else "zh"
        base["switch_url"] = request.path + "?" + "&".join(
            [f"{quote(k)}={quote(v)}" for k, v in others] + [f"lang={target}"])
    response = aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)
    return response


_ACTIONS = ("/cancel", "/rate", "/send", "/feedback")


def _page_of(request: web.Request) -> str:
    """The page to show again in the other language: a form's own page, not the action it posted to."""
    path = request.path
    if request.method != "GET":
        for action in _ACTIONS:
            if path.endswith(action):
                return path[: -len(action)] or "/"
    return path


def redirect(request: web.Request, location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


# -- errors ----------------------------------------------------------------------------------------

_ERRORS = {
    400: ("请求有误", "Something was wrong with that request", "请返回上一页检查后再试。",
          "Please go back, check what you entered and try again."),
    403: ("页面已过期", "This page has expired", "为了您的安全，请返回上一页刷新后再提交一次。",
          "For your safety, please go back, reload the page and send it again."),
    404: ("找不到这个页面", "We cannot find that page", "链接可能有误或已过期。",
          "The link may be mistyped or out of date."),
    405: ("无法这样打开此页面", "That page cannot be opened that way", "请从首页重新开始。",
          "Please start again from the home page."),
    429: ("操作太频繁", "Too many tries", "请稍等一分钟再试。", "Please wait a minute and try again."),
    500: ("系统出了点问题", "Something went wrong on our side", "请稍后再试。如有急事请直接打电话。",
          "Please try again in a moment. If it is urgent, please call us."),
    503: ("系统繁忙", "We are busy", "请稍后再试。", "Please try again in a moment."),
}


def error_page(request: web.Request, status: int) -> web.Response:
    zh, en, more_zh, more_en = _ERRORS.get(status, _ERRORS[500 if status >= 500 else 400])
    try:
        return page(request, "portal/error.html",
                    {"heading": (zh, en), "more": (more_zh, more_en), "status": status, "rid": request_id.get("")},
                    status=status, title=(zh, en))
    except Exception:  # the page itself failed: still no stack trace for the resident
        log.exception("event=portal.error_page_failed status=%s", status)
        return web.Response(status=status, text=f"{status} {en}", content_type="text/plain")


_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def portal_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Portal paths: HTML error pages (never a stack trace), cookies, security headers, gzip."""
    if not is_portal(request.path):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        # Redirects pass; a body over the limit stays the JSON 413 every route answers (tests/test_abuse.py).
        if exc.status < 400 or exc.status == 413:
            raise
        response = error_page(request, exc.status)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
    except Exception:
        log.exception("event=portal.error method=%s path=%s", request.method, request.path)
        response = error_page(request, 500)
    if response.content_type == "text/html":
        remember(request, response)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "private, no-cache")
        if isinstance(response, web.Response) and response.body is not None and len(response.body) > 1024:
            response.enable_compression()
    elif response.status in (301, 302, 303, 307, 308):
        remember(request, response)
    return response
