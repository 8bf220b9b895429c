"""The grid map: our own cells (``helpline/grid.py``) drawn as SVG, coloured by a layer.

No tile server and no map library: the machines may be offline, and the cells are all a
dispatcher needs to read "where". Coordinates are projected equirectangularly with the
longitude scaled by cos(latitude), which is exact enough at district scale (a few km). A layer
gives a number per cell id (open cases, reports); cells are shaded on a five-step scale with a
legend, and every cell has a tooltip with its name, 15-digit id and value.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from html import escape

from markupsafe import Markup

from helpline.console.charts import mix
from helpline.grid import Grid

EMPTY = "#f4f6f9"
LOW, HIGH = "#fde7c8", "#c2410c"  # warm: what needs attention
STEPS = 5


def _breaks(values: Mapping[str, float]) -> list[float]:
    peak = max(values.values(), default=0)
    if peak <= 0:
        return []
    if peak <= STEPS:
        return [float(i) for i in range(1, int(math.ceil(peak)) + 1)]
    return [peak * (i + 1) / STEPS for i in range(STEPS)]


def _step(value: float, breaks: list[float]) -> int | None:
    """Which shade a value takes (0 = lightest), or None for no value."""
    if value <= 0 or not breaks:
        return None
    for i, upper in enumerate(breaks):
        if value <= upper:
            return i
    return len(breaks) - 1


def _fill(value: float, breaks: list[float]) -> str:
    step = _step(value, breaks)
    return EMPTY if step is None else mix(LOW, HIGH, step / max(1, len(breaks) - 1))


def grid_svg(
    grid: Grid,
    values: Mapping[str, float] | None = None,
    *,
    title: str,
    width: int = 640,
    legend: str = "",
    lang: str = "zh",
) -> Markup:
    """The cells of ``grid`` as an SVG map, shaded by ``values`` (cell id -> number)."""
    values = values or {}
    west, south, east, north = grid.bbox
    k = math.cos(math.radians((south + north) / 2))
    span_x, span_y = max((east - west) * k, 1e-9), max(north - south, 1e-9)
    pad = 8
    scale = (width - 2 * pad) / span_x
    height = span_y * scale + 2 * pad
    legend_h = 30
    breaks = _breaks(values)

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return pad + (lon - west) * k * scale, pad + (north - lat) * scale

    out = [
        f'<svg class="map" viewBox="0 0 {width} {height + legend_h:.0f}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title><g class="cells">'
    ]
    corners: dict[str, list[tuple[float, float]]] = defaultdict(list)
    edges: dict[tuple[tuple[float, float], tuple[float, float]], list[str]] = defaultdict(list)
    labels = []
    for cell in grid.cells:
        points = [xy(lon, lat) for lon, lat in cell.ring]
        path = "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in points) + "Z"
        value = values.get(cell.id, 0)
        tip = f"{cell.name} · {cell.id}" + (f" · {legend} {value:g}" if legend else "")
        out.append(
            f'<path d="{path}" fill="{_fill(value, breaks)}" stroke="#ffffff" stroke-width="1.2">'
            f"<title>{escape(tip)}</title></path>"
        )
        corners[cell.community].extend(points[:-1])
        for a, b in zip(cell.ring, cell.ring[1:], strict=False):
            edges[(a, b) if a <= b else (b, a)].append(cell.community)
        if value:
            xs, ys = [p[0] for p in points[:-1]], [p[1] for p in points[:-1]]
            dark = (_step(value, breaks) or 0) * 2 >= len(breaks)
            labels.append(
                f'<text x="{sum(xs) / len(xs):.1f}" y="{sum(ys) / len(ys) + 9:.1f}" text-anchor="middle" '
                f'font-size="13" font-weight="700" fill="{"#ffffff" if dark else "#7c2d12"}" '
                f'pointer-events="none">{value:g}</text>'
            )
    out.append("</g>")
    # Community borders: cell edges that no neighbour of the same community shares.
    borders = []
    for (a, b), owners in edges.items():
        if len(owners) == 1 or len(set(owners)) > 1:
            (x1, y1), (x2, y2) = xy(*a), xy(*b)
            borders.append(f"M{x1:.1f},{y1:.1f}L{x2:.1f},{y2:.1f}")
    out.append(
        f'<path class="borders" d="{"".join(borders)}" fill="none" stroke="#64748b" stroke-width="1.6" '
        f'stroke-linecap="round" pointer-events="none"/>'
    )
    out.extend(labels)
    # Each community's name in the top-left corner of its area, clear of the numbers in the cells.
    for community, pts in corners.items():
        x0, y0 = min(p[0] for p in pts), min(p[1] for p in pts)
        out.append(
            f'<text x="{x0 + 5:.1f}" y="{y0 + 15:.1f}" font-size="12" font-weight="600" fill="#334155" '
            f'stroke="#ffffff" stroke-width="3" paint-order="stroke" pointer-events="none">'
            f"{escape(community)}</text>"
        )
    y = height + 8
    if breaks:
        out.append(f'<text x="{pad}" y="{y + 10}" font-size="11" fill="#4b5563">{escape(legend)}</text>')
        x = pad + 8 + len(legend) * (11 if lang == "zh" else 6.5)
        lower = 0.0
        for upper in breaks:
            label = f"{lower:g}–{upper:g}" if upper - lower > 1 else f"{upper:g}"
            out.append(
                f'<rect x="{x:.0f}" y="{y}" width="14" height="12" rx="2" fill="{_fill(upper, breaks)}"/>'
                f'<text x="{x + 18:.0f}" y="{y + 10}" font-size="11" fill="#4b5563">{escape(label)}</text>'
            )
            x += 24 + 7 * len(label)
            lower = upper
    else:
        empty = "暂无数据" if lang == "zh" else "nothing to show yet"
        out.append(
            f'<text x="{pad}" y="{y + 10}" font-size="11" fill="#6b7280">{escape(legend)} {escape(empty)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))
