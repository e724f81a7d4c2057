"""S3 sources against a real SeaweedFS, over http and https."""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from durability.config.snapshots import SourceSettings
from durability.model import now_utc
from durability.snapshots import s3 as s3_module
from durability.snapshots.evaluate import Policy
from durability.snapshots.s3 import S3Source
from tests.conftest import CliResult
from tests.support.seaweed import SeaweedS3, free_ports

pytestmark = pytest.mark.slow

Cli = Callable[..., CliResult]


def source_toml(endpoint: SeaweedS3, bucket: str, name: str = "s3-backups",
                secret_file: str | None = None, **extra: Any) -> str:
    lines = [
        "[[snapshots.sources]]",
        f'name = "{name}"',
        'kind = "s3"',
        f'bucket = "{bucket}"',
        f'endpoint_url = "{extra.pop("endpoint_url", endpoint.endpoint_url)}"',
        'region = "us-east-1"',
        'addressing_style = "path"',
        f'access_key_id = "{endpoint.access_key_id}"',
        f'secret_access_key_file = "{secret_file or endpoint.secret_file}"',
    ]
    if endpoint.ca_bundle and "ca_bundle" not in extra:
        lines.append(f'ca_bundle = "{endpoint.ca_bundle}"')
    for key, value in extra.items():
        if value is None:
            continue
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def run_json(cli: Cli, config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("--config", config, "snapshots", "--format", "json", *args)
    assert "Traceback" not in result.stderr
    return result.code, json.loads(result.stdout)


def put(endpoint: SeaweedS3, bucket: str, key: str, size: int) -> None:
    endpoint.client().put_object(Bucket=bucket, Key=key, Body=b"x" * size)


def later(days: float) -> str:
    return (now_utc() + timedelta(days=days)).isoformat()


def test_snapshots_s3_fresh_objects_ok(cli: Cli, write_config: Callable[[str], Path],
                                       seaweedfs: SeaweedS3) -> None:
    bucket = seaweedfs.make_bucket()
    put(seaweedfs, bucket, "db/2026-11-24.sql.gz", 1000)
    put(seaweedfs, bucket, "db/2026-11-25.sql.gz", 1200)
    put(seaweedfs, bucket, "other/ignored.txt", 5)
    config = write_config(source_toml(seaweedfs, bucket, prefix="db/", max_shrink="30%"))
    code, doc = run_json(cli, config)
    assert code == 0, doc
    [result] = doc["results"]
    assert result["target"] == "s3-backups"
    assert result["status"] == "OK"
    assert result["data"]["count"] == 2
    assert result["data"]["newest_size_bytes"] == 1200
    assert result["data"]["previous_size_bytes"] == 1000
    assert result["data"]["source"] == "s3-backups"


def test_snapshots_s3_prefix_of_only_checksum_sidecars_critical(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs: SeaweedS3
) -> None:
    bucket = seaweedfs.make_bucket()
    put(seaweedfs, bucket, "db/2026-11-24.sql.gz.sha256", 64)
    put(seaweedfs, bucket, "db/2026-11-25.sql.gz.SHA256", 64)
    config = write_config(source_toml(seaweedfs, bucket, prefix="db/"))
    code, doc = run_json(cli, config)
    assert code == 2, doc
    [result] = doc["results"]
    assert result["summary"] == "no snapshot at all"
    assert result["data"]["checksum_sidecars"] == 2


def test_snapshots_s3_sidecars_beside_backups_not_counted(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs: SeaweedS3
) -> None:
    bucket = seaweedfs.make_bucket()
    put(seaweedfs, bucket, "db/2026-11-25.sql.gz", 1200)
    put(seaweedfs, bucket, "db/2026-11-25.sql.gz.sha256", 64)
    config = write_config(source_toml(seaweedfs, bucket, prefix="db/"))
    code, doc = run_json(cli, config)
    assert code == 0, doc
    assert doc["results"][0]["data"]["count"] == 1
    assert doc["results"][0]["data"]["newest_size_bytes"] == 1200


def test_snapshots_s3_old_objects_stale_critical(cli: Cli, write_config: Callable[[str], Path],
                                                 seaweedfs: SeaweedS3) -> None:
    bucket = seaweedfs.make_bucket()
    put(seaweedfs, bucket, "a.tar", 10)
    config = write_config(source_toml(seaweedfs, bucket))
    code, doc = run_json(cli, config, "--now", later(2))
    assert code == 2
    assert "stale" in doc["results"][0]["summary"]
    code, doc = run_json(cli, config, "--now", later(1.15))
    assert code == 1
    assert "late" in doc["results"][0]["summary"]


def test_snapshots_s3_empty_prefix_critical(cli: Cli, write_config: Callable[[str], Path],
                                            seaweedfs: SeaweedS3) -> None:
    bucket = seaweedfs.make_bucket()
    config = write_config(source_toml(seaweedfs, bucket, prefix="nothing/"))
    code, doc = run_json(cli, config)
    assert code == 2
    assert doc["results"][0]["summary"] == "no snapshot at all"


def test_snapshots_s3_https_with_ca_bundle_ok(cli: Cli, write_config: Callable[[str], Path],
                                              seaweedfs_https: SeaweedS3) -> None:
    bucket = seaweedfs_https.make_bucket()
    put(seaweedfs_https, bucket, "a.tar", 10)
    code, doc = run_json(cli, write_config(source_toml(seaweedfs_https, bucket)))
    assert code == 0, doc


def test_snapshots_s3_https_untrusted_certificate_unknown(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs_https: SeaweedS3
) -> None:
    bucket = seaweedfs_https.make_bucket()
    config = write_config(source_toml(seaweedfs_https, bucket, ca_bundle=None, retries=1))
    code, doc = run_json(cli, config)
    assert code == 3
    assert "TLS failure" in doc["results"][0]["summary"]
    assert doc["status"] == "UNKNOWN"


def test_snapshots_s3_missing_bucket_unknown(cli: Cli, write_config: Callable[[str], Path],
                                             seaweedfs: SeaweedS3) -> None:
    config = write_config(source_toml(seaweedfs, "no-such-bucket-here"))
    code, doc = run_json(cli, config)
    assert code == 3
    assert "bucket does not exist" in doc["results"][0]["summary"]


def test_snapshots_s3_wrong_secret_unknown_without_secret(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs: SeaweedS3, tmp_path: Path
) -> None:
    bucket = seaweedfs.make_bucket()
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("definitely-not-the-secret-123\n")
    config = write_config(source_toml(seaweedfs, bucket, secret_file=str(wrong), retries=1))
    result = cli("--config", config, "snapshots")
    assert result.code == 3
    assert "wrong credentials" in result.stdout
    assert "definitely-not-the-secret-123" not in result.stdout + result.stderr
    assert seaweedfs.secret_access_key not in result.stdout + result.stderr


def test_snapshots_s3_unreadable_secret_file_unknown(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs: SeaweedS3, tmp_path: Path
) -> None:
    config = write_config(source_toml(seaweedfs, "b", secret_file=str(tmp_path / "missing")))
    code, doc = run_json(cli, config)
    assert code == 3
    assert "secret_access_key_file': cannot read" in doc["results"][0]["summary"]


def test_snapshots_s3_endpoint_down_unknown_others_judged(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs: SeaweedS3
) -> None:
    bucket = seaweedfs.make_bucket()
    put(seaweedfs, bucket, "a.tar", 10)
    [port] = free_ports(1)
    config = write_config(
        source_toml(seaweedfs, bucket, name="down", endpoint_url=f"http://127.0.0.1:{port}",
                    retries=1)
        + source_toml(seaweedfs, bucket, name="up")
    )
    code, doc = run_json(cli, config)
    assert code == 3
    by_target = {r["target"]: r for r in doc["results"]}
    assert by_target["up"]["status"] == "OK"
    assert by_target["down"]["status"] == "UNKNOWN"
    assert "cannot connect" in by_target["down"]["summary"]


def test_snapshots_s3_group_by_sets_and_backups(cli: Cli, write_config: Callable[[str], Path],
                                                seaweedfs: SeaweedS3) -> None:
    bucket = seaweedfs.make_bucket()
    for key, size in [
        ("customers/c1/2026-11-24/files.tar", 700), ("customers/c1/2026-11-24/db.sql", 300),
        ("customers/c1/2026-11-25/files.tar", 400), ("customers/c1/2026-11-25/db.sql", 100),
        ("customers/c2/2026-11-25/files.tar", 50), ("customers/README", 1),
    ]:
        put(seaweedfs, bucket, key, size)
    config = write_config(source_toml(
        seaweedfs, bucket, prefix="customers/", max_shrink="30%",
        group_by=r"^(?P<set>[^/]+)/(?P<backup>\d{4}-\d{2}-\d{2})/",
    ))
    code, doc = run_json(cli, config)
    by_target = {r["target"]: r for r in doc["results"]}
    assert set(by_target) == {"s3-backups/c1", "s3-backups/c2"}
    c1 = by_target["s3-backups/c1"]
    # Objects of one backup are summed; the newest (500) shrank 50% from 1000.
    assert c1["data"]["count"] == 2
    assert c1["data"]["newest_size_bytes"] == 500
    assert c1["data"]["previous_size_bytes"] == 1000
    assert c1["status"] == "WARNING"
    assert "shrank 50%" in c1["summary"]
    assert by_target["s3-backups/c2"]["status"] == "OK"
    assert by_target["s3-backups/c2"]["data"]["unmatched_objects"] == 1
    assert code == 1


def test_snapshots_s3_vanished_set_critical(cli: Cli, write_config: Callable[[str], Path],
                                            seaweedfs: SeaweedS3) -> None:
    bucket = seaweedfs.make_bucket()
    put(seaweedfs, bucket, "c1/a.tar", 10)
    put(seaweedfs, bucket, "c2/a.tar", 10)
    config = write_config(source_toml(seaweedfs, bucket, group_by="^([^/]+)/"))
    assert run_json(cli, config)[0] == 0
    seaweedfs.client().delete_object(Bucket=bucket, Key="c2/a.tar")
    code, doc = run_json(cli, config)
    assert code == 2
    by_target = {r["target"]: r["status"] for r in doc["results"]}
    assert by_target == {"s3-backups/c1": "OK", "s3-backups/c2": "CRITICAL"}
    code, doc = run_json(cli, config, "--forget", "s3-backups/c2")
    assert code == 0


def test_snapshots_s3_versioned_bucket_counts_delete_markers(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs: SeaweedS3
) -> None:
    bucket = seaweedfs.make_bucket(versioning=True)
    put(seaweedfs, bucket, "a.tar", 10)
    put(seaweedfs, bucket, "a.tar", 20)
    put(seaweedfs, bucket, "b.tar", 30)
    seaweedfs.client().delete_object(Bucket=bucket, Key="b.tar")
    config = write_config(source_toml(seaweedfs, bucket, require_immutable=True))
    code, doc = run_json(cli, config)
    [result] = doc["results"]
    assert code == 0, result
    assert result["data"]["count"] == 1
    assert result["data"]["newest_size_bytes"] == 20
    assert result["data"]["delete_markers"] == 1
    assert result["data"]["noncurrent_versions"] == 2  # a.tar v1 and the deleted b.tar
    assert result["data"]["versioning"] == "Enabled"


def test_snapshots_s3_object_lock_bucket_immutable(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs: SeaweedS3
) -> None:
    locked = seaweedfs.make_bucket(object_lock=True)
    plain = seaweedfs.make_bucket()
    put(seaweedfs, locked, "a.tar", 10)
    put(seaweedfs, plain, "a.tar", 10)
    config = write_config(
        source_toml(seaweedfs, locked, name="locked", require_immutable=True)
        + source_toml(seaweedfs, plain, name="plain", require_immutable=True)
    )
    code, doc = run_json(cli, config)
    by_target = {r["target"]: r for r in doc["results"]}
    assert by_target["locked"]["status"] == "OK"
    assert by_target["locked"]["data"]["object_lock"] is True
    assert by_target["plain"]["status"] == "WARNING"
    assert "neither Object Lock nor versioning" in by_target["plain"]["summary"]
    assert code == 1


def settings_for(endpoint: SeaweedS3, bucket: str, **extra: Any) -> SourceSettings:
    return SourceSettings(
        name="s", kind="s3", bucket=bucket, endpoint_url=endpoint.endpoint_url,
        region="us-east-1", addressing_style="path", access_key_id=endpoint.access_key_id,
        secret_access_key_file=endpoint.secret_file, ca_bundle=endpoint.ca_bundle, **extra,
    )


def test_gather_s3_many_pages_counts_every_object(
    seaweedfs: SeaweedS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = seaweedfs.make_bucket()
    for index in range(7):
        put(seaweedfs, bucket, f"k{index}", index + 1)
    monkeypatch.setattr(s3_module, "PAGE_SIZE", 2)
    listing = S3Source(settings_for(seaweedfs, bucket), Policy()).gather(datetime.now(UTC))
    backup_set = listing.sets[""]
    assert backup_set.count == 7
    assert backup_set.facts["objects"] == 7
    assert len(backup_set.snapshots) == 2


class ThrottlingProxy:
    """Forwards to SeaweedFS, answering the first `fail` requests with 503 SlowDown."""

    def __init__(self, target: str, fail: int) -> None:
        self.remaining = fail
        self.answered_503 = 0
        host, port = target.removeprefix("http://").split(":")
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with lock:
                    throttle = proxy.remaining > 0
                    if throttle:
                        proxy.remaining -= 1
                        proxy.answered_503 += 1
                if throttle:
                    payload = (b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>"
                               b"<Message>Please reduce your request rate.</Message></Error>")
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection(host, int(port), timeout=30)
                upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _any

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def throttling_proxy(seaweedfs: SeaweedS3) -> Iterator[Callable[[int], ThrottlingProxy]]:
    made: list[ThrottlingProxy] = []

    def make(fail: int) -> ThrottlingProxy:
        made.append(ThrottlingProxy(seaweedfs.endpoint_url, fail))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


def test_gather_s3_slowdown_retried_with_backoff(
    seaweedfs: SeaweedS3, throttling_proxy: Callable[[int], ThrottlingProxy]
) -> None:
    bucket = seaweedfs.make_bucket()
    put(seaweedfs, bucket, "a.tar", 10)
    proxy = throttling_proxy(2)
    settings = settings_for(seaweedfs, bucket, retries=4)
    settings = dataclasses.replace(settings, endpoint_url=proxy.url)
    listing = S3Source(settings, Policy()).gather(datetime.now(UTC))
    assert proxy.answered_503 == 2
    assert listing.sets[""].count == 1


def test_snapshots_s3_throttled_beyond_retries_unknown(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs: SeaweedS3,
    throttling_proxy: Callable[[int], ThrottlingProxy],
) -> None:
    bucket = seaweedfs.make_bucket()
    proxy = throttling_proxy(100)
    config = write_config(source_toml(seaweedfs, bucket, endpoint_url=proxy.url, retries=2))
    code, doc = run_json(cli, config)
    assert code == 3
    assert "SlowDown" in doc["results"][0]["summary"]
    assert proxy.answered_503 == 2


def test_snapshots_s3_encryption_required_never_ok_unproven(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs: SeaweedS3
) -> None:
    bucket = seaweedfs.make_bucket()
    put(seaweedfs, bucket, "a.tar", 10)
    config = write_config(source_toml(seaweedfs, bucket, require_encrypted=True))
    code, doc = run_json(cli, config)
    [result] = doc["results"]
    assert code == 1
    assert "encrypt" in result["summary"]


def test_snapshots_s3_unknown_profile_unknown(
    cli: Cli, write_config: Callable[[str], Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = tmp_path / "aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    config = write_config('[[snapshots.sources]]\nname = "p"\nkind = "s3"\nbucket = "b"\n'
                          'profile = "nope"\n')
    code, doc = run_json(cli, config)
    assert code == 3
    assert "profile" in doc["results"][0]["summary"]
