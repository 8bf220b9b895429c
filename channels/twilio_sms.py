"""The SMS channel through Twilio: a signed webhook becomes a Request, the Reply becomes TwiML.

``POST /twilio/sms`` answers with ``<Response><Message>…</Message></Response>``; Twilio re-sends a
webhook it got no answer for, and the MessageSid makes that harmless (stored once, same reply).
``POST /twilio/status`` records delivery reports for messages we sent.
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import update
from twilio.twiml.messaging_response import MessagingResponse

from channels.twilio_common import signed_form
from helpline.appkeys import DB, INBOX, SETTINGS
from helpline.http import BadRequest
from helpline.inbound import HandlingFailed
from helpline.logs import mask_urn
from helpline.models import Message
from helpline.phones import tel_urn
from helpline.request import Channel, Request

log = logging.getLogger("helpline.sms")

# Twilio's delivery states, in the order a message moves through them.
DELIVERY_STATES = ("accepted", "queued", "sending", "sent", "delivered", "undelivered", "failed", "read")


def setup(app: web.Application) -> None:
    app.router.add_post("/twilio/sms", sms_webhook)
    app.router.add_post("/twilio/status", status_callback)


def twiml(text: str | None) -> web.Response:
    response = MessagingResponse()
    if text:
        response.message(text)
    return web.Response(text=str(response), content_type="application/xml")


def _required(form: object, name: str) -> str:
    value = form.get(name)  # type: ignore[attr-defined]
    if value is None or not str(value).strip():
        raise BadRequest(f"missing field {name!r}")
    return str(value)


async def sms_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    form = await signed_form(request)
    sid = _required(form, "MessageSid")
    sender = _required(form, "From")
    urn = tel_urn(sender, settings.default_region)
    if urn is None:
        raise BadRequest(f"'From' is not a phone number: {sender!r}")
    body = str(form.get("Body", ""))[: settings.max_text_length].strip()
    req = Request(channel=Channel.SMS, address=urn, text=body, provider_id=sid)
    try:
        handled = await request.app[INBOX].handle(req)
    except HandlingFailed:
        # Stored, not answered: a 503 makes Twilio retry, and the retry answers the stored row.
        raise web.HTTPServiceUnavailable(text="try again") from None
    return twiml(handled.reply.text)


async def status_callback(request: web.Request) -> web.Response:
    """A delivery report: move the sent message to its new state (never backwards)."""
    form = await signed_form(request)
    sid = _required(form, "MessageSid")
    status = _required(form, "MessageStatus").lower()
    if status not in DELIVERY_STATES:
        raise BadRequest(f"unknown MessageStatus {status!r}")
    earlier = DELIVERY_STATES[: DELIVERY_STATES.index(status)]
    async with request.app[DB].write() as session:
        result = await session.execute(
            update(Message)
            .where(
                Message.channel == Channel.SMS.value,
                Message.direction == "out",
                Message.provider_id == sid,
                Message.status.in_(("queued", *earlier)),
            )
            .values(status=status)
        )
    if not result.rowcount:
        log.info("event=sms.status_unmatched sid=%s status=%s to=%s", sid, status, mask_urn(f"tel:{form.get('To', '')}"))
    return web.Response(status=204)
