"""`durability check`: every enabled check in one report, recorded in history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult
from tests.raid.conftest import MdTree, md_tree  # noqa: F401


def test_check_combines_enabled_checks_and_records_history(
    md_tree: Callable[[str], MdTree], write_config: Callable[[str], Path],
    cli: Callable[..., CliResult],
) -> None:
    tree = md_tree("raid1-degraded-removed")
    config = write_config(f'[raid]\nproc_root = "{tree.proc}"\nsys_root = "{tree.sys}"\n')
    result = cli("--config", config, "check", "--format", "json")
    document = json.loads(result.stdout)
    assert result.code == 2
    assert document["check"] == "check"
    assert [(r["check"], r["target"], r["status"]) for r in document["results"]] == [
        ("raid", "md0", "CRITICAL")
    ]
    history = cli("--config", config, "history", "--format", "json")
    rows = json.loads(history.stdout)["history"]
    assert rows[0]["check"] == "raid" and rows[0]["status"] == "CRITICAL"


def test_check_keeps_no_md_arrays_visible(
    md_tree: Callable[[str], MdTree], write_config: Callable[[str], Path],
    cli: Callable[..., CliResult],
) -> None:
    tree = md_tree("empty")
    config = write_config(f'[raid]\nproc_root = "{tree.proc}"\nsys_root = "{tree.sys}"\n')
    result = cli("--config", config, "check")
    assert result.code == 0
    assert "[OK] raid: no md arrays" in result.stdout


def test_check_with_nothing_enabled_is_unknown(
    write_config: Callable[[str], Path], cli: Callable[..., CliResult]
) -> None:
    config = write_config("[raid]\nenabled = false\n")
    result = cli("--config", config, "check", "--format", "nagios")
    assert result.code == 3
    assert result.stdout.startswith("DURABILITY UNKNOWN - no check is enabled in the config")
