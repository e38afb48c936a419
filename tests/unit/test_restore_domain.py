"""Point-in-time restore decisions (domain/restore.py): which version each key had at TIME, and what a restore
into a new target or in place does with it. Pure: version listings are built by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.restore import (
    RestoreTally,
    VersionEntry,
    current_at,
    grouped,
    newest_first,
    plan_restore,
    projected_seconds,
    restore_test_verdict,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def v(
    key: str, vid: str, second: int, *, latest: bool = False, marker: bool = False, size: int = 10
) -> VersionEntry:
    return VersionEntry(
        key=key,
        version_id=vid,
        last_modified=T0 + timedelta(seconds=second),
        is_latest=latest,
        delete_marker=marker,
        size=0 if marker else size,
        etag=None if marker else f"etag-{vid}",
    )


def at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


def test_the_version_current_at_time_is_the_newest_not_after_it() -> None:
    # Given a key written at 0, overwritten at 10 and at 20
    versions = newest_first([v("a", "v3", 20, latest=True), v("a", "v2", 10), v("a", "v1", 0)])
    # Then TIME picks the version in force then; a change in TIME's own second counts as before it
    assert current_at(versions, at(15)).version_id == "v2"  # type: ignore[union-attr]
    assert current_at(versions, at(10)).version_id == "v2"  # type: ignore[union-attr]
    assert current_at(versions, at(-1)) is None


def test_a_delete_marker_current_at_time_means_the_key_did_not_exist() -> None:
    versions = newest_first([v("a", "m", 10, marker=True), v("a", "v1", 0)])
    assert current_at(versions, at(12)) is None
    assert current_at(versions, at(5)).version_id == "v1"  # type: ignore[union-attr]


def test_within_one_second_the_latest_then_the_delete_marker_is_newest() -> None:
    # Given a write and a deletion in the same second (S3 lists LastModified to the second)
    deleted = newest_first([v("a", "v1", 5), v("a", "m", 5, marker=True, latest=True)])
    rewritten = newest_first([v("a", "m", 5, marker=True), v("a", "v2", 5, latest=True)])
    # Then IsLatest decides, and without it the deletion is taken as after the write
    assert current_at(deleted, at(5)) is None
    assert current_at(rewritten, at(5)).version_id == "v2"  # type: ignore[union-attr]
    unordered = newest_first([v("a", "v1", 5), v("a", "m", 5, marker=True)])
    assert unordered[0].delete_marker


def test_new_target_copies_what_existed_at_time_and_ignores_later_keys() -> None:
    # Given a bad overwrite (a), a deletion (b), an untouched key (c) and a key created afterwards (d)
    listing = [
        v("a", "a1", 0),
        v("a", "a2", 20, latest=True),
        v("b", "b1", 0),
        v("b", "bm", 20, marker=True, latest=True),
        v("c", "c1", 0, latest=True),
        v("d", "d1", 20, latest=True),
    ]
    # When planned into a new target as of second 10
    plans = {p.key: p for p in plan_restore(listing, at(10), in_place=False)}
    # Then every key that existed then is copied as it was, and the later key is left out
    assert {k: (p.change, p.operation, p.version and p.version.version_id) for k, p in plans.items()} == {
        "a": ("reverted", "copy", "a1"),
        "b": ("undeleted", "copy", "b1"),
        "c": ("unchanged", "copy", "c1"),
        "d": ("created-since", "none", None),
    }


def test_in_place_rewrites_only_what_changed_and_deletes_later_keys() -> None:
    listing = [
        v("a", "a1", 0),
        v("a", "a2", 20, latest=True),
        v("b", "b1", 0),
        v("b", "bm", 20, marker=True, latest=True),
        v("c", "c1", 0, latest=True),
        v("d", "d1", 20, latest=True),
        v("e", "e1", 20),
        v("e", "em", 25, marker=True, latest=True),
    ]
    plans = {p.key: (p.change, p.operation) for p in plan_restore(listing, at(10), in_place=True)}
    assert plans == {
        "a": ("reverted", "copy"),
        "b": ("undeleted", "copy"),
        "c": ("unchanged", "none"),
        "d": ("created-since", "delete"),
        "e": ("absent", "none"),
    }


def test_grouping_streams_one_key_at_a_time() -> None:
    # Given a listing handed over lazily
    consumed: list[str] = []

    def listing():  # type: ignore[no-untyped-def]
        for entry in [v("a", "1", 0), v("a", "2", 1, latest=True), v("b", "3", 0, latest=True)]:
            consumed.append(entry.version_id)
            yield entry

    groups = grouped(listing())
    # When the first key is taken
    first = next(groups)
    # Then only what that key needed (and the first entry of the next) was read
    assert [e.version_id for e in first] == ["1", "2"]
    assert consumed == ["1", "2", "3"]


def test_the_tally_counts_everything_but_lists_only_up_to_its_limit() -> None:
    listing = [v(f"k{i:03}", f"x{i}", 20, latest=True) for i in range(5)]
    listing += [v("z", "z1", 0, size=7), v("z", "z2", 20, latest=True)]
    tally = RestoreTally(limit=2)
    for kp in plan_restore(listing, at(10), in_place=True):
        tally.add(kp)
    assert (tally.keys, tally.deletes, tally.copies, tally.bytes_copied) == (6, 5, 1, 7)
    assert len(tally.listed) == 2 and tally.listed_truncated == 4
    assert tally.changes["created-since"] == 5 and tally.changes["reverted"] == 1


# -- property: applying the in-place plan gives back exactly the keys as they were at TIME -------------------
events = st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(history=st.dictionaries(st.sampled_from("abcdef"), events, min_size=1), when=st.integers(-1, 31))
def test_in_place_restore_reconstructs_the_state_at_time(
    history: dict[str, list[tuple[int, bool]]], when: int
) -> None:
    # Given each key's writes (False) and deletions (True), at distinct seconds per key
    listing: list[VersionEntry] = []
    then: dict[str, str] = {}
    now: dict[str, str] = {}
    for key in sorted(history):
        seen: dict[int, bool] = {}
        for second, deleted in history[key]:
            seen.setdefault(second, deleted)
        entries = [v(key, f"{key}{s}", s, marker=d) for s, d in sorted(seen.items())]
        last = entries[-1]
        entries[-1] = VersionEntry(
            key=last.key,
            version_id=last.version_id,
            last_modified=last.last_modified,
            is_latest=True,
            delete_marker=last.delete_marker,
            size=last.size,
            etag=last.etag,
        )
        listing += reversed(entries)
        for entry in entries:
            if entry.last_modified <= at(when):
                if entry.delete_marker:
                    then.pop(key, None)
                else:
                    then[key] = entry.version_id
        if not last.delete_marker:
            now[key] = last.version_id
    # When the in-place plan's operations are applied to the keys as they are now
    state = dict(now)
    for kp in plan_restore(listing, at(when), in_place=True):
        if kp.operation == "copy":
            state[kp.key] = kp.version.version_id  # type: ignore[union-attr]
        elif kp.operation == "delete":
            del state[kp.key]
    # Then the keys and their content are exactly those at TIME, and a new target would get the same
    assert state == then
    copied = {
        kp.key: kp.version.version_id for kp in plan_restore(listing, at(when), in_place=False) if kp.version
    }
    assert copied == then


# -- restore tests ----------------------------------------------------------------------------------------
def test_the_projection_scales_the_sample_by_the_slower_of_objects_and_bytes() -> None:
    # Given a 10-object, 1 MB sample restored in 2 s and an asset of 1,000 objects and 10 MB, listed in 3 s
    common = {"listing_seconds": 3.0, "copy_seconds": 2.0, "sample_objects": 10, "sample_bytes": 10**6}
    # Then many small objects cost requests (x100), a few big ones bandwidth (x1000 by size)
    assert projected_seconds(**common, objects=1000, size=10 * 10**6) == 3.0 + 200.0
    assert projected_seconds(**common, objects=20, size=1000 * 10**6) == 3.0 + 2000.0
    assert projected_seconds(**{**common, "sample_objects": 0}, objects=5, size=5) == 3.0


@pytest.mark.parametrize(
    ("failed", "sample", "projected", "verdict"),
    [(0, 10, 299.0, "passed"), (0, 10, 301.0, "breached"), (1, 10, 1.0, "failed"), (0, 0, 0.0, "empty")],
)
def test_a_restore_test_passes_only_when_every_copy_verifies_within_the_rto(
    failed: int, sample: int, projected: float, verdict: str
) -> None:
    assert (
        restore_test_verdict(failed=failed, sample_objects=sample, projected=projected, rto_seconds=300)
        == verdict
    )
