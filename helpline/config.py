"""Settings, read once from the environment and validated with messages a deployer understands."""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LANGS = ("zh", "en")
_TELEGRAM_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]{20,}$")
_DB_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


class SettingsError(ValueError):
    """A configuration value is wrong; the message names the variable and what is expected."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    public_url: str = "http://127.0.0.1:8080"
    var_dir: Path = Path("var")
    secret_key: str | None = None
    timezone: str = "Asia/Shanghai"
    default_lang: str = "zh"
    default_region: str = "CN"
    log_level: str = "INFO"
    max_text_length: int = 4000
    # Messages a sender may have answered per minute (SMS, chat, web); 0 turns the limit off.
    rate_limit_per_minute: int = 20
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_api_url: str | None = None
    # Development only: accept Twilio webhooks without checking X-Twilio-Signature (logged loudly).
    twilio_skip_signature: bool = False
    telegram_token: str | None = None
    telegram_secret: str | None = None
    telegram_api_url: str | None = None
    open311_api_keys: frozenset[str] = field(default_factory=frozenset)
    # Bookings: cancelling or moving a booking closes this long before its slot starts; a provider
    # whose mean follow-up rating is below provider_min_score after provider_min_ratings ratings
    # is flagged for review.
    booking_cutoff_minutes: int = 120
    provider_min_score: float = 3.0
    provider_min_ratings: int = 3
    # Load and faults: how long an outbox worker holds a claimed row before another instance may
    # take it back (a killed process's rows wait this long); how long a client may take to send a
    # request's headers, then its body, and how long an idle keep-alive connection stays open.
    outbox_lease_seconds: int = 60
    client_timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        scheme = self.database_url.split("://", 1)[0]
        if scheme in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
            raise SettingsError(
                "HELPLINE_DATABASE_URL: use the asyncpg driver, postgresql+asyncpg://user@host/db"
            )
        if scheme not in _DB_SCHEMES:
            raise SettingsError(
                f"HELPLINE_DATABASE_URL must start with one of {', '.join(s + '://' for s in _DB_SCHEMES)};"
                f" got {scheme!r}"
            )
        _check_http_url("HELPLINE_PUBLIC_URL", self.public_url)
        for name, value in (
            ("HELPLINE_TWILIO_API_URL", self.twilio_api_url),
            ("HELPLINE_TELEGRAM_API_URL", self.telegram_api_url),
        ):
            if value is not None:
                _check_http_url(name, value)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"HELPLINE_TIMEZONE: unknown time zone {self.timezone!r} (e.g. Asia/Shanghai)"
            ) from None
        if self.default_lang not in LANGS:
            raise SettingsError(f"HELPLINE_DEFAULT_LANG must be one of {LANGS}; got {self.default_lang!r}")
        if not re.fullmatch(r"[A-Z]{2}", self.default_region):
            raise SettingsError(
                f"HELPLINE_DEFAULT_REGION must be a two-letter region code such as CN; got {self.default_region!r}"
            )
        if logging.getLevelName(self.log_level) == f"Level {self.log_level}":
            raise SettingsError(f"HELPLINE_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR; got {self.log_level!r}")
        if not 1 <= self.max_text_length <= 100_000:
            raise SettingsError("HELPLINE_MAX_TEXT_LENGTH must be between 1 and 100000")
        if not 0 <= self.rate_limit_per_minute <= 100_000:
            raise SettingsError("HELPLINE_RATE_LIMIT_PER_MINUTE must be between 0 (no limit) and 100000")
        if self.telegram_token is not None and not _TELEGRAM_TOKEN.match(self.telegram_token):
            raise SettingsError("HELPLINE_TELEGRAM_TOKEN does not look like a bot token (123456:ABC…)")
        if self.secret_key is not None and len(self.secret_key) < 16:
            raise SettingsError("HELPLINE_SECRET_KEY must be at least 16 characters")
        if not 0 <= self.booking_cutoff_minutes <= 7 * 24 * 60:
            raise SettingsError("HELPLINE_BOOKING_CUTOFF_MINUTES must be between 0 and 10080 (a week)")
        if not 1.0 <= self.provider_min_score <= 5.0:
            raise SettingsError("HELPLINE_PROVIDER_MIN_SCORE must be between 1 and 5")
        if not 1 <= self.provider_min_ratings <= 1000:
            raise SettingsError("HELPLINE_PROVIDER_MIN_RATINGS must be between 1 and 1000")
        if not 2 <= self.outbox_lease_seconds <= 3600:
            raise SettingsError("HELPLINE_OUTBOX_LEASE_SECONDS must be between 2 and 3600")
        if not 0.5 <= self.client_timeout_seconds <= 3600:
            raise SettingsError("HELPLINE_CLIENT_TIMEOUT_SECONDS must be between 0.5 and 3600")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``HELPLINE_*`` variables; unset or empty variables take the defaults."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(f"HELPLINE_{name}", "").strip()
            return value or None

        var_dir = Path(get("VAR_DIR") or "var")
        database_url = get("DATABASE_URL") or f"sqlite+aiosqlite:///{var_dir / 'helpline.db'}"
        max_len = get("MAX_TEXT_LENGTH")
        try:
            max_text_length = int(max_len) if max_len else 4000
        except ValueError:
            raise SettingsError(f"HELPLINE_MAX_TEXT_LENGTH must be a whole number; got {max_len!r}") from None
        keys = frozenset(k.strip() for k in (get("OPEN311_API_KEYS") or "").split(",") if k.strip())
        booking = _numbers(get, (("BOOKING_CUTOFF_MINUTES", int, 120), ("PROVIDER_MIN_SCORE", float, 3.0),
                                 ("PROVIDER_MIN_RATINGS", int, 3)))
        return cls(
            database_url=database_url,
            public_url=(get("PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/"),
            var_dir=var_dir,
            secret_key=get("SECRET_KEY"),
            timezone=get("TIMEZONE") or "Asia/Shanghai",
            default_lang=get("DEFAULT_LANG") or "zh",
            default_region=(get("DEFAULT_REGION") or "CN").upper(),
            log_level=(get("LOG_LEVEL") or "INFO").upper(),
            max_text_length=max_text_length,
            rate_limit_per_minute=int(_numbers(get, (("RATE_LIMIT_PER_MINUTE", int, 20),))["RATE_LIMIT_PER_MINUTE"]),
            twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=get("TWILIO_AUTH_TOKEN"),
            twilio_from=get("TWILIO_FROM"),
            twilio_api_url=get("TWILIO_API_URL"),
            twilio_skip_signature=_flag("HELPLINE_TWILIO_SKIP_SIGNATURE", get("TWILIO_SKIP_SIGNATURE")),
            telegram_token=get("TELEGRAM_TOKEN"),
            telegram_secret=get("TELEGRAM_SECRET"),
            telegram_api_url=get("TELEGRAM_API_URL"),
            open311_api_keys=keys,
            booking_cutoff_minutes=int(booking["BOOKING_CUTOFF_MINUTES"]),
            provider_min_score=float(booking["PROVIDER_MIN_SCORE"]),
            provider_min_ratings=int(booking["PROVIDER_MIN_RATINGS"]),
            **_load_limits(get),
        )

    def resolved_secret_key(self) -> str:
        """The configured key, or one generated once and kept in ``var_dir`` so sessions survive restarts."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return key


def _numbers(get: Callable[[str], str | None], specs: tuple[tuple[str, type, float], ...]) -> dict[str, float]:
    """Read numeric variables; a value that is not a number names its variable."""
    values: dict[str, float] = {}
    for name, kind, default in specs:
        raw = get(name)
        try:
            values[name] = kind(raw) if raw else default
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise SettingsError(f"HELPLINE_{name} must be {what}; got {raw!r}") from None
    return values


def _load_limits(get: Callable[[str], str | None]) -> dict[str, float]:
    """The outbox lease and the slow-client timeout (see Settings)."""
    values = _numbers(get, (("OUTBOX_LEASE_SECONDS", int, 60), ("CLIENT_TIMEOUT_SECONDS", float, 60.0)))
    return {"outbox_lease_seconds": int(values["OUTBOX_LEASE_SECONDS"]),
            "client_timeout_seconds": float(values["CLIENT_TIMEOUT_SECONDS"])}


def _flag(name: str, value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1/0, true/false, yes/no or on/off; got {value!r}")


def _check_http_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} must be an http(s) URL such as https://helpline.example.org; got {value!r}")
