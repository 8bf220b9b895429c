"""No overbooking across processes: two real ``helpline serve`` processes on one database (the
test PostgreSQL database, and the SQLite file) take many concurrent bookings for one slot, and
exactly its capacity is confirmed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from test_booking_support import ROUND_THE_CLOCK, count_bookings, load, next_hour_slot, outbox, slot_state

from helpline.booking.models import Booking
from helpline.config import Settings
from helpline.db import Database
from helpline.models import utcnow

ATTEMPTS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(settings: Settings, tmp_path: Path, name: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    env.update(HELPLINE_DATABASE_URL=settings.database_url, HELPLINE_VAR_DIR=str(tmp_path / name),
               HELPLINE_SECRET_KEY="test-secret-key-0123456789", HELPLINE_LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpline", "serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    return proc, f"http://127.0.0.1:{port}"


async def _wait_healthy(session: aiohttp.ClientSession, proc: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            async with session.get(f"{base}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                if resp.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        assert time.monotonic() < deadline, "server did not come up"
        await asyncio.sleep(0.2)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def test_two_server_processes_confirm_exactly_the_capacity(settings: Settings, db: Database, tmp_path: Path) -> None:
    await load(db, ROUND_THE_CLOCK, utcnow())  # provider "pa": 3 seats an hour
    slot = next_hour_slot("pa", 6)
    servers: list[tuple[subprocess.Popen[str], str]] = []
    try:
        async with aiohttp.ClientSession() as http:
            # One after the other: what is under test is booking, not two instances preparing the
            # database at the same moment.
            for name in ("one", "two"):
                servers.append(_start(settings, tmp_path, name))
                await _wait_healthy(http, *servers[-1])

            async def attempt(i: int) -> int:
                base = servers[i % 2][1]
                body = {"from": f"web:proc{i}", "service": "plumbing", "slot": slot, "name": f"居民{i}",
                        "address": "海曙区石碶街道雅戈尔大道100号"}
                async with http.post(f"{base}/api/v1/bookings", json=body) as resp:
                    return resp.status

            statuses = sorted(await asyncio.gather(*(attempt(i) for i in range(ATTEMPTS))))
            listed = []
            async with http.get(f"{servers[1][1]}/api/v1/services/plumbing/slots?days=2") as resp:
                listed = [s for s in await resp.json() if s["slot"] == slot]
    finally:
        for proc, _ in servers:
            _stop(proc)
    assert statuses == [201] * 3 + [409] * (ATTEMPTS - 3)
    assert await slot_state(db, slot) == (3, 3)
    assert await count_bookings(db, Booking.slot_id == slot) == 3
    assert len([o for o in await outbox(db, "dispatch") if o.urn == "tel:+8613900000001"]) == 3
    assert [s["remaining"] for s in listed] == [0]
