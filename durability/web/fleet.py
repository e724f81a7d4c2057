"""The fleet endpoint: nodes POST their reports here, each with its own token.

`POST /fleet/report` with `Authorization: Bearer TOKEN` and the JSON body of
`durability.fleet.fleet_payload`. The token names the node: `durability nodes add NODE`
keeps its SHA-256 in the state store (and `status.node_tokens_file`, with
`NODE:SHA256-OF-TOKEN` lines, is still read), so this server never keeps the tokens
themselves; a body claiming another node is refused. A valid report replaces that
node's latest results of that check (a late, older report only goes to the history);
a report dated in the future is taken as of its arrival, so it never hides later ones.
Nothing is recorded from a refused or malformed request.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from durability.errors import ConfigError
from durability.model import Report, Result, Status, isoformat_z
from durability.web.accounts import token_hash

if TYPE_CHECKING:
    from werkzeug.routing import Rule
    from werkzeug.wrappers import Request, Response

    from durability.state.store import Store
    from durability.web.app import Web

MAX_BODY_BYTES = 2 * 1024 * 1024
_STATUSES = {status.name for status in Status}

MIGRATIONS = (
    """
    CREATE TABLE fleet_latest (
        node TEXT NOT NULL,
        check_name TEXT NOT NULL,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL,
        checked_at TEXT NOT NULL,
        received_at TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (node, check_name, target)
    );
    CREATE INDEX fleet_latest_check ON fleet_latest (check_name, node);
    CREATE TABLE fleet_runs (
        id {id},
        node TEXT NOT NULL,
        check_name TEXT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL,
        checked_at TEXT NOT NULL,
        received_at TEXT NOT NULL
    );
    CREATE INDEX fleet_runs_node_time ON fleet_runs (node, check_name, checked_at);
    """,
)


class PayloadError(ValueError):
    """A fleet report body that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class NodeReport:
    """One node's report as received."""

    node: str
    report: Report


__all__ = ["MIGRATIONS", "parse_payload", "record_node_report", "token_hash"]


def parse_node_tokens(text: str, source: str = "node tokens file") -> dict[str, str]:
    """Given 'NODE:SHA256' lines ('#' comments allowed), return {node: sha256-hex}.

    Raise ConfigError naming the first malformed line.
    """
    nodes: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        node, sep, digest = line.rpartition(":")
        digest = digest.lower()
        if not sep or not node or len(digest) != 64 or any(c not in "0123456789abcdef"
                                                          for c in digest):
            raise ConfigError(
                [f"At 'status.node_tokens_file': line {number}: expected NODE:SHA256-HEX"],
                source,
            )
        nodes[node] = digest
    return nodes


def read_node_tokens(path: str | None) -> dict[str, str]:
    """Given `status.node_tokens_file`, return its nodes ({} if unset). Raise ConfigError."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_node_tokens(handle.read(), path)
    except OSError as error:
        raise ConfigError(
            [f"At 'status.node_tokens_file': cannot read {path}: {error.strerror}"]
        ) from error


def node_for_token(nodes: Mapping[str, str], token: str) -> str | None:
    """Given the known nodes and a presented token, return the node it belongs to."""
    presented = token_hash(token)
    found = None
    for node, digest in nodes.items():
        if hmac.compare_digest(digest, presented):
            found = node
    return found


def _parse_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected an ISO-8601 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise PayloadError(f"{where}: not an ISO-8601 time: {value[:40]!r}") from error
    if moment.tzinfo is None:
        raise PayloadError(f"{where}: the time must carry a timezone")
    try:
        return moment.astimezone(UTC)
    except OverflowError as error:  # year 1 or 9999 moved past the calendar's end
        raise PayloadError(f"{where}: out of range: {value[:40]!r}") from error


def _text(value: Any, where: str, limit: int = 2000) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise PayloadError(f"{where}: expected a non-empty string of at most {limit} characters")
    return value


def parse_payload(body: bytes) -> NodeReport:
    """Given a request body, return the node's report. Raise PayloadError saying why not."""
    from durability.web.app import load_json

    try:
        document = load_json(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise PayloadError(f"body is not JSON: {error}") from error
    if not isinstance(document, dict) or document.get("schema_version") != 1:
        raise PayloadError("expected a JSON object with schema_version 1")
    node = _text(document.get("node"), "node", 200)
    raw = document.get("report")
    if not isinstance(raw, dict):
        raise PayloadError("report: expected an object")
    check = _text(raw.get("check"), "report.check", 100)
    checked_at = _parse_time(raw.get("checked_at"), "report.checked_at")
    items = raw.get("results")
    if not isinstance(items, list) or len(items) > 10_000:
        raise PayloadError("report.results: expected a list (at most 10000)")
    results = []
    for index, item in enumerate(items):
        where = f"report.results[{index}]"
        if not isinstance(item, dict):
            raise PayloadError(f"{where}: expected an object")
        status = item.get("status")
        if status not in _STATUSES:
            raise PayloadError(f"{where}.status: expected one of {sorted(_STATUSES)}")
        data = item.get("data", {})
        if not isinstance(data, dict):
            raise PayloadError(f"{where}.data: expected an object")
        results.append(Result(
            check=_text(item.get("check", check), f"{where}.check", 100),
            target=_text(item.get("target"), f"{where}.target", 500),
            status=Status[status],
            summary=_text(item.get("summary"), f"{where}.summary"),
            data=data,
        ))
    summary = raw.get("summary")
    override = summary if isinstance(summary, str) and not results else None
    report = Report(check=check, checked_at=checked_at, results=tuple(results),
                    summary_override=override)
    return NodeReport(node, report)


def record_node_report(store: Store, received: NodeReport, now: datetime) -> bool:
    """Record a node's report in one transaction; return True if it became the latest.

    A report with no results (no md arrays) is kept as one result for the check itself.
    A report dated after `now` is taken as of `now`.
    """
    from durability.service.scheduler import recordable

    store.migrate("fleet", MIGRATIONS)
    report = recordable(received.report)
    if report.checked_at > now:
        report = dataclasses.replace(report, checked_at=now)
    when, seen = isoformat_z(report.checked_at), isoformat_z(now)
    with store.transaction():
        store.execute(
            "INSERT INTO fleet_runs (node, check_name, status, summary, checked_at,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?)",
            (received.node, report.check, report.status.name, report.summary[:2000], when,
             seen),
        )
        # A future date kept before this rule counts as its arrival time.
        newest = store.query_one(
            "SELECT MAX(CASE WHEN checked_at > received_at THEN received_at"
            " ELSE checked_at END) FROM fleet_latest WHERE node = ? AND check_name = ?",
            (received.node, report.check),
        )
        if newest and newest[0] and newest[0] > when:
            return False
        store.execute("DELETE FROM fleet_latest WHERE node = ? AND check_name = ?",
                      (received.node, report.check))
        rows: dict[str, Sequence[Any]] = {}
        ranks: dict[str, int] = {}
        for result in report.results:
            # A target named twice keeps its worst result: a later OK never hides it.
            if ranks.get(result.target, -1) >= result.status.rank:
                continue
            ranks[result.target] = result.status.rank
            rows[result.target] = (
                received.node, report.check, result.target, result.status.name,
                result.summary, when, seen, json.dumps(result.data, sort_keys=True, default=str),
            )
        store.executemany(
            "INSERT INTO fleet_latest (node, check_name, target, status, summary, checked_at,"
            " received_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            list(rows.values()),
        )
    return True


def _json(status: int, document: Mapping[str, Any]) -> Response:
    from werkzeug.wrappers import Response

    return Response(json.dumps(document) + "\n", status=status,
                    content_type="application/json")


def receive_report(request: Request, web: Web) -> Response:
    """POST /fleet/report: check the node's token, then record its report."""
    from durability.web.accounts import node_digests, removed_nodes

    try:
        nodes = read_node_tokens(web.config.status.node_tokens_file)
    except ConfigError as error:
        return _json(503, {"error": "; ".join(error.problems)})
    removed = removed_nodes(web.store())
    nodes = {**{node: digest for node, digest in nodes.items() if node not in removed},
             **node_digests(web.store())}
    if not nodes:
        return _json(503, {"error": "no node may report yet (durability nodes add NODE)"})
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        response = _json(401, {"error": "missing node token (Authorization: Bearer TOKEN)"})
        response.headers["WWW-Authenticate"] = 'Bearer realm="durability fleet"'
        return response
    node = node_for_token(nodes, token.strip())
    if node is None:
        return _json(403, {"error": "node token not accepted"})
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _json(413, {"error": f"report larger than {MAX_BODY_BYTES} bytes"})
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY_BYTES:
        return _json(413, {"error": f"report larger than {MAX_BODY_BYTES} bytes"})
    try:
        received = parse_payload(body)
    except PayloadError as error:
        return _json(400, {"error": str(error)})
    if received.node != node:
        return _json(403, {"error": f"this token belongs to node {node!r}, "
                                    f"not {received.node!r}"})
    latest = record_node_report(web.store(), received, web.now())
    return _json(200, {"status": "recorded", "node": node, "check": received.report.check,
                       "latest": latest})


def routes() -> list[Rule]:
    """Return the fleet endpoint."""
    from werkzeug.routing import Rule

    return [Rule("/fleet/report", endpoint=receive_report, methods=["POST"])]


def main() -> None:
    """Point to the command that makes node tokens now."""
    import sys

    sys.stderr.write("make a node token with: durability nodes add NODE\n")
    raise SystemExit(3)


if __name__ == "__main__":
    main()


# -- what the nodes reported, for the status page (reads only) -----------------------------

@dataclass(frozen=True)
class TargetLatest:
    """One target (an array) of a node's latest report of a check."""

    target: str
    status: Status
    summary: str


@dataclass(frozen=True)
class NodeLatest:
    """A node's latest report of one check, as recorded."""

    node: str
    checked_at: datetime
    received_at: datetime
    targets: tuple[TargetLatest, ...]


def _fleet_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def latest(store: Store, check: str = "raid") -> list[NodeLatest]:
    """Return every node's latest report of `check`, by node name ([] before any report)."""
    if not store.is_current("fleet", MIGRATIONS):
        return []
    by_node: dict[str, list[tuple[Any, ...]]] = {}
    for row in store.query(
        "SELECT node, target, status, summary, checked_at, received_at FROM fleet_latest"
        " WHERE check_name = ? ORDER BY node, target", (check,)
    ):
        by_node.setdefault(row[0], []).append(row)
    nodes = []
    statuses = Status.__members__
    for node, rows in by_node.items():
        # ISO-8601 Z times sort as times do: parse only each node's newest.
        nodes.append(NodeLatest(
            node, _fleet_time(max(r[4] for r in rows)), _fleet_time(max(r[5] for r in rows)),
            tuple(TargetLatest(r[1], statuses.get(r[2], Status.UNKNOWN), r[3])
                  for r in rows)))
    return nodes


def daily_worst(store: Store, nodes: Sequence[str], since: datetime,
                check: str = "raid") -> dict[str, list[tuple[str, Status]]]:
    """Return each named node's worst reported status per UTC day since `since`."""
    if not nodes or not store.is_current("fleet", MIGRATIONS):
        return {}
    found: dict[str, dict[str, Status]] = {}
    wanted = list(dict.fromkeys(nodes))
    for start in range(0, len(wanted), 200):
        chunk = wanted[start:start + 200]
        marks = ", ".join("?" for _ in chunk)
        for node, day, status, _ in store.query(
            "SELECT node, substr(checked_at, 1, 10), status, COUNT(*) FROM fleet_runs"
            f" WHERE node IN ({marks}) AND check_name = ? AND checked_at >= ?"
            " GROUP BY node, substr(checked_at, 1, 10), status ORDER BY node",
            (*chunk, check, isoformat_z(since)),
        ):
            days = found.setdefault(node, {})
            seen = Status.__members__.get(status, Status.UNKNOWN)
            if day not in days or seen.rank > days[day].rank:
                days[day] = seen
    return {node: sorted(days.items()) for node, days in found.items()}
