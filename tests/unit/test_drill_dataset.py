"""The drill's dataset adapter against an in-memory versioned S3: what it writes, and that removing the
drill's objects leaves no version behind (but the ones Object Lock keeps, hidden)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.drill_dataset import DrillDataset
from chalicelib.adapters.drill_faults import ReplicaCopy

COPY = ReplicaCopy(
    source_bucket="data-use1",
    source_prefix="train/lifeboat-drill/drill-1/",
    source_region="us-east-1",
    replica_bucket="data-usw2",
    replica_prefix="train/lifeboat-drill/drill-1/",
    replica_region="us-west-2",
)


class VersionedS3:
    """The calls the adapter makes, on versioned buckets; versions in `locked` cannot be deleted."""

    def __init__(self) -> None:
        self.versions: dict[str, list[dict[str, Any]]] = {}  # bucket -> versions, oldest first
        self.locked: set[str] = set()
        self.refuse_puts = False
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _add(self, bucket: str, key: str, *, marker: bool = False, body: bytes = b"") -> str:
        version = f"v{next(self._ids)}"
        with self._lock:
            self.versions.setdefault(bucket, []).append(
                {"Key": key, "VersionId": version, "marker": marker, "Body": body}
            )
        return version

    def current(self, bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for v in self.versions.get(bucket, []):
            if v["Key"].startswith(prefix):
                latest[v["Key"]] = v
        return {k: v for k, v in latest.items() if not v["marker"]}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str) -> dict[str, Any]:
        if self.refuse_puts:
            raise ConnectionError("the region is down")
        return {"VersionId": self._add(Bucket, Key, body=Body)}

    def list_objects_v2(self, *, Bucket: str, Prefix: str, **_: Any) -> dict[str, Any]:
        return {"Contents": [{"Key": k} for k in sorted(self.current(Bucket, Prefix))], "IsTruncated": False}

    def list_object_versions(self, *, Bucket: str, Prefix: str, **_: Any) -> dict[str, Any]:
        mine = [v for v in self.versions.get(Bucket, []) if v["Key"].startswith(Prefix)]
        return {
            "Versions": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in mine if not v["marker"]],
            "DeleteMarkers": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in mine if v["marker"]],
            "IsTruncated": False,
        }

    def delete_objects(self, *, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        errors = []
        for item in Delete["Objects"]:
            if "VersionId" not in item:
                self._add(Bucket, item["Key"], marker=True)
            elif item["VersionId"] in self.locked:
                errors.append({"Key": item["Key"], "VersionId": item["VersionId"], "Code": "AccessDenied"})
            else:
                self.versions[Bucket] = [
                    v for v in self.versions[Bucket] if v["VersionId"] != item["VersionId"]
                ]
        return {"Errors": errors}


def dataset(s3: VersionedS3) -> DrillDataset:
    return DrillDataset(lambda region: s3)


def wait_until(done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.01)


def test_purge_deletes_every_version_and_marker_under_the_drill_prefix_only() -> None:
    # Given the drill's objects, rewritten and deleted once (versions and a marker), next to the dataset's own
    s3 = VersionedS3()
    for key in ("000001.json", "000002.json", "000001.json"):
        s3.put_object(Bucket="data-use1", Key=COPY.source_prefix + key, Body=b"{}", ContentType="")
    s3.delete_objects(Bucket="data-use1", Delete={"Objects": [{"Key": COPY.source_prefix + "000002.json"}]})
    s3.put_object(Bucket="data-use1", Key="train/part-0.parquet", Body=b"data", ContentType="")
    # When the drill's prefix is purged
    objects, retained = dataset(s3).purge("data-use1", COPY.source_prefix, "us-east-1")
    # Then no version or marker of the drill's is left, and the dataset's own object is untouched
    assert (objects, retained) == (2, 0)
    assert [v["Key"] for v in s3.versions["data-use1"]] == ["train/part-0.parquet"]


def test_versions_object_lock_keeps_are_counted_and_hidden_behind_a_marker() -> None:
    # Given a replica whose copy of one drill object is under Object Lock retention
    s3 = VersionedS3()
    s3.put_object(Bucket="data-usw2", Key=COPY.replica_prefix + "000001.json", Body=b"{}", ContentType="")
    s3.locked.add(s3.versions["data-usw2"][0]["VersionId"])
    # When the drill's objects are removed from both regions
    removal = dataset(s3).remove(COPY, settle=0.5)
    # Then the kept version is reported and no longer visible; nothing else is left
    assert removal.retained == 1 and removal.visible == []
    assert s3.current("data-usw2") == {}
    assert [v["marker"] for v in s3.versions["data-usw2"]] == [False, True]


def test_the_writer_stamps_each_write_with_the_drill_clock_and_logs_only_accepted_ones() -> None:
    # Given a drill clock far from the wall clock
    drill_time = datetime(2030, 1, 1, tzinfo=UTC)
    s3 = VersionedS3()
    writer = dataset(s3).writer(COPY, timedelta(milliseconds=20), lambda: drill_time)
    # When it writes a few objects, then the region refuses writes
    writer.start()
    wait_until(lambda: len(writer.snapshot()) >= 3, "three writes")
    s3.refuse_puts = True
    wait_until(lambda: writer.errors > 0, "refused write")
    writer.stop()
    # Then every logged write is in the source bucket, stamped with the drill's clock, and the refused ones
    # are not in the log
    log = writer.snapshot()
    assert {w.at for w in log} == {drill_time}
    stored = s3.current("data-use1", COPY.source_prefix)
    assert {COPY.source_prefix + w.key for w in log} == set(stored)
    assert stored[COPY.source_prefix + log[0].key]["Body"] == b'{"seq": 1, "at": "2030-01-01T00:00:00+00:00"}'


# -- data-corruption: checksums, the damage's time, replication caught up (in-process moto) ---------------
def test_checksums_first_change_and_lagging_keys_read_what_s3_holds(aws: Any) -> None:
    import hashlib

    from tests.unit.moto_aws import bucket

    bucket(aws, COPY.source_bucket, COPY.source_region)
    bucket(aws, COPY.replica_bucket, COPY.replica_region)
    dataset = DrillDataset(lambda region: aws("s3", region))
    # Given three objects in both regions, then a bad write over one and a deletion of another in the source
    for key in ("1.json", "2.json", "3.json"):
        dataset.put(COPY, key, key.encode())
        aws("s3", COPY.replica_region).put_object(
            Bucket=COPY.replica_bucket, Key=COPY.replica_prefix + key, Body=key.encode()
        )
    dataset.put(COPY, "1.json", b"garbage")
    dataset.delete(COPY, "2.json")
    # Then the checksums are the bodies' MD5s, the damage shows in the source only, and the keys whose
    # replica has not caught up are the damaged ones
    assert dataset.replica_etags(COPY) == {
        k: hashlib.md5(k.encode()).hexdigest() for k in ("1.json", "2.json", "3.json")
    }  # noqa: S324
    assert set(dataset.source_etags(COPY)) == {"1.json", "3.json"}
    assert dataset.lagging(COPY, ["1.json", "2.json", "3.json"]) == ["1.json", "2.json"]
    # And the damage's time is S3's stamp of its newest version or delete marker
    first = dataset.first_change(COPY, ["1.json", "2.json"])
    assert first is not None and first.tzinfo is not None
    assert abs((datetime.now(UTC) - first).total_seconds()) < 60
    assert dataset.first_change(COPY, ["never-written.json"]) is None
