"""Benchmark: what verification costs on top of a plain restic backup, and startup time.

Run: .venv/bin/python benchmarks/helper_copy.py [--mib 48] [--files 96] [--runs 3]

For the same source folder, in fresh repositories in a temp folder, interleaved so that
machine noise hits both sides alike:

  baseline  restic backup                        (what any copy costs)
  helper    restic backup + check --read-data-subset=1/10 + restore of 20 sample files
            compared with the originals          (what `durability-helper copy` does)

once for a first copy (all data new) and once for a second copy of unchanged data,
where verification is most of the work. Also the start-up of `durability-helper --help`
against `python -c pass` (the helper must stay light). Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from durability.helper.copy import CopyOptions, verify_sample
from durability.helper.folder import Folder
from durability.helper.repo import make_restic, parse_backup_summary, parse_ls_files


def make_source(root: Path, mib: int, files: int) -> None:
    """Fill root with `files` random files totalling about `mib` MiB."""
    root.mkdir(parents=True)
    size = mib * 1024 * 1024 // files
    for index in range(files):
        (root / f"file{index:04d}.bin").write_bytes(os.urandom(size))


def one_run(work: Path, source: Path, verify: bool) -> tuple[float, float]:
    """Return (first copy seconds, second copy seconds) into a fresh repository."""
    password = work / "pw"
    password.write_text("benchmark\n")
    password.chmod(0o600)
    repo = work / f"repo-{time.monotonic_ns()}"
    restic = make_restic(str(repo), str(password), cache_dir=str(work / "cache"))
    restic.run(["init"])
    folder = Folder(work / "helper")
    folder.ensure()
    options = CopyOptions(scratch_dir=str(work / "scratch"), seed=1)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        done = restic.run(["backup", "--json", str(source)])
        if verify:
            snapshot = parse_backup_summary(done.stdout).snapshot_id
            files = parse_ls_files(restic.run(["ls", "--json", snapshot]).stdout)
            restic.run(["check", "--read-data-subset=1/10"])
            verify_sample(restic, snapshot, files, options, random.Random(1), "bench", folder)
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def startup(argv: list[str], runs: int) -> float:
    """Return the median wall time of a short command."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    """Time both sides, interleaved, and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=48)
    parser.add_argument("--files", type=int, default=96)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = work / "source"
        make_source(source, args.mib, args.files)
        base: list[tuple[float, float]] = []
        helper: list[tuple[float, float]] = []
        for _ in range(args.runs):
            base.append(one_run(work, source, verify=False))
            helper.append(one_run(work, source, verify=True))
    for label, index in (("first copy", 0), ("second copy, unchanged", 1)):
        b = statistics.median(run[index] for run in base)
        h = statistics.median(run[index] for run in helper)
        print(f"{label:<24} baseline {b:6.2f}s  helper {h:6.2f}s  ratio {h / b:5.2f}x")
    python = startup([sys.executable, "-c", "pass"], 10)
    helper_start = startup([sys.executable, "-m", "durability.helper.cli", "--help"], 10)
    print(
        f"{'start-up (--help)':<24} baseline {python:6.3f}s  helper {helper_start:6.3f}s  "
        f"ratio {helper_start / python:5.2f}x"
    )


if __name__ == "__main__":
    main()
