"""The SPEC rules, pure: records, policy and now in, verdicts out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from durability.config.snapshots import SnapshotSettings, SourceSettings
from durability.model import Status
from durability.snapshots.evaluate import (
    Policy,
    evaluate_failure,
    evaluate_listing,
    evaluate_set,
    resolve_policy,
)
from durability.snapshots.records import BackupSet, Listing, Snapshot

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR = 3600.0


def snap(hours_ago: float, size: int | None = 100, **kwargs: object) -> Snapshot:
    return Snapshot(id=f"s{hours_ago}", time=NOW - timedelta(hours=hours_ago),
                    size_bytes=size, **kwargs)  # type: ignore[arg-type]


def one(*snapshots: Snapshot, incomplete: tuple[Snapshot, ...] = (), policy: Policy | None = None,
        listing: Listing | None = None):  # type: ignore[no-untyped-def]
    backup_set = BackupSet("web1", tuple(snapshots), len(snapshots), incomplete)
    listing = listing or Listing("src", "s3", {"web1": backup_set})
    return evaluate_set("src", backup_set, listing, policy or Policy(), NOW)


def test_evaluate_set_fresh_is_ok_with_data() -> None:
    result = one(snap(30), snap(2, size=150))
    assert result.status is Status.OK
    assert result.target == "src/web1"
    assert result.data["source"] == "src"
    assert result.data["count"] == 2
    assert result.data["age_seconds"] == 2 * HOUR
    assert result.data["newest_size_bytes"] == 150
    assert result.data["previous_size_bytes"] == 100
    assert result.data["newest_at"] == "2026-11-25T10:00:00Z"
    assert {m.name for m in result.metrics} == {
        "snapshot_age_seconds", "snapshot_count", "snapshot_newest_size_bytes"
    }


def test_evaluate_set_within_grace_is_warning() -> None:
    result = one(snap(27))  # max_age 26h, grace 6.5h
    assert result.status is Status.WARNING
    assert "late" in result.summary


def test_evaluate_set_beyond_grace_is_critical() -> None:
    result = one(snap(33))
    assert result.status is Status.CRITICAL
    assert "stale" in result.summary


def test_evaluate_set_no_snapshot_is_critical() -> None:
    result = one()
    assert result.status is Status.CRITICAL
    assert result.summary == "no snapshot at all"


def test_evaluate_set_only_failed_and_pending_is_critical() -> None:
    pending = snap(1, complete=False, state="pending", progress=0.4)
    failed = snap(3, complete=False, state="error")
    result = one(incomplete=(failed, pending))
    assert result.status is Status.CRITICAL
    assert "only incomplete snapshots (1 error, 1 pending)" in result.summary


def test_evaluate_set_failed_after_fresh_complete_is_ok_with_detail() -> None:
    result = one(snap(5), incomplete=(snap(1, complete=False, state="error"),))
    assert result.status is Status.OK
    assert any("latest attempt error" in d for d in result.details)


def test_evaluate_set_shrunk_beyond_limit_is_warning() -> None:
    result = one(snap(25, size=1000), snap(1, size=600), policy=Policy(max_shrink=0.3))
    assert result.status is Status.WARNING
    assert "shrank 40%" in result.summary
    assert result.data["shrink_ratio"] == 0.4


def test_evaluate_set_shrunk_within_limit_is_ok() -> None:
    result = one(snap(25, size=1000), snap(1, size=800), policy=Policy(max_shrink=0.3))
    assert result.status is Status.OK


def test_evaluate_set_shrink_off_ignores_shrink() -> None:
    assert one(snap(25, size=1000), snap(1, size=1),
               policy=Policy(max_shrink=None)).status is Status.OK


def test_evaluate_set_default_policy_shrink_beyond_half_is_warning() -> None:
    result = one(snap(25, size=1000), snap(1, size=400))
    assert result.status is Status.WARNING
    assert "shrank 60% (1000 B -> 400 B), limit 50%" in result.summary


def test_evaluate_set_collapse_to_no_data_is_warning_even_with_shrink_off() -> None:
    result = one(snap(25, size=1000), snap(1, size=0), policy=Policy(max_shrink=None))
    assert result.status is Status.WARNING
    assert result.summary == "newest snapshot holds no data (previous 1000 B)"


def test_resolve_policy_defaults_max_shrink_half_and_off_turns_it_off() -> None:
    defaults = SnapshotSettings()
    source = SourceSettings(name="a", kind="restic")
    assert resolve_policy(source, defaults).max_shrink == 0.5
    off = SourceSettings(name="a", kind="restic", max_shrink=float("inf"))
    assert resolve_policy(off, defaults).max_shrink is None


def test_evaluate_set_fewer_than_min_count_is_warning() -> None:
    result = one(snap(1), policy=Policy(min_count=3))
    assert result.status is Status.WARNING
    assert "only 1 snapshot, at least 3 wanted" in result.summary


def test_evaluate_set_future_snapshot_is_warning_and_not_fresh() -> None:
    result = one(snap(40), snap(-1))
    assert result.status is Status.CRITICAL  # the only real one is stale
    assert any("dated in the future" in d for d in result.details)
    assert result.data["count"] == 1


def test_evaluate_set_future_within_tolerance_counts() -> None:
    result = one(Snapshot("x", NOW + timedelta(minutes=4)))
    assert result.status is Status.OK


def test_evaluate_set_only_future_snapshot_is_critical() -> None:
    result = one(snap(-2))
    assert result.status is Status.CRITICAL
    assert "dated in the future" in result.summary


def test_evaluate_set_unencrypted_when_required_is_warning() -> None:
    result = one(snap(1, encrypted=False), policy=Policy(require_encrypted=True))
    assert result.status is Status.WARNING
    assert "not encrypted" in result.summary


def test_evaluate_set_encryption_unknown_when_required_is_warning() -> None:
    result = one(snap(1), policy=Policy(require_encrypted=True))
    assert result.status is Status.WARNING
    assert "cannot confirm encryption" in result.summary


def test_evaluate_set_mutable_when_required_is_warning() -> None:
    backup_set = BackupSet("", (snap(1),), 1)
    listing = Listing("src", "s3", {"": backup_set}, immutable=False,
                      immutable_detail="no Object Lock")
    result = evaluate_set("src", backup_set, listing, Policy(require_immutable=True), NOW)
    assert result.status is Status.WARNING
    assert result.target == "src"
    assert "not immutable: no Object Lock" in result.summary


def test_evaluate_listing_vanished_set_is_critical() -> None:
    listing = Listing("src", "restic", {"a": BackupSet("a", (snap(1),), 1)})
    results = evaluate_listing(listing, Policy(), NOW, known_sets={"a", "b"})
    by_target = {r.target: r.status for r in results}
    assert by_target == {"src/a": Status.OK, "src/b": Status.CRITICAL}


def test_evaluate_listing_empty_source_is_critical() -> None:
    [result] = evaluate_listing(Listing("src", "s3", {}), Policy(), NOW)
    assert result.status is Status.CRITICAL
    assert result.target == "src"


def test_evaluate_listing_stale_lock_is_warning() -> None:
    listing = Listing("src", "restic", {"a": BackupSet("a", (snap(1),), 1)},
                      problems=("stale exclusive lock",))
    results = evaluate_listing(listing, Policy(), NOW)
    assert [(r.target, r.status) for r in results] == [
        ("src/a", Status.OK), ("src/locks", Status.WARNING)
    ]


def test_evaluate_failure_is_unknown_naming_cause() -> None:
    result = evaluate_failure("src", "s3", "bucket does not exist")
    assert result.status is Status.UNKNOWN
    assert "bucket does not exist" in result.summary


def test_resolve_policy_defaults_and_overrides() -> None:
    defaults = SnapshotSettings(max_age=8 * HOUR, min_count=2)
    policy = resolve_policy(SourceSettings(name="a", kind="s3"), defaults)
    assert policy == Policy(max_age=8 * HOUR, grace=2 * HOUR, min_count=2)
    own = resolve_policy(SourceSettings(name="a", kind="s3", max_age=HOUR, grace=60.0,
                                        require_immutable=True), defaults)
    assert (own.max_age, own.grace, own.require_immutable) == (HOUR, 60.0, True)
