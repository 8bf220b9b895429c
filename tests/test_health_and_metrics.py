"""Operational endpoints: health, Prometheus metrics, request ids, no stack traces."""

from __future__ import annotations

from aiohttp import web

from helpline.app import create_app
from helpline.config import Settings


async def test_healthz_answers_ok_when_the_database_answers(client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}
    assert resp.headers["X-Request-Id"]


async def test_healthz_is_503_when_the_database_does_not_answer(aiohttp_client) -> None:
    # Nothing listens on port 1: the engine is created lazily, so the app starts and health says no.
    client = await aiohttp_client(create_app(Settings(database_url="postgresql+asyncpg://u@127.0.0.1:1/none")))
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert (await resp.json())["status"] == "unavailable"


async def test_metrics_count_messages_by_channel_and_intent(client) -> None:
    await client.post("/api/v1/messages", json={"from": "web:m1", "text": "你好"})
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    body = await resp.text()
    assert 'helpline_messages_total{channel="web",duplicate="no",intent="menu"} 1.0' in body
    assert "helpline_http_request_seconds_bucket" in body


async def test_request_id_is_echoed(client) -> None:
    resp = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"


async def test_an_unexpected_error_is_a_json_500_without_a_traceback(aiohttp_client, settings) -> None:
    app = create_app(settings)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    resp = await client.get("/boom")
    assert resp.status == 500
    body = await resp.json()
    assert "secret internals" not in str(body) and "Traceback" not in str(body)
    assert body["request_id"] == resp.headers["X-Request-Id"]
