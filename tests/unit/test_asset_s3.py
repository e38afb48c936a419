"""S3 assets: how their keys become shards, what replication rules count, and the checker against moto S3."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.assets.s3 import S3Checker
from chalicelib.adapters.resources import ResourceReader
from chalicelib.domain.assets.s3 import (
    directory_shards,
    inventory_shards,
    replication_rule,
    versioning_finding,
    within_range,
)
from chalicelib.domain.listings import ObjectInfo
from chalicelib.domain.verification import merge_asset
from chalicelib.models.plan import DRPlan, S3Asset
from chalicelib.models.planfile import load_plan_file
from chalicelib.models.verification import Shard, ShardResult
from tests.unit.moto_aws import ClientFor, bucket

ROOT = Path(__file__).resolve().parents[2]
PRIMARY, SECONDARY = "us-east-1", "us-west-2"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def s3_asset(prefix: str = "datasets/", **kw: Any) -> S3Asset:
    return S3Asset.model_validate(
        {
            "name": "training-data",
            "kind": "s3",
            "source": {"bucket": "data-use1", "prefix": prefix},
            "replica": {"bucket": "data-usw2", "prefix": prefix},
            **kw,
        }
    )


def plan_with(*assets: Any) -> DRPlan:
    plan = load_plan_file(ROOT / "plans" / "fraud-scoring.yaml")
    return plan.model_copy(update={"assets": list(assets)})


def row(key: str) -> ObjectInfo:
    return ObjectInfo(key=key, size=1, etag="e", last_modified=T0)


# -- shards (pure) ----------------------------------------------------------------------------------------
def test_directories_are_grouped_into_at_most_the_shards_allowed_each_listed_once() -> None:
    # Given five directories, both sides' (with a repeat), and objects directly under the prefix
    dirs = ["d=3/", "d=1/", "d=2/", "d=5/", "d=4/", "d=1/"]
    # When grouped into at most three shards
    shards = directory_shards(dirs, loose=True, versions=True, max_shards=3)
    # Then the loose objects get their own shard and the directories are split in key order, each once
    assert shards == [
        {"top_level": True, "versions": True},
        {"prefixes": ["d=1/", "d=2/", "d=3/"], "versions": True},
        {"prefixes": ["d=4/", "d=5/"], "versions": True},
    ]
    # And without loose objects there is no top-level shard
    assert directory_shards(["a/"], loose=False, versions=False) == [{"prefixes": ["a/"], "versions": False}]


def test_each_inventory_file_owns_the_keys_from_its_first_to_the_next_files_first() -> None:
    # Given two inventory files (listed out of order) of keys under datasets/, and replica directories
    shards = inventory_shards(
        [("datasets/m/1", "inv/f2.csv.gz"), ("datasets/a/1", "inv/f1.csv.gz")],
        bucket="inv-bucket",
        columns=["Bucket", "Key", "Size"],
        snapshot_at=T0,
        source_prefix="datasets/",
        replica_directories=["a/", "m/", "z/"],
        replica_loose=False,
    )
    # Then a leading range without a file catches what sorts first, and each file covers up to the next
    assert [(s["start"], s["end"], s["inventory"].key) for s in shards] == [
        (None, "a/1", ""),
        ("a/1", "m/1", "inv/f1.csv.gz"),
        ("m/1", None, "inv/f2.csv.gz"),
    ]
    # And each range lists only the replica directories that can hold its keys
    assert [s["prefixes"] for s in shards] == [["a/"], ["a/", "m/"], ["m/", "z/"]]


def test_inventory_rows_outside_the_shards_range_make_it_incomplete() -> None:
    # Given a shard owning [b, d) and inventory rows reaching past it
    shard = Shard(index=1, asset="a", kind="s3-objects", start="b", end="d")
    result = ShardResult(shard=shard)
    # When the rows are read through the guard
    kept = [r.key for r in within_range(iter([row("a"), row("b"), row("c"), row("d")]), shard, result)]
    # Then only the range is compared and the shard says why it is incomplete
    assert kept == ["b", "c"]
    assert result.status == "incomplete" and "2 inventory row(s)" in (result.reason or "")


# -- replication rules and validation verdicts (pure) -----------------------------------------------------
def rule(prefix: str, *, status: str = "Enabled", bucket: str = "data-usw2") -> dict[str, Any]:
    return {"ID": prefix or "all", "Status": status, "Filter": {"Prefix": prefix},
            "Destination": {"Bucket": f"arn:aws:s3:::{bucket}"}}  # fmt: skip


def test_the_rule_that_replicates_an_asset_covers_its_prefix_and_targets_its_replica() -> None:
    asset = s3_asset()
    # A rule for a parent prefix (or the whole bucket) covers the asset; others do not
    assert replication_rule([rule("other/"), rule("data")], asset) == rule("data")
    assert replication_rule([rule("")], asset) == rule("")
    assert replication_rule([rule("datasets/", status="Disabled")], asset) is None
    assert replication_rule([rule("datasets/", bucket="elsewhere")], asset) is None


def test_validation_says_whether_versioning_is_on() -> None:
    assert versioning_finding("b", PRIMARY, "Enabled").severity == "ok"
    off = versioning_finding("b", PRIMARY, None)
    assert (off.subject, off.severity) == ("bucket b (us-east-1)", "error")
    assert "versioning is off" in off.message


# -- the checker, against moto ----------------------------------------------------------------------------
def put(client: ClientFor, region: str, bucket_name: str, *keys: str) -> None:
    for key in keys:
        client("s3", region).put_object(Bucket=bucket_name, Key=key, Body=key.encode())


def test_the_checker_plans_settings_and_object_shards_and_finds_what_did_not_replicate(
    aws: ClientFor,
) -> None:
    # Given versioned buckets whose replica lacks one object and holds one the source does not
    bucket(aws, "data-use1", PRIMARY)
    bucket(aws, "data-usw2", SECONDARY)
    put(aws, PRIMARY, "data-use1", "datasets/_SUCCESS", "datasets/d=0/a.csv", "datasets/d=1/b.csv")
    put(aws, SECONDARY, "data-usw2", "datasets/_SUCCESS", "datasets/d=0/a.csv", "datasets/d=0/zz.csv")
    asset = s3_asset()
    plan = plan_with(asset)
    checker = S3Checker(aws)
    # When the asset's verification is planned
    planned = checker.plan(plan, asset)
    # Then there is a settings shard, a top-level shard and one shard per directory, version-aware
    assert planned.problems == []
    assert planned.shards == [
        {"kind": "s3-config"},
        {"kind": "s3-objects", "top_level": True, "versions": True},
        {"kind": "s3-objects", "prefixes": ["d=0/"], "versions": True},
        {"kind": "s3-objects", "prefixes": ["d=1/"], "versions": True},
    ]
    # When the object shards run
    shards = [Shard(index=i, asset=asset.name, **f) for i, f in enumerate(planned.shards)]
    top, day0, day1 = (checker.check(plan, asset, s, now=T0) for s in shards[1:])
    # Then what is on both sides matches, the extra and the missing object are counted, versions compared
    assert (top.source_objects, top.replica_objects, top.mismatches, top.extra) == (1, 1, 0, 0)
    assert (day0.source_objects, day0.replica_objects, day0.extra, day0.mode) == (1, 2, 1, "versions")
    assert (day1.source_objects, day1.replica_objects, day1.missing) == (1, 0, 1)
    assert [(s.kind, s.key) for s in day0.samples + day1.samples] == [
        ("extra", "d=0/zz.csv"),
        ("missing", "d=1/b.csv"),
    ]


class Rendezvous:
    """S3 clients whose first listing on each side waits until the other side's has been sent as well."""

    def __init__(self, aws: ClientFor) -> None:
        self.aws = aws
        self.meet = threading.Barrier(2, timeout=10)  # broken (a failure) when the sides are asked in turn

    def __call__(self, service: str, region: str) -> Any:
        client, meet = self.aws(service, region), self.meet

        class Side:
            def __getattr__(self, name: str) -> Any:
                return getattr(client, name)

            def list_objects_v2(self, **kw: Any) -> Any:
                if "ContinuationToken" not in kw:
                    meet.wait()
                return client.list_objects_v2(**kw)

        return Side()


def test_planning_asks_both_sides_at_once(aws: ClientFor) -> None:
    # Given both buckets, and clients that hold each side's first directory listing until the other's arrives
    bucket(aws, "data-use1", PRIMARY)
    bucket(aws, "data-usw2", SECONDARY)
    put(aws, PRIMARY, "data-use1", "datasets/d=0/a.csv")
    put(aws, SECONDARY, "data-usw2", "datasets/d=1/b.csv")
    asset = s3_asset()
    # When the object shards are planned
    planned = S3Checker(Rendezvous(aws)).plan(plan_with(asset), asset)
    # Then the two listings were in flight together (S3's latency is waited for once, not once per side)
    assert planned.problems == []
    assert [s.get("prefixes") for s in planned.shards[1:]] == [["d=0/"], ["d=1/"]]


def test_the_settings_shard_flags_an_unversioned_unreplicated_replica(aws: ClientFor) -> None:
    # Given a replica bucket without versioning and a source without any replication rule
    bucket(aws, "data-use1", PRIMARY)
    bucket(aws, "data-usw2", SECONDARY, versioned=False)
    asset = s3_asset()
    # When the settings shard runs
    result = S3Checker(aws).check(
        plan_with(asset), asset, Shard(index=0, asset=asset.name, kind="s3-config"), now=T0
    )
    # Then both are breaches, and what was read is kept as detail
    found = {f.code: f.severity for f in result.findings}
    assert found["replica-unversioned"] == "breach" and found["no-replication-rule"] == "breach"
    assert result.detail["buckets"]["source"]["versioning"] == {
        "state": "set",
        "value": "Enabled",
        "error": None,
    }


def test_an_asset_whose_objects_cannot_be_listed_is_a_planning_problem_not_a_crash(aws: ClientFor) -> None:
    # Given an asset whose buckets do not exist
    asset = s3_asset()
    # When its verification is planned
    planned = S3Checker(aws).plan(plan_with(asset), asset)
    # Then the settings shard still runs and the object comparison is named as not planned
    assert planned.shards == [{"kind": "s3-config"}]
    assert len(planned.problems) == 1
    assert planned.problems[0].startswith("training-data: cannot plan the object comparison: NoSuchBucket: ")


def test_plan_validation_reads_versioning_and_replication(aws: ClientFor) -> None:
    # Given the source bucket only, versioned and without a replication rule
    bucket(aws, "data-use1", PRIMARY)
    asset = s3_asset(rpo="15m")
    reader = ResourceReader(lambda service, region: aws(service, region or PRIMARY))
    # When the asset's live checks run
    checks = S3Checker(aws).live_checks(plan_with(asset), asset, reader)
    findings = [f for check in checks for f in check.run()]
    # Then the source passes, the missing replica and the missing rule are errors
    assert [(f.subject, f.severity) for f in findings] == [
        ("bucket data-use1 (us-east-1)", "ok"),
        ("bucket data-usw2 (us-west-2)", "error"),
        ("training-data: data-use1 -> data-usw2", "error"),
    ]
    assert "(RPO 15m)" in findings[2].message
    # And a check that cannot run names what it was looking at
    assert [c.subject for c in checks] == ["bucket data-use1", "bucket data-usw2", "training-data"]


# -- IAM --------------------------------------------------------------------------------------------------
def test_listings_are_granted_per_prefix_and_a_whole_bucket_asset_lifts_the_limit() -> None:
    plan = plan_with(s3_asset())
    listed = [g for g in S3Checker().grants(s3_asset(), plan) if g.action == "s3:ListBucket"]
    # The replication listing and the verification listing, each limited to the asset's prefix
    assert {g.capability for g in listed} == {"asset-list", "asset-verify"}
    assert all(g.condition == {"StringLike": {"s3:prefix": ["datasets/*"]}} for g in listed)
    whole = [g for g in S3Checker().grants(s3_asset(prefix=""), plan) if g.action == "s3:ListBucket"]
    assert whole and all(g.condition is None for g in whole)


def test_only_the_model_artifacts_are_read_to_identify_a_model() -> None:
    plan = plan_with(s3_asset())
    identify = [
        g
        for g in S3Checker().grants(s3_asset(role="model-artifacts"), plan)
        if g.capability == "model-identify"
    ]
    assert [g.resource for g in identify] == [
        "arn:${AWS::Partition}:s3:::data-use1/datasets/*",
        "arn:${AWS::Partition}:s3:::data-usw2/datasets/*",
    ]
    assert not [
        g for g in S3Checker().grants(s3_asset(role="dataset"), plan) if g.capability == "model-identify"
    ]


def test_a_shard_kind_the_checker_does_not_own_is_refused(aws: ClientFor) -> None:
    asset = s3_asset()
    wrong = Shard(index=0, asset=asset.name, kind="dynamodb")
    with pytest.raises(ValueError, match="no 'dynamodb' shards"):
        S3Checker(aws).check(plan_with(asset), asset, wrong, now=T0)


# The IAM action behind each S3 API operation the checker calls.
S3_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "GetBucketReplication": "s3:GetReplicationConfiguration",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
}


def test_every_s3_call_of_a_verification_is_granted_to_it(aws: ClientFor) -> None:
    # Given replicated buckets, and every S3 operation the checker's clients make recorded
    bucket(aws, "data-use1", PRIMARY)
    bucket(aws, "data-usw2", SECONDARY)
    put(aws, PRIMARY, "data-use1", "datasets/_SUCCESS", "datasets/d=0/a.csv")
    put(aws, SECONDARY, "data-usw2", "datasets/_SUCCESS", "datasets/d=0/a.csv")
    called: set[str] = set()
    for region in (PRIMARY, SECONDARY):
        events = aws("s3", region).meta.events
        events.register("before-call.s3.*", lambda model, **_: called.add(model.name))
    asset = s3_asset()
    plan = plan_with(asset)
    checker = S3Checker(aws)
    # When a whole verification of the asset runs
    planned = checker.plan(plan, asset)
    for i, fields in enumerate(planned.shards):
        checker.check(plan, asset, Shard(index=i, asset=asset.name, **fields), now=T0)
    # Then each operation's IAM action is among what the kind grants verification
    granted = {g.action for g in checker.grants(asset, plan) if g.capability == "asset-verify"}
    assert called and {S3_ACTIONS[op] for op in called} <= granted


def test_an_inventory_is_granted_where_s3_inventory_writes_it() -> None:
    asset = s3_asset(inventory={"bucket": "inventories", "prefix": "inv"})
    grants = [g for g in S3Checker().grants(asset, plan_with(asset)) if "inventories" in g.resource]
    assert [(g.action, g.resource, g.condition) for g in grants] == [
        (
            "s3:ListBucket",
            "arn:${AWS::Partition}:s3:::inventories",
            {"StringLike": {"s3:prefix": ["inv/data-use1/*"]}},
        ),
        ("s3:GetObject", "arn:${AWS::Partition}:s3:::inventories/inv/data-use1/*", None),
    ]


# -- settings that are absent or unreadable ----------------------------------------------------------------
class DeniedEncryption:
    """An S3 client whose GetBucketEncryption is refused (AccessDenied); everything else is moto's."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def get_bucket_encryption(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetBucketEncryption")


@pytest.mark.parametrize("encryption", ["absent", "unreadable"])
def test_default_encryption_absent_or_unreadable_never_hides_the_other_findings(
    aws: ClientFor, encryption: str
) -> None:
    # Given an unversioned replica, a source without replication rule, and default encryption that is
    # absent on both buckets or that Lifeboat may not read
    bucket(aws, "data-use1", PRIMARY)
    bucket(aws, "data-usw2", SECONDARY, versioned=False)
    for name, region in (("data-use1", PRIMARY), ("data-usw2", SECONDARY)):
        aws("s3", region).delete_bucket_encryption(Bucket=name)
    client = (
        aws if encryption == "absent" else (lambda service, region: DeniedEncryption(aws(service, region)))
    )
    asset = s3_asset()
    # When the settings shard runs
    result = S3Checker(client).check(
        plan_with(asset), asset, Shard(index=0, asset=asset.name, kind="s3-config"), now=T0
    )
    # Then the breaches are kept whatever the encryption read gave
    found = {f.code: f.severity for f in result.findings}
    assert found["replica-unversioned"] == "breach" and found["no-replication-rule"] == "breach"
    if encryption == "absent":
        # And absent encryption is a warning of its own; the shard is complete
        assert found["source-unencrypted"] == found["replica-unencrypted"] == "warning"
        assert result.status == "complete"
    else:
        # And an unreadable one is neither passed nor failed: the shard says it could not look
        assert "source-unencrypted" not in found and "replica-unencrypted" not in found
        assert result.status == "incomplete" and "encryption: AccessDenied" in (result.reason or "")


# -- multipart objects that only their bytes can prove -----------------------------------------------------
def multipart(client: ClientFor, region: str, name: str, key: str, parts: list[bytes]) -> None:
    s3 = client("s3", region)
    upload = s3.create_multipart_upload(Bucket=name, Key=key)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        etag = s3.upload_part(Bucket=name, Key=key, UploadId=upload, PartNumber=number, Body=body)["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket=name, Key=key, UploadId=upload, MultipartUpload={"Parts": done})


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.s3.models

    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)


def objects_shard(asset: S3Asset, budget: int) -> Shard:
    return Shard(index=1, asset=asset.name, kind="s3-objects", prefixes=["d/"], read_budget_bytes=budget)


def test_a_corrupted_multipart_replica_is_found_by_reading_it_and_is_a_breach(
    aws: ClientFor, small_parts: None
) -> None:
    # Given multipart objects without checksums, uploaded with other part sizes on each side (so neither
    # ETags nor checksums can compare them): one identical, one corrupted (same size, other bytes)
    bucket(aws, "data-use1", PRIMARY)
    bucket(aws, "data-usw2", SECONDARY)
    multipart(aws, PRIMARY, "data-use1", "datasets/d/same.bin", [b"a" * 40, b"b" * 20])
    multipart(aws, SECONDARY, "data-usw2", "datasets/d/same.bin", [b"a" * 30, b"a" * 10 + b"b" * 20])
    multipart(aws, PRIMARY, "data-use1", "datasets/d/bad.bin", [b"x" * 40, b"y" * 20])
    multipart(aws, SECONDARY, "data-usw2", "datasets/d/bad.bin", [b"x" * 30, b"x" * 10 + b"Y" * 20])
    asset = s3_asset()
    plan = plan_with(asset)
    # And the verification sees the listing an hour after the objects were written (an old corruption)
    later = datetime.now(UTC) + timedelta(hours=1)
    # When the shard runs with a budget for both pairs
    result = S3Checker(aws).check(plan, asset, objects_shard(asset, budget=240), now=later)
    # Then the bytes were read: the identical pair is proven equal, the corrupted one different
    assert result.proofs == {"read-sha256": 2}
    assert [(s.kind, s.key, s.proof) for s in result.samples] == [("different", "d/bad.bin", "read-sha256")]
    assert (result.read_bytes, result.unread_over_budget) == (240, 0)
    # And the asset is breached: the corruption's exposure (measured when its page was read) is an hour
    merged = merge_asset(
        asset=asset.name,
        kind="s3",
        role=None,
        objective=plan.asset_rpo(asset),
        results=[result],
        expected=1,
        now=later,
    )
    assert merged.verdict == "breached" and merged.proofs == {"read-sha256": 2}
    assert (merged.measured_rpo_seconds or 0) > 3500


def test_pairs_beyond_the_read_budget_stay_unverified_and_say_so(aws: ClientFor, small_parts: None) -> None:
    # Given the same two unprovable pairs and a budget for one of them only
    bucket(aws, "data-use1", PRIMARY)
    bucket(aws, "data-usw2", SECONDARY)
    for key in ("datasets/d/a.bin", "datasets/d/b.bin"):
        multipart(aws, PRIMARY, "data-use1", key, [b"a" * 40, b"b" * 20])
        multipart(aws, SECONDARY, "data-usw2", key, [b"a" * 30, b"a" * 10 + b"b" * 20])
    asset = s3_asset()
    # When the shard runs
    result = S3Checker(aws).check(plan_with(asset), asset, objects_shard(asset, budget=150), now=T0)
    # Then one pair is proven by reading it and the other is unverified, counted as over budget
    assert result.proofs == {"read-sha256": 1, "none": 1}
    assert (result.unverified, result.unread_over_budget, result.read_bytes) == (1, 1, 120)
