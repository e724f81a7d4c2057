"""The Prometheus textfile of one service job: its report plus when it ran and runs next."""

from __future__ import annotations

import os
from datetime import datetime

from durability.model import Report
from durability.render import render_prometheus


def textfile_path(folder: str, job: str) -> str:
    """Given the textfile folder and a job name, return its .prom path."""
    return os.path.join(folder, f"durability_{job.replace('-', '_')}.prom")


def render_job_textfile(
    job: str, report: Report, started: datetime, seconds: float, next_run: datetime | None
) -> str:
    """Given a job's report and timing, return the text of its textfile."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    # Not "job": Prometheus sets `job` (and `instance`) itself and would keep ours only
    # as `exported_job`.
    labels = ["durability_job"]
    Gauge("durability_job_last_run_timestamp_seconds",
          "Unix time the service last started this job.", labels,
          registry=registry).labels(durability_job=job).set(started.timestamp())
    Gauge("durability_job_last_duration_seconds",
          "How long the last run of this job took.", labels,
          registry=registry).labels(durability_job=job).set(seconds)
    Gauge("durability_job_status",
          "Status of the job's last report as a Nagios code.", labels,
          registry=registry).labels(durability_job=job).set(int(report.status))
    if next_run is not None:
        Gauge("durability_job_next_run_timestamp_seconds",
              "Unix time the service runs this job next.", labels,
              registry=registry).labels(durability_job=job).set(next_run.timestamp())
    return render_prometheus(report) + generate_latest(registry).decode("utf-8")


def render_service_textfile(instance_name: str, active: bool, now: float | None = None) -> str:
    """Given this instance's name and whether it holds the service lease, return its textfile.

    The heartbeat gauge is the Unix time of writing (`now`, default the current time):
    the service rewrites the file every lease interval, so an old one means a dead service.
    """
    import time

    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    Gauge("durability_service_active",
          "1 on the service instance that runs the jobs (holds the lease), 0 on a standby.",
          ["instance_name"], registry=registry).labels(instance_name=instance_name).set(
              1 if active else 0)
    Gauge("durability_service_heartbeat_timestamp_seconds",
          "Unix time this service instance last wrote this file (every lease interval).",
          ["instance_name"], registry=registry).labels(instance_name=instance_name).set(
              time.time() if now is None else now)
    return generate_latest(registry).decode("utf-8")
