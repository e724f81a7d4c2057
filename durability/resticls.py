"""What a restic snapshot holds: the one parser of `restic ls --json` and of tree blobs.

File names are bytes. `restic ls --json` prints names and paths as JSON strings, and Go
replaces every byte that is not valid UTF-8 with U+FFFD there, so a listed path is exact
only when it holds no U+FFFD (`Node.exact`). The snapshot's own tree blobs (`restic cat
blob ID`) keep the raw bytes: restic stores each name Go-quoted (`"d\\xff"`) and, from
0.17 on, a symlink target that is not UTF-8 as base64 `linktarget_raw`. Trees also carry
what `ls` leaves out: link targets, hard link counts, device and inode, extended
attributes.

Parsers are pure and strict: a line or field that is not what restic prints raises
ParseError naming the line and what is wrong; nothing is skipped silently.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
import operator
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from durability.errors import ParseError
from durability.restic import parse_time

# restic's node types.
NODE_TYPES = frozenset({"file", "dir", "symlink", "dev", "chardev", "fifo", "socket", "irregular"})

# Go's os.FileMode bits beyond the permissions (restic stores Go modes).
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_STICKY = 1 << 20


def parent_of(path: bytes) -> bytes:
    """Given a snapshot path, return its folder's path (b"" for the snapshot's root)."""
    return path.rsplit(b"/", 1)[0]


@dataclass(frozen=True, slots=True)
class LsSnapshot:
    """The snapshot line that opens `restic ls --json` output."""

    id: str
    time: datetime | None
    tree: str | None
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Xattr:
    """One extended attribute of a node: its name and raw value."""

    name: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Node:
    """One entry of a snapshot.

    `path` is the absolute path inside the snapshot, as bytes; `exact` is False when it
    came from `ls` with bytes Go replaced by U+FFFD. `mode` holds the Unix permission
    and setuid/setgid/sticky bits (not the type). Fields a listing does not carry are
    None: `inode` (ls of restic 0.14), `links`, `device`, `linktarget` and `xattrs`
    (trees only).
    """

    path: bytes
    type: str
    size: int
    mode: int | None
    mtime_ns: int | None
    uid: int | None
    gid: int | None
    inode: int | None = None
    links: int | None = None
    device: int | None = None
    linktarget: bytes | None = None
    xattrs: tuple[Xattr, ...] | None = None
    subtree: str | None = None
    exact: bool = True

    @property
    def name(self) -> bytes:
        """Return the last component of the path."""
        return self.path.rsplit(b"/", 1)[-1]

    @property
    def folder(self) -> bytes:
        """Return the path of the folder holding the node (b"" for the snapshot's root)."""
        return parent_of(self.path)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled as its fields in order (restore tests spool millions of nodes): far
        # quicker than a dataclass's generic state.
        return Node, _NODE_FIELDS(self)


_NODE_FIELDS = operator.attrgetter(*(item.name for item in fields(Node)))


@dataclass(frozen=True, slots=True)
class Listing:
    """A parsed `restic ls --json`: its snapshot line (if any) and its nodes, in order."""

    snapshot: LsSnapshot | None
    nodes: tuple[Node, ...]


def unix_mode(go_mode: int) -> int:
    """Given a Go file mode as restic stores it, return the Unix permission bits.

    The result holds rwx for all, setuid (0o4000), setgid (0o2000) and sticky (0o1000).
    """
    mode = go_mode & 0o777
    if go_mode & _GO_SETUID:
        mode |= 0o4000
    if go_mode & _GO_SETGID:
        mode |= 0o2000
    if go_mode & _GO_STICKY:
        mode |= 0o1000
    return mode


_TIMESTAMP = re.compile(r"(.*T\d\d:\d\d:\d\d)(?:\.([0-9]+))?(Z|[+-]\d\d:\d\d)", re.ASCII)


@functools.lru_cache(maxsize=4096)
def _whole_seconds(base: str, zone: str) -> int:
    """Given a timestamp's whole-second part and its zone, return seconds since 1970."""
    return int(parse_time(base + zone).timestamp())


def time_ns(text: str) -> int:
    """Given a restic timestamp (RFC 3339, up to nanoseconds), return nanoseconds since 1970.

    Raise ValueError if it is not one.
    """
    match = _TIMESTAMP.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a timestamp: {text!r}")
    base, fraction, zone = match.groups()
    # Files of one backup share their seconds often: those are converted once.
    try:
        whole = _whole_seconds(base, zone)
    except OverflowError as error:  # before year 1 once the zone is applied
        raise ValueError(f"not a timestamp: {text!r}") from error
    return whole * 1_000_000_000 + int(((fraction or "") + "000000000")[:9])


def go_lossy(raw: bytes) -> str:
    """Given raw name bytes, return them as Go's JSON encoder prints them.

    Every byte that does not start a valid UTF-8 sequence becomes one U+FFFD, as in Go.
    """
    try:
        return raw.decode("utf-8")  # valid UTF-8 (nearly every name) prints as it is
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    index = 0
    while index < len(raw):
        for width in (1, 2, 3, 4):
            try:
                out.append(raw[index:index + width].decode("utf-8"))
            except UnicodeDecodeError:
                continue
            index += width
            break
        else:
            out.append("\ufffd")
            index += 1
    return "".join(out)


_SIMPLE_ESCAPES = {
    "a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v",
    "\\": b"\\", '"': b'"', "'": b"'",
}


def go_unquote(text: str) -> bytes:
    """Given a name as restic's trees store it (Go-quoted, without the quotes), return bytes.

    Raise ValueError if an escape is malformed.
    """
    if "\\" not in text:
        return text.encode("utf-8", "surrogatepass")  # nothing quoted (most names)
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\":
            out += char.encode("utf-8", "surrogatepass")
            index += 1
            continue
        if index + 1 >= len(text):
            raise ValueError("name ends in a lone backslash")
        code = text[index + 1]
        if code in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[code]
            index += 2
        elif code in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[code]
            digits = text[index + 2:index + 2 + width]
            if len(digits) != width:
                raise ValueError(f"short \\{code} escape in name")
            value = int(digits, 16)
            out += bytes([value]) if code == "x" else chr(value).encode("utf-8")
            index += 2 + width
        elif code in "01234567":
            digits = text[index + 1:index + 4]
            out.append(int(digits, 8) & 0xFF)
            index += 4
        else:
            raise ValueError(f"unknown escape \\{code} in name")
    return bytes(out)


def display(path: bytes) -> str:
    """Given a path as bytes, return it for people: bytes that are not UTF-8 as \\xNN."""
    return path.decode("utf-8", "backslashreplace")


def path_fields(path: bytes, key: str = "path") -> dict[str, str]:
    """Given a path, return its JSON fields: `key` (readable) and `key_b64` when not UTF-8.

    The readable form shows bytes that are not UTF-8 as \\xNN; the exact bytes are then
    in `KEY_b64` (standard base64).
    """
    fields = {key: display(path)}
    try:
        path.decode("utf-8")
    except UnicodeDecodeError:
        fields[f"{key}_b64"] = base64.b64encode(path).decode("ascii")
    return fields


def _int(item: dict[str, Any], key: str) -> int | None:
    value = item.get(key)
    if value is None or type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} is not a whole number: {value!r}")
    return value


def _node(item: dict[str, Any], path: bytes, exact: bool, tree: bool = False) -> Node:
    kind = item.get("type")
    if kind not in NODE_TYPES:
        raise ValueError(f"unknown node type {kind!r}")
    mode = _int(item, "mode")
    mtime = item.get("mtime")
    if mtime is not None and not isinstance(mtime, str):
        raise ValueError("mtime is not a timestamp")
    raw_target = item.get("linktarget_raw")
    target = item.get("linktarget")
    linktarget: bytes | None = None
    if isinstance(raw_target, str) and raw_target:
        linktarget = base64.b64decode(raw_target, validate=True)
    elif isinstance(target, str):
        linktarget = target.encode("utf-8")
    xattrs: tuple[Xattr, ...] | None = None
    if tree:
        listed = item.get("extended_attributes") or []
        if not isinstance(listed, list):
            raise ValueError("extended_attributes is not a list")
        xattrs = tuple(
            Xattr(str(x["name"]).encode("utf-8"), base64.b64decode(x.get("value") or ""))
            for x in listed
        )
    return Node(
        path=path,
        type=kind,
        size=_int(item, "size") or 0,
        mode=unix_mode(mode) if mode is not None else None,
        mtime_ns=time_ns(mtime) if mtime else None,
        uid=_int(item, "uid"),
        gid=_int(item, "gid"),
        inode=_int(item, "inode"),
        links=_int(item, "links"),
        device=_int(item, "device_id"),
        linktarget=linktarget,
        xattrs=xattrs,
        subtree=str(item["subtree"]) if item.get("subtree") else None,
        exact=exact,
    )


def _lines(text: str | Iterable[str]) -> Iterator[str]:
    return iter(io.StringIO(text)) if isinstance(text, str) else iter(text)


def parse_ls_line(line: str, number: int) -> LsSnapshot | Node | None:
    """Given one line of `restic ls --json` output and its number, return what it holds.

    A blank line gives None. Raise ParseError naming the line if it is not a snapshot
    or node object.
    """
    if not line.strip():
        return None
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise ParseError("restic ls: not JSON", line=number, text=line) from error
    if not isinstance(item, dict):
        raise ParseError("restic ls: not a JSON object", line=number, text=line)
    kind = item.get("struct_type")
    try:
        if kind == "snapshot":
            when = item.get("time")
            return LsSnapshot(
                id=str(item["id"]),
                time=parse_time(str(when)) if when else None,
                tree=str(item["tree"]) if item.get("tree") else None,
                paths=tuple(str(p) for p in item.get("paths") or ()),
            )
        if kind not in ("node", None):
            raise ValueError(f"unknown struct_type {kind!r}")
        path = item.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("node without an absolute path")
        item.pop("linktarget_raw", None)
        return _node(item, path.encode("utf-8"), exact="\ufffd" not in path)
    except (KeyError, ValueError, binascii.Error) as error:
        raise ParseError(f"restic ls: {error}", line=number, text=line) from error


def iter_ls(text: str | Iterable[str]) -> Iterator[LsSnapshot | Node]:
    """Given `restic ls --json` output (text or lines), yield its snapshot line and nodes.

    Lines are parsed one at a time, so a caller may keep only what it needs. Raise
    ParseError naming the line if one is not a snapshot or node object.
    """
    for number, line in enumerate(_lines(text), start=1):
        entry = parse_ls_line(line, number)
        if entry is not None:
            yield entry


class LsCollector:
    """Builds a `Listing` from `restic ls --json` lines fed one at a time (streamed)."""

    def __init__(self) -> None:
        self.snapshot: LsSnapshot | None = None
        self.nodes: list[Node] = []
        self._number = 0

    def feed(self, line: str) -> None:
        """Parse one more line. Raise ParseError naming it if it is not what restic prints."""
        self._number += 1
        entry = parse_ls_line(line, self._number)
        if isinstance(entry, LsSnapshot):
            if self.snapshot is not None or self.nodes:
                raise ParseError("restic ls: a second snapshot line", line=self._number)
            self.snapshot = entry
        elif entry is not None:
            self.nodes.append(entry)

    def listing(self) -> Listing:
        """Return what was fed so far."""
        return Listing(self.snapshot, tuple(self.nodes))


def parse_ls(text: str | Iterable[str]) -> Listing:
    """Given `restic ls --json` output, return its snapshot line and nodes.

    Raise ParseError naming the line if one is not what restic prints.
    """
    collector = LsCollector()
    for line in _lines(text):
        collector.feed(line)
    return collector.listing()


def parse_tree(text: str, folder: bytes) -> list[Node]:
    """Given a tree blob's JSON (`restic cat blob ID`) and its folder's path, return its nodes.

    Names are unquoted to their raw bytes; paths are `folder/name`. Raise ParseError
    if the blob is not a restic tree.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ParseError(f"restic tree {display(folder)}: not JSON: {error}") from error
    listed = raw.get("nodes") if isinstance(raw, dict) else None
    if not isinstance(listed, list):
        raise ParseError(f"restic tree {display(folder)}: no node list")
    nodes = []
    base = folder.rstrip(b"/")
    for index, item in enumerate(listed):
        try:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ValueError("node without a name")
            name = go_unquote(item["name"])
            if not name or b"/" in name or name in (b".", b".."):
                raise ValueError(f"invalid name {display(name)!r}")
            nodes.append(_node(item, base + b"/" + name, exact=True, tree=True))
        except (KeyError, ValueError, TypeError, binascii.Error) as error:
            raise ParseError(
                f"restic tree {display(folder)}: node {index}: {error}"
            ) from error
    return nodes
