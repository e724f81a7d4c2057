"""Render one `Report` as text, JSON (schema 1), Nagios or Prometheus textfile.

Each renderer is pure: report in, string out. Writing files (atomically for the
Prometheus textfile collector) is `write_output`'s job.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Callable

from durability.model import Metric, Report, isoformat_z

TYPE_CHECKING = False  # typing costs the cron job more than the check
if TYPE_CHECKING:
    from typing import Any

FORMATS = ("text", "json", "nagios", "prometheus")
SCHEMA_VERSION = 1


def render(report: Report, fmt: str) -> str:
    """Given a report and a format name, return the rendered text."""
    renderers: dict[str, Callable[[Report], str]] = {
        "text": render_text,
        "json": render_json,
        "nagios": render_nagios,
        "prometheus": render_prometheus,
    }
    return renderers[fmt](report)


def render_text(report: Report) -> str:
    """Return a human-readable report: a status line, then one block per result."""
    lines = [f"{report.status.name}: {_flat(report.summary)}"]
    for result in report.results:
        lines.append(f"  [{result.status.name}] {result.target}: {_flat(result.summary)}")
        lines.extend(f"      {_flat(detail)}" for detail in result.details)
    lines.extend(f"  note: {_flat(note)}" for note in report.notes)
    return "\n".join(lines) + "\n"


def report_to_dict(report: Report) -> dict[str, Any]:
    """Return the JSON schema 1 document of a report as plain data."""
    return {
        "schema_version": SCHEMA_VERSION,
        "check": report.check,
        "status": report.status.name,
        "exit_code": report.exit_code,
        "checked_at": isoformat_z(report.checked_at),
        "summary": report.summary,
        "notes": list(report.notes),
        "results": [
            {
                "check": r.check,
                "target": r.target,
                "status": r.status.name,
                "summary": r.summary,
                "details": list(r.details),
                "data": r.data,
                "metrics": {_metric_key(m): _json_number(m.value) for m in r.metrics},
            }
            for r in report.results
        ],
    }


def _metric_key(metric: Metric) -> str:
    if not metric.labels:
        return metric.name
    labels = ",".join(f"{k}={v}" for k, v in sorted(metric.labels.items()))
    return f"{metric.name}{{{labels}}}"


def _json_number(value: float) -> float | int | None:
    if math.isnan(value) or math.isinf(value):
        return None
    return int(value) if float(value).is_integer() else value


def render_json(report: Report) -> str:
    """Return the JSON document (schema version 1), one object, newline-terminated."""
    return json.dumps(report_to_dict(report), indent=2, sort_keys=False, default=str) + "\n"


_NAGIOS_LABEL = re.compile(r"[^A-Za-z0-9_.:/-]+")


def _performance_class() -> Any:
    """Return `nagiosplugin.Performance` without importing the whole package.

    `import nagiosplugin` pulls in its runtime, logging and tempfile machinery, which
    costs the cron job more than the rest of the check; the Performance class lives in
    a module of its own that needs none of it.
    """
    import importlib.util
    import sys

    name = "nagiosplugin.performance"
    if name in sys.modules:
        return sys.modules[name].Performance
    package_spec = importlib.util.find_spec("nagiosplugin")
    if package_spec is None or not package_spec.submodule_search_locations:
        raise ImportError("nagiosplugin is not installed")
    location = os.path.join(next(iter(package_spec.submodule_search_locations)), "performance.py")
    spec = importlib.util.spec_from_file_location(name, location)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {location}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Performance


def render_nagios(report: Report) -> str:
    """Return Nagios plugin output: status line with perfdata, then long output."""
    performance = _performance_class()
    perfdata: list[str] = []
    for result in report.results:
        for metric in result.metrics:
            if not metric.perfdata or math.isnan(metric.value):
                continue
            suffix = "".join(f"_{v}" for _, v in sorted(metric.labels.items()))
            label = _NAGIOS_LABEL.sub("_", f"{result.target}_{metric.name}{suffix}")
            perfdata.append(
                str(
                    performance(
                        label,
                        _json_number(float(f"{metric.value:.6g}")),
                        metric.uom,
                        metric.warn,
                        metric.crit,
                        metric.minimum,
                        metric.maximum,
                    )
                )
            )
    first = f"DURABILITY {report.status.name} - {_one_line(report.summary)}"
    if perfdata:
        first += " | " + " ".join(perfdata)
    lines = [first]
    for result in report.results:
        lines.append(_one_line(f"{result.status.name}: {result.target}: {result.summary}"))
        lines.extend(f"  {_one_line(detail)}" for detail in result.details)
    lines.extend(f"note: {_one_line(note)}" for note in report.notes)
    return "\n".join(lines) + "\n"


# Control characters, C1 controls, U+FFFD (a byte the input could not decode) and the
# other non-characters an input may carry: never shown as they are.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd\ufeff\u2028\u2029\ud800-\udfff]")


def _printable(text: str) -> str:
    return _UNPRINTABLE.sub("?", text)


def _flat(text: str) -> str:
    return " ".join(_printable(text).split())


def _one_line(text: str) -> str:
    # A "|" would start perfdata in the Nagios parser, Nagios rewrites ";" to ":", and
    # newlines would split the line.
    return " ".join(_printable(text).replace("|", "/").replace(";", ",").split())


def render_prometheus(report: Report) -> str:
    """Return the Prometheus text exposition of a report, built with prometheus_client."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    status = Gauge(
        "durability_check_status",
        "Check status as a Nagios code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        ["check", "target"],
        registry=registry,
    )
    last_run = Gauge(
        "durability_last_run_timestamp_seconds",
        "Unix time of the last run of a check.",
        ["check"],
        registry=registry,
    )
    checks = {r.check for r in report.results} or {report.check}
    for check in sorted(checks):
        last_run.labels(check=check).set(report.checked_at.timestamp())
    for result in report.results:
        status.labels(check=result.check, target=result.target).set(int(result.status))
    if not report.results:
        # A check with nothing to judge (a node without arrays) still says it ran, so
        # that `absent(durability_check_status)` means "not run".
        status.labels(check=report.check, target=report.check).set(int(report.status))

    # Every sample of one metric name must carry the same label names.
    label_names: dict[str, set[str]] = {}
    helps: dict[str, str] = {}
    for result in report.results:
        for metric in result.metrics:
            label_names.setdefault(metric.name, set()).update(metric.labels)
            helps.setdefault(metric.name, metric.help or metric.name.replace("_", " "))
    gauges = {
        name: Gauge(
            f"durability_{name}",
            helps[name],
            ["check", "target", *sorted(names)],
            registry=registry,
        )
        for name, names in label_names.items()
    }
    for result in report.results:
        for metric in result.metrics:
            extra = {k: metric.labels.get(k, "") for k in sorted(label_names[metric.name])}
            gauges[metric.name].labels(check=result.check, target=result.target, **extra).set(
                metric.value
            )
    return generate_latest(registry).decode("utf-8")


def write_output(text: str, path: str) -> None:
    """Write text to path atomically: a temporary file in the same folder, then rename.

    The Prometheus textfile collector may read at any moment; it must never see half a
    file. The file is mode 0640, in the group of its folder. Raise OSError if the folder
    is not writable.
    """
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".durability-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # Not for other users: readable by the owner and the textfile folder's group
        # (node_exporter's group when the folder is its own).
        with contextlib.suppress(OSError):
            os.chown(tmp, -1, os.stat(folder).st_gid)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise

