"""Benchmark POST /api/v1/messages against a bare aiohttp handler, in the same run.

    python tests/bench/bench_messages.py [--seconds 10] [--concurrency 32] [--postgres]

``--postgres`` runs the service on a throw-away database on the machine's PostgreSQL (created and
dropped by this script; admin URL from HELPLINE_TEST_PG_ADMIN), instead of SQLite.

Both servers run as their own processes; this process is the load generator. Each client is one
web contact sending greetings (zh and en alternately), so every request stores an inbound message,
routes it and stores the reply.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from loadgen import RequestFactory, Result, run_load, wait_until_up  # noqa: E402

TEXTS = ("你好", "hello", "您好，在吗", "help")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(args: list[str], env: dict[str, str], cwd: str) -> Iterator[None]:
    proc = subprocess.Popen([sys.executable, *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    import asyncpg

    admin = os.environ.get("HELPLINE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"helpline_bench_{os.getpid()}"

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\''))
    try:
        host = admin.split("://", 1)[1].rsplit("/", 1)[0]
        yield f"postgresql+asyncpg://{host}/{name}"
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_message(i: int, n: int) -> tuple[str, str, dict]:
    return "POST", "/api/v1/messages", {"json": {"from": f"web:bench{i}", "text": TEXTS[n % len(TEXTS)]}}


async def measure(name: str, base: str, make: RequestFactory, concurrency: int, seconds: float) -> Result:
    await wait_until_up(base + "/healthz")
    return await run_load(base, make, concurrency=concurrency, seconds=seconds, name=name)


def compare(
    make: RequestFactory, name: str, seconds: float, concurrency: int, database_url: str | None,
    extra_env: dict[str, str] | None = None,
) -> tuple[Result, Result]:
    """Drive the bare baseline, then a real ``helpline serve``, with the same requests."""
    here = Path(__file__).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    # Each simulated client sends far more than a person would: the per-contact rate limit is off,
    # so every request is routed and answered (what is measured is the pipeline, not the refusal).
    env |= {"HELPLINE_LOG_LEVEL": "WARNING", "HELPLINE_RATE_LIMIT_PER_MINUTE": "0", **(extra_env or {})}
    if database_url:
        env["HELPLINE_DATABASE_URL"] = database_url
    with tempfile.TemporaryDirectory() as tmp:
        bare_port, app_port = free_port(), free_port()
        with server([str(here / "bare_server.py"), "--port", str(bare_port)], env, tmp):
            bare = asyncio.run(measure("bare aiohttp handler", f"http://127.0.0.1:{bare_port}", make, concurrency, seconds))
        label = f"{name} (" + ("PostgreSQL" if database_url else "SQLite") + ")"
        with server(["-m", "helpline", "serve", "--port", str(app_port)], env, tmp):
            real = asyncio.run(measure(label, f"http://127.0.0.1:{app_port}", make, concurrency, seconds))
    return bare, real


def cli(doc: str | None, what: str, make: RequestFactory, name: str, extra_env: dict[str, str] | None = None) -> tuple[Result, Result]:
    """The command line both benchmarks share: parse, run on SQLite or PostgreSQL, print both rows."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL database")
    args = parser.parse_args()
    if args.postgres:
        with throwaway_postgres() as url:
            bare, real = compare(make, name, args.seconds, args.concurrency, url, extra_env)
    else:
        bare, real = compare(make, name, args.seconds, args.concurrency, None, extra_env)
    print(f"{what}, {args.concurrency} concurrent clients, {args.seconds:g} s each, {os.cpu_count()} cores")
    print(bare.row())
    print(real.row())
    ratio = real.throughput / bare.throughput if bare.throughput else 0
    print(f"helpline throughput = {ratio:.0%} of the bare handler")
    return bare, real


def main() -> None:
    cli(__doc__, "POST /api/v1/messages", make_message, "helpline")


if __name__ == "__main__":
    main()
