"""Fit a reply to a channel's size, and hand out the rest when the caller asks for more.

An SMS is billed and delivered in segments: 160 GSM-7 characters alone or 153 per part, and as
soon as one character is outside GSM-7 (any Chinese) 70 alone or 67 per part. A reply longer than
its budget is cut at a sentence end, told "reply M for more", and the rest waits in the
conversation state for that reply.
"""

from __future__ import annotations

import re
from dataclasses import replace

from helpline.request import Channel, Reply

# Characters of the GSM 03.38 default alphabet (the extension table costs two each; kept simple
# by treating its characters as non-GSM, which only makes us a little cautious).
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
SEGMENTS = {Channel.SMS: 2}
MORE_WORDS = frozenset({"m", "more", "更多", "下一页", "继续"})
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;\n])|(?<=[.] )")


def is_gsm(text: str) -> bool:
    return all(ch in _GSM for ch in text)


def segment_count(text: str) -> int:
    """How many SMS segments ``text`` takes."""
    if is_gsm(text):
        single, part = 160, 153
    else:
        single, part = 70, 67
    n = len(text)
    return 1 if n <= single else -(-n // part)


def capacity(text: str, segments: int) -> int:
    """Characters that fit in ``segments`` segments in the encoding ``text`` needs."""
    if is_gsm(text):
        return 160 if segments == 1 else 153 * segments
    return 70 if segments == 1 else 67 * segments


def split_to_fit(text: str, segments: int, hint: str) -> tuple[str, str]:
    """(first part + hint, rest): the first part ends at a sentence end if one is near enough."""
    if segment_count(text) <= segments:
        return text, ""
    room = capacity(text + hint, segments) - len(hint)
    cut = room
    ends = [m.start() for m in _SENTENCE_END.finditer(text) if 0 < m.start() <= room]
    if ends and ends[-1] >= room // 2:
        cut = ends[-1]
    head, rest = text[:cut].rstrip(), text[cut:].lstrip()
    return head + hint, rest


def more_hint(lang: str) -> str:
    return "（回复M看下文）" if lang == "zh" else " (Reply M for more)"


def paginate(reply: Reply, channel: Channel) -> tuple[Reply, str]:
    """The reply cut to the channel's budget, and the text still to come ("" when it all fits)."""
    segments = SEGMENTS.get(channel)
    if segments is None:
        return reply, ""
    head, rest = split_to_fit(reply.text, segments, more_hint(reply.lang))
    if not rest:
        return reply, ""
    return _with_text(reply, head), rest


def _with_text(reply: Reply, text: str) -> Reply:
    return replace(reply, text=text)
