"""Rendering console pages: the language, the navigation, times in the centre's zone, masking.

Every text in the console's templates is written as a pair, ``tr('中文', 'English')``, so both
languages are complete by construction: there is no catalogue that can fall behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from helpline.appkeys import SETTINGS
from helpline.console.auth import ROLE_LABELS, can, current_user
from helpline.console.labels import (
    ARTICLE_STATUS_LABELS,
    CHANNEL_LABELS,
    INTENT_LABELS,
    REASON_LABELS,
    STATUS_LABELS,
    label,
)
from helpline.console.pages import pages_for
from helpline.console.sessions import csrf_token, get_session
from helpline.logs import mask_urn
from helpline.models import User, utcnow

LANGS = ("zh", "en")
_TABLES = {
    "channel": CHANNEL_LABELS,
    "status": STATUS_LABELS,
    "intent": INTENT_LABELS,
    "reason": REASON_LABELS,
    "article": ARTICLE_STATUS_LABELS,
}
# A phone number written inside a message: 7+ digits, possibly with a leading + and separators.
_PHONE_IN_TEXT = re.compile(r"(?<![\d])(\+?\d[\d \-]{5,}\d)(?![\d])")


def lang_of(request: web.Request) -> str:
    """The UI language: ``?lang=`` (kept in the session), else the session's, else the browser's."""
    session = get_session(request)
    asked = request.query.get("lang")
    if asked in LANGS and asked != session.lang:
        session.lang = asked
        session.changed = True
    if session.lang in LANGS:
        return session.lang
    accept = request.headers.get("Accept-Language", "").lower()
    if accept.startswith("en"):
        return "en"
    if accept.startswith("zh"):
        return "zh"
    return request.app[SETTINGS].default_lang


def translator(lang: str) -> Callable[[str, str], str]:
    def tr(zh: str, en: str) -> str:
        return zh if lang == "zh" else en

    return tr


def flash(request: web.Request, kind: str, zh: str, en: str) -> None:
    """A note shown once on the next page (after a redirect), in the user's language."""
    get_session(request).add_flash(kind, zh if lang_of(request) == "zh" else en)


def mask_text(text: str) -> str:
    """Phone numbers written in a message, masked like addresses: +86****1234."""

    def _mask(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(1))
        if len(digits) < 7:
            return m.group(1)
        return ("+" if m.group(1).startswith("+") else "") + digits[:3] + "****" + digits[-4:]

    return _PHONE_IN_TEXT.sub(_mask, text)


class Viewer:
    """What a template needs to know about who is looking: language, permissions, masking."""

    def __init__(self, request: web.Request, user: User | None) -> None:
        self.user = user
        self.lang = lang_of(request)
        self.zone = request.app[SETTINGS].zone
        self.phones = can(user, "phone.view")

    def can(self, permission: str) -> bool:
        return can(self.user, permission)

    def urn(self, urn: str) -> str:
        """An address as people read it: a phone number without ``tel:``, masked unless allowed."""
        shown = urn if self.phones else mask_urn(urn)
        return shown[4:] if shown.startswith("tel:") else shown

    def text(self, text: str) -> str:
        return text if self.phones else mask_text(text)

    def time(self, value: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
        return value.astimezone(self.zone).strftime(fmt) if value else ""

    def since(self, value: datetime | None, now: datetime | None = None) -> str:
        """How long ago, short: 45 s / 12 min / 3 h / 2 d."""
        if value is None:
            return ""
        seconds = max(0, int(((now or utcnow()) - value).total_seconds()))
        zh = self.lang == "zh"
        if seconds < 60:
            return f"{seconds}秒" if zh else f"{seconds} s"
        if seconds < 3600:
            return f"{seconds // 60}分钟" if zh else f"{seconds // 60} min"
        if seconds < 86400:
            return f"{seconds // 3600}小时" if zh else f"{seconds // 3600} h"
        return f"{seconds // 86400}天" if zh else f"{seconds // 86400} d"


async def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200, active: str | None = None
) -> web.Response:
    """Render a console template with the shell's context (user, navigation, language, CSRF token)."""
    user = await current_user(request)
    viewer = Viewer(request, user)
    base: dict[str, Any] = {
        "lang": viewer.lang,
        "tr": translator(viewer.lang),
        "user": user,
        "v": viewer,
        "role_label": (ROLE_LABELS[user.role][0 if viewer.lang == "zh" else 1]) if user else "",
        "nav": pages_for(request.app, user.role) if user else [],
        "active": active,
        "csrf": csrf_token(request),
        "flashes": get_session(request).pop_flash(),
        "path": request.path,
        "other_lang": "en" if viewer.lang == "zh" else "zh",
        "lbl": lambda kind, key: label(_TABLES[kind], key, viewer.lang),
    }
    return aiohttp_jinja2.render_template(template, request, base | context, status=status)


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST, the browser GETs the next page."""
    return web.Response(status=303, headers={"Location": location})
