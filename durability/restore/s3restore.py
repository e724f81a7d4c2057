"""Restore tests of S3 object backups: download, verify against the stored checksum.

One object (the latest, a random one, or a named key) is downloaded into scratch,
streamed, in parallel ranges when it is large. It is then verified against the best
checksum the provider keeps, and the result says which: the object's full SHA-256
checksum (`x-amz-checksum-sha256`), else a `KEY.sha256` sidecar manifest next to it,
else the MD5 ETag of a single-part upload. A tar archive is unpacked and its
members are read and checked too (sizes, the compression's CRC, and a SHA256SUMS
member if the archive carries one).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import posixpath
import random
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from durability.config.restore import RestoreSettings
from durability.config.snapshots import SourceSettings
from durability.errors import DurabilityError
from durability.model import Status
from durability.restore import scratch as scratch_mod
from durability.restore.outcome import Outcome, PhaseTimer
from durability.restore.progress import Progress, QuietProgress
from durability.restore.runner import Facts, Options, Stop, cleanup_scratch
from durability.restore.verify import Mismatch, hash_files

log = logging.getLogger(__name__)

PART_SIZE = 16 * 1024 * 1024
PARALLEL_PARTS = 4
SIDECAR_SUFFIX = ".sha256"
MANIFEST_NAMES = ("SHA256SUMS", "sha256sums.txt", "SHA256SUMS.txt")
_TAR_NAME = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tbz2|tar\.xz|txz)$", re.I)


@dataclass(frozen=True)
class S3Object:
    """One object under the source's prefix."""

    key: str
    size: int
    last_modified: datetime
    etag: str


@dataclass(frozen=True)
class Expected:
    """What the object should hash to, and where that value comes from."""

    kind: str  # "sha256" or "md5"
    value: str  # lowercase hex
    origin: str


def choose_object(
    objects: list[S3Object], which: str, prefix: str, now: datetime, rng: random.Random
) -> S3Object:
    """Given the objects, return the one `which` names: latest, random, or a key.

    Objects dated more than 5 minutes in the future are refused. Raise Stop (UNKNOWN)
    if none fits.
    """
    future = now + timedelta(minutes=5)
    if which in ("latest", "random"):
        usable = [o for o in objects if o.last_modified <= future]
        if not usable:
            raise Stop(Status.UNKNOWN, "no backup object to test under the prefix")
        if which == "latest":
            return max(usable, key=lambda o: (o.last_modified, o.key))
        return rng.choice(usable)
    for candidate in (which, prefix + which):
        for item in objects:
            if item.key == candidate:
                if item.last_modified > future:
                    raise Stop(Status.UNKNOWN, f"object {item.key} is dated in the future")
                return item
    raise Stop(Status.UNKNOWN, f"object {which} not found under the prefix")


def full_restore_bytes(objects: list[S3Object], prefix: str) -> int:
    """Return the bytes of a full restore: the newest object of each folder under the prefix."""
    newest: dict[str, S3Object] = {}
    for item in objects:
        folder = posixpath.dirname(item.key[len(prefix):])
        if folder not in newest or item.last_modified > newest[folder].last_modified:
            newest[folder] = item
    return sum(item.size for item in newest.values())


def expected_checksum(head: dict[str, Any], sidecar: str | None) -> Expected | None:
    """Given HEAD of the object and its sidecar text, return what to verify against.

    A composite (multipart) SHA-256 and a multipart ETag cannot be compared with the
    whole object's hash and are skipped.
    """
    stored = head.get("ChecksumSHA256")
    if stored and "-" not in stored and head.get("ChecksumType", "FULL_OBJECT") != "COMPOSITE":
        try:
            value = base64.b64decode(stored).hex()
        except ValueError:
            value = ""
        if len(value) == 64:
            return Expected("sha256", value, "the object's SHA-256 checksum")
    if sidecar is not None:
        match = re.match(r"\s*([0-9a-fA-F]{64})\b", sidecar)
        if match:
            return Expected("sha256", match.group(1).lower(), "the .sha256 sidecar manifest")
    etag = str(head.get("ETag", "")).strip('"')
    if re.fullmatch(r"[0-9a-fA-F]{32}", etag) and not head.get("SSEKMSKeyId"):
        return Expected("md5", etag.lower(), "the MD5 ETag of a single-part upload")
    return None


def parse_manifest(text: str) -> dict[str, str]:
    """Given `sha256sum` output, return {path: hex digest} (paths without ./ or *)."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^([0-9a-fA-F]{64})\s+\*?(.+)$", line.strip())
        if match:
            entries[match.group(2).strip().removeprefix("./")] = match.group(1).lower()
    return entries


def run_s3(
    source: SourceSettings,
    settings: RestoreSettings,
    options: Options,
    now: datetime,
    progress: Progress | None = None,
) -> Outcome:
    """Given an s3 source, download one object into scratch, verify it, clean up.

    Return the facts; raise Terminated (after cleaning up) if told to stop.
    """
    progress = progress or QuietProgress()
    facts = Facts(Outcome(source=source.name, kind="s3", mode="full"))
    timer = PhaseTimer()
    holder: list[scratch_mod.Scratch] = []
    try:
        scratch_mod.ensure_parent(settings.scratch_dir)
        scratch_mod.sweep_stale(settings.scratch_dir)
        with scratch_mod.terminate_as_exception():
            try:
                _s3_phases(source, settings, options, now, progress, facts, timer, holder)
            finally:
                cleanup_scratch(holder, options.keep, facts, timer)
    except Stop as stop:
        facts.update(failure=str(stop), failure_status=stop.status)
    except scratch_mod.ScratchError as error:
        facts.update(failure=str(error), failure_status=Status.UNKNOWN)
    except DurabilityError as error:
        facts.update(
            failure=str(error), failure_status=Status.CRITICAL if holder else Status.UNKNOWN
        )
    facts.update(seconds=tuple(timer.seconds.items()))
    return facts.outcome


def _s3_phases(
    source: SourceSettings,
    settings: RestoreSettings,
    options: Options,
    now: datetime,
    progress: Progress,
    facts: Facts,
    timer: PhaseTimer,
    holder: list[scratch_mod.Scratch],
) -> None:
    from durability.s3client import build_s3_client, describe_aws_error

    if not source.bucket:
        raise Stop(Status.UNKNOWN, f"source {source.name} has no bucket")
    bucket, prefix = source.bucket, source.prefix
    where = f"s3://{bucket}/{prefix}"
    rng: random.Random = random.SystemRandom()
    if options.seed is not None:
        rng = random.Random(options.seed)  # noqa: S311 - tests fix the choice
    with timer.phase("list"):
        try:
            client = build_s3_client(source)
            objects = list(_list_objects(client, bucket, prefix))
        except DurabilityError as error:
            raise Stop(Status.UNKNOWN, str(error)) from error
        except Exception as error:  # botocore's many error types: one line each
            raise Stop(Status.UNKNOWN, describe_aws_error(error, where)) from error
        chosen = choose_object(objects, options.snapshot, prefix, now, rng)
        facts.update(
            snapshot_id=chosen.key, snapshot_time=chosen.last_modified,
            full_size_bytes=full_restore_bytes(objects, prefix), files_expected=1,
        )
        try:
            head = client.head_object(Bucket=bucket, Key=chosen.key, ChecksumMode="ENABLED")
            sidecar = _read_sidecar(client, bucket, chosen.key)
        except Exception as error:
            raise Stop(
                Status.UNKNOWN, describe_aws_error(error, f"s3://{bucket}/{chosen.key}")
            ) from error
    size = int(head.get("ContentLength", chosen.size))
    tar_expected = bool(_TAR_NAME.search(chosen.key))
    # A tar is unpacked as well: room for the object and its members.
    scratch_mod.check_space(
        settings.scratch_dir, size * (3 if tar_expected else 1), settings.reserve
    )
    scratch = scratch_mod.create(settings.scratch_dir)
    holder.append(scratch)
    os.makedirs(scratch.downloads, mode=0o700)
    target = os.path.join(scratch.downloads, posixpath.basename(chosen.key) or "object")
    with timer.phase("restore"), progress.phase("download", size) as advance:
        try:
            written = download(client, bucket, chosen.key, size, target, advance)
        except OSError as error:
            if scratch_mod.is_no_space(error):
                raise Stop(Status.UNKNOWN, f"scratch disk full: {error}") from error
            raise Stop(Status.CRITICAL, f"cannot write the download: {error}") from error
        except Exception as error:
            raise Stop(
                Status.CRITICAL,
                "read error: " + describe_aws_error(error, f"s3://{bucket}/{chosen.key}"),
            ) from error
    facts.update(files_restored=1, bytes_restored=written)
    with timer.phase("verify"):
        _verify_object(chosen, head, sidecar, target, written, size, scratch, facts)


def _list_objects(client: Any, bucket: str, prefix: str) -> Iterator[S3Object]:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            key = str(item["Key"])
            if key.endswith(SIDECAR_SUFFIX) or key.endswith("/"):
                continue
            modified = item["LastModified"]
            yield S3Object(
                key=key,
                size=int(item.get("Size", 0)),
                last_modified=modified.astimezone(UTC),
                etag=str(item.get("ETag", "")).strip('"'),
            )


def _read_sidecar(client: Any, bucket: str, key: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        response = client.get_object(Bucket=bucket, Key=key + SIDECAR_SUFFIX)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    body: bytes = response["Body"].read(4096)
    return body.decode("utf-8", errors="replace")


def download(
    client: Any, bucket: str, key: str, size: int, target: str,
    advance: Callable[[int], None] | None = None,
    part_size: int = PART_SIZE, workers: int = PARALLEL_PARTS,
) -> int:
    """Download an object to target, streamed; in parallel ranges when it is large.

    Return the bytes written. Raise OSError (local) or botocore errors (remote).
    """
    advance = advance or (lambda _count: None)
    if size <= part_size:
        written = 0
        with open(target, "wb") as handle:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(1 << 20):
                handle.write(chunk)
                written += len(chunk)
                advance(len(chunk))
        return written
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, size)

        def fetch(start: int) -> int:
            end = min(start + part_size, size) - 1
            body = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")["Body"]
            offset = start
            for chunk in body.iter_chunks(1 << 20):
                os.pwrite(fd, chunk, offset)
                offset += len(chunk)
                advance(len(chunk))
            if offset != end + 1:
                raise OSError(f"range {start}-{end} came back short ({offset - start} bytes)")
            return offset - start

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return sum(pool.map(fetch, range(0, size, part_size)))
    finally:
        os.close(fd)


def file_digests(path: str) -> tuple[str, str]:
    """Return (sha256 hex, md5 hex) of a file, read once."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def _verify_object(
    chosen: S3Object,
    head: dict[str, Any],
    sidecar: str | None,
    target: str,
    written: int,
    size: int,
    scratch: scratch_mod.Scratch,
    facts: Facts,
) -> None:
    mismatches: list[Mismatch] = []
    if written != size:
        mismatches.append(
            Mismatch(chosen.key.encode(), f"downloaded {written} bytes, expected {size}")
        )
    expected = expected_checksum(head, sidecar)
    sha, md5 = file_digests(target)
    verified = 0
    if expected is not None:
        actual = sha if expected.kind == "sha256" else md5
        if actual != expected.value:
            mismatches.append(
                Mismatch(
                    chosen.key.encode(),
                    f"{expected.kind.upper()} {actual} differs from {expected.origin} "
                    f"({expected.value})",
                )
            )
        else:
            verified = 1
    members = 0
    if tarfile.is_tarfile(target) or _TAR_NAME.search(chosen.key):
        members, member_problems, member_verified = verify_tar(target, scratch.tree)
        mismatches.extend(Mismatch(f"{chosen.key}:{p}".encode(), why) for p, why in member_problems)
        facts.update(notes=(*facts.outcome.notes, f"tar archive: {members} file member(s)"))
        verified += member_verified
    facts.update(
        checksum=expected.origin if expected else None,
        files_expected=1 + members,
        files_restored=1 + members,
        files_verified=verified,
        mismatches=tuple(sorted(mismatches, key=lambda m: m.path)),
    )


def verify_tar(path: str, into: str) -> tuple[int, list[tuple[str, str]], int]:
    """Unpack a tar archive into a folder and check every member.

    Return (file members, [(member, problem)], members whose hash was checked against
    a SHA256SUMS member). A damaged archive (bad header, truncated, CRC error) is one
    problem naming where it broke.
    """
    problems: list[tuple[str, str]] = []
    files: list[tarfile.TarInfo] = []
    os.makedirs(into, mode=0o700, exist_ok=True)
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if member.isfile():
                    files.append(member)
                archive.extract(member, into, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        where = files[-1].name if files else "archive"
        problems.append((where, f"archive unreadable: {type(error).__name__}: {error}"))
        return len(files), problems, 0
    for member in files:
        extracted = os.path.join(into, member.name)
        try:
            got = os.path.getsize(extracted)
        except OSError as error:
            problems.append((member.name, f"not unpacked: {error.strerror}"))
            continue
        if got != member.size:
            problems.append((member.name, f"size {got}, expected {member.size}"))
    manifest = _find_manifest(files, into)
    checked = 0
    if manifest:
        listed = [m for m in files if m.name.removeprefix("./") in manifest]
        hashed = hash_files(os.path.join(into, m.name) for m in listed)
        for member, item in zip(listed, hashed, strict=True):
            want = manifest[member.name.removeprefix("./")]
            if item.sha256 is None:
                problems.append((member.name, f"read error: {item.error}"))
            elif item.sha256 != want:
                problems.append((member.name, "SHA-256 differs from the archive's SHA256SUMS"))
            else:
                checked += 1
        names = {m.name.removeprefix("./") for m in files}
        for missing in sorted(set(manifest) - names):
            problems.append((missing, "listed in SHA256SUMS but not in the archive"))
    return len(files), problems, checked


def _find_manifest(files: list[tarfile.TarInfo], into: str) -> dict[str, str] | None:
    for member in files:
        if posixpath.basename(member.name) in MANIFEST_NAMES:
            with open(os.path.join(into, member.name), encoding="utf-8", errors="replace") as f:
                entries = parse_manifest(f.read())
            base = posixpath.dirname(member.name.removeprefix("./"))
            return {posixpath.join(base, name) if base else name: digest
                    for name, digest in entries.items()}
    return None

