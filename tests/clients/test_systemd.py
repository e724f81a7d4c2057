"""systemd-analyze verify accepts every shipped unit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clients.conftest import tool
from tests.conftest import REPO

UNITS = sorted(
    p
    for folder in ("systemd", "helper")
    for p in (REPO / "examples" / folder).iterdir()
    if p.suffix in (".service", ".timer")
)
BIN = Path(sys.executable).parent


def installed_copy(unit: Path, folder: Path) -> Path:
    """Copy a unit as it would be installed: its programs where this venv has them.

    verify checks that ExecStart's program exists and is executable; the examples name
    /usr/local/bin (or ~/.local/bin), which this machine need not have. Everything else
    is verified as shipped. A template (`name@.service`) is verified as one instance.
    """
    text = unit.read_text()
    for name in ("durability-helper", "durability"):
        for prefix in ("/usr/local/bin/", "%h/.local/bin/"):
            text = text.replace(prefix + name + " ", f"{BIN}/{name} ")
            text = text.replace(prefix + name + "\n", f"{BIN}/{name}\n")
    target = folder / unit.name.replace("@.", "@sdb1.")
    target.write_text(text)
    return target


def test_every_shipped_unit_is_found() -> None:
    names = {u.name for u in UNITS}
    assert {"durability-raid.service", "durability-raid.timer", "durability-run.service"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_analyze_verifies_unit(unit: Path, tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    copy = installed_copy(unit, tmp_path)
    if unit.suffix == ".timer":
        installed_copy(unit.with_suffix(".service"), tmp_path)
    command = [analyze, "verify", str(copy)]
    env = dict(os.environ)
    if "%h" in unit.read_text():  # a user unit (started by the desktop session)
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(runtime)
        command.insert(1, "--user")
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert str(copy.name) not in done.stderr, done.stderr  # no warning about the unit itself


def test_systemd_analyze_rejects_a_broken_unit(tmp_path: Path) -> None:
    # The verification can fail: a missing program is an error.
    analyze = tool("systemd-analyze")
    unit = tmp_path / "durability-broken.service"
    unit.write_text("[Service]\nType=oneshot\nExecStart=/nonexistent/durability raid\n")
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0


def test_optional_write_paths_may_be_absent() -> None:
    # Without "-", a node without node_exporter's folder fails the unit (226/NAMESPACE).
    text = (REPO / "examples" / "systemd" / "durability-run.service").read_text()
    paths = [
        word
        for line in text.splitlines()
        if line.startswith("ReadWritePaths=")
        for word in line.partition("=")[2].split()
    ]
    assert "-/var/lib/prometheus/node-exporter" in paths
    # what is not created by StateDirectory= or always there must be optional
    assert all(p.startswith("-") or p in ("/var/lib/durability", "/var/tmp") for p in paths)
