"""The router: decide what a request is, then hand it to the one handler registered for that intent.

Like an 81890 operator it first listens for an emergency, then lets a dialogue in progress (a
booking waiting for its slot, a case waiting for its place) take the message, and otherwise
classifies it afresh. Handlers are registered explicitly; anything unregistered reaches the
fallback, so the router never answers with silence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from helpline.config import Settings
from helpline.models import Contact, Conversation, Event
from helpline.paging import MORE_WORDS, paginate
from helpline.request import Channel, Intent, Reply, Request


@dataclass(frozen=True, slots=True)
class Classification:
    """The classifier's verdict. ``category`` carries intent-specific detail (a grid class, a service).

    ``second`` is a weaker reading of the same words, tried when the first handler cannot
    answer: "the road by the market is covered in mud" is first a question for the knowledge
    base and, when that finds nothing, a street problem to report.
    """

    intent: Intent
    confidence: float = 1.0
    category: dict[str, Any] | None = None
    second: Classification | None = None


class Classifier(Protocol):
    def classify(self, text: str, lang: str) -> Classification: ...


@dataclass
class Context:
    """Everything a handler may use. ``session`` is the transaction the message is stored in, so
    whatever a handler writes (a case, a booking, an outbox row) commits together with it."""

    session: AsyncSession
    settings: Settings
    request: Request
    lang: str
    contact: Contact
    conversation: Conversation
    now: datetime
    classification: Classification = field(default_factory=lambda: Classification(Intent.UNKNOWN, 0.0))
    router: Router | None = None

    @property
    def state(self) -> dict[str, Any]:
        """The conversation's dialogue state; handlers change it through ``set_state``."""
        return self.conversation.state or {}

    def set_state(self, **changes: Any) -> None:
        """Update dialogue state (None removes a key); assigns a new dict so the JSON column is saved."""
        state = dict(self.state)
        for key, value in changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        self.conversation.state = state

    def audit(self, action: str, data: dict[str, Any], subject_type: str = "conversation", subject_id: str | None = None) -> None:
        """Record in the audit log, in this message's transaction, that the caller caused ``action``."""
        self.session.add(
            Event(
                actor=f"contact:{self.contact.id}",
                action=action,
                subject_type=subject_type,
                subject_id=(subject_id or self.conversation.id)[:64],
                data=data,
            )
        )

    def t(self, zh: str, en: str) -> str:
        """Pick the text in the caller's language."""
        return zh if self.lang == "zh" else en


# A handler answers; a *flow* handler (continuing a dialogue) may return None to decline the
# message, which the router then classifies afresh.
Handler = Callable[[Context], Awaitable[Reply | None]]


class Router:
    def __init__(self, classifier: Classifier, fallback: Handler) -> None:
        self.classifier = classifier
        self._fallback = fallback
        self._handlers: dict[Intent, Handler] = {}

    def register(self, intent: Intent, handler: Handler) -> None:
        if intent in self._handlers:
            raise ValueError(f"a handler for {intent.value!r} is already registered")
        self._handlers[intent] = handler

    def handles(self, intent: Intent) -> bool:
        return intent in self._handlers

    async def route(self, ctx: Context) -> Reply:
        """Answer the request, cut to the channel's size; "M" after a cut reply sends the rest."""
        ctx.router = self
        waiting = ctx.state.get("more")
        if waiting and ctx.request.text.strip().lower() in MORE_WORDS:
            reply = Reply(text=waiting, intent=_intent(ctx.state.get("more_intent")) or Intent.UNKNOWN, lang=ctx.lang)
        else:
            reply = await self._route(ctx)
        reply, rest = paginate(reply, ctx.request.channel)
        ctx.set_state(more=rest or None, more_intent=reply.intent.value if rest else None)
        return reply

    async def _route(self, ctx: Context) -> Reply:
        ctx.classification = self.classifier.classify(ctx.request.text, ctx.lang)
        if ctx.conversation.status == "assigned" and ctx.classification.intent is not Intent.EMERGENCY:
            return _with_operator(ctx)
        if ctx.classification.intent is not Intent.EMERGENCY:
            flow = _intent(ctx.state.get("flow"))
            if flow is not None and flow in self._handlers:
                reply = await self._handlers[flow](ctx)
                if reply is not None:
                    return reply
                ctx.set_state(flow=None)
        reading: Classification | None = ctx.classification
        while reading is not None:
            ctx.classification = reading
            handler = self._handlers.get(reading.intent)
            reply = await handler(ctx) if handler is not None else None
            if reply is not None:
                return reply
            reading = reading.second
        return await self._answer_anyway(ctx)

    async def dispatch(self, ctx: Context, intent: Intent) -> Reply:
        """Hand the request to the handler of ``intent`` (or the fallback) and insist on an answer."""
        handler = self._handlers.get(intent, self._fallback)
        reply = await handler(ctx)
        return reply if reply is not None else await self._answer_anyway(ctx)

    async def _answer_anyway(self, ctx: Context) -> Reply:
        reply = await self._fallback(ctx)
        if reply is None:  # pragma: no cover - a fallback must always answer
            raise RuntimeError("the fallback handler gave no reply")
        return reply


def _with_operator(ctx: Context) -> Reply:
    """An operator has the conversation in hand: the message is theirs to answer, not the bot's.

    Where a reply costs the resident nothing and shows on the page (web), say where it went; on
    SMS and chat the operator's own answer is the reply, so nothing automatic goes out.
    """
    text = ""
    if ctx.request.channel is Channel.WEB:
        text = ctx.t("已转给正在为您服务的话务员，请稍候。", "Passed to the operator who is helping you; please wait.")
    return Reply(text=text, intent=Intent.OPERATOR, lang=ctx.lang)


def _intent(value: Any) -> Intent | None:
    try:
        return Intent(value) if value else None
    except ValueError:
        return None
