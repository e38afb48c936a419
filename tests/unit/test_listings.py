"""Streaming source-vs-replica listing comparison, checked against a brute-force set-based reference."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.listings import Difference, ObjectInfo, diff_listings

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MULTIPART = re.compile(r"-\d+$")


def obj(key: str, size: int = 10, etag: str | None = None, checksum: str | None = None) -> ObjectInfo:
    return ObjectInfo(key=key, size=size, etag=etag, checksum=checksum, last_modified=WHEN)


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


def reference_same(a: ObjectInfo, b: ObjectInfo) -> bool:
    if a.size != b.size:
        return False
    if a.checksum and b.checksum and a.checksum.split(":")[0] == b.checksum.split(":")[0]:
        return a.checksum == b.checksum
    simple = a.etag and b.etag and not MULTIPART.search(a.etag) and not MULTIPART.search(b.etag)
    if simple:
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


@st.composite
def listings(draw: st.DrawFn) -> tuple[list[ObjectInfo], list[ObjectInfo]]:
    keys = draw(st.lists(KEYS, unique=True, max_size=30))
    source, replica = [], []
    for key in keys:
        where = draw(st.sampled_from(["both", "both", "source", "replica"]))
        a = obj(key, draw(st.integers(0, 2)), draw(ETAGS), draw(CHECKSUMS))
        if where == "both" and draw(st.booleans()):
            b = a  # a faithful replica
        else:
            b = obj(key, draw(st.integers(0, 2)), draw(ETAGS), draw(CHECKSUMS))
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
