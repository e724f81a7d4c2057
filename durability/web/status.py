"""The status page: what is broken and who must act, RAID per node, snapshots, restore
tests, and every customer's 3-2-1 and reminder state.

`gather_status` asks each feature for its records through that feature's own read
functions (it reads no table itself, and writes nothing: a store where nothing has run
yet simply has nothing to show); `render_status_page` turns the records into one
self-contained HTML page with inline SVG charts (pure). The page needs a login
(`durability.web.auth`); it loads nothing from anywhere else.
"""

from __future__ import annotations

import csv
import io
import socket
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlencode

from durability.errors import StateError
from durability.model import Status, isoformat_z, worst
from durability.units import format_bytes, format_duration
from durability.web.charts import Limit, Point, day_strip, line_chart

if TYPE_CHECKING:
    from werkzeug.routing import Rule
    from werkzeug.wrappers import Request, Response

    from durability.config import Config
    from durability.remind.state import CustomerPage, CustomerSummary
    from durability.restore.history import RestoreRun
    from durability.service.lease import ActiveInstance
    from durability.snapshots.history import AgeSeries, SourceRun
    from durability.state.store import Store
    from durability.web.app import Web

T = TypeVar("T")
# Nodes listed with their RAID history strip (the ones not OK first, then the rest).
STRIP_NODES = 50
# Who acts on what the page shows.
OPERATIONS, SUPPORT, CUSTOMERS = "Operations", "Support", "Customers"
CATEGORY_LABELS = {
    "attention": "needs attention", "overdue": "copy overdue", "no-copy": "no own copy yet",
    "snoozed": "snoozed", "unsubscribed": "unsubscribed", "ok": "copy up to date",
}
SEVERITY_STATUS = {"info": None, "warning": Status.WARNING, "critical": Status.CRITICAL}
# Badge colours (background, text), each pair above WCAG AA's 4.5:1.
BADGE_COLOURS = {
    "OK": ("#1e7b34", "#ffffff"),
    "WARNING": ("#f59f00", "#1d1d1d"),
    "CRITICAL": ("#b02525", "#ffffff"),
    "UNKNOWN": ("#55585e", "#ffffff"),
    "INFO": ("#dbe8f7", "#143d6b"),
    "NONE": ("#e9ecef", "#343a40"),
}


@dataclass(frozen=True)
class Seen:
    """A status, when it was last established, and a note."""

    status: Status | None
    at: datetime | None
    note: str = ""


@dataclass(frozen=True)
class NodeRaid:
    """The latest RAID picture of one node."""

    node: str
    status: Status
    checked_at: datetime
    arrays: tuple[tuple[str, Status, str], ...]
    stale: bool = False
    local: bool = False
    days: Mapping[str, Status] = field(default_factory=dict)

    @property
    def shown_status(self) -> Status:
        """The node's status as the page counts it: a silent node is not known OK."""
        return Status.UNKNOWN if self.stale and self.status is Status.OK else self.status


@dataclass(frozen=True)
class Problem:
    """One line of the overall status: what is wrong, and who must act."""

    status: Status
    who: str
    text: str
    link: str


@dataclass(frozen=True)
class CustomerLine:
    """One customer's 3-2-1 picture."""

    summary: CustomerSummary
    node: str | None
    source: str | None
    raid: Seen | None
    snapshot: Seen | None


@dataclass(frozen=True)
class StatusData:
    """Everything the status page shows."""

    now: datetime
    node_name: str
    nodes: tuple[NodeRaid, ...]
    snapshot_runs: Mapping[str, AgeSeries]
    snapshot_latest: Mapping[str, SourceRun]
    restores: tuple[RestoreRun, ...]
    rto_target: float | None
    customers: CustomerPage
    lines: tuple[CustomerLine, ...]
    problems: tuple[Problem, ...]
    chart_days: int
    no_copy_severity: str
    query: str = ""
    state: str = ""
    notes: tuple[str, ...] = ()
    snapshots_silent: frozenset[str] = frozenset()
    # The service instance holding the lease (None: no service ever ran on this store).
    service: ActiveInstance | None = None
    # Times already written out while rendering this page (many repeat).
    memo: dict[datetime, str] = field(default_factory=dict, compare=False, repr=False)


def _read(what: str, notes: list[str], read: Callable[[], T]) -> T | None:
    # A feature whose records cannot be read is said so on the page, never shown as fine.
    try:
        return read()
    except StateError as error:
        notes.append(f"{what} could not be read: {error}")
        return None


# -- gather (I/O) --------------------------------------------------------------------------

def parse_placement(text: str) -> dict[str, tuple[str, str]]:
    """Given 'customer_id,node,source' CSV (a header line allowed), return {id: (node, source)}."""
    rows = [row for row in csv.reader(io.StringIO(text)) if len(row) >= 3]
    if " " in text or "\t" in text:
        rows = [[cell.strip() for cell in row[:3]] for row in rows]
    return {row[0]: (row[1], row[2]) for row in rows if row[0] and row[0] != "customer_id"}


def read_placement(path: str | None) -> tuple[dict[str, tuple[str, str]], str | None]:
    """Given `status.placement_file`, return (placement, problem)."""
    if not path:
        return {}, None
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_placement(handle.read()), None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        return {}, f"placement file {path} unreadable: {error}"


def local_node_name(config: Config) -> str:
    """Return this server's node name on the status page."""
    return config.schedule.node_name or socket.gethostname()


def _gather_nodes(store: Store, config: Config, now: datetime, since: datetime,
                  notes: list[str], with_history: bool = True) -> list[NodeRaid]:
    from durability.raid import history as raid_history
    from durability.web import fleet

    stale_after = timedelta(seconds=3 * (config.schedule.raid_every or 300.0) + 300)
    local = local_node_name(config)
    nodes = []
    for reported in _read("fleet reports", notes, lambda: fleet.latest(store)) or []:
        # A report dated ahead of its arrival counts from its arrival.
        at = min(reported.checked_at, reported.received_at)
        arrays = tuple((t.target, t.status, t.summary) for t in reported.targets)
        nodes.append(NodeRaid(reported.node, worst(a[1] for a in arrays), at, arrays,
                              stale=now - at > stale_after, local=reported.node == local))
    local_days: dict[str, Status] = {}
    own_local = not any(node.node == local for node in nodes)
    if own_local:
        own = _read("this node's RAID results", notes,
                    lambda: raid_history.latest_verdicts(store)) or []
        if own:
            at = max(verdict.checked_at for verdict in own)
            arrays = tuple((v.target, v.status, v.summary) for v in own)
            nodes.append(NodeRaid(local, worst(a[1] for a in arrays), at, arrays,
                                  stale=now - at > stale_after, local=True))
            if with_history:
                local_days = dict(_read("this node's RAID history", notes,
                                        lambda: raid_history.daily_worst(store, since)) or [])
    nodes.sort(key=lambda n: (-n.shown_status.rank, n.node))
    # The page lists every node not OK and the first OK ones with their history.
    listed = ([n for n in nodes if n.shown_status is not Status.OK][:STRIP_NODES]
              + [n for n in nodes if n.shown_status is Status.OK][:STRIP_NODES])
    strip = [n.node for n in listed if not (n.local and own_local)] if with_history else []
    history = _read("fleet RAID history", notes,
                    lambda: fleet.daily_worst(store, strip, since)) or {}
    return [NodeRaid(n.node, n.status, n.checked_at, n.arrays, n.stale, n.local,
                     local_days if n.local and own_local else dict(history.get(n.node, [])))
            for n in nodes]


def _problems(data_nodes: Sequence[NodeRaid], latest: Mapping[str, SourceRun],
              restores: Sequence[RestoreRun], customers: CustomerPage,
              no_copy: Status | None, affected: Mapping[str, int], now: datetime,
              chart_days: int, silent: frozenset[str] = frozenset()) -> list[Problem]:
    problems: list[Problem] = []
    if not data_nodes:
        problems.append(Problem(Status.UNKNOWN, OPERATIONS,
                                "No RAID report yet: no node has reported and this node's "
                                "RAID check has not run.", "/status#fleet"))
    for status in (Status.CRITICAL, Status.WARNING, Status.UNKNOWN):
        bad = [n for n in data_nodes if n.shown_status is status]
        if not bad:
            continue
        names = ", ".join(n.node for n in bad[:8]) + (f" and {len(bad) - 8} more"
                                                     if len(bad) > 8 else "")
        what = ("silent or unknown" if status is Status.UNKNOWN else status.name)
        count = sum(affected.get(n.node, 0) for n in bad)
        held = f"; {count} customer(s) are on them" if count else ""
        problems.append(Problem(status, OPERATIONS,
                                f"RAID {what} on {len(bad)} node(s): {names}{held}.",
                                "/status#fleet"))
    bad_sources = [s for s in latest.values() if s.status is not Status.OK]
    for run in sorted(bad_sources, key=lambda s: -s.status.rank):
        count = affected.get("source:" + run.source, 0)
        held = f"; {count} customer(s) rely on it" if count else ""
        quiet = (f" (not checked since {run.checked_at:%Y-%m-%d %H:%M})"
                 if run.source in silent else "")
        problems.append(Problem(run.status, OPERATIONS,
                                f"Provider snapshots of {run.source}: {run.status.name}"
                                f"{quiet}{held}.", "/status#snapshots"))
    if not latest:
        problems.append(Problem(Status.UNKNOWN, OPERATIONS,
                                "No provider snapshot check recorded yet.", "/status#snapshots"))
    last: dict[str, RestoreRun] = {}
    for test in restores:
        last[test.source] = test
    for test in last.values():
        if test.status is not Status.OK:
            problems.append(Problem(test.status, OPERATIONS,
                                    f"Last restore test of {test.source}: {test.status.name} "
                                    f"({test.summary}).", "/status#restores"))
    if not restores:
        problems.append(Problem(Status.UNKNOWN, OPERATIONS,
                                f"No restore test recorded in the last {chart_days} days.",
                                "/status#restores"))
    counts = customers.counts
    if counts.get("attention"):
        problems.append(Problem(Status.WARNING, SUPPORT,
                                f"{counts['attention']} customer(s) need attention (address "
                                "refused, every reminder sent, or delivery uncertain).",
                                "/status?state=attention#customers"))
    if no_copy is not None and counts.get("no-copy"):
        problems.append(Problem(no_copy, CUSTOMERS,
                                f"{counts['no-copy']} customer(s) have no own copy yet.",
                                "/status?state=no-copy#customers"))
    problems.sort(key=lambda p: -p.status.rank)
    return problems


def gather_status(store: Store, config: Config, now: datetime, page: int = 1,
                  query: str = "", state: str = "") -> StatusData:
    """Given the store, the config, the time and the customer search, return the page's data.

    Reads only: nothing is created or migrated, so a store where nothing ran yet
    shows empty panels that say so.
    """
    from durability.remind.state import CATEGORIES, CustomerPage, customer_summary
    from durability.restore import history as restore_history
    from durability.service.lease import active_instance
    from durability.snapshots import history as snapshot_history

    settings = config.status
    since = now - timedelta(days=settings.chart_days)
    notes: list[str] = []
    # A customer search shows the overall status and the customers: no charts, no history.
    full = not query
    nodes = _gather_nodes(store, config, now, since, notes, with_history=full)
    runs = _read("snapshot history", notes,
                 lambda: snapshot_history.age_series(store, since, now)) or {} if full else {}
    latest = _read("snapshot results", notes, lambda: snapshot_history.latest(store)) or {}
    # A source not checked for three intervals is not known to be OK any more.
    snapshots_after = timedelta(seconds=3 * (config.schedule.snapshots_every or 3600.0) + 300)
    silent = frozenset(name for name, run in latest.items()
                       if now - run.checked_at > snapshots_after)
    latest = {name: replace(run, status=Status.UNKNOWN)
              if name in silent and run.status is Status.OK else run
              for name, run in latest.items()}
    restores = _read("restore tests", notes,
                     lambda: restore_history.runs(store, since)) or []
    placement, problem = read_placement(settings.placement_file)
    if problem:
        notes.append(problem)
    severity = settings.no_own_copy_severity
    order = (("attention", "no-copy", "overdue", "snoozed", "unsubscribed", "ok")
             if severity == "critical" else CATEGORIES)
    if state and state not in CATEGORIES:
        notes.append(f"unknown customer state {state!r}: showing every customer")
        state = ""
    empty = CustomerPage((), {name: 0 for name in CATEGORIES}, 0, 0, 1, 1)
    remind = config.remind
    customers = (_read("customers", notes, lambda: customer_summary(
        store, now, remind.interval_days, remind.max_reminders, q=query, state=state,
        page=page, per_page=settings.customers_per_page, order=order)) or empty)
    node_seen = {n.node: Seen(n.shown_status, n.checked_at, "silent" if n.stale else "")
                 for n in nodes}
    tested: dict[str, datetime] = {}
    for run in restores:
        if run.status is Status.OK:
            tested[run.source] = run.at
    source_seen = {
        name: Seen(run.status, tested.get(name) or run.checked_at,
                   "restore-tested" if name in tested else "checked")
        for name, run in latest.items()}
    # Customers are counted only on the nodes and sources the overall status names.
    bad_nodes = {n.node for n in nodes if n.shown_status is not Status.OK}
    bad_sources = {name for name, run in latest.items() if run.status is not Status.OK}
    affected = Counter(node for node, _ in placement.values() if node in bad_nodes)
    if bad_sources:
        affected.update("source:" + source for _, source in placement.values()
                        if source in bad_sources)
    lines = []
    for summary in customers.rows:
        placed = placement.get(summary.id)
        if placed is None:
            lines.append(CustomerLine(summary, None, None, None, None))
            continue
        lines.append(CustomerLine(summary, placed[0], placed[1], node_seen.get(placed[0]),
                                  source_seen.get(placed[1])))
    problems = _problems(nodes, latest, restores, customers, SEVERITY_STATUS[severity],
                         affected, now, settings.chart_days, silent)
    service = _read("service lease", notes, lambda: active_instance(store))
    rto = next((r.rto_target_seconds for r in reversed(restores)
                if r.rto_target_seconds is not None), None) or config.restore.rto_target
    return StatusData(
        now=now, node_name=local_node_name(config), nodes=tuple(nodes), snapshot_runs=runs,
        snapshot_latest=latest, restores=tuple(restores), rto_target=rto,
        customers=customers, lines=tuple(lines), problems=tuple(problems),
        chart_days=settings.chart_days, no_copy_severity=severity, query=query, state=state,
        notes=tuple(notes), snapshots_silent=silent, service=service,
    )


# -- render (pure) -------------------------------------------------------------------------

def _badge_css() -> str:
    return "".join(f".s-{name}{{background:{bg};color:{fg}}}"
                   for name, (bg, fg) in BADGE_COLOURS.items())


STYLE = ("<style>"
         "*{box-sizing:border-box}"
         "body{font-family:system-ui,sans-serif;margin:0;color:#1d1d1d;background:#f6f7f9;"
         "line-height:1.4}"
         "header{background:#1d2733;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;"
         "gap:.5rem;align-items:center;justify-content:space-between}"
         "header h1{font-size:1.2rem;margin:0}header form{margin:0}"
         "header button{font-size:.9rem}"
         "main{padding:1rem;max-width:1200px}"
         "section{background:#fff;border:1px solid #dde1e6;border-radius:6px;"
         "padding:.8rem 1rem;margin:0 0 1rem;overflow-wrap:break-word}"
         "h2{font-size:1.1rem;margin:.2rem 0 .6rem}"
         "table{border-collapse:collapse;width:100%;font-size:.9rem}"
         "th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eceff2;"
         "vertical-align:top}th{background:#f0f2f5}td.name{white-space:nowrap}"
         ".badge{display:inline-block;min-width:5.5rem;padding:.05rem .4rem;border-radius:3px;"
         "font-weight:600;font-size:.8rem;text-align:center}"
         f"{_badge_css()}"
         ".muted{color:#5c636c}.note{color:#a40000}"
         ".overall{border-left:6px solid #55585e}.overall.o-OK{border-left-color:#1e7b34}"
         ".overall.o-WARNING{border-left-color:#f59f00}"
         ".overall.o-CRITICAL{border-left-color:#b02525}"
         ".overall .headline{font-size:1.15rem;font-weight:600;margin:.2rem 0 .6rem}"
         ".problems{list-style:none;padding:0;margin:0}.problems li{margin:.3rem 0}"
         ".who{font-weight:600}"
         ".charts{display:flex;flex-wrap:wrap;gap:1rem}"
         ".chart-box{margin:0;max-width:100%}.chart-box figcaption{font-weight:600;"
         "font-size:.95rem}"
         ".chart{background:#fff;max-width:100%;height:auto;display:block}"
         ".chart .axis{stroke:#868e96}.chart .grid{stroke:#eceff2}"
         ".chart text{fill:#343a40}.chart .axis-label{font-style:italic}"
         ".chart .limit-label{fill:#b02525;stroke:#fff;stroke-width:3px;paint-order:stroke;"
         "font-weight:600}"
         ".chart-narrow{display:none}"
         ".legend{list-style:none;padding:0;margin:.3rem 0;display:flex;flex-wrap:wrap;"
         "gap:.2rem .9rem;font-size:.85rem}"
         ".swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;"
         "vertical-align:-.1rem}"
         ".limit-swatch{border-top:2px dashed #c92a2a;height:0;vertical-align:.25rem}"
         ".strip{display:block;margin-top:.2rem}"
         "details summary{cursor:pointer}"
         ".counts{display:flex;flex-wrap:wrap;gap:.3rem 1rem;padding:0;list-style:none}"
         ".filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:.5rem 0}"
         ".filters label{display:flex;flex-direction:column;font-size:.85rem}"
         ".filters input,.filters select,.filters button{font-size:1rem;padding:.3rem}"
         ".pager{display:flex;flex-wrap:wrap;gap:.4rem;list-style:none;padding:0}"
         ".pager a,.pager span{display:inline-block;min-width:2.2rem;padding:.3rem .5rem;"
         "border:1px solid #ced4da;border-radius:4px;text-align:center;color:#1a4f8b}"
         ".pager [aria-current]{background:#1d2733;color:#fff}"
         "a{color:#1a4f8b}"
         "@media (max-width:700px){"
         "main{padding:.5rem}section{padding:.6rem;overflow-wrap:anywhere}"
         ".chart-wide{display:none}.chart-narrow{display:block}"
         "table.stack thead{position:absolute;left:-9999px}"
         "table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;"
         "width:100%}"
         "table.stack tr{border-bottom:2px solid #dde1e6;padding:.3rem 0}"
         "table.stack td{border:0;padding:.15rem .2rem}td.name{white-space:normal}"
         "table.stack td[data-label]::before{content:attr(data-label) \": \";"
         "font-weight:600;color:#343a40}"
         "}"
         "</style>")


def _badge(status: Status | None, text: str | None = None, css: str | None = None) -> str:
    name = css or (status.name if status is not None else "NONE")
    label = text or (status.name if status is not None else "n/a")
    return f'<span class="badge s-{name}">{escape(label)}</span>'


def _when(moment: datetime | None, now: datetime,
          memo: dict[datetime, str] | None = None) -> str:
    if moment is None:
        return '<span class="muted">never</span>'
    if memo is not None and moment in memo:
        return memo[moment]
    age = (now - moment).total_seconds()
    ago = (f"in {format_duration(-age)}" if age < 0
           else f"{format_duration(age)} ago")
    text = (f'<time datetime="{isoformat_z(moment)}">{moment:%Y-%m-%d %H:%M}</time> '
            f'<span class="muted">({escape(ago)})</span>')
    if memo is not None:
        memo[moment] = text
    return text


def _seen_cell(seen: Seen | None, now: datetime, missing: str,
               memo: dict[datetime, str] | None = None) -> str:
    if seen is None:
        return f"{_badge(None, 'unknown')} <span class=\"muted\">{escape(missing)}</span>"
    note = f' <span class="muted">{escape(seen.note)}</span>' if seen.note else ""
    return f"{_badge(seen.status)} {_when(seen.at, now, memo)}{note}"


def _overall_section(data: StatusData) -> str:
    status = worst(p.status for p in data.problems) if data.problems else Status.OK
    who = sorted({p.who for p in data.problems if p.status is not Status.OK})
    if not data.problems:
        headline = "All checks OK: nothing needs anyone's action."
    else:
        headline = (f"{len(data.problems)} item(s) need action by "
                    f"{', '.join(who) or 'nobody'}.")
    items = "".join(
        f'<li>{_badge(p.status)} <span class="who">{escape(p.who)}:</span> '
        f'<a href="{escape(p.link)}">{escape(p.text)}</a></li>' for p in data.problems)
    counts = data.customers.counts
    calm = []
    if counts.get("overdue"):
        calm.append(f"{counts['overdue']} customer(s) have an overdue own copy; reminders "
                    "are going out to them.")
    if data.no_copy_severity == "info" and counts.get("no-copy"):
        calm.append(f"{counts['no-copy']} customer(s) have no own copy yet; they are reminded "
                    "like the others (not counted as a problem here).")
    calm_html = "".join(f'<p class="muted">{escape(text)}</p>' for text in calm)
    return (f'<section id="overall" class="overall o-{status.name}" aria-labelledby="overall-h">'
            f'<h2 id="overall-h">Overall status</h2><p class="headline">{_badge(status)} '
            f'{escape(headline)}</p><ul class="problems">{items}</ul>{calm_html}</section>')


def _node_row(node: NodeRaid, data: StatusData) -> str:
    arrays = "<br>".join(f"{escape(target)}: {_badge(status)} {escape(summary)}"
                         for target, status, summary in node.arrays)
    stale = ' <span class="note">silent: no report in time</span>' if node.stale else ""
    local = ' <span class="muted">(this server)</span>' if node.local else ""
    strip = day_strip(f"RAID of {node.node}", node.days, data.now, data.chart_days) \
        if node.days else '<span class="muted">no history</span>'
    return (f'<tr><td data-label="Node" class="name">{escape(node.node)}{local}</td>'
            f'<td data-label="Status">{_badge(node.shown_status)}{stale}</td>'
            f'<td data-label="Reported">{_when(node.checked_at, data.now, data.memo)}</td>'
            f'<td data-label="Arrays">{arrays}</td>'
            f'<td data-label="Last {data.chart_days} days">{strip}</td></tr>')


def _nodes_section(data: StatusData) -> str:
    counts: dict[Status, int] = {}
    for node in data.nodes:
        counts[node.shown_status] = counts.get(node.shown_status, 0) + 1
    summary = "".join(f"<li>{_badge(status)} {count}</li>" for status, count in
                      sorted(counts.items(), key=lambda kv: -kv[0].rank))
    problem_nodes = [n for n in data.nodes if n.shown_status is not Status.OK]
    fine = [n for n in data.nodes if n.shown_status is Status.OK]
    head = ("<table class=\"stack\"><thead><tr><th>Node</th><th>Status</th><th>Reported</th>"
            f"<th>Arrays</th><th>Last {data.chart_days} days</th></tr></thead><tbody>")
    if not data.nodes:
        body = ('<p>No node has reported and this server\'s RAID check has not run: RAID '
                'state is unknown.</p>')
    else:
        rows = "".join(_node_row(n, data) for n in problem_nodes)
        body = (f"{head}{rows}</tbody></table>" if problem_nodes
                else '<p>Every node reported OK in time.</p>')
        if fine:
            listed = "".join(_node_row(n, data) for n in fine[:STRIP_NODES])
            rest = fine[STRIP_NODES:]
            more = (f'<p class="muted">Also OK: {escape(", ".join(n.node for n in rest))}</p>'
                    if rest else "")
            body += (f"<details><summary>{len(fine)} node(s) OK</summary>{head}{listed}"
                     f"</tbody></table>{more}</details>")
    return (f'<section id="fleet" aria-labelledby="fleet-h"><h2 id="fleet-h">RAID per node '
            f'({len(data.nodes)} nodes)</h2><ul class="counts">{summary}</ul>{body}</section>')


def _age_text(value: float) -> str:
    return format_duration(value)


SILENT_NOTE = ' <span class="note">silent: not checked in time</span>'


def _newest_text(run: SourceRun) -> str:
    text = f"{format_duration(run.age_seconds)} old" if run.age_seconds is not None else "none"
    if run.max_age_seconds:
        text += f" (max {format_duration(run.max_age_seconds)})"
    return text


def _snapshots_section(data: StatusData) -> str:
    groups: dict[float | None, dict[str, Sequence[Point]]] = {}
    for source, ages in data.snapshot_runs.items():
        groups.setdefault(ages.max_age_seconds, {})[source] = ages.points
    charts = []
    for limit, series in groups.items() or [(None, {})]:
        line = Limit(limit, f"max age {format_duration(limit)}") if limit else None
        charts.append(line_chart("Age of the newest snapshot per source", series, _age_text,
                                 "age", line))
    rows = "".join(
        f'<tr><td data-label="Source">{escape(source)}</td>'
        f'<td data-label="Status">{_badge(run.status)}</td>'
        f'<td data-label="Newest backup">{escape(_newest_text(run))}</td>'
        f'<td data-label="Checked">{_when(run.checked_at, data.now, data.memo)}'
        f'{SILENT_NOTE if source in data.snapshots_silent else ""}</td></tr>'
        for source, run in sorted(data.snapshot_latest.items(),
                                  key=lambda kv: (-kv[1].status.rank, kv[0])))
    table = ('<table class="stack"><thead><tr><th>Source</th><th>Status</th>'
             f"<th>Newest backup</th><th>Checked</th></tr></thead><tbody>{rows}</tbody></table>"
             if rows else "<p>No snapshot check recorded yet: snapshot state is unknown.</p>")
    return ('<section id="snapshots" aria-labelledby="snapshots-h">'
            '<h2 id="snapshots-h">Provider snapshots</h2>'
            f'<div class="charts">{"".join(charts)}</div>{table}</section>')


def _restores_section(data: StatusData) -> str:
    durations: dict[str, list[Point]] = {}
    projected: dict[str, list[Point]] = {}
    rates: dict[str, list[Point]] = {}
    for run in data.restores:
        if run.seconds is not None:
            durations.setdefault(run.source, []).append((run.at, run.seconds))
        if run.projected_full_seconds is not None:
            projected.setdefault(run.source, []).append((run.at, run.projected_full_seconds))
        if run.bytes_per_second is not None:
            rates.setdefault(run.source, []).append((run.at, run.bytes_per_second))
    rto = Limit(data.rto_target, f"RTO {format_duration(data.rto_target)}") \
        if data.rto_target else None
    charts = [line_chart("Restore test duration", durations, format_duration, "duration")]
    if projected:
        charts.append(line_chart("Projected full restore time", projected, format_duration,
                                 "full restore", rto))
    charts.append(line_chart("Restore throughput", rates, lambda v: f"{format_bytes(v)}/s",
                             "throughput"))
    rows = "".join(
        f'<tr><td data-label="When">{_when(run.at, data.now, data.memo)}</td>'
        f'<td data-label="Source">{escape(run.source)}</td>'
        f'<td data-label="Status">{_badge(run.status)}</td>'
        f'<td data-label="Took">'
        f'{escape(format_duration(run.seconds)) if run.seconds is not None else "-"}</td>'
        f'<td data-label="Throughput">'
        f'{escape(format_bytes(run.bytes_per_second)) + "/s" if run.bytes_per_second else "-"}'
        f'</td><td data-label="Summary">{escape(run.summary)}</td></tr>'
        for run in list(reversed(data.restores))[:10])
    table = ('<table class="stack"><thead><tr><th>When</th><th>Source</th><th>Status</th>'
             f"<th>Took</th><th>Throughput</th><th>Summary</th></tr></thead><tbody>{rows}"
             "</tbody></table>" if rows else
             f"<p>No restore test recorded in the last {data.chart_days} days.</p>")
    return ('<section id="restores" aria-labelledby="restores-h">'
            '<h2 id="restores-h">Restore tests</h2>'
            f'<div class="charts">{"".join(charts)}</div>{table}</section>')


def _category_badge(summary: CustomerSummary, severity: str) -> str:
    label = CATEGORY_LABELS.get(summary.category, summary.category)
    css = {"attention": "CRITICAL", "overdue": "WARNING", "snoozed": "INFO",
           "unsubscribed": "NONE", "ok": "OK"}.get(summary.category)
    if summary.category == "no-copy":
        css = {"info": "INFO", "warning": "WARNING", "critical": "CRITICAL"}[severity]
    return _badge(None, label, css or "UNKNOWN")


def _reminder_text(summary: CustomerSummary, now: datetime) -> str:
    parts = []
    if summary.last_copy_at is not None:
        parts.append(f"last copy {_when(summary.last_copy_at, now)}")
    else:
        parts.append("no copy on record")
    if summary.due_since is not None and summary.category != "ok":
        parts.append(f"due since {summary.due_since:%Y-%m-%d}")
    if summary.step:
        parts.append(f"reminder {summary.step} of {summary.max_steps} sent")
    if summary.snoozed_until is not None and summary.snoozed_until > now:
        parts.append(f"snoozed until {summary.snoozed_until:%Y-%m-%d}")
    if summary.unsubscribed_at is not None:
        parts.append(f"unsubscribed {summary.unsubscribed_at:%Y-%m-%d}")
    if summary.refused:
        parts.append("address refused by the mail server")
    if summary.uncertain and not summary.reason:
        parts.append(f"{summary.uncertain} reminder(s) of uncertain delivery")
    if summary.reason and not summary.refused:
        parts.append(escape(summary.reason))
    return "; ".join(parts)


def _link(data: StatusData, **changes: str | int) -> str:
    values: dict[str, str | int] = {"q": data.query, "state": data.state}
    values.update(changes)
    query = urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})
    return f"/status?{query}#customers" if query else "/status#customers"


def _pager(data: StatusData) -> str:
    page, pages = data.customers.page, data.customers.pages
    if pages <= 1:
        return ""
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    items = []
    if page > 1:
        items.append(f'<li><a href="{escape(_link(data, page=page - 1))}" rel="prev">'
                     "previous</a></li>")
    last = 0
    for number in shown:
        if number - last > 1:
            items.append('<li><span aria-hidden="true">…</span></li>')
        if number == page:
            items.append(f'<li><span aria-current="page">{number}</span></li>')
        else:
            items.append(f'<li><a href="{escape(_link(data, page=number))}" '
                         f'aria-label="page {number}">{number}</a></li>')
        last = number
    if page < pages:
        items.append(f'<li><a href="{escape(_link(data, page=page + 1))}" rel="next">'
                     "next</a></li>")
    return (f'<nav aria-label="customer pages"><p>page {page} of {pages}</p>'
            f'<ul class="pager">{"".join(items)}</ul></nav>')


def _customers_section(data: StatusData) -> str:
    from durability.remind.state import CATEGORIES

    page, memo, now = data.customers, data.memo, data.now
    counts = "".join(
        f'<li><a href="{escape(_link(data, state=name, page=1))}">'
        f"{escape(CATEGORY_LABELS[name])}</a>: <b>{page.counts.get(name, 0)}</b></li>"
        for name in CATEGORIES)
    options = "".join(
        f'<option value="{name}"{" selected" if name == data.state else ""}>'
        f"{escape(CATEGORY_LABELS[name])} ({page.counts.get(name, 0)})</option>"
        for name in CATEGORIES)
    form = ('<form class="filters" method="get" action="/status#customers" role="search">'
            '<label for="q">Search id, name or email'
            f'<input id="q" name="q" type="search" value="{escape(data.query)}"></label>'
            '<label for="state">State<select id="state" name="state">'
            f'<option value="">every state</option>{options}</select></label>'
            '<button type="submit">Show</button></form>')
    rows = "".join(
        f'<tr><td data-label="Customer" class="name">{escape(line.summary.id)}<br>'
        f'{escape(line.summary.name)}<br><span class="muted">{escape(line.summary.email)}'
        "</span></td>"
        f'<td data-label="Own copy">{_category_badge(line.summary, data.no_copy_severity)} '
        f"{_reminder_text(line.summary, data.now)}</td>"
        f'<td data-label="RAID mirror">{escape(line.node or "")} '
        f"{_seen_cell(line.raid, now, 'no report' if line.node else 'not placed', memo)}"
        "</td>"
        f'<td data-label="Provider snapshot">{escape(line.source or "")} '
        f"{_seen_cell(line.snapshot, now, 'not checked' if line.source else 'no source', memo)}"
        "</td></tr>"
        for line in data.lines)
    if page.total == 0:
        table = "<p>No customers imported yet.</p>"
    elif not rows:
        table = "<p>No customer matches this search.</p>"
    else:
        table = ('<table class="stack"><thead><tr><th>Customer</th><th>Own copy and reminders'
                 "</th><th>RAID mirror</th><th>Provider snapshot</th></tr></thead>"
                 f"<tbody>{rows}</tbody></table>")
    found = (f"<p>{page.matched} of {page.total} customers match.</p>"
             if data.query or data.state else "")
    return ('<section id="customers" aria-labelledby="customers-h">'
            f'<h2 id="customers-h">Customers: 3-2-1 ({page.total})</h2>'
            f'<ul class="counts">{counts}</ul>{form}{found}{table}{_pager(data)}</section>')


def _service_text(service: ActiveInstance | None) -> str:
    if service is None:
        return ""
    who = f"{escape(service.instance_name)} on {escape(service.host)}"
    if service.alive:
        return f"; active service: {who}"
    return (f'; <strong>no active service</strong> (the lease of {who} expired '
            f"{_age_text(-service.expires_in)} ago)")


def render_status_page(data: StatusData, user: str) -> str:
    """Given what the status page shows and who is looking, return the HTML page."""
    notes = "".join(f'<p class="note" role="status">{escape(note)}</p>' for note in data.notes)
    if data.query:
        panels = ('<p><a href="/status">Back to the full status</a> (RAID per node, '
                  "snapshots and restore tests)</p>")
    else:
        panels = f"{_nodes_section(data)}{_snapshots_section(data)}{_restores_section(data)}"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>durability status</title>{STYLE}</head><body>"
        "<header><h1>durability status</h1>"
        f'<form method="post" action="/status/logout"><span>{escape(user)}</span> '
        '<button type="submit">Sign out</button></form></header>'
        f'<main><p class="muted">As of {data.now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, '
        f"on {escape(data.node_name)}{_service_text(data.service)}</p>{notes}"
        f"{_overall_section(data)}{panels}{_customers_section(data)}</main></body></html>\n"
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
    query = request.args.get("q", "")[:200]
    state = request.args.get("state", "")[:40]
    data = gather_status(web.store(), web.config, web.now(), page, query, state)
    html = render_status_page(data, user)
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    return response


def to_status(request: Request, web: Web) -> Response:
    """GET /: the status page is the service's front page."""
    from werkzeug.utils import redirect

    return redirect("/status", code=302)


def routes() -> list[Rule]:
    """Return the status page routes."""
    from werkzeug.routing import Rule

    return [Rule("/status", endpoint=show_status, methods=["GET"]),
            Rule("/", endpoint=to_status, methods=["GET"])]
