"""A pure parser for /proc/mdstat.

`parse_mdstat(text)` takes text and never opens a file. Each array is parsed on its
own: a line it cannot understand makes that array (and only that array) an error that
names the line, so one odd array never hides the others.
"""

from __future__ import annotations

import re

from durability.errors import ParseError
from durability.records import Record

LEVELS = frozenset(
    {"linear", "multipath", "raid0", "raid1", "raid4", "raid5", "raid6", "raid10", "faulty"}
)
MEMBER_FLAGS = frozenset("WJFSR")
# mdstat's progress words, mapped to sysfs sync_action names.
SYNC_ACTIONS = {
    "resync": "resync",
    "recovery": "recover",
    "check": "check",
    "repair": "repair",
    "reshape": "reshape",
    "recover": "recover",  # only in "recover=REMOTE" (md-cluster)
}
# Levels whose personality prints the status line `[n/m] [U_]`.
STATUS_LINE_LEVELS = frozenset({"multipath", "raid1", "raid4", "raid5", "raid6", "raid10"})


class MdstatMember(Record):
    """One member as mdstat lists it: `sdb1[1](W)(F)`."""

    device: str
    index: int
    flags: frozenset[str]


class MdstatSync(Record):
    """A sync in progress (`recovery = 9.4% ...`) or waiting (`resync=PENDING`)."""

    action: str  # sysfs name: resync, recover, check, repair, reshape
    state: str  # running, PENDING, DELAYED or REMOTE (another cluster node runs it)
    percent: float | None = None
    done_blocks: int | None = None
    total_blocks: int | None = None
    finish_minutes: float | None = None
    speed_kib: int | None = None


class MdstatArray(Record):
    """One array block of mdstat."""

    name: str
    line: int
    active: bool
    read_only: str | None  # "read-only", "auto-read-only" or None
    level: str | None
    members: tuple[MdstatMember, ...]
    blocks: int | None = None
    metadata: str | None = None  # "1.2", "external:imsm", ...
    raid_disks: int | None = None  # [n/m]: n
    active_disks: int | None = None  # [n/m]: m
    status_map: str | None = None  # "UU_"
    sync: MdstatSync | None = None
    bitmap: str | None = None
    near_copies: int | None = None
    far_copies: int | None = None

    @property
    def lacks_status_line(self) -> bool:
        """Return True for a running redundant array whose `[n/m] [U_]` line is missing."""
        return self.active and self.level in STATUS_LINE_LEVELS and self.status_map is None

    @property
    def is_container(self) -> bool:
        """Return True for an external-metadata container (IMSM/DDF), not a volume."""
        return (
            self.metadata is not None
            and self.metadata.startswith("external:")
            and ("/" not in self.metadata)
        )


class ArrayParseError(Record):
    """An array (or a stray line, with `name` None) that could not be parsed."""

    name: str | None
    error: ParseError


class Mdstat(Record):
    """Everything parsed from one mdstat text."""

    personalities: tuple[str, ...]
    arrays: tuple[MdstatArray, ...]
    errors: tuple[ArrayParseError, ...]


_HEAD = re.compile(r"^(?P<name>md[\w.-]*)\s*:\s*(?P<rest>.*)$")
_MEMBER = re.compile(r"^(?P<dev>[^\s\[\]()]+)\[(?P<index>\d+)\](?P<flags>(?:\([A-Za-z]\))*)$")
_BLOCKS = re.compile(r"^(?P<blocks>\d+) blocks\b")
_SUPER = re.compile(r"\bsuper (?P<meta>\S+)")
_COUNTS = re.compile(r"\[(?P<n>\d+)/(?P<m>\d+)\]\s*\[(?P<map>[U_]*)\]")
_COPIES = re.compile(r"\b(?P<n>\d+) (?P<kind>near|far|offset)-copies\b")
_PROGRESS = re.compile(
    r"^(?:\[[=>.]*\]\s*)?(?P<word>resync|recovery|check|repair|reshape)\s*=\s*"
    r"(?P<pct>\d+(?:\.\d+)?)%"
    r"(?:\s*\((?P<done>\d+)/(?P<total>\d+)\))?"
    r"(?:\s*finish=(?P<finish>\d+(?:\.\d+)?)min)?"
    r"(?:\s*speed=(?P<speed>\d+)K/sec)?\s*$"
)
_WAITING = re.compile(
    r"^(?P<word>resync|recovery|recover|check|repair|reshape)\s*=\s*"
    r"(?P<state>PENDING|DELAYED|REMOTE)\s*$"
)


def parse_mdstat(text: str) -> Mdstat:
    """Given the text of /proc/mdstat, return its arrays and per-array parse errors.

    Raise ParseError (naming the line) only when the text is not mdstat at all: a
    non-empty text with neither a Personalities line nor any array.
    """
    lines = text.splitlines()
    personalities: tuple[str, ...] = ()
    seen_header = False
    blocks: list[tuple[int, list[tuple[int, str]]]] = []
    errors: list[ArrayParseError] = []
    current: list[tuple[int, str]] | None = None
    first_content: tuple[int, str] | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped:
            current = None
            continue
        if first_content is None:
            first_content = (number, raw)
        if stripped.startswith("Personalities :") or stripped.startswith("Personalities:"):
            personalities = tuple(re.findall(r"\[([^\]]+)\]", stripped))
            seen_header = True
            current = None
            continue
        if stripped.startswith("unused devices:") or stripped.startswith("read_ahead"):
            current = None
            continue
        if _HEAD.match(stripped) and not raw[:1].isspace():
            current = [(number, stripped)]
            blocks.append((number, current))
            continue
        if raw[:1].isspace() and current is not None:
            current.append((number, stripped))
            continue
        errors.append(
            ArrayParseError(None, ParseError("unexpected line outside any array", number, raw))
        )
    if not seen_header and not blocks and first_content is not None:
        number, raw = first_content
        raise ParseError("not /proc/mdstat (no 'Personalities' line, no md array)", number, raw)
    arrays: list[MdstatArray] = []
    for _, block in blocks:
        try:
            arrays.append(_parse_array(block))
        except ParseError as error:
            name = block[0][1].split(":", 1)[0].strip()
            errors.append(ArrayParseError(name, error))
    return Mdstat(personalities, tuple(arrays), tuple(errors))


def _parse_array(block: list[tuple[int, str]]) -> MdstatArray:
    number, head = block[0]
    match = _HEAD.match(head)
    assert match is not None
    name = match.group("name")
    words = match.group("rest").split()
    if not words or words[0] not in ("active", "inactive"):
        raise ParseError("expected 'active' or 'inactive' after the array name", number, head)
    active = words[0] == "active"
    position = 1
    read_only = None
    if position < len(words) and words[position] in ("(read-only)", "(auto-read-only)"):
        read_only = words[position][1:-1]
        position += 1
    level = None
    if position < len(words) and words[position] in LEVELS:
        level = words[position]
        position += 1
    members = []
    for word in words[position:]:
        member = _MEMBER.match(word)
        if member is None:
            raise ParseError(f"cannot parse member {word!r}", number, head)
        flags = frozenset(re.findall(r"\(([A-Za-z])\)", member.group("flags")))
        unknown = flags - MEMBER_FLAGS
        if unknown:
            raise ParseError(f"unknown member flag {''.join(sorted(unknown))!r}", number, head)
        members.append(MdstatMember(member.group("dev"), int(member.group("index")), flags))
    if active and level is None and members:
        raise ParseError("active array without a RAID level", number, head)

    fields: dict[str, object] = {}
    sync: MdstatSync | None = None
    bitmap = None
    for line_number, line in block[1:]:
        blocks_match = _BLOCKS.match(line)
        if blocks_match:
            fields["blocks"] = int(blocks_match.group("blocks"))
            super_match = _SUPER.search(line)
            if super_match:
                fields["metadata"] = super_match.group("meta")
            counts = _COUNTS.search(line)
            if counts:
                fields["raid_disks"] = int(counts.group("n"))
                fields["active_disks"] = int(counts.group("m"))
                fields["status_map"] = counts.group("map")
                if len(counts.group("map")) != int(counts.group("n")):
                    raise ParseError("status map length differs from [n/m]", line_number, line)
            copies = _COPIES.search(line)
            if copies:
                key = "near_copies" if copies.group("kind") == "near" else "far_copies"
                fields[key] = int(copies.group("n"))
            continue
        progress = _PROGRESS.match(line)
        if progress:
            sync = MdstatSync(
                action=SYNC_ACTIONS[progress.group("word")],
                state="running",
                percent=float(progress.group("pct")),
                done_blocks=_int(progress.group("done")),
                total_blocks=_int(progress.group("total")),
                finish_minutes=_float(progress.group("finish")),
                speed_kib=_int(progress.group("speed")),
            )
            continue
        waiting = _WAITING.match(line)
        if waiting:
            sync = MdstatSync(
                action=SYNC_ACTIONS[waiting.group("word")], state=waiting.group("state")
            )
            continue
        if line.startswith("bitmap:"):
            bitmap = line[len("bitmap:") :].strip()
            continue
        raise ParseError("unexpected line in array", line_number, line)
    return MdstatArray(
        name=name,
        line=number,
        active=active,
        read_only=read_only,
        level=level,
        members=tuple(members),
        sync=sync,
        bitmap=bitmap,
        **fields,  # type: ignore[arg-type]
    )


def _int(value: str | None) -> int | None:
    return int(value) if value is not None else None


def _float(value: str | None) -> float | None:
    return float(value) if value is not None else None
