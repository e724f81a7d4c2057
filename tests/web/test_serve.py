"""`durability serve`: a real waitress server in a subprocess, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durability.model import now_utc
from durability.web.server import parse_listen
from durability.web.signing import sign_token
from tests.web.conftest import SECRET


def _port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_serve_answers_links_and_stops_on_sigterm(
    cli: Any, write_config: Callable[[str], Path], secret_path: Path, tmp_path: Path,
) -> None:
    port = _port()
    config = write_config(f'[web]\nsecret_file = "{secret_path}"\nlisten = "127.0.0.1:{port}"\n')
    csv = tmp_path / "c.csv"
    csv.write_text("id,email,name,language\nc-1,a@example.com,A,en\n", encoding="utf-8")
    assert cli("--config", config, "customers", "import", csv).code == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "durability.cli", "--config", str(config), "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                status, _ = _get(base + "/l/confirm/x")
                break
            except OSError:
                time.sleep(0.1)
        assert status == 403
        token = sign_token(SECRET, "c-1", "confirm", now_utc())
        status, page = _get(f"{base}/l/confirm/{token}")
        assert status == 200 and "I have a copy" in page
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        # Stopped for real: the port no longer answers.
        with pytest.raises(OSError):
            _get(f"{base}/l/confirm/x")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_without_secret_exits_3(cli: Any, write_config: Callable[[str], Path]) -> None:
    result = cli("--config", write_config(""), "serve", "--port", "0")
    assert result.code == 3
    assert "web.secret_file" in result.stderr


def test_serve_port_in_use_exits_3(
    cli: Any, write_config: Callable[[str], Path], secret_path: Path,
) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(f'[web]\nsecret_file = "{secret_path}"\n')
        result = cli("--config", config, "serve", "--port", port)
    assert result.code == 3
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:80", ("::1", 80)),
])
def test_parse_listen_valid(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8080", "host:", ":80", "h:99999", "h:x"])
def test_parse_listen_invalid_raises(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)
