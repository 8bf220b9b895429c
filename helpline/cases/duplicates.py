"""Duplicate reports: the same class, close by, soon after an open case, is that case again.

Ten people reporting one broken street light should make one case with ten reporters (each told
the case number and kept informed), not ten cases for the department. A new report is linked when
an open case of the same class lies within ``DISTANCE_M`` and was reported within ``WINDOW``;
the nearest such case wins. Reports without coordinates are never linked automatically (the
dispatcher can void a duplicate by hand).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.cases.models import OPEN, Case

DISTANCE_M = 50.0
WINDOW = timedelta(hours=24)
_EARTH_M = 6_371_008.8
_DEG_LAT_M = math.pi * _EARTH_M / 180  # metres per degree of latitude


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_M * math.asin(min(1.0, math.sqrt(a)))


async def find_duplicate(
    session: AsyncSession, class_code: str | None, lat: float | None, lon: float | None, now: datetime,
    *, distance: float = DISTANCE_M, window: timedelta = WINDOW,
) -> Case | None:
    """The open case this report repeats, or None."""
    if class_code is None or lat is None or lon is None:
        return None
    dlat = distance / _DEG_LAT_M
    dlon = distance / (_DEG_LAT_M * max(0.01, math.cos(math.radians(lat))))
    candidates = await session.scalars(
        select(Case).where(
            Case.class_code == class_code,
            Case.status.in_(OPEN),
            Case.reported_at >= now - window,
            Case.lat.between(lat - dlat, lat + dlat),
            Case.lon.between(lon - dlon, lon + dlon),
        )
    )
    best: tuple[float, int, Case] | None = None
    for case in candidates:
        assert case.lat is not None and case.lon is not None
        d = distance_m(lat, lon, case.lat, case.lon)
        if d <= distance and (best is None or (d, case.id) < best[:2]):
            best = (d, case.id, case)
    return best[2] if best else None
