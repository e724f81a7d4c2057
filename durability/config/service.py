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
        help="Lock file that keeps one service per host. Default: STATE.service.lock "
        "beside a SQLite state.path; with state.url the service lease decides which "
        "host's service is active.",
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
    instance_name: str | None = setting(
        None,
        help="Name of this service instance, shown as the active or standing-by one on "
        "the status page and in durability_service_active. Default: node_name, else the "
        "host name.",
    )
    lease_ttl: float = setting(
        30.0, kind="duration", minimum=2.0,
        help="How long the active service's lease lasts without renewal; a standby takes "
        "over at most this plus lease_renew_every after the active one died.",
    )
    lease_renew_every: float = setting(
        10.0, kind="duration", minimum=0.5,
        help="How often the active service renews its lease and a standby tries to take "
        "it; at most a third of lease_ttl.",
    )
