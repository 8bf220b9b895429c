"""Candidates for new knowledge articles: the questions the router could not answer.

Inbound messages whose reply intent was ``unknown`` in the last 30 days, grouped by their words
(case, width and punctuation folded), those that then reached an operator (handed off or
claimed) first, then the most asked. Each comes with the closest existing article, so an editor
can choose between a new article and a keyword for an old one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.appkeys import DB
from helpline.console.auth import require_permission
from helpline.console.queue import REASON_ACTIONS
from helpline.console.render import render
from helpline.models import Event, Message, utcnow
from knowledge.models import Article
from knowledge.search import search

CANDIDATE_DAYS = 30
# A conversation "reached an operator" when it was handed off or claimed.
OPERATOR_ACTIONS = (*REASON_ACTIONS, "conversation.claimed")


@dataclass(slots=True)
class Candidate:
    text: str
    count: int
    reached_operator: int
    last_at: Any
    conversation_id: str
    channels: set[str]
    closest: Article | None = None
    closest_confidence: float = 0.0


def _group_key(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"[\W_]+", "", folded)[:80]


async def candidates(session: AsyncSession, days: int = CANDIDATE_DAYS, limit: int = 50) -> list[Candidate]:
    """Unanswered questions, grouped; asked often and seen by operators first."""
    since = utcnow() - timedelta(days=days)
    rows = (
        await session.execute(
            select(Message.text, Message.created_at, Message.conversation_id, Message.channel)
            .where(Message.direction == "in", Message.intent == "unknown", Message.created_at >= since)
            .order_by(Message.id.desc())
            .limit(2000)
        )
    ).all()
    conv_ids = list({row[2] for row in rows})
    humans = (
        set(
            await session.scalars(
                select(Event.subject_id)
                .where(
                    Event.subject_type == "conversation",
                    Event.subject_id.in_(conv_ids),
                    Event.action.in_(OPERATOR_ACTIONS),
                )
                .distinct()
            )
        )
        if conv_ids
        else set()
    )
    groups: dict[str, Candidate] = {}
    for text, at, conv_id, channel in rows:
        key = _group_key(text)
        if len(key) < 2:
            continue
        human = conv_id in humans
        group = groups.get(key)
        if group is None:
            groups[key] = Candidate(text.strip()[:300], 1, int(human), at, conv_id, {channel})
        else:
            group.count += 1
            group.reached_operator += int(human)
            group.channels.add(channel)
    ranked = sorted(groups.values(), key=lambda c: (-c.reached_operator, -c.count, -c.last_at.timestamp()))[:limit]
    for cand in ranked:
        hits = await search(session, cand.text, limit=1)
        if hits:
            cand.closest, cand.closest_confidence = hits[0].article, hits[0].confidence
    return ranked


async def kb_candidates(request: web.Request) -> web.Response:
    await require_permission(request, "kb.edit")
    async with request.app[DB].read() as session:
        found = await candidates(session)
    return await render(
        request, "console/kb_candidates.html", {"candidates": found, "days": CANDIDATE_DAYS}, active="knowledge"
    )
