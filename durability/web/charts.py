"""Charts as inline SVG, drawn on the server (no script, nothing from the internet).

`line_chart` draws named series of (time, value) points with labelled axes and an
optional limit line (a max_age or an RTO). Each chart comes in a wide and a narrow
drawing; the page's stylesheet shows the one that fits, so text stays readable on a
phone. `day_strip` draws one cell per day, coloured by that day's worst status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

from durability.model import Status

PALETTE = ("#1f6fb2", "#c2410c", "#2b8a3e", "#862e9c", "#0b7285", "#5c940d", "#a61e4d",
           "#495057")
LIMIT_COLOUR = "#c92a2a"
# Cell colours of the day strip; the same hues as the page's badges.
STATUS_FILL = {Status.OK: "#2f9e44", Status.WARNING: "#f59f00", Status.CRITICAL: "#c92a2a",
               Status.UNKNOWN: "#5c5f66"}
NO_REPORT_FILL = "#dee2e6"
Point = tuple[datetime, float]


@dataclass(frozen=True)
class Limit:
    """A horizontal line the values must stay under, with its label."""

    value: float
    label: str


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


def _time_label(moment: datetime, span: float) -> str:
    return f"{moment:%d %b}" if span > 2 * 86400 else f"{moment:%d %b %H:%M}"


def _drawing(
    title: str, series: Mapping[str, Sequence[Point]], format_value: Callable[[float], str],
    y_label: str, limit: Limit | None, width: int, height: int, x_ticks: int, font: int,
) -> str:
    left = 12 + font * 6
    right, top_margin, bottom = 14, font + 10, font * 3 + 14
    plot_w, plot_h = width - left - right, height - top_margin - bottom
    points = [p for values in series.values() for p in values]
    parts = [f'<text x="{left}" y="{font + 2}" class="axis-label" font-size="{font}">'
             f"{escape(y_label)}</text>"]
    if not points:
        parts.append(f'<text x="{left}" y="{top_margin + plot_h / 2:.0f}" font-size="{font}" '
                     'class="chart-empty">no data recorded yet</text>')
        return "".join(parts)
    t0 = min(p[0] for p in points).timestamp()
    t1 = max(p[0] for p in points).timestamp()
    peak = max([p[1] for p in points] + ([limit.value] if limit else []))
    peak = peak * 1.1 if peak > 0 else 1.0
    span = (t1 - t0) or 1.0
    if t1 == t0:
        x_ticks = 1

    def x(moment: datetime) -> float:
        return left + (moment.timestamp() - t0) / span * plot_w

    def y(value: float) -> float:
        return top_margin + plot_h - max(value, 0.0) / peak * plot_h

    base = top_margin + plot_h
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        ypos = y(peak * fraction)
        parts.append(f'<line x1="{left}" y1="{ypos:.1f}" x2="{left + plot_w}" y2="{ypos:.1f}" '
                     'class="grid"/>')
        if fraction in (0.0, 0.5, 1.0) or font < 12:
            parts.append(f'<text x="{left - 4}" y="{ypos + font / 3:.1f}" text-anchor="end" '
                         f'font-size="{font}">{escape(format_value(peak * fraction))}</text>')
    parts.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" class="axis"/>')
    parts.append(f'<line x1="{left}" y1="{top_margin}" x2="{left}" y2="{base}" class="axis"/>')
    for index in range(x_ticks):
        fraction = index / (x_ticks - 1) if x_ticks > 1 else 0.0
        moment = datetime.fromtimestamp(t0 + span * fraction, UTC)
        xpos = left + plot_w * fraction
        anchor = "start" if index == 0 else ("end" if index == x_ticks - 1 else "middle")
        parts.append(f'<line x1="{xpos:.1f}" y1="{base}" x2="{xpos:.1f}" y2="{base + 4}" '
                     'class="axis"/>')
        parts.append(f'<text x="{xpos:.1f}" y="{base + font + 4}" text-anchor="{anchor}" '
                     f'font-size="{font}">{escape(_time_label(moment, t1 - t0))}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle" '
                 f'class="axis-label" font-size="{font}">time (UTC)</text>')
    if limit is not None:
        ypos = y(limit.value)
        parts.append(f'<line x1="{left}" y1="{ypos:.1f}" x2="{left + plot_w}" y2="{ypos:.1f}" '
                     f'stroke="{LIMIT_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4" '
                     'class="limit"/>')
        parts.append(f'<text x="{left + plot_w - 2}" y="{ypos - 4:.1f}" text-anchor="end" '
                     f'fill="{LIMIT_COLOUR}" font-size="{font}" class="limit-label">'
                     f"{escape(limit.label)}</text>")
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        thinned = downsample(values)
        if len(thinned) == 1:
            moment, value = thinned[0]
            parts.append(f'<circle cx="{x(moment):.1f}" cy="{y(value):.1f}" r="3.5" '
                         f'fill="{colour}"><title>{escape(name)}</title></circle>')
        elif thinned:
            path = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in thinned)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         f'stroke-width="2"><title>{escape(name)}</title></polyline>')
    return "".join(parts)


def _svg(title: str, body: str, width: int, height: int, css: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css}" role="img" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
            f"<title>{escape(title)}</title>{body}</svg>")


def line_chart(
    title: str,
    series: Mapping[str, Sequence[Point]],
    format_value: Callable[[float], str],
    y_label: str = "",
    limit: Limit | None = None,
) -> str:
    """Given named series of (time, value) points, return a chart figure (two drawings).

    The figure holds a heading, a wide and a narrow SVG drawing (the page shows one)
    and a legend in HTML, which wraps on a small screen.
    """
    # Thinned once for both drawings: 160 points a series is finer than the plot's pixels.
    series = {name: downsample(values, 160) for name, values in series.items()}
    wide = _svg(title, _drawing(title, series, format_value, y_label, limit, 560, 240, 5, 11),
                560, 240, "chart-wide")
    narrow = _svg(title, _drawing(title, series, format_value, y_label, limit, 340, 230, 3,
                                  12), 340, 230, "chart-narrow")
    legend = "".join(
        f'<li><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
        f"{escape(name)}</li>" for i, name in enumerate(series))
    if limit is not None and series:
        legend += (f'<li><span class="swatch limit-swatch"></span>{escape(limit.label)}</li>')
    return (f'<figure class="chart-box"><figcaption>{escape(title)}</figcaption>{wide}{narrow}'
            f'<ul class="legend">{legend}</ul></figure>')


def day_strip(title: str, days: Mapping[str, Status], last_day: datetime, count: int) -> str:
    """Given each day's worst status (days 'YYYY-MM-DD'), return a strip of `count` cells.

    The strip ends on `last_day`; a day without a report is grey. Days in a row with the
    same status are drawn as one bar saying its days and status; the strip's title
    summarises the days that were not OK.
    """
    cell, gap = 8, 2
    width = count * (cell + gap)
    end = last_day.astimezone(UTC).date()
    labels = [(end - timedelta(days=count - 1 - index)).isoformat() for index in range(count)]
    runs: list[tuple[int, int, Status | None]] = []
    for index, day in enumerate(labels):
        status = days.get(day)
        if runs and runs[-1][2] is status:
            runs[-1] = (runs[-1][0], index, status)
        else:
            runs.append((index, index, status))
    parts = []
    bad = 0
    for first, last, status in runs:
        if status is not None and status is not Status.OK:
            bad += last - first + 1
        fill = NO_REPORT_FILL if status is None else STATUS_FILL.get(status, NO_REPORT_FILL)
        label = "no report" if status is None else status.name
        when = labels[first] if first == last else f"{labels[first]} to {labels[last]}"
        parts.append(f'<rect x="{first * (cell + gap)}" y="0" '
                     f'width="{(last - first + 1) * (cell + gap) - gap}" height="14" '
                     f'fill="{fill}"><title>{when}: {label}</title></rect>')
    summary = f"{title}: not OK on {bad} of the last {count} days"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="strip" role="img" '
            f'viewBox="0 0 {width} 14" width="{width}" height="14">'
            f"<title>{escape(summary)}</title>{''.join(parts)}</svg>")
