"""Knowledge-base operations the CLI, the start-up and the console share."""

from __future__ import annotations

from pathlib import Path

from helpline.db import Database
from knowledge.loader import ImportResult, import_articles, read_articles, shipped_path
from knowledge.search import refresh_terms


async def import_path(db: Database, path: Path, origin: str = "import") -> ImportResult:
    """Load a file or folder all-or-nothing (read_articles raises before anything is written)."""
    articles = read_articles(path)
    async with db.write() as session:
        result = await import_articles(session, articles, origin=origin)
        if result.created or result.updated:
            await refresh_terms(session)
    return result


async def load_shipped(db: Database) -> ImportResult:
    """Bring the shipped articles up to date; articles staff have edited are kept as they are."""
    return await import_path(db, shipped_path(), origin="shipped")
