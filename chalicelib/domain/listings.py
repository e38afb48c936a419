"""Streaming comparison of two S3 listings (source vs replica): a merge-join, O(n) time, O(1) memory.

S3 lists keys in UTF-8 binary order, which is Python's code-point order for str, so two sorted streams of
keys relative to their prefixes can be walked side by side without holding either in memory.

Content is judged, strongest first, by size, a stored checksum of the same algorithm (and type), then ETags
(`compare_content`); each pair's proof method is reported. When none of these can tell, the pair is
"unknown": the caller may pass `resolve` to fetch what listings lack (stored checksums, encryption:
HeadObject) for exactly those pairs, then `read` to hash both objects within a byte budget, and asks for
pairs still unknown to be reported (`report_unverified`) instead of silently counted as equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object of a listing. A slotted dataclass, not a model: listings make one per object (millions
    per run), and the values come from S3 through the adapters' parsers, which check them."""

    key: str
    """Key relative to the asset prefix."""
    size: int
    last_modified: datetime
    etag: str | None = None
    checksum: str | None = None
    """Stored checksum 'ALGO:value' when known."""
    checksum_type: str | None = None
    """FULL_OBJECT or COMPOSITE (multipart checksum of checksums) when known."""
    encryption: str | None = None
    """Server-side encryption when known (HeadObject): none, AES256, aws:kms, aws:kms:dsse, SSE-C.
    Listings do not say (None)."""
    version_id: str | None = None
    """Version of the current object, when listed."""
    version_count: int | None = None
    """Versions of the key (not delete markers), if listed."""
    listed_at: datetime | None = None
    """When the listing page holding this entry was read (exposure is measured then)."""


_new_object = object.__new__
(
    _set_key,
    _set_size,
    _set_last_modified,
    _set_etag,
    _set_checksum,
    _set_checksum_type,
    _set_encryption,
    _set_version_id,
    _set_version_count,
    _set_listed_at,
) = (
    ObjectInfo.__dict__[name].__set__
    for name in (
        "key",
        "size",
        "last_modified",
        "etag",
        "checksum",
        "checksum_type",
        "encryption",
        "version_id",
        "version_count",
        "listed_at",
    )
)


def listed_object(
    key: str,
    size: int,
    last_modified: datetime,
    etag: str | None,
    checksum_type: str | None,
    version_id: str | None,
    version_count: int | None,
    listed_at: datetime | None,
) -> ObjectInfo:
    """The ObjectInfo of one listing entry (no stored checksum, no encryption: listings do not say), built
    through its slots: a frozen dataclass's __init__ sets each field through object.__setattr__, a
    third of the time a listing spent per object once its page was parsed. Equal to the keyword-built one.
    """
    obj = _new_object(ObjectInfo)
    _set_key(obj, key)
    _set_size(obj, size)
    _set_last_modified(obj, last_modified)
    _set_etag(obj, etag)
    _set_checksum(obj, None)
    _set_checksum_type(obj, checksum_type)
    _set_encryption(obj, None)
    _set_version_id(obj, version_id)
    _set_version_count(obj, version_count)
    _set_listed_at(obj, listed_at)
    return obj


DiffKind = Literal["missing", "extra", "different", "stale", "unverified"]
ContentVerdict = Literal["same", "different", "unknown"]
Proof = Literal[
    "size",
    "checksum",
    "composite-checksum",
    "etag-md5",
    "etag-equal",
    "multipart-etag",
    "read-sha256",
    "none",
]
"""How a pair was judged (chalicelib.models.verification.PROOFS says it for humans)."""

MD5_ETAG_ENCRYPTION = frozenset({"none", "AES256"})
"""Encryption under which a single-part ETag is the MD5 of the bytes (S3 documents that SSE-KMS, DSSE-KMS
and SSE-C ETags are not)."""


class Difference(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: DiffKind
    key: str
    source: ObjectInfo | None = None
    replica: ObjectInfo | None = None
    why: str
    proof: Proof | None = None


Resolver = Callable[[ObjectInfo, ObjectInfo], tuple[ObjectInfo, ObjectInfo]]
"""Fetches what listings lack (stored checksums, encryption) for a pair they cannot judge."""
Hasher = Callable[[ObjectInfo, ObjectInfo], tuple[str, str] | None]
"""Reads and hashes both objects of a pair; None when it may not (its byte budget is spent)."""


def _multipart_parts(etag: str) -> str | None:
    head, sep, tail = etag.rpartition("-")
    return tail if sep and head and tail.isdigit() else None


def _is_multipart(o: ObjectInfo) -> bool | None:
    """True/False when the ETag tells (multipart ETags end in -N), None when there is no ETag."""
    if not o.etag:
        return None
    return _multipart_parts(o.etag) is not None


def etag_is_md5(o: ObjectInfo) -> bool:
    """Is the ETag the MD5 of the bytes? Only for single-part objects known to be unencrypted or SSE-S3."""
    return bool(o.etag) and _is_multipart(o) is False and o.encryption in MD5_ETAG_ENCRYPTION


def checksum_type(o: ObjectInfo) -> str | None:
    """FULL_OBJECT or COMPOSITE for the stored checksum, None when nothing tells.

    S3 says it (ChecksumType) on recent responses; otherwise: a composite value ends in -N (its part count);
    CRC64NVME is always full-object; a single-part object's checksum covers the whole object; SHA-1 and
    SHA-256 of a multipart object are always composite. A multipart CRC32/CRC32C may be either.
    """
    if not o.checksum:
        return None
    if o.checksum_type:
        return o.checksum_type.upper()
    algorithm, _, value = o.checksum.partition(":")
    if _multipart_parts(value) is not None:
        return "COMPOSITE"
    if algorithm == "CRC64NVME":
        return "FULL_OBJECT"
    multipart = _is_multipart(o)
    if multipart is False:
        return "FULL_OBJECT"
    if multipart and algorithm in ("SHA1", "SHA256"):
        return "COMPOSITE"
    return None


def _compare_checksums(a: ObjectInfo, b: ObjectInfo) -> tuple[ContentVerdict, str, Proof] | None:
    if not (a.checksum and b.checksum):
        return None
    algorithm, _, va = a.checksum.partition(":")
    other, _, vb = b.checksum.partition(":")
    if algorithm != other:
        return None
    ta, tb = checksum_type(a), checksum_type(b)
    proof: Proof = "composite-checksum" if "COMPOSITE" in (ta, tb) else "checksum"
    if va == vb:
        # Equal digests of the same algorithm: the same bytes whatever the type (a collision aside).
        return "same", f"{algorithm} checksum matches", proof
    if ta is None or tb is None or ta != tb:
        return None  # different kinds of digest differ for equal bytes: not evidence
    if ta == "COMPOSITE":
        pa, pb = _multipart_parts(va), _multipart_parts(vb)
        if pa is None or pa != pb:
            return None  # a checksum of part checksums depends on the part layout
    return "different", f"{algorithm} checksum differs", proof


def compare_content(a: ObjectInfo, b: ObjectInfo) -> tuple[ContentVerdict, str, Proof]:
    """Are `a` and `b` the same bytes, and what proves it? 'unknown' when nothing available can tell.

    Strongest first: size, a stored checksum of the same algorithm (and type, to prove a difference), then
    ETags. Equal ETags prove equal content (an ETag changes with the bytes, whatever it is computed from);
    differing ETags prove different content only when both are MD5s: single-part and known to be
    unencrypted or SSE-S3. A listing does not say how an object is encrypted, so a differing ETag is
    'unknown' until HeadObject (the resolver) tells.
    """
    if a.size != b.size:
        return "different", f"size {a.size} != {b.size}", "size"
    by_checksum = _compare_checksums(a, b)
    if by_checksum is not None:
        return by_checksum
    if a.etag and b.etag:
        if a.etag == b.etag:
            if _is_multipart(a):
                return "same", "multipart ETag matches", "multipart-etag"
            if etag_is_md5(a) and etag_is_md5(b):
                return "same", "ETag (MD5) matches", "etag-md5"
            return "same", "ETag matches", "etag-equal"
        if etag_is_md5(a) and etag_is_md5(b):
            return "different", "ETag (MD5) differs", "etag-md5"
    return "unknown", "size matches but content cannot be verified (no comparable checksum or ETag)", "none"


def diff_listings(
    source: Iterable[ObjectInfo],
    replica: Iterable[ObjectInfo],
    *,
    resolve: Resolver | None = None,
    read: Hasher | None = None,
    report_unverified: bool = False,
    on_pair: Callable[[ObjectInfo, ObjectInfo], None] | None = None,
    on_proof: Callable[[Proof], None] | None = None,
) -> Iterator[Difference]:
    """Differences between two listings sorted in S3 order, in that order.

    missing: only in the source; extra: only in the replica; different: other content; stale: other or
    unprovable content and the replica is older than the source's current version (an overwrite that has
    not replicated); unverified (only with `report_unverified`): same size, content unprovable.
    `on_pair` sees every key present on both sides (e.g. to compare version counts), `on_proof` how each
    was judged. A pair nothing else can judge is resolved (`resolve`), then read and hashed (`read`).
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
            found = _compare_pair(a, b, resolve, read, report_unverified, on_proof)
            if found is not None:
                yield found
            a = next(src, None)
            b = next(rep, None)


def _compare_pair(
    a: ObjectInfo,
    b: ObjectInfo,
    resolve: Resolver | None,
    read: Hasher | None,
    report_unverified: bool,
    on_proof: Callable[[Proof], None] | None,
) -> Difference | None:
    verdict, why, proof = compare_content(a, b)
    if verdict == "unknown" and resolve is not None:
        a, b = resolve(a, b)
        verdict, why, proof = compare_content(a, b)
    if verdict == "unknown" and read is not None:
        digests = read(a, b)
        if digests is not None:
            same = digests[0] == digests[1]
            verdict, proof = ("same" if same else "different"), "read-sha256"
            why = "SHA-256 of the bytes matches" if same else "SHA-256 of the bytes differs"
    if on_proof is not None:
        on_proof(proof)
    if verdict == "same":
        return None
    if b.last_modified < a.last_modified:
        return Difference(
            kind="stale",
            key=a.key,
            source=a,
            replica=b,
            why=f"replica is older than the source ({why})",
            proof=proof,
        )
    if verdict == "different":
        return Difference(kind="different", key=a.key, source=a, replica=b, why=why, proof=proof)
    if report_unverified:
        return Difference(kind="unverified", key=a.key, source=a, replica=b, why=why, proof=proof)
    return None
