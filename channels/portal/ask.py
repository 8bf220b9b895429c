"""Ask: the question box, the answer from the knowledge base, and a person when it did not help.

A question goes through the Inbox like every channel's message (address ``web:<session id>``),
so it is stored, routed and visible to operators. A knowledge answer is shown as the portal
shows articles: short answer, full answer, source, related articles. "Not helped" sends the
operator request through the Inbox too: the conversation joins the console's queue, and the
operator's reply appears on ``/talk`` (the outbox's web sender marks it sent: it is on the page).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from channels.portal import kb
from channels.portal.common import check_token, lang_of, page, redirect, session_id, tr, web_address
from helpline.appkeys import DB, INBOX, SETTINGS
from helpline.booking.matching import best_services
from helpline.booking.service import active_services
from helpline.handlers.knowledge import SUGGEST_AT
from helpline.inbound import HandlingFailed, throttle_text
from helpline.models import ContactAddress, Conversation, Event, Message
from helpline.request import Channel, Intent, Reply, Request
from knowledge.models import Article
from knowledge.search import search

TALK_LIMIT = 40  # messages shown on /talk
_STOPS = ("。", ".", "！", "!", "？", "?", "…")
NOTE_LIMIT = 1000


def _too_long(lang: str, limit: int) -> str:
    return tr(lang)(f"太长了，请控制在{limit}字以内。", f"That is too long: please keep it under {limit} characters.")


async def home(request: web.Request) -> web.Response:
    return page(request, "portal/home.html", {"categories": kb.GROUPS, "thanks": request.query.get("thanks") == "1"})


async def ask_get(request: web.Request) -> web.Response:
    return redirect(request, "/")


async def ask(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    form = await request.post()
    lang = lang_of(request, form)
    t = tr(lang)
    text = str(form.get("text", "")).strip()
    context: dict[str, Any] = {"categories": kb.GROUPS, "asked": text}
    nonce = check_token(request, form)
    if nonce is None:
        context["errors"] = [("text", t("页面已过期，请再点一次“提问”。", "This page had expired: please press “Ask” again."))]
        return page(request, "portal/home.html", context, status=403, form=form)
    if not text:
        context["errors"] = [("text", t("请输入您的问题。", "Please type your question."))]
        return page(request, "portal/home.html", context, status=400, form=form)
    if len(text) > settings.max_text_length:
        context["errors"] = [("text", _too_long(lang, settings.max_text_length))]
        return page(request, "portal/home.html", context, status=400, form=form)
    req = Request(channel=Channel.WEB, address=web_address(request), text=text,
                  provider_id=f"portal:{session_id(request)}:{nonce}")
    try:
        handled = await request.app[INBOX].handle(req)
    except HandlingFailed:
        context["errors"] = [("text", t("系统繁忙，您的问题已保存，请稍后再试。",
                                        "We are busy: your question is kept; please try again in a moment."))]
        return page(request, "portal/home.html", context, status=503, form=form)
    reply = handled.reply
    if reply.throttled:
        context["errors"] = [("text", throttle_text(lang))]
        return page(request, "portal/home.html", context, status=429, form=form)
    if reply.intent is Intent.OPERATOR:
        return redirect(request, "/talk")
    context.update(await answer_context(request, text, reply))
    return page(request, "portal/answer.html", context, form=form, title=("回答", "Answer"))


async def answer_context(request: web.Request, question: str, reply: Reply) -> dict[str, Any]:
    """What the answer page shows for the router's reply."""
    context: dict[str, Any] = {"reply": reply, "intent": reply.intent.value, "blocks": kb.blocks}
    async with request.app[DB].read() as session:
        hits = await search(session, question, limit=5)
        article = None
        if reply.article:
            article = await session.scalar(
                select(Article).where(Article.slug == reply.article["id"], Article.status == "published"))
        context["article"] = article
        context["related"] = [h.article for h in hits
                              if h.confidence >= SUGGEST_AT and (article is None or h.article.id != article.id)][:3]
        if article is not None and not context["related"]:
            context["related"] = await kb.neighbours(session, article, 3)
        if reply.intent is Intent.BOOKING:
            matches = best_services(await active_services(session), question)
            context["service"] = matches[0] if matches else None
    if reply.intent is Intent.GRID_CASE and reply.grid:
        context["grid"] = reply.grid
    return context


async def feedback(request: web.Request) -> web.Response:
    """"This helped": kept in the audit log beside the article, for the people who write them."""
    form = await request.post()
    nonce = check_token(request, form)
    slug = str(form.get("article", ""))[:100]
    if nonce is None:
        raise web.HTTPForbidden()
    async with request.app[DB].write() as session:
        known = await session.scalar(select(Article.id).where(Article.slug == slug))
        if known is not None:
            session.add(Event(actor=web_address(request)[:100], action="portal.helpful", subject_type="article",
                              subject_id=slug, data={"helpful": True, "nonce": nonce}))
    return redirect(request, "/?thanks=1")


# -- talking to a person ---------------------------------------------------------------------------


async def talk_start(request: web.Request) -> web.Response:
    """Not helped: ask for an operator (through the Inbox, so the console's queue has it)."""
    form = await request.post()
    lang = lang_of(request, form)
    t = tr(lang)
    note = str(form.get("note", "")).strip()
    question = str(form.get("question", "")).strip()[:500]
    nonce = check_token(request, form)
    if nonce is None:
        return await _talk_page(request, form, status=403, errors=[
            ("note", t("页面已过期，请再点一次“转人工”。", "This page had expired: please press the button again."))])
    if len(note) > NOTE_LIMIT:
        return await _talk_page(request, form, status=400, errors=[("note", _too_long(lang, NOTE_LIMIT))], note=note)
    parts = [t("请转人工。", "Please connect me to an operator.")]
    if note:
        parts.append(note if note.endswith(_STOPS) else note + t("。", "."))
    if question:
        parts.append(t(f"我的问题：{question}", f"My question: {question}"))
    return await _send(request, form, t("", " ").join(parts), nonce)


async def talk_send(request: web.Request) -> web.Response:
    """Another message in the web conversation."""
    settings = request.app[SETTINGS]
    form = await request.post()
    lang = lang_of(request, form)
    t = tr(lang)
    text = str(form.get("text", "")).strip()
    nonce = check_token(request, form)
    if nonce is None:
        return await _talk_page(request, form, status=403, text=text, errors=[
            ("text", t("页面已过期，请再点一次“发送”。", "This page had expired: please press “Send” again."))])
    if not text:
        return await _talk_page(request, form, status=400, errors=[("text", t("请输入内容。", "Please type a message."))])
    if len(text) > settings.max_text_length:
        return await _talk_page(request, form, status=400, text=text,
                                errors=[("text", _too_long(lang, settings.max_text_length))])
    return await _send(request, form, text, nonce)


async def _send(request: web.Request, form: Any, text: str, nonce: str) -> web.Response:
    t = tr(lang_of(request, form))
    req = Request(channel=Channel.WEB, address=web_address(request), text=text,
                  provider_id=f"portal:{session_id(request)}:{nonce}")
    try:
        handled = await request.app[INBOX].handle(req)
    except HandlingFailed:
        return await _talk_page(request, form, status=503, text=text, errors=[
            ("text", t("系统繁忙，消息已保存，请稍后再试。", "We are busy: your message is kept; please try again shortly."))])
    if handled.reply.throttled:
        return await _talk_page(request, form, status=429, errors=[("text", throttle_text(lang_of(request, form)))])
    return redirect(request, "/talk#latest")


async def talk(request: web.Request) -> web.Response:
    return await _talk_page(request, None)


async def talk_messages(request: web.Request) -> web.Response:
    """The thread alone, for the page's script to refresh it while an operator is on the way."""
    thread = await conversation(request)
    return page(request, "portal/_messages.html", thread)


async def conversation(request: web.Request) -> dict[str, Any]:
    """This browser's web conversation: its status and latest messages (oldest first)."""
    async with request.app[DB].read() as session:
        contact_id = await session.scalar(select(ContactAddress.contact_id).where(ContactAddress.urn == web_address(request)))
        if contact_id is None:
            return {"messages": [], "status": None}
        conv = await session.scalar(
            select(Conversation).where(Conversation.contact_id == contact_id, Conversation.channel == "web")
            .order_by(Conversation.updated_at.desc()).limit(1))
        rows = list(await session.scalars(
            select(Message).where(Message.contact_id == contact_id, Message.channel == "web",
                                  Message.status.not_in(("failed",)))
            .order_by(Message.id.desc()).limit(TALK_LIMIT)))
    rows.reverse()
    messages = [{"id": m.id, "mine": m.direction == "in", "text": m.text, "at": m.created_at,
                 "operator": m.direction == "out" and (m.meta or {}).get("kind") == "operator_reply"}
                for m in rows if m.text]
    return {"messages": messages, "status": conv.status if conv is not None else None,
            "last": messages[-1]["id"] if messages else 0}


async def _talk_page(request: web.Request, form: Any, *, status: int = 200,
                     errors: list[tuple[str, str]] | None = None, text: str = "", note: str = "") -> web.Response:
    thread = await conversation(request)
    return page(request, "portal/talk.html", {**thread, "errors": errors or [], "text": text, "note": note},
                status=status, form=form, title=("人工服务", "Talk to a person"))
