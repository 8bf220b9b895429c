"""Console sessions in a signed cookie, CSRF tokens, and the middleware that applies both.

Why a signed cookie and not a sessions table: it needs no migration and no lookup, and any
instance behind the proxy can read it. It holds nothing secret (a random session id, the user id,
times, the UI language, flash notes), so it is signed with HMAC-SHA256 but not encrypted. What a
stateless cookie cannot do by itself — end a session before it expires — is done with the audit
log: logging out writes ``auth.logout`` for the session id, and ``auth.current_user`` refuses a
session that has one (an indexed look-up on ``events(subject_type, subject_id)``). Deactivating a
user ends all their sessions, because the user row is read on every request.

The cookie is HttpOnly, SameSite=Lax, limited to ``/console``, and Secure when the public URL is
https. Sessions end 12 hours after sign-in, or after 2 hours without a request.

CSRF: every unsafe request under ``/console`` (POST, PUT, PATCH, DELETE) must carry the session's
token, as the ``_csrf`` form field or the ``X-CSRF-Token`` header, else 403 — this is checked in the
middleware, so a page another package adds is covered without doing anything. The token is an
HMAC of the session id, so it changes at sign-in (no fixation) and needs no storage. A request
whose ``Origin`` header names another site is refused as well.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from helpline.appkeys import SETTINGS

COOKIE = "hl_console"
COOKIE_PATH = "/console"
ABSOLUTE_S = 12 * 3600
IDLE_S = 2 * 3600
_TOUCH_S = 60  # refresh the idle clock (re-send the cookie) at most once a minute
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"


@dataclass
class ConsoleSession:
    sid: str
    uid: int | None = None
    iat: float = field(default_factory=time.time)
    seen: float = field(default_factory=time.time)
    lang: str | None = None
    flash: list[list[str]] = field(default_factory=list)  # [kind, text]; shown once
    changed: bool = False  # not stored: whether the cookie must be sent again

    @classmethod
    def fresh(cls, lang: str | None = None) -> ConsoleSession:
        return cls(sid=secrets.token_urlsafe(18), lang=lang, changed=True)

    def add_flash(self, kind: str, text: str) -> None:
        self.flash = [*self.flash, [kind, text]][-5:]
        self.changed = True

    def pop_flash(self) -> list[list[str]]:
        notes, self.flash = self.flash, []
        if notes:
            self.changed = True
        return notes


class SessionCodec:
    """Signs and checks the cookie; keys are derived from the deployment's secret key."""

    def __init__(self, secret: str) -> None:
        root = secret.encode()
        self._sign_key = hmac.new(root, b"helpline.console.session.v1", hashlib.sha256).digest()
        self._csrf_key = hmac.new(root, b"helpline.console.csrf.v1", hashlib.sha256).digest()

    def dumps(self, session: ConsoleSession) -> str:
        data = {
            "sid": session.sid,
            "uid": session.uid,
            "iat": int(session.iat),
            "seen": int(session.seen),
            "lang": session.lang,
            "flash": session.flash,
        }
        payload = _b64(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        return f"{payload}.{self._sign(payload)}"

    def loads(self, raw: str | None, now: float | None = None) -> ConsoleSession | None:
        """The session in a cookie value, or None when it is missing, forged or expired."""
        if not raw or raw.count(".") != 1 or len(raw) > 4000:
            return None
        payload, signature = raw.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = ConsoleSession(
                sid=str(data["sid"]),
                uid=data["uid"] if isinstance(data["uid"], int) else None,
                iat=float(data["iat"]),
                seen=float(data["seen"]),
                lang=data["lang"] if data.get("lang") in ("zh", "en") else None,
                flash=[[str(k), str(t)] for k, t in data.get("flash") or []],
            )
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time() if now is None else now
        if now - session.iat > ABSOLUTE_S or now - session.seen > IDLE_S or session.iat > now + 60:
            return None
        if now - session.seen > _TOUCH_S:
            session.seen = now
            session.changed = True
        return session

    def csrf_token(self, sid: str) -> str:
        return hmac.new(self._csrf_key, sid.encode(), hashlib.sha256).hexdigest()[:40]

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._sign_key, payload.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


CODEC: web.AppKey[SessionCodec] = web.AppKey("console_session_codec", SessionCodec)
SESSION_KEY: web.RequestKey[ConsoleSession] = web.RequestKey("console_session", ConsoleSession)


def get_session(request: web.Request) -> ConsoleSession:
    """The request's console session (an anonymous one is made on the first visit)."""
    session = request.get(SESSION_KEY)
    if session is None:
        session = request.app[CODEC].loads(request.cookies.get(COOKIE)) or ConsoleSession.fresh()
        request[SESSION_KEY] = session
    return session


def csrf_token(request: web.Request) -> str:
    return request.app[CODEC].csrf_token(get_session(request).sid)


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another site (Origin header)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    allowed = {_origin(request.app[SETTINGS].public_url), f"{request.scheme}://{request.host}"}
    return origin.rstrip("/") in allowed


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def check_csrf(request: web.Request, session: ConsoleSession) -> None:
    expected = request.app[CODEC].csrf_token(session.sid)
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        given = str((await request.post()).get(CSRF_FIELD, ""))
    if not (given and hmac.compare_digest(given, expected)) or not same_origin(request):
        raise web.HTTPForbidden(
            text="403: the form has expired or did not come from this console; reload the page and try again."
        )


# Pages only load our own files: no inline script, no other site, nobody may frame us.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def finish(request: web.Request, response: web.StreamResponse) -> None:
    session = request.get(SESSION_KEY)
    if session is not None and session.changed and not response.prepared:
        settings = request.app[SETTINGS]
        response.set_cookie(
            COOKIE,
            request.app[CODEC].dumps(session),
            max_age=ABSOLUTE_S,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Lax",
            secure=settings.public_url.startswith("https://"),
        )
    if not response.prepared:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", _CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        if not request.path.startswith("/console/static/"):
            headers.setdefault("Cache-Control", "no-store")


def set_session(request: web.Request, session: ConsoleSession) -> None:
    """Replace the request's session (sign-in, sign-out); the new cookie goes out with the response."""
    session.changed = True
    request[SESSION_KEY] = session
