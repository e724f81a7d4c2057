"""A real node_exporter (Debian package prometheus-node-exporter) reads our textfiles."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.clients.conftest import capture_tree, tool
from tests.conftest import CliResult

TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NodeExporter:
    def __init__(self, folder: Path, log: Path) -> None:
        self.folder = folder
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        program = tool("prometheus-node-exporter")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    program,
                    "--collector.disable-defaults",
                    "--collector.textfile",
                    f"--collector.textfile.directory={self.folder}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"node_exporter exited: {self.log.read_text()}")
            try:
                self.scrape()
                return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"node_exporter did not answer within {TIMEOUT}s: {self.log.read_text()}")

    def scrape(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode("utf-8"))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[NodeExporter]:
    folder = tmp_path / "textfiles"
    folder.mkdir()
    exporter = NodeExporter(folder, tmp_path / "node_exporter.log")
    yield exporter
    exporter.stop()


def test_node_exporter_serves_every_textfile_without_collision(
    node_exporter: NodeExporter,
    tmp_path: Path,
    cli: Callable[..., CliResult],
    write_config: Callable[[str], Path],
) -> None:
    folder = node_exporter.folder
    # The cron job's file (as examples/cron.d writes it), on a degraded capture
    proc, sys = capture_tree(tmp_path, "raid1-faulty")
    cron = cli(
        "raid",
        "--proc-root",
        proc,
        "--sys-root",
        sys,
        "--format",
        "prometheus",
        "--output",
        folder / "durability_raid.prom",
    )
    assert cron.code == 2
    # ... rewritten by the service's raid job (same name: one file, never two)
    from durability.model import Report, Result, Status, now_utc
    from durability.service.textfile import render_job_textfile, textfile_path

    now = now_utc()
    report = Report("snapshots", now, (Result("snapshots", "web", Status.OK, "fresh"),))
    path = textfile_path(str(folder), "snapshots")
    assert Path(path).name == "durability_snapshots.prom"
    Path(path).write_text(render_job_textfile("snapshots", report, now, 2.0, now))
    node_exporter.start()
    text = node_exporter.scrape()
    assert 'durability_check_status{check="raid",target="md0"} 2' in text
    assert 'durability_check_status{check="snapshots",target="web"} 0' in text
    assert 'durability_job_status{durability_job="snapshots"} 0' in text
    assert "exported_job" not in text
    assert "node_textfile_scrape_error 0" in text
    for name in ("durability_raid.prom", "durability_snapshots.prom"):
        assert f'node_textfile_mtime_seconds{{file="{folder / name}"}}' in text
    log = node_exporter.log.read_text()
    assert "collected before" not in log and "level=error" not in log, log


def test_node_exporter_serves_a_node_without_arrays(
    node_exporter: NodeExporter, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = cli(
        "raid",
        "--proc-root",
        empty,
        "--sys-root",
        empty,
        "--format",
        "prometheus",
        "--output",
        node_exporter.folder / "durability_raid.prom",
    )
    assert done.code == 0
    node_exporter.start()
    text = node_exporter.scrape()
    # absent(durability_check_status) must not fire on a node without RAID
    assert 'durability_check_status{check="raid",target="raid"} 0' in text
    assert 'durability_last_run_timestamp_seconds{check="raid"}' in text
    assert "node_textfile_scrape_error 0" in text
    assert "level=error" not in node_exporter.log.read_text()


def test_node_exporter_reports_a_collision_of_two_names(
    node_exporter: NodeExporter, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    # Why one name matters: the same series in two files is an error node_exporter
    # reports (and it drops one), as with the old durability-raid.prom beside
    # durability_raid.prom. This proves the check above can fail.
    proc, sys = capture_tree(tmp_path, "raid1-clean")
    for name in ("durability_raid.prom", "durability-raid.prom"):
        cli(
            "raid",
            "--proc-root",
            proc,
            "--sys-root",
            sys,
            "--format",
            "prometheus",
            "--output",
            node_exporter.folder / name,
        )
    node_exporter.start()
    text = node_exporter.scrape()
    log = node_exporter.log.read_text()
    assert "collected before" in text + log or "node_textfile_scrape_error 1" in text
