"""Two real `durability run` processes on one private PostgreSQL: one active, one standing by.

The lease lasts 3 s and is renewed every second here (`schedule.lease_ttl`,
`schedule.lease_renew_every`), so a takeover takes a few seconds instead of up to 40.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from durability.service.lease import Lease, LostLease, active_instance
from durability.state.store import Store, open_store
from tests.conftest import CliResult
from tests.remind.conftest import (  # noqa: F401 - fixtures
    MailServer,
    mail_server,
    secret_file,
    tls_files,
)
from tests.service.test_run_process import Running
from tests.support.postgres import Cluster

pytestmark = pytest.mark.state


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def pg_url(postgres_cluster: Cluster) -> Iterator[str]:
    url = postgres_cluster.create_database()
    yield url
    postgres_cluster.drop_database(url)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[Path], Running]]:
    started: list[Running] = []

    def run(config: Path) -> Running:
        child = Running(config, config.parent / f"run{len(started)}.log")
        started.append(child)
        return child

    yield run
    for child in started:
        if child.process.poll() is None:
            with_signal(child, signal.SIGCONT)
        child.close()


def with_signal(child: Running, sig: signal.Signals) -> None:
    os.kill(child.process.pid, sig)


def instance(tmp_path: Path, name: str, url: str, body: str = "", raid: bool = True) -> Path:
    """Write the config of one service instance (its own folder, port and textfiles)."""
    folder = tmp_path / name
    (folder / "proc").mkdir(parents=True)
    secret = folder / "web-secret"
    secret.write_text("a-web-secret-of-enough-length-123\n")
    raid_section = (f'[raid]\nproc_root = "{folder / "proc"}"\nsys_root = "{folder}"\n'
                    "smart = false\n[remind]\nenabled = false\n" if raid
                    else "[raid]\nenabled = false\n")
    config = folder / "durability.toml"
    config.write_text(
        f'[state]\nurl = "{url}"\n' + raid_section
        + f'[schedule]\nraid_every = "1s"\nsnapshots_every = "1h"\nremind_every = "1h"\n'
        f'instance_name = "{name}"\nlease_ttl = "3s"\nlease_renew_every = "1s"\n'
        f'textfile_dir = "{folder}"\nlock_file = "{folder / "run.lock"}"\n'
        f'[web]\nlisten = "127.0.0.1:{_port()}"\nsecret_file = "{secret}"\n'
        'base_url = "https://links.hosting.example"\n' + body
    )
    return config


def listen_port(config: Path) -> int:
    text = config.read_text()
    return int(text.split('listen = "127.0.0.1:', 1)[1].split('"', 1)[0])


def count(child: Running, text: str) -> int:
    return child.stderr().count(text)


def wait_count(child: Running, text: str, at_least: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while count(child, text) < at_least:
        if child.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"saw {text!r} {count(child, text)} times, not {at_least}; "
                                 f"stderr:\n{child.stderr()}")
        time.sleep(0.05)


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def active_gauge(config: Path) -> str:
    return (config.parent / "durability_service.prom").read_text()


def test_standby_runs_nothing_then_takes_over_after_sigkill(
    tmp_path: Path, pg_url: str, start: Callable[[Path], Running],
    cli: Callable[..., CliResult],
) -> None:
    from durability.model import now_utc
    from durability.web.signing import read_secret, sign_token

    alpha_config, beta_config = instance(tmp_path, "alpha", pg_url), instance(tmp_path, "beta",
                                                                              pg_url)
    csv = tmp_path / "one.csv"
    csv.write_text("id,email,name,language\nc-1,a@example.com,A,en\n", encoding="utf-8")
    assert cli("--config", alpha_config, "customers", "import", csv).code == 0
    alpha = start(alpha_config)
    alpha.wait_for("active: this instance (alpha) holds the service lease")
    beta = start(beta_config)
    beta.wait_for("standing by: alpha on ")
    beta.wait_for("serving on http://127.0.0.1:")
    wait_count(alpha, "raid: OK", 3)
    assert "raid: OK" not in beta.stderr() and "raid: UNKNOWN" not in beta.stderr()
    # Both serve the web endpoints: a customer's link opens on either.
    secret = read_secret(str(alpha_config.parent / "web-secret"))
    link = "/l/confirm/" + sign_token(secret, "c-1", "confirm", now_utc())
    assert http_status(listen_port(alpha_config), link) == 200
    beta_secret = read_secret(str(beta_config.parent / "web-secret"))
    assert beta_secret == secret
    assert http_status(listen_port(beta_config), link) == 200
    assert 'durability_service_active{instance_name="alpha"} 1.0' in active_gauge(alpha_config)
    assert 'durability_service_active{instance_name="beta"} 0.0' in active_gauge(beta_config)
    store = open_store(url=pg_url)
    try:
        shown = active_instance(store)
        assert shown is not None and shown.alive
        assert (shown.instance_name, shown.pid) == ("alpha", alpha.process.pid)
        runs_before = len(store.history(check="raid"))

        alpha.process.kill()
        alpha.process.wait(10)
        beta.wait_for("active: this instance (beta) holds the service lease", timeout=60)
        wait_count(beta, "raid: OK", 2, timeout=60)
        shown = active_instance(store)
        assert shown is not None and shown.instance_name == "beta" and shown.epoch == 2
        assert len(store.history(check="raid")) > runs_before
    finally:
        store.close()
    assert 'durability_service_active{instance_name="beta"} 1.0' in active_gauge(beta_config)


def test_sigterm_gives_the_lease_up_standby_takes_it(
    tmp_path: Path, pg_url: str, start: Callable[[Path], Running],
) -> None:
    alpha = start(instance(tmp_path, "alpha", pg_url))
    alpha.wait_for("raid: OK")
    beta = start(instance(tmp_path, "beta", pg_url))
    beta.wait_for("standing by: alpha on ")
    alpha.process.send_signal(signal.SIGTERM)
    assert alpha.process.wait(5) == 0
    beta.wait_for("raid: OK", timeout=30)
    assert "active: this instance (beta)" in beta.stderr()


def test_frozen_active_one_is_fenced_off_after_takeover(
    tmp_path: Path, pg_url: str, start: Callable[[Path], Running],
) -> None:
    """A host cut off (here: the process stopped) loses the lease; back, it writes nothing."""
    alpha = start(instance(tmp_path, "alpha", pg_url))
    alpha.wait_for("raid: OK")
    beta = start(instance(tmp_path, "beta", pg_url))
    beta.wait_for("standing by: alpha on ")
    with_signal(alpha, signal.SIGSTOP)
    beta.wait_for("active: this instance (beta)", timeout=60)
    wait_count(beta, "raid: OK", 1)
    with_signal(alpha, signal.SIGCONT)
    alpha.wait_for("not the active instance", timeout=30)
    ran = count(alpha, "raid: OK")
    wait_count(beta, "raid: OK", 4)
    assert count(alpha, "raid: OK") <= ran + 1  # at most the run frozen half-way ends
    store = open_store(url=pg_url)
    try:
        shown = active_instance(store)
    finally:
        store.close()
    assert shown is not None and shown.instance_name == "beta"


def test_fence_refuses_write_of_a_lease_taken_over(pg_url: str) -> None:
    def opener() -> Store:
        return open_store(url=pg_url)

    old = Lease(opener, "old", ttl=60)
    assert old.try_acquire()
    job = opener()
    old.guard_store(job)
    job.execute("CREATE TABLE fenced (x INTEGER)")
    with job.transaction():
        job.execute("INSERT INTO fenced VALUES (1)")
    # A takeover the old holder's clock has not noticed yet (its local view still says
    # it holds the lease): the database refuses the write.
    usurper = Lease(opener, "new", ttl=60, force=True)
    assert usurper.try_acquire()
    assert old.held()
    with (pytest.raises(LostLease, match="taken over or expired; nothing written"),
          job.transaction()):
        job.execute("INSERT INTO fenced VALUES (2)")
    assert not old.held()
    assert job.query("SELECT x FROM fenced") == [(1,)]
    job.close()
    usurper.release()
    old.release()


def test_standby_once_refused_while_another_is_active(
    tmp_path: Path, pg_url: str, start: Callable[[Path], Running],
    cli: Callable[..., CliResult],
) -> None:
    alpha = start(instance(tmp_path, "alpha", pg_url))
    alpha.wait_for("raid: OK")
    result = cli("--config", instance(tmp_path, "beta", pg_url), "run", "--once")
    assert result.code == 3
    assert "another durability run (alpha on " in result.stderr


# -- reminders ------------------------------------------------------------------------------

COUNT = 6


def smtp_section(server: MailServer) -> str:
    return (
        f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
        'from = "kopie@hosting.example"\nmax_per_hour = 1000\ntimeout = "5s"\n'
        'retry_delay = "0s"\n'
        '[remind]\nprovider_name = "Hosting"\nservice_name = "hosting"\n'
        'unsubscribe_mailto = "wypisz@hosting.example"\n'
    )


@pytest.mark.parametrize("stage", ["data", "rcpt"])
def test_reminder_batch_killed_half_way_standby_sends_each_once(
    tmp_path: Path, pg_url: str, start: Callable[[Path], Running],
    cli: Callable[..., CliResult], mail_server: Callable[..., MailServer], stage: str,
) -> None:
    nth = 3
    server = mail_server(**({"stall_data_at": nth} if stage == "data" else
                            {"stall_rcpt_at": nth}))
    alpha_config = instance(tmp_path, "alpha", pg_url, smtp_section(server), raid=False)
    beta_config = instance(tmp_path, "beta", pg_url, smtp_section(server), raid=False)
    csv = tmp_path / "customers.csv"
    csv.write_text("id,email,name,language\n" + "".join(
        f"c-{i},u{i}@example.com,U {i},en\n" for i in range(COUNT)), encoding="utf-8")
    assert cli("--config", alpha_config, "customers", "import", csv).code == 0

    alpha = start(alpha_config)
    alpha.wait_for("active: this instance (alpha)")
    beta = start(beta_config)
    beta.wait_for("standing by: alpha on ")
    assert server.handler.reached.wait(60), "the server never reached the stall point"
    alpha.process.kill()
    alpha.process.wait(10)
    server.handler.stall_rcpt_at = server.handler.stall_data_at = None
    server.handler.release.set()

    beta.wait_for("active: this instance (beta)", timeout=60)
    beta.wait_for("remind: OK - ", timeout=60)
    received = Counter(server.recipients())
    assert received == Counter({f"u{i}@example.com": 1 for i in range(COUNT)})
    listed = cli("--config", beta_config, "customers", "list", "--format", "json")
    assert listed.code == 0, listed.stderr
    rows: list[dict[str, Any]] = json.loads(listed.stdout)["customers"]
    uncertain = [row for row in rows if "uncertain" in json.dumps(row)]
    if stage == "data":
        # The server had the message when the sender died: marked uncertain, never resent.
        assert len(uncertain) == 1, rows
    else:
        # Claimed but never handed over: the standby sent it.
        assert uncertain == []


def test_takeover_continues_the_schedule_job_just_run_not_repeated(
    tmp_path: Path, pg_url: str, start: Callable[[Path], Running],
) -> None:
    from datetime import datetime, timedelta

    alpha_config = instance(tmp_path, "alpha", pg_url)
    alpha_config.write_text(alpha_config.read_text().replace('raid_every = "1s"',
                                                             'raid_every = "1h"'))
    beta_config = instance(tmp_path, "beta", pg_url)
    beta_config.write_text(beta_config.read_text().replace('raid_every = "1s"',
                                                           'raid_every = "1h"'))
    alpha = start(alpha_config)
    alpha.wait_for("raid: OK")
    beta = start(beta_config)
    beta.wait_for("standing by: alpha on ")
    alpha.process.kill()
    alpha.process.wait(10)
    beta.wait_for("taking over: ", timeout=60)
    store = open_store(url=pg_url)
    try:
        ran = store.history(check="raid")[0]["checked_at"]
    finally:
        store.close()
    line = beta.stderr().split("taking over: ", 1)[1].splitlines()[0]
    planned = line.split("raid next ", 1)[1].split(";", 1)[0]
    due = datetime.fromisoformat(ran.replace("Z", "+00:00")) + timedelta(hours=1)
    assert abs(datetime.fromisoformat(planned.replace("Z", "+00:00")) - due) <= timedelta(
        seconds=1), line
    assert "prune next" in line  # never recorded: runs at once


def test_fence_bound_to_epoch_job_of_an_earlier_lease_refused(pg_url: str) -> None:
    def opener() -> Store:
        return open_store(url=pg_url)

    lease = Lease(opener, "one", ttl=60)
    assert lease.try_acquire()
    job = opener()
    lease.guard_store(job)
    job.execute("CREATE TABLE fenced (x INTEGER)")
    # Lost and taken again: the job begun under the first epoch stays refused.
    lease.lose()
    assert lease.try_acquire() and lease.epoch == 2
    with (pytest.raises(LostLease, match="no longer the active service"), job.transaction()):
        job.execute("INSERT INTO fenced VALUES (1)")
    fresh = opener()
    lease.guard_store(fresh)
    with fresh.transaction():
        fresh.execute("INSERT INTO fenced VALUES (2)")
    assert fresh.query("SELECT x FROM fenced") == [(2,)]
    job.close()
    fresh.close()
    lease.release()
