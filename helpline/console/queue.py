"""The live queue: conversations waiting for a human, most urgent first, and claiming them.

What is in the queue:

* conversations in status ``waiting`` — a hand-off (the resident asked, or a booking or street
  report needs a person), a voicemail, a call-back request, a recorded report;
* open conversations flagged ``urgent`` (an emergency was detected) — first of all;
* open conversations whose last answer was ``unknown`` (the router was not sure) — last, as
  candidates an operator may pick up.

Order: emergencies, then call-backs and voicemails (someone is waiting offline), then
hand-offs, then unsure answers; within each, the longest waiting first.

A claim moves the conversation to status ``assigned`` with one conditional UPDATE (``WHERE
status IN ('waiting', 'open')``), so of two operators clicking at once exactly one wins; the
other is told who has it. Who holds a conversation is the latest ``conversation.claimed`` (or
``…taken_over``) event in the audit log, which every claim writes anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.appkeys import DB
from helpline.console.auth import audit, can, require_permission
from helpline.console.live import console_write
from helpline.console.render import flash, redirect, render
from helpline.contacts import CONVERSATION_IDLE
from helpline.models import Contact, Conversation, Event, Message, User, utcnow

# Audit actions that put a conversation in the queue, and the reason each stands for.
REASON_ACTIONS = ("handoff.requested", "callback.requested", "voicemail.left", "report.recorded", "contact.urgent")
CLAIM_ACTIONS = ("conversation.claimed", "conversation.taken_over")
PRIORITY = {
    "emergency": 0,
    "callback": 1,
    "voicemail": 1,
    "report": 2,
    "asked": 2,
    "booking": 2,
    "grid_case": 2,
    "unsure": 3,
}
QUEUE_LIMIT = 300


@dataclass(slots=True)
class QueueItem:
    conversation: Conversation
    contact: Contact
    urn: str
    reason: str
    since: datetime
    last_text: str | None
    holder: User | None

    @property
    def priority(self) -> int:
        return PRIORITY[self.reason]


def reason_of(event: Event | None, conv: Conversation) -> str:
    if conv.urgent:
        return "emergency"
    if event is None:
        return "unsure" if conv.status == "open" else "asked"
    return {
        "callback.requested": "callback",
        "voicemail.left": "voicemail",
        "report.recorded": "report",
        "contact.urgent": "emergency",
    }.get(event.action) or {"booking": "booking", "grid_case": "grid_case"}.get(str(event.data.get("reason")), "asked")


async def holders(session: AsyncSession, conversation_ids: list[str]) -> dict[str, User]:
    """Who holds each assigned conversation: the actor of its latest claim."""
    if not conversation_ids:
        return {}
    latest = (
        select(Event.subject_id, func.max(Event.id).label("id"))
        .where(
            Event.subject_type == "conversation",
            Event.subject_id.in_(conversation_ids),
            Event.action.in_(CLAIM_ACTIONS),
        )
        .group_by(Event.subject_id)
        .subquery()
    )
    rows = (await session.execute(select(Event.subject_id, Event.actor).join(latest, Event.id == latest.c.id))).all()
    ids = {cid: int(a.split(":", 1)[1]) for cid, a in rows if a.startswith("user:")}
    users = {u.id: u for u in await session.scalars(select(User).where(User.id.in_(set(ids.values()))))}
    return {cid: users[uid] for cid, uid in ids.items() if uid in users}


async def load_queue(session: AsyncSession, now: datetime | None = None) -> list[QueueItem]:
    """Everything waiting or in hand, in the order operators should take it."""
    now = now or utcnow()
    fresh = Conversation.updated_at >= now - CONVERSATION_IDLE
    rows = (
        await session.execute(
            select(Conversation, Contact)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(
                or_(
                    Conversation.status.in_(("waiting", "assigned")),
                    and_(
                        Conversation.status == "open",
                        fresh,
                        or_(Conversation.urgent.is_(True), Conversation.last_intent == "unknown"),
                    ),
                )
            )
            .order_by(Conversation.updated_at)
            .limit(QUEUE_LIMIT)
        )
    ).all()
    if not rows:
        return []
    ids = [conv.id for conv, _ in rows]
    reasons: dict[str, Event] = {}
    for event in await session.scalars(
        select(Event)
        .where(Event.subject_type == "conversation", Event.subject_id.in_(ids), Event.action.in_(REASON_ACTIONS))
        .order_by(Event.id)
    ):
        reasons[event.subject_id] = event  # the latest wins
    last_in = (
        select(func.max(Message.id))
        .where(Message.conversation_id.in_(ids), Message.direction == "in")
        .group_by(Message.conversation_id)
    )
    messages = {m.conversation_id: m for m in await session.scalars(select(Message).where(Message.id.in_(last_in)))}
    held = await holders(session, [conv.id for conv, _ in rows if conv.status == "assigned"])
    items = []
    for conv, contact in rows:
        reason, message = reasons.get(conv.id), messages.get(conv.id)
        if conv.status == "open" and not conv.urgent and message is None:
            continue  # nothing the resident said: nothing to answer
        items.append(
            QueueItem(
                conversation=conv,
                contact=contact,
                urn=message.urn if message else "",
                reason=reason_of(reason, conv),
                since=reason.at if reason else conv.updated_at,
                last_text=(message.text if message else (reason.data.get("text") if reason else None)),
                holder=held.get(conv.id),
            )
        )
    items.sort(key=lambda i: (i.priority, i.since))
    return items


@dataclass(frozen=True, slots=True)
class ClaimResult:
    ok: bool
    holder: User | None = None
    status: str | None = None  # the conversation's status when the claim failed


async def claim(session: AsyncSession, user: User, conversation_id: str, *, take_over: bool = False) -> ClaimResult:
    """Take a conversation; exactly one of several operators claiming at once succeeds."""
    now = utcnow()
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.status.in_(("waiting", "open")))
        .values(status="assigned", updated_at=now)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        audit(session, user, "conversation.claimed", "conversation", conversation_id)
        return ClaimResult(True, user)
    conv = await session.get(Conversation, conversation_id)
    if conv is None:
        raise web.HTTPNotFound()
    if conv.status != "assigned":
        return ClaimResult(False, None, conv.status)
    holder = (await holders(session, [conversation_id])).get(conversation_id)
    if holder is not None and holder.id == user.id:
        return ClaimResult(True, user)
    if take_over and can(user, "conversation.takeover"):
        audit(
            session,
            user,
            "conversation.taken_over",
            "conversation",
            conversation_id,
            {"from": holder.id if holder else None},
        )
        conv.updated_at = now
        return ClaimResult(True, user)
    return ClaimResult(False, holder, conv.status)


async def release(session: AsyncSession, user: User, conversation_id: str) -> bool:
    """Put a conversation back in the queue: its holder may, and a supervisor may for anyone."""
    holder = (await holders(session, [conversation_id])).get(conversation_id)
    if holder is not None and holder.id != user.id and not can(user, "conversation.takeover"):
        raise web.HTTPForbidden(text="403: another operator holds this conversation")
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.status == "assigned")
        .values(status="waiting", updated_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    audit(
        session,
        user,
        "conversation.released",
        "conversation",
        conversation_id,
        {"holder": holder.id if holder else None},
    )
    return True


# -- pages ---------------------------------------------------------------------------------


def sections(items: list[QueueItem], user: User) -> dict[str, list[QueueItem]]:
    out: dict[str, list[QueueItem]] = {"mine": [], "waiting": [], "unsure": [], "others": []}
    for item in items:
        if item.conversation.status == "assigned":
            out["mine" if item.holder and item.holder.id == user.id else "others"].append(item)
        elif item.reason == "unsure":
            out["unsure"].append(item)
        else:
            out["waiting"].append(item)
    return out


async def _queue_context(request: web.Request, user: User) -> dict[str, object]:
    async with request.app[DB].read() as session:
        items = await load_queue(session)
    return {"sections": sections(items, user), "now": utcnow(), "total": len(items)}


async def queue_page(request: web.Request) -> web.Response:
    user = await require_permission(request, "queue.view")
    return await render(request, "console/queue.html", await _queue_context(request, user), active="queue")


async def queue_items(request: web.Request) -> web.Response:
    """The queue's list alone, fetched by the page when the socket says something changed."""
    user = await require_permission(request, "queue.view")
    return await render(request, "console/_queue_items.html", await _queue_context(request, user))


async def queue_count(request: web.Request) -> web.Response:
    """How many wait for a human (the badge in the navigation)."""
    await require_permission(request, "queue.view")
    async with request.app[DB].read() as session:
        items = await load_queue(session)
    waiting = sum(1 for i in items if i.conversation.status != "assigned" and i.reason != "unsure")
    return web.json_response(
        {
            "waiting": waiting,
            "urgent": sum(1 for i in items if i.reason == "emergency" and i.conversation.status != "assigned"),
        }
    )


async def claim_action(request: web.Request) -> web.Response:
    user = await require_permission(request, "conversation.claim")
    conversation_id = request.match_info["id"]
    form = await request.post()
    async with console_write(request) as session:
        result = await claim(session, user, conversation_id, take_over=form.get("take_over") == "1")
    if result.ok:
        return redirect(f"/console/conversations/{conversation_id}")
    if result.holder is not None:
        flash(
            request,
            "warn",
            f"{result.holder.username} 已经接手了这个会话。",
            f"{result.holder.username} has already taken this conversation.",
        )
    else:
        flash(request, "warn", "这个会话已经结束。", "This conversation has already been closed.")
    return redirect("/console/queue")


async def release_action(request: web.Request) -> web.Response:
    user = await require_permission(request, "conversation.claim")
    conversation_id = request.match_info["id"]
    async with console_write(request) as session:
        released = await release(session, user, conversation_id)
    if released:
        flash(request, "ok", "已放回队列。", "Put back in the queue.")
    return redirect("/console/queue")
