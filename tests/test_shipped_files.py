"""Shipped files: scripts/setup.sh waits for the dpkg lock; textfile names agree."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO

SETUP = REPO / "scripts" / "setup.sh"


def test_every_apt_get_call_waits_for_the_dpkg_lock() -> None:
    text = SETUP.read_text()
    calls = [line for line in text.splitlines() if re.search(r"\bapt-get\b", line)]
    run = [line for line in calls if not line.strip().startswith(("#", "echo"))]
    assert run, "setup.sh installs with apt-get"
    assert "DPkg::Lock::Timeout=600" in text
    assert all('"${apt_wait[@]}"' in line for line in run), run


def test_test_mode_installs_the_monitoring_clients() -> None:
    text = SETUP.read_text()
    for package in ("prometheus", "prometheus-node-exporter", "nagios4-core", "systemd"):
        assert re.search(rf"apt_packages\+=\([^)]*\b{re.escape(package)}\b", text), package


def test_setup_script_is_valid_bash() -> None:
    done = subprocess.run(["bash", "-n", str(SETUP)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_textfiles_are_named_durability_check_prom_everywhere() -> None:
    # Two names for one check's file in the textfile folder make node_exporter drop one
    # ("collected before with the same name and label values").
    import itertools

    shipped = itertools.chain(
        (REPO / "examples").rglob("*"),
        (REPO / "docs").rglob("*.md"),
        (REPO / "durability").rglob("*.py"),
        [REPO / "README.md"],
    )
    allowed = re.compile(
        r"durability_(raid|snapshots|restore_test|remind|check|service|JOB|<check>|\*)\.prom"
    )
    found = 0
    for path in shipped:
        if not path.is_file():
            continue
        for name in re.findall(r"[\w<>*.-]+\.prom\b", path.read_text(errors="replace")):
            found += 1
            assert allowed.fullmatch(name), f"{path.relative_to(REPO)}: {name}"
    assert found > 5


def test_docs_carry_the_contract_without_pointing_outside_the_project() -> None:
    texts = {p: p.read_text() for p in [REPO / "README.md", *(REPO / "docs").glob("*.md")]}
    for path, text in texts.items():
        assert "shared/SPEC" not in text and "SPEC.md" not in text, path
    reference = (REPO / "docs" / "reference.md").read_text()
    for command in (
        "users add",
        "nodes add",
        "snapshots ack",
        "raid ack",
        "history",
        "config validate",
        "restore-test",
        "durability-helper",
    ):
        assert command in reference, command
    for key in (
        "state.path",
        "state.url",
        "raid.expect",
        "raid.proc_root",
        "raid.sys_root",
        "raid.strict_rebuild",
        "raid.stall_after",
        "raid.scrub_max_age",
        "restore.scratch_dir",
        "restore.rto_target",
        "smtp.host",
        "smtp.port",
        "smtp.security",
        "smtp.username",
        "smtp.password_file",
        "smtp.from",
        "smtp.max_per_hour",
        "web.base_url",
        "web.secret_file",
        "web.listen",
    ):
        assert f"`{key}`" in reference or key in reference, key
    for heading in (
        "## Exit codes",
        "## JSON",
        "## Nagios",
        "## Prometheus",
        "## RAID severity",
        "## Config keys",
    ):
        assert heading in reference, heading
