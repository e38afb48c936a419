"""Resilience assessment on the local cloud, through Lifeboat's own functions (their IAM roles enforced): the
example plan's bill, and a workload built with every weakness the assessment knows, each one seen.

What the local cloud cannot build: replication rules that miss an asset's prefix (moto answers every rule's
filter as the whole bucket, whatever was put), so that rule is tested in tests/unit/test_assessment.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.models.planfile import load_plan_text
from chalicelib.services import deps as deps_module
from chalicelib.services.assessment import latest_key
from chalicelib.services.deps import deps
from chalicelib.services.status import workload_status
from chalicelib.services.verification.on_demand import verify_workload
from localcloud.resources import names
from localcloud.server import LocalCloud
from localcloud.traffic_kinds import provision_traffic
from tests.api_support import api_client
from tests.integration.stack import EXAMPLE, Stack

ROOT = EXAMPLE.parents[1]
STACK_SETTINGS = {"copy_in_secondary": True}  # Lifeboat's copy in the secondary region, as deployed
PRIMARY, SECONDARY, WEAK_SECONDARY, ELSEWHERE = "us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"
EXAMPLE_BUCKETS = ("fraud-data-use1", "fraud-data-usw2", "fraud-models-use1", "fraud-models-usw2")


def report_of(cloud: LocalCloud, workload: str) -> dict[str, Any]:
    body = cloud.client("s3").get_object(Bucket=names(cloud.stage).evidence_bucket, Key=latest_key(workload))
    return dict(json.loads(body["Body"].read()))


def finding_ids(report: dict[str, Any]) -> set[str]:
    return {f["id"] for f in report["findings"]}


# -- the example plan ----------------------------------------------------------------------------------------
def test_the_example_plan_gets_a_clean_bill_but_for_tls(stack: Stack, local_cloud: LocalCloud) -> None:
    # Given the example workload as the local cloud deploys it (Lifeboat in both regions), its replication
    # measured by a verification run
    stack.fresh()
    verified = verify_workload(stack.plan.workload, deps())
    assert verified.verdict == "green", verified.problems
    # When an operator asks the API for an assessment (as the API function)
    with api_client(cloud=local_cloud) as api:
        response = api.post(f"/workloads/{stack.plan.workload}/assess")
    # Then the only findings are the buckets accepting plain HTTP: legitimate, because the local cloud
    # speaks plain HTTP and moto enforces bucket policies, so a TLS-only policy would lock the local cloud
    # (its functions, its model servers) out of its own buckets. In AWS, add the policy (docs/assess.md).
    assert response.status_code == 200, response.body
    report = response.json_body
    assert finding_ids(report) == {f"bucket-insecure-transport:{b}" for b in EXAMPLE_BUCKETS}
    assert report["counts"] == {"error": 0, "warning": 4, "info": 0}
    # And the estimates are within the objectives, from what the local cloud has
    assert 0 < report["rto"]["estimated_seconds"] < report["rto"]["objective_seconds"]
    parts = {c["name"]: c["seconds"] for c in report["rto"]["components"]}
    assert parts["detection"] == 4  # the local alarms: 2s periods, 2 datapoints
    assert parts["decision"] == 20 and parts["DNS TTL"] == 30
    assert all(r["margin_seconds"] is not None and r["margin_seconds"] >= 0 for r in report["rpo"])
    # And the report is in the evidence bucket, and status shows it in one line
    stored = report_of(local_cloud, stack.plan.workload)
    assert finding_ids(stored) == finding_ids(report) and stored["evidence"]["markdown"].endswith(".md")
    status = workload_status(stack.plan, deps(), probe=False, assessment=True)
    assert status.assessment is not None and status.assessment.startswith("0 error, 4 warning, 0 info;")


def test_a_workload_without_lifeboat_in_its_secondary_region_is_told_so(
    stack: Stack, local_cloud: LocalCloud
) -> None:
    # Given the example plan with the state machine of its secondary copy removed
    sfn = local_cloud.client("stepfunctions", SECONDARY)
    machine = stack.resources.copies[SECONDARY]["failover"]
    definition = sfn.describe_state_machine(stateMachineArn=machine)
    sfn.delete_state_machine(stateMachineArn=machine)
    try:
        with api_client(cloud=local_cloud) as api:
            response = api.post(f"/workloads/{stack.plan.workload}/assess", {"store": False})
        # Then that is an error finding pointing at the secondary region
        found = {f["id"]: f for f in response.json_body["findings"]}
        assert found["lifeboat-missing-in-secondary:us-west-2"]["severity"] == "error"
        assert found["lifeboat-missing-in-secondary:us-west-2"]["plan_path"] == "regions.secondary"
    finally:
        sfn.create_state_machine(
            name=definition["name"], definition=definition["definition"], roleArn=definition["roleArn"]
        )


# -- a workload with every weakness --------------------------------------------------------------------------
WEAK = "weak-scoring"
EXPECTED = {
    "endpoint-single-instance:weak-scorer/AllTraffic@us-east-1": "warning",
    "bucket-unversioned:weak-loose-use1": "error",
    "bucket-unencrypted:weak-loose-use1": "warning",
    "bucket-insecure-transport:weak-loose-use1": "warning",
    "asset-no-replica:orphan-data": "error",
    "replication-no-rtc:slow-data": "warning",
    "bucket-wrong-region:weak-moved-euw1": "error",
    "replica-region-not-allowed:weak-moved-euw1": "error",
    "table-no-pitr:weak-features@us-east-1": "warning",
    "table-no-replica:weak-table": "error",
    "registry-single-region:weak-model": "error",
    "alarm-quorum-one:weak-scoring": "warning",
    "alarm-missing:weak-ghost@us-east-1": "error",
    "dns-ttl-too-long:weak.weak.internal.": "warning",
    "lifeboat-missing-in-secondary:eu-west-1": "error",
    "drill-overdue:weak-scoring": "warning",
    "rto-estimate-breach:weak-scoring": "error",
}


def weak_plan_text() -> str:
    """A plan with SageMaker endpoints, its secondary in a region without Lifeboat, and assets each built
    with one weakness (below)."""
    example = EXAMPLE.read_text()
    smoke = example[example.index("smoke_tests:") : example.index("# Everything the model needs")]
    return f"""version: 1
workload: {WEAK}
tier: critical
regions:
  primary: {PRIMARY}
  secondary: {WEAK_SECONDARY}
  allowed: [{PRIMARY}, {WEAK_SECONDARY}]
endpoints:
  primary: {{kind: sagemaker, endpoint_name: weak-scorer}}
  secondary: {{kind: sagemaker, endpoint_name: weak-scorer}}
traffic:
  kind: route53-weighted
  hosted_zone_name: weak.internal.
  record_name: weak.weak.internal.
  set_identifiers: {{primary: weak-use1, secondary: weak-euw1}}
  ttl: 2m
{smoke}assets:
  - {{name: loose-data, kind: s3, source: {{bucket: weak-loose-use1, prefix: d/}},
      replica: {{bucket: weak-loose-euw1, prefix: d/}}}}
  - {{name: orphan-data, kind: s3, source: {{bucket: weak-orphan-use1, prefix: d/}},
      replica: {{bucket: weak-orphan-euw1, prefix: d/}}}}
  - {{name: slow-data, kind: s3, rpo: 5m, source: {{bucket: weak-slow-use1, prefix: d/}},
      replica: {{bucket: weak-slow-euw1, prefix: d/}}}}
  - {{name: moved-data, kind: s3, rpo: 1h, source: {{bucket: weak-moved-use1, prefix: d/}},
      replica: {{bucket: weak-moved-euw1, prefix: d/}}}}
  - {{name: weak-model, kind: model-registry, registry: s3-manifest, rpo: 1h,
      source: {{bucket: weak-reg-use1, prefix: registry/}},
      replica: {{bucket: weak-reg-euw1, prefix: registry/}}}}
  - {{name: weak-table, kind: dynamodb, table: weak-features, rpo: 1h}}
trigger:
  alarms: [weak-errors, weak-ghost]
  quorum: 1
notifications:
  topic: lifeboat-weak-scoring
drill:
  schedule: monthly
"""


def _bucket(
    cloud: LocalCloud, name: str, region: str, *, versioned: bool = True, encrypted: bool = True
) -> None:
    s3 = cloud.client("s3", region)
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if encrypted:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )


def _replicate(cloud: LocalCloud, source: str, replica: str, *, rtc: bool = True) -> None:
    destination: dict[str, Any] = {"Bucket": f"arn:aws:s3:::{replica}"}
    if rtc:
        destination["ReplicationTime"] = {"Status": "Enabled", "Time": {"Minutes": 15}}
        destination["Metrics"] = {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    rule = {
        "ID": "r",
        "Priority": 1,
        "Status": "Enabled",
        "Filter": {"Prefix": "d/"},
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": destination,
    }
    cloud.client("s3", PRIMARY).put_bucket_replication(
        Bucket=source,
        ReplicationConfiguration={"Role": f"arn:aws:iam::{cloud.account_id}:role/r", "Rules": [rule]},
    )


def _sagemaker(cloud: LocalCloud, region: str, instances: int) -> None:
    sm = cloud.client("sagemaker", region)
    sm.create_model(
        ModelName="weak",
        PrimaryContainer={"Image": f"{cloud.account_id}.dkr.ecr.{region}.amazonaws.com/weak:1"},
        ExecutionRoleArn=f"arn:aws:iam::{cloud.account_id}:role/sagemaker",
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "weak",
        "InitialInstanceCount": instances,
        "InstanceType": "ml.m5.large",
    }
    sm.create_endpoint_config(EndpointConfigName="weak-config", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName="weak-scorer", EndpointConfigName="weak-config")


@pytest.fixture(scope="module")
def weak(local_cloud: LocalCloud) -> Iterator[str]:
    """The weak workload's resources, its plan stored and deployed (the roles grant what it names)."""
    text = weak_plan_text()
    plan = load_plan_text(text, "weak-scoring.yaml")
    _sagemaker(local_cloud, PRIMARY, 1)
    _sagemaker(local_cloud, WEAK_SECONDARY, 2)
    # unversioned, unencrypted source, nothing replicated (versioning is what replication needs first)
    _bucket(local_cloud, "weak-loose-use1", PRIMARY, versioned=False, encrypted=False)
    _bucket(local_cloud, "weak-loose-euw1", WEAK_SECONDARY)
    # two sound buckets and no replication rule
    _bucket(local_cloud, "weak-orphan-use1", PRIMARY)
    _bucket(local_cloud, "weak-orphan-euw1", WEAK_SECONDARY)
    # replication without Replication Time Control, for an RPO of 5 minutes
    _bucket(local_cloud, "weak-slow-use1", PRIMARY)
    _bucket(local_cloud, "weak-slow-euw1", WEAK_SECONDARY)
    _replicate(local_cloud, "weak-slow-use1", "weak-slow-euw1", rtc=False)
    # the replica bucket really lives in a region the plan does not allow
    _bucket(local_cloud, "weak-moved-use1", PRIMARY)
    _bucket(local_cloud, "weak-moved-euw1", ELSEWHERE)
    _replicate(local_cloud, "weak-moved-use1", "weak-moved-euw1")
    # a registry whose manifest exists in the primary region only
    _bucket(local_cloud, "weak-reg-use1", PRIMARY)
    _bucket(local_cloud, "weak-reg-euw1", WEAK_SECONDARY)
    _replicate(local_cloud, "weak-reg-use1", "weak-reg-euw1")
    local_cloud.client("s3", PRIMARY).put_object(Bucket="weak-reg-use1", Key="registry/weak.json", Body=b"{}")
    # a table without point-in-time recovery, and no replica
    local_cloud.client("dynamodb", PRIMARY).create_table(
        TableName="weak-features",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # one alarm of two exists; the DNS records, with the plan's 2-minute TTL
    local_cloud.client("cloudwatch", PRIMARY).put_metric_alarm(
        AlarmName="weak-errors",
        Namespace="Lifeboat/Canary",
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=3,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    provision_traffic(local_cloud, plan)
    local_cloud.iam.deploy_plan(plan)
    n = names(local_cloud.stage)
    s3 = local_cloud.client("s3")
    s3.put_object(
        Bucket=n.plan_bucket, Key=f"plans/{WEAK}.yaml", Body=text.encode(), ServerSideEncryption="AES256"
    )
    deps_module.reset()  # the plan store caches what it read: the functions read the bucket again
    try:
        yield WEAK
    finally:
        s3.delete_object(Bucket=n.plan_bucket, Key=f"plans/{WEAK}.yaml")
        deps_module.reset()


@pytest.fixture(scope="module")
def scheduled_run(stack: Stack, weak: str, local_cloud: LocalCloud) -> dict[str, Any]:
    """The schedule's function, invoked as EventBridge would (its role enforced), assessing every plan."""
    n = names(local_cloud.stage)
    event = json.loads((ROOT / "events" / "eventbridge" / "scheduled-event.json").read_text())
    answer = local_cloud.client("lambda").invoke(
        FunctionName=n.function("assess_scheduled"), Payload=json.dumps(event).encode()
    )
    assert "FunctionError" not in answer, answer["Payload"].read()
    return dict(json.loads(answer["Payload"].read()))


@pytest.mark.parametrize("finding", sorted(EXPECTED))
def test_each_weakness_built_in_the_local_cloud_is_found(
    scheduled_run: dict[str, Any], local_cloud: LocalCloud, finding: str
) -> None:
    # Given the weak workload assessed by the schedule, When its stored report is read
    report = report_of(local_cloud, WEAK)
    found = {f["id"]: f for f in report["findings"]}
    # Then the weakness built for this finding is there, with its severity, evidence and fix
    assert finding in found, sorted(found)
    assert found[finding]["severity"] == EXPECTED[finding]
    assert found[finding]["evidence"] and found[finding]["fix"] and found[finding]["plan_path"]


def test_the_schedule_assesses_every_plan_and_nothing_unread_passes(
    scheduled_run: dict[str, Any], local_cloud: LocalCloud
) -> None:
    # Then both workloads were assessed by the schedule (no failure), each report says so
    assert set(scheduled_run) >= {WEAK, "fraud-scoring"}
    assert all("counts" in outcome for outcome in scheduled_run.values()), scheduled_run
    report = report_of(local_cloud, WEAK)
    assert report["trigger"] == "schedule"
    # And the function's role could read everything: no finding says something was unreadable
    assert not [f for f in report["findings"] if f["rule"] == "unreadable"]
    # And the secondary SageMaker variant, on two instances, is not flagged
    assert "endpoint-single-instance:weak-scorer/AllTraffic@eu-west-1" not in finding_ids(report)


def test_the_schedule_is_a_rule_of_the_local_cloud(local_cloud: LocalCloud) -> None:
    rule = local_cloud.client("events").describe_rule(
        Name=names(local_cloud.stage).event_rule("assess_scheduled")
    )
    assert rule["ScheduleExpression"] == "rate(6 hours)" and rule["State"] == "ENABLED"


def test_the_cli_exits_by_the_worst_finding(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lifeboat_cli import main as cli

    # Given the CLI talking to this local cloud in-process (its own copy's settings)
    monkeypatch.setattr(cli.clouds, "select", lambda *_: None)
    # When the example workload is assessed: its 4 warnings (TLS) pass at --fail-on error, fail at warning
    assert cli.main(["assess", stack.plan.workload, "--fail-on", "error", "--no-store"]) == 0
    capsys.readouterr()
    assert cli.main(["assess", stack.plan.workload, "--json", "--no-store"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["warning"] == 4 and report["evidence"] == {}
    # And an unknown workload is a usage error
    assert cli.main(["assess", "no-such-workload"]) == 2
