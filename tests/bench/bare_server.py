"""The baseline: bare aiohttp handlers that answer POST /api/v1/messages (fixed JSON) and
POST /twilio/sms (fixed TwiML).

It parses the JSON like the real service does and returns a body of the same shape, so the
difference to the real service is what Helpline itself costs: validation, storage, routing.
"""

from __future__ import annotations

import argparse
import json

from aiohttp import web

REPLY = {
    "conversation_id": "0" * 32,
    "intent": "menu",
    "lang": "zh",
    "reply": {"text": "您好，这里是便民服务热线。", "options": []},
    "article": None,
    "grid": None,
    "case": None,
    "booking": None,
}


async def messages(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    if not isinstance(body, dict) or not body.get("text"):
        return web.json_response({"error": "bad"}, status=400)
    return web.json_response(REPLY)


TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>您好，这里是便民服务热线。</Message></Response>'


async def sms(request: web.Request) -> web.Response:
    """Fixed TwiML, after reading the form as the real webhook does."""
    form = await request.post()
    if "MessageSid" not in form:
        return web.Response(status=400)
    return web.Response(text=TWIML, content_type="application/xml")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/api/v1/messages", messages)
    app.router.add_post("/twilio/sms", sms)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
