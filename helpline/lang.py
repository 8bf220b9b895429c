"""Which language a resident writes in: Chinese or English, decided cheaply from the characters."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Short SMS commands say nothing about the sender's language (a Chinese-speaking farmer texts STOP).
_KEYWORD = re.compile(r"^(?:stop|stopall|start|unstop|end|quit|cancel|td|m|cx|st|zt)(?:\s*#?\d+)?$", re.IGNORECASE)


def detect_lang(text: str, fallback: str = "zh") -> str:
    """``zh`` when Chinese characters carry the message, ``en`` when Latin words do.

    Mixed messages ("我的 ID card 丢了") count as Chinese as soon as they hold a couple of Chinese
    characters, because a resident who writes any Chinese reads it best. Digits, emoji and
    punctuation alone say nothing, so they take the fallback (the contact's or the line's language).
    """
    cjk = len(_CJK.findall(text))
    if cjk >= 2 or (cjk == 1 and not _LATIN_WORD.search(text)):
        return "zh"
    if _KEYWORD.match(text.strip()):
        return fallback  # STOP, HELP, CX 12345: SMS keywords, not a choice of language
    if _LATIN_WORD.search(text):
        return "en"
    return fallback
