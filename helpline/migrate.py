"""Apply the shipped Alembic migrations to a database URL."""

from __future__ import annotations

import asyncio
from importlib.resources import files

from alembic import command
from alembic.config import Config


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Search-index tables and indexes are written by hand in migrations; autogenerate leaves them be."""
    return not (name or "").startswith(("articles_fts", "ix_articles_search", "search_vector", "search_key_vector"))


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("helpline") / "migrations"))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Upgrade synchronously (Alembic's env runs its own event loop)."""
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """Upgrade from inside a running loop: Alembic's env calls asyncio.run, so use a thread."""
    await asyncio.to_thread(upgrade, database_url, revision)
