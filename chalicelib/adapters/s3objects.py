"""S3 as streams of ObjectInfo (relative keys, one page in memory at a time), plus the per-bucket and
per-object facts verification needs: protection settings, stored checksums, inventory files, copies.
"""

from __future__ import annotations

import base64
import collections
import contextvars
import csv
import gzip
import hashlib
import io
import itertools
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from chalicelib.adapters.dynamo import error_code
from chalicelib.adapters.errors import is_transient
from chalicelib.adapters.s3pages import Entry, iter_pages
from chalicelib.clock import Clock, utc_now
from chalicelib.domain.listings import ObjectInfo, listed_object
from chalicelib.domain.verification import clip, start_after
from chalicelib.models.verification import BucketSettings, Encryption, ObjectLock, Setting

CHECKSUM_FIELDS = (
    ("SHA256", "ChecksumSHA256"),
    ("SHA1", "ChecksumSHA1"),
    ("CRC64NVME", "ChecksumCRC64NVME"),
    ("CRC32C", "ChecksumCRC32C"),
    ("CRC32", "ChecksumCRC32"),
)
"""Stored checksum headers, strongest first (the first both sides share is compared)."""

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def iter_objects(
    s3: Any,
    bucket: str,
    prefix: str = "",
    *,
    start: str | None = None,
    end: str | None = None,
    delimiter: str | None = None,
    relative_to: str | None = None,
    clock: Clock = utc_now,
) -> Iterator[ObjectInfo]:
    """ListObjectsV2 pages as ObjectInfo, keys relative to `relative_to` (default: `prefix`).

    `start`/`end` keep only relative keys in [start, end); `delimiter` lists only the objects directly
    under the prefix. Listings carry no checksum values (only the algorithm), so `checksum` stays None; see
    `head_facts`. Each entry carries when its page was read (`listed_at`, from `clock`).
    """
    base = prefix if relative_to is None else relative_to
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    after = start_after(base, start)
    if after is not None:
        kwargs["StartAfter"] = after

    def pages() -> Iterator[ObjectInfo]:
        while True:
            page = s3.list_objects_v2(**kwargs)
            read_at = clock()
            for obj in page.get("Contents", []):
                yield ObjectInfo(
                    key=obj["Key"][len(base) :],
                    size=int(obj["Size"]),
                    etag=str(obj.get("ETag", "")).strip('"') or None,
                    checksum=None,
                    checksum_type=obj.get("ChecksumType"),
                    encryption=None,
                    last_modified=_utc(obj["LastModified"]),
                    version_id=None,
                    version_count=None,
                    listed_at=read_at,
                )
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    return clip(pages(), start, end)


def iter_object_versions(
    s3: Any,
    bucket: str,
    prefix: str = "",
    *,
    start: str | None = None,
    end: str | None = None,
    delimiter: str | None = None,
    relative_to: str | None = None,
    clock: Clock = utc_now,
    page_size: int | None = None,
) -> Iterator[ObjectInfo]:
    """ListObjectVersions grouped per key: the current version, with the key's version count.

    Keys whose current version is a delete marker are absent, as they are from ListObjectsV2. Pages are
    read from the response body (`s3pages`); `page_size` (MaxKeys) is S3's 1000 unless given.
    """
    base = prefix if relative_to is None else relative_to
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if page_size:
        kwargs["MaxKeys"] = page_size
    if delimiter:
        kwargs["Delimiter"] = delimiter
    after = start_after(base, start)
    if after is not None:
        kwargs["KeyMarker"] = after

    def grouped() -> Iterator[ObjectInfo]:
        # Entries are (key, deleted, latest, version id, size, etag, last modified, checksum type), read
        # from the raw page (s3pages); an ObjectInfo is built only for each key's current version.
        current_key: str | None = None
        latest: Entry | None = None
        read_at: datetime | None = None
        latest_read_at: datetime | None = None
        count = 0
        cut = len(base)
        for page in iter_pages(s3, kwargs):
            read_at = clock()
            for entry in page.entries:
                key = entry[0]
                if key != current_key:
                    if latest is not None:
                        yield _version_info(latest, cut, count, latest_read_at)
                    current_key, latest, count = key, None, 0
                if not entry[1]:
                    count += 1
                if entry[2]:
                    latest = None if entry[1] else entry
                    latest_read_at = read_at
        if latest is not None:
            yield _version_info(latest, cut, count, latest_read_at)

    return clip(grouped(), start, end)


def _version_info(v: Entry, cut: int, count: int, read_at: datetime | None) -> ObjectInfo:
    key, _, _, version_id, size, etag, last_modified, checksum_type = v
    return listed_object(key[cut:], size, last_modified, etag, checksum_type, version_id, count, read_at)


def head_facts(s3: Any, bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
    """What HeadObject adds to a listing entry: the stored checksum ('ALGO:value') and its type, the
    server-side encryption (none, AES256, aws:kms, aws:kms:dsse, SSE-C) and the ETag."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
    if version_id:
        kwargs["VersionId"] = version_id
    head = s3.head_object(**kwargs)
    out: dict[str, Any] = {"etag": str(head.get("ETag", "")).strip('"') or None}
    for algorithm, field in CHECKSUM_FIELDS:
        if head.get(field):
            out["checksum"] = f"{algorithm}:{head[field]}"
            out["checksum_type"] = head.get("ChecksumType")
            break
    if head.get("SSECustomerAlgorithm"):
        out["encryption"] = "SSE-C"
    else:
        out["encryption"] = head.get("ServerSideEncryption") or "none"
    return out


def sha256_of_version(s3: Any, bucket: str, key: str, version_id: str | None, *, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of one version's bytes, streamed in `chunk`s (memory stays at one chunk)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    digest = hashlib.sha256()
    body = s3.get_object(**kwargs)["Body"]
    for part in iter(lambda: body.read(chunk), b""):
        digest.update(part)
    return digest.hexdigest()


def head_checksum(
    s3: Any, bucket: str, key: str, version_id: str | None = None
) -> tuple[str, str | None] | None:
    """The stored checksum of an object ('ALGO:value', checksum type), or None when it has none."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
    if version_id:
        kwargs["VersionId"] = version_id
    head = s3.head_object(**kwargs)
    for algorithm, field in CHECKSUM_FIELDS:
        if head.get(field):
            return f"{algorithm}:{head[field]}", head.get("ChecksumType")
    return None


def sha256_of_object(s3: Any, bucket: str, key: str, *, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of an object's bytes, streamed: memory stays at one chunk whatever the size."""
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for part in iter(lambda: body.read(chunk), b""):
        digest.update(part)
    return digest.hexdigest()


def stored_sha256_hex(s3: Any, bucket: str, key: str) -> str | None:
    """The object's stored full-object SHA-256 as hex, without reading it; None when not stored."""
    found = head_checksum(s3, bucket, key)
    if not found or not found[0].startswith("SHA256:") or (found[1] or "FULL_OBJECT") != "FULL_OBJECT":
        return None
    value = found[0].split(":", 1)[1]
    if "-" in value:
        return None
    return base64.b64decode(value).hex()


def get_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """A JSON object (a registry manifest), None when there is no such key."""
    try:
        return dict(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    except Exception as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise


def object_sha256(s3: Any, bucket: str, key: str) -> tuple[str | None, str]:
    """(hex SHA-256, how): the stored checksum when S3 has a full-object one, else the streamed bytes;
    (None, "missing") when there is no such object."""
    try:
        stored = stored_sha256_hex(s3, bucket, key)
        if stored is not None:
            return stored, "stored-checksum"
        return sha256_of_object(s3, bucket, key), "read"
    except Exception as exc:
        if error_code(exc) in NOT_FOUND:
            return None, "missing"
        raise


# -- bucket settings --------------------------------------------------------------------------------------
def is_versioned(s3: Any, bucket: str) -> bool:
    """Versioning is Enabled on the bucket. An unreadable setting counts as not (throttling/5xx raise)."""
    try:
        return s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"  # type: ignore[no-any-return]
    except Exception as exc:
        if is_transient(exc):
            raise
        return False


def directories(s3: Any, bucket: str, prefix: str) -> tuple[list[str], bool]:
    """(the "directories" directly under `prefix`, whether objects sit directly under it too)."""
    out: list[str] = []
    loose = False
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
    while True:
        page = s3.list_objects_v2(**kwargs)
        out.extend(p["Prefix"][len(prefix) :] for p in page.get("CommonPrefixes", []))
        loose = loose or bool(page.get("Contents"))
        if not page.get("IsTruncated"):
            return out, loose
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


def bucket_protection(s3: Any, bucket: str) -> BucketSettings:
    """Versioning, default encryption, replication rules and Object Lock of a bucket, each typed: set,
    absent (S3 says there is none) or unreadable (AccessDenied or any other error: a check that could not
    look must not pass, and must not stop the other checks)."""

    def read(call: Any, absent: tuple[str, ...], value: Callable[[Any], Any]) -> Setting[Any]:
        try:
            resp = call()
        except Exception as exc:
            code = error_code(exc)
            if code in absent:
                return Setting(state="absent")
            return Setting(state="unreadable", error=f"{code or type(exc).__name__}: {exc}")
        try:
            found = value(resp)
        except Exception as exc:  # a response of an unexpected shape is not a setting we understood
            return Setting(state="unreadable", error=f"unexpected response: {type(exc).__name__}: {exc}")
        return Setting(state="absent") if found is None else Setting(state="set", value=found)

    def encryption(resp: Any) -> Encryption | None:
        rules = ((resp or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules") or []
        default = (rules[0].get("ApplyServerSideEncryptionByDefault") or {}) if rules else {}
        if not default.get("SSEAlgorithm"):
            return None
        return Encryption(algorithm=default["SSEAlgorithm"], kms_key=default.get("KMSMasterKeyID"))

    def lock(resp: Any) -> ObjectLock | None:
        cfg = (resp or {}).get("ObjectLockConfiguration") or {}
        if not cfg:
            return None
        retention = (cfg.get("Rule") or {}).get("DefaultRetention") or None
        return ObjectLock(enabled=cfg.get("ObjectLockEnabled") == "Enabled", default_retention=retention)

    return BucketSettings(
        bucket=bucket,
        versioning=read(
            lambda: s3.get_bucket_versioning(Bucket=bucket), (), lambda r: (r or {}).get("Status") or None
        ),
        encryption=read(
            lambda: s3.get_bucket_encryption(Bucket=bucket),
            ("ServerSideEncryptionConfigurationNotFoundError",),
            encryption,
        ),
        replication=read(
            lambda: s3.get_bucket_replication(Bucket=bucket),
            ("ReplicationConfigurationNotFoundError",),
            lambda r: ((r or {}).get("ReplicationConfiguration") or {}).get("Rules"),
        ),
        object_lock=read(
            lambda: s3.get_object_lock_configuration(Bucket=bucket),
            ("ObjectLockConfigurationNotFoundError",),
            lock,
        ),
    )


# -- S3 Inventory -----------------------------------------------------------------------------------------
def latest_inventory_manifest(
    s3: Any, bucket: str, prefix: str, source_bucket: str
) -> tuple[str, dict] | None:
    """The newest inventory manifest for `source_bucket` under <prefix><source-bucket>/<config-id>/.

    Returns (manifest key, parsed manifest) or None. Snapshot folders are named YYYY-MM-DDTHH-MMZ, so the
    newest is the greatest key.
    """
    base = inventory_base(prefix, source_bucket)
    newest: str | None = None
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": base}
    while True:
        page = s3.list_objects_v2(**kwargs)
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/manifest.json") and (newest is None or obj["Key"] > newest):
                newest = obj["Key"]
        if not page.get("IsTruncated"):
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    if newest is None:
        return None
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=newest)["Body"].read())
    return newest, manifest


def inventory_base(prefix: str, source_bucket: str) -> str:
    """Where S3 Inventory writes the manifests and data files of `source_bucket` under `prefix`."""
    return f"{prefix}{source_bucket}/" if not prefix or prefix.endswith("/") else f"{prefix}/{source_bucket}/"


def inventory_columns(manifest: dict[str, Any]) -> list[str]:
    return [c.strip() for c in str(manifest.get("fileSchema", "")).split(",") if c.strip()]


def inventory_snapshot(manifest: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(manifest["creationTimestamp"]) / 1000, UTC)


def _inventory_rows(s3: Any, bucket: str, key: str) -> Iterator[list[str]]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with gzip.GzipFile(fileobj=body) as raw:
        yield from csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))


def first_inventory_key(s3: Any, bucket: str, key: str, columns: list[str]) -> str | None:
    """The first object key of an inventory data file (read lazily: only the first rows are fetched)."""
    key_col = columns.index("Key")
    for row in _inventory_rows(s3, bucket, key):
        return unquote(row[key_col])
    return None


def iter_inventory(
    s3: Any,
    bucket: str,
    key: str,
    columns: list[str],
    prefix: str,
) -> Iterator[ObjectInfo]:
    """Rows of an inventory CSV data file as ObjectInfo, relative to `prefix`, current versions only.

    Inventory keys are URL-encoded. Rows come in file order: S3 does not document that it is key order,
    so the caller checks the order and the key range instead of assuming them.
    """
    col = {name: i for i, name in enumerate(columns)}
    for row in _inventory_rows(s3, bucket, key):
        if "IsLatest" in col and row[col["IsLatest"]].lower() != "true":
            continue
        if "IsDeleteMarker" in col and row[col["IsDeleteMarker"]].lower() == "true":
            continue
        full = unquote(row[col["Key"]])
        if not full.startswith(prefix):
            continue
        # Inventory names a checksum algorithm, never its value: content is judged by ETag.
        yield ObjectInfo(
            key=full[len(prefix) :],
            size=int(row[col["Size"]] or 0),
            etag=(row[col["ETag"]] if "ETag" in col else "") or None,
            checksum=None,
            checksum_type=None,
            encryption=None,
            last_modified=_parse_inventory_time(row[col["LastModifiedDate"]]),
            version_id=(row[col["VersionId"]] if "VersionId" in col else None) or None,
            version_count=None,
            listed_at=None,
        )


def _parse_inventory_time(value: str) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    return _utc(datetime.fromisoformat(text))


# -- copies -----------------------------------------------------------------------------------------------
MAX_SINGLE_COPY = 5 * 1024**3


def copy_preserving(
    s3_destination: Any,
    source_bucket: str,
    source_key: str,
    destination_bucket: str,
    destination_key: str,
    *,
    version_id: str | None = None,
) -> dict[str, Any]:
    """Copy an object across buckets keeping its metadata, content headers and tags (CopyObject's COPY
    directives); the destination bucket's default encryption applies, as it does to replicas."""
    source: dict[str, Any] = {"Bucket": source_bucket, "Key": source_key}
    if version_id:
        source["VersionId"] = version_id
    kwargs: dict[str, Any] = {
        "Bucket": destination_bucket,
        "Key": destination_key,
        "CopySource": source,
        "MetadataDirective": "COPY",
        "TaggingDirective": "COPY",
    }
    try:
        resp = s3_destination.copy_object(**kwargs)
    except Exception as exc:
        if error_code(exc) != MOTO_LOCK_HEADERS:
            raise
        resp = _copy_with_checksum_header(s3_destination, kwargs)
    return {"version_id": resp.get("VersionId"), "etag": (resp.get("CopyObjectResult") or {}).get("ETag")}


MOTO_LOCK_HEADERS = "MissingUploadObjectWithObjectLockHeaders"


def _copy_with_checksum_header(s3: Any, kwargs: dict[str, Any]) -> Any:
    """moto (the local cloud) wants a checksum header on copies into Object Lock buckets with default
    retention, which S3 does not (a copy has no body). Only that moto-specific error leads here."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-amz-sdk-checksum-algorithm"] = "CRC32"

    event = "before-sign.s3.CopyObject"
    s3.meta.events.register(event, add_header)
    try:
        return s3.copy_object(**kwargs)
    finally:
        s3.meta.events.unregister(event, add_header)


# -- listing ahead ----------------------------------------------------------------------------------------
READ_AHEAD_CHUNK = 1000
"""Objects handed over at a time by a listing read ahead (one ListObjects page)."""


class ReadAhead(Iterator[ObjectInfo]):
    """`objects`, listed by a thread (started at once) up to `depth` pages ahead of the consumer.

    A listing spends most of its time waiting for S3 (tens of milliseconds per page); reading ahead overlaps
    that wait with the comparison and with other listings. Memory stays bounded (`depth` pages); an error
    reaches the consumer where it happened; `close()` stops the thread (a consumer that stopped early).
    """

    def __init__(self, objects: Iterator[ObjectInfo], *, depth: int = 2) -> None:
        self._pages: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._current: Iterator[ObjectInfo] = iter(())
        self._done = False
        # The listing thread sees this context (the local cloud's per-copy settings, as the shard does).
        context = contextvars.copy_context()
        threading.Thread(
            target=context.run, args=(self._produce, objects), daemon=True, name="list-ahead"
        ).start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._pages.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, objects: Iterator[ObjectInfo]) -> None:
        chunk: list[ObjectInfo] = []
        try:
            for obj in objects:
                chunk.append(obj)
                if len(chunk) >= READ_AHEAD_CHUNK:
                    if not self._put(("items", chunk)):
                        return
                    chunk = []
            if chunk and not self._put(("items", chunk)):
                return
            self._put(("end", None))
        except BaseException as exc:  # handed to the consumer after what was listed, raised there
            if chunk and not self._put(("items", chunk)):
                return
            self._put(("error", exc))

    def __next__(self) -> ObjectInfo:
        while True:
            for obj in self._current:
                return obj
            if self._done:
                raise StopIteration
            kind, payload = self._pages.get()
            if kind == "items":
                self._current = iter(payload)
            elif kind == "error":
                self._done = True
                raise payload
            else:
                self._done = True

    def close(self) -> None:
        self._stop.set()


def chain_ahead(streams: Iterable[Iterator[ObjectInfo]], *, window: int = 4) -> Iterator[ObjectInfo]:
    """Listings (one per prefix, in key order) chained in order, up to `window` of them listed at once."""
    pending = iter(streams)
    started: collections.deque[ReadAhead] = collections.deque(
        ReadAhead(stream) for stream in itertools.islice(pending, window)
    )
    try:
        while started:
            yield from started[0]
            started.popleft()
            nxt = next(pending, None)
            if nxt is not None:
                started.append(ReadAhead(nxt))
    finally:
        for stream in started:
            stream.close()
