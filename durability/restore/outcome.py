"""What one restore test found, timed by phase, and the pure verdict on it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from durability.model import Metric, Result, Status, isoformat_z
from durability.resticls import display
from durability.restore.verify import Mismatch
from durability.units import format_bytes, format_duration

CHECK = "restore-test"


class PhaseTimer:
    """Wall-clock seconds per phase, in the order the phases ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        # Seconds a phase ran while an earlier one did (a restore begun early).
        self.overlap = 0.0

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block and add it to the phase `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def ran_for(self, name: str, seconds: float) -> None:
        """Say phase `name` really ran `seconds`, partly beside earlier phases.

        The part before its own block began counts as overlap, so the total stays the
        wall time of the whole.
        """
        waited = self.seconds.get(name, 0.0)
        if seconds > waited:
            self.overlap += seconds - waited
            self.seconds[name] = seconds

    def total(self) -> float:
        """Return the wall seconds of all phases (overlaps counted once)."""
        return sum(self.seconds.values()) - self.overlap


@dataclass(frozen=True)
class Outcome:
    """The gathered facts of one restore test (no verdict yet).

    `failure` is why the test stopped early, with `failure_status` UNKNOWN (it could
    not start) or CRITICAL (the data is wrong). `cleanup` is "removed", "kept",
    "none" (nothing was created) or "failed: reason".
    """

    source: str
    kind: str
    mode: str = "full"
    snapshot_id: str | None = None
    snapshot_time: datetime | None = None
    files_expected: int = 0
    files_restored: int = 0
    bytes_restored: int = 0
    files_verified: int = 0
    mismatches: tuple[Mismatch, ...] = ()
    # Mismatches found beyond those listed (the list is bounded).
    mismatches_more: int = 0
    seconds: tuple[tuple[str, float], ...] = ()
    # Of the phases' seconds, those that ran beside an earlier phase.
    overlap_seconds: float = 0.0
    full_size_bytes: int | None = None
    cleanup: str = "none"
    kept_path: str | None = None
    failure: str | None = None
    failure_status: Status | None = None
    changed_since: tuple[bytes, ...] = ()
    changed_since_more: int = 0
    live_compared: int = 0
    checksum: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Findings that make the test WARNING on their own (the restore itself was sound).
    warnings: tuple[str, ...] = ()
    # Properties compared, and (property, why) for those that were not.
    verified: tuple[str, ...] = ()
    not_verified: tuple[tuple[str, str], ...] = ()
    # The restic repository's own id (`restic cat config`), where it was read.
    repository_id: str | None = None


def throughput(outcome: Outcome) -> float | None:
    """Return restored bytes per second of the restore phase, or None if not measured."""
    restore = dict(outcome.seconds).get("restore")
    if not restore or outcome.bytes_restored <= 0:
        return None
    return outcome.bytes_restored / restore


def projected_seconds(outcome: Outcome) -> float | None:
    """Return the projected seconds of a full restore of the source at the measured speed."""
    speed = throughput(outcome)
    if speed is None or outcome.full_size_bytes is None:
        return None
    return outcome.full_size_bytes / speed


def evaluate_restore(outcome: Outcome, rto_target: float | None) -> Result:
    """Given a restore test's facts and the RTO target, return its verdict.

    A test that could not start is UNKNOWN; any mismatch, missing file or read error
    is CRITICAL; a scratch folder left behind, a missing checksum or a projected full
    restore slower than the target is WARNING.
    """
    speed = throughput(outcome)
    projected = projected_seconds(outcome)
    seconds = dict(outcome.seconds)
    details: list[str] = []
    problems: list[tuple[Status, str]] = []
    if outcome.failure:
        problems.append((outcome.failure_status or Status.UNKNOWN, outcome.failure))
    mismatch_total = len(outcome.mismatches) + outcome.mismatches_more
    if outcome.mismatches:
        first = outcome.mismatches[0]
        plural = "es" if mismatch_total > 1 else ""
        text = f"{mismatch_total} mismatch{plural}: {first.shown} {first.problem}"
        problems.append((Status.CRITICAL, text))
        details.extend(f"mismatch: {m.shown}: {m.problem}" for m in outcome.mismatches[:50])
        if mismatch_total > 50:
            details.append(f"... and {mismatch_total - 50} more mismatch(es)")
    if outcome.failure is None and outcome.kind == "restic" and outcome.files_expected == 0:
        what = "holds no files" if outcome.mode == "full" else "has no files to sample"
        problems.append((Status.WARNING, f"the snapshot {what}: nothing was proven restorable"))
    problems.extend((Status.WARNING, warning) for warning in outcome.warnings)
    if outcome.cleanup.startswith("failed"):
        problems.append((Status.WARNING, f"scratch folder left behind: {outcome.cleanup}"))
    if outcome.kind == "s3" and outcome.failure is None and outcome.checksum is None:
        problems.append((Status.WARNING, "downloaded, but no stored checksum to verify against"))
    if (
        outcome.failure is None
        and rto_target is not None
        and projected is not None
        and projected > rto_target
    ):
        problems.append(
            (
                Status.WARNING,
                f"projected full restore {format_duration(projected)} exceeds the RTO "
                f"target {format_duration(rto_target)}",
            )
        )
    if outcome.changed_since:
        details.append(
            f"{len(outcome.changed_since) + outcome.changed_since_more} live file(s) changed "
            "since the snapshot (not compared): "
            + ", ".join(display(p) for p in outcome.changed_since[:5])
        )
    if outcome.live_compared:
        details.append(f"{outcome.live_compared} file(s) identical to the live files")
    if outcome.checksum:
        details.append(f"verified against {outcome.checksum}")
    if outcome.kept_path:
        details.append(f"restored tree kept at {outcome.kept_path}")
    details.extend(outcome.notes)
    unchecked = "; ".join(f"{name} ({why})" for name, why in outcome.not_verified)
    if unchecked:
        details.append(f"not verified: {unchecked}")
    timing = ", ".join(f"{name} {value:.1f}s" for name, value in outcome.seconds)
    if timing:
        details.append(f"phases: {timing}")

    status = max((p[0] for p in problems), key=lambda s: s.rank, default=Status.OK)
    if problems:
        worst = [text for level, text in problems if level is status]
        summary = worst[0]
        if outcome.snapshot_id:
            summary = f"snapshot {outcome.snapshot_id[:8]}: {summary}"
        if len(problems) > 1:
            summary += f" (+{len(problems) - 1} more)"
    else:
        summary = _ok_summary(outcome, speed, projected)
    if outcome.not_verified and outcome.failure is None:
        summary += "; not verified: " + ", ".join(name for name, _why in outcome.not_verified)
    if outcome.kept_path and status is not Status.OK:
        summary += f"; kept at {outcome.kept_path}"
    data = {
        "source": outcome.source,
        "kind": outcome.kind,
        "mode": outcome.mode,
        "snapshot_id": outcome.snapshot_id,
        "repository_id": outcome.repository_id,
        "snapshot_time": isoformat_z(outcome.snapshot_time) if outcome.snapshot_time else None,
        "files_expected": outcome.files_expected,
        "files_restored": outcome.files_restored,
        "bytes_restored": outcome.bytes_restored,
        "files_verified": outcome.files_verified,
        "mismatches": [m.as_dict() for m in outcome.mismatches],
        "mismatches_total": mismatch_total,
        "seconds": {**{name: round(value, 3) for name, value in outcome.seconds},
                    "total": round(sum(seconds.values()) - outcome.overlap_seconds, 3)},
        "bytes_per_second": round(speed, 1) if speed is not None else None,
        "full_size_bytes": outcome.full_size_bytes,
        "projected_full_restore_seconds": round(projected, 1) if projected is not None else None,
        "rto_target_seconds": rto_target,
        "cleanup": outcome.cleanup,
        "kept_path": outcome.kept_path,
        "changed_since_snapshot": [display(p) for p in outcome.changed_since],
        "changed_since_total": len(outcome.changed_since) + outcome.changed_since_more,
        "live_files_compared": outcome.live_compared,
        "checksum": outcome.checksum,
        "failure": outcome.failure,
        "verified": list(outcome.verified),
        "not_verified": [name for name, _why in outcome.not_verified],
        "not_verified_reasons": dict(outcome.not_verified),
    }
    return Result(
        check=CHECK,
        target=outcome.source,
        status=status,
        summary=summary,
        details=tuple(details),
        data=data,
        metrics=_metrics(outcome, speed, projected, rto_target),
    )


def _ok_summary(outcome: Outcome, speed: float | None, projected: float | None) -> str:
    what = "sample of " if outcome.mode == "sample" else ""
    text = (
        f"snapshot {(outcome.snapshot_id or '?')[:8]} restored and verified: "
        f"{what}{outcome.files_verified} files, {format_bytes(outcome.bytes_restored)}"
    )
    if speed is not None:
        text += f" at {format_bytes(speed)}/s"
    if projected is not None:
        text += f"; full restore ~{format_duration(projected)}"
    return text


def _metrics(
    outcome: Outcome, speed: float | None, projected: float | None, rto: float | None
) -> tuple[Metric, ...]:
    metrics = [
        Metric(
            "restore_phase_seconds", value, help="Seconds of each phase of the last restore test.",
            labels={"phase": name}, uom="s", perfdata=False,
        )
        for name, value in outcome.seconds
    ]
    metrics.append(
        Metric("restore_duration_seconds", sum(v for _, v in outcome.seconds),
               help="Seconds of the whole restore test.", uom="s")
    )
    metrics.append(
        Metric("restore_bytes", float(outcome.bytes_restored),
               help="Bytes restored by the last restore test.", uom="B")
    )
    metrics.append(
        Metric("restore_mismatches_count",
               float(len(outcome.mismatches) + outcome.mismatches_more),
               help="Files that came back wrong or missing.", uom="", crit="0")
    )
    if speed is not None:
        metrics.append(
            Metric("restore_throughput_bytes_per_second", speed,
                   help="Restore speed of the last restore test.", uom="")
        )
    if projected is not None:
        metrics.append(
            Metric("restore_projected_full_seconds", projected,
                   help="Projected seconds to restore the whole source.", uom="s",
                   warn=f"{rto:g}" if rto is not None else None)
        )
    return tuple(metrics)
