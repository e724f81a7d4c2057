"""Benchmark: one S3 snapshots run over many customer prefixes, against a bare listing.

Run: .venv/bin/python benchmarks/snapshots_s3.py [--prefixes 10000] [--objects 100000]
     [--runs 3] [--workers 4]

Starts a real SeaweedFS (`weed mini`, tests/support/seaweed.py), fills one bucket with
`--objects` objects spread over `--prefixes` customer prefixes (`cNNNNN/DATE.tar`), then,
interleaved so that machine noise hits both sides alike:

  baseline  a bare boto3 loop: list_objects_v2 paginator over the bucket, counting
            objects (the least any listing-based check must do)
  check     the snapshots check of that bucket as an s3 source with
            group_by = "^(?P<set>[^/]+)/": gather (listing, grouping into one set per
            prefix) and evaluation into one result per prefix
  full      the same through `run_snapshots` with the set history in a SQLite store

and prints the best wall time of each with its ratio to the baseline (target: check at
most 1.2x). Then one traced gather reports the peak Python memory, per set and per
object: memory grows with the sets reported, not the objects listed.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from durability.config import parse_config
from durability.config.snapshots import SourceSettings
from durability.context import Context
from durability.snapshots.command import run_snapshots
from durability.snapshots.evaluate import Policy, evaluate_listing
from durability.snapshots.s3 import S3Source
from tests.support.seaweed import SeaweedS3, running_server

GROUP_BY = "^(?P<set>[^/]+)/"


def fill(filer_url: str, bucket: str, prefixes: int, objects: int, workers: int) -> float:
    """Write `objects` small objects spread over `prefixes` prefixes; return seconds taken.

    Objects go in through the filer's HTTP API (the bucket is the filer folder
    /buckets/NAME): the same objects S3 lists, written far faster than signed S3 PUTs,
    so filling 100,000 objects takes minutes rather than a quarter of an hour.
    """
    per_prefix = max(1, objects // prefixes)
    keys = [
        f"c{p:05d}/2026-11-{(d % 28) + 1:02d}-{d:04d}.tar"
        for p in range(prefixes)
        for d in range(per_prefix)
    ][:objects]
    host, port = filer_url.removeprefix("http://").split(":")
    started = time.perf_counter()

    def put(chunk: list[str]) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        for key in chunk:
            connection.request("PUT", f"/buckets/{bucket}/{key}", body=b"b" * (len(key) % 7 + 1))
            answer = connection.getresponse()
            answer.read()
            if answer.status >= 300:
                raise RuntimeError(f"filer PUT {key}: HTTP {answer.status}")
        connection.close()

    chunks = [keys[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(put, chunks))
    return time.perf_counter() - started


def baseline(endpoint: SeaweedS3, bucket: str) -> int:
    """List every object with a bare boto3 paginator; return the count."""
    client = endpoint.client()
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for _ in page.get("Contents", ()):
            count += 1
    return count


def settings(endpoint: SeaweedS3, bucket: str) -> SourceSettings:
    """Return the s3 source settings of the benchmark bucket."""
    return SourceSettings(
        name="customers", kind="s3", bucket=bucket, endpoint_url=endpoint.endpoint_url,
        region="us-east-1", addressing_style="path", access_key_id=endpoint.access_key_id,
        secret_access_key_file=endpoint.secret_file, group_by=GROUP_BY,
    )


def check(endpoint: SeaweedS3, bucket: str) -> int:
    """Gather and evaluate the bucket as the snapshots check does; return the result count."""
    now = datetime.now(UTC)
    listing = S3Source(settings(endpoint, bucket), Policy()).gather(now)
    return len(evaluate_listing(listing, Policy(), now))


def full(endpoint: SeaweedS3, bucket: str, state: Path) -> int:
    """Run the whole check with the set history in a SQLite store; return the result count."""
    config = parse_config(
        f'[state]\npath = "{state}"\n[[snapshots.sources]]\nname = "customers"\n'
        f'kind = "s3"\nbucket = "{bucket}"\nendpoint_url = "{endpoint.endpoint_url}"\n'
        f'region = "us-east-1"\naddressing_style = "path"\n'
        f'access_key_id = "{endpoint.access_key_id}"\n'
        f'secret_access_key_file = "{endpoint.secret_file}"\ngroup_by = "{GROUP_BY}"\n'
    )
    ctx = Context(preloaded=config)
    try:
        return len(run_snapshots(ctx).results)
    finally:
        ctx.close()


def timed(function: Any, *args: Any) -> tuple[float, Any]:
    """Return (seconds, result) of one call."""
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefixes", type=int, default=10_000)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with running_server() as server, tempfile.TemporaryDirectory() as temp:
        endpoint = server.http
        bucket = endpoint.make_bucket()
        seconds = fill(server.filer_url, bucket, args.prefixes, args.objects, args.workers)
        print(f"filled {args.objects} objects in {args.prefixes} prefixes in {seconds:.1f}s")
        state = Path(temp) / "state.db"
        times: dict[str, list[float]] = {"baseline": [], "check": [], "full": []}
        counts: dict[str, Any] = {}
        for _ in range(args.runs):
            for name, function, extra in (
                ("baseline", baseline, ()),
                ("check", check, ()),
                ("full", full, (state,)),
            ):
                elapsed, counts[name] = timed(function, endpoint, bucket, *extra)
                times[name].append(elapsed)
        base = min(times["baseline"])
        print(f"objects listed: {counts['baseline']}, results: {counts['check']}")
        for name in ("baseline", "check", "full"):
            best = min(times[name])
            print(f"{name:<9} best {best:7.3f}s  ratio {best / base:5.2f}x  "
                  f"(runs: {', '.join(f'{t:.3f}' for t in times[name])})")
        tracemalloc.start()
        now = datetime.now(UTC)
        listing = S3Source(settings(endpoint, bucket), Policy()).gather(now)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sets = len(listing.sets)
        print(f"gather peak Python memory {peak / 1e6:.1f} MB for {sets} sets: "
              f"{peak / max(sets, 1):.0f} B per set, {peak / max(args.objects, 1):.0f} B "
              "per object")


if __name__ == "__main__":
    main()
