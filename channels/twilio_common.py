"""What the Twilio SMS and voice channels share: the signed webhook edge."""

from __future__ import annotations

import logging

from aiohttp import web
from multidict import MultiDictProxy
from twilio.request_validator import RequestValidator

from helpline.appkeys import SETTINGS
from helpline.config import Settings

log = logging.getLogger("helpline.twilio")


def public_url(request: web.Request, settings: Settings) -> str:
    """The URL Twilio signed: the configured public base plus this path and query (behind a
    proxy ``request.url`` is the proxy's view, not what Twilio called)."""
    return settings.public_url + request.rel_url.path_qs


async def signed_form(request: web.Request) -> MultiDictProxy[str]:
    """The webhook's form fields, after checking X-Twilio-Signature; 403 when it is missing or wrong.

    Without an auth token there is nothing to check against (a development install); the
    explicit HELPLINE_TWILIO_SKIP_SIGNATURE switch turns checking off even with a token.
    Both are logged at start-up (see ``warn_if_unsigned``).
    """
    settings = request.app[SETTINGS]
    form = await request.post()
    token = settings.twilio_auth_token
    if token is None or settings.twilio_skip_signature:
        return form
    signature = request.headers.get("X-Twilio-Signature", "")
    fields = {k: str(v) for k, v in form.items()}
    if not signature or not RequestValidator(token).validate(public_url(request, settings), fields, signature):
        log.warning("event=twilio.bad_signature path=%s", request.path)
        raise web.HTTPForbidden(text="invalid Twilio signature")
    return form


def warn_if_unsigned(settings: Settings) -> None:
    if settings.twilio_skip_signature and settings.twilio_auth_token:
        log.warning("event=twilio.signature_check_off HELPLINE_TWILIO_SKIP_SIGNATURE is set: "
                    "Twilio webhooks are NOT verified. Never do this in production.")
    elif settings.twilio_auth_token is None:
        log.warning("event=twilio.unsigned no HELPLINE_TWILIO_AUTH_TOKEN: Twilio webhooks cannot be "
                    "verified and no SMS can be sent. Fine for development, not for production.")
