"""The drill's own objects in the workload's dataset: written to the primary while the drill runs (the
application's writes whose replication the drill measures), listed in either region with their checksums,
damaged on purpose (data-corruption: overwritten, deleted), and removed, every version, when it ends; and
for an asset's keys, whether the replica has caught up with the source.

Where real time passes here, it must: the writer paces its writes with real sleeps (replication copies them
in real time) and stamps each with the drill's clock; the removal waits, boundedly, for replication to stop
copying before it deletes.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.drill_faults import ReplicaCopy
from chalicelib.models.drill import Write
from chalicelib.observability import logger

S3ForRegion = Callable[[str], Any]
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
_SETTLE_POLL = 0.3


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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

    def delete(self, copy: ReplicaCopy, key: str) -> None:
        """Delete one object (`key` relative to the source prefix) in the source bucket: a delete marker,
        which replication carries to the replica."""
        self._s3(copy.source_region).delete_object(Bucket=copy.source_bucket, Key=copy.source_prefix + key)

    def keys(self, bucket: str, prefix: str, region: str) -> set[str]:
        """The keys under `prefix`, relative to it."""
        return set(self.etags(bucket, prefix, region))

    def etags(self, bucket: str, prefix: str, region: str) -> dict[str, str]:
        """The keys under `prefix`, relative to it, with their ETags (the MD5 of a single-part body)."""
        s3 = self._s3(region)
        found: dict[str, str] = {}
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = s3.list_objects_v2(**kwargs)
            for obj in page.get("Contents", []):
                found[obj["Key"][len(prefix) :]] = str(obj.get("ETag", "")).strip('"')
            if not page.get("IsTruncated"):
                return found
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def source_etags(self, copy: ReplicaCopy) -> dict[str, str]:
        return self.etags(copy.source_bucket, copy.source_prefix, copy.source_region)

    def replica_etags(self, copy: ReplicaCopy) -> dict[str, str]:
        return self.etags(copy.replica_bucket, copy.replica_prefix, copy.replica_region)

    def first_change(self, copy: ReplicaCopy, keys: list[str]) -> datetime | None:
        """When the earliest of `keys` (relative to the source prefix) last changed in the source, as S3
        stamps it (its newest version or delete marker): what an operator reads off the version history."""
        s3 = self._s3(copy.source_region)
        stamps: list[datetime] = []
        for key in keys:
            full = copy.source_prefix + key
            page = s3.list_object_versions(Bucket=copy.source_bucket, Prefix=full)
            entries = [
                e for e in page.get("Versions", []) + page.get("DeleteMarkers", []) if e["Key"] == full
            ]
            latest = [e["LastModified"] for e in entries if e.get("IsLatest")]
            if latest:
                stamps.append(_utc(latest[0]))
        return min(stamps) if stamps else None

    def lagging(self, copy: ReplicaCopy, keys: list[str]) -> list[str]:
        """Of `keys` (relative to the prefixes), those whose replica is not what the source is now (another
        ETag, or present on one side only): replication has not carried the last change yet."""
        behind = []
        for key in keys:
            source = self._etag(copy.source_region, copy.source_bucket, copy.source_prefix + key)
            replica = self._etag(copy.replica_region, copy.replica_bucket, copy.replica_prefix + key)
            if source != replica:
                behind.append(key)
        return behind

    def _etag(self, region: str, bucket: str, key: str) -> str | None:
        # A listing, not HeadObject: a missing key's HEAD needs ListBucket on the whole bucket to answer 404,
        # while a listing of the key's own prefix is what the roles' prefix-scoped ListBucket allows.
        page = self._s3(region).list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        found = [o for o in page.get("Contents", []) if o["Key"] == key]
        return str(found[0].get("ETag", "")).strip('"') if found else None

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
            body = f'{{"seq": {seq}, "at": "{at.isoformat()}"}}'.encode()
            try:
                self.dataset.put(self.copy, key, body)
                with self._lock:
                    self.writes.append(Write(key=key, at=at, etag=hashlib.md5(body).hexdigest()))  # noqa: S324
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
