"""promtool (Debian package prometheus) accepts every Prometheus output and the alert rules."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from durability.model import Report, Result, Status
from durability.service.textfile import render_job_textfile
from tests.clients.conftest import tool
from tests.conftest import REPO

RULES = REPO / "examples" / "prometheus"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def check_metrics(promtool: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_promtool_accepts_every_prometheus_output(
    fixture_outputs: Callable[[str], dict[str, str]],
) -> None:
    promtool = tool("promtool")
    outputs = fixture_outputs("prometheus")
    assert len(outputs) > 40
    for name, text in outputs.items():
        assert "durability_check_status{" in text, name  # every run says it ran
        assert 'job="' not in text and 'instance="' not in text, name
        done = check_metrics(promtool, text)
        assert done.returncode == 0 and not done.stdout.strip(), (name, done.stdout, done.stderr)


def test_promtool_accepts_the_service_job_textfile() -> None:
    promtool = tool("promtool")
    report = Report("raid", NOW, (Result("raid", "md0", Status.OK, "clean"),))
    text = render_job_textfile("restore-test", report, NOW, 1.5, NOW)
    assert 'durability_job="restore-test"' in text and 'job="' not in text.replace(
        'durability_job="', ""
    )
    done = check_metrics(promtool, text)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_promtool_rejects_a_broken_exposition() -> None:
    # The check above can fail: promtool does reject what is not an exposition.
    promtool = tool("promtool")
    done = check_metrics(promtool, "durability_check_status{check=raid} 0\n")
    assert done.returncode != 0


def test_shipped_alert_rules_pass_promtool_check_rules() -> None:
    promtool = tool("promtool")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES / "durability.rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_shipped_alert_rules_pass_their_unit_tests(tmp_path: Path) -> None:
    # No array on a node, an overdue job, a critical array, a stale textfile, no textfile.
    promtool = tool("promtool")
    done = subprocess.run(
        [promtool, "test", "rules", "durability.rules.test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_alert_rule_tests_fail_when_a_rule_is_wrong(tmp_path: Path) -> None:
    # The unit tests can fail: with the job label renamed back, the overdue alert
    # names the wrong job and promtool says so.
    promtool = tool("promtool")
    rules = (RULES / "durability.rules.yml").read_text()
    (tmp_path / "durability.rules.yml").write_text(
        rules.replace("$labels.durability_job", "$labels.job")
    )
    (tmp_path / "durability.rules.test.yml").write_text(
        (RULES / "durability.rules.test.yml").read_text()
    )
    done = subprocess.run(
        [promtool, "test", "rules", "durability.rules.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "DurabilityJobOverdue" in done.stdout + done.stderr
