"""The fake Twilio REST API and the fake Telegram Bot API in a process of their own, so that under
a flood they do not take the load generator's CPU (and its latency figures) with them.

    python tests/bench/fake_providers.py --twilio-port A --telegram-port B

Runs until SIGTERM or SIGINT; then prints one JSON line: what each fake received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from fakes.telegram_api import FakeTelegramApi  # noqa: E402
from fakes.twilio_api import FakeTwilioApi  # noqa: E402


async def serve(twilio_port: int, telegram_port: int) -> None:
    twilio = await FakeTwilioApi(port=twilio_port).start()
    telegram = await FakeTelegramApi(port=telegram_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await twilio.close()
    await telegram.close()
    print(json.dumps({"twilio_messages": len(twilio.messages), "twilio_requests": twilio.requests,
                      "telegram_sent": len(telegram.sent())}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--twilio-port", type=int, required=True)
    parser.add_argument("--telegram-port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.twilio_port, args.telegram_port))


if __name__ == "__main__":
    main()
