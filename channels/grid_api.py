"""The grid map API: ``GET /api/v1/grid/cells`` answers the unit grid cells as GeoJSON.

A FeatureCollection of Polygons with properties id, name, community, street, district
(DESIGN.md part 2). The cells are shipped data, so the body is built once and cached by clients.
"""

from __future__ import annotations

import json
from functools import cache

from aiohttp import web

from helpline.grid import feature_collection

GEOJSON = "application/geo+json"


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/grid/cells", grid_cells)


@cache
def _body() -> bytes:
    return json.dumps(feature_collection(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def grid_cells(request: web.Request) -> web.Response:
    return web.Response(
        body=_body(),
        content_type=GEOJSON,
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )
