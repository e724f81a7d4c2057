"""The status page: fleet RAID, snapshot age, restore tests and each customer's 3-2-1.

`gather_status` reads the store (I/O only); `render_status_page` turns what it found
into one self-contained HTML page with inline SVG charts (pure). The page needs a
login (`durability.web.auth`); it loads nothing from anywhere else.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any

from durability.model import Status, isoformat_z, worst
from durability.units import format_bytes, format_duration
from durability.web.charts import Point, line_chart

if TYPE_CHECKING:
    from werkzeug.routing import Rule
    from werkzeug.wrappers import Request, Response

    from durability.config import Config
    from durability.state.store import Store
    from durability.web.app import Web

@dataclass(frozen=True)
class Seen:
    """A status and when it was last established."""

    status: Status
    at: datetime | None
    note: str = ""


@dataclass(frozen=True)
class NodeRaid:
    """The latest RAID report of one node."""

    node: str
    status: Status
    checked_at: datetime
    arrays: tuple[tuple[str, Status, str], ...]
    stale: bool = False


@dataclass(frozen=True)
class RestoreRun:
    """One restore test, as charted."""

    source: str
    at: datetime
    status: Status
    seconds: float | None
    bytes_per_second: float | None
    summary: str


@dataclass(frozen=True)
class CustomerLine:
    """One customer's 3-2-1 picture."""

    id: str
    name: str
    node: str | None
    source: str | None
    raid: Seen | None
    snapshot: Seen | None
    own_copy: Seen


@dataclass(frozen=True)
class StatusData:
    """Everything the status page shows."""

    now: datetime
    nodes: tuple[NodeRaid, ...]
    snapshot_ages: Mapping[str, Sequence[Point]]
    snapshot_latest: Mapping[str, Seen]
    restores: tuple[RestoreRun, ...]
    customers: tuple[CustomerLine, ...]
    customer_total: int
    customer_counts: Mapping[str, int]
    page: int
    pages: int
    notes: tuple[str, ...] = field(default=())


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _status(name: str) -> Status:
    return Status.__members__.get(name, Status.UNKNOWN)


def _loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- gather (I/O) --------------------------------------------------------------------------
_PLACEMENT_CACHE: dict[str, tuple[float, dict[str, tuple[str, str]]]] = {}
_PLACEMENT_LOCK = threading.Lock()


def parse_placement(text: str) -> dict[str, tuple[str, str]]:
    """Given 'customer_id,node,source' CSV (a header line allowed), return {id: (node, source)}."""
    placement: dict[str, tuple[str, str]] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 3 or not row[0].strip() or row[0].strip() == "customer_id":
            continue
        placement[row[0].strip()] = (row[1].strip(), row[2].strip())
    return placement


def read_placement(path: str | None) -> tuple[dict[str, tuple[str, str]], str | None]:
    """Given `status.placement_file`, return (placement, problem); cached by mtime."""
    if not path:
        return {}, None
    try:
        mtime = os.stat(path).st_mtime
        with _PLACEMENT_LOCK:
            cached = _PLACEMENT_CACHE.get(path)
            if cached and cached[0] == mtime:
                return cached[1], None
        with open(path, encoding="utf-8") as handle:
            placement = parse_placement(handle.read())
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        return {}, f"placement file {path} unreadable: {error}"
    with _PLACEMENT_LOCK:
        _PLACEMENT_CACHE[path] = (mtime, placement)
    return placement, None


def local_node_name(config: Config) -> str:
    """Return this server's node name on the status page."""
    return config.schedule.node_name or socket.gethostname()


def _gather_nodes(store: Store, config: Config, now: datetime) -> list[NodeRaid]:
    from durability.web.fleet import MIGRATIONS

    store.migrate("fleet", MIGRATIONS)
    rows = store.query(
        "SELECT node, target, status, summary, checked_at FROM fleet_latest"
        " WHERE check_name = ? ORDER BY node, target", ("raid",)
    )
    by_node: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_node.setdefault(row[0], []).append(row)
    local = local_node_name(config)
    if local not in by_node:
        last = store.query_one(
            "SELECT run_id FROM results WHERE check_name = ? ORDER BY checked_at DESC, id DESC"
            " LIMIT 1", ("raid",)
        )
        if last:
            own = store.query(
                "SELECT target, status, summary, checked_at FROM results WHERE run_id = ?"
                " ORDER BY target", (last[0],)
            )
            by_node[local] = [(local, *row) for row in own]
    stale_after = timedelta(seconds=3 * (config.schedule.raid_every or 300.0) + 300)
    nodes = []
    for node, items in by_node.items():
        arrays = tuple((r[1], _status(r[2]), r[3]) for r in items)
        checked = max((_time(r[4]) for r in items), key=lambda m: m or now) or now
        nodes.append(NodeRaid(node, worst(a[1] for a in arrays), checked, arrays,
                              stale=now - checked > stale_after))
    nodes.sort(key=lambda n: (-(n.status.rank + (2 if n.stale else 0)), n.node))
    return nodes


def _json_field(store: Store, name: str) -> str:
    # Extracting inside the database keeps tens of thousands of JSON documents out of
    # Python; the field names are constants of this module, never user input.
    if store.dialect == "postgresql":
        return f"(data::json->>'{name}')"
    return f"json_extract(data, '$.{name}')"


_SERIES_CACHE: dict[str, tuple[str, dict[str, dict[datetime, float]]]] = {}
_SERIES_LOCK = threading.Lock()


def _before(text: str) -> str:
    # The greatest string sorting before an ISO time: "> _before(t)" means ">= t".
    return text[:-1] + chr(ord(text[-1]) - 1) + "~"


def _gather_snapshots(
    store: Store, since: datetime
) -> tuple[dict[str, list[Point]], dict[str, Seen]]:
    source = _json_field(store, "source")
    age = _json_field(store, "age_seconds")
    number = "DOUBLE PRECISION" if store.dialect == "postgresql" else "REAL"
    start = isoformat_z(since)
    with _SERIES_LOCK:
        cached = _SERIES_CACHE.get(store.location)
    # History is appended to, never rewritten: only runs newer than the cached newest
    # need reading. A cache from a later clock (or none) starts afresh.
    if cached is None or cached[0] < start:
        cached = (start, {})
    newest, points = cached[0], {k: dict(v) for k, v in cached[1].items()}
    rows = store.query(
        f"SELECT checked_at, COALESCE({source}, target), MAX(CAST({age} AS {number}))"
        " FROM results WHERE check_name = ? AND checked_at > ?"
        " GROUP BY 1, 2 ORDER BY 1",
        ("snapshots", newest if cached[1] else _before(start)),
    )
    for checked_text, name, oldest in rows:
        moment = _time(checked_text)
        if moment is not None and oldest is not None:
            # The oldest backup set of a source is the one that matters.
            series = points.setdefault(str(name).split("/", 1)[0], {})
            series[moment] = max(series.get(moment, 0.0), float(oldest))
        newest = max(newest, checked_text)
    points = {name: {m: v for m, v in series.items() if m >= since}
              for name, series in points.items()}
    with _SERIES_LOCK:
        _SERIES_CACHE[store.location] = (newest, points)
    ages = {name: sorted(series.items()) for name, series in points.items() if series}
    last_run = store.query(
        f"SELECT COALESCE({source}, target), status, checked_at FROM results"
        " WHERE check_name = ? AND checked_at = (SELECT MAX(checked_at) FROM results"
        " WHERE check_name = ?)",
        ("snapshots", "snapshots"),
    )
    latest: dict[str, tuple[str, list[Status]]] = {}
    for name, status, checked_text in last_run:
        key = str(name).split("/", 1)[0]
        latest.setdefault(key, (checked_text, []))[1].append(_status(status))
    seen = {name: Seen(worst(statuses), _time(at)) for name, (at, statuses)
            in sorted(latest.items())}
    return dict(sorted(ages.items())), seen


def _gather_restores(store: Store, since: datetime) -> list[RestoreRun]:
    rows = store.query(
        "SELECT target, status, checked_at, data, summary FROM results WHERE check_name = ?"
        " AND checked_at >= ? ORDER BY checked_at, id",
        ("restore-test", isoformat_z(since)),
    )
    runs = []
    for target, status, checked_text, data_text, summary in rows:
        moment = _time(checked_text)
        if moment is None:
            continue
        data = _loads(data_text)
        phases = data.get("seconds")
        seconds = None
        if isinstance(phases, dict):
            seconds = sum(float(v) for v in phases.values() if isinstance(v, int | float))
        elif isinstance(phases, int | float):
            seconds = float(phases)
        rate = data.get("bytes_per_second")
        runs.append(RestoreRun(
            source=str(data.get("source") or target), at=moment, status=_status(status),
            seconds=seconds, bytes_per_second=float(rate) if isinstance(rate, int | float)
            else None, summary=summary,
        ))
    return runs


def _gather_customers(store: Store) -> list[tuple[Any, ...]]:
    from durability.errors import StateError

    try:
        from durability.remind.state import migrate

        migrate(store)
        return store.query(
            "SELECT id, name, interval_days, last_copy_at FROM remind_customers ORDER BY id"
        )
    except (ImportError, StateError):
        return []


def own_copy_seen(last_copy: datetime | None, interval_days: int, now: datetime) -> Seen:
    """Given a customer's last confirmed copy and interval, return its 3-2-1 third leg."""
    if last_copy is None:
        return Seen(Status.CRITICAL, None, "no copy on record")
    due = last_copy + timedelta(days=interval_days)
    if now > due:
        return Seen(Status.WARNING, last_copy, f"due since {due:%Y-%m-%d}")
    return Seen(Status.OK, last_copy)


def gather_status(store: Store, config: Config, now: datetime, page: int = 1) -> StatusData:
    """Given the store, the config and the time, return what the status page shows."""
    since = now - timedelta(days=config.status.chart_days)
    notes: list[str] = []
    nodes = _gather_nodes(store, config, now)
    ages, latest = _gather_snapshots(store, since)
    restores = _gather_restores(store, since)
    last_restore_ok: dict[str, datetime] = {}
    for run in restores:
        if run.status is Status.OK:
            last_restore_ok[run.source] = run.at
    placement, problem = read_placement(config.status.placement_file)
    if problem:
        notes.append(problem)
    node_seen = {n.node: Seen(Status.WARNING if n.stale and n.status is Status.OK
                              else n.status, n.checked_at, "stale" if n.stale else "")
                 for n in nodes}
    rows = _gather_customers(store)
    default_interval = config.remind.interval_days
    per_page = config.status.customers_per_page
    pages = max(1, -(-len(rows) // per_page))
    page = min(max(page, 1), pages)
    first = (page - 1) * per_page
    snapshot_seen: dict[str, Seen] = {}
    for source_name, snap in latest.items():
        tested = last_restore_ok.get(source_name)
        snapshot_seen[source_name] = Seen(snap.status, tested or snap.at,
                                          "restore-tested" if tested else "checked")
    raid_ok = {name for name, seen in node_seen.items() if seen.status is Status.OK}
    snapshot_ok = {name for name, seen in snapshot_seen.items() if seen.status is Status.OK}
    unplaced: tuple[None, None] = (None, None)
    due = missing = not_placed = all_ok = 0
    due_before: dict[int, str] = {}
    # The counts cover every customer, so this loop stays lean: timestamps are ISO-8601
    # Z strings, which sort as times do, and are parsed only for the page shown.
    for customer_id, _, interval_days, last_copy_text in rows:
        days = interval_days or default_interval
        cutoff = due_before.get(days)
        if cutoff is None:
            cutoff = due_before[days] = isoformat_z(now - timedelta(days=days))
        node, source = placement.get(customer_id, unplaced)
        if node is None:
            not_placed += 1
        if not last_copy_text:
            missing += 1
        elif last_copy_text < cutoff:
            due += 1
        elif node in raid_ok and source in snapshot_ok:
            all_ok += 1
    counts = {"all three OK": all_ok, "own copy due": due, "no own copy": missing,
              "not placed": not_placed}
    lines = []
    for customer_id, name, interval_days, last_copy_text in rows[first:first + per_page]:
        own = own_copy_seen(_time(last_copy_text), interval_days or default_interval, now)
        node, source = placement.get(customer_id, unplaced)
        lines.append(CustomerLine(
            customer_id, name, node, source, node_seen.get(node) if node else None,
            snapshot_seen.get(source) if source else None, own,
        ))
    return StatusData(
        now=now, nodes=tuple(nodes), snapshot_ages=ages, snapshot_latest=latest,
        restores=tuple(restores), customers=tuple(lines), customer_total=len(rows),
        customer_counts=counts, page=page, pages=pages, notes=tuple(notes),
    )


# -- render (pure) -------------------------------------------------------------------------
STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:0;color:#1d1d1d;background:#f6f7f9}
header{background:#1d2733;color:#fff;padding:.7rem 1.5rem;display:flex;align-items:center;
justify-content:space-between}header h1{font-size:1.2rem;margin:0}
header form{margin:0}header button{font-size:.9rem}
main{padding:1rem 1.5rem;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:.8rem 1rem;
margin:0 0 1rem}
h2{font-size:1.05rem;margin:.2rem 0 .6rem}
table{border-collapse:collapse;width:100%;font-size:.88rem}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eceff2;vertical-align:top}
th{background:#f0f2f5}
.badge{display:inline-block;min-width:5.5rem;padding:.05rem .4rem;border-radius:3px;
font-weight:600;font-size:.78rem;text-align:center;color:#fff}
.s-OK{background:#2b8a3e}.s-WARNING{background:#e67700}.s-CRITICAL{background:#c92a2a}
.s-UNKNOWN{background:#5c5f66}.s-NONE{background:#adb5bd}
.muted{color:#6c737d}.charts{display:flex;flex-wrap:wrap;gap:1rem}
.chart{background:#fff;max-width:100%;height:auto}
.chart .axis{stroke:#868e96}.chart .grid{stroke:#eceff2}
.chart text{font-size:11px;fill:#495057}.chart .chart-title{font-size:13px;font-weight:600}
.counts span{margin-right:1.2rem}.pager a{margin-right:.6rem}
.note{color:#a40000}
</style>"""


def _badge(status: Status | None, text: str | None = None) -> str:
    if status is None:
        return f'<span class="badge s-NONE">{escape(text or "n/a")}</span>'
    return f'<span class="badge s-{status.name}">{escape(text or status.name)}</span>'


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return '<span class="muted">never</span>'
    age = max((now - moment).total_seconds(), 0.0)
    return (f'<time datetime="{isoformat_z(moment)}">{moment:%Y-%m-%d %H:%M}</time> '
            f'<span class="muted">({escape(format_duration(age))} ago)</span>')


def _seen_cell(seen: Seen | None, now: datetime, missing: str) -> str:
    if seen is None:
        return f"{_badge(None, 'unknown')} <span class=\"muted\">{escape(missing)}</span>"
    note = f' <span class="muted">{escape(seen.note)}</span>' if seen.note else ""
    if seen.at is None and seen.note:
        return f"{_badge(seen.status)}{note}"
    return f"{_badge(seen.status)} {_when(seen.at, now)}{note}"


def _nodes_section(data: StatusData) -> str:
    counts: dict[str, int] = {}
    for node in data.nodes:
        counts[node.status.name] = counts.get(node.status.name, 0) + 1
    stale = sum(1 for n in data.nodes if n.stale)
    summary = " ".join(f"<span>{_badge(_status(name))} {count}</span>"
                       for name, count in sorted(counts.items(),
                                                 key=lambda kv: -_status(kv[0]).rank))
    rows = []
    for node in data.nodes:
        arrays = "<br>".join(f"{escape(target)}: {escape(summary_text)}"
                             for target, _, summary_text in node.arrays)
        stale_note = ' <span class="note">stale</span>' if node.stale else ""
        rows.append(
            f"<tr><td>{escape(node.node)}</td><td>{_badge(node.status)}{stale_note}</td>"
            f"<td>{_when(node.checked_at, data.now)}</td><td>{arrays}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="4" class="muted">no node has reported</td></tr>'
    return (
        f'<section id="fleet"><h2>RAID per node ({len(data.nodes)} nodes)</h2>'
        f'<p class="counts">{summary}'
        f'{f" <span>{stale} stale</span>" if stale else ""}</p>'
        "<table><thead><tr><th>Node</th><th>Status</th><th>Checked</th><th>Arrays</th></tr>"
        f"</thead><tbody>{body}</tbody></table></section>"
    )


def _snapshots_section(data: StatusData) -> str:
    chart = line_chart("Newest snapshot age per source", data.snapshot_ages,
                       lambda v: format_duration(v))
    rows = "".join(
        f"<tr><td>{escape(source)}</td><td>{_badge(seen.status)}</td>"
        f"<td>{_when(seen.at, data.now)}</td></tr>"
        for source, seen in data.snapshot_latest.items()
    ) or '<tr><td colspan="3" class="muted">no snapshot check recorded</td></tr>'
    return (
        '<section id="snapshots"><h2>Provider snapshots</h2>'
        f'<div class="charts">{chart}</div>'
        "<table><thead><tr><th>Source</th><th>Status</th><th>Checked</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _restores_section(data: StatusData) -> str:
    durations: dict[str, list[Point]] = {}
    rates: dict[str, list[Point]] = {}
    for run in data.restores:
        if run.seconds is not None:
            durations.setdefault(run.source, []).append((run.at, run.seconds))
        if run.bytes_per_second is not None:
            rates.setdefault(run.source, []).append((run.at, run.bytes_per_second))
    charts = (line_chart("Restore test duration", durations, lambda v: format_duration(v))
              + line_chart("Restore throughput", rates, lambda v: f"{format_bytes(v)}/s"))
    rows = "".join(
        f"<tr><td>{_when(run.at, data.now)}</td><td>{escape(run.source)}</td>"
        f"<td>{_badge(run.status)}</td>"
        f"<td>{escape(format_duration(run.seconds)) if run.seconds is not None else ''}</td>"
        f"<td>{escape(format_bytes(run.bytes_per_second)) + '/s' if run.bytes_per_second else ''}"
        f"</td><td>{escape(run.summary)}</td></tr>"
        for run in list(reversed(data.restores))[:10]
    ) or '<tr><td colspan="6" class="muted">no restore test recorded</td></tr>'
    return (
        '<section id="restores"><h2>Restore tests</h2>'
        f'<div class="charts">{charts}</div>'
        "<table><thead><tr><th>When</th><th>Source</th><th>Status</th><th>Duration</th>"
        f"<th>Throughput</th><th>Summary</th></tr></thead><tbody>{rows}</tbody></table>"
        "</section>"
    )


def _customers_section(data: StatusData) -> str:
    counts = "".join(f"<span>{escape(name)}: <b>{count}</b></span>"
                     for name, count in data.customer_counts.items())
    rows = "".join(
        f"<tr><td>{escape(c.id)}</td><td>{escape(c.name)}</td>"
        f"<td>{escape(c.node or '')}<br>{_seen_cell(c.raid, data.now, 'not placed')}</td>"
        f"<td>{escape(c.source or '')}<br>"
        f"{_seen_cell(c.snapshot, data.now, 'no source' if not c.source else 'not checked')}</td>"
        f"<td>{_seen_cell(c.own_copy, data.now, '')}</td></tr>"
        for c in data.customers
    ) or '<tr><td colspan="5" class="muted">no customers imported</td></tr>'
    pager = ""
    if data.pages > 1:
        links = []
        if data.page > 1:
            links.append(f'<a href="/status?page={data.page - 1}#customers">previous</a>')
        links.append(f"page {data.page} of {data.pages}")
        if data.page < data.pages:
            links.append(f'<a href="/status?page={data.page + 1}#customers">next</a>')
        pager = f'<p class="pager">{" ".join(links)}</p>'
    return (
        f'<section id="customers"><h2>Customers: 3-2-1 ({data.customer_total})</h2>'
        f'<p class="counts">{counts}</p>'
        "<table><thead><tr><th>Customer</th><th>Name</th><th>RAID mirror</th>"
        "<th>Provider snapshot</th><th>Own external copy</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{pager}</section>"
    )


def render_status_page(data: StatusData, user: str) -> str:
    """Given what the status page shows and who is looking, return the HTML page."""
    notes = "".join(f'<p class="note">{escape(note)}</p>' for note in data.notes)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>durability status</title>{STYLE}</head><body>"
        "<header><h1>durability status</h1>"
        f'<form method="post" action="/status/logout"><span>{escape(user)}</span> '
        '<button type="submit">Sign out</button></form></header>'
        f'<main><p class="muted">As of {data.now:%Y-%m-%d %H:%M:%S} UTC</p>{notes}'
        f"{_nodes_section(data)}{_snapshots_section(data)}{_restores_section(data)}"
        f"{_customers_section(data)}</main></body></html>\n"
    )


def show_status(request: Request, web: Web) -> Response:
    """GET /status: the page, for a logged-in user; others go to the login form."""
    from werkzeug.wrappers import Response

    from durability.web.auth import current_user, login_redirect

    user = current_user(request, web)
    if user is None:
        return login_redirect(request)
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        page = 1
    data = gather_status(web.store(), web.config, web.now(), page)
    html = render_status_page(data, user)
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    return response


def routes() -> list[Rule]:
    """Return the status page route."""
    from werkzeug.routing import Rule

    return [Rule("/status", endpoint=show_status, methods=["GET"])]


def node_names(nodes: Iterable[NodeRaid]) -> list[str]:
    """Return the node names, in page order."""
    return [node.node for node in nodes]
