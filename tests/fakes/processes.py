"""Real ``helpline serve`` processes for load and fault tests, and the signed requests a flood sends.

Nothing here is a stand-in for our own code: each server is ``python -m helpline serve`` in its
own process, on a real database, talking to the fake Twilio and Telegram servers over HTTP. Used
by ``tests/bench/bench_flood.py`` and by the crash, outage, duplicate and multi-instance tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import signal
import socket
import sys
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
from twilio.request_validator import RequestValidator

from fakes.telegram_api import TOKEN as TELEGRAM_TOKEN
from fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

REPO = Path(__file__).resolve().parents[2]
PUBLIC_URL = "https://helpline.example.org"  # what Twilio signs; the servers listen on 127.0.0.1
TELEGRAM_SECRET = "flood-secret-0123456789"
SECRET_KEY = "flood-test-secret-key-0123456789"
_validator = RequestValidator(AUTH_TOKEN)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listeners(port: int) -> int:
    """How many sockets listen on 127.0.0.1/0.0.0.0 ``port`` (several with SO_REUSEPORT), from /proc."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def service_env(
    database_url: str,
    var_dir: Path,
    *,
    twilio_url: str | None = None,
    telegram_url: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a ``helpline serve`` wired to the fakes (HELPLINE_* from the caller's
    environment are dropped, so a developer's settings cannot leak into a test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    env |= {
        "HELPLINE_DATABASE_URL": database_url,
        "HELPLINE_VAR_DIR": str(var_dir),
        "HELPLINE_SECRET_KEY": SECRET_KEY,
        "HELPLINE_PUBLIC_URL": PUBLIC_URL,
        "HELPLINE_LOG_LEVEL": "WARNING",
        "HELPLINE_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
    }
    if twilio_url is not None:
        env |= {
            "HELPLINE_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "HELPLINE_TWILIO_FROM": FROM_NUMBER,
            "HELPLINE_TWILIO_API_URL": twilio_url,
        }
    if telegram_url is not None:
        env |= {
            "HELPLINE_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
            "HELPLINE_TELEGRAM_SECRET": TELEGRAM_SECRET,
            "HELPLINE_TELEGRAM_API_URL": telegram_url,
        }
    env |= {f"HELPLINE_{k.upper()}": v for k, v in extra.items()}
    return env


class Serve:
    """One ``helpline serve`` process; its output goes to a log file (never a pipe that could fill)."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path, *, reuse_port: bool = False) -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
        self.reuse_port = reuse_port
        self.proc: asyncio.subprocess.Process | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 90.0) -> Serve:
        args = [sys.executable, "-m", "helpline", "serve", "--port", str(self.port)]
        if self.reuse_port:
            args.append("--reuse-port")
        before = listeners(self.port)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        cwd = self.env["HELPLINE_VAR_DIR"]
        Path(cwd).mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            *args, env=self.env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=self._log, stderr=self._log,
        )
        await self.wait_healthy(timeout)
        # With SO_REUSEPORT a sibling may have answered the health check: wait for our own socket.
        deadline = time.monotonic() + timeout
        while listeners(self.port) <= before:
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"helpline serve on port {self.port} is not listening:\n{self.log_tail()}")
            await asyncio.sleep(0.1)
        return self

    async def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                assert self.proc is not None
                if self.proc.returncode is not None:
                    raise RuntimeError(f"helpline serve exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    async with session.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"helpline serve on port {self.port} did not come up:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    async def kill9(self) -> None:
        """SIGKILL: no shutdown hooks, no released claims, nothing flushed."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        self._close_log()

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful shutdown), SIGKILL if it does not end in time."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._close_log()
        return self.proc.returncode if self.proc is not None else None

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


async def helpline_cli(env: dict[str, str], *args: str, timeout: float = 60.0) -> str:
    """Run ``helpline ARGS`` in a subprocess and return its stdout (raises on a non-zero exit)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "helpline", *args, env=env, cwd=env["HELPLINE_VAR_DIR"],
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"helpline {' '.join(args)} exited {proc.returncode}: {err.decode(errors='replace')}")
    return out.decode()


async def export(env: dict[str, str], kind: str) -> list[dict[str, Any]]:
    """``helpline export KIND`` (JSON lines), parsed."""
    return [json.loads(line) for line in (await helpline_cli(env, "export", kind)).splitlines() if line.strip()]


# -- what a flood sends ------------------------------------------------------------------------

TEXTS = ("你好", "小麦赤霉病怎么防", "hello", "my cow is bloated", "路口的路灯坏了", "低保怎么申请", "help")


def sms_form(sid: str, sender: str, body: str) -> dict[str, str]:
    return {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": sender, "To": "+8657400000000", "Body": body}


def sms_request(form: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    """A POST /twilio/sms signed exactly as Twilio signs it (over the public URL)."""
    signature = _validator.compute_signature(PUBLIC_URL + "/twilio/sms", form)
    return "POST", "/twilio/sms", {"data": form, "headers": {"X-Twilio-Signature": signature}}


def api_request(sender: str, text: str, key: str | None = None) -> tuple[str, str, dict[str, Any]]:
    headers = {"Idempotency-Key": key} if key else {}
    return "POST", "/api/v1/messages", {"json": {"from": sender, "text": text}, "headers": headers}


def telegram_update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Resident"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Resident", "language_code": "zh"},
            "text": text,
        },
    }


def telegram_request(update: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    return "POST", "/telegram/webhook", {
        "data": json.dumps(update, ensure_ascii=False).encode(),
        "headers": {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"},
    }


class FloodPlan:
    """Mixed traffic from many distinct senders (as in a real flood: each sender is a person),
    with a share of re-deliveries of a MessageSid / update_id / Idempotency-Key already sent.

    ``next(client)`` gives ``(channel, provider key, request)``; the provider key identifies the
    message whatever the channel, so a caller can check each 200-answered one is stored once.
    """

    def __init__(self, *, redeliver_every: int = 10, senders_per_client: int = 8, run: str = "r") -> None:
        self.redeliver_every = redeliver_every
        self.senders_per_client = senders_per_client
        self.run = run  # keeps ids of several runs on one database apart
        self._n = itertools.count(1)
        self._sent: dict[str, list[tuple[str, str, tuple[str, str, dict[str, Any]]]]] = {}
        self._update_ids = itertools.count(1)
        self._update_base = zlib.crc32(run.encode()) % 100_000 * 100_000

    def next(self, client: int) -> tuple[str, str, tuple[str, str, dict[str, Any]]]:
        n = next(self._n)
        earlier = self._sent.get("all", [])
        if earlier and n % self.redeliver_every == 0:
            return earlier[(n * 7919) % len(earlier)]  # a re-delivery of something already sent
        channel = ("sms", "api", "telegram")[n % 3]
        person = client * self.senders_per_client + n % self.senders_per_client
        text = TEXTS[n % len(TEXTS)]
        if channel == "sms":
            sid = "SM" + hashlib.md5(f"{self.run}:{n}".encode()).hexdigest()
            item = ("sms", sid, sms_request(sms_form(sid, f"+86139{person:08d}", text)))
        elif channel == "api":
            key = f"{self.run}-{n}"
            sender = f"web:flood{self.run}-{person}"
            item = ("web", f"api:{sender}:{key}", api_request(sender, text, key))
        else:
            update_id = self._update_base + next(self._update_ids)
            item = ("telegram", str(update_id), telegram_request(telegram_update(update_id, 700_000_000 + person, text)))
        self._sent.setdefault("all", []).append(item)
        return item


def inbound_keys(messages: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(channel, provider_id) of every stored inbound message that has a provider id."""
    return [(m["channel"], m["provider_id"]) for m in messages if m["direction"] == "in" and m["provider_id"]]


Item = tuple[str, str, tuple[str, str, dict[str, Any]]]


async def send(session: aiohttp.ClientSession, base: str, item: Item) -> int | str:
    """Send one flood item; the HTTP status, or the name of the connection error."""
    _channel, _key, (method, path, kwargs) = item
    try:
        async with session.request(method, base + path, **kwargs) as resp:
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return type(exc).__name__


async def blast(base: str, items: list[Item], concurrency: int = 16) -> dict[tuple[str, str], list[int | str]]:
    """Send ``items`` from ``concurrency`` clients at once; every answer, by (channel, provider key)."""
    answers: dict[tuple[str, str], list[int | str]] = {}
    queue = list(reversed(items))

    async def client(session: aiohttp.ClientSession) -> None:
        while queue:
            item = queue.pop()
            answers.setdefault((item[0], item[1]), []).append(await send(session, base, item))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return answers
