"""A typhoon-night flood: signed SMS webhooks, API messages and Telegram updates from many
concurrent clients at real ``helpline serve`` processes, beside bare aiohttp handlers in the same run.

    python tests/bench/bench_flood.py [--seconds 10] [--concurrency 64]
                                      [--backends sqlite,postgres] [--processes 1,2,3]

* **Traffic.** Each client sends as fast as it is answered, rotating SMS (signed as Twilio signs,
  a fresh MessageSid), the JSON API (with an Idempotency-Key) and Telegram (the secret header, a
  fresh update_id). Every tenth request re-sends one already sent (same MessageSid, update_id or
  key), as Twilio and Telegram do when an answer is late. Senders are many distinct people, each
  sending a couple of messages, so the per-contact rate limit stays at its default (20 a minute)
  and never trips; what is measured is storing, routing and answering.
* **Providers.** The fake Twilio and Telegram APIs run in a process of their own; every Telegram
  update is answered with a real sendMessage to the fake, through aiogram.
* **Set-ups.** SQLite with one process; PostgreSQL (a throw-away database per set-up, admin URL
  from HELPLINE_TEST_PG_ADMIN) with 1, 2, 3 processes sharing one port (``--reuse-port``: the
  kernel spreads connections over the processes).
* **Checked afterwards.** ``helpline export messages``: every message answered 200 is stored,
  and none twice (a re-delivery never makes a second one). A failure there exits non-zero.

The baseline is bare aiohttp handlers (``bare_flood.py``) answering the same requests with fixed
bodies in one process. The machine is shared: figures are noisy, compare them within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from loadgen import Result, wait_until_up  # noqa: E402

from fakes.processes import (  # noqa: E402
    TELEGRAM_SECRET,
    FloodPlan,
    Serve,
    export,
    free_port,
    inbound_keys,
    listeners,
    service_env,
)

CHANNELS = ("sms", "web", "telegram")


@dataclass
class Outcome:
    """One set-up's flood: figures per channel and overall, and what was answered 200."""

    label: str
    overall: Result
    channels: dict[str, Result]
    statuses: collections.Counter[int | str]
    answered: set[tuple[str, str]] = field(default_factory=set)
    redeliveries: int = 0


async def flood(base: str, label: str, concurrency: int, seconds: float, run: str, warmup: float = 1.0) -> Outcome:
    plan = FloodPlan(run=run)
    lat: dict[str, list[float]] = {c: [] for c in CHANNELS}
    ok: dict[str, int] = dict.fromkeys(CHANNELS, 0)
    err: dict[str, int] = dict.fromkeys(CHANNELS, 0)
    statuses: collections.Counter[int | str] = collections.Counter()
    answered: set[tuple[str, str]] = set()
    seen: set[tuple[str, str]] = set()
    redeliveries = 0
    start = time.perf_counter() + warmup
    stop = start + seconds

    async def client(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal redeliveries
        while (t0 := time.perf_counter()) < stop:
            channel, key, (method, path, kwargs) = plan.next(i)
            if (channel, key) in seen:
                redeliveries += 1
            seen.add((channel, key))
            try:
                async with session.request(method, base + path, **kwargs) as resp:
                    await resp.read()
                    status: int | str = resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                status = type(exc).__name__
            t1 = time.perf_counter()
            if status == 200:
                answered.add((channel, key))
            if t0 >= start:
                statuses[status] += 1
                if status == 200:
                    ok[channel] += 1
                    lat[channel].append(t1 - t0)
                else:
                    err[channel] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(client(i, session) for i in range(concurrency)))
    names = {"sms": "  SMS webhook", "web": "  API message", "telegram": "  Telegram update"}
    channels = {c: Result(names[c], ok[c], err[c], seconds, lat[c]) for c in CHANNELS}
    overall = Result(label, sum(ok.values()), sum(err.values()), seconds, [x for c in CHANNELS for x in lat[c]])
    return Outcome(label, overall, channels, statuses, answered, redeliveries)


@contextlib.asynccontextmanager
async def process(args: list[str], cwd: str, ready: str | None = None) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        if ready is not None:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if ready not in line.decode():
                raise RuntimeError(f"{args[0]} did not start: {line!r}")
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 20)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def run_bare(tmp: str, concurrency: int, seconds: float) -> Outcome:
    port = free_port()
    async with process([str(HERE / "bare_flood.py"), "--port", str(port), "--secret", TELEGRAM_SECRET], tmp):
        await wait_until_up(f"http://127.0.0.1:{port}/healthz")
        return await flood(f"http://127.0.0.1:{port}", "bare aiohttp handlers", concurrency, seconds, "bare")


async def run_service(
    tmp: str, database_url: str | None, processes: int, concurrency: int, seconds: float, twilio: str, telegram: str,
) -> tuple[Outcome, str | None]:
    """Flood ``processes`` servers on one port; returns the figures and a problem found afterwards."""
    backend = "PostgreSQL" if database_url else "SQLite"
    label = f"{backend}, {processes} process{'es' if processes > 1 else ''}"
    var = Path(tmp) / f"var-{backend}-{processes}"
    url = database_url or f"sqlite+aiosqlite:///{var / 'helpline.db'}"
    env = service_env(url, var, twilio_url=twilio, telegram_url=telegram)
    port = free_port()
    servers = [Serve(env, port, var.parent / f"serve-{backend}-{processes}-{i}.log", reuse_port=processes > 1)
               for i in range(processes)]
    try:
        await servers[0].start(timeout=180)  # the first one prepares the database
        await asyncio.gather(*(s.start(timeout=120) for s in servers[1:]))
        await _all_listening(port, processes)
        outcome = await flood(f"http://127.0.0.1:{port}", label, concurrency, seconds, f"{backend[0]}{processes}")
    finally:
        codes = await asyncio.gather(*(s.stop() for s in servers))
    problem = None
    if any(code not in (0, None) for code in codes):
        problem = f"a server exited with {codes}: {servers[0].log_tail(1500)}"
    stored = collections.Counter(inbound_keys(await export(env, "messages")))
    missing = [k for k in outcome.answered if stored[k] == 0]
    twice = [k for k, n in stored.items() if n > 1]
    if missing or twice:
        problem = f"{len(missing)} answered messages not stored (e.g. {missing[:3]}), {len(twice)} stored twice (e.g. {twice[:3]})"
    else:
        outcome.label = label
        print(f"  verified in `helpline export messages`: {len(outcome.answered)} distinct messages answered 200 "
              f"(incl. {outcome.redeliveries} re-deliveries sent), each stored exactly once", flush=True)
    return outcome, problem


async def _all_listening(port: int, n: int) -> None:
    """With SO_REUSEPORT a health check may be answered by a sibling: wait until the kernel lists
    ``n`` listening sockets on the port (one per process)."""
    deadline = time.monotonic() + 120
    while listeners(port) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {listeners(port)} of {n} servers listen on port {port}")
        await asyncio.sleep(0.1)


def show(outcome: Outcome) -> None:
    print(outcome.overall.row())
    for result in outcome.channels.values():
        print(result.row())
    others = {str(k): v for k, v in outcome.statuses.items() if k != 200}
    if others:
        print(f"  answers other than 200: {others}")


async def main_async(args: argparse.Namespace) -> int:
    print(f"Flood: signed SMS webhooks + API messages + Telegram updates (1 in 10 a re-delivery), "
          f"{args.concurrency} concurrent clients, {args.seconds:g} s per set-up, {os.cpu_count()} cores "
          f"(shared: figures are noisy)")
    print("rate limit: the default 20 messages/min per sender; every sender is a different person sending a few")
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        twilio_port, telegram_port = free_port(), free_port()
        fakes = [str(HERE / "fake_providers.py"), "--twilio-port", str(twilio_port), "--telegram-port", str(telegram_port)]
        async with process(fakes, tmp, ready="ready"):
            twilio, telegram = f"http://127.0.0.1:{twilio_port}", f"http://127.0.0.1:{telegram_port}"
            bare = await run_bare(tmp, args.concurrency, args.seconds)
            show(bare)
            results: list[Outcome] = []
            setups: list[tuple[str, int]] = []
            if "sqlite" in args.backends:
                setups.append(("sqlite", 1))
            if "postgres" in args.backends:
                setups += [("postgres", n) for n in args.processes]
            for backend, n in setups:
                async with contextlib.AsyncExitStack() as stack:
                    url = await stack.enter_async_context(fresh_postgres(n)) if backend == "postgres" else None
                    outcome, problem = await run_service(tmp, url, n, args.concurrency, args.seconds, twilio, telegram)
                show(outcome)
                ratio = outcome.overall.throughput / bare.overall.throughput if bare.overall.throughput else 0
                print(f"  helpline throughput = {ratio:.0%} of the bare handlers ({outcome.label})", flush=True)
                if problem:
                    print(f"  PROBLEM: {problem}", flush=True)
                    problems.append(f"{outcome.label}: {problem}")
                results.append(outcome)
    print()
    print(f"{'set-up':<28} {'req/s':>8} {'vs bare':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for o in [bare, *results]:
        r = o.overall
        ratio = r.throughput / bare.overall.throughput if bare.overall.throughput else 0
        mx = max(r.latencies) * 1000 if r.latencies else float("nan")
        print(f"{o.label:<28} {r.throughput:>8.0f} {ratio:>8.0%} {r.pct(50):>8.1f} {r.pct(99):>8.1f} {mx:>8.1f}")
    pg = [o for o in results if o.label.startswith("PostgreSQL")]
    if len(pg) > 1 and pg[0].overall.throughput:
        print("PostgreSQL scaling: " + ", ".join(
            f"{o.label.split(', ')[1]} x{o.overall.throughput / pg[0].overall.throughput:.2f}" for o in pg))
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


@contextlib.asynccontextmanager
async def fresh_postgres(n: int) -> AsyncIterator[str]:
    """A throw-away database per set-up, so a later set-up does not run on the earlier ones' rows."""
    import asyncpg

    admin = os.environ.get("HELPLINE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"helpline_flood_{os.getpid()}_{n}"

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await admin_sql(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
    try:
        host = admin.split("://", 1)[1].rsplit("/", 1)[0]
        yield f"postgresql+asyncpg://{host}/{name}"
    finally:
        await admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--processes", default="1,2,3", help="PostgreSQL set-ups: processes behind one port")
    args = parser.parse_args()
    args.backends = {b.strip() for b in args.backends.split(",") if b.strip()}
    args.processes = [int(n) for n in args.processes.split(",") if n.strip()]
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
