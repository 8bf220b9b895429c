"""Small server-rendered SVG charts: stacked bars over days, horizontal bars, an hour heat map.

No JavaScript library and no CDN (the centre's machines may be offline): each function returns
an ``<svg>`` element as markup, with ``<title>`` tooltips so every number can be read exactly,
and classes the console's stylesheet colours. Colours are given as attributes, not inline
styles, so the strict Content-Security-Policy holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

# A calm palette that stays distinguishable for the common colour-vision deficiencies.
PALETTE = ("#3b74c4", "#2a9d8f", "#e0a030", "#8e6bbf", "#d1603d", "#5aa9e6", "#7f8c4a", "#c4579b", "#8a8f98")
GRID = "#e3e7ee"
AXIS = "#6b7280"
FONT = 'font-family="inherit" font-size="11"'


def _nice_max(value: float) -> float:
    """The top of the axis: four ticks of a round step (1, 2, 2.5, 3, 4, 5 × 10^n, whole numbers
    only), so counts get whole-number ticks (7 -> 0, 2, 4, 6, 8)."""
    if value <= 0:
        return 4
    magnitude = 1.0
    while True:
        for step in (1, 2, 2.5, 3, 4, 5):
            if float(step * magnitude).is_integer() and 4 * step * magnitude >= value:
                return 4 * step * magnitude
        magnitude *= 10


def _fmt(n: float) -> str:
    return f"{int(n)}" if float(n).is_integer() else f"{n:.1f}"


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    width: int = 560,
    height: int = 220,
    colors: Sequence[str] = PALETTE,
) -> Markup:
    """One bar per label (e.g. day), stacked by series (e.g. channel), with a legend below."""
    left, right, top, bottom = 34, 8, 16, 22
    legend_rows = (len(series) + 3) // 4
    total_h = height + legend_rows * 18 + 6
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s[1][i] for s in series) for i in range(len(labels))]
    peak = _nice_max(max(totals, default=0))
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {total_h}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i in range(5):
        value = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(
            f'<text x="{left - 4}" y="{y + 3.5:.1f}" text-anchor="end" fill="{AXIS}" {FONT}>{_fmt(value)}</text>'
        )
    n = max(len(labels), 1)
    slot = plot_w / n
    bar = max(2.0, slot * 0.68)
    every = max(1, round(n / 10))
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar) / 2
        y = top + plot_h
        for k, (name, values) in enumerate(series):
            v = values[i]
            if v <= 0:
                continue
            h = plot_h * v / peak
            y -= h
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colors[k % len(colors)]}"><title>{escape(label)} · {escape(name)}: {_fmt(v)}</title></rect>'
            )
        if totals[i] and n <= 16:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" fill="{AXIS}" '
                f'font-size="10">{_fmt(totals[i])}</text>'
            )
        if i % every == 0:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="{AXIS}" {FONT}>'
                f"{escape(label)}</text>"
            )
    out.append(_legend([name for name, _ in series], colors, left, height + 8, (width - left) // 4))
    out.append("</svg>")
    return Markup("".join(out))


def _legend(names: Sequence[str], colors: Sequence[str], x0: int, y0: int, step: int) -> str:
    parts = []
    for k, name in enumerate(names):
        x = x0 + (k % 4) * step
        y = y0 + (k // 4) * 18
        parts.append(
            f'<rect x="{x}" y="{y}" width="10" height="10" rx="2" fill="{colors[k % len(colors)]}"/>'
            f'<text x="{x + 14}" y="{y + 9}" fill="#374151" {FONT}>{escape(name)}</text>'
        )
    return "".join(parts)


def hbars(
    items: Sequence[tuple[str, float]], *, title: str, width: int = 560, colors: Sequence[str] = PALETTE, unit: str = ""
) -> Markup:
    """Horizontal bars, one per item, largest first as given; the value printed at the end."""
    row, label_w = 26, 120
    height = max(1, len(items)) * row + 4
    peak = max((v for _, v in items), default=0) or 1
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (name, value) in enumerate(items):
        y = i * row + 2
        w = (width - label_w - 48) * value / peak
        out.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" fill="#374151" {FONT}>{escape(name)}</text>'
        )
        out.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}" rx="2" '
            f'fill="{colors[i % len(colors)]}"><title>{escape(name)}: {_fmt(value)}{unit}</title></rect>'
        )
        out.append(f'<text x="{label_w + w + 5:.1f}" y="{y + 14}" fill="{AXIS}" {FONT}>{_fmt(value)}{unit}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def heatmap(
    matrix: Sequence[Sequence[float]],
    rows: Sequence[str],
    *,
    title: str,
    width: int = 560,
    low: str = "#f1f5fb",
    high: str = "#1d4f91",
) -> Markup:
    """A rows × 24 grid (weekday × hour of day): darker is busier."""
    left, top = 40, 16
    cell = (width - left - 4) / 24
    height = top + cell * len(rows) + 4
    peak = max((v for r in matrix for v in r), default=0) or 1
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height:.0f}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for h in range(0, 24, 3):
        out.append(
            f'<text x="{left + cell * h + cell / 2:.1f}" y="{top - 5}" text-anchor="middle" fill="{AXIS}" '
            f"{FONT}>{h:02d}</text>"
        )
    for r, name in enumerate(rows):
        y = top + cell * r
        out.append(
            f'<text x="{left - 6}" y="{y + cell / 2 + 4:.1f}" text-anchor="end" fill="#374151" {FONT}>'
            f"{escape(name)}</text>"
        )
        for h in range(24):
            v = matrix[r][h]
            out.append(
                f'<rect x="{left + cell * h + 1:.1f}" y="{y + 1:.1f}" width="{cell - 2:.1f}" height="{cell - 2:.1f}" '
                f'rx="2" fill="{mix(low, high, v / peak) if v else "#f7f8fa"}">'
                f"<title>{escape(name)} {h:02d}:00–{h:02d}:59: {_fmt(v)}</title></rect>"
            )
    out.append("</svg>")
    return Markup("".join(out))


def mix(a: str, b: str, t: float) -> str:
    """The colour ``t`` of the way from ``a`` to ``b`` (hex #rrggbb)."""
    t = min(1.0, max(0.0, t))
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=True))
