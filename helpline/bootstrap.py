"""Get a deployment ready to serve: folders, schema, shipped data. Safe to run on every start."""

from __future__ import annotations

from helpline.config import Settings
from helpline.db import Database
from helpline.migrate import upgrade_async
from knowledge.store import load_shipped


async def prepare_database(settings: Settings) -> None:
    """Create the var folder (for SQLite, the secret key, uploads) and bring the schema up to date."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.database_url)


async def load_shipped_data(settings: Settings) -> None:
    """The knowledge base that ships with the package (staff edits are kept)."""
    from helpline.booking.catalogue import load_shipped as load_booking_catalogue
    from helpline.cases.data import load_shipped as load_case_departments
    from helpline.models import utcnow

    db = Database.from_url(settings.database_url)
    try:
        await load_shipped(db)
        # The demo booking catalogue: entries not in the database yet are added, staff edits kept.
        await load_booking_catalogue(db, utcnow(), settings.zone, settings.default_region)
        # The demo departments and routes of grid cases, into a database that has none yet.
        await load_case_departments(db)
    finally:
        await db.dispose()


async def prepare(settings: Settings) -> None:
    """Everything ``helpline serve`` needs before it takes requests."""
    await prepare_database(settings)
    await load_shipped_data(settings)
    settings.resolved_secret_key()
