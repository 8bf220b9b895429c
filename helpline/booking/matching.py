"""Free text to a service and a wished-for time: "水管漏了帮我找个师傅" → plumbing,
"book a vet for my goats on Friday" → vet, on Friday.

Services are matched with the catalogue's own words (names and keywords in both languages), the
way the router matches intents (helpline.classify): Chinese as substrings of the normalised
text, English as whole words with plurals folded. The service whose words cover most of the
message wins; a tie is an ambiguity the dialogue asks about.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from helpline.booking.models import Service
from helpline.classify import Terms, Text, normalise

_WEEKDAYS_ZH = "一二三四五六日天"
_WEEKDAYS_EN = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# "sat" and "sun" are English words too: only the full names count for the weekend.
_WEEKDAYS_EN_SHORT = ("mon", "tue", "wed", "thu", "fri", "saturday", "sunday")
_MONTHS_EN = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_ZH_WEEKDAY = re.compile(r"(下+)?(?:周|星期|礼拜)([一二三四五六日天])")
_ZH_DATE = re.compile(r"(?:(\d{1,2})月)?(\d{1,2})[日号]")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_SLASH_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})\b")
_EN_DATE = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(" + "|".join(_MONTHS_EN) + r")[a-z]*\b|\b("
                      + "|".join(_MONTHS_EN) + r")[a-z]*\s+(\d{1,2})(?:st|nd|rd|th)?\b")

# Parts of the day, as local hours [from, to).
PARTS = {"morning": (0, 12), "afternoon": (12, 18), "evening": (18, 24)}
_PART_WORDS = {
    "morning": ("上午", "早上", "早晨", "上半天", "morning"),
    "afternoon": ("下午", "中午", "午后", "下半天", "afternoon", "noon"),
    "evening": ("晚上", "傍晚", "夜里", "evening", "tonight", "night"),
}


@dataclass(frozen=True, slots=True)
class Match:
    service: Service
    score: float
    words: tuple[str, ...]


def _terms(service: Service) -> Terms:
    return Terms([service.name_zh, *service.keywords_zh], [service.name_en, *service.keywords_en])


def match_services(services: Sequence[Service], text: str) -> list[Match]:
    """Services the text names, best first; the score is how much of the text their words cover."""
    msg = Text(text)
    found: list[Match] = []
    for service in services:
        words = _terms(service).find(msg)
        if not words:
            continue
        score = 0.0
        for w in words:
            score += len(w) if not w.isascii() else 2.0 * len(w.split())
        found.append(Match(service, score, tuple(words)))
    found.sort(key=lambda m: (-m.score, m.service.sort, m.service.code))
    return found


def best_services(services: Sequence[Service], text: str) -> list[Service]:
    """The service the text means (one), the ones it might mean (a tie), or none."""
    found = match_services(services, text)
    if not found:
        return []
    top = found[0].score
    return [m.service for m in found if m.score == top][:6]


@dataclass(frozen=True, slots=True)
class When:
    """A wished-for day and part of the day, both optional."""

    day: date | None = None
    part: str | None = None

    def __bool__(self) -> bool:
        return self.day is not None or self.part is not None


def parse_when(text: str, today: date) -> When:
    """The day and part of day a message asks for, relative to the local ``today``."""
    raw = text.lower()
    zh = normalise(text)
    day: date | None = None
    if "大后天" in zh:
        day = today + timedelta(days=3)
    elif "后天" in zh or "day after tomorrow" in raw:
        day = today + timedelta(days=2)
    elif "明天" in zh or "明日" in zh or "tomorrow" in raw:
        day = today + timedelta(days=1)
    elif "今天" in zh or "今日" in zh or re.search(r"\btoday\b|\btonight\b", raw):
        day = today
    if day is None and (m := _ZH_WEEKDAY.search(zh)):
        weekday = min(_WEEKDAYS_ZH.index(m.group(2)), 6)
        day = _next_weekday(today, weekday, weeks=len(m.group(1) or ""))
    if day is None:
        for i, (long, short) in enumerate(zip(_WEEKDAYS_EN, _WEEKDAYS_EN_SHORT, strict=True)):
            if re.search(rf"\b(next\s+)?({long}|{short})\b", raw):
                nxt = re.search(rf"\bnext\s+({long}|{short})\b", raw) is not None
                day = _next_weekday(today, i, weeks=1 if nxt else 0)
                break
    if day is None:
        day = _explicit_date(text, raw, today)
    part = None
    for name, words in _PART_WORDS.items():
        if any((w in zh) if not w.isascii() else re.search(rf"\b{w}\b", raw) for w in words):
            part = name
            break
    return When(day, part)


def _next_weekday(today: date, weekday: int, weeks: int = 0) -> date:
    """The next such weekday from today (today itself counts), ``weeks`` weeks later for 下周/next."""
    ahead = (weekday - today.weekday()) % 7
    if weeks:
        # 下周五: Friday of next week (Monday-based weeks, as Chinese calendars count them)
        monday_next = today - timedelta(days=today.weekday()) + timedelta(weeks=weeks)
        return monday_next + timedelta(days=weekday)
    return today + timedelta(days=ahead)


def _explicit_date(text: str, raw: str, today: date) -> date | None:
    candidates: list[tuple[int | None, int]] = []
    if m := _ISO_DATE.search(text):
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None
    if m := _ZH_DATE.search(text):
        candidates.append((int(m.group(1)) if m.group(1) else None, int(m.group(2))))
    elif m := _EN_DATE.search(raw):
        if m.group(1):
            candidates.append((_MONTHS_EN.index(m.group(2)[:3]) + 1, int(m.group(1))))
        else:
            candidates.append((_MONTHS_EN.index(m.group(3)[:3]) + 1, int(m.group(4))))
    elif m := _SLASH_DATE.search(text):
        candidates.append((int(m.group(1)), int(m.group(2))))
    for month, day_of_month in candidates:
        months = [month] if month else [today.month, today.month % 12 + 1]
        for mo in months:
            year = today.year
            for y in (year, year + 1):
                try:
                    d = date(y, mo, day_of_month)
                except ValueError:
                    continue
                if d >= today:
                    return d
    return None


def in_part(moment_local: datetime, part: str | None) -> bool:
    if part is None:
        return True
    lo, hi = PARTS[part]
    return lo <= moment_local.hour < hi
