"""`[restore]`: on-demand and scheduled restore tests."""

from __future__ import annotations

from durability.config.schema import Settings, setting


class RestoreSettings(Settings):
    """Where restore tests unpack and how fast a full restore must be."""

    scratch_dir: str = setting(
        "/var/tmp/durability-restore",  # noqa: S108 - a parent of private 0700 folders
        help="Parent folder for private scratch folders (each test makes a new 0700 one).",
    )
    rto_target: float | None = setting(
        None,
        kind="duration",
        help="WARNING when the projected full restore of a source takes longer.",
        example='"4h"',
    )
    reserve: int = setting(
        512 * 1024 * 1024,
        kind="size",
        help="Free space left untouched on the scratch filesystem; a test that would "
        "eat into it does not start.",
        example='"512MiB"',
    )
    sample: int = setting(
        0,
        minimum=0,
        help="Files restored and verified at random by `durability check` and the "
        "schedule; 0 restores and verifies every file (as --full does)."
    )
    source: str | None = setting(
        None,
        help="Source tested by `durability check` and the schedule; unset: none.",
        example='"web-restic"',
    )
    read_data_subset: str | None = setting(
        None,
        help="Also run a rotating `restic check --read-data-subset` (e.g. '1/7').",
        example='"1/7"',
    )
