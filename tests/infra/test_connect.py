"""`lifeboat connect`: wiring a plan's buckets into Lifeboat, against the local cloud (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import build
from lifeboat_cli import main as cli
from lifeboat_cli.connect import NOTIFICATION_ID, ConnectError, Connector, find_asset, queue_arn_by_name
from localcloud.resources import names, provision_base
from localcloud.server import LocalCloud

SOURCE, REPLICA = "fraud-data-use1", "fraud-data-usw2"
EXAMPLE = build.ROOT / "plans" / "fraud-scoring.yaml"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    local = LocalCloud()
    local.start()
    try:
        provision_base(local, stage=local.stage, wire_event_sources=False)  # Lifeboat's queue in us-east-1
        yield local
    finally:
        local.stop()


def _bucket(cloud: LocalCloud, name: str, region: str, *, encrypted: bool) -> None:
    s3 = cloud.client("s3", region)
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if encrypted:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
            },
        )


@pytest.fixture(scope="module")
def data_owner_setup(cloud: LocalCloud) -> dict[str, str]:
    """The buckets as their owner made them: replication without metrics, an existing notification, and a
    replica without default encryption."""
    _bucket(cloud, SOURCE, "us-east-1", encrypted=True)
    _bucket(cloud, REPLICA, "us-west-2", encrypted=False)
    s3 = cloud.client("s3")
    s3.put_bucket_replication(
        Bucket=SOURCE,
        ReplicationConfiguration={
            "Role": "arn:aws:iam::123456789012:role/replication",
            "Rules": [
                {
                    "ID": "datasets",
                    "Priority": 1,
                    "Status": "Enabled",
                    "Filter": {"Prefix": "datasets/"},
                    "DeleteMarkerReplication": {"Status": "Enabled"},
                    "Destination": {"Bucket": f"arn:aws:s3:::{REPLICA}"},
                }
            ],
        },
    )
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="data-team-ingest")["QueueUrl"]
    theirs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=SOURCE,
        NotificationConfiguration={
            "QueueConfigurations": [{"Id": "ingest", "QueueArn": theirs, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return {"their_queue": theirs}


def _plans() -> list[Any]:
    return build.load_plans(build.ROOT / "plans")


def _connector(cloud: LocalCloud) -> Connector:
    return Connector(cloud.client, queue_arn_by_name(cloud.client, names(cloud.stage).replication_queue))


def test_connect_enables_metrics_and_events_and_reports_what_is_missing(
    cloud: LocalCloud, data_owner_setup: dict[str, str]
) -> None:
    # Given the training-data asset of the example plan
    plan, asset = find_asset(_plans(), "fraud-scoring/training-data")
    # When it is connected
    checks = {(c.subject, c.check): c for c in _connector(cloud).connect(plan, asset)}
    # Then replication metrics are on and replication events go to Lifeboat's queue
    assert checks[(SOURCE, "replication-metrics")].status == "changed"
    rule = cloud.client("s3").get_bucket_replication(Bucket=SOURCE)["ReplicationConfiguration"]["Rules"][0]
    assert rule["Destination"]["Metrics"]["Status"] == "Enabled"
    assert checks[(SOURCE, "replication-events")].status == "changed"
    notifications = cloud.client("s3").get_bucket_notification_configuration(Bucket=SOURCE)
    by_id = {q["Id"]: q for q in notifications["QueueConfigurations"]}
    ours = cloud.resources["queue_arn"]
    assert by_id[NOTIFICATION_ID]["QueueArn"] == ours
    assert by_id[NOTIFICATION_ID]["Events"] == ["s3:Replication:*"]
    # And the bucket's own notification is still there
    assert by_id["ingest"]["QueueArn"] == data_owner_setup["their_queue"]
    # And the missing default encryption of the replica is reported, not changed
    assert checks[(REPLICA, "encryption")].status == "missing"
    assert checks[(SOURCE, "encryption")].status == "ok"
    assert checks[(SOURCE, "versioning")].status == checks[(REPLICA, "versioning")].status == "ok"


def test_connect_is_idempotent(cloud: LocalCloud, data_owner_setup: dict[str, str]) -> None:
    # Given an asset connected once
    plan, asset = find_asset(_plans(), "fraud-scoring/training-data")
    connector = _connector(cloud)
    connector.connect(plan, asset)
    before = cloud.client("s3").get_bucket_notification_configuration(Bucket=SOURCE)["QueueConfigurations"]
    # When it is connected again
    checks = connector.connect(plan, asset)
    # Then nothing changes
    assert [c.status for c in checks if c.status == "changed"] == []
    after = cloud.client("s3").get_bucket_notification_configuration(Bucket=SOURCE)["QueueConfigurations"]
    assert after == before and len(after) == 2


def test_unknown_asset_is_a_usage_error() -> None:
    with pytest.raises(ConnectError, match="no plan has an asset 'nope'"):
        find_asset(_plans(), "nope")


def test_the_cli_verb_connects_against_the_local_cloud(
    cloud: LocalCloud, data_owner_setup: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given the model-artifacts asset (its buckets exist, not yet replicated)
    _bucket(cloud, "fraud-models-use1", "us-east-1", encrypted=True)
    _bucket(cloud, "fraud-models-usw2", "us-west-2", encrypted=True)
    # When an operator runs `lifeboat --json connect fraud-scoring/model-artifacts --plans plans`
    # (the CLI reads the local cloud's address from its state file; point it at this one instead)
    args = cli.parser().parse_args(
        ["--json", "connect", "fraud-scoring/model-artifacts", "--plans", str(EXAMPLE.parent)]
    )
    code = args.func(args)
    out = json.loads(capsys.readouterr().out)
    # Then it exits 1 (something is missing: no replication rule) and reports each check
    assert code == 1
    statuses = {(c["subject"], c["check"]): c["status"] for c in out}
    assert statuses[("fraud-models-use1", "replication-metrics")] == "missing"
    assert statuses[("fraud-models-use1", "replication-events")] == "changed"
