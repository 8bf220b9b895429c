"""The booking words the router must hear before its general classifier does.

* A provider's answer to a dispatch SMS: ``Y B1234567`` / ``接 B1234567`` accepts,
  ``N B1234567 <reason>`` / ``拒 B1234567 <reason>`` declines. Without this, "Y B1234567" reads as a
  (hopeless) knowledge question.
* A booking number with or without a status keyword (``CX B1234567``, ``B1234567``): its status.
* Cancelling or moving a booking ("取消预约", "cancel my booking B1234567", "我要改时间",
  "reschedule my booking"; the word lists are in helpline/data/intents.yaml), which the general
  word lists would read as a status question or nothing at all. The general reading is kept as the second one, so the router still has it
  if the booking handler has nothing to cancel or move.

A bare "cancel" stays the SMS opt-out keyword it is everywhere; only inside a booking dialogue
does the dialogue read it as "never mind".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import yaml

from helpline.classify import normalise
from helpline.request import Intent
from helpline.router import Classification, Classifier
from helpline.taxonomy import data_path

NUMBER = r"[bB]\d{7}"
PROVIDER_REPLY = re.compile(
    r"^\s*(?P<word>y|yes|ok|accept|接|接单|同意|n|no|decline|reject|拒|拒单|不接|不接单)\s*[#:：,，.。-]?\s*"
    rf"(?P<number>{NUMBER}|\d{{7}})\b[\s,，.。:：-]*(?P<reason>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_ACCEPT_WORDS = frozenset({"y", "yes", "ok", "accept", "接", "接单", "同意"})
_STATUS = re.compile(rf"^\s*(?:cx|st|status|zt|查询|进度|查)?[#:：\s-]*(?P<number>{NUMBER})\s*$", re.IGNORECASE)
_BOOKING_NUMBER = re.compile(rf"(?<![A-Za-z0-9])({NUMBER})(?!\d)")

_BOOKING_WORDS_ZH = ("预约", "预定", "预订", "上门", "师傅")
_BOOKING_WORDS_EN = ("booking", "appointment", "visit")


@dataclass(frozen=True)
class ChangeWords:
    """The cancel and reschedule word lists, from helpline/data/intents.yaml (booking section)."""

    cancel_zh: tuple[str, ...]
    cancel_en: tuple[str, ...]
    cancel_not_zh: tuple[str, ...]
    reschedule_zh: tuple[str, ...]
    reschedule_en: tuple[str, ...]


@cache
def change_words() -> ChangeWords:
    with data_path("intents.yaml").open(encoding="utf-8") as fh:
        booking = yaml.safe_load(fh)["booking"]

    def zh(key: str) -> tuple[str, ...]:
        return tuple(normalise(str(w)) for w in booking.get(key, []))

    def en(key: str) -> tuple[str, ...]:
        return tuple(" ".join(re.findall(r"[a-z]+", str(w).lower())) for w in booking.get(key, []))

    return ChangeWords(zh("cancel_zh"), en("cancel_en"), zh("cancel_not_zh"), zh("reschedule_zh"), en("reschedule_en"))


def provider_reply(text: str) -> dict[str, str | bool] | None:
    """``{"accept": bool, "number": "B1234567", "reason": str}`` for a provider's answer, else None."""
    m = PROVIDER_REPLY.match(text)
    if not m:
        return None
    number = m["number"].upper()
    if not number.startswith("B"):
        number = "B" + number
    return {"accept": m["word"].lower() in _ACCEPT_WORDS, "number": number, "reason": m["reason"].strip()[:500]}


def booking_number(text: str) -> str | None:
    m = _BOOKING_NUMBER.search(text)
    return m.group(1).upper() if m else None


def booking_action(text: str) -> str | None:
    """"cancel" or "reschedule" when the message asks to cancel or move a booking."""
    words = change_words()
    zh = normalise(text)
    raw = f" {' '.join(re.findall(r'[a-z]+', text.lower()))} "
    has_number = booking_number(text) is not None
    if any(w in zh for w in words.reschedule_zh) or any(f" {w} " in raw for w in words.reschedule_en):
        return "reschedule"
    if any(w in zh for w in words.cancel_not_zh):
        return None
    if any(w in zh for w in words.cancel_zh) or any(f" {w} " in raw for w in words.cancel_en):
        return "cancel"
    bookingish = has_number or any(w in zh for w in _BOOKING_WORDS_ZH) or any(f" {w}" in raw for w in _BOOKING_WORDS_EN)
    if ("取消" in zh or " cancel " in raw) and bookingish:
        return "cancel"
    return None


class BookingClassifier:
    """Wraps the line's classifier with the booking words above; everything else is unchanged."""

    def __init__(self, inner: Classifier) -> None:
        self.inner = inner

    def classify(self, text: str, lang: str) -> Classification:
        reply = provider_reply(text)
        if reply is not None:
            return Classification(Intent.BOOKING, 1.0, {"provider_reply": reply})
        status = _STATUS.match(text)
        if status is not None:
            return Classification(Intent.CASE_STATUS, 1.0, {"number": status["number"][1:]})
        base = self.inner.classify(text, lang)
        if base.intent in (Intent.EMERGENCY, Intent.OPERATOR):
            return base
        action = booking_action(text)
        if action is not None:
            return Classification(Intent.BOOKING, 0.9, {"action": action, "number": booking_number(text)}, second=base)
        return base


_RATING = re.compile(r"^\s*([0-9]+)\s*(?:分|星|颗星|stars?|points?|/\s*5)?\s*[.!。！]?\s*$", re.IGNORECASE)


def rating_value(text: str) -> int | None:
    """The number in a bare rating reply ("4", "5分", "3 stars"), whether or not it is 1-5; else None."""
    m = _RATING.match(text)
    return int(m.group(1)) if m and len(m.group(1)) <= 3 else None
