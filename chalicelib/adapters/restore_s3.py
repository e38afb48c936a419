"""S3 for point-in-time restores: the version listing streamed page by page, and each restored object copied
from its source version and checked against it (parallel, a bounded number in flight).

Every copy is verified before it counts as restored, by the strongest check the source version allows:
- `checksum-<ALGO>`: the version stores a full-object checksum (listed as its ChecksumAlgorithm): the copy
  asks S3 for the same algorithm and the two values must match;
- `etag-md5`: otherwise, a single-part source whose ETag is its MD5: the copy's ETag must equal it (S3
  computes it from the bytes it wrote);
- `sha256-read`: otherwise (multipart or KMS-encrypted sources, whose ETags are not MD5s, or an ETag that
  differs), both objects are read and their SHA-256 compared, streamed a chunk at a time.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.errors import is_transient
from chalicelib.domain.restore import KeyPlan, VersionEntry
from chalicelib.models.restore import Location

FULL_OBJECT_ALGORITHMS = ("SHA256", "SHA1", "CRC64NVME", "CRC32C", "CRC32")
CHUNK = 1 << 20


class ChecksumMismatch(RuntimeError):
    """A restored object's content differs from the version it was copied from."""


@dataclass(frozen=True, slots=True)
class Applied:
    """One operation's outcome: the check that proved a copy (or "deleted"), or the error."""

    key: str
    operation: str
    check: str | None = None
    error: str | None = None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _entry(base: str, v: dict[str, Any], *, marker: bool) -> VersionEntry:
    algorithms = v.get("ChecksumAlgorithm") or []
    return VersionEntry(
        key=v["Key"][len(base) :],
        version_id=str(v.get("VersionId") or "null"),
        last_modified=_utc(v["LastModified"]),
        is_latest=bool(v.get("IsLatest")),
        delete_marker=marker,
        size=int(v.get("Size") or 0),
        etag=str(v.get("ETag", "")).strip('"') or None,
        checksum_algorithm=next((a for a in algorithms if a in FULL_OBJECT_ALGORITHMS), None),
    )


class ObjectRestorer:
    s3 = aws.Client("s3")

    def __init__(self, s3: Any | None = None) -> None:
        self.s3 = s3  # None: the factory's, for each location's region

    def _client(self, region: str) -> Any:
        return type(self).s3.of(self, region)

    # -- reads --------------------------------------------------------------------------------------------
    def versioned(self, loc: Location) -> bool:
        status = self._client(loc.region).get_bucket_versioning(Bucket=loc.bucket).get("Status")
        return status in ("Enabled", "Suspended")  # suspended: the versions made before still count

    def holds_objects(self, loc: Location) -> bool:
        """Anything under the location's prefix now (one key is enough to know)."""
        page = self._client(loc.region).list_objects_v2(Bucket=loc.bucket, Prefix=loc.prefix, MaxKeys=1)
        return bool(page.get("KeyCount") or page.get("Contents"))

    def versions(self, loc: Location, *, after: str | None = None) -> Iterator[VersionEntry]:
        """Every version and delete marker under the prefix, in key order, one page in memory at a time;
        `after` (an absolute key) resumes after that key."""
        s3 = self._client(loc.region)
        kwargs: dict[str, Any] = {"Bucket": loc.bucket, "Prefix": loc.prefix}
        if after is not None:
            kwargs["KeyMarker"] = after
        while True:
            page = s3.list_object_versions(**kwargs)
            merged = [(v["Key"], 0, i, v, False) for i, v in enumerate(page.get("Versions", []))]
            merged += [(m["Key"], 1, i, m, True) for i, m in enumerate(page.get("DeleteMarkers", []))]
            merged.sort(key=lambda e: (e[0], e[1], e[2]))
            for key, _, _, v, marker in merged:
                # S3 starts after KeyMarker; moto's listing repeats the marker key (some of its versions).
                if after is None or key > after:
                    yield _entry(loc.prefix, v, marker=marker)
            if not page.get("IsTruncated"):
                return
            kwargs["KeyMarker"] = page.get("NextKeyMarker")
            if page.get("NextVersionIdMarker"):
                kwargs["VersionIdMarker"] = page["NextVersionIdMarker"]
            else:
                kwargs.pop("VersionIdMarker", None)

    # -- writes -------------------------------------------------------------------------------------------
    def purge(self, loc: Location) -> int:
        """Delete every version and delete marker under the location (a restore test's scratch prefix);
        returns how many were deleted."""
        s3, deleted = self._client(loc.region), 0
        while True:
            page = s3.list_object_versions(Bucket=loc.bucket, Prefix=loc.prefix, MaxKeys=1000)
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if not doomed:
                return deleted
            errors = s3.delete_objects(Bucket=loc.bucket, Delete={"Objects": doomed, "Quiet": True}).get(
                "Errors"
            )
            if errors:
                raise RuntimeError(f"{loc.uri()}: {len(errors)} versions not deleted, e.g. {errors[0]}")
            deleted += len(doomed)

    def apply(
        self,
        source: Location,
        target: Location,
        plans: Iterable[KeyPlan],
        *,
        workers: int = 16,
        on_applied: Callable[[Applied], None],
    ) -> None:
        """Carry out every plan's operation (copy or delete), `workers` at a time and at most twice that many
        queued, so memory stays flat however many keys stream through. Returns when all are done.
        Throttling and 5xx that outlive botocore's retries propagate (after the others in flight finish);
        any other failure is reported as that key's `Applied.error`."""
        context = contextvars.copy_context()  # workers see this context's settings (local cloud copies)
        transient: list[BaseException] = []

        def one(kp: KeyPlan) -> Applied:
            try:
                if kp.operation == "delete":
                    self._client(target.region).delete_object(
                        Bucket=target.bucket, Key=target.prefix + kp.key
                    )
                    return Applied(kp.key, "delete", check="deleted")
                return Applied(kp.key, "copy", check=self.copy_verified(source, target, kp))
            except Exception as exc:
                if is_transient(exc):
                    transient.append(exc)
                return Applied(kp.key, kp.operation, error=f"{type(exc).__name__}: {exc}"[:500])

        in_flight: set[Future[Applied]] = set()

        def drain(block_until: int) -> None:
            nonlocal in_flight
            while len(in_flight) > block_until:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    on_applied(future.result())

        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="restore") as pool:
            for kp in plans:
                if kp.operation == "none":
                    continue
                in_flight.add(pool.submit(context.copy().run, one, kp))
                drain(2 * workers)
            drain(0)
        if transient:
            raise transient[0]

    def copy_verified(self, source: Location, target: Location, kp: KeyPlan) -> str:
        """Copy the key's version at TIME into the target and prove the copy holds the same bytes; returns
        the check used. ChecksumMismatch when it does not."""
        version = kp.version
        if version is None:
            raise ValueError(f"{kp.key}: nothing to copy (the key did not exist at the restore time)")
        src_key, dst_key = source.prefix + kp.key, target.prefix + kp.key
        expected, algorithm = None, version.checksum_algorithm
        if algorithm:
            head = self._client(source.region).head_object(
                Bucket=source.bucket, Key=src_key, VersionId=version.version_id, ChecksumMode="ENABLED"
            )
            value = head.get(f"Checksum{algorithm}")
            if value and "-" not in str(value) and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
                expected = value
        kwargs: dict[str, Any] = {
            "Bucket": target.bucket,
            "Key": dst_key,
            "CopySource": {"Bucket": source.bucket, "Key": src_key, "VersionId": version.version_id},
            "MetadataDirective": "COPY",
            "TaggingDirective": "COPY",
        }
        if expected:
            kwargs["ChecksumAlgorithm"] = algorithm
        resp = self._client(target.region).copy_object(**kwargs)
        result = resp.get("CopyObjectResult") or {}
        if expected:
            if result.get(f"Checksum{algorithm}") != expected:
                raise ChecksumMismatch(
                    f"{dst_key}: {algorithm} of the copy differs from version {version.version_id}"
                )
            return f"checksum-{algorithm}"
        etag = str(result.get("ETag", "")).strip('"')
        if version.etag and "-" not in version.etag and etag == version.etag:
            return "etag-md5"
        copied = self._sha256(target, dst_key, resp.get("VersionId"))
        if copied != self._sha256(source, src_key, version.version_id):
            raise ChecksumMismatch(
                f"{dst_key}: SHA-256 of the copy differs from version {version.version_id}"
            )
        return "sha256-read"

    def _sha256(self, loc: Location, key: str, version_id: str | None) -> str:
        kwargs: dict[str, Any] = {"Bucket": loc.bucket, "Key": key}
        if version_id and version_id != "null":
            kwargs["VersionId"] = version_id
        body = self._client(loc.region).get_object(**kwargs)["Body"]
        digest = hashlib.sha256()
        for part in iter(lambda: body.read(CHUNK), b""):
            digest.update(part)
        return digest.hexdigest()
