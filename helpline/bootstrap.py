"""Get a deployment ready to serve: folders, schema, shipped data. Safe to run on every start."""

from __future__ import annotations

from helpline.config import Settings
from helpline.migrate import upgrade_async


async def prepare_database(settings: Settings) -> None:
    """Create the var folder (for SQLite, the secret key, uploads) and bring the schema up to date."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.database_url)


async def prepare(settings: Settings) -> None:
    """Everything ``helpline serve`` needs before it takes requests."""
    await prepare_database(settings)
    settings.resolved_secret_key()
