"""`[schedule]`: when `durability run` runs each job."""

from __future__ import annotations

from dataclasses import dataclass

from durability.config.schema import setting


@dataclass(frozen=True)
class ScheduleSettings:
    """Job intervals of the scheduled service; a job set to None does not run."""

    raid_every: float | None = setting(300.0, kind="duration", help="RAID check interval.")
    snapshots_every: float | None = setting(3600.0, kind="duration", help="Snapshot check interval.")
    restore_test_every: float | None = setting(
        7 * 86400.0, kind="duration", help="Restore test interval."
    )
    restore_test_jitter: float = setting(
        3600.0, kind="duration", help="Random delay added to each restore test."
    )
    remind_every: float | None = setting(86400.0, kind="duration", help="Reminder run interval.")
    textfile_dir: str | None = setting(
        None, help="Folder for one Prometheus textfile per job.",
        example='"/var/lib/prometheus/node-exporter"',
    )
    lock_file: str | None = setting(
        None, help="Lock file that keeps one service per state store; default beside state."
    )
