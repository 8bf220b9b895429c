"""``helpline export cases``: every case, one row each, without reporters' personal details."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select

from helpline.cases.models import NUMBER_BASE, Case
from helpline.db import Database

CASE_FIELDS = (
    "id", "status", "class_code", "description", "address", "landmark", "cell_id", "area_class", "lat", "lon",
    "source", "reports_count", "department_code", "limit_minutes", "due_at", "dispatch_count", "return_count",
    "rework_count", "reopen_count", "extension_count", "handled_on_time", "closed_on_time", "rating",
    "void_reason", "duplicate_of", "external_id", "status_note", "reported_at", "registered_at",
    "dispatched_at", "handled_at", "checked_at", "closed_at", "voided_at", "updated_at",
)
_RENAMED = {"id": "number", "duplicate_of": "duplicate_of_id"}


async def case_rows(db: Database) -> AsyncIterator[dict[str, Any]]:
    """Cases in number order; ``id`` is the case number residents know, ``duplicate_of`` likewise."""
    async with db.read() as session:
        query = select(Case).order_by(Case.id).execution_options(yield_per=500)
        async for case in await session.stream_scalars(query):
            row = {f: getattr(case, _RENAMED.get(f, f)) for f in CASE_FIELDS}
            if case.duplicate_of_id is not None:
                row["duplicate_of"] = str(NUMBER_BASE + case.duplicate_of_id)
            yield row

