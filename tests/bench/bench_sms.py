"""Benchmark the SMS webhook (signed Twilio requests, concurrent senders) against a bare aiohttp
handler that returns fixed TwiML, in the same run.

    python tests/bench/bench_sms.py [--seconds 10] [--concurrency 32] [--postgres]

Every request is signed exactly as Twilio signs it and has a fresh MessageSid; each sender is its
own phone number, texting greetings and questions in turn, so every request is verified, stored,
routed (knowledge search included) and answered in TwiML.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
from pathlib import Path

from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).parent))
from bench_messages import free_port, server, throwaway_postgres  # noqa: E402
from loadgen import Result, run_load, wait_until_up  # noqa: E402

TOKEN = "bench-auth-token-0123456789abcdef"
PUBLIC_URL = "https://helpline.example.org"
TEXTS = ("你好", "小麦赤霉病怎么防", "hello", "my cow is bloated", "路口的路灯坏了", "CX 12345")
_sids = itertools.count(1)
_validator = RequestValidator(TOKEN)


def make_sms(i: int, n: int) -> tuple[str, str, dict]:
    form = {
        "MessageSid": f"SM{next(_sids):032x}",
        "AccountSid": "AC" + "0" * 32,
        "From": f"+86138{i:08d}",
        "To": "+8657400000000",
        "Body": TEXTS[n % len(TEXTS)],
    }
    signature = _validator.compute_signature(PUBLIC_URL + "/twilio/sms", form)
    return "POST", "/twilio/sms", {"data": form, "headers": {"X-Twilio-Signature": signature}}


async def measure(name: str, base: str, concurrency: int, seconds: float) -> Result:
    await wait_until_up(base + "/healthz")
    return await run_load(base, make_sms, concurrency=concurrency, seconds=seconds, name=name)


def run(seconds: float, concurrency: int, database_url: str | None) -> tuple[Result, Result]:
    here = Path(__file__).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    env |= {"HELPLINE_LOG_LEVEL": "WARNING", "HELPLINE_TWILIO_AUTH_TOKEN": TOKEN, "HELPLINE_PUBLIC_URL": PUBLIC_URL}
    if database_url:
        env["HELPLINE_DATABASE_URL"] = database_url
    with tempfile.TemporaryDirectory() as tmp:
        bare_port, app_port = free_port(), free_port()
        with server([str(here / "bare_server.py"), "--port", str(bare_port)], env, tmp):
            bare = asyncio.run(measure("bare TwiML handler", f"http://127.0.0.1:{bare_port}", concurrency, seconds))
        label = "helpline SMS (" + ("PostgreSQL" if database_url else "SQLite") + ")"
        with server(["-m", "helpline", "serve", "--port", str(app_port)], env, tmp):
            real = asyncio.run(measure(label, f"http://127.0.0.1:{app_port}", concurrency, seconds))
    return bare, real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL database")
    args = parser.parse_args()
    if args.postgres:
        with throwaway_postgres() as url:
            bare, real = run(args.seconds, args.concurrency, url)
    else:
        bare, real = run(args.seconds, args.concurrency, None)
    print(f"POST /twilio/sms, signed, {args.concurrency} concurrent senders, {args.seconds:g} s each, {os.cpu_count()} cores")
    print(bare.row())
    print(real.row())
    ratio = real.throughput / bare.throughput if bare.throughput else 0
    print(f"helpline throughput = {ratio:.0%} of the bare handler; p99 {real.pct(99):.1f} ms (target: >= 50 %, p99 < 100 ms)")


if __name__ == "__main__":
    main()
