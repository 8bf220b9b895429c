"""Forwarding: a case dispatched to a department that runs its own platform is sent there too.

A department's ``forward_kind`` says how: ``open311`` POSTs a GeoReport v2 service request to
``forward_url``/requests.json (``forward_secret`` is the api_key); ``webhook`` POSTs the case as
JSON to ``forward_url``, signed with HMAC-SHA256 of the body under ``forward_secret`` in
``X-Helpline-Signature: sha256=<hex>``. The request id the platform answers (Open311
``service_request_id``, or ``id`` in the webhook's JSON answer) is stored as the case's
``external_id``.

The delivery is an outbox row on the ``forward`` channel, written with the dispatch (once per
case and department), so it survives restarts and is retried with backoff like any message. The
row carries only the case number: the payload is built when it is sent, from the case as it is
then, and the department's secret never sits in the outbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from datetime import datetime
from typing import Any

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.cases.models import Case, Department, case_id_of
from helpline.config import Settings
from helpline.db import Database
from helpline.models import OutboxItem
from helpline.outbox_worker import PermanentSendError, TemporarySendError

log = logging.getLogger("helpline.cases")

CHANNEL = "forward"
TIMEOUT = 10.0
SIGNATURE_HEADER = "X-Helpline-Signature"
RETRY_STATUS = {408, 409, 425, 429}


async def enqueue(session: AsyncSession, case: Case, dept: Department, now: datetime) -> bool:
    """Queue the case for the department's platform, if it has one (once per case and department)."""
    if not dept.forward_kind or not dept.forward_url:
        return False
    key = f"case-{case.id}-forward-{dept.code}"
    if await session.scalar(select(OutboxItem.id).where(OutboxItem.idempotency_key == key)) is not None:
        return False
    session.add(OutboxItem(
        idempotency_key=key, channel=CHANNEL, urn=f"forward:{dept.code}",
        body=json.dumps({"case": case.number, "department": dept.code}), kind="case_forward",
        message_id=None, status="pending", attempts=0, max_attempts=8, next_attempt_at=now, created_at=now,
    ))
    return True


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class ForwardSender:
    """The outbox sender of the ``forward`` channel."""

    def __init__(self, db: Database, settings: Settings, *, timeout: float = TIMEOUT) -> None:
        self.db = db
        self.settings = settings
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def send(self, item: OutboxItem) -> str:
        from helpline.cases.views import forward_payload, open311_form

        try:
            target = json.loads(item.body)
            number, code = str(target["case"]), str(target["department"])
        except (ValueError, KeyError, TypeError):
            raise PermanentSendError("unreadable forward row") from None
        async with self.db.read() as session:
            case = await session.get(Case, case_id_of(number) or 0)
            dept = await session.get(Department, code)
            if case is None:
                raise PermanentSendError(f"case {number} no longer exists")
            if dept is None or not dept.forward_kind or not dept.forward_url:
                raise PermanentSendError(f"department {code} has no forwarding target any more")
            if dept.forward_kind == "open311":
                form = await open311_form(session, case, dept, self.settings)
            else:
                payload = await forward_payload(session, case, self.settings)
        if self._http is None:  # created inside the running loop, on first use
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            if dept.forward_kind == "open311":
                answer = await self._post(f"{dept.forward_url}/requests.json", data=form)
                external = _open311_id(answer)
            else:
                body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                headers = {"Content-Type": "application/json", "Idempotency-Key": item.idempotency_key}
                if dept.forward_secret:
                    headers[SIGNATURE_HEADER] = signature(dept.forward_secret, body)
                answer = await self._post(dept.forward_url, data=body, headers=headers)
                external = str(answer.get("id")) if isinstance(answer, dict) and answer.get("id") else None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise TemporarySendError(f"{dept.forward_url} unreachable: {type(exc).__name__}: {exc}") from exc
        if external:
            async with self.db.write() as session:
                await session.execute(update(Case).where(Case.id == case.id).values(external_id=external[:128]))
        log.info("event=cases.forwarded case=%s department=%s external_id=%s", number, code, external)
        return (external or f"forwarded-{number}")[:128]

    async def _post(self, url: str, **kwargs: Any) -> Any:
        assert self._http is not None
        async with self._http.post(url, **kwargs) as resp:
            text = await resp.text()
            if resp.status >= 500 or resp.status in RETRY_STATUS:
                raise TemporarySendError(f"{url} answered {resp.status}: {text[:300]}")
            if resp.status >= 400:
                raise PermanentSendError(f"{url} refused the case ({resp.status}): {text[:300]}")
            try:
                return json.loads(text) if text.strip() else None
            except ValueError:
                return None


def _open311_id(answer: Any) -> str | None:
    """service_request_id (or the token of a batch server) from a GeoReport v2 POST answer."""
    first = answer[0] if isinstance(answer, list) and answer else answer
    if isinstance(first, dict):
        value = first.get("service_request_id") or first.get("token")
        return str(value) if value else None
    return None
