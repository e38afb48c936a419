"""The drill's own objects in the workload's dataset: written to the primary while the drill runs (the
application's writes whose replication the drill measures), listed in either region, and removed, every
version, when it ends.

Where real time passes here, it must: the writer paces its writes with real sleeps (replication copies them
in real time) and stamps each with the drill's clock; the removal waits, boundedly, for replication to stop
copying before it deletes.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.drill_faults import ReplicaCopy
from chalicelib.models.drill import Write
from chalicelib.observability import logger

S3ForRegion = Callable[[str], Any]
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
_SETTLE_POLL = 0.3


def _factory_s3(region: str) -> Any:
    return aws.client("s3", region)


@dataclass
class Removal:
    """What removing the drill's objects did: objects deleted, versions Object Lock kept (hidden behind
    delete markers), and relative keys still visible in either region when the bounded wait ended."""

    objects: int = 0
    retained: int = 0
    visible: list[str] = field(default_factory=list)


class DrillDataset:
    def __init__(self, s3: S3ForRegion | None = None) -> None:
        # Not cached here: the factory caches, and resetting it (local cloud, tests) must reach us.
        self._s3 = s3 or _factory_s3

    def put(self, copy: ReplicaCopy, key: str, body: bytes) -> None:
        """One object, `key` relative to the copy's source prefix, in the source (primary) bucket."""
        self._s3(copy.source_region).put_object(
            Bucket=copy.source_bucket,
            Key=copy.source_prefix + key,
            Body=body,
            ContentType="application/json",
        )

    def keys(self, bucket: str, prefix: str, region: str) -> set[str]:
        """The keys under `prefix`, relative to it."""
        s3 = self._s3(region)
        keys: set[str] = set()
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = s3.list_objects_v2(**kwargs)
            keys.update(obj["Key"][len(prefix) :] for obj in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return keys
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def source_keys(self, copy: ReplicaCopy) -> set[str]:
        return self.keys(copy.source_bucket, copy.source_prefix, copy.source_region)

    def replica_keys(self, copy: ReplicaCopy) -> set[str]:
        return self.keys(copy.replica_bucket, copy.replica_prefix, copy.replica_region)

    def purge(self, bucket: str, prefix: str, region: str) -> tuple[int, int]:
        """Delete every version and delete marker under the drill's own prefix; returns (objects, versions
        that Object Lock retains). A plain delete in a versioned bucket only stacks a marker on each object,
        so the bucket, and every later listing of it, would grow by each drill's writes for ever. Versions
        under Object Lock retention cannot be deleted (that is the point of the lock): they are hidden
        behind a marker."""
        s3 = self._s3(region)
        doomed: list[dict[str, str]] = []
        keys: set[str] = set()
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = s3.list_object_versions(**kwargs)
            for v in page.get("Versions", []):
                keys.add(v["Key"])
                doomed.append({"Key": v["Key"], "VersionId": v["VersionId"]})
            doomed += [{"Key": m["Key"], "VersionId": m["VersionId"]} for m in page.get("DeleteMarkers", [])]
            if not page.get("IsTruncated"):
                break
            kwargs["KeyMarker"] = page.get("NextKeyMarker")
            kwargs["VersionIdMarker"] = page.get("NextVersionIdMarker")
        retained: set[str] = set()
        for i in range(0, len(doomed), _DELETE_BATCH):
            answer = s3.delete_objects(
                Bucket=bucket, Delete={"Objects": doomed[i : i + _DELETE_BATCH], "Quiet": True}
            )
            errors = answer.get("Errors", [])
            retained.update(e["Key"] for e in errors if e.get("Code") == "AccessDenied")
            failed = [e for e in errors if e.get("Code") != "AccessDenied"]
            if failed:  # what stays visible is named in the removal (Removal.visible); the cleanup goes on
                logger.warning("drill objects not deleted", bucket=bucket, prefix=prefix, errors=failed[:10])
        hidden = sorted(k for k in retained if k in keys)
        for i in range(0, len(hidden), _DELETE_BATCH):
            s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": k} for k in hidden[i : i + _DELETE_BATCH]], "Quiet": True},
            )
        return len(keys), len(hidden)

    def remove(self, copy: ReplicaCopy, *, settle: float = 10.0) -> Removal:
        """Delete the drill's objects from both regions, once replication (resumed) stopped copying them, so
        no late copy lands in the replica after the delete; a copy that was in flight (a re-driven failure)
        is deleted on the next pass. Waits in real time (replication's), at most `settle` seconds for each
        of the two waits."""
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            if self.source_keys(copy) <= self.replica_keys(copy):
                break
            time.sleep(_SETTLE_POLL)
        places = (
            (copy.source_bucket, copy.source_prefix, copy.source_region),
            (copy.replica_bucket, copy.replica_prefix, copy.replica_region),
        )
        removed, retained = 0, 0
        deadline = time.monotonic() + settle
        while True:
            for place in places:
                objects, locked = self.purge(*place)
                removed, retained = max(removed, objects), max(retained, locked)
            visible = [self.keys(bucket, prefix, region) for bucket, prefix, region in places]
            if not any(visible) or time.monotonic() > deadline:
                break
            time.sleep(_SETTLE_POLL)  # a copy landed behind the delete: one more pass
        return Removal(objects=removed, retained=retained, visible=sorted(set().union(*visible)))

    def writer(self, copy: ReplicaCopy, interval: timedelta, clock: Callable[[], datetime]) -> DatasetWriter:
        return DatasetWriter(self, copy, interval, clock)


class DatasetWriter:
    """Writes {seq, at} objects to the primary's dataset every interval until stopped (or the region dies).

    Paced in real time: the writes are what replication copies, and it copies in real time. Each write is
    stamped with the drill's clock, the clock its measurements use."""

    def __init__(
        self, dataset: DrillDataset, copy: ReplicaCopy, interval: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self.dataset = dataset
        self.copy = copy
        self.interval = interval.total_seconds()
        self.clock = clock
        self.writes: list[Write] = []
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # The drill's settings (a copy of Lifeboat acting for another region) go with the thread.
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._run,), name="drill-writer", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        seq = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            seq += 1
            key = f"{seq:06d}.json"
            at = self.clock()
            try:
                self.dataset.put(self.copy, key, f'{{"seq": {seq}, "at": "{at.isoformat()}"}}'.encode())
                with self._lock:
                    self.writes.append(Write(key=key, at=at))
            except Exception as exc:  # a write that failed was never accepted: not in the log
                self.errors += 1
                logger.warning("drill write failed", key=key, error=str(exc))
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def snapshot(self) -> list[Write]:
        with self._lock:
            return list(self.writes)
