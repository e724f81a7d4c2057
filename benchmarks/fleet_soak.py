"""Soak: 1,000 simulated nodes report to `durability serve` on PostgreSQL over loopback.

Time is compressed: each round every node sends one RAID report (dated one 5-minute
interval after its previous one, so the dates are those of a real fleet at the default
`schedule.raid_every`), and a round lasts PERIOD real seconds (default 10 s, so 1,000
reports every 10 s). A few nodes stop reporting after the second round. Bounded by
--rounds and --max-seconds.

Prints p50 and p99 latency per report (client side, loopback), the CPU seconds per
report of the `durability serve` process and of PostgreSQL (the postmaster and its
backends), checks that no report was lost (every answer 200 and recorded, one history
row per report, each node's latest report the last one it sent), and that exactly the
silent nodes show as stale on the status page's data, and only once three intervals
(plus the page's 5-minute grace) have passed since their last report.

    .venv/bin/python benchmarks/fleet_soak.py [--nodes 1000] [--rounds 6] [--period 10]
        [--silent 10] [--clients 8] [--max-seconds 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.postgres import Cluster, running_cluster  # noqa: E402

INTERVAL = timedelta(minutes=5)  # the default schedule.raid_every of the simulated nodes


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int, children: bool = False) -> float:
    """Return the CPU time (user + system) of a process, with its reaped children if asked."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu(root: str) -> float:
    """Return the CPU time of a private cluster: the postmaster, its reaped and live children."""
    with open(os.path.join(root, "data", "postmaster.pid"), encoding="ascii") as handle:
        postmaster = int(handle.readline())
    total = cpu_seconds(postmaster, children=True)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            if parent == postmaster:
                total += cpu_seconds(int(entry))
        except (OSError, ValueError):
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--period", type=float, default=10.0)
    parser.add_argument("--silent", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args()
    if args.rounds < 3:
        raise SystemExit("--rounds must be at least 3")
    os.environ.setdefault("DURABILITY_CACHE_DIR", tempfile.mkdtemp(prefix="fleet-cache-"))

    with tempfile.TemporaryDirectory() as name, running_cluster() as cluster:
        run(Path(name), cluster, args)


def run(folder: Path, cluster: Cluster, args: argparse.Namespace) -> None:
    from durability.fleet import fleet_payload
    from durability.model import Report, Result, Status
    from durability.web.fleet import token_hash

    url = cluster.create_database()
    nodes = [(f"node{i:04d}", f"fleet-token-{i:04d}-" + os.urandom(16).hex())
             for i in range(args.nodes)]
    tokens_file = folder / "nodes"
    tokens_file.write_text("".join(f"{node}:{token_hash(token)}\n" for node, token in nodes))
    tokens_file.chmod(0o600)
    secret = folder / "secret"
    secret.write_text("a-web-secret-of-enough-length-for-the-fleet\n")
    secret.chmod(0o600)
    config = folder / "central.toml"
    config.write_text(
        f'[state]\nurl = "{url}"\n[web]\nsecret_file = "{secret}"\n'
        f'[status]\nnode_tokens_file = "{tokens_file}"\n', encoding="utf-8")
    port = _port()
    log = (folder / "serve.log").open("wb")  # a pipe nobody reads would fill and block it
    server = subprocess.Popen(
        [sys.executable, "-m", "durability.cli", "--config", str(config), "serve",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait_port(port)
        silent = {node for node, _ in nodes[len(nodes) - args.silent:]}
        base = datetime.now(UTC).replace(microsecond=0) - INTERVAL * (args.rounds + 1)
        latencies: list[float] = []
        answers: dict[str, int] = {}
        sent: dict[str, datetime] = {}
        lock = threading.Lock()
        began = time.monotonic()
        cpu_before = cpu_seconds(server.pid)
        pg_before = postgres_cpu(cluster.root)
        rounds_done = 0
        for round_index in range(args.rounds):
            if time.monotonic() - began > args.max_seconds:
                print(f"stopped at --max-seconds after {rounds_done} rounds")
                break
            when = base + INTERVAL * round_index
            batch = [(node, token) for node, token in nodes
                     if round_index < 2 or node not in silent]
            bodies = [(node, token, fleet_payload(Report("raid", when, (
                Result("raid", "md0", Status.OK, "clean, 2 of 2 in sync",
                       data={"level": "raid1", "in_sync": 2}),
                Result("raid", "md1", Status.OK, "clean, 2 of 2 in sync",
                       data={"level": "raid1", "in_sync": 2}),
            )), node)) for node, token in batch]
            round_began = time.monotonic()
            _send_round(port, bodies, args.clients, args.period, latencies, answers, lock)
            for node, _ in batch:
                sent[node] = when
            rounds_done += 1
            rest = args.period - (time.monotonic() - round_began)
            print(f"round {round_index + 1}: {len(batch)} reports in "
                  f"{time.monotonic() - round_began:.1f}s", flush=True)
            if rest > 0 and round_index < args.rounds - 1:
                time.sleep(rest)
        cpu = cpu_seconds(server.pid) - cpu_before
        pg_cpu = postgres_cpu(cluster.root) - pg_before
        total = len(latencies)
        ordered = sorted(latencies)
        p50 = statistics.median(ordered)
        p99 = ordered[min(total - 1, int(total * 0.99))]
        print(f"{total} reports from {len(nodes)} nodes in {rounds_done} rounds "
              f"({time.monotonic() - began:.0f}s); answers {answers}")
        print(f"latency per report: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
        print(f"CPU per report: durability serve {cpu / total * 1000:.2f} ms, "
              f"PostgreSQL {pg_cpu / total * 1000:.2f} ms "
              f"(load average {os.getloadavg()[0]:.2f})")
        _check(url, config, sent, silent, total, answers)
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


def _send_round(port: int, bodies: list[tuple[str, str, bytes]], clients: int, period: float,
                latencies: list[float], answers: dict[str, int], lock: threading.Lock) -> None:
    """Send every body once, spread over `period` seconds, from `clients` threads."""
    queue = iter(range(len(bodies)))
    started = time.monotonic()
    spacing = period * 0.8 / max(1, len(bodies))

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                index = next(queue, None)
            if index is None:
                connection.close()
                return
            due = started + index * spacing
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            _, token, body = bodies[index]
            sent_at = time.perf_counter()
            try:
                connection.request("POST", "/fleet/report", body=body, headers={
                    "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status, answer = 0, str(error).encode()
            took = time.perf_counter() - sent_at
            key = str(status)
            if status == 200 and json.loads(answer).get("status") != "recorded":
                key = "200-not-recorded"
            with lock:
                latencies.append(took)
                answers[key] = answers.get(key, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _check(url: str, config: Path, sent: dict[str, datetime], silent: set[str], total: int,
           answers: dict[str, int]) -> None:
    from durability.config import load_config
    from durability.model import isoformat_z
    from durability.state.store import open_store
    from durability.web.status import gather_status

    problems = []
    if answers != {"200": total}:
        problems.append(f"not every report was recorded: {answers}")
    store = open_store(url=url)
    try:
        runs = store.query_one("SELECT COUNT(*) FROM fleet_runs")
        if runs is None or int(runs[0]) != total:
            problems.append(f"history holds {runs} reports, {total} were sent")
        latest = dict(store.query("SELECT node, MAX(checked_at) FROM fleet_latest GROUP BY node"))
        wrong = [node for node, when in sent.items() if latest.get(node) != isoformat_z(when)]
        if wrong:
            problems.append(f"{len(wrong)} node(s) without their last report, e.g. {wrong[:3]}")
        settings = load_config(str(config))
        store.history(limit=1)  # the page reads the core history table too: create it
        now = datetime.now(UTC)
        stale = {n.node for n in gather_status(store, settings, now).nodes if n.stale}
        if stale != silent:
            problems.append(f"stale now: {sorted(stale)[:5]}..., expected the silent ones")
        last_silent = min(sent[node] for node in silent) if silent else now
        grace = timedelta(seconds=3 * (settings.schedule.raid_every or 300.0) + 300)
        before = {n.node for n in gather_status(store, settings, last_silent + grace).nodes
                  if n.stale and n.node in silent}
        after = {n.node for n in gather_status(store, settings,
                                               last_silent + grace + timedelta(seconds=1)).nodes
                 if n.stale and n.node in silent}
        if before or after != silent:
            problems.append("silent nodes not stale exactly after three intervals plus grace")
    finally:
        store.close()
    print(f"silent nodes: {len(silent)}, stale on the status page: {len(stale)} "
          f"(stale once {grace} has passed since the last report: three {INTERVAL} "
          "intervals plus 5 minutes)")
    if problems:
        for problem in problems:
            print(f"PROBLEM: {problem}")
        raise SystemExit(1)
    print("no report lost: every report answered 200 and recorded, every node's latest is "
          "the last one it sent")


if __name__ == "__main__":
    main()
