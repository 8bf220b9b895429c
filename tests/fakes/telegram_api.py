"""A small fake of the Telegram Bot API that real aiogram can talk to.

It speaks the wire protocol: ``POST /bot{token}/{method}`` (form or multipart fields, as aiogram
sends them; a query string works too) answers ``{"ok": true, "result": …}`` or Telegram's error
body ``{"ok": false, "error_code": …, "description": …}``; files are served from
``GET /file/bot{token}/{file_path}``. Methods: getMe, sendMessage, answerCallbackQuery,
sendChatAction, getFile, setWebhook, deleteWebhook, getWebhookInfo, getUpdates.

Everything is recorded: ``calls`` (method and decoded parameters, in order) and ``downloads``
(file paths fetched). On demand: ``block(chat_id)`` makes sendMessage answer 403 "Forbidden: bot
was blocked by the user"; ``fail_next(method, status, …)`` fails the next call of a method
(500, or 429 with ``retry_after``); ``add_file(...)`` registers a file for getFile and download;
``queue_update(...)`` feeds getUpdates, which long-polls like Telegram (until an update is queued,
its ``timeout`` passes or the fake closes) and confirms updates below ``offset``.

Outages: ``fail_mode("500" | "timeout" | "refuse")`` makes every sendMessage fail until reset with
``fail_mode(None)`` (an error answer, no answer at all, or a dropped connection); ``slow(seconds)``
answers every call later.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

TOKEN = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Helpline", "username": "helpline_test_bot"}
BLOCKED = "Forbidden: bot was blocked by the user"
# Parameters aiogram sends as JSON text inside the form.
_JSON_FIELDS = {"reply_markup", "allowed_updates", "entities", "link_preview_options", "reply_parameters"}
_LONG_POLL_CAP = 5.0  # seconds: a getUpdates with nothing to return waits at most this long here


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    data: bytes
    path: str
    size: int | None


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None


class FakeTelegramApi:
    """Start with ``await fake.start()``; ``fake.url`` is what HELPLINE_TELEGRAM_API_URL should be."""

    def __init__(self, token: str = TOKEN, *, port: int | None = None) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.downloads: list[str] = []
        self.webhook: dict[str, Any] | None = None
        self.confirmed = 0  # getUpdates offset seen: updates below it are confirmed and gone
        self._blocked: set[int] = set()
        self._files: dict[str, _File] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._updates: list[dict[str, Any]] = []
        self._message_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._closing = False
        self._mode: str | None = None
        self._delay = 0.0
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._server = TestServer(app, host="127.0.0.1", port=port)

    @property
    def url(self) -> str:
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> FakeTelegramApi:
        await self._server.start_server(shutdown_timeout=1.0)
        return self

    async def close(self) -> None:
        self._closing = True
        await self._notify()  # let long polls end
        await self._server.close()

    # -- set-up and inspection ----------------------------------------------------------

    def fail_mode(self, mode: str | None) -> None:
        """Every sendMessage until reset: "500" an error, "timeout" no answer, "refuse" a dropped connection."""
        if mode not in (None, "500", "timeout", "refuse"):
            raise ValueError(mode)
        self._mode = mode

    def slow(self, seconds: float) -> None:
        """Answer every call this much later (0 for normal speed)."""
        self._delay = seconds

    def block(self, chat_id: int) -> None:
        """From now on sendMessage to ``chat_id`` answers 403, as when the user blocked the bot."""
        self._blocked.add(int(chat_id))

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(int(chat_id))

    def fail_next(self, method: str, status: int = 500, description: str | None = None,
                  retry_after: int | None = None) -> None:
        """The next call of ``method`` fails with this error (nothing else happens)."""
        text = description or {429: "Too Many Requests: retry later", 500: "Internal Server Error"}.get(
            status, "Bad Request: something is wrong")
        self._failures.setdefault(method.lower(), []).append(_Failure(status, text, retry_after))

    def add_file(self, file_id: str, data: bytes, path: str, *, size: int | None = -1,
                 unique_id: str | None = None) -> None:
        """A file getFile knows; ``size`` None leaves file_size out (-1: the real length)."""
        self._files[file_id] = _File(file_id, unique_id or f"u-{file_id}", data, path,
                                     len(data) if size == -1 else size)

    async def queue_update(self, update: dict[str, Any]) -> None:
        """An update for getUpdates to hand out."""
        self._updates.append(update)
        await self._notify()

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Parameters of every accepted sendMessage (optionally to one chat), in order."""
        return [c.params for c in self.calls_of("sendMessage")
                if c.params.get("_ok") and (chat_id is None or c.params.get("chat_id") == chat_id)]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        """Wait until ``condition()`` holds (checked whenever a call arrives); a safety timeout only."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- the API --------------------------------------------------------------------------

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.body_exists:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        params = {k: _decode(k, v) for k, v in params.items()}
        call = Call(method, params)
        self.calls.append(call)
        try:
            if self._delay:
                await asyncio.sleep(self._delay)
            if self._mode is not None and method.lower() == "sendmessage":
                if self._mode == "timeout":
                    for _ in range(600):  # no answer (until the fake closes or a minute passes)
                        if self._closing:
                            break
                        await asyncio.sleep(0.1)
                    return _error(504, "Gateway Timeout")
                if self._mode == "refuse":
                    assert request.transport is not None
                    request.transport.close()  # the client sees the connection drop without an answer
                    return web.Response()
                return _error(500, "Internal Server Error")
            failures = self._failures.get(method.lower())
            if failures:
                failure = failures.pop(0)
                extra = {"parameters": {"retry_after": failure.retry_after}} if failure.retry_after else {}
                return _error(failure.status, failure.description, **extra)
            handler = getattr(self, "_m_" + method.lower(), None)
            if handler is None:
                return _error(404, "Not Found: method not found")
            return await handler(params)
        finally:
            await self._notify()

    async def _m_getme(self, params: dict[str, Any]) -> web.Response:
        return _ok(BOT_USER)

    async def _m_sendmessage(self, params: dict[str, Any]) -> web.Response:
        chat_id, text = params.get("chat_id"), params.get("text")
        if chat_id is None:
            return _error(400, "Bad Request: chat_id is empty")
        if not text:
            return _error(400, "Bad Request: message text is empty")
        if len(str(text)) > 4096:
            return _error(400, "Bad Request: message is too long")
        if chat_id in self._blocked:
            return _error(403, BLOCKED)
        params["_ok"] = True
        return _ok({
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Resident"},
            "from": BOT_USER,
            "text": text,
        })

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> web.Response:
        if not params.get("callback_query_id"):
            return _error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return _ok(True)

    async def _m_sendchataction(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)

    async def _m_getfile(self, params: dict[str, Any]) -> web.Response:
        file = self._files.get(str(params.get("file_id", "")))
        if file is None:
            return _error(400, "Bad Request: invalid file_id")
        result: dict[str, Any] = {"file_id": file.file_id, "file_unique_id": file.file_unique_id,
                                  "file_path": file.path}
        if file.size is not None:
            result["file_size"] = file.size
        return _ok(result)

    async def _m_setwebhook(self, params: dict[str, Any]) -> web.Response:
        if not params.get("url"):
            return _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = params
        return _ok(True)

    async def _m_deletewebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = None
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._updates.clear()
        return _ok(True)

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> web.Response:
        hook = self.webhook or {}
        return _ok({"url": hook.get("url", ""), "has_custom_certificate": False,
                    "pending_update_count": len(self._updates)})

    async def _m_getupdates(self, params: dict[str, Any]) -> web.Response:
        if self.webhook is not None:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active; "
                               "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = min(float(params.get("timeout") or 0), _LONG_POLL_CAP)
        if offset:
            self.confirmed = max(self.confirmed, offset)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0 and not self._closing:
            async with self._changed:
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: bool(self._updates) or self._closing), timeout)
                except TimeoutError:
                    pass
        return _ok(self._updates[:limit])

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        path = request.match_info["path"]
        self.downloads.append(path)
        await self._notify()
        for file in self._files.values():
            if file.path == path:
                return web.Response(body=file.data, content_type="application/octet-stream")
        return _error(404, "Not Found")


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    if key in ("chat_id", "offset", "limit", "message_id") and value.lstrip("-").isdigit():
        return int(value)
    return value


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, **extra: Any) -> web.Response:
    return web.json_response({"ok": False, "error_code": status, "description": description, **extra},
                             status=status)


@pytest.fixture(name="telegram_api")
async def telegram_api_fixture() -> AsyncIterator[FakeTelegramApi]:
    """``telegram_api``: a running fake Bot API on 127.0.0.1 (random port), closed after the test.

    Use it by importing ``telegram_api_fixture`` into a test module."""
    fake = await FakeTelegramApi().start()
    try:
        yield fake
    finally:
        await fake.close()
