"""The web channel: the JSON API (``POST /api/v1/messages``) and the resident portal at ``/``.

It only translates: JSON (or a portal form) becomes a Request, the Reply becomes JSON (or a page).
The portal's pages live in ``channels.portal``; ``setup`` adds both.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from aiohttp import web

from channels import portal
from helpline.appkeys import INBOX, SETTINGS
from helpline.http import BadRequest, json_error, json_response
from helpline.inbound import HandlingFailed
from helpline.request import Channel, Location, Request

_WEB_ID = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/messages", api_message)
    portal.setup(app)  # /, /ask, /kb, /book, /booking, /report, /track, /talk


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
