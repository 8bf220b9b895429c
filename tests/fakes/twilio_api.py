"""A small fake of Twilio's REST API (Messages only) that the real ``twilio`` client can talk to.

It speaks the wire protocol: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with form
fields ``To``, ``From``, ``Body``, ``StatusCallback`` and HTTP basic auth; answers 201 with a
Twilio-like message resource, or Twilio's JSON error body (``code``, ``message``, ``more_info``,
``status``). Accepted messages are recorded in ``messages``; a repeated
``I-Twilio-Idempotency-Token`` gets the first answer back and is not recorded again.

Failures on demand: ``fail_next(n, status, code)``, ``fail_mode("500" | "timeout" | "refuse")``,
``slow(seconds)``, and ``reject(number, code)`` for numbers Twilio always refuses.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

ACCOUNT_SID = "AC" + "f" * 32
AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
FROM_NUMBER = "+15005550006"
TOKEN_HEADER = "I-Twilio-Idempotency-Token"

ERROR_MESSAGES = {
    20003: "Authenticate",
    21211: "Invalid 'To' Phone Number",
    21602: "Message body is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    20500: "Internal Server Error",
    20429: "Too Many Requests",
}


@dataclass
class _Failure:
    status: int
    code: int


class FakeTwilioApi:
    """Start with ``await fake.start()``; ``fake.url`` is what HELPLINE_TWILIO_API_URL should be."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN, *, port: int | None = None) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []  # accepted messages, one per idempotency token
        self.requests = 0  # every POST to Messages.json, failed or not
        self.tokens: list[str | None] = []  # the token of each request, in order
        self._by_token: dict[str, dict[str, Any]] = {}
        self._failures: list[_Failure] = []
        self._mode: str | None = None
        self._delay = 0.0
        self._rejects: dict[str, int] = {}
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account_sid}/Messages.json", self._create_message)
        self._server = TestServer(app, host="127.0.0.1", port=port)

    @property
    def url(self) -> str:
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> FakeTwilioApi:
        await self._server.start_server(shutdown_timeout=1.0)
        return self

    async def close(self) -> None:
        self._closing.set()  # let hanging "timeout" requests end
        await self._server.close()

    # -- failures on demand --------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500, code: int | None = None) -> None:
        """The next ``n`` requests get this error (after auth; nothing is recorded)."""
        self._failures.extend(_Failure(status, code or (20500 if status >= 500 else 21211)) for _ in range(n))

    def fail_mode(self, mode: str | None) -> None:
        """Every request until reset: "500" an error, "timeout" no answer, "refuse" a dropped connection."""
        if mode not in (None, "500", "timeout", "refuse"):
            raise ValueError(mode)
        self._mode = mode

    def slow(self, seconds: float) -> None:
        """Answer every request this much later (0 for normal speed)."""
        self._delay = seconds

    def reject(self, number: str, code: int = 21211) -> None:
        """Always refuse messages to ``number`` with this Twilio error (21211 invalid, 21610 unsubscribed)."""
        self._rejects[number] = code

    # -- the API ---------------------------------------------------------------------------

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return _error(401, 20003)
        self.requests += 1
        token = request.headers.get(TOKEN_HEADER)
        self.tokens.append(token)
        if self._delay:
            await asyncio.sleep(self._delay)
        if self._mode == "timeout":
            try:
                await asyncio.wait_for(self._closing.wait(), timeout=60)
            except TimeoutError:
                pass
            return _error(504, 20500)
        if self._mode == "refuse":
            assert request.transport is not None
            request.transport.close()  # the client sees the connection drop without an answer
            return web.Response()
        if self._mode == "500":
            return _error(500, 20500)
        if self._failures:
            failure = self._failures.pop(0)
            return _error(failure.status, failure.code)
        form = await request.post()
        # No await from here to the end: the token check and the recording cannot interleave.
        if token and token in self._by_token:
            return web.json_response(self._by_token[token], status=201)
        to, from_, body = (str(form.get(name, "")) for name in ("To", "From", "Body"))
        if not to:
            return _error(400, 21604)
        if not body:
            return _error(400, 21602)
        if not from_:
            return _error(400, 21606)
        if to in self._rejects:
            code = self._rejects[to]
            return _error(400, code, f"{ERROR_MESSAGES.get(code, 'Error')}: {to}")
        answer = self._resource(to, from_, body)
        # What tests want to see besides Twilio's answer: the callback URL and the token.
        self.messages.append(
            answer | {"status_callback": form.get("StatusCallback"), "idempotency_token": token}
        )
        if token:
            self._by_token[token] = answer
        return web.json_response(answer, status=201)

    def _authorised(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            credentials = base64.b64decode(encoded, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return (
            scheme.lower() == "basic"
            and credentials == f"{self.account_sid}:{self.auth_token}"
            and request.match_info["account_sid"] == self.account_sid
        )

    def _resource(self, to: str, from_: str, body: str) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
        }


def _error(status: int, code: int, message: str | None = None) -> web.Response:
    """Twilio's (legacy, non RFC-9457) error body, which the client turns into TwilioRestException."""
    return web.json_response(
        {
            "code": code,
            "message": message or ERROR_MESSAGES.get(code, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


@pytest.fixture(name="twilio_api")
async def twilio_api_fixture() -> AsyncIterator[FakeTwilioApi]:
    """``twilio_api``: a running fake Twilio API on 127.0.0.1 (random port), closed after the test.

    Use it by importing ``twilio_api_fixture`` into a test module (or listing this module in a
    conftest's ``pytest_plugins``)."""
    fake = await FakeTwilioApi().start()
    try:
        yield fake
    finally:
        await fake.close()
