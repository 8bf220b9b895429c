"""Open311 API keys: from ``HELPLINE_OPEN311_API_KEYS`` (deployment-wide) and from the database,
where admins add and revoke them (``helpline open311 key add|list|revoke``) without a restart.

Only a key's SHA-256 is stored, plus a short hint to tell keys apart; the key itself is shown
once, when it is made. A key identifies the client in the case timeline (``open311:<name>``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.cases.models import Open311Key
from helpline.models import Event, utcnow

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class KeyProblem(ValueError):
    """A key cannot be added or revoked as asked."""


@dataclass(frozen=True, slots=True)
class Client:
    """Who holds a valid key: ``env`` keys are named by their hint."""

    name: str
    source: str  # env | db


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def authenticate(session: AsyncSession, env_keys: frozenset[str], key: str | None,
                       now: datetime | None = None) -> Client | None:
    """The client a presented key belongs to, or None (constant-time comparisons). With ``now`` (in a
    write transaction) a database key's last use is recorded."""
    if not key or len(key) > 200:
        return None
    for known in env_keys:
        if hmac.compare_digest(known.encode("utf-8"), key.encode("utf-8")):
            return Client(f"env-{known[:4]}", "env")
    row = await session.scalar(select(Open311Key).where(Open311Key.key_hash == digest(key)))
    if row is None or row.revoked_at is not None:
        return None
    if now is not None:
        row.last_used_at = now
    return Client(row.name, "db")


async def add_key(session: AsyncSession, name: str, actor: str) -> tuple[Open311Key, str]:
    """A new key for a client; returns the row and the key (shown once, never stored)."""
    if not _NAME.match(name):
        raise KeyProblem("a key name is 1-64 letters, digits, '.', '_' or '-'")
    if await session.scalar(select(Open311Key.id).where(Open311Key.name == name)) is not None:
        raise KeyProblem(f"a key named {name!r} exists already (revoke it, or choose another name)")
    key = "o311_" + secrets.token_urlsafe(30)
    row = Open311Key(name=name, key_hash=digest(key), hint=key[5:11], created_by=actor)
    session.add(row)
    await session.flush()
    session.add(Event(actor=actor, action="open311.key_added", subject_type="open311_key", subject_id=name, data={}))
    return row, key


async def list_keys(session: AsyncSession) -> list[Open311Key]:
    return list(await session.scalars(select(Open311Key).order_by(Open311Key.id)))


async def revoke_key(session: AsyncSession, name: str, actor: str) -> Open311Key:
    row = await session.scalar(select(Open311Key).where(Open311Key.name == name))
    if row is None:
        raise KeyProblem(f"no key named {name!r}")
    if row.revoked_at is not None:
        raise KeyProblem(f"key {name!r} was revoked already")
    row.revoked_at = utcnow()
    session.add(Event(actor=actor, action="open311.key_revoked", subject_type="open311_key", subject_id=name, data={}))
    return row
