"""The Telegram channel (aiogram 3): an update becomes a Request, the Reply a message with buttons.

``POST /telegram/webhook`` (``setup``) and ``helpline telegram poll`` (``run_cli``) feed the same
aiogram Dispatcher. Only imported when HELPLINE_TELEGRAM_TOKEN is set.

How an update is handled, and why:

* **Store, then answer.** The webhook processes the update inline (never in the background):
  ``Inbox.handle`` commits the message (idempotent on ``provider_id = str(update_id)``), the
  reply goes out with ``sendMessage``, and only then does the webhook answer 200. So with any
  number of instances nothing Telegram handed over is lost, and a re-delivered update is stored
  once. We call ``sendMessage`` rather than returning the method in the webhook response:
  a callback needs two calls (answerCallbackQuery and the reply), polling has no webhook
  response, and only a real call tells us that it worked (a 403 marks the user as blocked).
  The reply row gets Telegram's message id once sent; a re-delivered update whose reply was
  never confirmed (the process died in between) gets it then, one that was sent gets nothing.
* **Never hammer the Bot API.** aiogram does not retry. If the immediate reply cannot be sent
  for a passing reason (429, 5xx, network) it is handed to the outbox, whose backoff decides.
* **Bad input.** A wrong or missing secret gets 401. A body that is not a JSON object with an
  integer ``update_id`` gets 400 ``{"error": …}`` as DESIGN.md fixes for every webhook: Telegram
  never sends one, so no retry loop can follow, and whoever does learns why. Anything Telegram
  could send that we cannot use (unknown update types, edited messages, stickers, group chats,
  an update aiogram cannot read) gets a quiet 200, because Telegram re-sends everything else.
  If the message was stored but could not be answered, the webhook says 503 and Telegram's
  re-delivery answers the stored row (as for SMS); when polling, the user is asked to resend.
* **Commands** are routed as the words a resident would type: ``/status 12345`` as
  ``CX 12345``, ``/operator`` as 转人工, ``/help`` as 帮助, ``/start`` as a greeting (with the
  language buttons). Choosing a language routes a greeting in that language, which the inbox
  keeps as ``Contact.lang``. Buttons send their option key as the text.
* **Places**: a shared location (or venue) is ``Request.location`` with the venue's name or a
  coordinate marker as text; a grid case still waiting for its place gets a "send location" button.
* **Photos and voice notes** are fetched (getFile, then ``/file/bot{token}/{path}``) into
  ``var/media/telegram/`` up to 5 MB (bigger ones are refused from the size Telegram states,
  without downloading) and recorded in ``Message.meta["media"]`` (paths relative to
  ``HELPLINE_VAR_DIR``) and in an open report draft. A caption is routed as the text. Media
  without a caption are stored without routing, because the router would take an empty text as
  the answer to "where is it?"; the resident is told what we need next.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiogram import Dispatcher, F, Router
from aiogram.exceptions import AiogramError, TelegramAPIError
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (
    CallbackQuery,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message as TgMessage,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
    User,
)
from aiogram.types.update import UpdateTypeLookupError
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from channels.telegram_sender import (
    classify,
    make_bot,
    mark_blocked,
    mark_unblocked,
    split_text,
)
from helpline.appkeys import DB, INBOX, OUTBOX, SETTINGS
from helpline.config import LANGS, Settings, SettingsError
from helpline.contacts import contacts_for, conversations_for
from helpline.db import Database
from helpline.http import BadRequest
from helpline.inbound import Handled, HandlingFailed, Inbox
from helpline.logs import mask_urn
from helpline.models import Contact, ContactAddress, Conversation, Message, utcnow
from helpline.outbox import enqueue
from helpline.outbox_worker import PermanentSendError
from helpline.request import Channel, Intent, Location, Reply, Request

log = logging.getLogger("helpline.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_MEDIA_BYTES = 5 * 1024 * 1024
ALLOWED_UPDATES = ["callback_query", "message", "my_chat_member"]
LOCATION_BUTTON = "发送位置 / Send location"
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_GRID = Intent.GRID_CASE.value
CHANNEL = Channel.TELEGRAM.value

# What a command is routed as, in each language.
_WORDS = {
    "greeting": {"zh": "你好", "en": "hello"},
    "help": {"zh": "帮助", "en": "help"},
    "operator": {"zh": "转人工", "en": "operator"},
    "status": {"zh": "查询进度", "en": "check status"},
}
_LANG_ROW = [
    InlineKeyboardButton(text="中文", callback_data="lang:zh"),
    InlineKeyboardButton(text="English", callback_data="lang:en"),
]
# Adapter-level answers (media without words, /lang); zh, en.
_SAY = {
    "photo_draft": ("照片已收到，会和您反映的问题一起登记。请告诉我们具体地点，或点下方按钮发送位置。",
                    "Photo received: it will be filed with your report. Where exactly is it? Type the place or "
                    "tap the button below to send your location."),
    "voice_draft": ("语音已收到，会和您反映的问题一起登记。请告诉我们具体地点，或点下方按钮发送位置。",
                    "Voice note received: it will be filed with your report. Where exactly is it? Type the place or "
                    "tap the button below to send your location."),
    "photo": ("照片已收到。请用文字告诉我们这是什么问题、在哪里（例如：幸福路口路灯坏了），我们会和照片一起处理。",
              "Photo received. Please tell us in words what the problem is and where (for example: street light "
              "broken at Xingfu Road); we will file the photo with it."),
    "voice": ("语音已收到，话务员可以收听。我们暂时不能自动识别语音，请用文字描述您的问题；需要人工请发送 /operator。",
              "Voice note received; an operator can listen to it. We cannot understand voice notes automatically "
              "yet, so please type your question, or send /operator for a person."),
    "photo_too_big": ("照片太大（超过5 MB），没有保存。请直接发送照片（不要以文件发送），或换一张小一些的。",
                      "That photo is too big (over 5 MB) and was not saved. Please send it as a photo (not as a "
                      "file), or a smaller one."),
    "voice_too_big": ("语音太长（超过5 MB），没有保存。请发一段短一些的语音，或用文字描述。",
                      "That voice note is too long (over 5 MB) and was not saved. Please send a shorter one, or "
                      "type your message."),
    "photo_failed": ("抱歉，照片没能保存，请稍后再发一次。", "Sorry, we could not save that photo; please send it again later."),
    "voice_failed": ("抱歉，语音没能保存，请稍后再发一次。", "Sorry, we could not save that voice note; please send it again later."),
    "unsupported": ("我们可以接收文字、照片、语音和位置。请用文字描述您的问题，或发送 /help 查看服务。",
                    "We can take text, photos, voice notes and locations. Please type your question, or send "
                    "/help to see what we do."),
    "choose_lang": ("请选择语言 / Please choose your language:", "请选择语言 / Please choose your language:"),
    "try_again": ("抱歉，系统暂时繁忙，请稍后再发一次。", "Sorry, we could not handle that just now; please send it again in a moment."),
}


def _say(key: str, lang: str) -> str:
    zh, en = _SAY[key]
    return zh if lang == "zh" else en


def _hint(user: User | None) -> str | None:
    """The language the person's Telegram app uses, when it is one we speak."""
    code = (user.language_code or "").lower() if user else ""
    return "zh" if code.startswith("zh") else "en" if code.startswith("en") else None


CLAIM_STALE = 120


def _stale_claim(provider_id: str) -> bool:
    """A ``claim:<epoch>:<nonce>`` older than CLAIM_STALE seconds (anything else is a sent id)."""
    parts = provider_id.split(":")
    if len(parts) != 3 or parts[0] != "claim" or not parts[1].isdigit():
        return False
    return time.time() - int(parts[1]) > CLAIM_STALE


def _urn(chat_id: int) -> str:
    return f"telegram:{chat_id}"


def _marker(lat: float, lon: float) -> str:
    """A place given only as coordinates, as text the router reads as a place (never as a number)."""
    return f"📍 {'N' if lat >= 0 else 'S'}{abs(lat):.5f} {'E' if lon >= 0 else 'W'}{abs(lon):.5f}"


def render_text(reply: Reply) -> str:
    """The reply's text without the numbered option lines that its buttons already show."""
    if not reply.options:
        return reply.text
    shown = {f"{o.key} {o.label}" for o in reply.options}
    text = "\n".join(line for line in reply.text.split("\n") if line.strip() not in shown).strip()
    return text or reply.text


def keyboard(reply: Reply, flow: str | None, extra: list[list[InlineKeyboardButton]] | None = None) -> Any:
    """Options as inline buttons; a grid case waiting for its place gets the location button."""
    rows = [
        [InlineKeyboardButton(text=f"{o.key} {o.label}", callback_data=o.key)]
        for o in reply.options
        if 0 < len(o.key.encode()) <= 64
    ]
    rows += extra or []
    if rows:
        return InlineKeyboardMarkup(inline_keyboard=rows)
    if reply.intent is Intent.GRID_CASE:
        if flow == _GRID:
            return ReplyKeyboardMarkup(
                keyboard=[[KeyboardButton(text=LOCATION_BUTTON, request_location=True)]],
                resize_keyboard=True, one_time_keyboard=True,
            )
        return ReplyKeyboardRemove()
    return None


@dataclass
class _Media:
    """What became of one photo or voice note: saved (``entry``) or not (``problem``)."""

    kind: str
    entry: dict[str, Any] | None = None
    problem: str | None = None  # "too_big" | "failed"
    refused: dict[str, Any] = field(default_factory=dict)


class TelegramBot:
    """The bot: an aiogram Dispatcher whose handlers turn updates into Requests for the Inbox."""

    def __init__(self, settings: Settings, db: Database, inbox: Inbox, *,
                 notify: Callable[[], None] | None = None, max_media_bytes: int = MAX_MEDIA_BYTES) -> None:
        self.settings = settings
        self.db = db
        self.inbox = inbox
        self.notify = notify  # wakes the outbox worker when a reply was handed to it
        self.max_media_bytes = max_media_bytes
        self.media_dir = settings.var_dir / "media" / "telegram"
        self.bot = make_bot(settings)
        self.dispatcher = Dispatcher()
        self.dispatcher.include_router(self._routes())
        self._started = asyncio.Event()
        self.dispatcher.startup.register(self._on_startup)

    def _routes(self) -> Router:
        router = Router(name="helpline")
        router.message.filter(F.chat.type == "private")  # a help-line talks to people, not groups
        router.my_chat_member.filter(F.chat.type == "private")
        router.message.register(self._on_start, CommandStart())
        router.message.register(self._on_command, Command("help", "status", "operator", "lang", ignore_case=True))
        router.message.register(self._on_location, F.location | F.venue)
        router.message.register(self._on_media, F.photo | F.voice)
        router.message.register(self._on_text, F.text)
        router.message.register(self._on_other, F.document | F.video | F.audio | F.animation | F.video_note | F.contact)
        router.callback_query.register(self._on_button)
        router.my_chat_member.register(self._on_membership)
        # Stickers, service messages, edited messages and other update types have no handler: quiet.
        return router

    async def close(self) -> None:
        await self.bot.session.close()

    # -- entry points ---------------------------------------------------------------------

    async def process(self, data: dict[str, Any]) -> None:
        """Handle one update from the webhook; returns once it is stored and answered.

        Raises HandlingFailed when the message was kept but not answered (the webhook says 503).
        """
        try:
            upd = Update.model_validate(data, context={"bot": self.bot})
            upd.event_type  # noqa: B018 - raises for update types this aiogram does not know
        except (ValidationError, UpdateTypeLookupError) as exc:
            log.warning("event=telegram.ignored update_id=%s reason=%s", data.get("update_id"), type(exc).__name__)
            return
        try:
            await self.dispatcher.feed_update(self.bot, upd, redeliverable=True)
        except HandlingFailed:
            raise
        except SQLAlchemyError as exc:  # the database is away: Telegram's re-delivery will find it back
            log.error("event=telegram.update_failed update_id=%s error=%r", upd.update_id, exc)
            raise HandlingFailed("the database could not take the update") from exc
        except Exception:
            log.exception("event=telegram.update_failed update_id=%s", upd.update_id)

    async def run_polling(self, stop: asyncio.Event | None = None, *, handle_signals: bool = False,
                          polling_timeout: int = 25) -> None:
        """Long-poll getUpdates until ``stop`` is set (or SIGINT/SIGTERM with ``handle_signals``).

        Updates are handled one after another, each stored before the next getUpdates confirms it,
        so a restart re-reads what was not finished and the inbox keeps it from being stored twice.
        """
        await self.bot.delete_webhook(drop_pending_updates=False)  # getUpdates refuses while a webhook is set
        waiter = asyncio.create_task(self._stop_on(stop)) if stop is not None else None
        try:
            await self.dispatcher.start_polling(
                self.bot, polling_timeout=polling_timeout, handle_as_tasks=False, handle_signals=handle_signals,
                close_bot_session=False, allowed_updates=ALLOWED_UPDATES, redeliverable=False,
            )
        finally:
            if waiter is not None:
                waiter.cancel()

    async def _on_startup(self) -> None:
        self._started.set()

    async def _stop_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        await self._started.wait()
        await self.dispatcher.stop_polling()

    # -- handlers -------------------------------------------------------------------------

    async def _on_start(self, message: TgMessage, event_update: Update, redeliverable: bool = False) -> None:
        urn = _urn(message.chat.id)
        await mark_unblocked(self.db, urn)  # /start after unblocking: reachable again
        lang = await self._lang(urn, message.from_user)
        await self._route(message.chat.id, event_update.update_id, _WORDS["greeting"][lang], lang=lang,
                          extra=[_LANG_ROW], redeliverable=redeliverable)

    async def _on_command(self, message: TgMessage, event_update: Update, command: CommandObject,
                          redeliverable: bool = False) -> None:
        chat_id, update_id = message.chat.id, event_update.update_id
        name, args = command.command.lower(), (command.args or "").strip()
        lang = await self._lang(_urn(chat_id), message.from_user)
        if name == "lang":
            chosen = {"zh": "zh", "中文": "zh", "en": "en", "english": "en"}.get(args.lower())
            if chosen is None:
                handled, flow = await self._store(chat_id, update_id, message.text or "/lang", lang,
                                                  lambda lg, _draft: Reply(_say("choose_lang", lg), Intent.MENU, lg))
                await self._answer_stored(chat_id, handled, flow, extra=[_LANG_ROW])
                return
            text, lang = _WORDS["greeting"][chosen], chosen
        elif name == "status":
            digits = re.sub(r"\D", "", args)
            text = f"CX {digits}" if len(digits) >= 3 else _WORDS["status"][lang]
        else:
            text = _WORDS[name][lang]
        await self._route(chat_id, update_id, text, lang=lang, redeliverable=redeliverable)

    async def _on_text(self, message: TgMessage, event_update: Update, redeliverable: bool = False) -> None:
        text = (message.text or "")[: self.settings.max_text_length]
        await self._route(message.chat.id, event_update.update_id, text, redeliverable=redeliverable)

    async def _on_location(self, message: TgMessage, event_update: Update, redeliverable: bool = False) -> None:
        venue = message.venue
        point = venue.location if venue is not None else message.location
        assert point is not None
        if venue is not None:
            text = ", ".join(p for p in (venue.title, venue.address) if p)[:500]
        else:
            text = _marker(point.latitude, point.longitude)
        await self._route(message.chat.id, event_update.update_id, text or _marker(point.latitude, point.longitude),
                          location=Location(point.latitude, point.longitude), redeliverable=redeliverable)

    async def _on_media(self, message: TgMessage, event_update: Update, redeliverable: bool = False) -> None:
        chat_id, update_id = message.chat.id, event_update.update_id
        media = await self._fetch(message, update_id)
        caption = (message.caption or "").strip()[: self.settings.max_text_length]
        if caption:
            await self._route(chat_id, update_id, caption, media=media, redeliverable=redeliverable)
            return
        hint = await self._lang(_urn(chat_id), message.from_user)

        def compose(lang: str, draft: bool) -> Reply:
            if media.problem is not None:
                return Reply(_say(f"{media.kind}_{media.problem}", lang), Intent.UNKNOWN, lang)
            if draft:
                return Reply(_say(f"{media.kind}_draft", lang), Intent.GRID_CASE, lang)
            return Reply(_say(media.kind, lang), Intent.UNKNOWN, lang)

        handled, flow = await self._store(chat_id, update_id, "", hint, compose, media)
        await self._answer_stored(chat_id, handled, flow)

    async def _on_other(self, message: TgMessage, event_update: Update, redeliverable: bool = False) -> None:
        """Documents, videos and the like: their caption is the message; without one we say what we take."""
        caption = (message.caption or "").strip()[: self.settings.max_text_length]
        if caption:
            await self._route(message.chat.id, event_update.update_id, caption, redeliverable=redeliverable)
            return
        hint = await self._lang(_urn(message.chat.id), message.from_user)
        handled, flow = await self._store(message.chat.id, event_update.update_id, "", hint,
                                          lambda lg, _d: Reply(_say("unsupported", lg), Intent.UNKNOWN, lg))
        await self._answer_stored(message.chat.id, handled, flow)

    async def _on_button(self, callback: CallbackQuery, event_update: Update, redeliverable: bool = False) -> None:
        chat = callback.message.chat if callback.message is not None else None
        data = (callback.data or "").strip()
        if (chat is not None and chat.type != "private") or not data:
            await self._ack(callback.id)
            return
        chat_id = callback.from_user.id
        if data.startswith("lang:"):
            lang = data.partition(":")[2]
            if lang not in LANGS:
                await self._ack(callback.id)
                return
            await self._route(chat_id, event_update.update_id, _WORDS["greeting"][lang], lang=lang,
                              callback_id=callback.id, redeliverable=redeliverable)
            return
        # The option key is what the resident would have typed.
        await self._route(chat_id, event_update.update_id, data, callback_id=callback.id, redeliverable=redeliverable)

    async def _on_membership(self, event: ChatMemberUpdated) -> None:
        urn = _urn(event.chat.id)
        status = event.new_chat_member.status
        if status == "kicked":
            await mark_blocked(self.db, urn, "blocked the bot")
        elif status == "member":
            await mark_unblocked(self.db, urn)

    # -- the way through the inbox ---------------------------------------------------------

    async def _route(self, chat_id: int, update_id: int, text: str, *, lang: str | None = None,
                     location: Location | None = None, media: _Media | None = None, callback_id: str | None = None,
                     extra: list[list[InlineKeyboardButton]] | None = None, redeliverable: bool = False) -> None:
        req = Request(channel=Channel.TELEGRAM, address=_urn(chat_id), text=text, lang=lang, location=location,
                      provider_id=str(update_id))
        try:
            handled = await self.inbox.handle(req)
        except HandlingFailed:
            if redeliverable:
                raise  # the webhook answers 503; Telegram's re-delivery answers the stored row
            await self._send_plain(chat_id, _say("try_again", lang or self.settings.default_lang))
            return
        flow = await self._attach(handled, media) if media is not None else None
        claim = await self._claim(handled.message_id)
        if claim is None:
            return  # answered before, or another copy of this update is answering it now
        if callback_id is not None:
            await self._ack(callback_id)
        if flow is None and handled.reply.intent is Intent.GRID_CASE:
            flow = await self._flow(handled.conversation_id)
        await self._answer(chat_id, handled, flow, claim, extra=extra)
        if media is not None and media.problem is not None:
            await self._send_plain(chat_id, _say(f"{media.kind}_{media.problem}", handled.reply.lang))

    async def _answer_stored(self, chat_id: int, handled: Handled, flow: str | None,
                             extra: list[list[InlineKeyboardButton]] | None = None) -> None:
        claim = await self._claim(handled.message_id)
        if claim is not None:
            await self._answer(chat_id, handled, flow, claim, extra)

    async def _answer(self, chat_id: int, handled: Handled, flow: str | None, claim: str,
                      extra: list[list[InlineKeyboardButton]] | None = None) -> None:
        """Send the reply we hold the claim for; record Telegram's message id, or hand a passing
        failure to the outbox."""
        reply = handled.reply
        if not reply.text:
            return  # over the rate limit and already told: stored, nothing sent
        parts = split_text(render_text(reply))
        markup = keyboard(reply, flow, extra)
        sent = None
        try:
            for i, part in enumerate(parts):
                sent = await self.bot.send_message(chat_id=chat_id, text=part,
                                                   reply_markup=markup if i == len(parts) - 1 else None)
        except (TelegramAPIError, AiogramError) as exc:
            await self._reply_failed(chat_id, handled, exc)
            return
        assert sent is not None
        async with self.db.write() as session:
            await session.execute(
                update(Message)
                .where(Message.reply_to_id == handled.message_id, Message.direction == "out",
                       Message.status == "replied", Message.provider_id == claim)
                .values(provider_id=f"{chat_id}:{sent.message_id}")
                .execution_options(synchronize_session=False)
            )

    async def _reply_failed(self, chat_id: int, handled: Handled, exc: Exception) -> None:
        urn = _urn(chat_id)
        error = classify(exc)
        passing = not isinstance(error, PermanentSendError)
        log.warning("event=telegram.reply_failed urn=%s error=%s retry=%s", mask_urn(urn), error, passing)
        if isinstance(error, PermanentSendError) and error.opted_out:
            await mark_blocked(self.db, urn, str(exc))
        async with self.db.write() as session:
            await session.execute(
                update(Message)
                .where(Message.reply_to_id == handled.message_id, Message.direction == "out")
                .values(status="failed")
                .execution_options(synchronize_session=False)
            )
            if passing:  # the outbox retries with backoff (text only: buttons cannot wait)
                await enqueue(session, urn, handled.reply.text, "reply", key=f"telegram-reply:{handled.message_id}")
        if passing and self.notify is not None:
            self.notify()

    async def _send_plain(self, chat_id: int, text: str) -> None:
        """A notice that is not the stored reply (a refused photo, "try again"); failures are only logged."""
        try:
            await self.bot.send_message(chat_id=chat_id, text=text)
        except (TelegramAPIError, AiogramError) as exc:
            log.warning("event=telegram.notice_failed urn=%s error=%s", mask_urn(_urn(chat_id)), exc)

    async def _ack(self, callback_id: str) -> None:
        try:
            await self.bot.answer_callback_query(callback_query_id=callback_id)
        except (TelegramAPIError, AiogramError) as exc:  # too old, already answered: nothing to do
            log.info("event=telegram.callback_answer_failed error=%s", exc)

    # -- database ---------------------------------------------------------------------------

    async def _lang(self, urn: str, user: User | None) -> str:
        """The language we speak with this person: theirs as stored, else their app's, else the line's."""
        async with self.db.read() as session:
            lang = await session.scalar(
                select(Contact.lang).join(ContactAddress, ContactAddress.contact_id == Contact.id)
                .where(ContactAddress.urn == urn)
            )
        return lang if lang in LANGS else _hint(user) or self.settings.default_lang

    async def _flow(self, conversation_id: str) -> str | None:
        async with self.db.read() as session:
            state = await session.scalar(select(Conversation.state).where(Conversation.id == conversation_id))
        return (state or {}).get("flow")

    async def _claim(self, inbound_id: int) -> str | None:
        """Take the right to send the stored reply to this message, or None when it was sent, or
        another copy of the update is sending it right now.

        The reply row's ``provider_id`` holds ``claim:<epoch>:<nonce>`` while a copy sends it and
        Telegram's message id after; taking it is a compare-and-set on the value read, so of
        copies arriving together exactly one sends. A claim older than ``CLAIM_STALE`` seconds was
        left by a process that died mid-send, and a re-delivery may take it over.
        """
        async with self.db.write() as session:
            row = (await session.execute(
                select(Message.id, Message.status, Message.provider_id)
                .where(Message.reply_to_id == inbound_id, Message.direction == "out")
            )).first()
            if row is None or row.status != "replied":
                return None
            held = row.provider_id
            if held is not None and not _stale_claim(held):
                return None
            claim = f"claim:{int(time.time())}:{secrets.token_hex(4)}"
            same = Message.provider_id.is_(None) if held is None else Message.provider_id == held
            taken = await session.execute(
                update(Message).where(Message.id == row.id, same).values(provider_id=claim)
                .execution_options(synchronize_session=False)
            )
        return claim if taken.rowcount == 1 else None

    async def _attach(self, handled: Handled, media: _Media) -> str | None:
        """Record a routed message's photo on it and on the open report draft; returns the flow."""
        async with self.db.write() as session:
            msg = await session.get(Message, handled.message_id)
            if msg is not None and "media" not in (msg.meta or {}):
                msg.meta = {**(msg.meta or {}), **_media_meta(media)}
            conv = await session.get(Conversation, handled.conversation_id, with_for_update=True)
            if conv is None:
                return None
            conv.state = _with_media(conv.state or {}, media)
            return (conv.state or {}).get("flow")

    async def _store(self, chat_id: int, update_id: int, text: str, hint: str,
                     compose: Callable[[str, bool], Reply], media: _Media | None = None) -> tuple[Handled, str | None]:
        """Keep a message the router must not see (media without words, /lang) with our answer.

        Idempotent on the update id like the inbox, and in the same shape (an inbound row and a
        reply row), so the conversation shows it and a re-delivery is answered the same way.
        """
        urn, pid = _urn(chat_id), str(update_id)
        for attempt in range(2):
            try:
                async with self.db.write() as session:
                    earlier = await session.scalar(select(Message).where(
                        Message.channel == CHANNEL, Message.provider_id == pid, Message.direction == "in"))
                    if earlier is not None:
                        out = await session.scalar(select(Message).where(
                            Message.reply_to_id == earlier.id, Message.direction == "out"))
                        lang = earlier.lang or hint
                        reply = Reply.from_dict(out.meta["response"]) if out is not None else compose(lang, False)
                        conv = await session.get(Conversation, earlier.conversation_id)
                        flow = (conv.state or {}).get("flow") if conv is not None else None
                        return Handled(earlier.conversation_id, earlier.id, reply, True), flow
                    now = utcnow()
                    contact = (await contacts_for(session, [urn]))[urn]
                    conv = (await conversations_for(session, [(contact, CHANNEL)], now))[(contact.id, CHANNEL)]
                    await session.flush()
                    await session.refresh(conv, with_for_update=True)
                    state = conv.state or {}
                    draft = state.get("flow") == _GRID and isinstance(state.get("report"), dict)
                    lang = conv.lang or contact.lang or hint
                    reply = compose(lang, draft)
                    if media is not None:
                        conv.state = _with_media(state, media)
                    conv.updated_at = now
                    inbound = Message(
                        conversation_id=conv.id, contact_id=contact.id, channel=CHANNEL, direction="in", urn=urn,
                        provider_id=pid, text=text, lang=lang, intent=reply.intent.value, status="handled",
                        meta=_media_meta(media) if media is not None else {}, created_at=now,
                    )
                    session.add(inbound)
                    await session.flush()
                    session.add(Message(
                        conversation_id=conv.id, contact_id=contact.id, channel=CHANNEL, direction="out", urn=urn,
                        text=reply.text, lang=lang, intent=reply.intent.value, status="replied",
                        reply_to_id=inbound.id, meta={"response": reply.to_dict(), "urgent": False}, created_at=now,
                    ))
                    flow = (conv.state or {}).get("flow")
                log.info("event=telegram.stored urn=%s update_id=%s intent=%s", mask_urn(urn), update_id, reply.intent)
                return Handled(conv.id, inbound.id, reply, False), flow
            except IntegrityError:
                if attempt:  # the same update stored by another instance at the same moment: read it
                    raise
        raise AssertionError("unreachable")

    # -- media ------------------------------------------------------------------------------

    async def _fetch(self, message: TgMessage, update_id: int) -> _Media:
        """Download the photo (the biggest size under the limit) or voice note into var/media."""
        limit = self.max_media_bytes
        if message.photo:
            kind = "photo"
            sizes = sorted(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
            fitting = [p for p in sizes if (p.file_size or 0) <= limit]
            chosen = fitting[-1] if fitting else None
            stated = sizes[-1].file_size
            file_id, unique = (chosen.file_id, chosen.file_unique_id) if chosen else ("", "")
        else:
            kind, voice = "voice", message.voice
            assert voice is not None
            stated = voice.file_size
            chosen = voice if (voice.file_size or 0) <= limit else None
            file_id, unique = voice.file_id, voice.file_unique_id
        if chosen is None:
            log.info("event=telegram.media_refused kind=%s bytes=%s", kind, stated)
            return _Media(kind, problem="too_big", refused={"kind": kind, "bytes": stated, "reason": "too large"})
        try:
            file = await self.bot.get_file(file_id)
            if file.file_size is not None and file.file_size > limit:
                return _Media(kind, problem="too_big",
                              refused={"kind": kind, "bytes": file.file_size, "reason": "too large"})
            if not file.file_path:
                raise ValueError("getFile gave no file_path")
            url = self.bot.session.api.file_url(self.bot.token, file.file_path)
            data = bytearray()
            async with contextlib.aclosing(self.bot.session.stream_content(url, timeout=30)) as chunks:
                async for chunk in chunks:
                    data += chunk
                    if len(data) > limit:  # Telegram did not say, or said wrong: stop reading
                        return _Media(kind, problem="too_big",
                                      refused={"kind": kind, "bytes": len(data), "reason": "too large"})
        except Exception as exc:  # an unreachable or odd Bot API must not lose the message itself
            log.warning("event=telegram.media_failed kind=%s error=%s: %s", kind, type(exc).__name__, exc)
            return _Media(kind, problem="failed", refused={"kind": kind, "reason": "download failed"})
        suffix = Path(file.file_path).suffix.lower()
        if not re.fullmatch(r"\.[a-z0-9]{1,5}", suffix):
            suffix = ".jpg" if kind == "photo" else ".ogg"
        name = f"{update_id}-{re.sub(r'[^A-Za-z0-9_-]', '', unique)[:64] or 'file'}{suffix}"
        await asyncio.to_thread(_write, self.media_dir / name, bytes(data))
        entry = {"kind": kind, "path": f"media/telegram/{name}", "bytes": len(data),
                 "mime": "image/jpeg" if kind == "photo" else (getattr(chosen, "mime_type", None) or "audio/ogg"),
                 "file_id": file_id, "file_unique_id": unique}
        log.info("event=telegram.media_saved kind=%s bytes=%d path=%s", kind, len(data), entry["path"])
        return _Media(kind, entry=entry)


def _write(path: Path, data: bytes) -> None:
    """Write whole or not at all (a re-delivered update rewrites the same name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def _media_meta(media: _Media) -> dict[str, Any]:
    if media.entry is not None:
        return {"media": [media.entry]}
    return {"media": [], "media_refused": [media.refused]}


def _with_media(state: dict[str, Any], media: _Media) -> dict[str, Any]:
    """The state with a saved file added to the open report draft (if one is open)."""
    report = state.get("report")
    if media.entry is None or state.get("flow") != _GRID or not isinstance(report, dict):
        return state
    paths = list(report.get("media", []))
    if media.entry["path"] not in paths:
        paths.append(media.entry["path"])
    return {**state, "report": {**report, "media": paths}}


# -- the webhook ----------------------------------------------------------------------------

TELEGRAM: web.AppKey[TelegramBot] = web.AppKey("telegram_bot", TelegramBot)


def setup(app: web.Application) -> None:
    """Register ``POST /telegram/webhook`` and the bot's life cycle (call when a token is set)."""
    settings = app[SETTINGS]
    secret = settings.telegram_secret
    if secret is None:
        log.warning("event=telegram.no_secret HELPLINE_TELEGRAM_SECRET is not set: the webhook refuses every "
                    "update (401). Set it for webhook mode; 'helpline telegram poll' works without it.")
    elif not _SECRET.match(secret):
        raise SettingsError("HELPLINE_TELEGRAM_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    app.router.add_post("/telegram/webhook", webhook)
    app.cleanup_ctx.append(_bot_context)


async def _bot_context(app: web.Application) -> AsyncIterator[None]:
    worker = app.get(OUTBOX)
    bot = TelegramBot(app[SETTINGS], app[DB], app[INBOX], notify=worker.notify if worker is not None else None)
    app[TELEGRAM] = bot
    try:
        yield
    finally:
        await bot.close()


async def webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    given = request.headers.get(SECRET_HEADER, "")
    secret = settings.telegram_secret
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        log.warning("event=telegram.bad_secret present=%s", bool(given))
        raise web.HTTPUnauthorized()
    raw = await request.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object (a Telegram Update)")
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise BadRequest("missing or invalid field 'update_id' (an integer)")
    try:
        await request.app[TELEGRAM].process(data)
    except HandlingFailed:
        raise web.HTTPServiceUnavailable() from None
    return web.Response(status=200)


# -- the command line ------------------------------------------------------------------------

async def set_webhook(settings: Settings) -> str:
    """Point Telegram at HELPLINE_PUBLIC_URL/telegram/webhook with the secret; returns the URL."""
    if not settings.telegram_secret:
        raise SettingsError("set HELPLINE_TELEGRAM_SECRET before registering the webhook")
    url = settings.public_url + "/telegram/webhook"
    bot = make_bot(settings)
    try:
        await bot.set_webhook(url=url, secret_token=settings.telegram_secret, allowed_updates=ALLOWED_UPDATES)
    finally:
        await bot.session.close()
    return url


async def poll(settings: Settings) -> None:
    """``helpline telegram poll``: prepare the database and long-poll until Ctrl-C or SIGTERM."""
    from helpline.app import build_router
    from helpline.bootstrap import prepare
    from helpline.metrics import Metrics

    await prepare(settings)
    db = Database.from_url(settings.database_url)
    inbox = Inbox(db, build_router(), settings, Metrics())
    bot = TelegramBot(settings, db, inbox)
    try:
        await bot.run_polling(handle_signals=True)
    finally:
        await inbox.close()
        await bot.close()
        await db.dispose()


async def run_cli(settings: Settings, command: str) -> int:
    """The ``helpline telegram …`` commands; returns the exit status."""
    import sys

    if not settings.telegram_token:
        print("helpline: set HELPLINE_TELEGRAM_TOKEN (the bot's token from @BotFather) first", file=sys.stderr)
        return 2
    try:
        if command == "set-webhook":
            url = await set_webhook(settings)
            print(f"Telegram now sends updates to {url}")
            return 0
        print("Polling Telegram for updates; Ctrl-C stops.", flush=True)
        await poll(settings)
        return 0
    except SettingsError as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 2
    except (TelegramAPIError, AiogramError) as exc:
        print(f"helpline: the Bot API refused or cannot be reached: {exc}", file=sys.stderr)
        return 1
