"""`[schedule]`: when `durability run` runs each job, and where it reports on them."""

from __future__ import annotations

from durability.config.schema import Settings, setting


class ScheduleSettings(Settings):
    """Job intervals of the scheduled service; a job set to None does not run."""

    raid_every: float | None = setting(300.0, kind="duration", help="RAID check interval.")
    snapshots_every: float | None = setting(
        3600.0, kind="duration", help="Snapshot check interval."
    )
    restore_test_every: float | None = setting(
        7 * 86400.0, kind="duration", help="Restore test interval."
    )
    restore_test_jitter: float = setting(
        3600.0, kind="duration",
        help="Random delay (0 up to this) added to each restore test, so a fleet of "
        "nodes does not restore from one provider at the same moment.",
    )
    remind_every: float | None = setting(
        86400.0, kind="duration",
        help="Reminder run interval; runs due outside remind.sending_window wait for it.",
    )
    prune_every: float | None = setting(
        86400.0, kind="duration", help="How often history older than state.retention is pruned."
    )
    textfile_dir: str | None = setting(
        None, help="Folder for one Prometheus textfile per job (durability_JOB.prom).",
        example='"/var/lib/prometheus/node-exporter"',
    )
    lock_file: str | None = setting(
        None,
        help="Lock file that keeps one service per state store. Default: STATE.service.lock "
        "beside a SQLite state.path; with state.url a PostgreSQL advisory lock is used too.",
        example='"/run/durability/run.lock"',
    )
    report_to: str | None = setting(
        None,
        help="URL of the central `durability serve` fleet endpoint "
        "(https://central.example/fleet/report); each job's report is sent there.",
        example='"https://durability.example.com/fleet/report"',
    )
    report_token_file: str | None = setting(
        None, help="File holding this node's fleet token (needed with report_to).",
        example='"/etc/durability/fleet-token"',
    )
    node_name: str | None = setting(
        None, help="Name of this node on the fleet status page. Default: the host name."
    )
