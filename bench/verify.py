"""Backup verification throughput and memory at real S3 latency: Lifeboat against `rclone check`.

A moto S3 server runs in this process on 127.0.0.1 behind the same per-request latency for every client
(`--latency-ms`, default 25: every request waits that long before it is answered, as a request to S3 waits
for the network and S3's front end), so parallelism counts as it does in AWS. Connections are kept alive
between requests, as S3 keeps them (waitress; `--http close` is werkzeug's new connection per request). A
source and a replica bucket, both **versioned**, are filled directly in moto's backend (10k and 100k
objects per side, in 100 prefixes) with known differences injected: missing, extra, different content at
the same size (only a content check finds those) and different size. Then, each in its own child process
(neither shares this process's GIL with the server):

- rclone check (Debian's rclone; S3 remote, provider Other): size + MD5 (the ETag of a single-part object),
  its faster of the default directory walk and `--fast-list`, at its default 8 checkers;
- Lifeboat in its listing mode: the shard functions of the verification state machine, 8 at a time
  (`--workers`, like rclone's checkers), each in its own process (`--shard-runner process`: each shard is
  its own Lambda invocation under the Distributed Map; forked after the imports, like a warm container),
  listing versions (both buckets are versioned, as replication requires), each listing read ahead by a
  thread and several prefixes of a shard at once;
- Lifeboat with the source side read from an S3 Inventory report (what a plan with `inventory:` uses for
  large buckets); the replica is listed. Printed above the result, not the result.

S3 serves pages in parallel on a fleet; moto renders each page in Python (~120-150 ms of CPU per 1,000
entries, one GIL for every request), so on a small machine moto's CPU, not the latency or the client, would
decide the wall time. With `--server replay` (the default) each timed run is answered from moto's own
answers to that tool's untimed warm-up run over the same buckets (`Replay`): every request still waits its
latency, and the server's CPU per request is a lookup. `--server moto` renders every page of every run.
moto's ListObjectVersions also deep-copies every version in the bucket on every request (seconds per page at
20k objects) and its ListObjects scans and sorts every key of the bucket per page; S3 seeks by key. The
benchmark serves both from a sorted key index instead (`IndexedVersions`: moto's own answers, cost
proportional to the page). Each tool's line gives its requests and the CPU the server spent on them.

Each tool must find exactly the injected differences. Throughput is source objects verified per second of
wall time; memory is each child's peak RSS (ru_maxrss from wait4: the largest of its processes), plus
Python's tracemalloc peak for Lifeboat in a separate, untimed run (threads in one process). The last line is
`RESULT verify_vs_rclone_throughput_ratio <value> target >= 1.5`: Lifeboat's listing mode against rclone at
the largest size. Exits non-zero when rclone is missing (never a made-up baseline) or a tool misses or
invents a difference.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import gzip
import io
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from chalicelib.services.deps import Deps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACCOUNT = "123456789012"
PREFIX = "datasets/"
PER_DIR = 1000  # one full ListObjectsV2 page per "directory", at every size
SRC_REGION, REP_REGION = "us-east-1", "us-west-2"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


# -- data -------------------------------------------------------------------------------------------------
def dirs(n: int) -> int:
    return max(1, n // PER_DIR)


def key_of(i: int, n: int) -> str:
    return f"{PREFIX}d{i % dirs(n):04d}/part-{i:07d}.csv"


def injected(n: int) -> dict[str, set[str]]:
    """Which keys differ, by kind (relative to PREFIX), spread over the key space."""
    step = n // 40
    return {
        "missing": {key_of(step * k + 1, n)[len(PREFIX) :] for k in range(0, 8)},
        "different": {key_of(step * k + 2, n)[len(PREFIX) :] for k in range(8, 16)},  # same size, other bytes
        "resized": {key_of(step * k + 3, n)[len(PREFIX) :] for k in range(16, 22)},
        "extra": {f"d{k:04d}/zz-orphan-{k}.csv" for k in range(0, dirs(n), max(1, dirs(n) // 6))},
    }


def populate(n: int, src: str, rep: str, inventory_bucket: str) -> dict[str, set[str]]:
    """Fill both buckets in moto's backend (no HTTP), plus an S3 Inventory report of the source."""
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT]["aws"]
    for bucket, region in ((src, SRC_REGION), (rep, REP_REGION), (inventory_bucket, SRC_REGION)):
        backend.create_bucket(bucket, region)
    for bucket in (src, rep):
        backend.put_bucket_versioning(bucket, "Enabled")
    diff = injected(n)
    missing = {PREFIX + k for k in diff["missing"]}
    different = {PREFIX + k for k in diff["different"]}
    resized = {PREFIX + k for k in diff["resized"]}
    rows: list[tuple[str, int, str]] = []
    for i in range(n):
        key = key_of(i, n)
        body = f"tx-{i:07d},{i % 977},0.{i % 13}\n".encode()
        fake = backend.put_object(src, key, body)
        rows.append((key, len(body), fake.etag.strip('"')))
        if key in missing:
            continue
        if key in different:
            body = body.replace(b"tx-", b"TX-")
        elif key in resized:
            body = body + b"#"
        backend.put_object(rep, key, body)
    for k in diff["extra"]:
        backend.put_object(rep, PREFIX + k, b"orphan\n")
    write_inventory(backend, src, inventory_bucket, sorted(rows))
    diff["different"] = diff["different"] | diff.pop("resized")
    return diff


def write_inventory(backend: Any, src: str, bucket: str, rows: list[tuple[str, int, str]]) -> None:
    base = f"inventory/{src}/daily/2024-05-01T00-00Z/"
    files = []
    per = 10_000
    for i in range(0, len(rows), per):
        buf = io.StringIO()
        writer = csv.writer(buf)
        for key, size, etag in rows[i : i + per]:
            writer.writerow([src, key, size, "2024-05-01T00:00:00.000Z", etag])
        key = f"{base}data/{i // per:05d}.csv.gz"
        backend.put_object(bucket, key, gzip.compress(buf.getvalue().encode()))
        files.append({"key": key, "size": 0, "MD5checksum": ""})
    manifest = {
        "sourceBucket": src,
        "destinationBucket": f"arn:aws:s3:::{bucket}",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": files,
        "creationTimestamp": str(int(time.time() * 1000) + 60_000),  # taken after every write below
    }
    backend.put_object(bucket, base + "manifest.json", json.dumps(manifest).encode())


# -- the server: moto behind a per-request latency --------------------------------------------------------
class Latency:
    """WSGI middleware: every request waits `seconds` before moto handles it (threads sleep in parallel)."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app, self.seconds = app, seconds
        self.requests = 0
        self._lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        with self._lock:
            self.requests += 1
        time.sleep(self.seconds)
        return self.app(environ, start_response)


class Replay:
    """WSGI middleware: a read (GET or HEAD) moto has answered before is answered again with the bytes moto
    sent then (status, headers, body), without moto.

    S3 serves pages in parallel on a fleet; moto renders each page in Python, ~120-150 ms of CPU per 1,000
    entries, one GIL for every request, so on a small machine the local S3's CPU, not the latency or the
    client, decides the wall time. Each tool's timed run is therefore answered from what moto sent in that
    tool's untimed warm-up run over the same buckets (nothing writes to them in between): the answers stay
    moto's own, each request still waits the latency in its own thread, and the server's CPU per request is
    a dictionary lookup. A request the warm-up did not make goes to moto (counted in `misses`)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.answers: dict[tuple[str, str, str], tuple[str, list[tuple[str, str]], bytes]] = {}
        self.hits = self.misses = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(environ: Any) -> tuple[str, str, str] | None:
        method = environ.get("REQUEST_METHOD", "")
        if method not in ("GET", "HEAD"):
            return None
        path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        path, _, query = path.partition("?")
        query = query or environ.get("QUERY_STRING", "")
        # The same request twice: same method, bucket (host or path) and parameters, in any order.
        where = environ.get("HTTP_HOST", "") + path
        return method, where, "&".join(sorted(query.split("&")))

    def __call__(self, environ: Any, start_response: Any) -> Any:
        key = self.key(environ)
        answer = self.answers.get(key) if key is not None else None
        if answer is not None:
            with self._lock:
                self.hits += 1
            status, headers, body = answer
            start_response(status, headers)
            return [body]
        if key is None:
            return self.app(environ, start_response)
        got: dict[str, Any] = {}
        written: list[bytes] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            got["status"], got["headers"] = status, list(headers)
            return written.append

        result = self.app(environ, capture)
        try:
            body = b"".join([*written, *result])
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        with self._lock:
            self.misses += 1
            self.answers[key] = (got["status"], got["headers"], body)
        start_response(got["status"], got["headers"])
        return [body]


class LatencyServer:
    """moto's app with `Latency` in front (and `Replay` between them with `replay`), served on 127.0.0.1.

    `http` "keep-alive" (default): waitress, HTTP/1.1 connections kept open between requests as S3 keeps
    them, a pool of `threads` workers (each request waits its latency in one). "close": werkzeug's threaded
    server as moto's ThreadedMotoServer runs it, which closes the connection after every answer, so each
    request pays a new TCP connection (more costly for a Python client than for rclone)."""

    def __init__(self, seconds: float, *, replay: bool, http: str = "keep-alive", threads: int = 128) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        moto_app = DomainDispatcherApplication(create_backend_app)
        self.replay = Replay(moto_app) if replay else None
        self.app = Latency(self.replay or moto_app, seconds)
        self.http = http
        if http == "keep-alive":
            from waitress.server import create_server

            logging.getLogger("waitress").setLevel(logging.ERROR)
            self.server: Any = cast(
                Any,
                create_server(
                    self.app, host="127.0.0.1", port=0, threads=threads, connection_limit=1000, ident="s3"
                ),
            )
            self.port = int(self.server.effective_port)
            self.thread = threading.Thread(target=self.server.run, daemon=True)
        else:
            from moto.moto_server.werkzeug_app import MotoRequestHandler
            from werkzeug.serving import make_server

            self.server = make_server(
                "127.0.0.1", 0, self.app, threaded=True, request_handler=MotoRequestHandler
            )
            self.port = int(self.server.server_address[1])
            self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.http == "keep-alive":
            self.server.close()
        else:
            self.server.shutdown()
            self.server.server_close()


class IndexedVersions:
    """ListObjectVersions (and ListObjects, V1 and V2) served from a sorted index of the bucket's keys
    (installed into moto's backend).

    moto's own implementation deep-copies every version of every key in the bucket (their bodies included),
    then filters by prefix, on every request; S3 seeks to the prefix/marker. This hands moto's implementation
    only the keys that can be on the page (from the prefix and key marker on, at most a page of names), each
    copied shallowly (moto only marks its copy "latest"), so its answers are moto's own while the cost
    follows the page, not the bucket.
    """

    def __init__(self) -> None:
        from moto.s3.models import S3Backend

        self.backend_class: Any = S3Backend
        self.original: Any = S3Backend.list_object_versions
        self.original_objects: Any = S3Backend.list_objects
        self.index: dict[str, tuple[int, list[str]]] = {}

    def names(self, bucket: Any) -> list[str]:
        cached = self.index.get(bucket.name)
        if cached is None or cached[0] != len(bucket.keys):
            cached = (len(bucket.keys), sorted(bucket.keys.keys()))
            self.index[bucket.name] = cached
        return cached[1]

    def install(self) -> None:
        index = self

        class Shallow:
            """Deep-copied by moto as a shallow copy of the version: its attributes, not its body (moto's
            own copy goes through pickling, which writes each body into a new temporary file)."""

            def __init__(self, version: Any) -> None:
                self.version = version

            def __deepcopy__(self, memo: Any) -> Any:
                self.version.etag  # noqa: B018 computed (from the body) on the original, kept by the clone
                clone = object.__new__(type(self.version))
                clone.__dict__.update(self.version.__dict__)
                # The clone shares the original's body buffer: collecting it must not close that buffer
                # (moto's FakeKey.__del__ disposes of its body), or the next read of the key fails (500).
                clone.disposed = True
                return clone

        class Keys:
            def __init__(self, keys: Any, names: list[str]) -> None:
                self._keys, self._names = keys, names

            def iterlists(self) -> Any:
                return ((n, [Shallow(v) for v in self._keys.getlist(n)]) for n in self._names)

        class Window:
            def __init__(self, bucket: Any, names: list[str]) -> None:
                self._bucket, self.keys = bucket, Keys(bucket.keys, names)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._bucket, name)

        class OneBucket:
            """What moto's implementation asks of its backend (get_bucket), answered with the window."""

            def __init__(self, window: Window) -> None:
                self._window = window

            def get_bucket(self, _: str) -> Window:
                return self._window

        def list_object_versions(
            backend: Any,
            bucket_name: str,
            delimiter: str | None = None,
            key_marker: str | None = None,
            max_keys: int | None = 1000,
            prefix: str = "",
            version_id_marker: str | None = None,
        ) -> Any:
            bucket = backend.get_bucket(bucket_name)
            names = index.names(bucket)
            lo = bisect.bisect_left(names, max(prefix or "", key_marker or ""))
            hi = lo
            limit = (max_keys or 1000) + 1
            while hi < len(names) and hi - lo < limit and names[hi].startswith(prefix or ""):
                hi += 1
            if delimiter:  # common prefixes may span many keys: keep moto's full scan for those
                return index.original(
                    backend, bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker
                )
            view = OneBucket(Window(bucket, names[lo:hi]))
            return index.original(
                view, bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker
            )

        class Latest:
            """The current object of each name in a window (what moto's list_objects iterates)."""

            def __init__(self, keys: Any, names: list[str]) -> None:
                self._keys, self._names = keys, names

            def items(self) -> Any:
                return ((n, self._keys[n]) for n in self._names)

        class ObjectsWindow:
            def __init__(self, bucket: Any, names: list[str]) -> None:
                self.name, self.keys = bucket.name, Latest(bucket.keys, names)

        def list_objects(
            backend: Any,
            bucket: Any,
            prefix: str | None,
            delimiter: str | None,
            marker: str | None,
            max_keys: int | None,
        ) -> Any:
            """ListObjects (V1, what rclone sends; V2 comes through here too) on the keys that can be on
            the page: those under the prefix, from the marker on when there is no delimiter (moto does not
            apply the marker to common prefixes, so with one the whole prefix stays), a page's worth."""
            names = index.names(bucket)
            lo = bisect.bisect_left(names, prefix or "")
            if marker and not delimiter:
                limit = backend._pagination_tokens.get(marker) or marker
                lo = max(lo, bisect.bisect_right(names, limit))
            hi = lo
            cap = len(names) if delimiter or max_keys is None else lo + max_keys + 1
            while hi < len(names) and hi < cap and names[hi].startswith(prefix or ""):
                hi += 1
            window = ObjectsWindow(bucket, names[lo:hi])
            return index.original_objects(backend, window, prefix, delimiter, marker, max_keys)

        self.backend_class.list_object_versions = list_object_versions
        self.backend_class.list_objects = list_objects

    def uninstall(self) -> None:
        self.backend_class.list_object_versions = self.original
        self.backend_class.list_objects = self.original_objects


# -- children ---------------------------------------------------------------------------------------------
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
        code = os.waitstatus_to_exitcode(status)
        print(json.dumps({"seconds": seconds, "rss_kib": usage.ru_maxrss, "code": code,
                          "cpu": usage.ru_utime + usage.ru_stime,
                          "stdout": out.read().decode(), "stderr": err.read().decode()}), flush=True)
"""


class Launcher:
    """Starts the measured children from a small process started before moto fills this one.

    Linux carries a process's peak RSS across fork and exec (exec keeps the larger of the old and new
    high-water marks), so children forked from this process, which holds the whole moto dataset, would
    all report this process's RSS. Forked from the launcher, they report their own.
    """

    def __init__(self) -> None:
        self.last_cpu = 0.0
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, cmd: list[str], env: dict[str, str]) -> tuple[float, int, str, str, int]:
        """(seconds, peak RSS KiB, stdout, stderr, exit code) of one child; its CPU seconds in `last_cpu`."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, "env": env, "cwd": str(ROOT)}) + "\n")
        self.proc.stdin.flush()
        r = json.loads(self.proc.stdout.readline())
        self.last_cpu = float(r["cpu"])
        return r["seconds"], int(r["rss_kib"]), r["stdout"], r["stderr"], int(r["code"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


LAUNCH: Launcher | None = None
SERVER: LatencyServer | None = None


SERVER_CPU = {"last": 0.0}
"""CPU seconds this process (the S3 server: moto rendering pages, one GIL) spent during the last child."""


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str, str, int]:
    assert LAUNCH is not None
    before = resource.getrusage(resource.RUSAGE_SELF)
    out = LAUNCH.run(cmd, env)
    after = resource.getrusage(resource.RUSAGE_SELF)
    SERVER_CPU["last"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return out


_JOB: dict[str, Any] = {}
"""The plan and dependencies the shard processes inherit (set before they are forked)."""


def _shard_in_process(shard: Any) -> Any:
    from chalicelib.services.verification.shards import run_shard

    return run_shard(_JOB["plan"], shard, _JOB["deps"])


def lifeboat_child(args: argparse.Namespace) -> int:
    """In the child: verify the buckets with Lifeboat's shard functions; print what was found as JSON."""
    import tracemalloc
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from chalicelib.adapters.assets.s3 import S3Checker
    from chalicelib.clock import utc_now
    from chalicelib.domain import verification as domain
    from chalicelib.domain.verification import merge_asset
    from chalicelib.models.plan import S3Asset
    from chalicelib.models.planfile import load_plan_file
    from chalicelib.models.verification import Shard
    from chalicelib.services.verification.shards import run_shard

    # The report keeps 20 example keys per shard; the benchmark checks every key, so it keeps them all.
    domain.SAMPLES_PER_SHARD = 10**9
    if args.tracemalloc:
        tracemalloc.start()
    plan = load_plan_file(ROOT / "plans" / "fraud-scoring.yaml")
    spec: dict[str, Any] = {
        "name": "bench",
        "kind": "s3",
        "source": {"bucket": args.source, "prefix": PREFIX},
        "replica": {"bucket": args.replica, "prefix": PREFIX},
    }
    if args.inventory:
        spec["inventory"] = {"bucket": args.inventory, "prefix": "inventory/"}
    asset = S3Asset.model_validate(spec)
    plan = plan.model_copy(update={"assets": [asset]})
    d = cast("Deps", SimpleNamespace(clock=utc_now))  # the s3-objects shards use the clock only
    shards = [
        Shard(index=i, asset="bench", kind="s3-objects", **fields)
        for i, fields in enumerate(S3Checker().object_shards(plan, asset))  # the objects part only
    ]
    if args.shard_runner == "process" and not args.tracemalloc:
        # Each shard in its own process, as each is its own Lambda invocation under the Distributed Map
        # (`workers` at a time, like its MaxConcurrency): forked after the imports and the clients (a warm
        # container), with no open connection (a connection must not be shared across a fork: each
        # process opens its own).
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from chalicelib.adapters import aws

        for made in aws._factories.values():
            for client in made._clients.values():
                client._endpoint.http_session.close()
        _JOB["plan"], _JOB["deps"] = plan, d
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(args.workers, mp_context=context) as procs:
            results = list(procs.map(_shard_in_process, shards))
    else:  # threads in this process (the tracemalloc run: one process's allocations)
        with ThreadPoolExecutor(args.workers) as pool:
            results = list(pool.map(lambda s: run_shard(plan, s, d), shards))
    merged = merge_asset(
        asset="bench",
        kind="s3",
        role=None,
        objective=plan.asset_rpo(asset),
        results=results,
        expected=len(shards),
        now=utc_now(),
    )
    found: dict[str, list[str]] = {}
    for r in results:
        for s in r.samples:
            found.setdefault(s.kind, []).append(s.key)
    out = {
        "objects": merged.source_objects,
        "replica_objects": merged.replica_objects,
        "counts": {k: getattr(merged, k) for k in ("missing", "extra", "different", "stale", "unverified")},
        "found": found,
        "shards": len(shards),
        "mode": merged.mode,
        "incomplete": merged.incomplete_reasons,
        "tracemalloc_peak": tracemalloc.get_traced_memory()[1] if args.tracemalloc else None,
    }
    sys.stdout.write(json.dumps(out))
    return 0


def run_lifeboat(
    url: str,
    src: str,
    rep: str,
    inventory: str | None,
    *,
    workers: int,
    traced: bool,
    shard_runner: str = "process",
) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **CREDS,
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": SRC_REGION,
        "LIFEBOAT_LEDGER_TABLE": "unused",
        "LIFEBOAT_LOCK_TABLE": "unused",
        "LIFEBOAT_IDEMPOTENCY_TABLE": "unused",
        "LIFEBOAT_PLAN_BUCKET": "unused",
        "LIFEBOAT_EVIDENCE_BUCKET": "unused",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--shard-runner",
        shard_runner,
        "--source",
        src,
        "--replica",
        rep,
        "--workers",
        str(workers),
    ]
    if inventory:
        cmd += ["--inventory", inventory]
    if traced:
        cmd.append("--tracemalloc")
    before = SERVER.app.requests if SERVER else 0
    seconds, rss, out, err, code = run_child(cmd, env)
    if code != 0:
        raise SystemExit(f"Lifeboat child failed ({code}):\n{err[-3000:]}")
    result = json.loads(out)
    assert LAUNCH is not None
    requests = (SERVER.app.requests if SERVER else 0) - before
    result.update(
        seconds=seconds, rss_kib=rss, cpu=LAUNCH.last_cpu, requests=requests, server_cpu=SERVER_CPU["last"]
    )
    return result


def rclone_config(url: str, folder: Path) -> Path:
    conf = folder / "rclone.conf"
    conf.write_text(
        "[moto]\ntype = s3\nprovider = Other\n"
        f"endpoint = {url}\naccess_key_id = testing\nsecret_access_key = testing\nregion = us-east-1\n"
    )
    return conf


def run_rclone(conf: Path, src: str, rep: str, extra: list[str], folder: Path) -> dict[str, Any]:
    combined = folder / f"combined-{src}.txt"
    # rclone's own settings only: no CA bundle variables from this environment (plain HTTP to 127.0.0.1).
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder)}
    cmd = [
        "rclone",
        "--config",
        str(conf),
        "check",
        f"moto:{src}/{PREFIX.rstrip('/')}",
        f"moto:{rep}/{PREFIX.rstrip('/')}",
        "--combined",
        str(combined),
        *extra,
    ]
    before = SERVER.app.requests if SERVER else 0
    seconds, rss, _, err, code = run_child(cmd, env)
    requests = (SERVER.app.requests if SERVER else 0) - before
    if code not in (0, 1):  # 1: differences found
        raise SystemExit(f"rclone check failed ({code}):\n{err[-3000:]}")
    found: dict[str, list[str]] = {}
    # rclone: "+" only in the source (missing from the replica), "-" only in the replica, "*" differs.
    marks = {"+": "missing", "-": "extra", "*": "different", "!": "error"}
    for line in combined.read_text().splitlines():
        mark, _, path = line.partition(" ")
        if mark in marks:
            found.setdefault(marks[mark], []).append(path)
    matched = sum(1 for line in combined.read_text().splitlines() if line.startswith("= "))
    objects = matched + sum(len(v) for k, v in found.items() if k in ("missing", "different"))
    assert LAUNCH is not None
    return {
        "seconds": seconds,
        "rss_kib": rss,
        "found": found,
        "objects": objects,
        "flags": " ".join(extra),
        "cpu": LAUNCH.last_cpu,
        "requests": requests,
        "server_cpu": SERVER_CPU["last"],
    }


def same(found: dict[str, list[str]], expected: dict[str, set[str]]) -> bool:
    kinds = ("missing", "extra", "different")
    return all(set(found.get(k, [])) == expected[k] for k in kinds) and not set(found) - set(kinds)


# -- main -------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="objects per side, comma-separated")
    parser.add_argument("--workers", type=int, default=8, help="Lifeboat shards in parallel (rclone: 8)")
    parser.add_argument("--latency-ms", type=float, default=25.0, help="added to every S3 request")
    parser.add_argument(
        "--rclone-modes",
        default="default,fast-list",
        help="rclone listing modes to try (the faster is compared): default (directory walk), fast-list",
    )
    parser.add_argument(
        "--server",
        choices=("replay", "moto"),
        default="replay",
        help="replay: each timed run answered from moto's answers to the tool's untimed warm-up run "
        "(the local S3 costs no CPU per page, as S3 does not from a client's view); moto: moto renders "
        "every page of every run",
    )
    parser.add_argument(
        "--http",
        choices=("keep-alive", "close"),
        default="keep-alive",
        help="keep-alive: connections reused between requests, as S3 does (waitress); close: a new "
        "connection per request (werkzeug, as moto's own server)",
    )
    parser.add_argument(
        "--shard-runner",
        choices=("process", "thread"),
        default="process",
        help="Lifeboat's shards each in a process (as each is a Lambda invocation) or threads of one process",
    )
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the untimed tracemalloc runs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--replica", help=argparse.SUPPRESS)
    parser.add_argument("--inventory", help=argparse.SUPPRESS)
    parser.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return lifeboat_child(args)

    if shutil.which("rclone") is None:
        print(
            "rclone is not installed (Debian: apt-get install -y rclone); no baseline, no result",
            file=sys.stderr,
        )
        return 2
    version = subprocess.run(["rclone", "version"], capture_output=True, text=True).stdout.splitlines()[0]
    global LAUNCH
    LAUNCH = Launcher()  # before moto and the data make this process big

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    versions = IndexedVersions()
    versions.install()
    global SERVER
    server = SERVER = LatencyServer(args.latency_ms / 1000, replay=args.server == "replay", http=args.http)
    url = server.url
    sizes = [int(s) for s in args.sizes.split(",")]
    served = (
        "each timed run replayed from moto's answers to the same tool's warm-up run"
        if server.replay
        else "moto rendering every page"
    )
    print(
        f"moto S3 on {url} behind {args.latency_ms:g} ms per request, {served}, connections "
        f"{'kept alive' if args.http == 'keep-alive' else 'closed after each answer'}; {version}; "
        f"{os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f}); Lifeboat: {args.workers} shards at a "
        f"time, each in {'its own process' if args.shard_runner == 'process' else 'a thread'}"
    )

    def measured(run: Any) -> dict[str, Any]:
        """One timed run of a tool; with replay, after an untimed warm-up run that records moto's answers."""
        if server.replay is None:
            return cast("dict[str, Any]", run())
        run()
        misses = server.replay.misses
        result = cast("dict[str, Any]", run())
        result["replay_misses"] = server.replay.misses - misses
        return result

    rows: list[dict[str, Any]] = []
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        conf = rclone_config(url, folder)
        for n in sizes:
            src, rep, inv = f"bench-src-{n}", f"bench-rep-{n}", f"bench-inv-{n}"
            t = time.perf_counter()
            expected = populate(n, src, rep, inv)
            print(
                f"\n{n} objects per side (+ {sum(len(v) for v in expected.values())} injected differences), "
                f"populated in {time.perf_counter() - t:.1f}s"
            )
            # rclone gets its better listing mode at every size (directory walk or --fast-list).
            modes = {"default": [], "fast-list": ["--fast-list"]}
            tried = [
                measured(partial(run_rclone, conf, src, rep, modes[m], folder))
                for m in args.rclone_modes.split(",")
            ]
            rc = min(tried, key=lambda r: r["seconds"])
            for other in tried:
                if other is not rc:
                    print(f"  (rclone {other['flags'] or 'default'}: {other['seconds']:.2f}s, not used)")
            lifeboat = partial(run_lifeboat, url, src, rep, workers=args.workers)
            listing = measured(partial(lifeboat, None, traced=False, shard_runner=args.shard_runner))
            inventory = measured(partial(lifeboat, inv, traced=False, shard_runner=args.shard_runner))
            # untimed, one process (threads), so that one tracemalloc sees every allocation
            traced = None if args.no_tracemalloc else lifeboat(None, traced=True, shard_runner="thread")
            for name, r in (
                ("rclone check " + (rc["flags"] or "(default)"), rc),
                ("lifeboat listing", listing),
                ("lifeboat inventory", inventory),
            ):
                exact = same(r["found"], expected)
                ok = ok and exact and r["objects"] == n
                rows.append({"n": n, "tool": name, **r, "exact": exact})
                print(
                    f"  {name:28s} {r['seconds']:7.2f}s {n / r['seconds']:9.0f} obj/s  CPU {r['cpu']:6.1f}s  "
                    f"requests {r['requests']:6d}"
                    + (f" ({r['replay_misses']} not replayed)" if "replay_misses" in r else "")
                    + f"  server CPU {r['server_cpu']:6.1f}s  "
                    f"peak RSS {r['rss_kib'] / 1024:6.1f} MiB  "
                    f"objects {r['objects']}  exact differences: {exact}"
                )
            if traced is not None:
                print(
                    f"  lifeboat listing tracemalloc peak: {traced['tracemalloc_peak'] / 1024 / 1024:.2f} MiB"
                )
                rows.append({"n": n, "tool": "lifeboat tracemalloc", "peak": traced["tracemalloc_peak"]})
    server.stop()
    versions.uninstall()
    LAUNCH.close()

    def get(tool: str, n: int) -> dict[str, Any]:
        return next(r for r in rows if r["n"] == n and r["tool"].startswith(tool))

    big, small = max(sizes), min(sizes)
    rc_big = get("rclone", big)
    listing_ratio = rc_big["seconds"] / get("lifeboat listing", big)["seconds"]
    inventory_ratio = rc_big["seconds"] / get("lifeboat inventory", big)["seconds"]
    print()
    print(
        f"throughput ratio vs rclone at {big}: source from S3 Inventory {inventory_ratio:.2f}x; "
        f"listing both sides (versions) {listing_ratio:.2f}x"
    )
    for tool in ("lifeboat listing", "lifeboat inventory", "rclone"):
        a, b = get(tool, small)["rss_kib"], get(tool, big)["rss_kib"]
        print(f"peak RSS {tool:18s} {small}: {a / 1024:.1f} MiB -> {big}: {b / 1024:.1f} MiB ({b / a:.2f}x)")
    if not args.no_tracemalloc and small != big:
        a, b = get("lifeboat tracemalloc", small)["peak"], get("lifeboat tracemalloc", big)["peak"]
        mib = 2**20
        print(
            f"tracemalloc peak lifeboat {small}: {a / mib:.2f} MiB -> {big}: {b / mib:.2f} MiB ({b / a:.2f}x)"
        )
    if not ok:
        print("a tool missed or invented a difference (or miscounted objects): see above", file=sys.stderr)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"RESULT verify_vs_rclone_throughput_ratio {listing_ratio:.2f} target >= 1.5")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
