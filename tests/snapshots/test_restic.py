"""The restic wrapper against Debian's real restic, and fake newer exit codes."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from durability.restic import (
    Restic,
    ResticError,
    classify_error,
    parse_snapshots,
    parse_time,
    parse_version,
)
from tests.conftest import ResticBinary
from tests.snapshots.conftest import ResticRepo


def wrapper(repo: ResticRepo, **kwargs: object) -> Restic:
    return Restic(repo.repository, str(repo.password_file),
                  cache_dir=repo.env["RESTIC_CACHE_DIR"], **kwargs)  # type: ignore[arg-type]


def test_version_real_restic_returns_three_numbers(restic_repo: ResticRepo) -> None:
    version = wrapper(restic_repo).version()
    assert version >= (0, 14, 0)
    assert len(version) == 3


def test_snapshots_real_repository_returns_sorted_snapshots(restic_repo: ResticRepo) -> None:
    restic_repo.backup("2026-11-20 10:00:00", tags=("daily",))
    restic_repo.backup("2026-11-18 10:00:00", host="db1", folder="db")
    snaps = wrapper(restic_repo).snapshots()
    assert [s.time for s in snaps] == [
        datetime(2026, 11, 18, 10, tzinfo=UTC), datetime(2026, 11, 20, 10, tzinfo=UTC)
    ]
    assert snaps[1].hostname == "web1"
    assert snaps[1].tags == ("daily",)
    assert snaps[1].paths[0].endswith("/www")


def test_stats_restore_size_real_repository_counts_bytes(restic_repo: ResticRepo) -> None:
    restic_repo.backup("2026-11-20 10:00:00", size=4321)
    restic = wrapper(restic_repo)
    snap = restic.snapshots()[0]
    assert restic.stats(snap.id).total_size == 4321


def test_stats_unknown_snapshot_raises_not_found(restic_repo: ResticRepo) -> None:
    restic_repo.backup("2026-11-20 10:00:00")
    with pytest.raises(ResticError) as caught:
        wrapper(restic_repo).stats("deadbeef")
    assert caught.value.kind == "not-found"


def test_snapshots_wrong_password_raises_wrong_password(
    restic_repo: ResticRepo, tmp_path: Path
) -> None:
    bad = tmp_path / "bad-password"
    bad.write_text("not the password\n")
    with pytest.raises(ResticError) as caught:
        Restic(restic_repo.repository, str(bad)).snapshots()
    assert caught.value.kind == "wrong-password"
    assert "password" in str(caught.value)
    assert "not the password" not in str(caught.value)


def test_snapshots_missing_repository_raises_no_repository(
    restic_repo: ResticRepo, tmp_path: Path
) -> None:
    with pytest.raises(ResticError) as caught:
        Restic(str(tmp_path / "nowhere"), str(restic_repo.password_file)).snapshots()
    assert caught.value.kind == "no-repository"


def test_snapshots_missing_binary_raises_other(restic_repo: ResticRepo) -> None:
    with pytest.raises(ResticError) as caught:
        wrapper(restic_repo, binary="/nonexistent/restic").snapshots()
    assert caught.value.kind == "other"
    assert "not found" in str(caught.value)


@pytest.mark.slow
def test_run_locked_repository_raises_locked_and_locks_names_holder(
    restic_repo: ResticRepo,
) -> None:
    restic_repo.stale_exclusive_lock()
    restic = wrapper(restic_repo)
    with pytest.raises(ResticError) as caught:
        restic.snapshots(no_lock=False)
    assert caught.value.kind == "locked"
    assert "locked exclusively by PID" in str(caught.value)
    # Reading without a lock still works, and the lock is reported with its holder.
    assert restic.snapshots() != []
    [lock] = restic.locks()
    assert lock.exclusive
    assert lock.pid is not None and lock.hostname


def _exit_code(binary: ResticBinary, newer: int) -> int:
    """restic 0.14 exits 1 for every failure; 0.17 and newer have their own codes."""
    return 1 if binary.version == "0.14" else newer


def test_real_restic_wrong_password_exit_code_and_kind(
    restic_repo: ResticRepo, restic_binary: ResticBinary, tmp_path: Path
) -> None:
    bad = tmp_path / "bad-password"
    bad.write_text("not the password\n")
    with pytest.raises(ResticError) as caught:
        Restic(restic_repo.repository, str(bad)).snapshots()
    assert (caught.value.kind, caught.value.returncode) == (
        "wrong-password", _exit_code(restic_binary, 12)
    )


def test_real_restic_no_repository_exit_code_and_kind(
    restic_repo: ResticRepo, restic_binary: ResticBinary, tmp_path: Path
) -> None:
    with pytest.raises(ResticError) as caught:
        Restic(str(tmp_path / "nowhere"), str(restic_repo.password_file)).snapshots()
    assert (caught.value.kind, caught.value.returncode) == (
        "no-repository", _exit_code(restic_binary, 10)
    )
    assert "no restic repository at this location" in str(caught.value)


@pytest.mark.slow
def test_real_restic_locked_exit_code_and_kind(
    restic_repo: ResticRepo, restic_binary: ResticBinary
) -> None:
    restic_repo.stale_exclusive_lock()
    with pytest.raises(ResticError) as caught:
        wrapper(restic_repo).snapshots(no_lock=False)
    assert (caught.value.kind, caught.value.returncode) == (
        "locked", _exit_code(restic_binary, 11)
    )


def test_real_restic_blob_in_no_pack_reason_is_restic_line_not_stack(
    restic_repo: ResticRepo,
) -> None:
    restic_repo.backup("2026-11-20 10:00:00", size=50_000)
    restic_repo.backup("2026-11-21 10:00:00", size=60_000)
    # Drop the newest pack files and rebuild the index: blobs of the newest snapshot are
    # then in no pack.
    data = Path(restic_repo.repository) / "data"
    packs = sorted(data.glob("*/*"), key=lambda p: p.stat().st_mtime)
    packs[-1].unlink()
    version = wrapper(restic_repo).version()
    restic_repo.restic(*(["rebuild-index"] if version < (0, 16, 0) else ["repair", "index"]))
    restic = Restic(restic_repo.repository, str(restic_repo.password_file), no_cache=True)
    newest = restic.snapshots()[-1]
    with pytest.raises(ResticError) as caught:
        restic.run(["restore", newest.id, "--target", str(restic_repo.data / "out")])
    message = str(caught.value)
    assert caught.value.kind == "damaged", message
    assert ".go:" not in message and "runtime/" not in message and "asm_amd64" not in message
    assert re.search(r"Unknown blob [0-9a-f]{64}|id [0-9a-f]{64} not found", message), message


def test_classify_error_old_restic_stderr_kinds() -> None:
    assert classify_error(1, "Fatal: wrong password or no key found") == "wrong-password"
    assert classify_error(1, "Is there a repository at the following location?") == (
        "no-repository"
    )
    assert classify_error(1, "repository is already locked exclusively by PID 1") == "locked"
    assert classify_error(1, "Fatal: connection refused") == "unreachable"


def test_run_secret_env_value_masked_in_error(fake_restic: Callable[..., Path],
                                              tmp_path: Path) -> None:
    binary = fake_restic(1, "Fatal: access denied for s3cr3t-value")
    restic = Restic("s3:http://127.0.0.1:1/b", str(tmp_path / "pw"), binary=str(binary),
                    extra_env={"AWS_SECRET_ACCESS_KEY": "s3cr3t-value"})
    with pytest.raises(ResticError) as caught:
        restic.snapshots()
    assert "s3cr3t-value" not in str(caught.value)
    assert "***" in str(caught.value)


def test_parse_snapshots_unexpected_json_raises() -> None:
    with pytest.raises(ResticError, match="entry 0"):
        parse_snapshots('[{"short_id": "x"}]')
    with pytest.raises(ResticError, match="not JSON"):
        parse_snapshots("<html>")


def test_parse_time_nanoseconds_and_offset_returns_utc() -> None:
    assert parse_time("2026-11-20T11:00:00.123456789+01:00") == datetime(
        2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC
    )


def test_parse_version_garbage_raises() -> None:
    assert parse_version("restic 0.17.3 compiled with go1.22") == (0, 17, 3)
    with pytest.raises(ResticError):
        parse_version("hello")


def test_argv_options_and_env_keep_password_off_command_line(tmp_path: Path) -> None:
    restic = Restic("s3:https://h/b", "/etc/pw", cache_dir="/c", no_cache=True,
                    cacert="/ca.pem", extra_env={"AWS_SECRET_ACCESS_KEY": "sek"})
    argv = restic.argv(["snapshots"], no_lock=True)
    assert argv == ["restic", "--cache-dir", "/c", "--no-cache", "--cacert", "/ca.pem",
                    "--no-lock", "snapshots"]
    env = restic.env()
    assert env["RESTIC_PASSWORD_FILE"] == "/etc/pw"
    assert env["RESTIC_PASSWORD"] == "" and env["RESTIC_PASSWORD_COMMAND"] == ""
    assert restic.secrets() == ["sek"]


def test_snapshots_unreachable_s3_storage_names_network_not_missing_repo(
    restic_repo: ResticRepo,
) -> None:
    from tests.support.seaweed import free_ports

    [port] = free_ports(1)
    # restic 0.14 fails at once; 0.18 retries for 15 minutes unless stopped: the retry
    # budget stops it.
    restic = Restic(f"s3:http://127.0.0.1:{port}/bucket/repo", str(restic_repo.password_file),
                    extra_env={"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
                    retry_budget=2.0)
    with pytest.raises(ResticError) as caught:
        restic.snapshots()
    assert caught.value.kind == "unreachable"
    assert "cannot reach the repository's storage" in str(caught.value)
    assert "connection refused" in str(caught.value)


def test_classify_error_tls_failure_is_unreachable_with_words() -> None:
    from durability.restic import error_message

    stderr = ('Fatal: unable to open config file: Stat: Get "https://h/b/": x509: certificate '
              "signed by unknown authority\nIs there a repository at the following location?")
    assert classify_error(1, stderr) == "unreachable"
    assert error_message(1, stderr, "unreachable").startswith("TLS failure reaching the repository")


def test_retry_watch_counts_from_first_retry_across_requests_and_resets_on_success() -> None:
    from durability.restic import RetryWatch

    clock = [0.0]
    watch = RetryWatch(10.0)
    watch.clock = lambda: clock[0]
    watch.stderr_line("Save(<data/aa>) returned error, retrying after 1s: dial tcp: i/o timeout")
    clock[0] = 6.0
    watch.stderr_line("Save(<data/bb>) returned error, retrying after 2s: dial tcp: i/o timeout")
    assert watch.give_up(0) is None
    clock[0] = 11.0
    assert "still retrying Save(<data/bb>) after 11s (limit 10s)" in (watch.give_up(0) or "")
    watch.stderr_line("Save(<data/bb>) operation successful after 2 retries")
    assert watch.give_up(0) is None


def test_retry_watch_full_disk_stops_at_first_retry() -> None:
    from durability.restic import RetryWatch, classify_error

    watch = RetryWatch(600.0)
    watch.stderr_line("Save(<data/aa>) returned error, retrying after 1s: "
                      "write /mnt/x: no space left on device")
    reason = watch.give_up(0)
    assert reason is not None and "no space left on device" in reason
    assert classify_error(None, reason) == "no-space"
