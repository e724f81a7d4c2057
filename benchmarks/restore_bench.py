"""Benchmark: a restore test against `restic restore --verify` of the same snapshot.

Run on demand (it writes SIZE of random data twice, plus a restic repository):

    .venv/bin/python benchmarks/restore_bench.py            # 1 GiB in 16 files
    .venv/bin/python benchmarks/restore_bench.py --size 256MiB --restic /opt/restic-0.18/restic
    .venv/bin/python benchmarks/restore_bench.py --size 200MiB --files 200000 --rounds 1

Both sides run in the same process on the same snapshot, alternately, and the best of
`--rounds` is kept, so the ratios compare like with like on this machine:
- restore-test wall time (restore, content hashes and every metadata check included)
  / `restic --no-cache restore --verify` wall time (target <= 1.25x), with the test's
  phases; a bare `restic restore` is shown for reference;
- the restore test's own peak memory (restic's processes apart); with more than 1,000
  files, also against a restore test of a tenth of the files (bounded memory: ~1x);
- our hashing throughput / `sha256sum` throughput on the same files (target >= 0.9x).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from durability.units import format_bytes, parse_size


def _timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def _write_data(folder: Path, size: int, files: int) -> list[Path]:
    folder.mkdir(parents=True)
    per_file = max(1, size // files)
    paths = []
    for number in range(files):
        # Many files are spread over folders of at most 1,000, as on a real site.
        sub = folder / f"dir{number // 1000:04d}" if files > 1000 else folder
        sub.mkdir(exist_ok=True)
        path = sub / f"part{number:06d}.bin"
        with open(path, "wb") as handle:
            left = per_file
            while left:
                chunk = min(left, 8 << 20)
                handle.write(os.urandom(chunk))
                left -= chunk
        paths.append(path)
    return paths


def main() -> int:
    """Run the benchmark and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB", help="snapshot size (default 1GiB)")
    parser.add_argument("--files", type=int, default=16, help="number of files (default 16)")
    parser.add_argument("--rounds", type=int, default=2, help="best of N rounds (default 2)")
    parser.add_argument("--workdir", default="/var/tmp", help="where to build the data")
    parser.add_argument("--restic", default="restic", help="restic program (default: on PATH)")
    args = parser.parse_args()
    size = parse_size(args.size)
    root = Path(tempfile.mkdtemp(prefix="durability-bench-", dir=args.workdir))
    restic = shutil.which(args.restic) or args.restic
    os.environ["PATH"] = os.path.dirname(restic) + os.pathsep + os.environ.get("PATH", "")
    try:
        return _run(root, size, args.files, args.rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# Runs the restore test in a process of its own and reports that process's peak memory.
_MEASURED = (
    "import resource, sys\n"
    "from durability.cli import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    sys.stderr.write(f'PEAK_RSS_KIB {peak}\\n')\n"
)


def _run(root: Path, size: int, files: int, rounds: int) -> int:
    from durability.restore.verify import hash_files

    data = root / "data"
    print(f"writing {format_bytes(size)} in {files} files under {root}", flush=True)
    paths = _write_data(data, size, files)
    password = root / "password"
    password.write_text("benchmark-password\n")
    password.chmod(0o600)
    repo = root / "repo"
    env = {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE": str(password)}
    subprocess.run(["restic", "--no-cache", "init"], env=env, check=True, capture_output=True)
    subprocess.run(["restic", "--no-cache", "backup", str(data)], env=env, check=True,
                   capture_output=True)
    scratch = root / "scratch"
    config = root / "durability.toml"
    config.write_text(
        f'[state]\npath = "{root / "state.db"}"\n'
        f'[restore]\nscratch_dir = "{scratch}"\nreserve = "1MiB"\n'
        f'[[snapshots.sources]]\nname = "bench"\nkind = "restic"\n'
        f'repository = "{repo}"\npassword_file = "{password}"\n'
    )
    durability = [sys.executable, "-c", _MEASURED]
    version = subprocess.run(["restic", "version"], capture_output=True, text=True, check=True)
    print(f"{version.stdout.strip()}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    bare_times, verify_times, ours_times, phases, peaks = [], [], [], [], []
    summary = ""
    for _ in range(rounds):
        target = root / "bare"
        bare_times.append(
            _timed(["restic", "--no-cache", "restore", "latest", "--target", str(target)], env)
        )
        shutil.rmtree(target)
        verify_times.append(
            _timed(["restic", "--no-cache", "restore", "latest", "--verify", "--target",
                    str(target)], env)
        )
        shutil.rmtree(target)
        start = time.perf_counter()
        done = subprocess.run(
            [*durability, "--config", str(config), "restore-test", "--format", "json"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )
        ours_times.append(time.perf_counter() - start)
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            return 1
        result = json.loads(done.stdout)["results"][0]
        phases.append(result["data"]["seconds"])
        summary = result["summary"]
        peaks.extend(
            int(line.split()[1]) for line in done.stderr.splitlines()
            if line.startswith("PEAK_RSS_KIB ")
        )
    bare, verify, ours = min(bare_times), min(verify_times), min(ours_times)
    print(f"bare restic restore:        {bare:7.2f}s ({format_bytes(size / bare)}/s)")
    print(f"restic restore --verify:    {verify:7.2f}s (the baseline)")
    print(f"durability restore-test:    {ours:7.2f}s (restore --verify, hash, metadata, clean up)")
    best = phases[ours_times.index(ours)]
    print("restore-test phases:        " + ", ".join(f"{k} {v:.2f}s" for k, v in best.items()))
    print(f"restore-test said:          {summary}")
    if peaks:
        print(f"restore-test peak memory:   {format_bytes(max(peaks) * 1024)} "
              f"({files} files; restic's own processes not counted)")
    print(f"RATIO restore-test / restic restore --verify = {ours / verify:.2f}x "
          "(target <= 1.25x)")
    print(f"ratio restore-test / bare restic restore = {ours / bare:.2f}x")
    print(f"ratio restic restore --verify / bare restic restore = {verify / bare:.2f}x")
    if files > 1000:
        return _memory_scaling(root, files, env, durability, config, max(peaks, default=0))

    names = [str(p) for p in paths]
    for path in names:  # warm the page cache for both sides alike
        with open(path, "rb") as handle:
            while handle.read(8 << 20):
                pass
    sums, ours_hash = [], []
    for _ in range(rounds):
        sums.append(_timed(["sha256sum", *names]))
        start = time.perf_counter()
        hashed = hash_files(names)
        ours_hash.append(time.perf_counter() - start)
        assert all(h.sha256 for h in hashed)
    base, mine = min(sums), min(ours_hash)
    print(f"sha256sum:                  {base:7.2f}s ({format_bytes(size / base)}/s)")
    print(f"durability hash_files:      {mine:7.2f}s ({format_bytes(size / mine)}/s)")
    print(f"RATIO hashing throughput / sha256sum = {base / mine:.2f}x (target >= 0.9x)")
    return 0


def _memory_scaling(
    root: Path, files: int, env: dict[str, str], durability: list[str], config: Path,
    peak: int,
) -> int:
    """Run the restore test on a snapshot of a tenth of the files; print the peak ratio.

    Memory that grows with the snapshot shows about 10x; bounded memory about 1x.
    """
    small = root / "small"
    _write_data(small, files // 10, files // 10)
    subprocess.run(["restic", "--no-cache", "backup", str(small)], env=env, check=True,
                   capture_output=True)
    listed = subprocess.run(["restic", "--no-cache", "snapshots", "--json", "--path", str(small)],
                            env=env, check=True, capture_output=True, text=True)
    snapshot = json.loads(listed.stdout)[-1]["id"]
    done = subprocess.run(
        [*durability, "--config", str(config), "restore-test", "--snapshot", snapshot,
         "--format", "json"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        print(done.stdout, done.stderr, file=sys.stderr)
        return 1
    small_peak = max(
        int(line.split()[1]) for line in done.stderr.splitlines()
        if line.startswith("PEAK_RSS_KIB ")
    )
    print(f"restore-test peak memory at {files // 10} files: {format_bytes(small_peak * 1024)}")
    print(f"RATIO peak memory {files} files / {files // 10} files = {peak / small_peak:.2f}x "
          "(bounded: about 1x; growing with the files: about 10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
