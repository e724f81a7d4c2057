#!/usr/bin/env python3
"""Check the node lab's results: one line per scenario, exit 0 only if all hold.

Usage: verify.py OUT [--only "clean member-failed ..."]

Every scenario folder must hold what durability-raid.service produced in that state
(raid.json, durability_raid.prom, mdstat, journal.txt, mdadm-events.txt) with the
expected verdict; standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable

ALL = [
    "clean", "member-failed", "rebuilding", "rebuilt", "check-scrub", "scrub-done",
    "rebuild-stalled", "usb-hotplug", "replacing",
]
STATUS_CODE = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
ARTIFACTS = ("raid.json", "durability_raid.prom", "mdstat", "journal.txt", "mdadm-events.txt")


class Failed(Exception):
    """One expectation of a scenario did not hold."""


def facts(folder: str) -> dict[str, str]:
    """Return the scenario's facts.txt as a dict (the last value of a key wins)."""
    result: dict[str, str] = {}
    try:
        with open(os.path.join(folder, "facts.txt"), encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.rstrip("\n").partition("=")
                result[key] = value
    except OSError:
        pass
    return result


def read(folder: str, name: str) -> str:
    try:
        with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError as error:
        raise Failed(f"{name} missing ({error.strerror})") from error


def md0(folder: str) -> dict[str, object]:
    """Return md0's result from the unit's raid.json, after checking the unit's run."""
    for name in ARTIFACTS:
        if not os.path.isfile(os.path.join(folder, name)):
            raise Failed(f"{name} missing")
    f = facts(folder)
    if f.get("unit_result") != "success":
        raise Failed(f"durability-raid.service result {f.get('unit_result')!r}")
    try:
        document = json.loads(read(folder, "raid.json"))
    except json.JSONDecodeError as error:
        raise Failed(f"raid.json is not JSON: {error}") from error
    results = [r for r in document.get("results", []) if r.get("target") == "md0"]
    if len(results) != 1:
        raise Failed(f"raid.json has no single md0 result: {document.get('results')!r:.200}")
    result: dict[str, object] = results[0]
    prom = read(folder, "durability_raid.prom")
    match = re.search(r'^durability_check_status\{[^}]*target="md0"[^}]*\} (\d+)', prom, re.M)
    if not match:
        raise Failed("no durability_check_status for md0 in the textfile")
    if int(match.group(1)) != STATUS_CODE[str(result["status"])]:
        raise Failed(f"textfile says {match.group(1)}, raid.json says {result['status']}")
    if str(f.get("unit_exit_status")) != str(STATUS_CODE[document["status"]]):
        raise Failed(f"unit exit status {f.get('unit_exit_status')} for {document['status']}")
    return result


def expect(result: dict[str, object], status: str, summary: str | None = None) -> str:
    if result["status"] != status:
        raise Failed(f"md0 is {result['status']}, expected {status}: {result['summary']}")
    if summary and not re.search(summary, str(result["summary"])):
        raise Failed(f"md0 summary {result['summary']!r} does not match /{summary}/")
    return f"md0 {status}: {result['summary']}"


def events(folder: str) -> list[str]:
    return [line.split()[1] for line in read(folder, "mdadm-events.txt").splitlines()
            if len(line.split()) > 1 and not line.startswith("#")]


def need_events(folder: str, *names: str) -> None:
    seen = events(folder)
    for name in names:
        if name not in seen:
            raise Failed(f"mdadm event {name} not recorded by the PROGRAM hook (have {seen})")


def members(result: dict[str, object], serials: set[str]) -> None:
    data = result.get("data")
    got = {}
    for m in (data.get("members", []) if isinstance(data, dict) else []):
        got[m.get("serial")] = m
    for serial in sorted(serials):
        m = got.get(serial)
        if m is None:
            raise Failed(f"no member with udev serial {serial} (have {sorted(map(str, got))})")
        if m.get("by_id") != f"/dev/disk/by-id/virtio-{serial}":
            raise Failed(f"member {serial}: by_id {m.get('by_id')!r}, not from udev")


def clean(d: str) -> str:
    result = md0(d)
    members(result, {"nodelab-d0", "nodelab-d1"})
    f = facts(d)
    if f.get("mdmonitor") != "active":
        raise Failed(f"mdmonitor.service is {f.get('mdmonitor')!r}")
    rows = [line for line in read(d, "timer.txt").splitlines() if "durability-raid.timer" in line]
    if not rows or "n/a" in rows[0].split():
        raise Failed(f"durability-raid.timer is not active or never fired: {rows}")
    return expect(result, "OK", r"\[2/2\]|2/2|in sync") + "; members carry udev serial and by_id"


def member_failed(d: str) -> str:
    result = md0(d)
    need_events(d, "Fail")
    return expect(result, "CRITICAL") + "; hook recorded Fail"


def rebuilding(d: str) -> str:
    result = md0(d)
    need_events(d, "Fail", "RebuildStarted")
    data = result["data"]
    assert isinstance(data, dict)
    if data.get("sync_action") != "recover" or not data.get("sync_progress"):
        raise Failed(
            f"not caught mid-rebuild: {data.get('sync_action')} {data.get('sync_progress')}"
        )
    return expect(result, "WARNING", "rebuilding") + f" ({data['sync_progress']:.0%})"


def rebuilt(d: str) -> str:
    before = md0(os.path.join(d, "before-ack"))
    result = md0(d)
    need_events(d, "RebuildFinished")
    members(result, {"nodelab-d0", "nodelab-d2"})
    first = f"before ack {before['status']}: {before['summary']}"
    if before["status"] != "WARNING":
        raise Failed(f"a swapped disk should warn until acknowledged; {first}")
    return expect(result, "OK") + f"; {first}"


def check_scrub(d: str) -> str:
    result = md0(d)
    data = result["data"]
    assert isinstance(data, dict)
    if data.get("sync_action") != "check":
        raise Failed(f"not caught mid-check: sync_action {data.get('sync_action')}")
    return expect(result, "OK", "check scrub running")


def scrub_done(d: str) -> str:
    result = md0(d)
    data = result["data"]
    assert isinstance(data, dict)
    if data.get("last_sync_action") != "check":
        raise Failed(f"last_sync_action {data.get('last_sync_action')}")
    if events(d).count("RebuildFinished") < 2:
        raise Failed("the hook did not record the check's RebuildFinished")
    return expect(result, "OK")


def rebuild_stalled(d: str) -> str:
    first = md0(os.path.join(d, "first-seen"))
    expect(first, "WARNING", "rebuilding")
    result = md0(d)
    f = facts(d)
    if f.get("finished_after_release") != "yes":
        raise Failed("the rebuild did not finish once the disk was released")
    return expect(result, "CRITICAL", "stalled") + " (first seen WARNING)"


def usb_hotplug(d: str) -> str:
    f = facts(d)
    if f.get("copy_unit_started") != "yes":
        raise Failed("the udev rule did not start the copy unit")
    if f.get("copy_unit_result") != "success":
        raise Failed(f"copy unit result {f.get('copy_unit_result')!r} (see journal.txt)")
    before = int(f.get("receipts_after_hand_copy") or 0)
    after = int(f.get("receipts_after_plug") or 0)
    if after != before + 1:
        raise Failed(f"receipts {before} -> {after}, expected one new receipt")
    folder = os.path.join(d, "receipts")
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    if not names:
        raise Failed("no receipt was kept")
    body = json.loads(read(folder, names[-1])).get("receipt", {})
    if body.get("verified") is not True or not body.get("files"):
        raise Failed(f"the newest receipt is not a verified copy: {body}")
    if f.get("other_units") != "0":
        raise Failed("a copy unit was started for the unenrolled disk")
    if f.get("other_marker") != "absent":
        raise Failed("the unenrolled disk got a marker")
    if read(d, "other-before.txt") != read(d, "other-after.txt"):
        raise Failed("the unenrolled disk changed")
    return (f"plug-in copy ran ({f.get('copy_seconds_after_plug')}s), receipt {before} -> {after}; "
            "unenrolled disk untouched")


def replacing(d: str) -> str:
    result = md0(d)
    data = result["data"]
    assert isinstance(data, dict)
    states = [m.get("state", []) for m in data.get("members", [])]
    if not any("replacement" in state for state in states):
        raise Failed(f"no member in state replacement: {states}")
    if "(R)" not in read(d, "mdstat"):
        raise Failed("mdstat shows no (R) member")
    return expect(result, "WARNING")


CHECKS: dict[str, Callable[[str], str]] = {
    "clean": clean,
    "member-failed": member_failed,
    "rebuilding": rebuilding,
    "rebuilt": rebuilt,
    "check-scrub": check_scrub,
    "scrub-done": scrub_done,
    "rebuild-stalled": rebuild_stalled,
    "usb-hotplug": usb_hotplug,
    "replacing": replacing,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--only", default="", help="scenario names (default: all)")
    args = parser.parse_args()
    names = args.only.split() or ALL
    failed = 0
    fatal = os.path.join(args.out, "fatal.txt")
    if os.path.exists(fatal):
        with open(fatal, encoding="utf-8") as handle:
            print(f"FAIL guest: {handle.read().strip()}")
        failed += 1
    for name in names:
        folder = os.path.join(args.out, name)
        try:
            if name not in CHECKS:
                raise Failed("unknown scenario")
            if not os.path.isdir(folder):
                raise Failed("no results (the guest did not get there)")
            line = CHECKS[name](folder)
            print(f"PASS {name}: {line}")
        except (Failed, KeyError, TypeError, ValueError) as error:
            print(f"FAIL {name}: {error}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
