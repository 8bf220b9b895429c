"""Outbound SMS through Twilio's REST API with the real ``twilio`` client, for the outbox worker.

Idempotency: Twilio's REST API has no idempotency key, so if Twilio accepts a message and this
process dies before the worker records ``sent``, the row is claimed again when its lease expires
and the message is sent a second time. The window is narrow (one HTTP round trip) and the lease
keeps it to crashes. We still send the outbox row's ``idempotency_key`` as an
``I-Twilio-Idempotency-Token`` header: the test fake (and any proxy in front of Twilio that cares)
drops repeats on it; Twilio itself ignores it.

Pointing the client elsewhere: ``HELPLINE_TWILIO_API_URL`` replaces the ``api`` domain's
``base_url`` (the documented per-domain override); the request paths stay Twilio's
(``/2010-04-01/Accounts/{sid}/Messages.json``), so a fake must speak the real wire protocol.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from helpline.config import Settings
from helpline.models import OutboxItem
from helpline.outbox_worker import PermanentSendError, TemporarySendError

log = logging.getLogger("helpline.twilio")

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
SEND_TIMEOUT = 10.0  # seconds for one API call; well inside the outbox lease
# Twilio error codes: 21610 the recipient replied STOP; 4xx errors in general will not get better.
UNSUBSCRIBED = 21610
# Auth and rate-limit answers are about us, not the message: retry (a fixed token helps later sends).
RETRYABLE_STATUS = {401, 403, 408, 409, 429}

_token: contextvars.ContextVar[str | None] = contextvars.ContextVar("twilio_idempotency_token", default=None)


class _HttpClient(AsyncTwilioHttpClient):
    """The twilio aiohttp client plus what it lacks: our idempotency header, taken from the
    sending task's context; a real per-request timeout (the library accepts ``timeout`` but does
    not apply it to requests made through ``Client``); and basic auth as a plain header."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        headers = dict(headers or {})
        token = _token.get()
        if token:
            headers[IDEMPOTENCY_HEADER] = token
        if auth is not None:  # aiohttp 3.14 deprecates BasicAuth objects, which the library builds
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        return await super().request(
            method, url, params=params, data=data, headers=headers, auth=None,
            timeout=timeout if timeout is not None else self.timeout, allow_redirects=allow_redirects,
        )


class TwilioSmsSender:
    """Sends outbox rows of the ``sms`` channel as Twilio messages."""

    def __init__(self, settings: Settings, *, timeout: float = SEND_TIMEOUT) -> None:
        if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from):
            raise ValueError("TwilioSmsSender needs HELPLINE_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and _FROM")
        self.settings = settings
        self.timeout = timeout
        self._client: Client | None = None
        self._http: _HttpClient | None = None

    def _ensure_client(self) -> Client:
        """Created on first use, inside the running loop (the aiohttp session binds to it)."""
        if self._client is None:
            self._http = _HttpClient(timeout=self.timeout)
            settings = self.settings
            client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=self._http)
            if settings.twilio_api_url:
                client.api.base_url = settings.twilio_api_url.rstrip("/")
                # TWILIO_EDGE / TWILIO_REGION in the environment would rewrite the host again.
                client.edge = None
                client.region = None
            self._client = client
        return self._client

    async def send(self, item: OutboxItem) -> str:
        to = _e164(item.urn)
        client = self._ensure_client()
        reset = _token.set(item.idempotency_key)
        try:
            message = await client.messages.create_async(
                to=to,
                from_=self.settings.twilio_from,
                body=item.body,
                status_callback=self.settings.public_url + "/twilio/status",
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _classify(exc) from exc
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise TemporarySendError(f"twilio unreachable: {type(exc).__name__}: {exc}") from exc
        except TwilioException as exc:  # e.g. an unreadable answer
            raise TemporarySendError(f"twilio error: {exc}") from exc
        finally:
            _token.reset(reset)
        sid = message.sid
        if not sid:
            raise TemporarySendError("twilio answered without a message sid")
        return sid

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None


def _e164(urn: str) -> str:
    scheme, _, number = urn.partition(":")
    if scheme != "tel" or not number.startswith("+") or not number[1:].isdigit():
        raise PermanentSendError(f"not an E.164 tel: address: {urn!r}")
    return number


def _classify(exc: TwilioRestException | TwilioServiceException) -> PermanentSendError | TemporarySendError:
    status = int(exc.status or 0)
    code: Any = exc.code
    text = f"twilio {status} code={code}: {getattr(exc, 'msg', None) or getattr(exc, 'detail', None) or exc}"
    if code == UNSUBSCRIBED:
        return PermanentSendError(text, opted_out=True)
    if status >= 500 or status in RETRYABLE_STATUS or status == 0:
        return TemporarySendError(text)
    return PermanentSendError(text)


def build_sms_sender(settings: Settings) -> TwilioSmsSender | None:
    """The SMS sender when Twilio is configured; otherwise None (the worker then skips SMS rows)."""
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from:
        return TwilioSmsSender(settings)
    return None
