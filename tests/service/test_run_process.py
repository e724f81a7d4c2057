"""`durability run` as a real process: signals, the one-instance lock, reload, --once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, CliResult
from tests.service.helpers import open_configured_store


def service_body(tmp_path: Path, raid_every: str = "1h") -> str:
    proc = tmp_path / "proc"
    proc.mkdir(exist_ok=True)
    return (
        f'[raid]\nproc_root = "{proc}"\nsys_root = "{tmp_path}"\nsmart = false\n'
        f'[remind]\nenabled = false\n'
        f'[schedule]\nraid_every = "{raid_every}"\nsnapshots_every = "1h"\n'
        f'lease_ttl = "3s"\nlease_renew_every = "1s"\n'
        f'textfile_dir = "{tmp_path}"\nlock_file = "{tmp_path / "run.lock"}"\n'
    )


class Running:
    """A `durability run` child process whose stderr goes to a file we can poll."""

    def __init__(self, config: Path, log: Path, *extra: str) -> None:
        self.log = log
        self.handle = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "durability.cli", "--config", str(config), "-v", "run",
             *extra],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=self.handle,
        )

    def stderr(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never saw {text!r}; stderr:\n{self.stderr()}")
            time.sleep(0.05)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.handle.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def run(config: Path, *extra: str) -> Running:
        child = Running(config, tmp_path / f"run{len(started)}.log", *extra)
        started.append(child)
        return child

    yield run
    for child in started:
        child.close()


def test_run_sigterm_stops_within_two_seconds_exit_0(
    write_config: Callable[[str], Path], tmp_path: Path, start: Callable[..., Running]
) -> None:
    config = write_config(service_body(tmp_path))
    child = start(config)
    child.wait_for("raid: OK")
    began = time.monotonic()
    child.process.send_signal(signal.SIGTERM)
    code = child.process.wait(5)
    assert time.monotonic() - began < 2.0
    assert code == 0
    assert "stopped" in child.stderr()
    assert (tmp_path / "durability_raid.prom").exists()
    store = open_configured_store(config)
    try:
        assert store.history(check="raid")[0]["summary"] == "no md arrays"
    finally:
        store.close()


def test_run_sigint_stops_exit_0(
    write_config: Callable[[str], Path], tmp_path: Path, start: Callable[..., Running]
) -> None:
    child = start(write_config(service_body(tmp_path)))
    child.wait_for("raid: OK")
    child.process.send_signal(signal.SIGINT)
    assert child.process.wait(5) == 0


def test_run_second_instance_refused_exit_3(
    write_config: Callable[[str], Path], tmp_path: Path, start: Callable[..., Running],
    cli: Callable[..., CliResult],
) -> None:
    config = write_config(service_body(tmp_path))
    first = start(config)
    first.wait_for("raid: OK")
    second = cli("--config", config, "run")
    assert second.code == 3
    assert f"another durability run (pid {first.process.pid}) is already running" in second.stderr
    assert first.process.poll() is None


def test_run_killed_service_next_start_not_blocked(
    write_config: Callable[[str], Path], tmp_path: Path, start: Callable[..., Running]
) -> None:
    config = write_config(service_body(tmp_path))
    first = start(config)
    first.wait_for("raid: OK")
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(5)
    second = start(config)
    second.wait_for("raid: OK")
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(5) == 0


def test_run_sighup_bad_config_kept_good_config_reloaded(
    write_config: Callable[[str], Path], tmp_path: Path, start: Callable[..., Running]
) -> None:
    config = write_config(service_body(tmp_path))
    good = config.read_text()
    child = start(config)
    child.wait_for("raid: OK")
    config.write_text(good + "\n[raid]\nbogus = 1\n")
    child.process.send_signal(signal.SIGHUP)
    child.wait_for("config reload failed, keeping the running config")
    assert child.process.poll() is None
    config.write_text(good.replace('raid_every = "1h"', 'raid_every = "2s"'))
    child.process.send_signal(signal.SIGHUP)
    child.wait_for("config reloaded")
    child.process.send_signal(signal.SIGTERM)
    assert child.process.wait(5) == 0


def test_run_once_prints_each_job_and_exits_with_worst(
    write_config: Callable[[str], Path], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    config = write_config(service_body(tmp_path))
    result = cli("--config", config, "run", "--once")
    assert result.code == 0, result.stderr
    assert "raid: OK - no md arrays" in result.stdout
    assert "prune: OK" in result.stdout


def test_run_report_to_without_token_refused_exit_3(
    write_config: Callable[[str], Path], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    body = service_body(tmp_path).replace(
        "[schedule]\n", '[schedule]\nreport_to = "http://127.0.0.1:9/fleet/report"\n'
    )
    result = cli("--config", write_config(body), "run", "--once")
    assert result.code == 3
    assert "At 'schedule.report_token_file': required with schedule.report_to" in result.stderr


def test_run_same_store_other_lock_file_refused_exit_3(
    write_config: Callable[[str], Path], tmp_path: Path, start: Callable[..., Running],
    cli: Callable[..., CliResult],
) -> None:
    config = write_config(service_body(tmp_path))
    if "postgresql://" in config.read_text():
        pytest.skip("on PostgreSQL a second service stands by (see test_standby.py)")
    first = start(config)
    first.wait_for("raid: OK")
    other = tmp_path / "other.toml"
    other.write_text(config.read_text().replace("run.lock", "other.lock"))
    second = cli("--config", other, "run")
    assert second.code == 3
    assert "only one service may use a state store" in second.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_run_serves_web_and_node_reports_reach_it(
    write_config: Callable[[str], Path], tmp_path: Path, start: Callable[..., Running],
    cli: Callable[..., CliResult],
) -> None:
    import urllib.error
    import urllib.request

    from durability.web.fleet import MIGRATIONS, token_hash

    port = _free_port()
    secret = tmp_path / "secret"
    secret.write_text("a-web-secret-of-enough-length-123\n")
    token = tmp_path / "node-token"
    token.write_text("node-token-" + "q" * 30 + "\n")
    nodes = tmp_path / "nodes"
    nodes.write_text(f"edge-1:{token_hash(token.read_text().strip())}\n")
    central = write_config(
        service_body(tmp_path)
        + f'[web]\nlisten = "127.0.0.1:{port}"\nsecret_file = "{secret}"\n'
        + f'[status]\nnode_tokens_file = "{nodes}"\nusers_file = "{tmp_path / "users"}"\n'
    )
    server = start(central)
    server.wait_for("serving on http://127.0.0.1:")
    base = f"http://127.0.0.1:{port}"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(f"{base}/status", timeout=5)
    assert refused.value.code == 303
    assert refused.value.headers["Location"] == "/status/login?next=/status"

    node_dir = tmp_path / "edge"
    node_dir.mkdir()
    node_config = node_dir / "node.toml"
    node_config.write_text(
        f'[state]\npath = "{node_dir / "state.db"}"\n'
        + service_body(node_dir).replace(
            "[schedule]\n",
            f'[schedule]\nreport_to = "{base}/fleet/report"\n'
            f'report_token_file = "{token}"\nnode_name = "edge-1"\n',
        )
    )
    result = cli("--config", node_config, "run", "--once")
    assert result.code == 0, result.stderr
    assert "not sent to the fleet server" not in result.stderr

    store = open_configured_store(central)
    try:
        store.migrate("fleet", MIGRATIONS)
        rows = store.query("SELECT node, check_name, status, summary FROM fleet_latest")
    finally:
        store.close()
    assert rows == [("edge-1", "raid", "OK", "no md arrays")]
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(5) == 0


def test_run_listen_address_taken_exit_3_with_reason(
    write_config: Callable[[str], Path], tmp_path: Path, cli: Callable[..., CliResult],
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(service_body(tmp_path) + f'[web]\nlisten = "127.0.0.1:{port}"\n')
        result = cli("--config", config, "run")
    assert result.code == 3
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


def test_run_keeps_running_jobs_past_the_lease_lifetime(
    write_config: Callable[[str], Path], tmp_path: Path, start: Callable[..., Running],
) -> None:
    # The lease (3 s here) is renewed on its own thread; jobs go on long after it.
    child = start(write_config(service_body(tmp_path, raid_every="1s")))
    child.wait_for("active: this instance")
    deadline = time.monotonic() + 30
    while child.stderr().count("raid: OK") < 7:
        assert child.process.poll() is None and time.monotonic() < deadline, child.stderr()
        time.sleep(0.1)
    log = child.stderr()
    assert "retrying with backoff" not in log and "not the active instance" not in log, log
    assert 'durability_service_active{instance_name=' in (
        tmp_path / "durability_service.prom").read_text()


def test_run_lease_renewal_too_slow_for_its_lifetime_exit_3(
    write_config: Callable[[str], Path], tmp_path: Path, cli: Callable[..., CliResult],
) -> None:
    body = service_body(tmp_path).replace('lease_renew_every = "1s"', 'lease_renew_every = "2s"')
    result = cli("--config", write_config(body), "run", "--once")
    assert result.code == 3
    assert ("At 'schedule.lease_renew_every': must be at most a third of schedule.lease_ttl"
            in result.stderr)
