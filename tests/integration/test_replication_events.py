"""S3 replication events on the local cloud: SQS batches through the real Lambda handler (partial failures,
re-drives, duplicates), and the simulated S3 replication that produces them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.adapters.errors import TransientError
from chalicelib.clock import utc_now
from chalicelib.models.failover import ReplicationInput
from chalicelib.services import replication_events as events_uc
from chalicelib.services.deps import deps
from chalicelib.services.failover import check_replication
from chalicelib.services.replication_events import UNATTRIBUTED
from chalicelib.services.verification.on_demand import verify_workload
from localcloud.replication import ReplicationSimulator, notification_record
from localcloud.resources import DLQ_MAX_RECEIVE_COUNT
from tests.integration.stack import Stack

PRIMARY, SECONDARY = "us-east-1", "us-west-2"
FUNCTION = "lifeboat-dev-on_replication_event"


@pytest.fixture
def fresh(stack: Stack) -> Iterator[Stack]:
    stack.inbox()
    yield stack


def data_asset(stack: Stack) -> Any:
    return stack.plan.asset("training-data")


def failed_record(stack: Stack, key: str, reason: str, version: str | None = None) -> dict[str, Any]:
    a = data_asset(stack)
    now = utc_now()
    return notification_record(
        "Replication:OperationFailedReplication",
        bucket=a.source.bucket,
        key=key,
        size=3,
        etag="e",
        version_id=version,
        region=PRIMARY,
        account=stack.cloud.account_id,
        destination_bucket=a.replica.bucket,
        rule_id="lifeboat-training-data",
        request_time=now - timedelta(seconds=30),
        event_time=now,
        failure_reason=reason,
    )


def sqs_record(body: str) -> dict[str, Any]:
    """A record as Lambda's SQS event source delivers it (events/sqs/s3-notification-via-sqs.json)."""
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183"},
        "messageAttributes": {},
        "md5OfBody": "0",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lifeboat-dev-replication-events",
        "awsRegion": "us-east-1",
    }


def invoke(stack: Stack, records: list[dict[str, Any]]) -> dict[str, Any]:
    resp = stack.cloud.client("lambda").invoke(
        FunctionName=FUNCTION, Payload=json.dumps({"Records": records})
    )
    payload = json.loads(resp["Payload"].read())
    return {"error": resp.get("FunctionError"), **payload}


def put_source(stack: Stack, key: str, body: bytes = b"new") -> str:
    a = data_asset(stack)
    resp = stack.cloud.client("s3", PRIMARY).put_object(
        Bucket=a.source.bucket, Key=key, Body=body, Metadata={"owner": "fraud-team"}, ContentType="text/csv"
    )
    return str(resp["VersionId"])


def replica_head(stack: Stack, key: str) -> dict[str, Any] | None:
    a = data_asset(stack)
    try:
        return dict(stack.cloud.client("s3", SECONDARY).head_object(Bucket=a.replica.bucket, Key=key))
    except Exception:
        return None


def replication_entries(key: str) -> list[Any]:
    return [
        e
        for e in deps().ledger.entries("fraud-scoring", kind="replication", limit=200)
        if e.detail.get("key") == key
    ]


def test_a_batch_reports_only_its_bad_records_and_redrives_what_a_copy_can_fix(
    fresh: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two objects whose replication failed: one a copy can fix, one only a human can
    fixable = "datasets/incoming/late file été.csv"
    blocked = "datasets/incoming/blocked.csv"
    version = put_source(fresh, fixable, b"a,b\n1,2\n")
    put_source(fresh, blocked)
    # And a batch mixing them with S3's test event and three malformed notifications
    good = sqs_record(
        json.dumps({"Records": [failed_record(fresh, fixable, "DstPutObjectNotPermitted", version)]})
    )
    config = sqs_record(json.dumps({"Records": [failed_record(fresh, blocked, "DstKmsKeyNotFound")]}))
    test_event = sqs_record(
        json.dumps(
            {
                "Service": "Amazon S3",
                "Event": "s3:TestEvent",
                "Time": "2024-01-01T00:00:00.000Z",
                "Bucket": "b",
            }
        )
    )
    not_json = sqs_record("this is not JSON")
    unknown = sqs_record(
        json.dumps({"Records": [{**failed_record(fresh, fixable, "x"), "eventName": "ObjectCreated:Put"}]})
    )
    empty = sqs_record(json.dumps({"Records": []}))
    # When the handler gets the batch
    response = invoke(fresh, [good, config, test_event, not_json, unknown, empty])
    # Then only the malformed records go back to the queue (the batch itself succeeds)
    assert response["error"] is None
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(
        r["messageId"] for r in (not_json, unknown, empty)
    )
    # And the fixable object was copied to the replica, metadata and all
    head = replica_head(fresh, fixable)
    assert (
        head is not None and head["Metadata"] == {"owner": "fraud-team"} and head["ContentType"] == "text/csv"
    )
    (redriven,) = replication_entries(fixable)
    assert redriven.outcome == "failed:redriven" and "re-driven: copied" in redriven.reason
    # And the one a retry cannot fix was not copied, says so, and pages a human
    assert replica_head(fresh, blocked) is None
    (entry,) = replication_entries(blocked)
    assert entry.outcome == "failed:not-redriven" and "CANNOT" in entry.reason and "KMS key" in entry.reason
    assert any("DstKmsKeyNotFound" in m.get("Subject", "") for m in fresh.inbox())
    # And the asset's measured RPO now counts the blocked object as pending
    state = deps().asset_states.get("fraud-scoring", "training-data")
    assert blocked in state.pending and fixable not in state.pending
    assert state.measured_rpo_seconds is not None and state.measured_rpo_seconds >= 30
    assert "ReplicationEvent" in capsys.readouterr().out


def test_the_same_event_delivered_twice_is_processed_once(fresh: Stack) -> None:
    # Given an event already handled (SQS delivers at least once)
    key = "datasets/incoming/twice.csv"
    version = put_source(fresh, key)
    body = json.dumps({"Records": [failed_record(fresh, key, "DstPutObjectNotPermitted", version)]})
    assert invoke(fresh, [sqs_record(body)])["batchItemFailures"] == []
    # When it arrives again / Then it is acknowledged without a second ledger entry or copy
    assert invoke(fresh, [sqs_record(body)])["batchItemFailures"] == []
    assert len(replication_entries(key)) == 1


def test_a_transient_error_returns_only_its_record_to_the_queue(
    fresh: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB throttling while one of two events is handled
    real = events_uc.handle_notice

    def flaky(notice: Any, d: Any) -> Any:
        if notice.key.endswith("throttled.csv"):
            raise TransientError("ThrottlingException: injected")
        return real(notice, d)

    monkeypatch.setattr(events_uc, "handle_notice", flaky)
    ok, throttled = "datasets/incoming/fine.csv", "datasets/incoming/throttled.csv"
    records = [
        sqs_record(
            json.dumps(
                {"Records": [failed_record(fresh, k, "DstPutObjectNotPermitted", put_source(fresh, k))]}
            )
        )
        for k in (ok, throttled)
    ]
    # When the batch is handled / Then only the throttled record will be retried
    response = invoke(fresh, records)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [records[1]["messageId"]]
    assert replica_head(fresh, ok) is not None


def test_a_batch_where_every_record_fails_is_still_an_answer(fresh: Stack) -> None:
    # Given nothing but malformed records
    records = [sqs_record("{"), sqs_record("[]")]
    # When handled
    response = invoke(fresh, records)
    # Then there is no function error (Lambda would retry the batch and the error alarm would page): each
    # record returns to the queue on its own, and the ledger says why, naming the message
    assert response["error"] is None, response
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(
        r["messageId"] for r in records
    )
    explained = {e.detail.get("message_id") for e in deps().ledger.entries(UNATTRIBUTED, kind="replication")}
    assert {r["messageId"] for r in records} <= explained


def test_a_poison_message_reaches_the_dead_letter_queue_and_the_ledger_says_why(fresh: Stack) -> None:
    # Given the replication queue wired to the handler, with the template's redrive policy
    sqs = fresh.cloud.client("sqs")
    url, dlq_url = fresh.cloud.resources["queue_url"], fresh.cloud.resources["dlq_url"]
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    assert policy["maxReceiveCount"] == DLQ_MAX_RECEIVE_COUNT
    # When a message that is not a notification arrives
    sent = sqs.send_message(QueueUrl=url, MessageBody="garbage from a misconfigured bucket")["MessageId"]
    # Then the handler failed only it: it is back in the queue, not lost (received once, by Lambda)
    # And each time it is received again it comes back, until its receive count reaches maxReceiveCount
    for count in range(2, DLQ_MAX_RECEIVE_COUNT + 1):
        (message,) = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
        )["Messages"]
        assert message["MessageId"] == sent and message["Attributes"]["ApproximateReceiveCount"] == str(count)
    # Then SQS moves it to the dead-letter queue on the next receive
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
    (dead,) = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert dead["MessageId"] == sent
    sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=dead["ReceiptHandle"])
    # And the ledger explains that message id, once
    (entry,) = [
        e
        for e in deps().ledger.entries(UNATTRIBUTED, kind="replication")
        if e.detail.get("message_id") == sent
    ]
    assert entry.outcome == "malformed" and "not JSON" in entry.reason and "dead-letter queue" in entry.reason


def test_a_failed_replication_without_its_failure_data_is_not_redriven(fresh: Stack) -> None:
    # Given a failed replication of a protected object whose message lacks the failure data S3 always sends
    key = "datasets/incoming/forged.csv"
    put_source(fresh, key)
    record = failed_record(fresh, key, "DstPutObjectNotPermitted")
    del record["replicationEventData"]
    message = sqs_record(json.dumps({"Records": [record]}))
    # When the handler gets it
    response = invoke(fresh, [message])
    # Then it is a batch-item failure, the object was not copied, and the workload's ledger says why
    assert response["error"] is None
    assert response["batchItemFailures"] == [{"itemIdentifier": message["messageId"]}]
    assert replica_head(fresh, key) is None
    (entry,) = [
        e
        for e in deps().ledger.entries("fraud-scoring", kind="replication")
        if e.detail.get("message_id") == message["messageId"]
    ]
    assert entry.outcome == "malformed" and "replicationEventData" in entry.reason


# -- the simulated S3 replication ------------------------------------------------------------------------
@pytest.fixture
def replication(fresh: Stack) -> Iterator[ReplicationSimulator]:
    sim = ReplicationSimulator(fresh.cloud, lag=timedelta(seconds=0.2), interval=0.05).watch(fresh.plan)
    yield sim
    sim.stop()


def test_simulated_replication_copies_fails_and_notifies_like_s3(
    fresh: Stack, replication: ReplicationSimulator
) -> None:
    # Given replication of one prefix failing for a reason only a human can fix
    replication.fail("datasets/blocked/*", "DstKmsKeyNotFound")
    now = ReplicationInput(workload="fraud-scoring", execution="t", started=utc_now())
    already = check_replication(now, deps()).pending_objects  # left unreplicated by earlier tests
    # When new training data is written to the primary
    put_source(fresh, "datasets/flowing/a.csv")
    put_source(fresh, "datasets/blocked/b.csv")
    replication.tick()
    # Then a graceful failover starting after those writes (however long they took) has them to wait for
    later = ReplicationInput(workload="fraud-scoring", execution="t", started=utc_now())
    assert check_replication(later, deps()).pending_objects == already + 2
    # When replication catches up
    assert replication.drain()
    # Then the healthy object is in the replica, the failed one is not, and S3's notification reached Lifeboat
    assert replica_head(fresh, "datasets/flowing/a.csv") is not None
    assert replica_head(fresh, "datasets/blocked/b.csv") is None
    (entry,) = replication_entries("datasets/blocked/b.csv")
    assert entry.outcome == "failed:not-redriven"
    sent = replication.events_sent[-1]
    assert sent["eventName"] == "Replication:OperationFailedReplication"
    assert sent["replicationEventData"]["failureReason"] == "DstKmsKeyNotFound"
    # And the failover's replication check now waits only for what cannot arrive
    assert check_replication(later, deps()).pending_objects == already + 1
    # And the next verification finds it, and says a retry cannot fix it
    data = next(a for a in verify_workload("fraud-scoring", deps()).assets if a.asset == "training-data")
    assert data.missing >= 1
    codes = {f.code: f for f in data.findings}
    assert "CANNOT" in codes["replication-failed-DstKmsKeyNotFound"].message


def test_slow_replication_reports_the_missed_threshold_then_the_late_arrival(
    fresh: Stack, replication: ReplicationSimulator
) -> None:
    # Given replication slower than the (shortened) Replication Time Control threshold
    replication.rtc_threshold = timedelta(seconds=0.3)
    replication.delay("datasets/slow/*", timedelta(seconds=0.8))
    key = "datasets/slow/big.csv"
    put_source(fresh, key)
    # When it finally replicates
    assert replication.drain(timeout=60)
    # Then S3's two threshold events reached Lifeboat, in order, and the object is no longer pending
    kinds = [r["eventName"] for r in replication.events_sent if "slow/big" in r["s3"]["object"]["key"]]
    assert kinds == ["Replication:OperationMissedThreshold", "Replication:OperationReplicatedAfterThreshold"]
    outcomes = sorted(e.outcome for e in replication_entries(key))
    assert outcomes == ["missed-threshold:recorded", "replicated-after-threshold:recorded"]
    assert key not in deps().asset_states.get("fraud-scoring", "training-data").pending
    assert replica_head(fresh, key) is not None


def test_a_replication_pause_holds_back_a_write_made_just_after_it(
    fresh: Stack, replication: ReplicationSimulator
) -> None:
    # Given replication paused now, in the middle of a second (S3 lists LastModified in whole seconds)
    from localcloud import replication_control

    replication.tick()  # whatever earlier tests left is seen before the pause
    since = utc_now()
    replication_control.pause(since=since)
    try:
        # When the application writes just after the pause (listed with the pause's own whole second)
        key = f"datasets/after-pause/{uuid.uuid4().hex}.csv"
        put_source(fresh, key)
        replication.tick()
        replication.tick(now=utc_now() + timedelta(seconds=5))  # past the lag: it would have replicated
        # Then it did not replicate: nothing written after a pause reaches the replica until it ends
        assert replica_head(fresh, key) is None
    finally:
        replication_control.resume()
    # When the pause ends, it replicates
    assert replication.drain(timeout=60)
    assert replica_head(fresh, key) is not None


def test_the_local_cloud_keeps_point_in_time_recovery_moving_like_aws(fresh: Stack) -> None:
    # Given the feature table, whose restorable time moto froze when PITR was enabled
    from localcloud.replication import refresh_pitr

    ddb = fresh.cloud.client("dynamodb", PRIMARY)

    def latest() -> Any:
        desc = ddb.describe_continuous_backups(TableName="fraud-features")["ContinuousBackupsDescription"]
        return desc["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]

    before = latest()
    # When the simulator refreshes it (it does every 30 s in `lifeboat local up`)
    refresh_pitr([(PRIMARY, "fraud-features")])
    # Then the latest restorable time has moved to about now (this guards the moto internals it relies on)
    assert latest() > before
    assert (utc_now() - latest()).total_seconds() < 5


def test_a_deletion_replicates_as_a_delete_marker_and_is_not_extra(
    fresh: Stack, replication: ReplicationSimulator
) -> None:
    # Given a training file written to the primary and replicated
    key = f"datasets/deleted/{uuid.uuid4().hex}.csv"
    put_source(fresh, key)
    assert replication.drain() and replica_head(fresh, key) is not None
    # When it is deleted in the primary (a delete marker) and replication catches up
    a = data_asset(fresh)
    fresh.cloud.client("s3", PRIMARY).delete_object(Bucket=a.source.bucket, Key=key)
    assert replication.drain()
    # Then the replica hides it behind a delete marker too, its earlier version kept
    assert replica_head(fresh, key) is None
    versions = fresh.cloud.client("s3", SECONDARY).list_object_versions(Bucket=a.replica.bucket, Prefix=key)
    assert len(versions.get("Versions", [])) == 1 and len(versions.get("DeleteMarkers", [])) == 1
    # And the next verification does not report it as extra, nor the rule as leaving deletions behind
    data = next(a for a in verify_workload("fraud-scoring", deps()).assets if a.asset == "training-data")
    assert not [s for s in data.samples if s.key == key.removeprefix(a.source.prefix)]
    assert "deletions-not-replicated" not in {f.code for f in data.findings}


def test_the_local_clouds_replication_rules_read_back_as_provisioned(fresh: Stack) -> None:
    # Given the rule the local cloud provisioned for the training data (moto alone would answer Disabled and
    # the whole bucket)
    a = data_asset(fresh)
    rules = fresh.cloud.client("s3", PRIMARY).get_bucket_replication(Bucket=a.source.bucket)
    (rule,) = [r for r in rules["ReplicationConfiguration"]["Rules"] if r["ID"] == "lifeboat-training-data"]
    # Then deletions replicate and the filter is the asset's prefix
    assert rule["DeleteMarkerReplication"] == {"Status": "Enabled"}
    assert rule["Filter"] == {"Prefix": a.source.prefix}
