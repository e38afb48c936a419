"""Resilience assessment: the reader on in-process moto (the example plan's world, then one weakness at a
time), the rules and estimates as pure functions, the plan's allowed regions, the CLI's exit code, and the
use case (history into the estimates, stored reports, metrics)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.adapters.assessment import AssessmentReader, secure_transport_required
from chalicelib.domain.assessment import BENCH_AUTOMATION_SECONDS, assess, estimate_rto, render_markdown
from chalicelib.models.assessment import (
    AssessmentFacts,
    AssetMeasurement,
    DrillRun,
    Unreadable,
)
from chalicelib.models.ledger import LedgerEntry, WorkloadState
from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_file, load_plan_text
from chalicelib.models.replication import AssetReplicationState
from chalicelib.services import assessment as uc
from lifeboat_cli.assess_cmd import exit_code
from tests.unit.fakes import FakeLedger
from tests.unit.moto_aws import ClientFor, bucket, table

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "plans" / "fraud-scoring.yaml"
PRIMARY, SECONDARY = "us-east-1", "us-west-2"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MACHINE = "lifeboat-dev-fraud-scoring-failover"
TLS_ONLY = {
    "Statement": [
        {
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
}


def example() -> DRPlan:
    return load_plan_file(EXAMPLE)


def healthy_bucket(aws: ClientFor, name: str, region: str, *, tls_only: bool = True) -> None:
    bucket(aws, name, region)
    s3 = aws("s3", region)
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    if tls_only:
        require_tls(aws, name, region)


def require_tls(aws: ClientFor, name: str, region: str) -> None:
    # moto enforces it: the in-process clients speak plain HTTP, so objects go in before the policy
    policy = json.loads(json.dumps(TLS_ONLY).replace(":::b", f":::{name}"))
    aws("s3", region).put_bucket_policy(Bucket=name, Policy=json.dumps(policy))


def rule(rule_id: str, prefix: str, dest: str, *, rtc: bool = True) -> dict[str, Any]:
    destination: dict[str, Any] = {"Bucket": f"arn:aws:s3:::{dest}"}
    if rtc:
        destination["ReplicationTime"] = {"Status": "Enabled", "Time": {"Minutes": 15}}
        destination["Metrics"] = {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    return {
        "ID": rule_id,
        "Priority": 1,
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": destination,
    }


def replicate(aws: ClientFor, source: str, rules: list[dict[str, Any]]) -> None:
    for index, r in enumerate(rules):
        r["Priority"] = index + 1
    aws("s3", PRIMARY).put_bucket_replication(
        Bucket=source, ReplicationConfiguration={"Role": "arn:aws:iam::123456789012:role/r", "Rules": rules}
    )


@pytest.fixture
def world(aws: ClientFor) -> ClientFor:
    """The example plan's resources as a well-run account has them."""
    buckets = (
        ("fraud-data-use1", PRIMARY),
        ("fraud-models-use1", PRIMARY),
        ("fraud-data-usw2", SECONDARY),
        ("fraud-models-usw2", SECONDARY),
    )
    for name, region in buckets:
        healthy_bucket(aws, name, region, tls_only=False)
    replicate(aws, "fraud-data-use1", [rule("data", "datasets/", "fraud-data-usw2")])
    replicate(
        aws,
        "fraud-models-use1",
        [rule("models", "models/", "fraud-models-usw2"), rule("registry", "registry/", "fraud-models-usw2")],
    )
    for name, region in (("fraud-models-use1", PRIMARY), ("fraud-models-usw2", SECONDARY)):
        aws("s3", region).put_object(Bucket=name, Key="registry/fraud.json", Body=b"{}")
    for name, region in buckets:
        require_tls(aws, name, region)
    table(aws, "fraud-features", PRIMARY)
    table(aws, "fraud-features", SECONDARY)
    for alarm in ("fraud-scoring-use1-errors", "fraud-scoring-use1-latency", "fraud-scoring-use1-canary"):
        aws("cloudwatch", PRIMARY).put_metric_alarm(
            AlarmName=alarm,
            Namespace="Lifeboat/Canary",
            MetricName="Errors",
            Statistic="Sum",
            Period=10,
            EvaluationPeriods=3,
            DatapointsToAlarm=2,
            Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    route53 = aws("route53", PRIMARY)
    zone = route53.create_hosted_zone(Name="lifeboat.internal.", CallerReference="z")["HostedZone"]["Id"]
    changes = [
        {
            "Action": "UPSERT",
            "ResourceRecordSet": {
                "Name": "fraud.lifeboat.internal.",
                "Type": "CNAME",
                "SetIdentifier": ident,
                "Weight": weight,
                "TTL": 30,
                "ResourceRecords": [{"Value": f"{ident}.example.com"}],
            },
        }
        for ident, weight in (("fraud-scoring-us-east-1", 100), ("fraud-scoring-us-west-2", 0))
    ]
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
    aws("stepfunctions", SECONDARY).create_state_machine(
        name=MACHINE,
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )
    return aws


def run(aws: ClientFor, plan: DRPlan | None = None, **history: Any) -> Any:
    plan = plan or example()
    facts = AssessmentFacts(workload=plan.workload, read_at=NOW)
    for key, value in history.items():
        setattr(facts.history, key, value)
    AssessmentReader(aws).gather(plan, facts, state_machines=[MACHINE])
    return assess(plan, facts, now=NOW), facts


def ids(report: Any) -> set[str]:
    return {f.id for f in report.findings}


def measured(plan: DRPlan, seconds: float = 2.0) -> list[AssetMeasurement]:
    return [
        AssetMeasurement(asset=a.name, seconds=seconds, at=NOW, source="verification") for a in plan.assets
    ]


# -- the example world -------------------------------------------------------------------------------------
def test_the_example_plan_in_a_well_run_account_gets_a_clean_bill(world: ClientFor) -> None:
    # Given the example plan's resources as a well-run account has them, and measured replication
    plan = example()
    # When it is assessed
    report, facts = run(world, plan, measurements=measured(plan))
    # Then there is nothing to report, and the estimates come from what was read
    assert report.findings == [], [f.id for f in report.findings]
    assert facts.unreadable == []
    parts = {c.name: c.seconds for c in report.rto.components}
    assert parts["detection"] == 20  # the 2nd fastest alarm: period 10s x 2 datapoints
    assert parts["DNS TTL"] == 30 and parts["decision"] == 20 and parts["replication wait"] == 2
    assert report.rto.margin_seconds == report.rto.objective_seconds - report.rto.estimated_seconds > 0
    assert all(r.estimated_seconds == 2 and r.margin_seconds and r.margin_seconds > 0 for r in report.rpo)


def test_never_measured_replication_is_said_not_passed(world: ClientFor) -> None:
    # Given the same world with no replication measurement
    report, _ = run(world)
    # Then each asset's RPO is unmeasured (info), and the replication wait is its bound
    assert ids(report) == {f"rpo-unmeasured:{a.name}" for a in example().assets}
    assert {f.severity for f in report.findings} == {"info"}
    assert exit_code(report, "warning") == 0 and exit_code(report, "info") == 1
    wait = next(c for c in report.rto.components if c.name == "replication wait")
    assert wait.seconds == 60


# -- weaknesses, one at a time -------------------------------------------------------------------------------
def test_an_unversioned_unencrypted_bucket_without_a_tls_policy_is_three_findings(world: ClientFor) -> None:
    # Given the replica bucket with versioning suspended, no default encryption and no policy
    s3 = world("s3", SECONDARY)
    s3.put_bucket_versioning(Bucket="fraud-data-usw2", VersioningConfiguration={"Status": "Suspended"})
    s3.delete_bucket_encryption(Bucket="fraud-data-usw2")
    s3.delete_bucket_policy(Bucket="fraud-data-usw2")
    # When assessed
    report, _ = run(world, measurements=measured(example()))
    # Then each is a finding about that bucket, pointing at the plan's replica
    found = {f.id: f for f in report.findings}
    assert set(found) >= {
        "bucket-unversioned:fraud-data-usw2",
        "bucket-unencrypted:fraud-data-usw2",
        "bucket-insecure-transport:fraud-data-usw2",
    }
    assert found["bucket-unversioned:fraud-data-usw2"].severity == "error"
    assert found["bucket-unversioned:fraud-data-usw2"].plan_path == "assets[0].replica"
    assert "Suspended" in found["bucket-unversioned:fraud-data-usw2"].evidence


def test_an_asset_nothing_replicates_has_no_replica(world: ClientFor) -> None:
    # Given the data bucket's replication removed
    world("s3", PRIMARY).delete_bucket_replication(Bucket="fraud-data-use1")
    report, _ = run(world, measurements=measured(example()))
    assert "asset-no-replica:training-data" in ids(report)


def test_a_replica_bucket_that_does_not_exist_means_one_region_holds_the_data(aws: ClientFor) -> None:
    # Given only the source bucket of an asset
    healthy_bucket(aws, "fraud-data-use1", PRIMARY)
    plan = example().model_copy(update={"assets": [example().assets[0]]})
    report, _ = run(aws, plan)
    assert "asset-no-replica:fraud-data-usw2" in ids(report)


class StoredFilters:
    """moto answers every replication rule with Filter {"Prefix": ""}, whatever was put; S3 answers the
    filter as stored. This S3 client answers the rules as S3 would (the rest is moto's)."""

    def __init__(self, s3: Any, rules: list[dict[str, Any]]) -> None:
        self._s3, self._rules = s3, rules

    def get_bucket_replication(self, Bucket: str) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        self._s3.get_bucket_replication(Bucket=Bucket)
        return {"ReplicationConfiguration": {"Role": "r", "Rules": self._rules}}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def test_rules_that_miss_the_asset_prefix_do_not_replicate_it(world: ClientFor) -> None:
    # Given the data bucket's only rule to the replica filtering on archive/ (the asset is datasets/)
    rules = [rule("other", "archive/", "fraud-data-usw2")]

    def client(service: str, region: str) -> Any:
        real = world(service, region)
        return StoredFilters(real, rules) if (service, region) == ("s3", PRIMARY) else real

    report, _ = run(client, example().model_copy(update={"assets": [example().assets[0]]}))
    found = {f.id: f for f in report.findings}
    # Then the asset is not replicated, and the evidence names the filter
    assert "replication-prefix-not-covered:training-data" in found
    assert "'archive/'" in found["replication-prefix-not-covered:training-data"].evidence
    # And a rule whose filter is a prefix of the asset's covers it
    rules[:] = [rule("data", "data", "fraud-data-usw2")]
    report, _ = run(client, example().model_copy(update={"assets": [example().assets[0]]}))
    assert "replication-prefix-not-covered:training-data" not in {f.id for f in report.findings}


def test_no_rtc_matters_only_below_fifteen_minutes(world: ClientFor) -> None:
    # Given both S3 assets replicated without Replication Time Control
    replicate(world, "fraud-data-use1", [rule("data", "datasets/", "fraud-data-usw2", rtc=False)])
    replicate(
        world,
        "fraud-models-use1",
        [
            rule("models", "models/", "fraud-models-usw2", rtc=False),
            rule("registry", "registry/", "fraud-models-usw2"),
        ],
    )
    report, _ = run(world, measurements=measured(example()))
    # Then the model artifacts (RPO 1m) are flagged, the training data (RPO 15m) is not
    assert "replication-no-rtc:model-artifacts" in ids(report)
    assert "replication-no-rtc:training-data" not in ids(report)


def test_tables_without_pitr_or_replica(aws: ClientFor) -> None:
    # Given the feature table in the primary only, without PITR
    table(aws, "fraud-features", PRIMARY, pitr=False)
    plan = example().model_copy(update={"assets": [example().assets[3]]})
    report, _ = run(aws, plan)
    assert {"table-no-pitr:fraud-features@us-east-1", "table-no-replica:features"} <= ids(report)


def test_a_registry_in_one_region_only(world: ClientFor) -> None:
    s3 = world("s3", SECONDARY)
    s3.delete_bucket_policy(Bucket="fraud-models-usw2")
    versions = s3.list_object_versions(Bucket="fraud-models-usw2", Prefix="registry/")["Versions"]
    for v in versions:
        s3.delete_object(Bucket="fraud-models-usw2", Key=v["Key"], VersionId=v["VersionId"])
    require_tls(world, "fraud-models-usw2", SECONDARY)
    report, _ = run(world, measurements=measured(example()))
    assert "registry-single-region:fraud-model" in ids(report)


def test_a_single_alarm_can_trip_and_a_missing_one_cannot_count(world: ClientFor) -> None:
    plan = example()
    trigger = plan.trigger.model_copy(update={"quorum": 1, "alarms": [*plan.trigger.alarms, "ghost"]})
    report, _ = run(world, plan.model_copy(update={"trigger": trigger}), measurements=measured(plan))
    assert {"alarm-quorum-one:fraud-scoring", "alarm-missing:ghost@us-east-1"} <= ids(report)
    assert "alarm-quorum-unreachable:fraud-scoring" not in ids(report)


def test_a_dns_ttl_too_long_for_the_rto(world: ClientFor) -> None:
    # Given live records with a 2-minute TTL and an RTO of 5 minutes
    route53 = world("route53", PRIMARY)
    zone = route53.list_hosted_zones()["HostedZones"][0]["Id"]
    records = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    changes = [
        {"Action": "UPSERT", "ResourceRecordSet": {**r, "TTL": 120}}
        for r in records
        if r.get("SetIdentifier")
    ]
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
    report, _ = run(world, measurements=measured(example()))
    found = {f.id: f for f in report.findings}
    finding = found["dns-ttl-too-long:fraud.lifeboat.internal."]
    assert finding.severity == "warning" and "TTL 120s" in finding.evidence
    assert next(c for c in report.rto.components if c.name == "DNS TTL").seconds == 120


def test_lifeboat_missing_in_the_secondary_region(world: ClientFor) -> None:
    sfn = world("stepfunctions", SECONDARY)
    for machine in sfn.list_state_machines()["stateMachines"]:
        sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
    report, _ = run(world, measurements=measured(example()))
    assert "lifeboat-missing-in-secondary:us-west-2" in ids(report)


def test_replicas_outside_the_allowed_regions(aws: ClientFor) -> None:
    # Given a plan allowing us-east-1 and us-west-2, whose replica bucket really lives in eu-west-1
    healthy_bucket(aws, "fraud-data-use1", PRIMARY)
    healthy_bucket(aws, "fraud-data-usw2", "eu-west-1")
    replicate(aws, "fraud-data-use1", [rule("data", "datasets/", "fraud-data-usw2")])
    plan = example()
    regions = plan.regions.model_copy(update={"allowed": [PRIMARY, SECONDARY]})
    plan = plan.model_copy(update={"assets": [plan.assets[0]], "regions": regions})
    report, _ = run(aws, plan)
    found = {f.id: f for f in report.findings}
    assert found["replica-region-not-allowed:fraud-data-usw2"].plan_path == "regions.allowed"
    assert "bucket-wrong-region:fraud-data-usw2" in found


def test_a_single_instance_sagemaker_variant(aws: ClientFor) -> None:
    # Given SageMaker endpoints: one instance in the primary, two in the secondary
    for region, count in ((PRIMARY, 1), (SECONDARY, 2)):
        sm = aws("sagemaker", region)
        sm.create_model(
            ModelName="fraud",
            PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:1"},
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
        )
        sm.create_endpoint_config(
            EndpointConfigName="fraud-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "fraud",
                    "InitialInstanceCount": count,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sm.create_endpoint(EndpointName="fraud-scorer", EndpointConfigName="fraud-config")
    text = EXAMPLE.read_text().replace(
        "    kind: http\n    url: http://127.0.0.1:0/invocations",
        "    kind: sagemaker\n    endpoint_name: fraud-scorer",
    )
    plan = load_plan_text(text, "sagemaker.yaml").model_copy(update={"assets": []})
    report, facts = run(aws, plan)
    assert "endpoint-single-instance:fraud-scorer/AllTraffic@us-east-1" in ids(report)
    assert "endpoint-single-instance:fraud-scorer/AllTraffic@us-west-2" not in ids(report)
    assert {(v.region, v.instance_count) for v in facts.variants} == {(PRIMARY, 1), (SECONDARY, 2)}


def test_a_sagemaker_endpoint_or_variant_that_does_not_exist(aws: ClientFor) -> None:
    # Given a primary endpoint whose only variant is not the one the plan names, and no secondary endpoint
    sm = aws("sagemaker", PRIMARY)
    sm.create_model(
        ModelName="fraud",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:1"},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
    )
    variant = {
        "VariantName": "Old",
        "ModelName": "fraud",
        "InitialInstanceCount": 2,
        "InstanceType": "ml.m5.large",
    }
    sm.create_endpoint_config(EndpointConfigName="fraud-config", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName="fraud-scorer", EndpointConfigName="fraud-config")
    text = EXAMPLE.read_text().replace(
        "    kind: http\n    url: http://127.0.0.1:0/invocations",
        "    kind: sagemaker\n    endpoint_name: fraud-scorer\n    variant_name: AllTraffic",
    )
    plan = load_plan_text(text, "sagemaker.yaml").model_copy(update={"assets": []})
    report, facts = run(aws, plan)
    # Then both are errors, and neither is merely unreadable
    found = {f.id: f for f in report.findings}
    assert found["endpoint-missing:fraud-scorer/AllTraffic@us-east-1"].evidence.endswith(
        "no variant AllTraffic"
    )
    assert found["endpoint-missing:fraud-scorer/AllTraffic@us-west-2"].severity == "error"
    assert not [f for f in report.findings if f.rule == "unreadable" and "SageMaker" in f.id]


def test_what_cannot_be_read_is_a_finding_not_a_pass(world: ClientFor) -> None:
    # Given a reader whose S3 client in the secondary region is denied everything
    class Denied:
        def __getattr__(self, name: str) -> Any:
            def call(**_: Any) -> Any:
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, name)

            return call

    def client(service: str, region: str) -> Any:
        return Denied() if (service, region) == ("s3", SECONDARY) else world(service, region)

    report, facts = run(client, measurements=measured(example()))
    # Then every unread setting is a warning naming it, and none of them passes as sound
    assert facts.unreadable
    assert "unreadable:bucket fraud-data-usw2 location" in ids(report)
    assert "unreadable:registry manifests s3://fraud-models-usw2/registry/ (us-west-2)" in ids(report)
    assert all(f.severity == "warning" for f in report.findings if f.rule == "unreadable")
    assert exit_code(report, "warning") == 1


# -- pure rules and estimates ------------------------------------------------------------------------------
def test_the_secure_transport_policy_is_recognised_only_as_a_deny_for_everyone() -> None:
    assert secure_transport_required(TLS_ONLY)
    allow = json.loads(json.dumps(TLS_ONLY).replace('"Deny"', '"Allow"'))
    assert not secure_transport_required(allow)
    one_action = json.loads(json.dumps(TLS_ONLY).replace('"s3:*"', '"s3:GetObject"'))
    assert not secure_transport_required(one_action)
    assert not secure_transport_required({"Statement": []})


def bare_facts(plan: DRPlan, **history: Any) -> AssessmentFacts:
    facts = AssessmentFacts(workload=plan.workload, read_at=NOW)
    for key, value in history.items():
        setattr(facts.history, key, value)
    return facts


def test_the_rto_estimate_uses_the_last_drills_when_there_are_some() -> None:
    # Given three drills measuring 40s, 50s and 90s (first alarm -> validated)
    plan = example()
    drills = [
        DrillRun(at=NOW - timedelta(days=d), verdict="passed", rto_seconds=s)
        for d, s in ((1, 40), (2, 50), (3, 90))
    ]
    estimate = estimate_rto(plan, bare_facts(plan, drills=drills))
    # Then their median stands for decision and automation, and nothing modelled is added
    parts = {c.name: c for c in estimate.components}
    assert parts["decision + automation"].seconds == 50 and "3 drill" in parts["decision + automation"].basis
    assert "automation" not in parts and "decision" not in parts


def test_without_history_the_rto_is_modelled_from_the_plan() -> None:
    plan = example()
    estimate = estimate_rto(plan, bare_facts(plan))
    parts = {c.name: c.seconds for c in estimate.components}
    assert parts["automation"] == BENCH_AUTOMATION_SECONDS
    assert parts["confirmation probe"] == 2 and parts["replication wait"] == 60
    assert parts["detection"] == 0  # no alarm read: unknown, and said so in its basis


def test_an_estimate_over_the_objective_is_an_error() -> None:
    plan = example()
    drills = [DrillRun(at=NOW, verdict="breached", rto_seconds=400)]
    report = assess(plan, bare_facts(plan, drills=drills, measurements=measured(plan, 120)), now=NOW)
    assert {"rto-estimate-breach:fraud-scoring", "rpo-estimate-breach:model-artifacts"} <= ids(report)
    assert "rpo-estimate-breach:training-data" not in ids(report)  # 120s is within its 15m
    assert report.rto.margin_seconds < 0


def test_the_newest_measurement_of_an_asset_is_its_estimate() -> None:
    plan = example()
    older = AssetMeasurement(
        asset="training-data", seconds=500, at=NOW - timedelta(hours=2), source="verification"
    )
    newer = AssetMeasurement(asset="training-data", seconds=3, at=NOW, source="replication-events")
    report = assess(plan, bare_facts(plan, measurements=[older, newer]), now=NOW)
    estimate = next(r for r in report.rpo if r.asset == "training-data")
    assert estimate.estimated_seconds == 3 and "replication-events" in estimate.basis


def test_a_monthly_drill_schedule_with_an_old_drill_is_overdue() -> None:
    plan = example()
    plan = plan.model_copy(update={"drill": plan.drill.model_copy(update={"schedule": "monthly"})})
    recent = [DrillRun(at=NOW - timedelta(days=10), verdict="passed", rto_seconds=50)]
    old = [DrillRun(at=NOW - timedelta(days=45), verdict="passed", rto_seconds=50)]
    assert "drill-overdue:fraud-scoring" not in ids(assess(plan, bare_facts(plan, drills=recent), now=NOW))
    overdue = assess(plan, bare_facts(plan, drills=old), now=NOW)
    assert "drill-overdue:fraud-scoring" in ids(overdue)
    assert "45 days ago" in next(f.evidence for f in overdue.findings if f.rule == "drill-overdue")


def test_findings_are_ordered_by_severity_and_render_as_markdown() -> None:
    plan = example()
    facts = bare_facts(plan, drills=[DrillRun(at=NOW, verdict="passed", rto_seconds=400)])
    facts.unreadable.append(
        Unreadable(subject="bucket x policy", plan_path="assets[0]", error="AccessDenied: no")
    )
    report = assess(plan, facts, now=NOW)
    ranks = [f.severity for f in report.findings]
    assert ranks == sorted(ranks, key=["error", "warning", "info"].index)
    text = render_markdown(report)
    assert "# Resilience assessment: fraud-scoring" in text and "`unreadable:bucket x policy`" in text
    assert report.summary().startswith(f"{report.counts['error']} error, ")


# -- the plan's allowed regions ----------------------------------------------------------------------------
def with_allowed(allowed: str) -> str:
    text = EXAMPLE.read_text()
    assert "  allowed: [us-east-1, us-west-2]" in text
    return text.replace("  allowed: [us-east-1, us-west-2]", f"  allowed: {allowed}")


def test_allowed_regions_must_hold_both_of_the_plans_regions() -> None:
    assert load_plan_text(with_allowed("[us-east-1, us-west-2, eu-west-1]"), "p.yaml").regions.allowed
    with pytest.raises(ValueError, match="must include the secondary region us-west-2"):
        load_plan_text(with_allowed("[us-east-1]"), "p.yaml")
    with pytest.raises(ValueError, match="unknown AWS region"):
        load_plan_text(with_allowed("[us-east-1, us-west-2, mars-1]"), "p.yaml")
    with pytest.raises((ValueError, ValidationError), match="more than once"):
        load_plan_text(with_allowed("[us-east-1, us-west-2, us-east-1]"), "p.yaml")


def test_s3_replication_metrics_measure_the_lag(world: ClientFor) -> None:
    # Given S3's ReplicationLatency for the training data's rule: 40s, then 7s five minutes ago
    for seconds, ago in ((40, 20), (7, 5)):
        world("cloudwatch", PRIMARY).put_metric_data(
            Namespace="AWS/S3",
            MetricData=[
                {
                    "MetricName": "ReplicationLatency",
                    "Dimensions": [
                        {"Name": "SourceBucket", "Value": "fraud-data-use1"},
                        {"Name": "DestinationBucket", "Value": "fraud-data-usw2"},
                        {"Name": "RuleId", "Value": "data"},
                    ],
                    "Timestamp": NOW - timedelta(minutes=ago),
                    "Value": seconds,
                    "Unit": "Seconds",
                }
            ],
        )
    # When assessed
    report, facts = run(world)
    # Then the newest datapoint is the asset's measured lag, and its RPO estimate
    metric = [m for m in facts.history.measurements if m.source == "replication-metrics"]
    assert [(m.asset, m.seconds) for m in metric] == [("training-data", 7.0)]
    estimate = next(r for r in report.rpo if r.asset == "training-data")
    assert estimate.estimated_seconds == 7 and "replication-metrics" in estimate.basis
    assert "rpo-unmeasured:training-data" not in ids(report)


# -- the use case (fakes for what Lifeboat owns, moto for the workload) -----------------------------------
@dataclass
class FakeEvidence:
    bucket: str = "evidence"
    objects: dict[str, Any] = field(default_factory=dict)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_json(self, key: str, data: Any) -> str:
        self.objects[key] = json.loads(json.dumps(data))
        return self.uri(key)

    def put_text(self, key: str, text: str) -> str:
        self.objects[key] = text
        return self.uri(key)

    def get_json(self, key: str) -> Any:
        return self.objects.get(key)


class FakePlans:
    def all(self) -> list[Any]:
        return [example()]

    def get(self, workload: str) -> Any:
        return example()


class BrokenLedger:
    def entries(self, *_: Any, **__: Any) -> list[LedgerEntry]:
        raise RuntimeError("ledger table unreachable")


def deps_with(aws: ClientFor, ledger: Any, states: list[AssetReplicationState]) -> Any:
    return SimpleNamespace(
        plans=FakePlans(),
        ledger=ledger,
        asset_states=SimpleNamespace(all=lambda workload: states),
        evidence=FakeEvidence(),
        executions=SimpleNamespace(state_machine_name=lambda workload, kind: MACHINE),
        assessment=AssessmentReader(aws),
        clock=lambda: NOW,
    )


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float, dict[str, str]]]:
    seen: list[tuple[str, float, dict[str, str]]] = []
    monkeypatch.setattr(
        uc, "emit", lambda name, value, unit="Count", **dims: seen.append((name, value, dims))
    )
    return seen


def test_a_scheduled_run_stores_the_report_and_emits_a_metric_per_severity(
    world: ClientFor, metrics: list[Any]
) -> None:
    # Given a drill on record and replication measured by events
    ledger = FakeLedger(state=WorkloadState(workload="fraud-scoring"))
    ledger.record(
        "fraud-scoring",
        "drill",
        "passed",
        "drill d1",
        detail={"started_at": NOW.isoformat(), "rto_seconds": 45.0},
    )
    states = [
        AssetReplicationState(
            workload="fraud-scoring",
            asset=a.name,
            measured_rpo_seconds=3.0,
            measured_at=NOW,
            measured_by="events",
        )
        for a in example().assets
    ]
    d = deps_with(world, ledger, states)
    # When the schedule runs
    outcome = uc.assess_scheduled(d)
    # Then the workload was assessed clean, with the drill's RTO and the events' lag in its estimates
    assert outcome["fraud-scoring"]["counts"] == {"error": 0, "warning": 0, "info": 0}
    stored = d.evidence.objects[uc.latest_key("fraud-scoring")]
    assert stored["trigger"] == "schedule" and stored["last_drill_at"].startswith("2026-05-01")
    parts = {c["name"]: c["seconds"] for c in stored["rto"]["components"]}
    assert parts["decision + automation"] == 45
    assert {r["estimated_seconds"] for r in stored["rpo"]} == {3.0}
    # And the JSON and Markdown reports are there under the run's time
    assert {k for k in d.evidence.objects if k.endswith(".md")} == {
        "assessment/fraud-scoring/20260501T120000Z.md"
    }
    # And one metric per severity, zero included
    assert [(n, v, dims["severity"]) for n, v, dims in metrics] == [
        ("AssessmentFindings", 0, "error"),
        ("AssessmentFindings", 0, "warning"),
        ("AssessmentFindings", 0, "info"),
    ]
    # And status's line reads the stored report
    summary = uc.last_summary("fraud-scoring", d)
    assert summary is not None and summary.startswith("0 error, 0 warning, 0 info; RTO est.")


def test_a_ledger_that_cannot_be_read_is_a_finding_not_a_failure(
    world: ClientFor, metrics: list[Any]
) -> None:
    d = deps_with(world, BrokenLedger(), [])
    report = uc.assess_plan(example(), d, store=False)
    assert "unreadable:the ledger" in {f.id for f in report.findings}
    assert d.evidence.objects == {}  # not stored when asked not to
    assert ("AssessmentFindings", 1, {"workload": "fraud-scoring", "severity": "warning"}) in metrics


def test_status_says_when_the_last_assessment_cannot_be_read() -> None:
    class Unreadable:
        def get_json(self, key: str) -> Any:
            raise RuntimeError("AccessDenied")

    assert (
        uc.last_summary("w", SimpleNamespace(evidence=Unreadable()))
        == "unavailable (RuntimeError: AccessDenied)"
    )
    assert uc.last_summary("w", SimpleNamespace(evidence=FakeEvidence())) is None
