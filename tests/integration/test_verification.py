"""Backup verification on the local cloud: the example plan's buckets, registry and tables, compared for real.

The on-demand run (what `lifeboat verify` and the API call) and the Step Functions state machine (a
Distributed Map, executed by moto's ASL engine with the real handlers) share the shard functions.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import io
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config

from chalicelib.adapters.errors import TransientError
from chalicelib.adapters.evidence import latest_key
from chalicelib.adapters.s3objects import copy_preserving, iter_objects
from chalicelib.domain.listings import diff_listings
from chalicelib.domain.verification import finalize
from chalicelib.models.plan import S3Asset, S3Location
from chalicelib.models.verification import VerificationReport
from chalicelib.services.deps import deps
from chalicelib.services.verification import shards as work
from chalicelib.services.verification.on_demand import verify_workload
from chalicelib.settings import get_settings
from lifeboat_cli.verify_cmd import cmd_verify, exit_code
from localcloud.faults import AwsFaults
from localcloud.resources import names
from tests.integration.stack import Stack

PRIMARY, SECONDARY = "us-east-1", "us-west-2"


def asset(stack: Stack, name: str) -> Any:
    return stack.plan.asset(name)


def s3(stack: Stack, region: str) -> Any:
    return stack.cloud.client("s3", region)


def resync(stack: Stack) -> None:
    """Make every S3 replica equal to its source again (what a healthy replication would leave)."""
    for a in stack.plan.assets:
        if not isinstance(a, S3Asset):
            continue
        src, rep = s3(stack, PRIMARY), s3(stack, SECONDARY)
        diffs = diff_listings(
            iter_objects(src, a.source.bucket, a.source.prefix),
            iter_objects(rep, a.replica.bucket, a.replica.prefix),
            report_unverified=True,
        )
        for d in list(diffs):
            if d.kind == "unverified":
                src.delete_object(Bucket=a.source.bucket, Key=a.source.prefix + d.key)
                rep.delete_object(Bucket=a.replica.bucket, Key=a.replica.prefix + d.key)
            elif d.kind == "extra":
                rep.delete_object(Bucket=a.replica.bucket, Key=a.replica.prefix + d.key)
            else:
                copy_preserving(
                    rep, a.source.bucket, a.source.prefix + d.key, a.replica.bucket, a.replica.prefix + d.key
                )
    model = stack.resources.model
    copy_preserving(
        s3(stack, SECONDARY),
        model["primary_bucket"],
        model["primary_key"],
        model["secondary_bucket"],
        model["secondary_key"],
    )


@pytest.fixture
def fresh(stack: Stack) -> Iterator[Stack]:
    """A consistent, healthy stack with an empty notification inbox; restored afterwards."""
    resync(stack)
    stack.inbox()
    yield stack
    resync(stack)
    ddb = stack.cloud.client("dynamodb", PRIMARY)
    ddb.update_continuous_backups(
        TableName="fraud-features", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )


def seed(stack: Stack, n: int = 12) -> None:
    """Training data in three "directories" plus one top-level file, replicated."""
    a = asset(stack, "training-data")
    for i in range(n):
        key = f"{a.source.prefix}day={i % 3}/part {i:03d}.csv"
        for region, bucket, k in ((PRIMARY, a.source.bucket, key), (SECONDARY, a.replica.bucket, key)):
            s3(stack, region).put_object(Bucket=bucket, Key=k, Body=f"row,{i}\n".encode())
    for region, bucket in ((PRIMARY, a.source.bucket), (SECONDARY, a.replica.bucket)):
        s3(stack, region).put_object(Bucket=bucket, Key=f"{a.source.prefix}_SUCCESS", Body=b"")


def verify(**kw: Any) -> VerificationReport:
    return verify_workload("fraud-scoring", deps(), sleep=lambda _: None, **kw)


def by_asset(report: VerificationReport) -> dict[str, Any]:
    return {a.asset: a for a in report.assets}


def inbox_subjects(stack: Stack) -> list[str]:
    return [m.get("Subject", "") for m in stack.inbox()]


# -- the on-demand run -----------------------------------------------------------------------------------
def test_a_healthy_workload_is_green_with_evidence_ledger_metrics_and_no_alert(
    fresh: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given replicated training data, the model artifact, its registry and the feature tables
    seed(fresh)
    # When verified
    report = verify()
    # Then every asset is green and its measured RPO is zero
    assets = by_asset(report)
    assert report.verdict == "green", report.summary
    assert {a.asset: a.verdict for a in report.assets} == dict.fromkeys(assets, "green")
    data = assets["training-data"]
    assert (data.objects_checked, data.replica_objects, data.measured_rpo_seconds) == (13, 13, 0.0)
    assert data.mode == "config+versions" and data.source_versions == 13
    # And the bucket settings were checked: versioned, encrypted, replicated, replica locked
    assert data.findings == []
    # And the report is in the evidence bucket as JSON and Markdown
    evidence = fresh.cloud.client("s3")
    bucket = names(fresh.cloud.stage).evidence_bucket
    stored = json.loads(
        evidence.get_object(Bucket=bucket, Key=report.evidence["json"].split(f"{bucket}/")[1])["Body"].read()
    )
    assert stored["verdict"] == "green" and stored["run_id"] == report.run_id
    markdown = evidence.get_object(Bucket=bucket, Key=report.evidence["markdown"].split(f"{bucket}/")[1])[
        "Body"
    ].read()
    assert b"GREEN" in markdown
    assert (
        json.loads(evidence.get_object(Bucket=bucket, Key=latest_key("fraud-scoring"))["Body"].read())[
            "run_id"
        ]
        == report.run_id
    )
    # And the ledger says so, with per-asset facts
    (entry,) = [
        e
        for e in deps().ledger.entries("fraud-scoring", kind="verification")
        if e.detail["run_id"] == report.run_id
    ]
    assert entry.outcome == "green" and entry.detail["assets"][0]["asset"] == "training-data"
    # And each asset emitted its metrics
    out = capsys.readouterr().out
    for metric in ("VerificationObjectsChecked", "VerificationMismatches", "VerificationMeasuredRPO"):
        assert metric in out
    # And nobody was paged
    assert not any("Lifeboat" in s for s in inbox_subjects(fresh))


def test_missing_extra_different_and_stale_objects_are_each_found(fresh: Stack) -> None:
    # Given training data where one of each kind of difference was made, with awkward keys
    seeded = time.time()
    seed(fresh)
    a = asset(fresh, "training-data")
    src, rep = s3(fresh, PRIMARY), s3(fresh, SECONDARY)
    p = a.source.prefix
    time.sleep(1.05)  # S3 listings (and moto's) carry whole seconds: let the overwrite be visibly newer
    stale = p + "day=1/part 001.csv"
    src.put_object(Bucket=a.source.bucket, Key=stale, Body=b"row,changed\n")  # the replica is now stale
    rep.put_object(Bucket=a.replica.bucket, Key=p + "day=2/part 002.csv", Body=b"row,tampered\n")  # different
    src.put_object(Bucket=a.source.bucket, Key=p + "day=0/nouveau été.csv", Body=b"x\n")  # missing
    rep.put_object(Bucket=a.replica.bucket, Key=p + "day=9/orphan.csv", Body=b"y\n")  # extra (own directory)
    # When verified
    report = verify()
    data = by_asset(report)["training-data"]
    # Then each difference is counted exactly once, and named
    assert (data.missing, data.extra, data.different, data.stale, data.unverified) == (1, 1, 1, 1, 0)
    kinds = {s.key: s.kind for s in data.samples}
    assert kinds == {
        "day=0/nouveau été.csv": "missing",
        "day=1/part 001.csv": "stale",
        "day=2/part 002.csv": "different",
        "day=9/orphan.csv": "extra",
    }
    # And the measured RPO is the age of the oldest source version not in the replica: the tampered object's,
    # written by the seeding (listings truncate to whole seconds), within the 15m objective
    assert 1 <= data.measured_rpo_seconds <= time.time() - seeded + 1
    assert data.verdict == "at-risk" and report.verdict == "at-risk"


def evidence_lines(stack: Stack, uri: str) -> list[dict[str, Any]]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body = stack.cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(line) for line in body.splitlines()]


def test_every_difference_is_listed_in_the_evidence_bucket_while_the_report_keeps_samples(
    fresh: Stack,
) -> None:
    # Given 25 training files that did not replicate, more than a shard keeps as samples
    seed(fresh)
    a = asset(fresh, "training-data")
    for i in range(25):
        s3(fresh, PRIMARY).put_object(
            Bucket=a.source.bucket, Key=f"{a.source.prefix}lost/f{i:02d}.csv", Body=b"x"
        )
    # When verified
    report = verify()
    data = by_asset(report)["training-data"]
    # Then the report keeps 20 samples and exact counts, and says how the other pairs were proven
    assert data.missing == 25 and len(data.samples) == 20
    # (equal ETags as listed: a listing does not say how objects are encrypted)
    assert data.proofs == {"etag-equal": data.source_objects - 25}
    # And the difference list in the evidence bucket has every one, with what was seen on each side
    lines = evidence_lines(fresh, report.evidence["differences"])
    lost = [line for line in lines if line["asset"] == "training-data"]
    assert sorted(line["key"] for line in lost) == [f"lost/f{i:02d}.csv" for i in range(25)]
    assert {line["kind"] for line in lost} == {"missing"} and all(
        line["source"]["size"] == 1 for line in lost
    )


def test_an_exposure_older_than_the_objective_is_a_breach(fresh: Stack) -> None:
    # Given a new model artifact that did not replicate, looked at three minutes later (objective 1m)
    a = asset(fresh, "model-artifacts")
    s3(fresh, PRIMARY).put_object(
        Bucket=a.source.bucket, Key=a.source.prefix + "fraud-scorer/1.1.0/model.json", Body=b"{}"
    )
    later = dataclasses.replace(deps(), clock=lambda: deps().clock() + timedelta(minutes=3))
    # When verified
    report = verify_workload("fraud-scoring", later, sleep=lambda _: None)
    models = by_asset(report)["model-artifacts"]
    # Then the measured RPO is over the objective: breached, and a human is told
    assert models.measured_rpo_seconds is not None and models.measured_rpo_seconds > 60
    assert models.verdict == "breached" and report.verdict == "breached"
    assert any("RPO objective BREACHED" in s for s in inbox_subjects(fresh))


def test_content_that_cannot_be_verified_is_flagged_honestly(fresh: Stack) -> None:
    # Given the same 11 MB file uploaded in different part sizes on each side and no stored checksums
    a = asset(fresh, "training-data")
    body = bytes(range(256)) * (11 * 4096)
    for region, bucket, part in ((PRIMARY, a.source.bucket, 5), (SECONDARY, a.replica.bucket, 6)):
        client = boto3.client(
            "s3",
            region_name=region,
            endpoint_url=fresh.cloud.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(request_checksum_calculation="when_required"),
        )
        key = a.source.prefix + "big/features.parquet"
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        size = part * 1024 * 1024
        parts = []
        for n, start in enumerate(range(0, len(body), size), 1):
            etag = client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=body[start : start + size]
            )
            parts.append({"PartNumber": n, "ETag": etag["ETag"]})
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )
    # When verified with no bytes to spare for reading objects
    d = deps()
    no_budget = (d.settings or get_settings()).model_copy(update={"verify_read_budget_bytes": 0})
    data = by_asset(verify_workload("fraud-scoring", dataclasses.replace(d, settings=no_budget)))[
        "training-data"
    ]
    # Then it is neither called equal nor different: it is reported as unverifiable, and why
    assert (data.unverified, data.different, data.missing) == (1, 0, 0)
    assert data.samples[0].kind == "unverified" and "cannot be verified" in data.samples[0].why
    assert data.verdict == "at-risk" and data.unread_over_budget == 1 and data.proofs["none"] == 1
    # When verified with the default budget
    data = by_asset(verify())["training-data"]
    # Then both copies were read and hashed: proven equal, and the report says how
    assert (data.unverified, data.different, data.missing) == (0, 0, 0)
    assert data.proofs.get("read-sha256") == 1 and data.read_bytes == 2 * len(body)


def test_a_corrupted_replica_model_artifact_is_caught_by_the_registry_check(fresh: Stack) -> None:
    # Given the secondary's copy of the deployable model silently changed
    model = fresh.resources.model
    s3(fresh, SECONDARY).put_object(
        Bucket=model["secondary_bucket"], Key=model["secondary_key"], Body=b'{"w": 0}'
    )
    # When verified
    report = verify()
    registry = by_asset(report)["fraud-model"]
    # Then the registry check proves the secondary would load other bytes: a breach, with an alert
    assert registry.verdict == "breached"
    assert "artifact-checksum-mismatch" in {f.code for f in registry.findings}
    assert registry.different == 1 and "SHA-256" in registry.samples[0].why
    assert report.verdict == "breached"
    assert any("BREACHED" in s for s in inbox_subjects(fresh))


def test_dynamodb_without_point_in_time_recovery_is_flagged(fresh: Stack) -> None:
    # Given the feature store's primary table with PITR turned off and no backup
    fresh.cloud.client("dynamodb", PRIMARY).update_continuous_backups(
        TableName="fraud-features", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    # When verified
    features = by_asset(verify())["features"]
    # Then there is no restore point at all: breached, and the finding says what to do
    assert features.verdict == "breached"
    (finding,) = [f for f in features.findings if f.code == "pitr-disabled"]
    assert finding.severity == "breach" and "Enable PITR" in finding.message


# -- runs that struggle ----------------------------------------------------------------------------------
def test_throttling_is_retried_and_the_run_still_completes(fresh: Stack) -> None:
    # Given replicated training data (its own: tests run in any order), and S3 throttling the source
    # listing three times
    seed(fresh)
    faults = AwsFaults()
    rule = faults.throttle("s3", "ListObjectVersions", times=3, region=PRIMARY)
    try:
        # When verified
        report = verify()
    finally:
        faults.clear()
    # Then the throttled calls were retried and the verdict is a real one
    assert rule.hits == 3
    assert report.verdict == "green", report.summary


def test_a_run_that_cannot_finish_is_incomplete_never_green(fresh: Stack) -> None:
    # Given replicated training data (its own: tests run in any order), and the replica region refusing
    # Lifeboat's listings (a missing permission)
    seed(fresh)
    faults = AwsFaults()
    faults.add("s3", "ListObjectVersions", 1000, status=403, code="AccessDenied", region=SECONDARY)
    try:
        report = verify()
    finally:
        faults.clear()
    # Then the S3 assets are incomplete (not green), the run too, and the CLI would exit 1
    assets = by_asset(report)
    assert assets["training-data"].verdict == "incomplete"
    assert "AccessDenied" in " ".join(assets["training-data"].incomplete_reasons)
    assert assets["training-data"].measured_rpo_seconds is None
    assert report.verdict == "incomplete" and exit_code(report) == 1
    assert any("INCOMPLETE" in s for s in inbox_subjects(fresh))


def test_a_shard_still_failing_after_its_retries_makes_the_run_incomplete(
    fresh: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given training data (its own), and object comparisons that keep hitting 5xx after botocore's retries
    seed(fresh)
    real = work.run_shard
    calls: list[int] = []

    def flaky(plan: Any, shard: Any, d: Any) -> Any:
        if shard.kind == "s3-objects":
            calls.append(shard.index)
            raise TransientError("ServiceUnavailable: injected")
        return real(plan, shard, d)

    monkeypatch.setattr(work, "run_shard", flaky)
    # When verified
    report = verify()
    # Then each such shard was tried three times, and the run reports incomplete, not green
    assert len(calls) == 3 * sum(1 for _ in set(calls))
    data = by_asset(report)["training-data"]
    assert data.verdict == "incomplete" and "gave up after 3 attempts" in data.incomplete_reasons[0]


def test_verify_json_prints_exactly_one_json_document_even_when_a_shard_is_incomplete(
    fresh: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given training data (its own), and object shards that fail for good (each logs a warning) while
    # metrics are emitted as usual
    seed(fresh)
    real = work.run_shard

    def broken(plan: Any, shard: Any, d: Any, **kw: Any) -> Any:
        if shard.kind == "s3-objects":
            raise_inside = dataclasses.replace(d, clock=lambda: (_ for _ in ()).throw(ValueError("boom")))
            return real(plan, shard, raise_inside, **kw)
        return real(plan, shard, d, **kw)

    monkeypatch.setattr(work, "run_shard", broken)
    capsys.readouterr()
    # When `lifeboat verify --json` runs
    code = cmd_verify(argparse.Namespace(workload="fraud-scoring", json=True, workers=2))
    out, err = capsys.readouterr()
    # Then stdout is one JSON document, the report, and the log lines and metrics went to stderr
    report = json.loads(out)
    assert report["workload"] == "fraud-scoring" and report["verdict"] == "incomplete" and code == 1
    assert "shard incomplete" in err and "VerificationRun" in err


# -- the state machine -----------------------------------------------------------------------------------
def run_machine(stack: Stack, name: str) -> dict[str, Any]:
    arn = stack.sfn.start_execution(
        stateMachineArn=stack.resources.state_machines["verify"],
        name=name,
        input=json.dumps({"workload": "fraud-scoring", "trigger": "schedule"}),
    )["executionArn"]
    desc = stack.wait(arn)
    desc["history"] = [
        e["type"] for e in stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    ]
    return desc


def test_the_state_machine_fans_out_over_a_distributed_map_and_reports(fresh: Stack) -> None:
    # Given replicated training data in several prefixes
    seed(fresh)
    # When the generated verification machine runs
    desc = run_machine(fresh, "verify-green")
    # Then moto ran the Distributed Map (a map run) and the run ended with a green report
    assert desc["status"] == "SUCCEEDED", desc
    assert "MapRunStarted" in desc["history"] and "MapRunSucceeded" in desc["history"]
    output = json.loads(desc["output"])
    assert output["verdict"] == "green", output
    # And its (empty) difference list is part of the evidence: nothing to repair
    assert evidence_lines(fresh, output["evidence"]["differences"]) == []
    (entry,) = [
        e
        for e in deps().ledger.entries("fraud-scoring", kind="verification")
        if e.detail["run_id"] == "verify-green"
    ]
    assert (
        entry.execution
        and entry.execution.endswith(":verify-green")
        and entry.detail["trigger"] == "schedule"
    )


def test_a_shard_failing_inside_the_map_still_ends_in_an_incomplete_report(fresh: Stack) -> None:
    # Given replicated training data (its own: this test must not lean on what an earlier test wrote), and the
    # replica refusing listings while the machine runs
    seed(fresh)
    faults = AwsFaults()
    faults.add("s3", "ListObjectVersions", 1000, status=403, code="AccessDenied", region=SECONDARY)
    try:
        desc = run_machine(fresh, "verify-denied")
    finally:
        faults.clear()
    # Then the execution still succeeds in writing a report, and that report is incomplete
    assert desc["status"] == "SUCCEEDED", desc
    output = json.loads(desc["output"])
    assert output["verdict"] == "incomplete", output
    assert output["assets"]["training-data"] == "incomplete"


# -- S3 Inventory ----------------------------------------------------------------------------------------
def write_inventory(stack: Stack, rows: list[list[tuple[str, int, str]]], when: float) -> None:
    """An S3 Inventory report (manifest + gzipped CSV data files) of the training-data source bucket."""
    a = asset(stack, "training-data")
    client = s3(stack, PRIMARY)
    base = f"inventory/{a.source.bucket}/daily/2024-05-01T00-00Z/"
    files = []
    for i, chunk in enumerate(rows):
        buf = io.StringIO()
        w = csv.writer(buf)
        for key, size, etag in chunk:
            w.writerow([a.source.bucket, key.replace(" ", "%20"), size, "2024-05-01T00:00:00.000Z", etag])
        key = f"{base}data/file-{i}.csv.gz"
        client.put_object(Bucket=a.source.bucket, Key=key, Body=gzip.compress(buf.getvalue().encode()))
        files.append({"key": key, "size": 1, "MD5checksum": "x"})
    manifest = {
        "sourceBucket": a.source.bucket,
        "destinationBucket": f"arn:aws:s3:::{a.source.bucket}",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": files,
        "creationTimestamp": str(int(when * 1000)),
    }
    client.put_object(Bucket=a.source.bucket, Key=base + "manifest.json", Body=json.dumps(manifest).encode())


def test_an_inventory_replaces_the_source_listing(fresh: Stack) -> None:
    # Given replicated training data and an inventory of the source, split over two data files
    seed(fresh, 6)
    a = asset(fresh, "training-data")
    src = s3(fresh, PRIMARY)
    listed = [(o.key, o.size, o.etag) for o in iter_objects(src, a.source.bucket, a.source.prefix)]
    rows = [(a.source.prefix + k, size, etag or "") for k, size, etag in listed]
    rows.append(
        (a.source.prefix + "day=1/lost in replication.csv", 7, "abc")
    )  # inventoried, never replicated
    rows.sort()
    snapshot = time.time()
    write_inventory(fresh, [rows[:4], rows[4:]], snapshot)
    time.sleep(1.05)  # listings carry whole seconds: this replica write must be visibly after the snapshot
    s3(fresh, SECONDARY).put_object(
        Bucket=a.replica.bucket, Key=a.replica.prefix + "day=5/new.csv", Body=b"n"
    )
    plan = fresh.plan.model_copy(
        update={
            "assets": [
                x.model_copy(update={"inventory": S3Location(bucket=a.source.bucket, prefix="inventory/")})
                if x.name == "training-data"
                else x
                for x in fresh.plan.assets
            ]
        }
    )
    d = deps()
    # When the asset is verified from the inventory
    shards, problems = work.plan_shards(plan, d)
    object_shards = [s for s in shards if s.asset == "training-data" and s.kind == "s3-objects"]
    results = [work.run_shard(plan, s, d) for s in shards if s.asset == "training-data"]
    report = finalize(
        plan, shards, results, run_id="inv", trigger="test", started_at=d.clock(), now=d.clock()
    )
    data = by_asset(report)["training-data"]
    # Then each inventory file is a shard and the source bucket was never listed for objects
    assert problems == [] and len(object_shards) == 3 and all(s.inventory for s in object_shards)
    assert data.mode == "config+inventory"
    # And the inventoried object missing from the replica is found; the replica object written after the
    # snapshot is not judged against it
    assert (data.missing, data.extra, data.unjudged) == (1, 0, 1)
    assert data.samples[0].key == "day=1/lost in replication.csv"
    assert data.snapshot_at is not None


def test_overlapping_inventory_files_make_the_asset_incomplete(fresh: Stack) -> None:
    # Given inventory files whose key ranges overlap (S3 does not document their order)
    seed(fresh, 4)
    a = asset(fresh, "training-data")
    keys = sorted(
        (a.source.prefix + o.key, o.size, o.etag or "")
        for o in iter_objects(s3(fresh, PRIMARY), a.source.bucket, a.source.prefix)
    )
    write_inventory(fresh, [[keys[0], keys[3]], [keys[1], keys[2], keys[4]]], time.time())
    plan = fresh.plan.model_copy(
        update={
            "assets": [
                x.model_copy(update={"inventory": S3Location(bucket=a.source.bucket, prefix="inventory/")})
                if x.name == "training-data"
                else x
                for x in fresh.plan.assets
            ]
        }
    )
    d = deps()
    shards, _ = work.plan_shards(plan, d)
    results = [work.run_shard(plan, s, d) for s in shards if s.asset == "training-data"]
    data = by_asset(
        finalize(plan, shards, results, run_id="inv2", trigger="test", started_at=d.clock(), now=d.clock())
    )["training-data"]
    # Then the comparison is not trusted: incomplete, with the reason
    assert data.verdict == "incomplete"
    assert "outside this file's key range" in " ".join(data.incomplete_reasons)
