"""Alembic environment: async engine, batch mode on SQLite, one migrator at a time on PostgreSQL."""

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from helpline.db import create_engine
from helpline.migrate import include_object
from helpline.schema import metadata

config = context.config
target_metadata = metadata
# The URL travels in attributes, not in the ini options, so '%' in passwords needs no escaping.
url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")

# Any number of instances may start at once; only one may migrate.
_PG_LOCK = 0x48454C50  # "HELP"


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render our UTC timestamp type as a plain timezone-aware DateTime in new revisions."""
    if type_ == "type" and type(obj).__name__ == "UTCDateTime":
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    if not is_sqlite:
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
        render_item=_render_item,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
