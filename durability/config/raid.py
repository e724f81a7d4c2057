"""`[raid]`: md RAID health of this node."""

from __future__ import annotations

import re

from durability.config.schema import Settings, setting

# md names an array in /proc/mdstat and /sys/block as md<N> (or md_d<N>, md<name>).
_EXPECT = re.compile(r"^md[A-Za-z0-9_]+(:[1-9][0-9]*)?$")


def check_expect(value: str) -> str | None:
    """Return a problem with an `mdN[:DISKS]` expectation, or None."""
    if not _EXPECT.match(value):
        return f"expected 'mdN' or 'mdN:DISKS' (e.g. 'md0:2'), got {value!r}"
    return None


def _check_expect_list(values: tuple[str, ...]) -> str | None:
    for value in values:
        problem = check_expect(value)
        if problem:
            return problem
    return None


class RaidSettings(Settings):
    """What `durability raid` reads and how strictly it judges."""

    enabled: bool = setting(True, help="Include the RAID check in `durability check`.")
    expect: tuple[str, ...] = setting(
        factory=tuple,
        help="Arrays that must exist, as 'mdN' or 'mdN:DISKS' (active slots).",
        example='["md0:2", "md1:2"]',
        check=_check_expect_list,
    )
    proc_root: str = setting("/proc", help="Where mdstat is read from (PROC/mdstat).")
    sys_root: str = setting("/sys", help="Where sysfs is read from (SYS/block/mdN/md).")
    strict_rebuild: bool = setting(False, help="A running rebuild is CRITICAL instead of WARNING.")
    stall_after: float = setting(
        30 * 60.0,
        kind="duration",
        help="A rebuild with no progress for this long is CRITICAL (needs history).",
    )
    scrub_max_age: float = setting(
        35 * 86400.0,
        kind="duration",
        help="WARNING when the last completed check/repair scrub is older (needs history).",
    )
    smart: bool = setting(
        True, help="Ask smartctl (if installed and permitted) about member disks."
    )
    smartctl: str = setting("smartctl", help="The smartctl program (name or path).")
    smart_timeout: float = setting(
        10.0, kind="duration", help="How long one smartctl call may take."
    )
