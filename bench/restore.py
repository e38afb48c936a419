"""Point-in-time restore throughput and memory: Lifeboat's S3 restore against a plain recursive copy of the
same objects (what `aws s3 cp --recursive` does: list, then boto3's transfer manager, HeadObject +
CopyObject per object), same moto server, same run.

A moto S3 server runs in this process on 127.0.0.1. A versioned bucket is filled directly in moto's backend
(no HTTP) with N objects at T0, then damaged at T0+60s: 10% overwritten with bad content, 5% deleted (delete
markers) and 5% new keys. Then, each in its own child process (so neither shares this process's GIL with the
server, and each reports its own peak RSS):

- restore: Lifeboat's restore of the prefix to T0+30s into a new prefix (`services.restore.run_batches`: the
  version listing streamed, each key decided, copies from the version at TIME, each verified against it);
- copy: the recursive copy of the prefix as it is now into another prefix (boto3 TransferManager, a bounded
  queue of 1000 as the AWS CLI keeps).

Both write into a second bucket, so neither run makes the other's listing longer. moto's ListObjectVersions
copies the whole bucket for every page (O(n^2) for a listing: 100,000 objects would take most of an hour
to list); the bench answers it the way S3 does, in `fast_version_listing` (`--moto-listing` keeps moto's).

Both use 16 concurrent requests. Throughput is objects written per second of wall time; memory is each
child's peak RSS (ru_maxrss from wait4) and, for the restore, Python's tracemalloc peak in a separate
untimed run. Each child's result is checked (the restore: every key of T0 restored with its T0 content
and verified; the copy: every current object copied). The last line is
`RESULT restore_vs_copy_throughput_ratio <restore obj/s / copy obj/s at the largest size> target >= 1.0`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACCOUNT = "123456789012"
REGION = "us-east-1"
PREFIX = "datasets/"
WORKERS = 16
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def out_bucket(bucket: str) -> str:
    return f"{bucket}-out"


def key_of(i: int) -> str:
    return f"{PREFIX}d{i % 100:03d}/part-{i:07d}.csv"


def populate(n: int, bucket: str) -> dict[str, int]:
    """N good objects at T0, then the damage at T0+60s; returns what the restore must bring back."""
    import moto.s3.models as s3models

    backend = s3models.s3_backends[ACCOUNT]["aws"]
    backend.create_bucket(bucket, REGION)
    backend.put_bucket_versioning(bucket, "Enabled")
    backend.create_bucket(out_bucket(bucket), REGION)  # where both tools write: the source stays as damaged
    real = s3models.utcnow
    try:
        s3models.utcnow = lambda: T0.replace(tzinfo=None)  # type: ignore[assignment]
        for i in range(n):
            backend.put_object(bucket, key_of(i), f"tx-{i:07d},{i % 977},0.{i % 13}\n".encode())
        s3models.utcnow = lambda: (T0 + timedelta(seconds=60)).replace(tzinfo=None)  # type: ignore[assignment]
        damaged = deleted = 0
        for i in range(0, n, 10):
            backend.put_object(bucket, key_of(i), b"CORRUPT\n")
            damaged += 1
        for i in range(5, n, 20):
            backend.delete_object(bucket, key_of(i))
            deleted += 1
        for i in range(n, n + n // 20):
            backend.put_object(bucket, key_of(i), b"written after the damage\n")
    finally:
        s3models.utcnow = real
    return {"at_time": n, "now": n - deleted + n // 20, "damaged": damaged, "deleted": deleted}


def fast_version_listing() -> None:
    """Answer ListObjectVersions in this process's moto without copying the bucket for every page.

    moto 5's `list_object_versions` deep-copies every version of the bucket to answer each page of 1000
    (a FakeKey's deep copy re-reads its bytes into a new temporary file), then sorts them all: a page costs
    about 0.2 ms per version in the bucket, so listing n objects costs O(n^2) - 1.8 s a page at 10,000
    objects, 8 s at 40,000, about 25 s at 100,000 (over 100 pages: most of an hour). S3 pages in constant
    time. This computes the same pages (same order, IsLatest, markers and moto's own resumption quirk)
    for the listings the bench makes (no delimiter) from the bucket's key names, sorted per page as moto's
    ListObjectsV2 does for the copy: both tools then pay a comparable O(n log n) per page, no copies.
    """
    import bisect
    from types import SimpleNamespace

    import moto.s3.models as s3models
    from moto.core.utils import unix_time_millis

    original = s3models.S3Backend.list_object_versions

    def listing(
        self: Any,
        bucket_name: str,
        delimiter: str | None = None,
        key_marker: str | None = None,
        max_keys: int | None = 1000,
        prefix: str = "",
        version_id_marker: str | None = None,
    ) -> Any:
        if delimiter or not max_keys:
            return original(self, bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker)
        store = self.get_bucket(bucket_name).keys
        names = sorted(n for n in list(dict.keys(store)) if n.startswith(prefix or ""))
        versions: list[Any] = []
        markers: list[Any] = []
        skipping, last = key_marker is not None, None
        for name in names[bisect.bisect_left(names, key_marker) if key_marker else 0 :]:
            entries = sorted(store.getlist(name, []), key=lambda v: -unix_time_millis(v.last_modified))
            for index, v in enumerate(entries):
                if skipping:
                    # moto resumes after the marker (key and version), or with a key marker alone after the
                    # first version at or past it
                    if not version_id_marker or (v.name == key_marker and v.version_id == version_id_marker):
                        skipping = False
                    continue
                if last is not None and len(versions) + len(markers) >= max_keys:
                    return versions, [], markers, last.name, last.version_id
                view = SimpleNamespace(
                    name=v.name,
                    version_id=v.version_id,
                    is_latest=index == 0,
                    last_modified_ISO8601=v.last_modified_ISO8601,
                )
                if isinstance(v, s3models.FakeDeleteMarker):
                    markers.append(view)
                else:
                    view.etag, view.size, view.storage_class = v.etag, v.size, v.storage_class
                    versions.append(view)
                last = v
        return versions, [], markers, None, None

    s3models.S3Backend.list_object_versions = listing  # type: ignore[method-assign]


# -- children ---------------------------------------------------------------------------------------------
def restore_child(args: argparse.Namespace) -> int:
    """In the child: restore the prefix to T0+30s into a new prefix; print the totals as JSON."""
    import tracemalloc
    from types import SimpleNamespace

    from chalicelib.adapters.restore_s3 import ObjectRestorer
    from chalicelib.models.restore import Location, Progress, RestoreScope
    from chalicelib.services.restore import run_batches

    if args.tracemalloc:
        tracemalloc.start()
    source = Location(region=REGION, bucket=args.bucket, prefix=PREFIX)
    scope = RestoreScope(
        workload="bench",
        asset="bench",
        run_id="bench",
        to=T0 + timedelta(seconds=30),
        source=source,
        target=Location(region=REGION, bucket=out_bucket(args.bucket), prefix=args.target),
        in_place=False,
        dry_run=False,
        started_at=datetime.now(UTC),
    )
    d: Any = SimpleNamespace(restorer=ObjectRestorer())
    done = run_batches(scope, d, Progress(), list_limit=0, workers=WORKERS)
    out = {
        "objects": done.copies,
        "verified": done.verified,
        "failed": done.failed,
        "changes": done.changes,
        "tracemalloc_peak": tracemalloc.get_traced_memory()[1] if args.tracemalloc else None,
    }
    sys.stdout.write(json.dumps(out))
    return 0


def copy_child(args: argparse.Namespace) -> int:
    """In the child: `aws s3 cp --recursive s3://b/datasets/ s3://b/<target>` done as the CLI does it."""
    from concurrent.futures import Future

    import boto3
    from boto3.s3.transfer import TransferConfig
    from s3transfer.manager import TransferManager

    s3 = boto3.client("s3", region_name=REGION)
    config = TransferConfig(max_concurrency=WORKERS)
    copied = 0
    queued: list[Future[Any]] = []
    with TransferManager(s3, config) as manager:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=PREFIX):
            for obj in page.get("Contents", []):
                source = {"Bucket": args.bucket, "Key": obj["Key"]}
                target = args.target + obj["Key"][len(PREFIX) :]
                queued.append(manager.copy(source, out_bucket(args.bucket), target))
                if len(queued) >= 1000:  # the CLI's max_queue_size
                    for f in queued:
                        f.result()
                    copied += len(queued)
                    queued = []
        for f in queued:
            f.result()
        copied += len(queued)
    sys.stdout.write(json.dumps({"objects": copied}))
    return 0


LAUNCHER = """
import json, os, subprocess, sys, tempfile, time
for line in sys.stdin:
    job = json.loads(line)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(job["cmd"], stdout=out, stderr=err, env=job["env"], cwd=job["cwd"])
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0); err.seek(0)
        print(json.dumps({"seconds": seconds, "rss_kib": usage.ru_maxrss,
                          "code": os.waitstatus_to_exitcode(status),
                          "stdout": out.read().decode(), "stderr": err.read().decode()}), flush=True)
"""


class Launcher:
    """Starts the measured children from a small process started before moto fills this one (Linux carries
    the peak RSS across fork and exec: children of this big process would all report its RSS)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, mode: str, bucket: str, target: str, url: str, *, traced: bool = False) -> dict[str, Any]:
        if self.proc.stdin is None or self.proc.stdout is None:
            raise RuntimeError("the launcher has no pipes")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **CREDS,
            "AWS_ENDPOINT_URL": url,
            "AWS_REGION": REGION,
            "LIFEBOAT_LEDGER_TABLE": "unused",
            "LIFEBOAT_LOCK_TABLE": "unused",
            "LIFEBOAT_IDEMPOTENCY_TABLE": "unused",
            "LIFEBOAT_PLAN_BUCKET": "unused",
            "LIFEBOAT_EVIDENCE_BUCKET": "unused",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
        cmd = [sys.executable, str(Path(__file__).resolve()), f"--{mode}-child", bucket, "--target", target]
        if traced:
            cmd.append("--tracemalloc")
        self.proc.stdin.write(json.dumps({"cmd": cmd, "env": env, "cwd": str(ROOT)}) + "\n")
        self.proc.stdin.flush()
        r = json.loads(self.proc.stdout.readline())
        if r["code"] != 0:
            raise SystemExit(f"the {mode} child failed ({r['code']}):\n{r['stderr'][-3000:]}")
        return {**json.loads(r["stdout"]), "seconds": r["seconds"], "rss_kib": r["rss_kib"]}

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


def restored_correctly(url: str, bucket: str, target: str, n: int) -> bool:
    """Spot-check the restored prefix: a damaged, a deleted and an untouched key hold their T0 content, and
    no key created after TIME was restored."""
    import boto3

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=url, **_creds())
    for i in (0, 5, 7, n - 1):
        rel = key_of(i)[len(PREFIX) :]
        body = s3.get_object(Bucket=out_bucket(bucket), Key=target + rel)["Body"].read()
        if body != f"tx-{i:07d},{i % 977},0.{i % 13}\n".encode():
            return False
    later = s3.list_objects_v2(Bucket=out_bucket(bucket), Prefix=target + key_of(n)[len(PREFIX) :])
    return not later.get("Contents")


def _creds() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="objects, comma-separated")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the untimed tracemalloc runs")
    parser.add_argument(
        "--moto-listing",
        action="store_true",
        help="keep moto's own ListObjectVersions (O(bucket) per page: see fast_version_listing)",
    )
    parser.add_argument("--restore-child", metavar="BUCKET", help=argparse.SUPPRESS)
    parser.add_argument("--copy-child", metavar="BUCKET", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.restore_child:
        args.bucket = args.restore_child
        return restore_child(args)
    if args.copy_child:
        args.bucket = args.copy_child
        return copy_child(args)

    launcher = Launcher()  # before moto and the data make this process big
    from moto.server import ThreadedMotoServer

    if not args.moto_listing:
        fast_version_listing()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"moto S3 on {url}; {os.cpu_count()} CPUs; {WORKERS} concurrent requests each")
    rows: dict[int, dict[str, Any]] = {}
    ok = True
    for n in sizes:
        bucket = f"bench-restore-{n}"
        t = time.perf_counter()
        expected = populate(n, bucket)
        print(
            f"\n{n} objects at T0, then {expected['damaged']} overwritten, {expected['deleted']} deleted and "
            f"{n // 20} created after TIME; populated in {time.perf_counter() - t:.1f}s"
        )
        restore = launcher.run("restore", bucket, "lifeboat-restore/bench/", url)
        copy = launcher.run("copy", bucket, "copied/", url)
        traced = None if args.no_tracemalloc else launcher.run("restore", bucket, "traced/", url, traced=True)
        exact = (
            restore["objects"] == n
            and sum(restore["verified"].values()) == n
            and restore["failed"] == 0
            and copy["objects"] == expected["now"]
            and restored_correctly(url, bucket, "lifeboat-restore/bench/", n)
        )
        ok = ok and exact
        rows[n] = {"restore": restore, "copy": copy, "traced": traced}
        for name, r in (("lifeboat restore (verified)", restore), ("recursive copy (s3transfer)", copy)):
            print(
                f"  {name:28s} {r['seconds']:7.2f}s {r['objects'] / r['seconds']:8.0f} obj/s  "
                f"peak RSS {r['rss_kib'] / 1024:6.1f} MiB  objects {r['objects']}"
            )
        print(f"  restore verified by {restore['verified']}; changes {restore['changes']}; correct: {exact}")
        if traced is not None:
            print(f"  lifeboat restore tracemalloc peak: {traced['tracemalloc_peak'] / 2**20:.2f} MiB")
    server.stop()
    launcher.close()

    big, small = max(sizes), min(sizes)

    def rate(n: int, tool: str) -> float:
        r = rows[n][tool]
        return float(r["objects"] / r["seconds"])

    ratio = rate(big, "restore") / rate(big, "copy")
    print()
    for n in sizes:
        print(f"throughput ratio restore/copy at {n}: {rate(n, 'restore') / rate(n, 'copy'):.2f}x")
    for tool in ("restore", "copy"):
        a, b = rows[small][tool]["rss_kib"], rows[big][tool]["rss_kib"]
        print(f"peak RSS {tool:8s} {small}: {a / 1024:.1f} MiB -> {big}: {b / 1024:.1f} MiB ({b / a:.2f}x)")
    if not args.no_tracemalloc:
        a, b = rows[small]["traced"]["tracemalloc_peak"], rows[big]["traced"]["tracemalloc_peak"]
        print(
            f"tracemalloc peak restore {small}: {a / 2**20:.2f} MiB -> {big}: {b / 2**20:.2f} MiB "
            f"({b / a:.2f}x)"
        )
    if not ok:
        print("a restore or a copy was incomplete or wrong: see above", file=sys.stderr)
    print(f"RESULT restore_vs_copy_throughput_ratio {ratio:.2f} target >= 1.0")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
