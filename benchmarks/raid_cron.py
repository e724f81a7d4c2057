"""Benchmark the cron path: `durability raid --format nagios` as an operator deploys it.

Installs durability into a fresh virtual environment (a regular, non-editable install),
builds a captured md tree and a config that records state, then runs, interleaved in
one process so machine noise hits every side alike:

  baseline   python -c pass                     (the interpreter alone)
  floor      python -c "import argparse, json, sqlite3, tomllib"
  raid       durability --config C raid --proc-root P --sys-root S --format nagios

and prints medians of wall time and of child CPU time, as ratios to the baseline.
Target: raid at most 3x the baseline. Also times parse_mdstat on a 200-array mdstat.

    python benchmarks/raid_cron.py [--runs 40] [--venv DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CAPTURE = REPO / "tests" / "fixtures" / "md" / "raid1-recovery"


def make_venv(folder: Path) -> Path:
    """Create a venv with a regular (non-editable) install of this checkout."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    constraints = REPO / "requirements" / "ci.txt"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-c", str(constraints), str(REPO)],
        check=True,
    )
    return python


def make_tree(root: Path) -> tuple[Path, Path, Path]:
    """Return (proc, sys, config) for the captured raid1-recovery state."""
    proc = root / "proc"
    block = root / "sys" / "block"
    proc.mkdir(parents=True)
    block.mkdir(parents=True)
    shutil.copyfile(CAPTURE / "mdstat", proc / "mdstat")
    shutil.copytree(CAPTURE / "sysfs" / "md0", block / "md0")
    config = root / "durability.toml"
    config.write_text(f'[state]\npath = "{root / "state.db"}"\n')
    return proc, root / "sys", config


def measure(
    commands: dict[str, list[str]], runs: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Run every command `runs` times, interleaved; return wall and CPU seconds."""
    samples: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if name == "raid" and done.returncode not in (0, 1, 2):
                raise SystemExit(f"raid run failed: {done.stderr.decode()}")
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            samples[name][0].append(wall)
            samples[name][1].append(cpu)
    return samples


def mdstat_200() -> str:
    """Return an mdstat text with 200 RAID1 arrays, a few rebuilding."""
    lines = ["Personalities : [raid1] [raid10] [raid6] [raid5] [raid4]"]
    for n in range(200):
        lines.append(f"md{n} : active raid1 sdb{n}[1] sda{n}[0]")
        lines.append(f"      1048512 blocks super 1.2 [2/{1 if n % 20 == 0 else 2}] "
                     f"[{'U_' if n % 20 == 0 else 'UU'}]")
        if n % 20 == 0:
            lines.append("      [=>...................]  recovery =  9.4% (98560/1048512) "
                         "finish=0.7min speed=22000K/sec")
        lines.append("      bitmap: 1/1 pages [4KB], 65536KB chunk")
        lines.append("")
    lines.append("unused devices: <none>")
    return "\n".join(lines) + "\n"


def bench_parser(python: Path) -> None:
    """Print parse_mdstat time on 200 arrays against splitting the same text into lines."""
    code = (
        "import sys, timeit\n"
        "from durability.raid.mdstat import parse_mdstat\n"
        "text = sys.stdin.read()\n"
        "assert len(parse_mdstat(text).arrays) == 200\n"
        "n = 50\n"
        "parse = min(timeit.repeat(lambda: parse_mdstat(text), number=n, repeat=5)) / n\n"
        "split = min(timeit.repeat(lambda: [l.split() for l in text.splitlines()],"
        " number=n, repeat=5)) / n\n"
        "print(f'parse_mdstat, 200 arrays: {parse * 1000:.2f} ms'"
        " f' ({parse / split:.1f}x splitting its lines into words)')\n"
    )
    subprocess.run([str(python), "-c", code], input=mdstat_200(), text=True, check=True)


def main() -> None:
    """Run the benchmark and print ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--venv", help="reuse this venv instead of building a fresh one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="durability-bench-"))
    try:
        if args.venv:
            python = Path(args.venv) / "bin" / "python"
        else:
            print("building a fresh venv with a regular install...", file=sys.stderr)
            python = make_venv(root / "venv")
        command = python.parent / "durability"
        proc, sysroot, config = make_tree(root / "tree")
        commands = {
            "baseline": [str(python), "-c", "pass"],
            "floor": [str(python), "-c", "import argparse, json, sqlite3, tomllib"],
            "raid": [str(command), "--config", str(config), "raid", "--proc-root", str(proc),
                     "--sys-root", str(sysroot), "--format", "nagios"],
        }
        measure(commands, 3)  # warm caches and the state store
        samples = measure(commands, args.runs)
        wall0 = statistics.median(samples["baseline"][0])
        cpu0 = statistics.median(samples["baseline"][1])
        print(f"runs: {args.runs} interleaved, load average {os.getloadavg()[0]:.2f}")
        for name, (wall, cpu) in samples.items():
            print(
                f"{name:9s} wall {statistics.median(wall) * 1000:7.1f} ms "
                f"({statistics.median(wall) / wall0:4.2f}x)   "
                f"cpu {statistics.median(cpu) * 1000:7.1f} ms "
                f"({statistics.median(cpu) / cpu0:4.2f}x)"
            )
        ratio = statistics.median(samples["raid"][0]) / wall0
        print(f"durability raid --format nagios: {ratio:.2f}x python -c pass (target <= 3x)")
        bench_parser(python)
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
