"""Line charts as inline SVG, drawn on the server (no script, nothing from the internet)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from html import escape

PALETTE = ("#1f6fb2", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285", "#5c940d",
           "#a61e4d")
Point = tuple[datetime, float]


def downsample(points: Sequence[Point], limit: int = 240) -> list[Point]:
    """Given time-ordered points, return at most about `limit` of them, keeping peaks.

    Each bucket keeps its largest value: an age or a duration that spiked must stay
    visible after thinning.
    """
    if len(points) <= limit:
        return list(points)
    size = -(-len(points) // limit)
    kept = []
    for start in range(0, len(points), size):
        bucket = points[start:start + size]
        kept.append(max(bucket, key=lambda point: point[1]))
    return kept


def line_chart(
    title: str,
    series: Mapping[str, Sequence[Point]],
    format_value: Callable[[float], str],
    width: int = 640,
    height: int = 220,
) -> str:
    """Given named series of (time, value) points, return an accessible SVG line chart."""
    margin_left, margin_right, margin_top, margin_bottom = 70, 12, 28, 40
    plot_w = width - margin_left - margin_right
    plot_h = height - margin_top - margin_bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{margin_left}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    points = [p for values in series.values() for p in values]
    if not points:
        parts.append(f'<text x="{margin_left}" y="{margin_top + plot_h / 2:.0f}" '
                     'class="chart-empty">no data yet</text></svg>')
        return "".join(parts)
    t0 = min(p[0] for p in points).timestamp()
    t1 = max(p[0] for p in points).timestamp()
    top = max(p[1] for p in points)
    top = top * 1.1 if top > 0 else 1.0
    span = (t1 - t0) or 1.0

    def x(moment: datetime) -> float:
        return margin_left + (moment.timestamp() - t0) / span * plot_w

    def y(value: float) -> float:
        return margin_top + plot_h - max(value, 0.0) / top * plot_h

    base = margin_top + plot_h
    parts.append(f'<line x1="{margin_left}" y1="{base}" x2="{margin_left + plot_w}" '
                 f'y2="{base}" class="axis"/>')
    parts.append(f'<line x1="{margin_left}" y1="{margin_top}" x2="{margin_left}" '
                 f'y2="{base}" class="axis"/>')
    for fraction in (0.0, 0.5, 1.0):
        value = top * fraction
        ypos = y(value)
        parts.append(f'<line x1="{margin_left}" y1="{ypos:.1f}" x2="{margin_left + plot_w}" '
                     f'y2="{ypos:.1f}" class="grid"/>')
        parts.append(f'<text x="{margin_left - 6}" y="{ypos + 4:.1f}" text-anchor="end" '
                     f'class="tick">{escape(format_value(value))}</text>')
    first, last = min(p[0] for p in points), max(p[0] for p in points)
    parts.append(f'<text x="{margin_left}" y="{height - 22}" class="tick">'
                 f"{first:%Y-%m-%d %H:%M}</text>")
    parts.append(f'<text x="{margin_left + plot_w}" y="{height - 22}" text-anchor="end" '
                 f'class="tick">{last:%Y-%m-%d %H:%M}</text>')
    legend_x = margin_left
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        thinned = downsample(values)
        if len(thinned) == 1:
            moment, value = thinned[0]
            parts.append(f'<circle cx="{x(moment):.1f}" cy="{y(value):.1f}" r="3" '
                         f'fill="{colour}"><title>{escape(name)}</title></circle>')
        elif thinned:
            path = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in thinned)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         f'stroke-width="2"><title>{escape(name)}</title></polyline>')
        parts.append(f'<rect x="{legend_x}" y="{height - 12}" width="10" height="10" '
                     f'fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="{height - 3}" class="legend">'
                     f"{escape(name)}</text>")
        legend_x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)
