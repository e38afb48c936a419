"""Streaming source-vs-replica listing comparison, checked against a brute-force set-based reference."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.adapters.s3objects import ReadAhead, chain_ahead
from chalicelib.domain.listings import Difference, ObjectInfo, checksum_type, diff_listings, listed_object

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MULTIPART = re.compile(r"-\d+$")


def obj(
    key: str,
    size: int = 10,
    etag: str | None = None,
    checksum: str | None = None,
    encryption: str | None = "AES256",
) -> ObjectInfo:
    return ObjectInfo(
        key=key, size=size, etag=etag, checksum=checksum, encryption=encryption, last_modified=WHEN
    )


def s3_order(objects: Iterable[ObjectInfo]) -> list[ObjectInfo]:
    """S3's listing order: keys by their UTF-8 bytes."""
    return sorted(objects, key=lambda o: o.key.encode("utf-8"))


def kinds(diffs: Iterable[Difference]) -> list[tuple[str, str]]:
    return [(d.kind, d.key) for d in diffs]


class CountingIterator(Iterator[ObjectInfo]):
    """Wraps a listing and counts how many objects have been pulled from it."""

    def __init__(self, items: Iterable[ObjectInfo]) -> None:
        self._it = iter(items)
        self.pulled = 0

    def __next__(self) -> ObjectInfo:
        item = next(self._it)
        self.pulled += 1
        return item


# -- reference


def single_part(o: ObjectInfo) -> bool:
    return bool(o.etag) and not MULTIPART.search(o.etag or "")


def reference_same(a: ObjectInfo, b: ObjectInfo) -> bool:
    """False only when something proves a difference (an unprovable pair is not reported here)."""
    if a.size != b.size:
        return False
    if a.checksum and b.checksum and a.checksum.split(":")[0] == b.checksum.split(":")[0]:
        if a.checksum == b.checksum:
            return True
        # A differing digest proves a difference when both cover the whole object (single-part).
        if single_part(a) and single_part(b):
            return False
    if a.etag and b.etag and a.etag == b.etag:
        return True
    md5 = ("none", "AES256")
    if single_part(a) and single_part(b) and a.encryption in md5 and b.encryption in md5:
        return a.etag == b.etag
    return True


def reference_diff(source: list[ObjectInfo], replica: list[ObjectInfo]) -> set[tuple[str, str]]:
    src = {o.key: o for o in source}
    rep = {o.key: o for o in replica}
    missing = {("missing", k) for k in src.keys() - rep.keys()}
    extra = {("extra", k) for k in rep.keys() - src.keys()}
    different = {("different", k) for k in src.keys() & rep.keys() if not reference_same(src[k], rep[k])}
    return missing | extra | different


# Keys like real S3 keys, and nastier: spaces, unicode (accents, CJK, emoji, astral plane), slashes.
KEYS = st.one_of(
    st.sampled_from(
        [
            "a",
            "a b",
            "a/b c.txt",
            "é",
            "e\u0301",
            "日本/データ.csv",
            "🐍",
            "Z",
            "z",
            " lead",
            "trail ",
            "a-1",
            "a_1",
        ]
    ),
    st.text(min_size=1, max_size=12),
)
ETAGS = st.sampled_from(
    [
        None,
        "d41d8cd98f00b204e9800998ecf8427e",
        "0cc175b9c0f1b6a831c399e269772661",
        "9b2cf535f27731c974343645a3985328-2",
        "e2fc714c4727ee9395f324cd2e7f331f-3",
    ]
)
CHECKSUMS = st.sampled_from([None, "CRC32:AAAAAA==", "CRC32:BBBBBB==", "SHA256:q83vEjRWeJA="])
ENCRYPTIONS = st.sampled_from([None, "none", "AES256", "aws:kms", "SSE-C"])


@st.composite
def listings(draw: st.DrawFn) -> tuple[list[ObjectInfo], list[ObjectInfo]]:
    keys = draw(st.lists(KEYS, unique=True, max_size=30))
    source, replica = [], []
    for key in keys:
        where = draw(st.sampled_from(["both", "both", "source", "replica"]))
        a = obj(key, draw(st.integers(0, 2)), draw(ETAGS), draw(CHECKSUMS), draw(ENCRYPTIONS))
        if where == "both" and draw(st.booleans()):
            b = a  # a faithful replica
        else:
            b = obj(key, draw(st.integers(0, 2)), draw(ETAGS), draw(CHECKSUMS), draw(ENCRYPTIONS))
        if where in ("both", "source"):
            source.append(a)
        if where in ("both", "replica"):
            replica.append(b)
    return s3_order(source), s3_order(replica)


@given(listings())
def test_the_merge_join_finds_exactly_what_a_set_comparison_finds(pair: tuple[list, list]) -> None:
    # Given two sorted listings with any mix of missing, extra and changed objects
    source, replica = pair
    # When they are compared as streams
    diffs = list(diff_listings(iter(source), iter(replica)))
    # Then every difference a brute-force comparison finds is reported, once, and nothing else
    found = kinds(diffs)
    assert len(found) == len(set(found))
    assert set(found) == reference_diff(source, replica)
    # And in listing order, so a report reads like the bucket
    assert [d.key.encode() for d in diffs] == sorted(d.key.encode() for d in diffs)
    for d in diffs:
        assert (d.source is not None) == (d.kind != "extra")
        assert (d.replica is not None) == (d.kind != "missing")


@given(listings())
def test_the_comparison_never_reads_more_than_one_object_ahead_on_either_side(
    pair: tuple[list, list],
) -> None:
    # Given two listings fed as one-shot streams that count what is read from them
    source, replica = pair
    src, rep = CountingIterator(source), CountingIterator(replica)
    diffs = diff_listings(src, rep)
    # When nothing has been asked for yet / Then nothing has been listed
    assert (src.pulled, rep.pulled) == (0, 0)
    # When differences are taken one at a time
    for d in diffs:
        # Then each side has been read at most one object past the reported key
        key = d.key.encode()
        assert src.pulled <= sum(1 for o in source if o.key.encode() <= key) + 1
        assert rep.pulled <= sum(1 for o in replica if o.key.encode() <= key) + 1
    assert (src.pulled, rep.pulled) == (len(source), len(replica))


def test_listings_of_unbounded_length_stream_their_differences() -> None:
    # Given two endless listings: the replica lacks every third object
    def source() -> Iterator[ObjectInfo]:
        for i in itertools.count():
            yield obj(f"part-{i:012d}")

    def replica() -> Iterator[ObjectInfo]:
        for i in itertools.count():
            if i % 3:
                yield obj(f"part-{i:012d}")

    # When the first differences are taken / Then they arrive without the listings ever ending
    first = list(itertools.islice(diff_listings(source(), replica()), 4))
    assert kinds(first) == [("missing", f"part-{i:012d}") for i in (0, 3, 6, 9)]


def test_unicode_and_spaced_keys_are_matched_in_s3_order() -> None:
    # Given keys in UTF-8 order: space < digits < upper < lower < non-ASCII, whatever the locale says
    keys = ["a b", "a/b c.txt", "a1", "Z", "z", "é", "日本/データ.csv", "🐍"]
    both = s3_order(obj(k) for k in keys)
    assert [o.key for o in both] == ["Z", "a b", "a/b c.txt", "a1", "z", "é", "日本/データ.csv", "🐍"]
    # When the replica is identical / Then there is nothing to report
    assert list(diff_listings(both, list(both))) == []
    # When the replica lacks the emoji and has an extra accented key
    replica = s3_order([*(o for o in both if o.key != "🐍"), obj("é/extra file")])
    assert kinds(diff_listings(both, replica)) == [("extra", "é/extra file"), ("missing", "🐍")]


def test_empty_listings() -> None:
    assert list(diff_listings([], [])) == []
    assert kinds(diff_listings([obj("a")], [])) == [("missing", "a")]
    assert kinds(diff_listings([], [obj("a")])) == [("extra", "a")]


# -- what counts as different


def test_a_size_mismatch_is_always_different() -> None:
    # Given a truncated replica that somehow carries the same ETag and checksum
    a = obj("model.tar.gz", 1000, etag="d41d8cd98f00b204e9800998ecf8427e", checksum="CRC32:AAAAAA==")
    b = obj("model.tar.gz", 999, etag="d41d8cd98f00b204e9800998ecf8427e", checksum="CRC32:AAAAAA==")
    # When compared / Then it is reported different, with both sizes in the explanation
    (diff,) = diff_listings([a], [b])
    assert diff.kind == "different"
    assert "1000" in diff.why and "999" in diff.why
    assert (diff.source, diff.replica) == (a, b)


def test_different_simple_etags_are_different() -> None:
    a = obj("k", etag="d41d8cd98f00b204e9800998ecf8427e")
    b = obj("k", etag="0cc175b9c0f1b6a831c399e269772661")
    (diff,) = diff_listings([a], [b])
    assert diff.kind == "different" and "ETag" in diff.why


@pytest.mark.parametrize(
    ("source_etag", "replica_etag"),
    [
        ("9b2cf535f27731c974343645a3985328-2", "e2fc714c4727ee9395f324cd2e7f331f-3"),
        ("9b2cf535f27731c974343645a3985328-2", "d41d8cd98f00b204e9800998ecf8427e"),
        ("d41d8cd98f00b204e9800998ecf8427e", "e2fc714c4727ee9395f324cd2e7f331f-16"),
        (None, "d41d8cd98f00b204e9800998ecf8427e"),
    ],
)
def test_multipart_or_absent_etags_are_not_compared(
    source_etag: str | None, replica_etag: str | None
) -> None:
    # Given the same object uploaded with different part sizes (so ETags differ) / Then it is not flagged
    assert list(diff_listings([obj("k", 5, etag=source_etag)], [obj("k", 5, etag=replica_etag)])) == []


def test_a_checksum_of_the_same_algorithm_decides() -> None:
    etag = "d41d8cd98f00b204e9800998ecf8427e"
    same = obj("k", etag=etag, checksum="CRC32:AAAAAA==")
    changed = obj("k", etag=etag, checksum="CRC32:BBBBBB==")
    other_algorithm = obj("k", etag=etag, checksum="SHA256:q83vEjRWeJA=")
    assert kinds(diff_listings([same], [changed])) == [("different", "k")]
    assert list(diff_listings([same], [other_algorithm])) == []


# -- what proves a pair equal (or different), strongest evidence first


def judged(a: ObjectInfo, b: ObjectInfo, **kw: object) -> tuple[list[tuple[str, str]], list[str]]:
    proofs: list[str] = []
    diffs = diff_listings([a], [b], report_unverified=True, on_proof=proofs.append, **kw)  # type: ignore[arg-type]
    return kinds(diffs), proofs


def test_differing_etags_of_sse_kms_objects_with_the_same_checksum_are_the_same_object() -> None:
    # Given identical bytes replicated under SSE-KMS: the ETags differ (not MD5s), the CRC32 is equal
    a = obj("k", etag="d41d8cd98f00b204e9800998ecf8427e", checksum="CRC32:AAAAAA==", encryption="aws:kms")
    b = obj("k", etag="0cc175b9c0f1b6a831c399e269772661", checksum="CRC32:AAAAAA==", encryption="aws:kms")
    # When compared / Then nothing is reported, proven by the checksum
    assert judged(a, b) == ([], ["checksum"])


def test_a_differing_etag_proves_nothing_until_the_encryption_is_known() -> None:
    # Given single-part objects whose ETags differ, as listed (a listing does not say the encryption)
    a = obj("k", etag="d41d8cd98f00b204e9800998ecf8427e", encryption=None)
    b = obj("k", etag="0cc175b9c0f1b6a831c399e269772661", encryption=None)
    # When nothing more is known / Then the pair is unverified, not different
    assert judged(a, b) == ([("unverified", "k")], ["none"])
    # When HeadObject says both are SSE-KMS and carry equal SHA-256 checksums / Then they are the same
    kms = {"encryption": "aws:kms", "checksum": "SHA256:q83vEjRWeJA="}
    resolve = lambda x, y: (replace(x, **kms), replace(y, **kms))  # noqa: E731
    assert judged(a, b, resolve=resolve) == ([], ["checksum"])
    # When HeadObject says both are SSE-S3 / Then the ETags are MD5s and the content differs
    sse_s3 = lambda x, y: (  # noqa: E731
        replace(x, encryption="AES256"),
        replace(y, encryption="AES256"),
    )
    assert judged(a, b, resolve=sse_s3) == ([("different", "k")], ["etag-md5"])


def test_composite_checksums_are_recognised_without_a_checksum_type() -> None:
    # SHA-256 of a multipart object is always composite; CRC64NVME always full-object; a -N value composite
    multipart_sha = obj("k", etag="9b2cf535f27731c974343645a3985328-2", checksum="SHA256:q83vEjRWeJA=")
    assert checksum_type(multipart_sha) == "COMPOSITE"
    assert checksum_type(obj("k", etag="9b2cf535f27731c974343645a3985328-2", checksum="CRC64NVME:AA==")) == (
        "FULL_OBJECT"
    )
    assert checksum_type(obj("k", checksum="CRC32:AAAAAA==-3")) == "COMPOSITE"
    assert checksum_type(obj("k", etag="d41d8cd98f00b204e9800998ecf8427e", checksum="SHA1:AA==")) == (
        "FULL_OBJECT"
    )
    # A multipart CRC32 may be either: unknown
    assert checksum_type(obj("k", etag="9b2cf535f27731c974343645a3985328-2", checksum="CRC32:AA==")) is None
    # And two composite checksums of different part layouts prove nothing, equal ones prove equality
    three = obj("k", etag="e2fc714c4727ee9395f324cd2e7f331f-3", checksum="SHA256:AAAA-3")
    two = obj("k", etag="9b2cf535f27731c974343645a3985328-2", checksum="SHA256:BBBB-2")
    assert judged(three, two) == ([("unverified", "k")], ["none"])
    assert judged(three, three) == ([], ["composite-checksum"])


def test_a_pair_nothing_else_proves_is_read_and_hashed_and_corruption_is_found() -> None:
    # Given multipart objects without checksums, same size, different part layouts: unprovable by metadata
    a = obj("big.bin", etag="9b2cf535f27731c974343645a3985328-2", encryption=None)
    b = obj("big.bin", etag="e2fc714c4727ee9395f324cd2e7f331f-3", encryption=None)
    # When the bytes are read and hashed and differ / Then the pair is different, proven by reading
    assert judged(a, b, read=lambda x, y: ("aa", "bb")) == ([("different", "big.bin")], ["read-sha256"])
    # When they hash the same / Then it is proven equal
    assert judged(a, b, read=lambda x, y: ("aa", "aa")) == ([], ["read-sha256"])
    # When the reader may not read (budget spent) / Then it stays unverified
    assert judged(a, b, read=lambda x, y: None) == ([("unverified", "big.bin")], ["none"])


def test_equal_etags_prove_equality_and_say_how() -> None:
    md5 = "d41d8cd98f00b204e9800998ecf8427e"
    assert judged(obj("k", etag=md5), obj("k", etag=md5)) == ([], ["etag-md5"])
    assert judged(obj("k", etag=md5, encryption=None), obj("k", etag=md5, encryption=None)) == (
        [],
        ["etag-equal"],
    )
    multi = "9b2cf535f27731c974343645a3985328-2"
    assert judged(obj("k", etag=multi), obj("k", etag=multi)) == ([], ["multipart-etag"])
    assert judged(obj("k", 1, etag=md5), obj("k", 2, etag=md5)) == ([("different", "k")], ["size"])


# -- listing ahead (adapters.s3objects) ------------------------------------------------------------------
def gated_listing(
    keys: list[str], started: list[str], everyone: threading.Event, waits: list[bool]
) -> Iterator[ObjectInfo]:
    """A listing that waits (up to 3 s) until four listings have started: only concurrent ones all see it."""
    started.append(keys[0])
    if len(started) == 4:
        everyone.set()
    waits.append(everyone.wait(timeout=3))
    for key in keys:
        yield obj(key)


def test_prefixes_are_listed_at_once_and_still_come_out_in_key_order() -> None:
    # Given four "directories" whose listings each wait until all four have started
    started: list[str] = []
    everyone = threading.Event()
    waits: list[bool] = []
    dirs = [[f"d{d}/a", f"d{d}/b"] for d in range(4)]
    # When chained with a window of four
    listings = (gated_listing(k, started, everyone, waits) for k in dirs)
    keys = [o.key for o in chain_ahead(listings, window=4)]
    # Then the four were listed at the same time (none waited in vain), and every key arrives once, in order
    assert waits == [True] * 4 and sorted(started) == ["d0/a", "d1/a", "d2/a", "d3/a"]
    assert keys == [k for d in dirs for k in d]


def test_an_error_while_listing_ahead_reaches_the_consumer_where_it_happened() -> None:
    def failing() -> Iterator[ObjectInfo]:
        yield obj("a")
        raise RuntimeError("AccessDenied mid-listing")

    stream = ReadAhead(failing())
    assert next(stream).key == "a"
    with pytest.raises(RuntimeError, match="mid-listing"):
        next(stream)


def test_a_listing_abandoned_early_stops_its_thread() -> None:
    # Given an endless listing read ahead, and a consumer that takes one object and closes it
    def endless() -> Iterator[ObjectInfo]:
        for i in itertools.count():
            yield obj(f"k{i:09d}")

    before = threading.active_count()
    stream = ReadAhead(endless(), depth=1)
    assert next(stream).key == "k000000000"
    stream.close()
    # Then its thread ends (it held at most a page or two)
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() == before


@given(
    key=st.text(max_size=40),
    size=st.integers(min_value=0, max_value=5 * 2**40),
    etag=st.none() | st.text(max_size=40),
    checksum_type=st.sampled_from([None, "FULL_OBJECT", "COMPOSITE"]),
    version_id=st.none() | st.text(max_size=20),
    version_count=st.none() | st.integers(min_value=0, max_value=10**6),
    listed=st.none() | st.just(WHEN),
)
def test_a_listed_object_built_through_its_slots_is_the_keyword_built_one(
    key: str,
    size: int,
    etag: str | None,
    checksum_type: str | None,
    version_id: str | None,
    version_count: int | None,
    listed: datetime | None,
) -> None:
    # Given one listing entry's fields
    # When its ObjectInfo is built the fast way (the listing's) and the usual way
    fast = listed_object(key, size, WHEN, etag, checksum_type, version_id, version_count, listed)
    usual = ObjectInfo(
        key=key,
        size=size,
        last_modified=WHEN,
        etag=etag,
        checksum=None,
        checksum_type=checksum_type,
        encryption=None,
        version_id=version_id,
        version_count=version_count,
        listed_at=listed,
    )
    # Then they are equal, hash alike, and the fast one is as frozen as any other
    assert fast == usual and hash(fast) == hash(usual) and repr(fast) == repr(usual)
    assert replace(fast, size=size + 1).size == size + 1
    with pytest.raises(FrozenInstanceError):
        fast.size = 0  # type: ignore[misc]
