"""One conversation at work: the contact's whole history across channels, the reply, closing.

A reply goes out on the contact's own channel through the durable outbox (``helpline.outbox``):
written in the same transaction as the claim and the audit line, sent by the outbox worker,
and shown in the thread at once as ``queued``, then ``sent`` when the provider took it. The form
carries a one-time nonce that becomes the outbox key, so a double click sends one message.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from aiohttp import web
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.appkeys import DB, OUTBOX, SETTINGS
from helpline.console.auth import audit, can, require_permission
from helpline.console.labels import CHANNEL_LABELS, STATUS_LABELS
from helpline.console.live import console_write
from helpline.console.queue import REASON_ACTIONS, claim, holders, reason_of
from helpline.console.render import flash, redirect, render
from helpline.models import Call, Contact, ContactAddress, Conversation, Event, Message, User, utcnow
from helpline.outbox import channel_for, enqueue
from knowledge.models import Article
from knowledge.search import search

HISTORY_LIMIT = 200
PAGE_SIZE = 50
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# The audit actions worth showing in a conversation's timeline.
TIMELINE_ACTIONS = (
    *REASON_ACTIONS,
    "conversation.claimed",
    "conversation.taken_over",
    "conversation.released",
    "conversation.closed",
    "conversation.replied",
)


@dataclass(frozen=True, slots=True)
class Canned:
    key: str
    title_zh: str
    title_en: str
    text_zh: str
    text_en: str


@cache
def canned_replies() -> tuple[Canned, ...]:
    """The shipped canned replies (``helpline/console/data/canned_replies.yaml``)."""
    raw = yaml.safe_load((files("helpline.console") / "data" / "canned_replies.yaml").read_text("utf-8"))
    return tuple(
        Canned(r["key"], r["title"]["zh"], r["title"]["en"], r["text"]["zh"].strip(), r["text"]["en"].strip())
        for r in raw["replies"]
    )


async def reply_address(session: AsyncSession, conv: Conversation) -> str | None:
    """Where a reply goes: the address the resident last wrote from in this conversation."""
    urn = await session.scalar(
        select(Message.urn)
        .where(Message.conversation_id == conv.id)
        .order_by((Message.direction == "in").desc(), Message.id.desc())
        .limit(1)
    )
    if urn:
        return urn
    scheme = {"sms": "tel", "voice": "tel"}.get(conv.channel, conv.channel)
    return await session.scalar(
        select(ContactAddress.urn)
        .where(ContactAddress.contact_id == conv.contact_id, ContactAddress.scheme == scheme)
        .limit(1)
    )


async def _conversation(session: AsyncSession, conversation_id: str) -> Conversation:
    conv = await session.get(Conversation, conversation_id)
    if conv is None:
        raise web.HTTPNotFound(text="404: there is no such conversation")
    return conv


async def _history(session: AsyncSession, contact_id: int) -> list[dict[str, Any]]:
    """The contact's messages on every channel and the console's actions on them, oldest first."""
    messages = list(
        await session.scalars(
            select(Message).where(Message.contact_id == contact_id).order_by(Message.id.desc()).limit(HISTORY_LIMIT)
        )
    )
    conv_ids = list(await session.scalars(select(Conversation.id).where(Conversation.contact_id == contact_id)))
    events = (
        list(
            await session.scalars(
                select(Event)
                .where(
                    Event.subject_type == "conversation",
                    Event.subject_id.in_(conv_ids),
                    Event.action.in_(TIMELINE_ACTIONS),
                )
                .order_by(Event.id.desc())
                .limit(HISTORY_LIMIT)
            )
        )
        if conv_ids
        else []
    )
    user_ids = {int(e.actor.split(":", 1)[1]) for e in events if e.actor.startswith("user:")}
    user_ids |= {uid for m in messages if isinstance(uid := m.meta.get("user_id"), int)}
    users = {u.id: u.username for u in await session.scalars(select(User).where(User.id.in_(user_ids)))}
    items: list[dict[str, Any]] = [
        {"kind": "message", "at": m.created_at, "m": m, "by": users.get(m.meta.get("user_id") or 0)} for m in messages
    ]
    for e in events:
        by = users.get(int(e.actor.split(":", 1)[1])) if e.actor.startswith("user:") else None
        if e.action != "conversation.replied":  # the reply itself is in the thread
            items.append({"kind": "event", "at": e.at, "e": e, "by": by})
    items.sort(key=lambda i: (i["at"], 0 if i["kind"] == "message" else 1))
    return items


async def _context(request: web.Request, user: User, conversation_id: str) -> dict[str, Any]:
    async with request.app[DB].read() as session:
        conv = await _conversation(session, conversation_id)
        contact = await session.get(Contact, conv.contact_id)
        addresses = list(
            await session.scalars(select(ContactAddress).where(ContactAddress.contact_id == conv.contact_id))
        )
        history = await _history(session, conv.contact_id)
        holder = (await holders(session, [conv.id])).get(conv.id) if conv.status == "assigned" else None
        reason = await session.scalar(
            select(Event)
            .where(Event.subject_type == "conversation", Event.subject_id == conv.id, Event.action.in_(REASON_ACTIONS))
            .order_by(Event.id.desc())
            .limit(1)
        )
        calls = list(
            await session.scalars(
                select(Call).where(Call.contact_id == conv.contact_id).order_by(Call.started_at.desc()).limit(10)
            )
        )
        urn = await reply_address(session, conv)
        query = request.query.get("kb", "").strip()[:200]
        hits = await search(session, query, limit=6) if query else []
        attach = request.query.get("attach")
        attached = await session.scalar(select(Article).where(Article.slug == attach)) if attach else None
    lang = conv.lang or (contact.lang if contact else None) or request.app[SETTINGS].default_lang
    draft = ""
    canned = {c.key: c for c in canned_replies()}
    if request.query.get("canned") in canned:
        c = canned[request.query["canned"]]
        draft = c.text_zh if lang == "zh" else c.text_en
    if attached is not None:
        draft = (
            f"{attached.title(lang)}：{attached.short(lang)}"
            if lang == "zh"
            else f"{attached.title(lang)}: {attached.short(lang)}"
        )
    opted_out = any(a.urn == urn and a.opted_out_at is not None for a in addresses)
    return {
        "conv": conv,
        "contact": contact,
        "addresses": addresses,
        "history": history,
        "holder": holder,
        "reason": reason,
        "calls": calls,
        "reply_urn": urn,
        "reply_channel": _channel_of(urn),
        "reply_lang": lang,
        "kb_query": query,
        "hits": hits,
        "canned": canned_replies(),
        "draft": draft,
        "attached": attached,
        "nonce": secrets.token_urlsafe(16),
        "mine": holder is not None and holder.id == user.id,
        "opted_out": opted_out,
        "reason_key": _reason_key(reason, conv),
        "max_len": request.app[SETTINGS].max_text_length,
    }


def _channel_of(urn: str | None) -> str | None:
    try:
        return channel_for(urn) if urn else None
    except ValueError:
        return None


def _reason_key(event: Event | None, conv: Conversation) -> str | None:
    if conv.status == "closed" or (event is None and not conv.urgent and conv.last_intent != "unknown"):
        return None
    return reason_of(event, conv)


async def conversation_page(request: web.Request) -> web.Response:
    user = await require_permission(request, "conversation.view")
    context = await _context(request, user, request.match_info["id"])
    return await render(request, "console/conversation.html", context, active="queue")


async def thread_fragment(request: web.Request) -> web.Response:
    """The thread and header alone, fetched when the socket says something changed."""
    user = await require_permission(request, "conversation.view")
    context = await _context(request, user, request.match_info["id"])
    return await render(request, "console/_thread.html", context)


async def reply_action(request: web.Request) -> web.Response:
    user = await require_permission(request, "conversation.reply")
    conversation_id = request.match_info["id"]
    form = await request.post()
    text = str(form.get("text", "")).strip()
    nonce = str(form.get("nonce", ""))
    slug = str(form.get("article", "")).strip() or None
    limit = request.app[SETTINGS].max_text_length
    back = f"/console/conversations/{conversation_id}"
    if not text or len(text) > limit or not _NONCE.match(nonce):
        flash(
            request,
            "error",
            f"回复不能为空，且不超过{limit}字。",
            f"A reply must not be empty nor longer than {limit} characters.",
        )
        return redirect(back)
    async with console_write(request) as session:
        conv = await _conversation(session, conversation_id)
        if conv.status == "closed":
            flash(request, "warn", "会话已结束，不能再回复。", "This conversation is closed; it cannot be answered.")
            return redirect(back)
        taken = await claim(session, user, conversation_id)
        if not taken.ok:
            raise web.HTTPConflict(
                text=f"409: {taken.holder.username if taken.holder else 'someone'} holds this conversation"
            )
        urn = await reply_address(session, conv)
        if urn is None:
            raise web.HTTPConflict(text="409: this contact has no address a reply could go to")
        item = await enqueue(session, urn, text, "operator_reply", key=f"console:{conversation_id}:{nonce}")
        message = await session.get(Message, item.message_id) if item.message_id else None
        if message is not None and "user_id" not in message.meta:
            message.meta = {**message.meta, "user_id": user.id, **({"article": slug} if slug else {})}
            conv.updated_at = utcnow()
            audit(
                session,
                user,
                "conversation.replied",
                "conversation",
                conversation_id,
                {
                    "outbox_id": item.id,
                    "message_id": item.message_id,
                    "channel": item.channel,
                    **({"article": slug} if slug else {}),
                },
            )
    request.app[OUTBOX].notify()
    return redirect(back + "#composer")


async def close_action(request: web.Request) -> web.Response:
    user = await require_permission(request, "conversation.close")
    conversation_id = request.match_info["id"]
    form = await request.post()
    note = str(form.get("note", "")).strip()[:500]
    async with console_write(request) as session:
        conv = await _conversation(session, conversation_id)
        if conv.status == "closed":
            flash(request, "warn", "会话已经结束了。", "This conversation was already closed.")
            return redirect("/console/queue")
        holder = (await holders(session, [conv.id])).get(conv.id) if conv.status == "assigned" else None
        if holder is not None and holder.id != user.id and not can(user, "conversation.takeover"):
            raise web.HTTPForbidden(text=f"403: {holder.username} holds this conversation")
        was = conv.status
        conv.status = "closed"
        conv.updated_at = utcnow()
        audit(
            session,
            user,
            "conversation.closed",
            "conversation",
            conv.id,
            {"from": was, "note": note} if note else {"from": was},
        )
    flash(request, "ok", "会话已结束。", "Conversation closed.")
    return redirect("/console/queue")


async def conversations_page(request: web.Request) -> web.Response:
    """Recent conversations, filtered by status, channel or an address; for looking a resident up."""
    await require_permission(request, "conversation.view")
    status = request.query.get("status", "")
    channel = request.query.get("channel", "")
    needle = request.query.get("q", "").strip()[:64]
    try:
        page = max(1, min(int(request.query.get("page", "1")), 1000))
    except ValueError:
        page = 1
    query = select(Conversation, Contact).join(Contact, Contact.id == Conversation.contact_id)
    if status in STATUS_LABELS:
        query = query.where(Conversation.status == status)
    if channel in CHANNEL_LABELS:
        query = query.where(Conversation.channel == channel)
    if needle:
        owners = select(ContactAddress.contact_id).where(ContactAddress.urn.contains(needle, autoescape=True))
        query = query.where(or_(Conversation.contact_id.in_(owners), Contact.name.contains(needle, autoescape=True)))
    async with request.app[DB].read() as session:
        rows = (
            await session.execute(
                query.order_by(Conversation.updated_at.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
            )
        ).all()
        ids = [conv.id for conv, _ in rows[:PAGE_SIZE]]
        last = (  # what the resident last said
            select(func.max(Message.id))
            .where(Message.conversation_id.in_(ids), Message.direction == "in")
            .group_by(Message.conversation_id)
        )
        messages = {m.conversation_id: m for m in await session.scalars(select(Message).where(Message.id.in_(last)))}
    return await render(
        request,
        "console/conversations.html",
        {
            "rows": rows[:PAGE_SIZE],
            "more": len(rows) > PAGE_SIZE,
            "page": page,
            "messages": messages,
            "status": status,
            "channel": channel,
            "q": needle,
            "status_labels": STATUS_LABELS,
            "channel_labels": CHANNEL_LABELS,
        },
        active="conversations",
    )
