"""Backup verification decisions: content comparison, stale replicas, key ranges, verdicts, the report."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.assets.s3 import bucket_findings
from chalicelib.domain.listings import ObjectInfo, compare_content, diff_listings
from chalicelib.domain.verification import (
    CountingStream,
    asset_verdict,
    clip,
    failure_finding,
    in_range,
    key_ranges,
    merge_asset,
    prefix_end,
    relative_range,
    render_markdown,
    start_after,
    tally,
)
from chalicelib.models.plan import S3Asset
from chalicelib.models.verification import (
    BucketSettings,
    Encryption,
    Finding,
    ObjectLock,
    ObjectSample,
    Setting,
    Shard,
    ShardResult,
    VerificationReport,
)

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=10)


def obj(
    key: str,
    size: int = 10,
    *,
    etag: str | None = None,
    checksum: str | None = None,
    at: datetime = T0,
    checksum_type: str | None = None,
    versions: int | None = None,
    encryption: str | None = "AES256",
    listed_at: datetime | None = None,
) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=size,
        etag=etag,
        checksum=checksum,
        checksum_type=checksum_type,
        encryption=encryption,
        last_modified=at,
        version_count=versions,
        listed_at=listed_at,
    )


def shard(index: int = 0, kind: str = "s3-objects", asset: str = "data") -> Shard:
    return Shard(index=index, asset=asset, kind=kind)  # type: ignore[arg-type]


# -- what counts as the same content ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        # a stored checksum of the same algorithm decides, whatever the ETags say
        (obj("k", etag="a-2", checksum="SHA256:x"), obj("k", etag="b-3", checksum="SHA256:x"), "same"),
        (obj("k", etag="aa", checksum="CRC32:x"), obj("k", etag="aa", checksum="CRC32:y"), "different"),
        # composite (per-part) checksums of different part layouts prove nothing
        (
            obj("k", checksum="CRC32:x-2", checksum_type="COMPOSITE"),
            obj("k", checksum="CRC32:y-3", checksum_type="COMPOSITE"),
            "unknown",
        ),
        # identical multipart ETags: same parts, same layout
        (obj("k", etag="9b2c-2"), obj("k", etag="9b2c-2"), "same"),
        (obj("k", etag="9b2c-2"), obj("k", etag="e2fc-3"), "unknown"),
        (obj("k"), obj("k"), "unknown"),
        (obj("k", 1, etag="aa"), obj("k", 2, etag="aa"), "different"),
    ],
)
def test_content_is_judged_by_the_strongest_evidence_both_sides_have(
    a: ObjectInfo, b: ObjectInfo, verdict: str
) -> None:
    assert compare_content(a, b)[0] == verdict


def test_unprovable_pairs_are_resolved_with_stored_checksums_and_reported_when_still_unprovable() -> None:
    # Given the same object uploaded with different part sizes (ETags differ), and one other unprovable pair
    source = [obj("a.bin", etag="9b2c-2"), obj("b.bin", etag="1111-2")]
    replica = [obj("a.bin", etag="e2fc-3"), obj("b.bin", etag="2222-4")]
    asked: list[str] = []

    def resolve(a: ObjectInfo, b: ObjectInfo) -> tuple[ObjectInfo, ObjectInfo]:
        asked.append(a.key)
        if a.key == "a.bin":  # HEAD finds stored full-object checksums for a.bin only
            return (
                replace(a, checksum="SHA256:same"),
                replace(b, checksum="SHA256:same"),
            )
        return a, b

    # When compared asking for unverifiable pairs / Then only those pairs cost a lookup
    diffs = list(diff_listings(source, replica, resolve=resolve, report_unverified=True))
    assert asked == ["a.bin", "b.bin"]
    # And the one that stays unprovable is reported as such, honestly, not as equal
    assert [(d.kind, d.key) for d in diffs] == [("unverified", "b.bin")]
    assert "cannot be verified" in diffs[0].why


def test_a_replica_older_than_the_source_is_stale() -> None:
    # Given a source object overwritten after its replica was made
    a = obj("model.json", 5, etag="new", at=T0 + timedelta(minutes=1))
    b = obj("model.json", 5, etag="old", at=T0)
    # When compared / Then the replica is stale (an overwrite that did not replicate), not just different
    (d,) = diff_listings([a], [b])
    assert d.kind == "stale" and "older" in d.why
    # And a replica that merely has a later timestamp but equal content is fine
    assert list(diff_listings([obj("k", etag="e")], [obj("k", etag="e", at=T0 + timedelta(hours=1))])) == []


# -- tallies and verdicts --------------------------------------------------------------------------------
def test_tally_counts_exactly_caps_samples_and_finds_the_oldest_unreplicated_change() -> None:
    # Given 30 missing objects written over 30 minutes, one extra and one different
    source = [obj(f"k{i:03d}", at=T0 + timedelta(minutes=i)) for i in range(30)]
    source.append(obj("z-diff", etag="a", at=T0 + timedelta(minutes=5)))
    replica = [obj("y-extra"), obj("z-diff", etag="b", at=T0 + timedelta(minutes=6))]
    result = ShardResult(shard=shard())
    # When tallied
    tally(result, diff_listings(sorted(source, key=lambda o: o.key), replica))
    # Then the counts are exact, the samples bounded, and the oldest change is the first missing one
    assert (result.missing, result.extra, result.different, result.stale) == (30, 1, 1, 0)
    assert len(result.samples) == 20
    assert result.oldest_unreplicated_at == T0 and result.oldest_unreplicated_key == "k000"


def test_replica_changes_after_an_inventory_snapshot_are_not_judged() -> None:
    # Given a snapshot taken at T0+1m and a replica object rewritten afterwards
    result = ShardResult(shard=shard())
    diffs = diff_listings([obj("a", etag="x")], [obj("a", etag="y", at=T0 + timedelta(minutes=2))])
    # When tallied against the snapshot / Then it is counted as unjudged, not as a difference
    tally(result, diffs, snapshot_at=T0 + timedelta(minutes=1))
    assert (result.different, result.unjudged) == (0, 1)


@pytest.mark.parametrize(
    ("exposure", "incomplete", "findings", "differences", "expected"),
    [
        (timedelta(0), False, [], 0, "green"),
        (timedelta(seconds=30), False, [], 1, "at-risk"),
        (timedelta(minutes=2), False, [], 1, "breached"),
        (None, True, [], 0, "incomplete"),
        (timedelta(minutes=2), True, [], 1, "breached"),  # what was seen already proves a breach
        (timedelta(0), False, [Finding(severity="breach", code="x", message="m")], 0, "breached"),
        (timedelta(0), False, [Finding(severity="warning", code="x", message="m")], 0, "at-risk"),
        (timedelta(0), False, [Finding(severity="info", code="x", message="m")], 0, "green"),
    ],
)
def test_asset_verdicts(exposure, incomplete, findings, differences, expected) -> None:  # type: ignore[no-untyped-def]
    verdict = asset_verdict(
        objective=timedelta(minutes=1),
        exposure=exposure,
        incomplete=incomplete,
        findings=findings,
        differences=differences,
        unverified=0,
    )
    assert verdict == expected


def test_a_shard_that_never_reported_makes_the_asset_incomplete_never_green() -> None:
    # Given two planned shards of which one reported a clean result
    done = ShardResult(shard=shard(0), source_objects=5, replica_objects=5)
    # When merged / Then the asset is incomplete and its measured RPO is unknown
    merged = merge_asset(
        asset="data",
        kind="s3",
        role="dataset",
        objective=timedelta(minutes=1),
        results=[done],
        expected=2,
        now=NOW,
    )
    assert merged.verdict == "incomplete"
    assert merged.measured_rpo_seconds is None
    assert "1 of 2 shard(s) never reported" in merged.incomplete_reasons[0]


def test_measured_rpo_is_the_age_of_the_oldest_change_not_in_the_replica() -> None:
    a = ShardResult(shard=shard(0), missing=1, oldest_unreplicated_at=NOW - timedelta(seconds=90))
    b = ShardResult(shard=shard(1), stale=2, oldest_unreplicated_at=NOW - timedelta(seconds=30))
    merged = merge_asset(
        asset="data",
        kind="s3",
        role=None,
        objective=timedelta(minutes=1),
        results=[a, b],
        expected=2,
        now=NOW,
    )
    assert merged.measured_rpo_seconds == 90 and merged.verdict == "breached"
    assert (merged.missing, merged.stale, merged.mismatches) == (1, 2, 3)


# -- key ranges -----------------------------------------------------------------------------------------
KEYS = st.text(alphabet=st.sampled_from(["a", "b", "/", " ", "é", "z", "0"]), min_size=0, max_size=6)


@given(st.lists(KEYS, max_size=12), st.lists(KEYS, max_size=30), st.integers(1, 6))
def test_key_ranges_partition_every_key_exactly_once(
    boundaries: list[str], keys: list[str], most: int
) -> None:
    ranges = key_ranges(boundaries, most)
    assert 1 <= len(ranges) <= most
    for key in keys:
        assert sum(in_range(key, s, e) for s, e in ranges) == 1


@given(st.text(alphabet="ab/é", max_size=4), st.lists(KEYS, max_size=20), KEYS)
def test_listing_after_start_after_then_clipping_keeps_exactly_the_range(
    prefix: str, rels: list[str], start: str
) -> None:
    # Given an S3 listing (keys sorted, StartAfter exclusive) of prefix+relative keys
    full = sorted({prefix + r for r in rels})
    after = start_after(prefix, start or None)
    listed = [k for k in full if after is None or k > after]
    objects = [obj(k[len(prefix) :]) for k in listed]
    # When clipped to [start, end) / Then it holds every key in the range and nothing else
    got = [o.key for o in clip(objects, start or None, None)]
    assert got == [k[len(prefix) :] for k in full if in_range(k[len(prefix) :], start or None, None)]


@given(st.text(alphabet="ab/", min_size=1, max_size=4), KEYS, KEYS)
def test_relative_range_clamps_full_key_ranges_to_the_prefix(prefix: str, x: str, y: str) -> None:
    start, end = sorted([x, y])
    overlaps, rel_start, rel_end = relative_range(prefix, start or None, end or None)
    for rel in ("", "a", "b/", "zz", "é"):
        key = prefix + rel
        inside_full = in_range(key, start or None, end or None)
        assert inside_full == (overlaps and in_range(rel, rel_start, rel_end))
    upper = prefix_end(prefix)
    assert upper is None or all(not (prefix + r).startswith(upper) for r in ("", "a"))


def test_a_listing_out_of_key_order_is_detected() -> None:
    stream = CountingStream([obj("b"), obj("a")])
    assert [o.key for o in stream] == ["b", "a"]
    assert stream.out_of_order == "a" and stream.count == 2


# -- bucket settings ------------------------------------------------------------------------------------
def asset() -> S3Asset:
    return S3Asset.model_validate(
        {
            "name": "data",
            "kind": "s3",
            "source": {"bucket": "src-b", "prefix": "d/"},
            "replica": {"bucket": "rep-b", "prefix": "d/"},
        }
    )


UNREADABLE = Setting[Any](state="unreadable", error="AccessDenied: no")


def bucket(name: str, **kw: Any) -> BucketSettings:
    """Bucket settings as read: each keyword is a setting's value (None: absent) or UNREADABLE."""
    values: dict[str, Any] = {
        "versioning": "Enabled",
        "encryption": Encryption(algorithm="AES256"),
        "object_lock": ObjectLock(enabled=True, default_retention={"Mode": "GOVERNANCE", "Days": 1}),
        "replication": None,
        **kw,
    }

    def setting(value: Any) -> Setting[Any]:
        if isinstance(value, Setting):
            return value
        return Setting(state="absent") if value is None else Setting(state="set", value=value)

    return BucketSettings(bucket=name, **{k: setting(v) for k, v in values.items()})


RULE = {
    "ID": "r",
    "Status": "Enabled",
    "Filter": {"Prefix": "d/"},
    "DeleteMarkerReplication": {"Status": "Enabled"},
    "Destination": {
        "Bucket": "arn:aws:s3:::rep-b",
        "Metrics": {"Status": "Enabled"},
        "ReplicationTime": {"Status": "Enabled"},
    },
}


def codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def test_well_protected_buckets_have_no_findings() -> None:
    assert (
        bucket_findings(asset(), bucket("src-b", replication=[RULE]), bucket("rep-b"), timedelta(minutes=1))
        == []
    )


def test_deletable_unversioned_or_unreplicated_backups_are_flagged() -> None:
    # Given a replica without Object Lock, a source without versioning and no replication rule
    found = bucket_findings(
        asset(),
        bucket("src-b", versioning="Suspended", replication=[{**RULE, "Status": "Disabled"}]),
        bucket("rep-b", object_lock=ObjectLock(enabled=False), encryption=None),
        timedelta(minutes=1),
    )
    # Then ransomware exposure is a warning and the missing preconditions of replication are breaches
    severities = {f.code: f.severity for f in found}
    assert severities == {
        "source-unversioned": "breach",
        "replica-unencrypted": "warning",
        "no-replication-rule": "breach",
        "replica-not-locked": "warning",
    }


def test_a_tight_objective_without_replication_time_control_is_a_warning() -> None:
    slow_rule = {**RULE, "Destination": {"Bucket": "arn:aws:s3:::rep-b", "Metrics": {"Status": "Enabled"}}}
    found = bucket_findings(
        asset(), bucket("src-b", replication=[slow_rule]), bucket("rep-b"), timedelta(minutes=1)
    )
    assert codes(found) == {"no-replication-time-control"}
    relaxed = bucket_findings(
        asset(), bucket("src-b", replication=[slow_rule]), bucket("rep-b"), timedelta(hours=1)
    )
    assert relaxed == []


def test_replication_failures_say_whether_a_retry_can_fix_them() -> None:
    seen = {
        "count": 2,
        "last_key": "d/x",
        "last_at": "t",
        "retry_fixes": False,
        "action": "restore the KMS key",
    }
    outstanding = failure_finding("DstKmsKeyNotFound", seen, outstanding=True)
    assert (
        outstanding.severity == "warning" and "CANNOT" in outstanding.message and "KMS" in outstanding.message
    )
    assert failure_finding("DstKmsKeyNotFound", seen, outstanding=False).severity == "info"


# -- the report -----------------------------------------------------------------------------------------
def test_the_markdown_report_reads_like_the_verdict() -> None:
    # Given a breached asset with a finding and a key containing a pipe
    a = merge_asset(
        asset="models",
        kind="s3",
        role="model-artifacts",
        objective=timedelta(minutes=1),
        results=[
            ShardResult(
                shard=shard(0, asset="models"),
                missing=1,
                oldest_unreplicated_at=NOW - timedelta(minutes=5),
                findings=[
                    Finding(severity="warning", code="replica-not-locked", message="replica can be deleted")
                ],
            )
        ],
        expected=1,
        now=NOW,
    )
    report = VerificationReport(
        workload="fraud",
        run_id="r1",
        started_at=T0,
        finished_at=NOW,
        verdict="breached",
        summary="s",
        assets=[a],
        evidence={"json": "s3://e/r.json"},
    )
    report.assets[0].samples.append(ObjectSample(kind="missing", key="a|b", why="not in the replica"))
    # When rendered
    md = render_markdown(report)
    # Then a human sees the verdict, measured RPO against the objective, the finding and the escaped key
    assert "BREACHED" in md
    assert "| models | s3 | ❌ breached | 5m | 1m |" in md
    assert "`replica-not-locked`: replica can be deleted" in md
    assert "`a\\|b`" in md
    assert "s3://e/r.json" in md


def test_the_report_says_how_each_pair_was_proven_what_was_not_compared_and_which_keys_lost_versions() -> (
    None
):
    # Given an object shard that proved pairs in several ways, read some bytes, and found version gaps
    result = ShardResult(
        shard=shard(1),
        mode="versions",
        source_objects=7,
        replica_objects=7,
        proofs={"etag-md5": 4, "checksum": 1, "read-sha256": 1, "none": 1},
        unverified=1,
        read_bytes=2048,
        unread_over_budget=1,
        version_gaps=2,
        version_gap_keys=["d/a.csv", "d/b.csv"],
    )
    merged = merge_asset(
        asset="data",
        kind="s3",
        role=None,
        objective=timedelta(hours=1),
        results=[result],
        expected=1,
        now=NOW,
    )
    # Then the asset carries the counts per proof and what S3 verification never compares
    assert merged.proofs == {"etag-md5": 4, "checksum": 1, "read-sha256": 1, "none": 1}
    assert "object tags" in merged.not_compared and "storage class" in merged.not_compared
    assert merged.version_gap_keys == ["d/a.csv", "d/b.csv"]
    # And the Markdown shows them to an auditor, strongest proof first
    md = render_markdown(
        VerificationReport(
            workload="w",
            run_id="r",
            started_at=T0,
            finished_at=NOW,
            verdict="at-risk",
            summary="s",
            assets=[merged],
        )  # fmt: skip
    )
    assert md.index("| checksum | 1 |") < md.index("| etag-md5 | 4 |") < md.index("| read-sha256 | 1 |")
    assert "| none | 1 | nothing proves the content" in md
    assert "Read and hashed: 2,048 bytes; 1 pair(s) left unverified" in md
    assert "Not compared: user metadata and content headers; object tags;" in md
    assert "2 key(s) whose replica holds fewer versions: `d/a.csv`, `d/b.csv`" in md


# -- exposure measured when the change was seen -------------------------------------------------------------
def test_each_changes_exposure_is_measured_when_its_listing_page_was_read_not_when_the_run_ended() -> None:
    # Given an object written at T0 found missing on a page read 13 s later, in a run that ends 9 min later
    source = [obj("a", at=T0, listed_at=T0 + timedelta(seconds=13))]
    result = ShardResult(shard=shard())
    tally(result, diff_listings(source, []), clock=lambda: T0 + timedelta(minutes=9))
    # When merged at the end of the run
    merged = merge_asset(
        asset="data",
        kind="s3",
        role=None,
        objective=timedelta(minutes=1),
        results=[result],
        expected=1,
        now=T0 + timedelta(minutes=9),
    )
    # Then its exposure is 13 s, within the objective: at-risk, not breached
    assert merged.measured_rpo_seconds == 13
    assert merged.verdict == "at-risk"
    # And without a page time (an inventory row) it is measured when it was compared
    unpaged = ShardResult(shard=shard())
    tally(unpaged, diff_listings([obj("a", at=T0)], []), clock=lambda: T0 + timedelta(seconds=40))
    assert unpaged.exposure_seconds == 40


# -- an empty source ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("may_be_empty", "verdict"), [(False, "breached"), (True, "green")])
def test_an_asset_with_no_source_objects_is_a_breach_unless_the_plan_allows_it(
    may_be_empty: bool, verdict: str
) -> None:
    # Given an asset whose complete object shards saw no object on either side (a mistyped prefix?)
    results = [
        ShardResult(shard=shard(0, kind="s3-config"), mode="config"),
        ShardResult(shard=shard(1), mode="versions"),
    ]
    # When merged
    merged = merge_asset(
        asset="data",
        kind="s3",
        role=None,
        objective=timedelta(minutes=1),
        results=results,
        expected=2,
        now=NOW,
        may_be_empty=may_be_empty,
    )
    # Then it is not green unless the plan says the prefix may be empty
    assert merged.verdict == verdict
    assert ("source-empty" in codes(merged.findings)) is (not may_be_empty)


def test_the_plan_says_whether_an_s3_prefix_may_be_empty_and_only_as_a_boolean() -> None:
    base = {"name": "a", "kind": "s3", "source": {"bucket": "src-b", "prefix": "p/"},
            "replica": {"bucket": "rep-b", "prefix": "p/"}}  # fmt: skip
    assert S3Asset.model_validate(base).may_be_empty is False
    assert S3Asset.model_validate({**base, "may_be_empty": True}).may_be_empty is True
    with pytest.raises(ValueError, match="may_be_empty"):
        S3Asset.model_validate({**base, "may_be_empty": "yes"})


# -- settings that could not be read ------------------------------------------------------------------------
def test_an_unreadable_setting_is_neither_passed_nor_failed_and_hides_nothing_else() -> None:
    # Given unreadable encryption and Object Lock on the replica, unversioned, and no rule at the source
    found = bucket_findings(
        asset(),
        bucket("src-b", encryption=UNREADABLE, replication=[]),
        bucket("rep-b", versioning=None, encryption=UNREADABLE, object_lock=UNREADABLE),
        timedelta(minutes=1),
    )
    # Then the provable breaches stand, and nothing is claimed about what could not be read
    assert codes(found) == {"replica-unversioned", "no-replication-rule"}


def test_a_rule_that_does_not_replicate_deletions_is_a_warning() -> None:
    rule = {**RULE, "DeleteMarkerReplication": {"Status": "Disabled"}}
    found = bucket_findings(asset(), bucket("src-b", replication=[rule]), bucket("rep-b"), timedelta(hours=1))
    assert codes(found) == {"deletions-not-replicated"}
