"""Abuse at the edge of a real ``helpline serve``: oversized bodies and slow clients.

* Every POST route the app has (found from its router, so a new one is covered) refuses a body
  announced over the limit with a JSON 413 before reading it, and one streamed past the limit
  without announcing its length (chunked) too.
* Slow clients are cut off (HELPLINE_CLIENT_TIMEOUT_SECONDS, 1 s here): one that trickles its
  headers, one that sends part of its body and stalls (408 JSON), one that connects and says
  nothing. Raw sockets, because an HTTP client library would not misbehave like this.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fakes.processes import Serve, free_port, service_env

from helpline.app import MAX_BODY, create_app
from helpline.config import Settings

TIMEOUT = 1.0  # HELPLINE_CLIENT_TIMEOUT_SECONDS for these servers


def post_routes() -> list[str]:
    """A concrete path for every POST route of the app (placeholders filled with plausible values)."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///unused.db", telegram_token="1:" + "a" * 30,
                              telegram_secret="s"))
    fill = {"fmt": "json", "tail": "x", "id": "0" * 32, "number": "100001", "action": "register"}
    paths = set()
    for route in app.router.routes():
        if route.method not in ("POST", "*"):
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        paths.add(re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: fill.get(m.group(1), "x1"), path))
    return sorted(p for p in paths if p)


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Serve]:
    """One server for the module (SQLite: these limits sit in front of any database)."""
    tmp = tmp_path_factory.mktemp("abuse")
    env = service_env(_sqlite_url, tmp / "var", client_timeout_seconds=str(TIMEOUT),
                      telegram_token="1:" + "a" * 30, telegram_secret="abuse-secret")
    serve = await Serve(env, free_port(), tmp / "serve.log").start()
    yield serve
    await serve.stop()


async def _exchange(port: int, data: bytes, *, wait: float = 10.0) -> tuple[bytes, float]:
    """Send ``data`` and read one response (or until the server closes); returns it and how long it took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(data)
    try:
        await writer.drain()
        answer = await asyncio.wait_for(_response(reader), wait)
    finally:
        writer.close()
    return answer, time.monotonic() - started


async def _response(reader: asyncio.StreamReader) -> bytes:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial  # closed without (a whole) answer
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    return head + (await reader.readexactly(int(match.group(1))) if match else b"")


def _status_and_json(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body.decode()) if body.strip() else {}


async def test_every_post_route_refuses_an_oversized_body_with_json_413(server: Serve) -> None:
    routes = post_routes()
    assert {"/api/v1/messages", "/twilio/sms", "/telegram/webhook", "/"} <= set(routes), routes
    for path in routes:
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {MAX_BODY + 1}\r\n\r\n").encode()
        answer, _ = await _exchange(server.port, head + b"{" * 1000)
        status, body = _status_and_json(answer)
        assert status == 413, (path, answer[:300])
        assert body == {"error": "request body too large"}, (path, body)
    # Streamed without a length: refused once the limit is passed, not read to the end.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"a" * 65536
    try:
        for _ in range(MAX_BODY // len(chunk) + 2):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
    except ConnectionError:
        pass  # the server may close as soon as it answered
    answer = await asyncio.wait_for(_response(reader), 20)
    writer.close()
    status, body = _status_and_json(answer)
    assert status == 413 and body == {"error": "request body too large"}


async def test_slow_clients_are_cut_off(server: Serve) -> None:
    # Headers trickled a byte at a time: the connection is closed, nothing is answered.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    closed_after = None
    for byte in b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 200:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            closed_after = time.monotonic() - started
            break
        if reader.at_eof() or (await _closed(reader)):
            closed_after = time.monotonic() - started
            break
        await asyncio.sleep(0.05)
    writer.close()
    assert closed_after is not None, "a client trickling its headers was never cut off"

    # Part of the body, then nothing: 408 as JSON, and the connection is closed.
    head = b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    answer, _took = await _exchange(server.port, head + b'{"from": "web:slow", "te')
    status, body = _status_and_json(answer)
    assert status == 408 and body == {"error": "the request body came too slowly"}

    # Connected, silent: closed without an answer.
    answer, _took = await _exchange(server.port, b"")
    assert answer == b""

    # Meanwhile the line still answers everyone else, and the slow body stored nothing.
    answer, _ = await _exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert _status_and_json(answer) == (200, {"status": "ok"})
    assert "Traceback" not in server.log_tail(100_000)


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(1), 0.01)
    except TimeoutError:
        return False
    return data == b""
