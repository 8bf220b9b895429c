"""Per-contact rate limits: a flooding sender is told once, then ignored for the minute; nothing is lost."""

from __future__ import annotations

from sqlalchemy import func, select

from helpline.appkeys import INBOX
from helpline.db import Database
from helpline.models import Message
from helpline.ratelimit import ContactLimiter, Verdict


def test_window_allows_the_limit_then_refuses_once_then_is_silent() -> None:
    now = [0.0]
    limiter = ContactLimiter(3, clock=lambda: now[0])
    assert [limiter.check("tel:+1") for _ in range(3)] == [Verdict.ALLOW] * 3
    assert limiter.check("tel:+1") is Verdict.REFUSE
    assert limiter.check("tel:+1") is Verdict.SILENT
    assert limiter.check("tel:+2") is Verdict.ALLOW  # others are not affected
    now[0] = 59.9
    assert limiter.check("tel:+1") is Verdict.SILENT
    now[0] = 60.0  # the first answered message has left the window
    assert limiter.check("tel:+1") is Verdict.ALLOW
    assert ContactLimiter(0).check("tel:+1") is Verdict.ALLOW  # 0: no limit


async def test_api_flood_is_stored_whole_but_answered_only_up_to_the_limit(client, db: Database) -> None:  # type: ignore[no-untyped-def]
    limit = client.app[INBOX].limiter.per_minute
    statuses = []
    for n in range(limit + 5):
        resp = await client.post("/api/v1/messages", json={"from": "web:flood", "text": f"你好 {n}"})
        statuses.append(resp.status)
        if resp.status == 429:
            assert resp.headers["Retry-After"] == "60"
            assert "wait a minute" in (await resp.json())["error"]
    assert statuses == [200] * limit + [429] * 5
    # An emergency always gets through, however many came before it.
    resp = await client.post("/api/v1/messages", json={"from": "web:flood", "text": "着火了！快来人"})
    assert resp.status == 200 and (await resp.json())["intent"] == "emergency"
    async with db.read() as s:
        inbound = await s.scalar(select(func.count()).where(Message.urn == "web:flood", Message.direction == "in"))
        throttled = await s.scalar(select(func.count()).where(Message.urn == "web:flood", Message.status == "throttled"))
    assert inbound == limit + 6 and throttled == 5
