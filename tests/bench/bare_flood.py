"""The flood's baseline: the bare handlers of ``bare_server.py`` plus a bare Telegram webhook
(secret checked, JSON parsed, 200), so every request of the mixed flood has a bare twin.

    python tests/bench/bare_flood.py --port PORT
"""

from __future__ import annotations

import argparse
import hmac
import json
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))
from bare_server import healthz, messages, sms  # noqa: E402

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def telegram(request: web.Request) -> web.Response:
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), request.app["secret"].encode()):
        raise web.HTTPUnauthorized()
    update = json.loads(await request.read())
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        return web.json_response({"error": "bad"}, status=400)
    return web.Response(status=200)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    app = web.Application()
    app["secret"] = args.secret
    app.router.add_post("/api/v1/messages", messages)
    app.router.add_post("/twilio/sms", sms)
    app.router.add_post("/telegram/webhook", telegram)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
