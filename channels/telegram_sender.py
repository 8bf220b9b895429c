"""Outbound Telegram messages for the outbox worker, and what the Telegram channel shares about
talking to the Bot API: building the aiogram Bot, sorting its errors, marking blocked users.

Only imported when ``HELPLINE_TELEGRAM_TOKEN`` is set (aiogram is imported here at the top).

Errors: aiogram raises a typed exception per Bot API answer. A 403 ("bot was blocked by the
user", "user is deactivated", "bot can't initiate conversation") means the person cannot be
reached until they write to us again: the address is marked (``opted_out_at`` plus an Event
``telegram.blocked``) and ``PermanentSendError(opted_out=True)`` tells the worker, which then
skips every later row for that address without calling Telegram. Rate limits (429), 5xx,
network trouble and answers about our own token are worth a retry later; the outbox's backoff
decides when (aiogram itself never retries, so the Bot API is not hammered). Other 400s will
not get better.

Idempotency: the Bot API has no idempotency key. A row whose message Telegram accepted just
before this process died is sent again when its lease expires, as with Twilio.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
)
from sqlalchemy import select, update

from helpline.config import Settings
from helpline.db import Database
from helpline.logs import mask_urn
from helpline.models import ContactAddress, Event, OutboxItem, utcnow
from helpline.outbox_worker import PermanentSendError, SendError, TemporarySendError

log = logging.getLogger("helpline.telegram")

SEND_TIMEOUT = 20  # seconds for one Bot API call (getUpdates adds its long-poll time to this)
MAX_TEXT = 4096  # Telegram's limit for one message's text
BLOCKED = "telegram.blocked"
UNBLOCKED = "telegram.unblocked"
# Events that decide whether an address is opted out, latest first wins.
_OPT_EVENTS = (BLOCKED, UNBLOCKED, "subscription.stop", "subscription.start")


def make_bot(settings: Settings) -> Bot:
    """The aiogram Bot for our token, talking to HELPLINE_TELEGRAM_API_URL when set (a local fake
    in tests, a local Bot API server in some deployments). Its HTTP session opens on first use."""
    if not settings.telegram_token:
        raise ValueError("Telegram needs HELPLINE_TELEGRAM_TOKEN")
    url = settings.telegram_api_url
    api = TelegramAPIServer.from_base(url.rstrip("/")) if url else PRODUCTION
    return Bot(settings.telegram_token, session=AiohttpSession(api=api, timeout=SEND_TIMEOUT))


def chat_id_of(urn: str) -> int:
    scheme, _, ident = urn.partition(":")
    if scheme != "telegram" or not ident.lstrip("-").isdigit():
        raise PermanentSendError(f"not a telegram: address: {urn!r}")
    return int(ident)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Telegram takes at most 4096 characters a message: longer text goes in parts, cut at a line end."""
    text = text.strip() or "…"
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", limit // 2, limit)
        cut = cut if cut > 0 else limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    parts.append(text)
    return parts


def classify(exc: Exception) -> SendError:
    """A Bot API failure as the outbox sees it: permanent (with opted_out for 403) or temporary."""
    text = f"telegram {type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
    if isinstance(exc, TelegramForbiddenError):
        return PermanentSendError(text, opted_out=True)
    if isinstance(exc, TelegramBadRequest | TelegramMigrateToChat | TelegramEntityTooLarge):
        return PermanentSendError(text)
    # Rate limits, 5xx, network errors, timeouts, 401/404/409 (our token or URL): retry later.
    return TemporarySendError(text)


async def mark_blocked(db: Database, urn: str, reason: str) -> None:
    """The person blocked the bot: nothing more is sent to this address until they are back.

    The Event is written only when this changes the address, so an opt-out the person asked for
    (STOP) stays the latest cause and is not lifted when they unblock the bot.
    """
    now = utcnow()
    async with db.write() as session:
        result = await session.execute(
            update(ContactAddress)
            .where(ContactAddress.urn == urn, ContactAddress.opted_out_at.is_(None))
            .values(opted_out_at=now)
            .execution_options(synchronize_session=False)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return
        session.add(Event(at=now, actor="telegram", action=BLOCKED, subject_type="address",
                          subject_id=urn[:64], data={"reason": reason[:500]}))
    log.info("event=telegram.blocked urn=%s reason=%r", mask_urn(urn), reason)


async def mark_unblocked(db: Database, urn: str) -> bool:
    """The person is back (unblocked or restarted the bot): lift a block that Telegram caused.

    An opt-out the person asked for (STOP) stays: only a block whose latest cause is
    ``telegram.blocked`` is lifted. Returns whether anything changed.
    """
    async with db.write() as session:
        address = await session.scalar(select(ContactAddress).where(ContactAddress.urn == urn))
        if address is None or address.opted_out_at is None:
            return False
        latest = await session.scalar(
            select(Event.action)
            .where(Event.subject_type == "address", Event.subject_id == urn[:64], Event.action.in_(_OPT_EVENTS))
            .order_by(Event.id.desc())
            .limit(1)
        )
        if latest != BLOCKED:
            return False
        address.opted_out_at = None
        session.add(Event(actor="telegram", action=UNBLOCKED, subject_type="address", subject_id=urn[:64], data={}))
    log.info("event=telegram.unblocked urn=%s", mask_urn(urn))
    return True


class TelegramSender:
    """Sends outbox rows of the ``telegram`` channel with sendMessage; returns ``"<chat>:<message id>"``.

    With ``db`` a blocked recipient is also recorded as an Event ``telegram.blocked`` (the worker
    itself sets ``opted_out_at`` from ``PermanentSendError(opted_out=True)``).
    """

    def __init__(self, settings: Settings, *, db: Database | None = None) -> None:
        self.bot = make_bot(settings)
        self.db = db

    async def send(self, item: OutboxItem) -> str:
        chat_id = chat_id_of(item.urn)
        message_id = 0
        try:
            for part in split_text(item.body):
                message = await self.bot.send_message(chat_id=chat_id, text=part)
                message_id = message.message_id
        except (TelegramAPIError, AiogramError) as exc:
            error = classify(exc)
            if isinstance(error, PermanentSendError) and error.opted_out and self.db is not None:
                await mark_blocked(self.db, item.urn, str(exc))
            raise error from exc
        return f"{chat_id}:{message_id}"

    async def close(self) -> None:
        await self.bot.session.close()
