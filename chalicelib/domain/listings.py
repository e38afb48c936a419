"""Streaming comparison of two S3 listings (source vs replica): a merge-join, O(n) time, O(1) memory.

S3 lists keys in UTF-8 binary order, which is Python's code-point order for str, so two sorted streams of
keys relative to their prefixes can be walked side by side without holding either in memory.

Content is judged, strongest first, by a stored checksum of the same algorithm and type (SHA-256, CRC...),
by simple (single-part) ETags, or by identical multipart ETags. When none of these is available the pair is
"unknown": same size, but nothing proves the bytes are the same. The caller may pass `resolve` to fetch
stored checksums (HeadObject / GetObjectAttributes) for exactly those pairs, and asks for them to be reported
(`report_unverified`) instead of silently counted as equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ObjectInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str = Field(description="Key relative to the asset prefix.")
    size: int
    etag: str | None = None
    checksum: str | None = Field(None, description="Stored full-object checksum 'ALGO:value' when present.")
    checksum_type: str | None = Field(
        None, description="FULL_OBJECT or COMPOSITE (multipart checksum of checksums) when known."
    )
    last_modified: datetime
    version_id: str | None = Field(None, description="Version of the current object, when listed.")
    version_count: int | None = Field(
        None, description="Versions of the key (not delete markers), if listed."
    )


DiffKind = Literal["missing", "extra", "different", "stale", "unverified"]
ContentVerdict = Literal["same", "different", "unknown"]


class Difference(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: DiffKind
    key: str
    source: ObjectInfo | None = None
    replica: ObjectInfo | None = None
    why: str


Resolver = Callable[[ObjectInfo, ObjectInfo], tuple[ObjectInfo, ObjectInfo]]
"""Fetches stored checksums for a pair whose listing data cannot prove their content equal."""


def _multipart_parts(etag: str) -> str | None:
    head, sep, tail = etag.rpartition("-")
    return tail if sep and head and tail.isdigit() else None


def _checksums_comparable(a: ObjectInfo, b: ObjectInfo) -> bool:
    if not (a.checksum and b.checksum):
        return False
    if a.checksum.split(":", 1)[0] != b.checksum.split(":", 1)[0]:
        return False
    if a.checksum_type and b.checksum_type and a.checksum_type != b.checksum_type:
        return False
    if "COMPOSITE" in (a.checksum_type, b.checksum_type):
        # A checksum of part checksums depends on the part layout ("...==-3"): same layout or nothing.
        return _multipart_parts(a.checksum) == _multipart_parts(b.checksum)
    return True


def compare_content(a: ObjectInfo, b: ObjectInfo) -> tuple[ContentVerdict, str]:
    """Are `a` and `b` the same bytes? 'unknown' when nothing available can tell."""
    if a.size != b.size:
        return "different", f"size {a.size} != {b.size}"
    if _checksums_comparable(a, b):
        algorithm = str(a.checksum).split(":", 1)[0]
        if a.checksum == b.checksum:
            return "same", f"{algorithm} checksum matches"
        return "different", f"{algorithm} checksum differs"
    if a.etag and b.etag:
        simple = _multipart_parts(a.etag) is None and _multipart_parts(b.etag) is None
        if simple:
            return ("same", "ETag matches") if a.etag == b.etag else ("different", "ETag differs")
        if a.etag == b.etag:
            # Equal multipart ETags mean equal part MD5s in the same layout.
            return "same", "multipart ETag matches"
    return "unknown", "size matches but content cannot be verified (no comparable checksum or ETag)"


def diff_listings(
    source: Iterable[ObjectInfo],
    replica: Iterable[ObjectInfo],
    *,
    resolve: Resolver | None = None,
    report_unverified: bool = False,
    on_pair: Callable[[ObjectInfo, ObjectInfo], None] | None = None,
) -> Iterator[Difference]:
    """Differences between two listings sorted in S3 order, in that order.

    missing: only in the source; extra: only in the replica; different: other content; stale: other or
    unprovable content and the replica is older than the source's current version (an overwrite that has
    not replicated); unverified (only with `report_unverified`): same size, content unprovable.
    `on_pair` sees every key present on both sides (e.g. to compare version counts).
    """
    src: Iterator[ObjectInfo] = iter(source)
    rep: Iterator[ObjectInfo] = iter(replica)
    a = next(src, None)
    b = next(rep, None)
    while a is not None or b is not None:
        if a is not None and (b is None or a.key < b.key):
            yield Difference(kind="missing", key=a.key, source=a, why="not in the replica")
            a = next(src, None)
        elif b is not None and (a is None or b.key < a.key):
            yield Difference(kind="extra", key=b.key, replica=b, why="only in the replica")
            b = next(rep, None)
        elif a is not None and b is not None:  # the same key on both sides
            if on_pair is not None:
                on_pair(a, b)
            found = _compare_pair(a, b, resolve, report_unverified)
            if found is not None:
                yield found
            a = next(src, None)
            b = next(rep, None)


def _compare_pair(
    a: ObjectInfo, b: ObjectInfo, resolve: Resolver | None, report_unverified: bool
) -> Difference | None:
    verdict, why = compare_content(a, b)
    if verdict == "unknown" and resolve is not None:
        a, b = resolve(a, b)
        verdict, why = compare_content(a, b)
    if verdict == "same":
        return None
    if b.last_modified < a.last_modified:
        return Difference(
            kind="stale", key=a.key, source=a, replica=b, why=f"replica is older than the source ({why})"
        )
    if verdict == "different":
        return Difference(kind="different", key=a.key, source=a, replica=b, why=why)
    if report_unverified:
        return Difference(kind="unverified", key=a.key, source=a, replica=b, why=why)
    return None
