"""scripts/setup.sh: it waits for the dpkg lock and installs the monitoring clients."""

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
