"""Forwarding a dispatched case to a department's own platform (an Open311 server or a JSON
webhook) through the outbox, with the external id stored; fakes are real HTTP servers."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy import update
from test_cases_support import CELL_B, MON, at, get, outbox, report, staff, to_dispatched  # noqa: F401

from helpline.cases.forwarding import SIGNATURE_HEADER, ForwardSender, signature
from helpline.cases.models import Department
from helpline.metrics import Metrics
from helpline.outbox_worker import OutboxWorker


class Platform:
    """A department's platform: answers Open311 POSTs and webhook deliveries as configured."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.hooks: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.status = 201

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/open311/requests.json", self.open311)
        app.router.add_post("/hook", self.hook)
        return app

    async def open311(self, request: web.Request) -> web.Response:
        self.forms.append(dict(await request.post()))
        if self.status >= 400:
            return web.json_response([{"code": self.status, "description": "no"}], status=self.status)
        return web.json_response([{"service_request_id": "EXT-77", "service_notice": ""}], status=201)

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.hooks.append((json.loads(body), {"sig": request.headers.get(SIGNATURE_HEADER, ""),
                                              "raw": body.decode("utf-8")}))
        return web.json_response({"id": "WH-9"})


async def _forward_to(db, code: str, **values: Any) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as session:
        await session.execute(update(Department).where(Department.code == code).values(**values))


async def _send(db, settings) -> int:  # type: ignore[no-untyped-def]
    sender = ForwardSender(db, settings)
    try:
        worker = OutboxWorker(db, settings, Metrics(), {"forward": sender}, "test-forward")
        return await worker.run_once(now=at(30, 9))
    finally:
        await sender.close()


async def test_a_case_goes_to_the_departments_open311_platform(db, settings, staff, aiohttp_server) -> None:
    platform = Platform()
    server = await aiohttp_server(platform.app())
    await _forward_to(db, "LD", forward_kind="open311", forward_url=str(server.make_url("/open311")),
                      forward_secret="their-key", forward_jurisdiction="ningbo")
    number = await report(db, "C0118", CELL_B, MON, text="路灯坏了 电话13812345678")
    await to_dispatched(db, staff, number, MON)
    (row,) = await outbox(db, "case_forward")
    assert row.channel == "forward" and "their-key" not in row.body
    await _send(db, settings)
    (form,) = platform.forms
    assert form["api_key"] == "their-key" and form["jurisdiction_id"] == "ningbo" and form["service_code"] == "C0118"
    assert form["description"].startswith(f"[{number}]") and "13812345678" not in form["description"]
    assert float(form["lat"]) == (await get(db, number)).lat
    assert (await get(db, number)).external_id == "EXT-77"
    (row,) = await outbox(db, "case_forward")
    assert row.status == "sent" and row.provider_id == "EXT-77"


async def test_a_webhook_gets_the_case_signed(db, settings, staff, aiohttp_server) -> None:
    platform = Platform()
    server = await aiohttp_server(platform.app())
    await _forward_to(db, "HW", forward_kind="webhook", forward_url=str(server.make_url("/hook")),
                      forward_secret="hmac-secret")
    number = await report(db, "E0102", CELL_B, MON)
    await to_dispatched(db, staff, number, MON)
    await _send(db, settings)
    ((payload, meta),) = platform.hooks
    assert payload["event"] == "case.dispatched" and payload["case"]["id"] == number
    assert payload["case"]["department"] == "HW" and payload["case"]["service_code"] == "E0102"
    assert meta["sig"] == signature("hmac-secret", meta["raw"].encode("utf-8"))
    assert (await get(db, number)).external_id == "WH-9"


async def test_a_refusal_is_final_and_an_outage_is_retried(db, settings, staff, aiohttp_server) -> None:
    platform = Platform()
    server = await aiohttp_server(platform.app())
    await _forward_to(db, "LD", forward_kind="open311", forward_url=str(server.make_url("/open311")))
    platform.status = 503
    number = await report(db, "C0118", CELL_B, MON)
    await to_dispatched(db, staff, number, MON)
    await _send(db, settings)
    (row,) = await outbox(db, "case_forward")
    assert row.status == "failed" and row.attempts == 1 and "503" in (row.last_error or "")
    platform.status = 400
    async with db.write() as session:
        from helpline.models import OutboxItem

        await session.execute(update(OutboxItem).where(OutboxItem.id == row.id).values(next_attempt_at=MON))
    await _send(db, settings)
    (row,) = await outbox(db, "case_forward")
    assert row.status == "dead" and (await get(db, number)).external_id is None


async def test_departments_without_a_platform_are_not_forwarded(db, staff) -> None:
    number = await report(db, "C0118", CELL_B, MON)
    await to_dispatched(db, staff, number, MON)
    assert await outbox(db, "case_forward") == []
