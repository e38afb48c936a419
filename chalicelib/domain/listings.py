"""Streaming comparison of two S3 listings (source vs replica): a merge-join, O(n) time, O(1) memory.

S3 lists keys in UTF-8 binary order, which is Python's code-point order for str, so two sorted streams of
keys relative to their prefixes can be walked side by side without holding either in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ObjectInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str = Field(description="Key relative to the asset prefix.")
    size: int
    etag: str | None = None
    checksum: str | None = Field(None, description="Stored full-object checksum 'ALGO:value' when present.")
    last_modified: datetime


DiffKind = Literal["missing", "extra", "different"]


class Difference(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: DiffKind
    key: str
    source: ObjectInfo | None = None
    replica: ObjectInfo | None = None
    why: str


def _same_content(a: ObjectInfo, b: ObjectInfo) -> tuple[bool, str]:
    if a.size != b.size:
        return False, f"size {a.size} != {b.size}"
    if a.checksum and b.checksum and a.checksum.split(":")[0] == b.checksum.split(":")[0]:
        return (a.checksum == b.checksum), "checksum differs"
    # Multipart ETags ("...-N") depend on part sizes, so they are only comparable when both are simple.
    if a.etag and b.etag and "-" not in a.etag and "-" not in b.etag:
        return (a.etag == b.etag), "ETag differs"
    return True, "size matches (content not verifiable)"


def diff_listings(source: Iterable[ObjectInfo], replica: Iterable[ObjectInfo]) -> Iterator[Difference]:
    src: Iterator[ObjectInfo] = iter(source)
    rep: Iterator[ObjectInfo] = iter(replica)
    a = next(src, None)
    b = next(rep, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a.key < b.key):
            assert a is not None
            yield Difference(kind="missing", key=a.key, source=a, why="not in the replica")
            a = next(src, None)
        elif a is None or b.key < a.key:
            yield Difference(kind="extra", key=b.key, replica=b, why="only in the replica")
            b = next(rep, None)
        else:
            same, why = _same_content(a, b)
            if not same:
                yield Difference(kind="different", key=a.key, source=a, replica=b, why=why)
            a = next(src, None)
            b = next(rep, None)
