"""Point-in-time restore of an S3 prefix, decided from its version listing: what each key becomes at TIME.

Pure: the adapter streams the version entries (key order, as ListObjectVersions lists them); these functions
group them per key and decide, one key at a time, so memory holds one key's versions, never the listing.

For each key, the version current at TIME is the newest entry whose LastModified is at or before TIME:
- an object version: the key existed at TIME with that content;
- a delete marker, or no entry that old: the key did not exist at TIME.

What a restore does with that depends on where it writes:
- a new target (another prefix or bucket, the default): copy every key that existed at TIME, as that
  version; keys created later are not copied (the target starts empty, so nothing needs removing);
- in place: copy the version back where it is not the current one (a delete marker is undone by the copy),
  and delete keys created after TIME (a delete marker, so even that is reversible); unchanged keys are left.

S3 lists LastModified to the second, so TIME has one-second resolution: a change within TIME's second counts
as before it. Within one key and one second the listing alone cannot order a version and a delete marker;
the latest entry (IsLatest) is the newest, then a delete marker is taken as newer than a version of the same
second (a deletion follows the write it removes), then the listing's own newest-first order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Change = Literal["unchanged", "reverted", "undeleted", "created-since", "absent"]
"""How the key at TIME differs from the key now: same version; another version now; deleted since;
created since (absent at TIME); absent then and now."""
Operation = Literal["copy", "delete", "none"]

CHANGES: tuple[Change, ...] = ("unchanged", "reverted", "undeleted", "created-since", "absent")


@dataclass(frozen=True, slots=True)
class VersionEntry:
    """One entry of a version listing: an object version or a delete marker (key relative to the prefix)."""

    key: str
    version_id: str
    last_modified: datetime
    is_latest: bool
    delete_marker: bool = False
    size: int = 0
    etag: str | None = None
    checksum_algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class KeyPlan:
    """What one key becomes: its change since TIME, the operation that restores it, and the version used."""

    key: str
    change: Change
    operation: Operation
    version: VersionEntry | None = None  # the version current at TIME (None: the key did not exist then)


def newest_first(entries: Iterable[VersionEntry]) -> list[VersionEntry]:
    """One key's entries, newest first (the order the module docstring gives for entries of one second)."""
    # sorted() is stable with reverse=True too: equal entries keep the listing's newest-first order.
    return sorted(entries, key=lambda e: (e.last_modified, e.is_latest, e.delete_marker), reverse=True)


def grouped(entries: Iterable[VersionEntry]) -> Iterator[list[VersionEntry]]:
    """Consecutive entries of the same key, as lists (the listing is in key order)."""
    current: list[VersionEntry] = []
    for entry in entries:
        if current and entry.key != current[0].key:
            yield current
            current = []
        current.append(entry)
    if current:
        yield current


def current_at(versions: list[VersionEntry], to: datetime) -> VersionEntry | None:
    """The object version current at `to` (None: absent then). `versions` newest first."""
    for entry in versions:
        if entry.last_modified <= to:
            return None if entry.delete_marker else entry
    return None


def current_now(versions: list[VersionEntry]) -> VersionEntry | None:
    """The object version current now (None: deleted or never there). `versions` newest first."""
    latest = next((e for e in versions if e.is_latest), versions[0] if versions else None)
    return None if latest is None or latest.delete_marker else latest


def same_content(a: VersionEntry, b: VersionEntry) -> bool:
    """The same version, or versions with the same single-part MD5 ETag and size (a key restored in place
    earlier holds a copy: another version id, the same bytes; so a second run or a retried batch is a no-op).
    Multipart and SSE-KMS ETags are not MD5s of the bytes: such versions only match by id."""
    if a.version_id == b.version_id:
        return True
    return bool(a.etag) and a.etag == b.etag and "-" not in (a.etag or "") and a.size == b.size


def plan_key(entries: list[VersionEntry], to: datetime, *, in_place: bool) -> KeyPlan:
    """What to do with one key so that the target holds what the source held at `to`."""
    versions = newest_first(entries)
    key = versions[0].key
    then, now = current_at(versions, to), current_now(versions)
    change: Change
    if then is None:
        change = "absent" if now is None else "created-since"
    elif now is None:
        change = "undeleted"
    elif same_content(now, then):
        change = "unchanged"
    else:
        change = "reverted"
    if not in_place:
        return KeyPlan(key, change, "copy" if then is not None else "none", then)
    operation: Operation = {"reverted": "copy", "undeleted": "copy", "created-since": "delete"}.get(
        change, "none"
    )  # type: ignore[assignment]
    return KeyPlan(key, change, operation, then)


def plan_restore(entries: Iterable[VersionEntry], to: datetime, *, in_place: bool) -> Iterator[KeyPlan]:
    """Every key of a version listing (streamed, key order), each decided on its own."""
    for versions in grouped(entries):
        yield plan_key(versions, to, in_place=in_place)


@dataclass
class RestoreTally:
    """Counts of a restore (planned or done) and a bounded list of the changes, for reports and dry runs."""

    limit: int = 100
    keys: int = 0
    changes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGES, 0))
    copies: int = 0
    deletes: int = 0
    bytes_copied: int = 0
    listed: list[dict[str, str | int | None]] = field(default_factory=list)
    listed_truncated: int = 0

    def add(self, kp: KeyPlan) -> None:
        self.keys += 1
        self.changes[kp.change] += 1
        if kp.operation == "copy":
            self.copies += 1
            self.bytes_copied += kp.version.size if kp.version else 0
        elif kp.operation == "delete":
            self.deletes += 1
        if kp.operation == "none":
            return
        if len(self.listed) < self.limit:
            self.listed.append(describe(kp))
        else:
            self.listed_truncated += 1

    @property
    def operations(self) -> int:
        return self.copies + self.deletes


def describe(kp: KeyPlan) -> dict[str, str | int | None]:
    """One change as a report line: key, change, operation and the version it restores."""
    return {
        "key": kp.key,
        "change": kp.change,
        "operation": kp.operation,
        "version_id": kp.version.version_id if kp.version else None,
        "size": kp.version.size if kp.version else None,
    }


# -- restore tests ----------------------------------------------------------------------------------------
def projected_seconds(
    *,
    listing_seconds: float,
    copy_seconds: float,
    sample_objects: int,
    sample_bytes: int,
    objects: int,
    size: int,
) -> float:
    """Time to restore the whole asset, from a measured sample restore: the full listing as measured, plus the
    copies scaled by the slower of the per-object and per-byte rates (small objects cost requests, large
    ones bandwidth)."""
    if sample_objects <= 0:
        return listing_seconds
    by_objects = copy_seconds * objects / sample_objects
    by_bytes = copy_seconds * size / sample_bytes if sample_bytes > 0 else 0.0
    return listing_seconds + max(by_objects, by_bytes)


RestoreTestVerdict = Literal["passed", "breached", "failed", "empty"]


def restore_test_verdict(
    *, failed: int, sample_objects: int, projected: float, rto_seconds: float
) -> RestoreTestVerdict:
    """A restore test fails when a sample copy does not verify, breaches when the projected restore of the
    whole asset takes longer than the plan's RTO, and proves nothing on an empty asset."""
    if failed:
        return "failed"
    if sample_objects == 0:
        return "empty"
    return "breached" if projected > rto_seconds else "passed"
