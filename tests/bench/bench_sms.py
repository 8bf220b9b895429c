"""Benchmark the SMS webhook (signed Twilio requests, concurrent senders) against a bare aiohttp
handler that returns fixed TwiML, in the same run.

    python tests/bench/bench_sms.py [--seconds 10] [--concurrency 32] [--postgres]

Every request is signed exactly as Twilio signs it and has a fresh MessageSid; each sender is its
own phone number, texting greetings and questions in turn, so every request is verified, stored,
routed (knowledge search included) and answered in TwiML.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).parent))
from bench_messages import cli  # noqa: E402

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


def main() -> None:
    env = {"HELPLINE_TWILIO_AUTH_TOKEN": TOKEN, "HELPLINE_PUBLIC_URL": PUBLIC_URL}
    _, real = cli(__doc__, "POST /twilio/sms, signed", make_sms, "helpline SMS", env)
    print(f"helpline SMS p99 {real.pct(99):.1f} ms (targets: >= 50 % of the bare handler's throughput, p99 < 100 ms)")


if __name__ == "__main__":
    main()
