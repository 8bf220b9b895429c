"""The channel-neutral request and reply every channel translates to and from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from helpline.models import utcnow


class Channel(StrEnum):
    WEB = "web"
    SMS = "sms"
    VOICE = "voice"
    TELEGRAM = "telegram"


class Intent(StrEnum):
    KNOWLEDGE = "knowledge"
    BOOKING = "booking"
    GRID_CASE = "grid_case"
    CASE_STATUS = "case_status"
    OPERATOR = "operator"
    EMERGENCY = "emergency"
    MENU = "menu"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Request:
    """What a resident sent, whatever the channel.

    ``address`` is the contact's URN on that channel; ``provider_id`` is the provider's own id for
    the message (or an idempotency key), which makes a re-delivery harmless.
    """

    channel: Channel
    address: str
    text: str
    lang: str | None = None
    location: Location | None = None
    provider_id: str | None = None
    received_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Option:
    key: str
    label: str


@dataclass(frozen=True, slots=True)
class Reply:
    """What the line answers; each channel renders it in its own form.

    ``article``, ``grid``, ``case`` and ``booking`` are the structured facts behind the text, for
    channels (and API clients) that can show more than words.
    """

    text: str
    intent: Intent
    lang: str
    options: tuple[Option, ...] = ()
    article: dict[str, Any] | None = None
    grid: dict[str, Any] | None = None
    case: dict[str, Any] | None = None
    booking: dict[str, Any] | None = None
    urgent: bool = False
    # The sender is over the per-contact rate limit: stored, not routed (helpline/ratelimit.py).
    throttled: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The reply's part of the API response, as DESIGN.md part 2 fixes it."""
        return {
            "intent": self.intent.value,
            "lang": self.lang,
            "reply": {
                "text": self.text,
                "options": [{"key": o.key, "label": o.label} for o in self.options],
            },
            "article": self.article,
            "grid": self.grid,
            "case": self.case,
            "booking": self.booking,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        """Rebuild a stored reply, so a re-delivered message is answered exactly as before."""
        return cls(
            text=data["reply"]["text"],
            intent=Intent(data["intent"]),
            lang=data["lang"],
            options=tuple(Option(o["key"], o["label"]) for o in data["reply"]["options"]),
            article=data.get("article"),
            grid=data.get("grid"),
            case=data.get("case"),
            booking=data.get("booking"),
            urgent=bool(data.get("urgent", False)),
        )
