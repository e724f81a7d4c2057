"""The shipped examples: Prometheus alert rules on the metrics the textfiles really carry."""

from __future__ import annotations

import re

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
