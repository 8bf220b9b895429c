"""Test fixtures: every database test runs on SQLite and on the machine's real PostgreSQL.

PostgreSQL gets a throw-away database per test run (dropped at the end). Where PostgreSQL is
unreachable the PostgreSQL half is skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import delete, text

from helpline.app import create_app
from helpline.config import Settings
from helpline.db import Database
from helpline.migrate import upgrade
from helpline.models import Base
import helpline.cases.models  # noqa: F401  (registers the case tables, so `wipe` empties them)
import helpline.booking.models  # noqa: F401  (registers the booking tables, so `wipe` empties them)
from knowledge.models import Article
from knowledge.search import refresh_terms
from knowledge.store import load_shipped

PG_ADMIN = os.environ.get("HELPLINE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class _PgDatabase:
    """A throw-away PostgreSQL database, created on first use and dropped at the end of the run."""

    def __init__(self) -> None:
        self.name = f"helpline_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.url: str | None = None
        self.error: str | None = None

    def ensure(self) -> str:
        if self.url is None and self.error is None:
            try:
                asyncio.run(self._admin(f'CREATE DATABASE "{self.name}" ENCODING \'UTF8\' TEMPLATE template0'))
                host = PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0]
                self.url = f"postgresql+asyncpg://{host}/{self.name}"
                upgrade(self.url)
                asyncio.run(_load_knowledge(self.url))
            except (OSError, asyncpg.PostgresError) as exc:
                self.error = f"PostgreSQL at {PG_ADMIN} is not usable: {exc!r}"
        if self.error is not None:
            if IN_CI:
                pytest.fail(self.error)
            pytest.skip(self.error)
        assert self.url is not None
        return self.url

    def drop(self) -> None:
        if self.url is not None:
            asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    @staticmethod
    async def _admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def _pg() -> Iterator[_PgDatabase]:
    pg = _PgDatabase()
    yield pg
    pg.drop()


async def _load_knowledge(url: str) -> None:
    db = Database.from_url(url)
    try:
        await load_shipped(db)
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def _sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'helpline.db'}"
    upgrade(url)
    asyncio.run(_load_knowledge(url))
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, _sqlite_url: str, _pg: _PgDatabase) -> str:
    """A migrated database URL, once per backend."""
    return _sqlite_url if request.param == "sqlite" else _pg.ensure()


# The shipped knowledge base is loaded once per database and kept between tests.
KEPT = {"articles", "article_terms"}


async def wipe(url: str) -> None:
    """Empty every table but the shipped knowledge, so each test starts from a clean database."""
    db = Database.from_url(url)
    try:
        async with db.write() as session:
            removed = await session.execute(delete(Article).where(Article.origin != "shipped"))
            if removed.rowcount:
                await refresh_terms(session)
            tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in KEPT]
            if db.is_sqlite:
                for table in tables:
                    await session.execute(table.delete())
            else:
                names = ", ".join(f'"{t.name}"' for t in tables)
                await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await db.dispose()


@pytest.fixture
async def clean_db(db_url: str) -> str:
    await wipe(db_url)
    return db_url


@pytest.fixture
def settings(clean_db: str, tmp_path: Path) -> Settings:
    return Settings(database_url=clean_db, var_dir=tmp_path / "var", secret_key="test-secret-key-0123456789")


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_url(settings.database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def client(aiohttp_client, settings: Settings):  # type: ignore[no-untyped-def]
    """A real aiohttp test server running the whole app on the test database."""
    return await aiohttp_client(create_app(settings))
