"""The data layer under concurrency, and the schema the migrations build."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from helpline.db import Database
from helpline.migrate import include_object, upgrade_async
from helpline.models import Base, Contact, utcnow


async def test_concurrent_read_modify_write_loses_no_update(clean_db: str) -> None:
    """Two engines stand for two processes: each reads a counter and writes it back plus one.

    Without BEGIN IMMEDIATE on SQLite (or row locks on PostgreSQL) increments vanish."""
    engines = [Database.from_url(clean_db), Database.from_url(clean_db)]
    try:
        async with engines[0].write() as s:
            contact = Contact(name="0", created_at=utcnow())
            s.add(contact)
        contact_id = contact.id

        async def bump(db: Database) -> None:
            async with db.write() as s:
                query = select(Contact).where(Contact.id == contact_id)
                if not db.is_sqlite:
                    query = query.with_for_update()
                row = await s.scalar(query)
                await asyncio.sleep(0)  # let the other writer try to interleave
                row.name = str(int(row.name) + 1)

        await asyncio.gather(*(bump(engines[i % 2]) for i in range(40)))
        async with engines[0].read() as s:
            assert (await s.scalar(select(Contact.name).where(Contact.id == contact_id))) == "40"
    finally:
        for db in engines:
            await db.dispose()


async def test_timestamps_come_back_utc_aware(db: Database) -> None:
    now = utcnow()
    async with db.write() as s:
        c = Contact(created_at=now)
        s.add(c)
    async with db.read() as s:
        got = await s.scalar(select(Contact.created_at).where(Contact.id == c.id))
    assert got.tzinfo is not None and abs((got - now).total_seconds()) < 1


async def test_sqlite_pragmas(tmp_path) -> None:
    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/p.db")
    try:
        async with db.read() as s:
            conn = await s.connection()
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 30000
    finally:
        await db.dispose()


async def test_migrations_build_exactly_the_models_schema(db_url: str) -> None:
    await upgrade_async(db_url)  # idempotent at head
    db = Database.from_url(db_url)
    try:
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True, "include_object": include_object}), Base.metadata)
            )
    finally:
        await db.dispose()
    assert diff == []


async def test_upgrade_from_nothing_then_downgrade_and_upgrade_again(tmp_path) -> None:
    from alembic import command

    from helpline.migrate import alembic_config

    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    cfg = alembic_config(url)
    await asyncio.to_thread(command.upgrade, cfg, "head")
    await asyncio.to_thread(command.downgrade, cfg, "base")
    await asyncio.to_thread(command.upgrade, cfg, "head")
    db = Database.from_url(url)
    try:
        async with db.read() as s:
            tables = (await s.execute(select(1).select_from(Contact))).all()
        assert tables == []
    finally:
        await db.dispose()
