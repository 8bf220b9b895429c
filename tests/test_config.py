from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from helpline.config import Settings, SettingsError


def test_defaults_need_no_configuration() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite+aiosqlite:///var/helpline.db"
    assert s.public_url == "http://127.0.0.1:8080"
    assert s.timezone == "Asia/Shanghai" and s.default_lang == "zh"
    assert s.open311_api_keys == frozenset() and s.twilio_auth_token is None


def test_values_are_read_and_trimmed() -> None:
    s = Settings.from_env(
        {
            "HELPLINE_DATABASE_URL": "postgresql+asyncpg://u@h/db",
            "HELPLINE_PUBLIC_URL": "https://help.example.org/",
            "HELPLINE_OPEN311_API_KEYS": " k1, k2 ,,",
            "HELPLINE_TELEGRAM_TOKEN": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "HELPLINE_LOG_LEVEL": "debug",
            "HELPLINE_TWILIO_AUTH_TOKEN": "",
        }
    )
    assert s.public_url == "https://help.example.org"
    assert s.open311_api_keys == {"k1", "k2"}
    assert s.log_level == "DEBUG" and not s.is_sqlite and s.twilio_auth_token is None


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"HELPLINE_DATABASE_URL": "mysql://x"}, "HELPLINE_DATABASE_URL"),
        ({"HELPLINE_DATABASE_URL": "postgresql://u@h/db"}, r"postgresql\+asyncpg://user@host"),
        ({"HELPLINE_PUBLIC_URL": "helpline.org"}, "HELPLINE_PUBLIC_URL"),
        ({"HELPLINE_TIMEZONE": "Mars/Olympus"}, "HELPLINE_TIMEZONE"),
        ({"HELPLINE_DEFAULT_LANG": "fr"}, "HELPLINE_DEFAULT_LANG"),
        ({"HELPLINE_DEFAULT_REGION": "China"}, "HELPLINE_DEFAULT_REGION"),
        ({"HELPLINE_LOG_LEVEL": "LOUD"}, "HELPLINE_LOG_LEVEL"),
        ({"HELPLINE_MAX_TEXT_LENGTH": "many"}, "HELPLINE_MAX_TEXT_LENGTH"),
        ({"HELPLINE_TELEGRAM_TOKEN": "nope"}, "HELPLINE_TELEGRAM_TOKEN"),
        ({"HELPLINE_TWILIO_API_URL": "ftp://x"}, "HELPLINE_TWILIO_API_URL"),
        ({"HELPLINE_SECRET_KEY": "short"}, "HELPLINE_SECRET_KEY"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env(env)


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings.from_env({}).public_url = "x"  # type: ignore[misc]


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    s = Settings.from_env({"HELPLINE_VAR_DIR": str(tmp_path / "var")})
    key = s.resolved_secret_key()
    assert len(key) >= 32 and s.resolved_secret_key() == key
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600
