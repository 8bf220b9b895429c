"""The web channel: the JSON API (``POST /api/v1/messages``) and the resident portal at ``/``.

It only translates: JSON or a form becomes a Request, the Reply becomes JSON or HTML.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from helpline.appkeys import INBOX, SETTINGS
from helpline.http import BadRequest, json_error, json_response
from helpline.inbound import HandlingFailed, throttle_text
from helpline.request import Channel, Location, Request

_WEB_ID = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")
SESSION_COOKIE = "hl_sid"


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/messages", api_message)
    app.router.add_get("/", portal)
    app.router.add_post("/", portal_ask)


def parse_api_message(body: Any, max_text: int) -> tuple[str, str, str | None, Location | None]:
    """Validate the API's JSON body; every refusal names the field and what was wrong."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    sender = body.get("from")
    if sender is None:
        raise BadRequest("missing field 'from' (e.g. \"web:abc123\")")
    if not isinstance(sender, str):
        raise BadRequest("'from' must be a string such as \"web:abc123\"")
    scheme, _, ident = sender.partition(":")
    if scheme != "web" or not _WEB_ID.match(ident):
        raise BadRequest("'from' must look like \"web:<id>\", the id being 1-64 letters, digits, '.', '_', '~' or '-'")
    text = body.get("text")
    if text is None:
        raise BadRequest("missing field 'text'")
    if not isinstance(text, str):
        raise BadRequest("'text' must be a string")
    text = text.strip()
    if not text:
        raise BadRequest("'text' is empty")
    if len(text) > max_text:
        raise BadRequest(f"'text' is too long: {len(text)} characters, at most {max_text}")
    lang = body.get("lang")
    if lang is not None and lang not in ("zh", "en"):
        raise BadRequest("'lang' must be \"zh\", \"en\" or null")
    return sender, text, lang, parse_location(body.get("location"))


def parse_location(value: Any) -> Location | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("'location' must be an object {\"lat\": …, \"lon\": …} or null")
    lat, lon = value.get("lat"), value.get("lon")
    for name, v, limit in (("lat", lat, 90), ("lon", lon, 180)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise BadRequest(f"'location.{name}' must be a number")
        if not -limit <= v <= limit:
            raise BadRequest(f"'location.{name}' must be between -{limit} and {limit}")
    return Location(float(lat), float(lon))


async def api_message(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if request.content_type != "application/json":
        raise BadRequest(f"the body must be JSON (Content-Type: application/json), not {request.content_type!r}")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    sender, text, lang, location = parse_api_message(body, settings.max_text_length)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise BadRequest("the Idempotency-Key header must be 1-100 visible ASCII characters")
    req = Request(
        channel=Channel.WEB,
        address=sender,
        text=text,
        lang=lang,
        location=location,
        provider_id=f"api:{sender}:{key}" if key else None,
    )
    try:
        handled = await request.app[INBOX].handle(req)
    except HandlingFailed:
        return json_error(503, "the message was kept but could not be answered now; please retry")
    if handled.reply.throttled:
        response = json_error(429, "too many messages from this sender: they are kept, but please wait a minute")
        response.headers["Retry-After"] = "60"
        return response
    return json_response({"conversation_id": handled.conversation_id, **handled.reply.to_dict()})


def _session_id(request: web.Request) -> str:
    sid = request.cookies.get(SESSION_COOKIE, "")
    return sid if _WEB_ID.match(sid) else secrets.token_urlsafe(16)


def _remember(response: web.StreamResponse, request: web.Request, sid: str) -> None:
    if request.cookies.get(SESSION_COOKIE) != sid:
        response.set_cookie(
            SESSION_COOKIE, sid, max_age=180 * 24 * 3600, httponly=True, samesite="Lax",
            secure=request.app[SETTINGS].public_url.startswith("https://"),
        )


def _portal_lang(request: web.Request) -> str:
    lang = request.query.get("lang")
    if lang in ("zh", "en"):
        return lang
    accept = request.headers.get("Accept-Language", "")
    return "en" if accept.lower().startswith("en") else request.app[SETTINGS].default_lang


async def portal(request: web.Request) -> web.Response:
    sid = _session_id(request)
    response = aiohttp_jinja2.render_template(
        "portal.html", request, {"lang": _portal_lang(request), "nonce": secrets.token_urlsafe(12), "reply": None}
    )
    _remember(response, request, sid)
    return response


async def portal_ask(request: web.Request) -> web.Response:
    """The no-JavaScript path: the form posts here; the nonce makes a double submit harmless."""
    settings = request.app[SETTINGS]
    form = await request.post()
    sid = _session_id(request)
    lang = form.get("lang") if form.get("lang") in ("zh", "en") else _portal_lang(request)
    text = str(form.get("text", "")).strip()
    nonce = str(form.get("nonce", ""))
    context: dict[str, Any] = {"lang": lang, "nonce": secrets.token_urlsafe(12), "reply": None, "asked": text}
    status = 200
    if not text:
        context["error"] = "请输入您的问题。" if lang == "zh" else "Please type your question."
        status = 400
    elif len(text) > settings.max_text_length:
        context["error"] = (
            f"问题太长了，请控制在{settings.max_text_length}字以内。"
            if lang == "zh"
            else f"That is too long: please keep it under {settings.max_text_length} characters."
        )
        status = 400
    else:
        req = Request(
            channel=Channel.WEB,
            address=f"web:{sid}",
            text=text,
            provider_id=f"portal:{sid}:{nonce}" if _WEB_ID.match(nonce) else None,
        )
        try:
            handled = await request.app[INBOX].handle(req)
            if handled.reply.throttled:
                context["error"] = throttle_text(lang)
                status = 429
            else:
                context["reply"] = handled.reply
        except HandlingFailed:
            context["error"] = "系统繁忙，请稍后再试。" if lang == "zh" else "We are busy: please try again in a moment."
            status = 503
    response = aiohttp_jinja2.render_template("portal.html", request, context, status=status)
    _remember(response, request, sid)
    return response
