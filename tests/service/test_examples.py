"""The shipped examples: Prometheus alert rules on the metrics the textfiles really carry."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO


def test_alert_rules_metrics_exist_in_job_textfile() -> None:
    from durability.service.textfile import render_job_textfile, render_service_textfile
    from tests.service.helpers import make_report

    report = make_report(targets=1)
    text = render_job_textfile("raid", report, report.checked_at, 1.0, report.checked_at)
    text += render_service_textfile("central-a", True)
    exposed = set(re.findall(r"^(durability_[a-z_]+)", text, flags=re.MULTILINE))
    rules = yaml.safe_load((REPO / "examples/prometheus/durability.rules.yml").read_text())
    used = set()
    for rule in rules["groups"][0]["rules"]:
        assert rule["alert"] and rule["expr"] and rule["labels"]["severity"]
        used.update(re.findall(r"durability_[a-z_]+", rule["expr"]))
    assert "durability_check_status" in used
    assert used <= exposed, used - exposed


def test_no_active_service_alert_fires_only_when_no_live_instance_is_active(
    tmp_path: Path,
) -> None:
    """promtool runs the shipped rule on the gauges the services write (two instances)."""
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed")
    rules = REPO / "examples/prometheus/durability.rules.yml"
    # Minute by minute for 20 minutes: central-a active and alive for 10 minutes, then
    # its textfile is no longer rewritten (the service died) while central-b stands by.
    # Heartbeats are Unix times; promtool's clock starts at 0.
    alive = " ".join(str(60 * minute) for minute in range(11))
    frozen = " ".join(["600"] * 10)
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": 'durability_service_active{instance="a",instance_name="central-a"}',
                 "values": "1x20"},
                {"series": 'durability_service_heartbeat_timestamp_seconds{instance="a",'
                           'instance_name="central-a"}', "values": f"{alive} {frozen}"},
                {"series": 'durability_service_active{instance="b",instance_name="central-b"}',
                 "values": "0x20"},
                {"series": 'durability_service_heartbeat_timestamp_seconds{instance="b",'
                           'instance_name="central-b"}',
                 "values": " ".join(str(60 * minute) for minute in range(21))},
            ],
            "alert_rule_test": [
                {"eval_time": "9m", "alertname": "DurabilityNoActiveService", "exp_alerts": []},
                {"eval_time": "19m", "alertname": "DurabilityNoActiveService",
                 "exp_alerts": [{"exp_labels": {"severity": "critical"}, "exp_annotations": {
                     "summary": "no durability run is active: no check runs and no reminder "
                                "goes out"}}]},
            ],
        }],
    }
    path = tmp_path / "rules.test.yml"
    path.write_text(yaml.safe_dump(tests), encoding="utf-8")
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
