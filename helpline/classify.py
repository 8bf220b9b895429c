"""Classify a message into an intent from keyword data, in Chinese and English.

Text is normalised first (lower case, full-width to half-width, punctuation and spaces dropped) so
that SMS shorthand and missing punctuation match as well as careful writing does.
"""

from __future__ import annotations

import re
import unicodedata

from helpline.request import Intent
from helpline.router import Classification

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)

GREETINGS = frozenset(
    {
        "你好", "您好", "你们好", "在吗", "在不在", "喂", "哈喽", "帮助", "菜单", "主菜单", "开始",
        "有什么服务", "能做什么", "你们能做什么", "怎么用", "服务项目",
        "hi", "hello", "hey", "help", "menu", "start", "options", "whatcanyoudo", "goodmorning",
        "goodafternoon", "goodevening", "hellothere", "hiya",
    }
)


def normalise(text: str) -> str:
    """Fold width and case and drop punctuation and spaces: '  HELLO！！' -> 'hello'."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text).lower())


class GreetingClassifier:
    """Knows only greetings and help requests (``menu``); everything else is ``unknown``."""

    def classify(self, text: str, lang: str) -> Classification:
        return Classification(Intent.MENU, 1.0) if is_greeting(text) else Classification(Intent.UNKNOWN, 0.0)


def is_greeting(text: str) -> bool:
    """A short message that is only a greeting or a call for help ("你好在吗", "Hi there!")."""
    norm = normalise(text)
    if norm in GREETINGS:
        return True
    words = re.findall(r"[a-z]+", unicodedata.normalize("NFKC", text).lower())
    if words and len(words) <= 3 and words[0] in GREETINGS and norm == "".join(words):
        return True
    return len(norm) <= 6 and any(norm.startswith(g) for g in GREETINGS if not g.isascii())
