"""Each traffic kind behind TrafficRouter: what it reads, the one call that moves traffic, what it refuses,
the read-back, the checks plan validation runs, and the IAM actions it declares (moto in-process, no sockets).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.traffic import (
    ShiftRefused,
    TrafficNotConverged,
    TrafficRouter,
    grants_for,
)
from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_file

PRIMARY, SECONDARY = "us-east-1", "us-west-2"
ALL_PRIMARY, ALL_SECONDARY = {"primary": 100, "secondary": 0}, {"primary": 0, "secondary": 100}
BOTH_HEALTHY = {"primary": True, "secondary": True}
PLAN = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
RECORD = "fraud.example.com."


@cache
def _shipped() -> DRPlan:
    return load_plan_file(PLAN)


def plan_with(traffic: dict[str, Any]) -> DRPlan:
    """The shipped plan with another traffic switch."""
    data = _shipped().model_dump(mode="json", exclude_none=True)
    data["traffic"] = traffic
    return DRPlan.model_validate(data)


def _client(service: str, region: str) -> Any:
    return boto3.client(
        service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


# -- route53-weighted -----------------------------------------------------------------------------------
def _weighted_zone(route53: Any, weights: dict[str, int]) -> str:
    zone = route53.create_hosted_zone(Name="example.com.", CallerReference="z")["HostedZone"]["Id"]
    changes = [
        {
            "Action": "UPSERT",
            "ResourceRecordSet": {
                "Name": RECORD,
                "Type": "CNAME",
                "SetIdentifier": f"fraud-{role}",
                "Weight": weight,
                "TTL": 30,
                "ResourceRecords": [{"Value": f"{role}.example.com"}],
            },
        }
        for role, weight in weights.items()
    ]
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
    return str(zone)


def _weighted_plan() -> DRPlan:
    return plan_with(
        {
            "kind": "route53-weighted",
            "hosted_zone_name": "example.com.",
            "record_name": RECORD,
            "set_identifiers": {"primary": "fraud-primary", "secondary": "fraud-secondary"},
        }
    )


def _weights_in_zone(route53: Any, zone: str) -> dict[str, int]:
    records = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return {r["SetIdentifier"].removeprefix("fraud-"): r["Weight"] for r in records if "SetIdentifier" in r}


def test_weighted_records_read_as_the_share_of_each_region(aws: None) -> None:
    # Given two weighted records in a zone the plan names by name, 75/25
    route53 = _client("route53", PRIMARY)
    _weighted_zone(route53, {"primary": 75, "secondary": 25})
    # When the router reads them
    state = TrafficRouter(route53=route53).read(_weighted_plan())
    # Then each role has its weight, nobody serves everything, and the records are described
    assert state.weights == {"primary": 75, "secondary": 25}
    assert state.active_region is None
    assert state.detail["secondary"] == {
        "set_identifier": "fraud-secondary",
        "weight": 25,
        "values": ["secondary.example.com"],
    }


def test_a_weighted_shift_rewrites_both_records_in_one_change_batch(aws: None) -> None:
    # Given all traffic on the primary
    route53 = _client("route53", PRIMARY)
    zone = _weighted_zone(route53, ALL_PRIMARY)
    router = TrafficRouter(route53=route53)
    # When traffic moves to the secondary
    state = router.shift(_weighted_plan(), ALL_SECONDARY, BOTH_HEALTHY)
    # Then both records changed, the result says what was there before, and the read-back agrees
    assert _weights_in_zone(route53, zone) == ALL_SECONDARY
    assert state.active_region == SECONDARY
    assert state.detail == {"requested": ALL_SECONDARY, "before": ALL_PRIMARY}
    assert router.verify(_weighted_plan(), ALL_SECONDARY).weights == ALL_SECONDARY


def test_a_weighted_record_missing_is_a_lookup_error_naming_the_role(aws: None) -> None:
    # Given a zone with only the primary's record
    route53 = _client("route53", PRIMARY)
    _weighted_zone(route53, {"primary": 100})
    # When the router reads the plan's traffic
    # Then it cannot, and says which set identifier is missing
    with pytest.raises(LookupError, match=r"no set identifier for \['secondary'\]"):
        TrafficRouter(route53=route53).read(_weighted_plan())


def test_the_safety_rules_refuse_before_the_kind_moves_anything(aws: None) -> None:
    # Given all traffic on the primary, and a secondary that failed its last smoke test
    route53 = _client("route53", PRIMARY)
    zone = _weighted_zone(route53, ALL_PRIMARY)
    router = TrafficRouter(route53=route53)
    # When a shift would hand it everything, or leave nobody serving
    with pytest.raises(ShiftRefused, match="failed its last smoke test"):
        router.shift(_weighted_plan(), ALL_SECONDARY, {"primary": True, "secondary": False})
    with pytest.raises(ShiftRefused, match="zero weight everywhere"):
        router.shift(_weighted_plan(), {"primary": 0, "secondary": 0}, BOTH_HEALTHY)
    # Then the records never changed
    assert _weights_in_zone(route53, zone) == ALL_PRIMARY


def test_the_weighted_record_change_is_pinned_to_the_plans_record_type_and_upsert() -> None:
    # Given a plan whose zone is known by name only
    grants = grants_for(_weighted_plan().traffic)
    # Then finding the zone and reading its records are declared, and the one write is pinned by condition
    by_action = {g.action: g for g in grants}
    assert by_action["route53:ListHostedZonesByName"].capability == "traffic-find-zone"
    assert by_action["route53:ListResourceRecordSets"].capability == "traffic-read"
    change = by_action["route53:ChangeResourceRecordSets"]
    assert change.capability == "traffic-shift"
    assert change.resource == "arn:${AWS::Partition}:route53:::hostedzone/*"
    assert change.condition == {
        "ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["fraud.example.com"],
            "route53:ChangeResourceRecordSetsRecordTypes": ["CNAME"],
            "route53:ChangeResourceRecordSetsActions": ["UPSERT"],
        }
    }


# -- route53-failover -----------------------------------------------------------------------------------
def _health_check(route53: Any, name: str) -> str:
    config = {"Type": "HTTPS", "FullyQualifiedDomainName": f"{name}.example.com", "Port": 443}
    return str(
        route53.create_health_check(CallerReference=name, HealthCheckConfig=config)["HealthCheck"]["Id"]
    )


def _failover_plan(primary_check: str, secondary_check: str | None = None) -> DRPlan:
    checks = {"primary": primary_check} | ({"secondary": secondary_check} if secondary_check else {})
    return plan_with(
        {
            "kind": "route53-failover",
            "hosted_zone_id": "Z0123456789",
            "record_name": RECORD,
            "set_identifiers": {"primary": "fraud-primary", "secondary": "fraud-secondary"},
            "health_check_ids": checks,
        }
    )


def _inverted(route53: Any, check_id: str) -> bool:
    return bool(
        route53.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]["Inverted"]
    )


def test_failover_records_move_everything_by_inverting_the_primarys_health_check(aws: None) -> None:
    # Given failover records whose primary health check is not inverted: the primary serves
    route53 = _client("route53", PRIMARY)
    check = _health_check(route53, "primary")
    plan, router = _failover_plan(check), TrafficRouter(route53=route53)
    assert router.read(plan).weights == ALL_PRIMARY
    # When traffic moves to the secondary
    state = router.shift(plan, ALL_SECONDARY, BOTH_HEALTHY)
    # Then the health check is inverted, and the read-back shows the secondary serving
    assert _inverted(route53, check)
    assert state.detail["before"] == ALL_PRIMARY
    back = router.verify(plan, ALL_SECONDARY)
    assert back.active_region == SECONDARY and back.detail == {"primary_health_check_inverted": True}
    # And moving it back restores the health check
    router.shift(plan, ALL_PRIMARY, BOTH_HEALTHY)
    assert not _inverted(route53, check)


def test_failover_records_refuse_a_share_and_leave_the_health_check_alone(aws: None) -> None:
    # Given failover records with the primary serving
    route53 = _client("route53", PRIMARY)
    check = _health_check(route53, "primary")
    # When a failback step asks for a share
    # Then the kind refuses (all or nothing) and nothing changed
    with pytest.raises(ShiftRefused, match="0 or 100"):
        TrafficRouter(route53=route53).shift(_failover_plan(check), {"primary": 25, "secondary": 75}, {})
    assert not _inverted(route53, check)


def test_validation_checks_that_each_named_health_check_exists(aws: None) -> None:
    # Given a plan naming an existing primary health check and a secondary one that does not exist
    route53 = _client("route53", PRIMARY)
    check = _health_check(route53, "primary")
    router = TrafficRouter(route53=route53)
    # When plan validation runs the kind's checks
    checks = router.live_checks(_failover_plan(check, "gone"))
    findings = {c.subject: c.run() for c in checks}
    # Then the existing one passes and the missing one is an error, each named by its id
    assert findings == {
        f"health check {check}": [(f"health check {check}", "ok", "the primary health check exists")],
        "health check gone": [("health check gone", "error", "the secondary health check does not exist")],
    }


def test_failover_grants_name_each_health_check_for_the_shift_and_for_validation() -> None:
    # Given a plan with both health checks
    grants = grants_for(_failover_plan("hc-1", "hc-2").traffic)
    # Then inverting and reading each is declared on that health check only
    for check in ("hc-1", "hc-2"):
        arn = f"arn:${{AWS::Partition}}:route53:::healthcheck/{check}"
        on_it = {(g.capability, g.action) for g in grants if g.resource == arn}
        assert on_it == {
            ("traffic-shift", "route53:UpdateHealthCheck"),
            ("traffic-read", "route53:GetHealthCheck"),
            ("inspect", "route53:GetHealthCheck"),
        }
    # And the zone is given by id, so it is never looked up by name
    assert "route53:ListHostedZonesByName" not in {g.action for g in grants}


# -- sagemaker-variants ---------------------------------------------------------------------------------
def _endpoint(sagemaker: Any, weights: dict[str, float]) -> None:
    role = "arn:aws:iam::123456789012:role/sagemaker"
    sagemaker.create_model(ModelName="fraud", ExecutionRoleArn=role, PrimaryContainer={"Image": "fraud:1"})
    variants = [
        {
            "VariantName": name,
            "ModelName": "fraud",
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
            "InitialVariantWeight": weight,
        }
        for name, weight in weights.items()
    ]
    sagemaker.create_endpoint_config(EndpointConfigName="fraud-config", ProductionVariants=variants)
    sagemaker.create_endpoint(EndpointName="Fraud-EP", EndpointConfigName="fraud-config")


def _variants_plan() -> DRPlan:
    return plan_with(
        {
            "kind": "sagemaker-variants",
            "endpoint_name": "Fraud-EP",
            "region": SECONDARY,
            "variants": {"primary": "use1", "secondary": "usw2"},
        }
    )


def test_variant_weights_read_as_shares_and_move_in_one_update(aws: None) -> None:
    # Given an endpoint whose variants weigh 3 and 1
    sagemaker = _client("sagemaker", SECONDARY)
    _endpoint(sagemaker, {"use1": 3.0, "usw2": 1.0})
    router = TrafficRouter(sagemaker=lambda region: _client("sagemaker", region))
    # When the router reads them
    state = router.read(_variants_plan())
    # Then they read as shares of 100, with what SageMaker said
    assert state.weights == {"primary": 75, "secondary": 25}
    assert state.detail == {"status": "InService", "raw_weights": {"primary": 3.0, "secondary": 1.0}}
    # When all traffic moves to the secondary variant
    router.shift(_variants_plan(), ALL_SECONDARY, BOTH_HEALTHY)
    # Then the endpoint's variants say so, and the read-back agrees
    variants = sagemaker.describe_endpoint(EndpointName="Fraud-EP")["ProductionVariants"]
    assert {v["VariantName"]: v.get("DesiredWeight") for v in variants} == {"use1": 0.0, "usw2": 100.0}
    assert router.verify(_variants_plan(), ALL_SECONDARY).active_region == SECONDARY


def test_a_variant_the_plan_names_but_the_endpoint_lacks_is_a_lookup_error(aws: None) -> None:
    # Given an endpoint without the secondary's variant
    _endpoint(_client("sagemaker", SECONDARY), {"use1": 1.0, "other": 1.0})
    # Then reading its traffic says which variant is missing
    router = TrafficRouter(sagemaker=lambda region: _client("sagemaker", region))
    with pytest.raises(LookupError, match="has no variant usw2"):
        router.read(_variants_plan())


class _UpdatingEndpoint:
    """A SageMaker client whose endpoint is still applying new weights (moto applies them at once)."""

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {
            "EndpointStatus": "Updating",
            "ProductionVariants": [
                {"VariantName": "use1", "CurrentWeight": 0.0},
                {"VariantName": "usw2", "CurrentWeight": 100.0},
            ],
        }


def test_the_read_back_waits_until_the_endpoint_is_in_service() -> None:
    # Given an endpoint that shows the new weights but is still Updating
    sagemaker = _UpdatingEndpoint()
    router = TrafficRouter(sagemaker=lambda region: sagemaker)
    # When the shift is verified
    # Then it has not converged yet, whatever the weights say
    with pytest.raises(TrafficNotConverged, match="endpoint Fraud-EP is Updating"):
        router.verify(_variants_plan(), ALL_SECONDARY)


def test_variant_grants_name_the_endpoint_in_lower_case_in_its_region() -> None:
    grants = grants_for(_variants_plan().traffic)
    endpoint = "arn:${AWS::Partition}:sagemaker:us-west-2:${AWS::AccountId}:endpoint/fraud-ep"
    assert {(g.capability, g.action, g.resource) for g in grants} == {
        ("traffic-read", "sagemaker:DescribeEndpoint", endpoint),
        ("traffic-shift", "sagemaker:UpdateEndpointWeightsAndCapacities", endpoint),
    }


def test_the_local_cloud_creates_a_sagemaker_variants_switch_with_all_traffic_on_the_primary(
    aws: None,
) -> None:
    # Given a plan whose traffic moves between two production variants of one endpoint
    from localcloud.sagemaker import ArtifactAt, provision_endpoints, variant_backends
    from localcloud.traffic_kinds import PROVISIONERS

    plan = plan_with(
        {
            "kind": "sagemaker-variants",
            "endpoint_name": "fraud",
            "region": PRIMARY,
            "variants": {"primary": "blue", "secondary": "green"},
        }
    )

    class Cloud:
        account_id = "123456789012"

        def client(self, service: str, region: str | None = None) -> Any:
            return _client(service, region or PRIMARY)

    # When the local cloud creates its endpoints and then its traffic switch
    artifact = ArtifactAt({PRIMARY: ("m1", "k"), SECONDARY: ("m2", "k")})
    assert provision_endpoints(Cloud(), plan, artifact) == [f"fraud ({PRIMARY})"]
    PROVISIONERS["sagemaker-variants"](Cloud(), plan)  # type: ignore[arg-type]
    # Then the endpoint has both variants, each served by its role's model server, all weight on the primary's
    backends = [(b.role, b.region, b.variant) for b in variant_backends(plan)]
    assert backends == [("primary", PRIMARY, "blue"), ("secondary", PRIMARY, "green")]
    reading = TrafficRouter(sagemaker=lambda region: _client("sagemaker", region)).read(plan)
    assert reading.weights == ALL_PRIMARY
    # And creating it again changes nothing (provisioning is idempotent)
    assert provision_endpoints(Cloud(), plan, artifact) == []
