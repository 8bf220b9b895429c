"""The console's extension points: pages in the navigation, dashboard panels and map layers.

The console ships Queue, Conversations, Knowledge, Dashboard and Users itself; other packages
(grid cases, bookings) add theirs by calling these functions from their own ``setup(app)``,
before or after ``helpline.console.setup`` — nothing here depends on the order. A page that is
not registered simply does not appear in the navigation, so the console never shows a slot for
work that has not landed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from helpline.users import ROLES

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from helpline.models import User

# Where the pages we know of sit in the navigation; cases and bookings have their slots.
ORDER = {"queue": 10, "conversations": 20, "cases": 30, "bookings": 40, "knowledge": 50, "dashboard": 60, "users": 90}


@dataclass(frozen=True, slots=True)
class Page:
    key: str
    title_zh: str
    title_en: str
    roles: frozenset[str]
    path: str
    order: int

    def title(self, lang: str) -> str:
        return self.title_zh if lang == "zh" else self.title_en


# A dashboard panel renders its own markup (an SVG figure, a small table) for the signed-in user.
PanelRenderer = Callable[[web.Request, "AsyncSession", "User", str], Awaitable[str]]
# A map layer gives a number per grid cell id (open cases, reports) for the signed-in user.
LayerValues = Callable[["AsyncSession", "User"], Awaitable[dict[str, float]]]


@dataclass(frozen=True, slots=True)
class Panel:
    key: str
    title_zh: str
    title_en: str
    roles: frozenset[str]
    render: PanelRenderer
    order: int

    def title(self, lang: str) -> str:
        return self.title_zh if lang == "zh" else self.title_en


@dataclass(frozen=True, slots=True)
class MapLayer:
    key: str
    title_zh: str
    title_en: str
    roles: frozenset[str]
    values: LayerValues
    order: int

    def title(self, lang: str) -> str:
        return self.title_zh if lang == "zh" else self.title_en


PAGES: web.AppKey[list[Page]] = web.AppKey("console_pages", list)
PANELS: web.AppKey[list[Panel]] = web.AppKey("console_panels", list)
MAP_LAYERS: web.AppKey[list[MapLayer]] = web.AppKey("console_map_layers", list)


def _roles(roles: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(roles)
    unknown = chosen - set(ROLES)
    if not chosen or unknown:
        raise ValueError(f"roles must be a non-empty subset of {ROLES}; got {sorted(chosen)}")
    return chosen


def _add(app: web.Application, key: web.AppKey[Any], item: Any) -> None:
    items = app.get(key)
    if items is None:
        items = app[key] = []
    if any(existing.key == item.key for existing in items):
        raise ValueError(f"{item.key!r} is already registered")
    items.append(item)
    items.sort(key=lambda x: (x.order, x.key))


def register_page(
    app: web.Application,
    key: str,
    title_zh: str,
    title_en: str,
    roles: Iterable[str],
    path: str,
    order: int | None = None,
) -> Page:
    """Put a page in the console's navigation for ``roles``; its handler must still call
    ``helpline.console.require`` (the navigation only hides links, it protects nothing)."""
    if not path.startswith("/console/"):
        raise ValueError("console pages live under /console/ (the session cookie's path)")
    page = Page(key, title_zh, title_en, _roles(roles), path, ORDER.get(key, 70) if order is None else order)
    _add(app, PAGES, page)
    return page


def register_dashboard_panel(
    app: web.Application,
    key: str,
    title_zh: str,
    title_en: str,
    roles: Iterable[str],
    render: PanelRenderer,
    order: int = 50,
) -> Panel:
    """Add a figure to the dashboard (cases by class, on-time rates …) for ``roles``."""
    panel = Panel(key, title_zh, title_en, _roles(roles), render, order)
    _add(app, PANELS, panel)
    return panel


def register_map_layer(
    app: web.Application,
    key: str,
    title_zh: str,
    title_en: str,
    roles: Iterable[str],
    values: LayerValues,
    order: int = 50,
) -> MapLayer:
    """Colour the dashboard's grid map by a number per cell (e.g. open cases) for ``roles``."""
    layer = MapLayer(key, title_zh, title_en, _roles(roles), values, order)
    _add(app, MAP_LAYERS, layer)
    return layer


def pages_for(app: web.Application, role: str) -> list[Page]:
    return [p for p in app.get(PAGES) or [] if role in p.roles]


def panels_for(app: web.Application, role: str) -> list[Panel]:
    return [p for p in app.get(PANELS) or [] if role in p.roles]


def layers_for(app: web.Application, role: str) -> list[MapLayer]:
    return [m for m in app.get(MAP_LAYERS) or [] if role in m.roles]
