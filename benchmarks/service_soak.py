"""Soak: does a long-lived `durability run` or `durability serve` keep its memory flat?

jobs:  the service's job path (`Service.run_job`, as its worker thread calls it, with the
       service lease held and every job write fenced) runs the RAID job JOBS times
       (default 10,000) back to back on a copy of a real md capture (two-disk RAID 1),
       recording each run; RSS is printed after WARMUP runs (the baseline) and every
       tenth of the way, then the growth from the baseline and per run.
serve: a real `durability serve` process answers REQUESTS requests (default 100,000:
       customer link pages, login pages and fleet reports from 50 nodes, four client
       threads on keep-alive connections); its RSS after the warm-up tenth is the
       baseline, printed with the end.

Both stop early at --max-seconds and say so. Target: flat within 1 MB.

    .venv/bin/python benchmarks/service_soak.py [--part jobs|serve|both]
        [--jobs N] [--requests N] [--backend sqlite|postgresql] [--max-seconds S]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CAPTURE = REPO / "tests" / "fixtures" / "md" / "raid1-clean"


def rss_kib(pid: int | str = "self") -> int:
    """Return the resident set size of a process in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@contextmanager
def state_section(backend: str, folder: Path) -> Iterator[str]:
    """Yield the [state] section of a fresh store."""
    if backend == "sqlite":
        yield f'[state]\npath = "{folder / "state.db"}"\n'
        return
    from tests.support.postgres import running_cluster

    with running_cluster() as cluster:
        yield f'[state]\nurl = "{cluster.create_database()}"\n'


def md_tree(folder: Path) -> tuple[Path, Path]:
    """Copy the md capture into folder; return (proc root, sys root)."""
    proc, sys_root = folder / "proc", folder / "sys"
    (sys_root / "block").mkdir(parents=True)
    proc.mkdir()
    shutil.copyfile(CAPTURE / "mdstat", proc / "mdstat")
    for array in (CAPTURE / "sysfs").iterdir():
        shutil.copytree(array, sys_root / "block" / array.name)
    return proc, sys_root


def soak_jobs(backend: str, jobs: int, warmup: int, max_seconds: float) -> None:
    import logging

    from durability.config import load_config
    from durability.service.command import leadership
    from durability.service.jobs import configured_jobs
    from durability.service.scheduler import Service

    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as name, state_section(backend, Path(name)) as state:
        folder = Path(name)
        proc, sys_root = md_tree(folder)
        config_path = folder / "durability.toml"
        config_path.write_text(
            state + f'[raid]\nproc_root = "{proc}"\nsys_root = "{sys_root}"\nsmart = false\n'
            '[remind]\nenabled = false\n'
            f'[schedule]\nraid_every = "1s"\ntextfile_dir = "{folder}"\n', encoding="utf-8")
        config = load_config(str(config_path))
        specs = [spec for spec in configured_jobs(config) if spec.name == "raid"]
        began = time.monotonic()
        with leadership(config) as keeper:
            service = Service(config, specs, config_path=str(config_path), leadership=keeper)
            baseline = 0
            done = 0
            step = max(1, jobs // 10)
            for done in range(1, jobs + 1):
                run = service.run_job("raid")
                if run.report.status.name != "OK":
                    raise SystemExit(f"raid job not OK: {run.report.summary}")
                if done == warmup:
                    baseline = rss_kib()
                    print(f"jobs/{backend}: RSS after {warmup} warm-up runs: "
                          f"{baseline / 1024:.1f} MiB", flush=True)
                elif done % step == 0 and done > warmup:
                    print(f"jobs/{backend}: RSS after {done} runs: {rss_kib() / 1024:.1f} MiB",
                          flush=True)
                if time.monotonic() - began > max_seconds:
                    print(f"jobs/{backend}: stopped at --max-seconds after {done} runs")
                    break
        end = rss_kib()
        seconds = time.monotonic() - began
        measured = max(1, done - warmup)
        print(f"jobs/{backend}: {done} RAID job runs in {seconds:.0f}s; RSS "
              f"{baseline / 1024:.1f} MiB after warm-up, {end / 1024:.1f} MiB at the end: "
              f"{(end - baseline) / 1024:+.2f} MiB ({(end - baseline) * 1024 / measured:+.0f} "
              f"bytes per run over {measured} runs)")


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def soak_serve(backend: str, requests: int, max_seconds: float) -> None:
    from datetime import UTC, datetime

    from durability.fleet import fleet_payload
    from durability.model import Report, Result, Status
    from durability.web.fleet import token_hash
    from durability.web.signing import sign_token

    with tempfile.TemporaryDirectory() as name, state_section(backend, Path(name)) as state:
        folder = Path(name)
        secret = b"a-web-secret-of-enough-length-for-the-soak"
        (folder / "secret").write_bytes(secret + b"\n")
        nodes = [(f"node{i}", f"token-{i}-" + "x" * 32) for i in range(50)]
        (folder / "nodes").write_text(
            "".join(f"{node}:{token_hash(token)}\n" for node, token in nodes))
        port = _port()
        config = folder / "durability.toml"
        config.write_text(
            state + f'[web]\nsecret_file = "{folder / "secret"}"\n'
            'base_url = "https://links.example"\n'
            f'[status]\nnode_tokens_file = "{folder / "nodes"}"\n', encoding="utf-8")
        (folder / "c.csv").write_text("id,email,name,language\nc-1,a@example.com,A,en\n")
        subprocess.run([sys.executable, "-m", "durability.cli", "--config", str(config),
                        "customers", "import", str(folder / "c.csv")], check=True,
                       cwd=REPO, capture_output=True)
        log = (folder / "serve.log").open("wb")  # a pipe nobody reads would fill and block it
        server = subprocess.Popen(
            [sys.executable, "-m", "durability.cli", "--config", str(config), "serve",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
        try:
            _wait_port(port)
            link = "/l/confirm/" + sign_token(secret, "c-1", "confirm", datetime.now(UTC))
            bodies = [
                (f"Bearer {token}", fleet_payload(Report("raid", datetime.now(UTC), (
                    Result("raid", "md0", Status.OK, "clean"),)), node))
                for node, token in nodes
            ]
            _drive(server.pid, port, link, bodies, requests, max_seconds)
        finally:
            server.terminate()
            server.wait(10)
            log.close()


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("durability serve did not start")


def _drive(pid: int, port: int, link: str, bodies: list[tuple[str, bytes]], total: int,
           max_seconds: float) -> None:
    counter = iter(range(total))
    lock = threading.Lock()
    answered: dict[int, int] = {}
    marks: dict[str, int] = {}
    warm = max(1, total // 10)
    began = time.monotonic()
    stopped = threading.Event()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not stopped.is_set():
            with lock:
                index = next(counter, None)
            if index is None:
                return
            kind = index % 3
            try:
                if kind == 0:
                    connection.request("GET", link)
                elif kind == 1:
                    connection.request("GET", "/status/login")
                else:
                    auth, body = bodies[index % len(bodies)]
                    connection.request("POST", "/fleet/report", body=body,
                                       headers={"Authorization": auth,
                                                "Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            with lock:
                answered[status] = answered.get(status, 0) + 1
                count = sum(answered.values())
                if count == warm:
                    marks["warm"] = rss_kib(pid)
            if time.monotonic() - began > max_seconds:
                stopped.set()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - began
    end = rss_kib(pid)
    count = sum(answered.values())
    baseline = marks.get("warm", end)
    note = " (stopped at --max-seconds)" if stopped.is_set() else ""
    print(f"serve: {count} requests in {seconds:.0f}s{note} ({count / seconds:,.0f}/s), "
          f"answers {dict(sorted(answered.items()))}; server RSS "
          f"{baseline / 1024:.1f} MiB after {warm} warm-up requests, {end / 1024:.1f} MiB at "
          f"the end: {(end - baseline) / 1024:+.2f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("jobs", "serve", "both"), default="both")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    os.environ.setdefault("DURABILITY_CACHE_DIR", tempfile.mkdtemp(prefix="soak-cache-"))
    if args.part in ("jobs", "both"):
        soak_jobs(args.backend, args.jobs, min(args.warmup, args.jobs), args.max_seconds)
    if args.part in ("serve", "both"):
        soak_serve(args.backend, args.requests, args.max_seconds)


if __name__ == "__main__":
    main()
