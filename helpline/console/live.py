"""Live updates: ``/console/ws`` tells open console pages that something changed, at once.

The socket carries only a signal (``{"type": "changed", "v": n}``); the page then fetches its
own fragments (the queue, a conversation's thread) over plain HTTP, so what a user sees is
rendered with their permissions and masking exactly as a reload would, and a lost signal costs
nothing but a moment.

Where the signals come from:

* **Console actions** (claim, reply, close …) are written through ``console_write``, which pokes
  the hub of this instance after the commit, and on PostgreSQL also issues
  ``pg_notify('helpline_console')`` inside the transaction. Every instance LISTENs on that
  channel (one asyncpg connection each), so an operator connected to another instance sees the
  claim as soon as it commits: NOTIFY is delivered on commit, never for a rolled-back change.
* **Everything else** (a resident's message, a hand-off from the voice menu, the outbox worker
  marking a reply sent) is written by code that knows nothing of the console. While at least one
  socket is open, each instance polls a cheap fingerprint once a second — the newest message
  id, the newest audit event id (every hand-off writes one) and the number of unsent outbox
  rows, three index look-ups — and signals when it moves. This works the same on SQLite and
  PostgreSQL and across instances; with no socket open nothing is polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aiohttp import WSMsgType, web
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.appkeys import DB, SETTINGS
from helpline.console.auth import require
from helpline.console.sessions import same_origin
from helpline.db import Database
from helpline.models import Event, Message, OutboxItem

log = logging.getLogger("helpline.console.live")

CHANNEL = "helpline_console"
POLL_SECONDS = 1.0
_COALESCE_SECONDS = 0.05  # several changes in one burst become one signal
_HEARTBEAT = 25.0

_FINGERPRINT = select(
    select(func.max(Message.id)).scalar_subquery(),
    select(func.max(Event.id)).scalar_subquery(),
    select(func.count())
    .select_from(OutboxItem)
    .where(OutboxItem.status.in_(("pending", "sending", "failed")))
    .scalar_subquery(),
)


class LiveHub:
    """The open sockets of one instance, and the watcher that tells them about changes."""

    def __init__(self, db: Database, database_url: str) -> None:
        self.db = db
        self.database_url = database_url
        self.sockets: set[web.WebSocketResponse] = set()
        self.version = 0
        self._changed = asyncio.Event()
        self._someone = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    def poke(self) -> None:
        """Something changed: signal every socket soon (bursts are coalesced)."""
        self._changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Watch for changes while sockets are open; the loop idles when nobody is connected."""
        fingerprint: tuple[Any, ...] | None = None
        while not stop.is_set():
            if not self.sockets:
                fingerprint = None
                self._someone.clear()
                await _first(stop.wait(), self._someone.wait())
                continue
            if not self.db.is_sqlite and self._listener is None:
                await self._listen()
            current: tuple[Any, ...] | None
            try:
                async with self.db.read() as session:
                    current = tuple((await session.execute(_FINGERPRINT)).one())
            except Exception:  # the database may be restarting: keep the sockets, try again
                log.warning("event=console.live_poll_failed", exc_info=True)
                current = fingerprint
            if fingerprint is not None and current != fingerprint:
                self._changed.set()
            fingerprint = current
            await _first(stop.wait(), self._changed.wait(), asyncio.sleep(POLL_SECONDS))
            if self._changed.is_set():
                await asyncio.sleep(_COALESCE_SECONDS)
                self._changed.clear()
                await self.broadcast()
        await self.close()

    async def broadcast(self) -> None:
        self.version += 1
        message = {"type": "changed", "v": self.version}
        for ws in list(self.sockets):
            try:
                await ws.send_json(message)
            except (ConnectionError, RuntimeError):
                self.sockets.discard(ws)

    async def _listen(self) -> None:
        """PostgreSQL: LISTEN on the console channel so other instances' actions arrive at once."""
        url = make_url(self.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            conn = await asyncpg.connect(url, timeout=5)
            await conn.add_listener(CHANNEL, lambda *_: self.poke())
            conn.add_termination_listener(lambda _: self._lost())
        except (OSError, asyncpg.PostgresError, TimeoutError):
            log.warning("event=console.listen_failed (the poll still works)", exc_info=True)
            return
        self._listener = conn

    def _lost(self) -> None:
        self._listener = None  # reconnected on the next turn of the loop

    async def close(self) -> None:
        sockets, self.sockets = list(self.sockets), set()
        if sockets:
            await asyncio.wait(
                [asyncio.ensure_future(ws.close(code=1001, message=b"server shutdown")) for ws in sockets], timeout=2
            )
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    def add(self, ws: web.WebSocketResponse) -> None:
        self.sockets.add(ws)
        self._someone.set()


async def _first(*aws: Awaitable[Any]) -> None:
    """Wait until the first of these awaitables finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


HUB: web.AppKey[LiveHub] = web.AppKey("console_live_hub", LiveHub)


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx entry: the hub's watcher runs for the application's lifetime."""
    hub = LiveHub(app[DB], app[SETTINGS].database_url)
    app[HUB] = hub
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 10)
        except TimeoutError:
            task.cancel()


async def close_sockets(app: web.Application) -> None:
    """on_shutdown: say goodbye (1001 "going away") so browsers reconnect to another instance at
    once, and the shutdown does not wait for sockets that would stay open for hours."""
    hub = app.get(HUB)
    if hub is not None:
        await hub.close()


@asynccontextmanager
async def console_write(request: web.Request) -> AsyncIterator[AsyncSession]:
    """A write transaction for a console action; consoles everywhere hear of it once it commits."""
    db = request.app[DB]
    async with db.write() as session:
        yield session
        if not db.is_sqlite:
            await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    hub = request.app.get(HUB)
    if hub is not None:
        hub.poke()


async def websocket(request: web.Request) -> web.StreamResponse:
    """``GET /console/ws``: signed-in staff only, from our own pages only (Origin checked)."""
    await require(request)
    if not same_origin(request):
        raise web.HTTPForbidden(text="403: cross-site WebSocket refused")
    ws = web.WebSocketResponse(heartbeat=_HEARTBEAT, max_msg_size=4096)
    await ws.prepare(request)
    hub = request.app[HUB]
    hub.add(ws)
    try:
        await ws.send_json({"type": "hello", "v": hub.version})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str("pong")
            elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        hub.sockets.discard(ws)
    return ws
