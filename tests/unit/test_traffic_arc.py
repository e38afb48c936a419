"""arc-routing-control behind TrafficRouter: the failover is one UpdateRoutingControlStates call on whichever
cluster endpoint answers, a safety rule's refusal names the rule, gradual failback uses the weighted records,
plan validation judges the cluster, controls, rules and health checks. The cluster is the local cloud's
(localcloud/arc.py) answering a real boto3 client in process: no socket.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from chalicelib.adapters.errors import TransientError
from chalicelib.adapters.traffic import ShiftRefused, TrafficRouter, grants_for
from chalicelib.domain import arc_rules
from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_file
from localcloud.arc import REGIONS, ArcCluster, in_process_client

PLAN = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
ACCOUNT = "123456789012"
CLUSTER = f"arn:aws:route53-recovery-control::{ACCOUNT}:cluster/c0ffee"
PANEL = f"arn:aws:route53-recovery-control::{ACCOUNT}:controlpanel/fraud"
USE1, USW2 = f"{PANEL}/routingcontrol/use1", f"{PANEL}/routingcontrol/usw2"
ALL_PRIMARY, ALL_SECONDARY = {"primary": 100, "secondary": 0}, {"primary": 0, "secondary": 100}
BOTH_HEALTHY = {"primary": True, "secondary": True}
RECORD = "fraud.example.com."


@cache
def _shipped() -> DRPlan:
    return load_plan_file(PLAN)


def traffic(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "arc-routing-control",
        "cluster_arn": CLUSTER,
        "cluster_endpoints": [{"region": r, "url": f"https://{r}.arc.invalid/v1"} for r in REGIONS],
        "routing_controls": {"primary": USE1, "secondary": USW2},
        **extra,
    }


def arc_plan(steps: list[int] | None = None, **extra: Any) -> DRPlan:
    data = _shipped().model_dump(mode="json", exclude_none=True)
    data["traffic"] = traffic(**extra)
    data["failback"]["steps"] = steps or [100]
    return DRPlan.model_validate(data)


@pytest.fixture
def cluster() -> ArcCluster:
    """The plan's two controls, all traffic on the primary, and the rule every ARC setup should have."""
    found = ArcCluster(CLUSTER, outages=None)
    found.routing_control(USE1, "On")
    found.routing_control(USW2, "Off")
    found.assertion_rule("one-region-serves", [USE1, USW2], type="ATLEAST", threshold=1)
    return found


def router_for(cluster: ArcCluster, route53: Any = None) -> TrafficRouter:
    return TrafficRouter(
        route53=route53, arc_cluster=lambda region, url: in_process_client(cluster, region, url)
    )


def updates(cluster: ArcCluster) -> list[tuple[str, str]]:
    return [(c.region, c.outcome) for c in cluster.calls if c.operation == "UpdateRoutingControlStates"]


# -- read, shift, read-back ------------------------------------------------------------------------------
def test_the_control_that_is_on_serves_all_traffic(cluster: ArcCluster) -> None:
    # Given the primary's control On and the secondary's Off
    # When the router reads the plan's traffic
    state = router_for(cluster).read(arc_plan())
    # Then the primary takes all of it, and the states are what was read
    assert state.weights == ALL_PRIMARY and state.active_region == "us-east-1"
    assert state.detail["routing_controls"] == {"primary": "On", "secondary": "Off"}
    # When both are Off (an operator's override), nobody is chosen: Route 53 would fail open
    cluster.set_state(USE1, "Off")
    off = router_for(cluster).read(arc_plan())
    assert off.weights == {"primary": 0, "secondary": 0} and "both" in off.detail["warning"]


class _FlipAfterFirstRead:
    """A cluster client on which a failover (both controls in one update) lands right after the first read."""

    def __init__(self, client: Any, cluster: ArcCluster) -> None:
        self._client, self._cluster, self.reads = client, cluster, 0

    def get_routing_control_state(self, **kwargs: Any) -> Any:
        answer = self._client.get_routing_control_state(**kwargs)
        self.reads += 1
        if self.reads == 1:
            self._cluster.set_state(USE1, "Off")
            self._cluster.set_state(USW2, "On")
        return answer


def test_a_failover_between_the_two_reads_is_never_seen_as_both_on(cluster: ArcCluster) -> None:
    # Given a failover that lands between the reads of the two controls (two calls; the update is one)
    clients: list[_FlipAfterFirstRead] = []

    def client(region: str, url: str) -> Any:
        clients.append(_FlipAfterFirstRead(in_process_client(cluster, region, url), cluster))
        return clients[-1]

    router = TrafficRouter(route53=None, arc_cluster=client)
    # When the router reads the traffic of a plan with weighted failback records (read when both are On)
    state = router.read(arc_plan(steps=[25, 100], failback_records=RECORDS))
    # Then it saw the state after the failover, never "both On" (which would read the records of a Route 53
    # that may be down): the first control changed while the second was read, so the pair was read again
    assert state.weights == ALL_SECONDARY
    assert state.detail["routing_controls"] == {"primary": "Off", "secondary": "On"}
    assert sum(c.reads for c in clients) > 3


def test_a_failover_sets_both_controls_in_one_call_and_reads_back(cluster: ArcCluster) -> None:
    # When traffic moves to the secondary
    router = router_for(cluster)
    state = router.shift(arc_plan(), ALL_SECONDARY, BOTH_HEALTHY)
    # Then one update call set both controls (the assertion rule saw the final state, never both Off)
    assert updates(cluster) == [(updates(cluster)[0][0], "ok")]
    assert (cluster.state(USE1), cluster.state(USW2)) == ("Off", "On")
    assert state.detail == {"requested": ALL_SECONDARY, "before": ALL_PRIMARY}
    # And the read-back from any endpoint agrees
    assert router.verify(arc_plan(), ALL_SECONDARY).active_region == "us-west-2"


def test_two_endpoints_down_the_update_goes_to_one_that_answers(cluster: ArcCluster) -> None:
    # Given the cluster's us-east-1 and eu-west-1 endpoints down
    cluster.take_down("us-east-1", "eu-west-1")
    # When traffic moves to the secondary, many times over
    router = router_for(cluster)
    for _ in range(12):
        router.shift(arc_plan(), ALL_SECONDARY, BOTH_HEALTHY)
        router.shift(arc_plan(), ALL_PRIMARY, BOTH_HEALTHY)
    # Then every shift landed, each on one answering endpoint after the down ones it met
    calls = updates(cluster)
    assert sum(1 for _, outcome in calls if outcome == "ok") == 24
    assert {region for region, outcome in calls if outcome == "down"} <= {"us-east-1", "eu-west-1"}
    assert {region for region, outcome in calls if outcome == "ok"} <= {
        "us-west-2",
        "ap-northeast-1",
        "ap-southeast-2",
    }
    # And the endpoints were tried in random order: the first one tried was not always the same
    firsts = [c.region for c in cluster.calls if c.operation == "GetRoutingControlState"][::2]
    assert len(set(firsts)) > 1


def test_no_endpoint_answering_is_transient_and_names_them(cluster: ArcCluster) -> None:
    # Given every endpoint down
    cluster.take_down(*REGIONS)
    # When the router reads traffic, then it fails as the state machine retries, naming what it tried
    with pytest.raises(TransientError, match="no endpoint of ARC cluster") as caught:
        router_for(cluster).read(arc_plan())
    assert all(region in str(caught.value) for region in REGIONS)


def test_a_safety_rule_refusal_names_the_rule_and_is_not_retried(cluster: ArcCluster) -> None:
    # Given a gating rule: the secondary's control may change only while a kill switch is On (it is Off)
    switch = cluster.routing_control(f"{PANEL}/routingcontrol/automation-allowed", "Off").arn
    cluster.gating_rule("automation-kill-switch", [switch], [USE1, USW2], type="AND")
    # When a failover asks for all traffic on the secondary
    with pytest.raises(ShiftRefused) as caught:
        router_for(cluster).shift(arc_plan(), ALL_SECONDARY, BOTH_HEALTHY)
    # Then it is refused with the rule's name, one call only (another endpoint would refuse it too)
    assert "safety rule" in str(caught.value) and "automation-kill-switch" in str(caught.value)
    assert [outcome for _, outcome in updates(cluster)] == ["ConflictException"]
    # And nothing changed
    assert (cluster.state(USE1), cluster.state(USW2)) == ("On", "Off")


def test_a_share_needs_the_weighted_records() -> None:
    # Given a plan without failback records, a failback in steps is refused when the plan is read
    with pytest.raises(ValidationError, match=r"must be \[100\] with traffic kind arc-routing-control"):
        arc_plan(steps=[50, 100])
    # And a share asked of the kind anyway is refused before any call
    cluster = ArcCluster(CLUSTER, outages=None)
    cluster.routing_control(USE1, "Off")
    cluster.routing_control(USW2, "On")
    with pytest.raises(ShiftRefused, match="failback_records"):
        router_for(cluster).shift(arc_plan(), {"primary": 25, "secondary": 75}, BOTH_HEALTHY)
    assert updates(cluster) == []


@pytest.fixture
def route53() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client(
            "route53", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        zone = client.create_hosted_zone(Name="example.com.", CallerReference="z")["HostedZone"]["Id"]
        changes = [
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": RECORD,
                    "Type": "CNAME",
                    "SetIdentifier": role,
                    "Weight": weight,
                    "TTL": 30,
                    "ResourceRecords": [{"Value": f"{role}.example.com"}],
                },
            }
            for role, weight in (("primary", 100), ("secondary", 0))
        ]
        client.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
        yield client


RECORDS = {
    "hosted_zone_name": "example.com.",
    "record_name": RECORD,
    "set_identifiers": {"primary": "primary", "secondary": "secondary"},
}


def test_gradual_failback_splits_with_the_weighted_records_then_hands_back_to_the_controls(
    cluster: ArcCluster, route53: Any
) -> None:
    # Given a plan naming weighted records, failed over to the secondary
    plan = arc_plan(steps=[25, 100], failback_records=RECORDS)
    router = router_for(cluster, route53)
    router.shift(plan, ALL_SECONDARY, BOTH_HEALTHY)
    # When failback's first step asks for 25% on the primary
    router.shift(plan, {"primary": 25, "secondary": 75}, BOTH_HEALTHY)
    # Then both controls are On and the records split the traffic
    assert (cluster.state(USE1), cluster.state(USW2)) == ("On", "On")
    assert router.verify(plan, {"primary": 25, "secondary": 75}).detail["failback_records"] == {
        "primary": 25,
        "secondary": 75,
    }
    # When the last step asks for everything on the primary, the controls alone do it
    router.shift(plan, ALL_PRIMARY, BOTH_HEALTHY)
    assert (cluster.state(USE1), cluster.state(USW2)) == ("On", "Off")
    assert router.verify(plan, ALL_PRIMARY).weights == ALL_PRIMARY


# -- IAM ---------------------------------------------------------------------------------------------------
def test_grants_are_the_two_controls_never_a_safety_rule_override() -> None:
    grants = grants_for(arc_plan().traffic)
    by_action = {(g.capability, g.action): g for g in grants}
    # Then the data-plane actions name exactly the plan's two controls, the partition left to the deployment
    controls = {
        g.resource for g in grants if g.action == "route53-recovery-cluster:UpdateRoutingControlStates"
    }
    assert controls == {c.replace("arn:aws:", "arn:${AWS::Partition}:") for c in (USE1, USW2)}
    shift = by_action[("traffic-shift", "route53-recovery-cluster:UpdateRoutingControlStates")]
    assert shift.condition == {
        "BoolIfExists": {"route53-recovery-cluster:AllowSafetyRulesOverrides": "false"}
    }
    assert ("traffic-read", "route53-recovery-cluster:GetRoutingControlState") in by_action
    # And no Route 53 control-plane action, nor any "*", unless the plan names failback records
    assert not any(g.action.startswith("route53:") or g.resource == "*" for g in grants)
    with_records = grants_for(arc_plan(steps=[50, 100], failback_records=RECORDS).traffic)
    assert any(g.action == "route53:ChangeResourceRecordSets" for g in with_records)
    # And plan validation reads the cluster's configuration
    inspect = {g.action for g in grants if g.capability == "inspect"}
    assert inspect == {
        "route53-recovery-control-config:DescribeCluster",
        "route53-recovery-control-config:DescribeRoutingControl",
        "route53-recovery-control-config:DescribeControlPanel",
        "route53-recovery-control-config:ListSafetyRules",
        "route53-recovery-control-config:ListAssociatedRoute53HealthChecks",
    }


# -- plan validation ---------------------------------------------------------------------------------------
class FakeConfig:
    """route53-recovery-control-config as plan validation reads it (a fake: we own what is asserted)."""

    def __init__(self, cluster: ArcCluster, *, endpoints: list[str] | None = None) -> None:
        self.cluster = cluster
        self.endpoints = endpoints if endpoints is not None else list(REGIONS)
        self.panel_cluster = CLUSTER
        self.health_checks: dict[str, list[str]] = {}

    def describe_cluster(self, ClusterArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return {
            "Cluster": {
                "ClusterArn": ClusterArn,
                "Status": "DEPLOYED",
                "ClusterEndpoints": [
                    {"Region": r, "Endpoint": f"https://{r}.arc.invalid/v1"} for r in self.endpoints
                ],
            }
        }

    def describe_routing_control(self, RoutingControlArn: str) -> dict[str, Any]:  # noqa: N803
        return {
            "RoutingControl": {
                "RoutingControlArn": RoutingControlArn,
                "ControlPanelArn": RoutingControlArn.split("/routingcontrol/")[0],
                "Name": RoutingControlArn.rsplit("/", 1)[-1],
                "Status": "DEPLOYED",
            }
        }

    def describe_control_panel(self, ControlPanelArn: str) -> dict[str, Any]:  # noqa: N803
        return {"ControlPanel": {"ClusterArn": self.panel_cluster, "Name": "fraud", "Status": "DEPLOYED"}}

    def list_associated_route53_health_checks(self, RoutingControlArn: str) -> dict[str, Any]:  # noqa: N803
        return {"HealthCheckIds": self.health_checks.get(RoutingControlArn, [])}

    def list_safety_rules(self, ControlPanelArn: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        out = []
        for rule in self.cluster.rules():
            config = {"Type": rule.type, "Threshold": rule.threshold, "Inverted": rule.inverted}
            if rule.kind == "ASSERTION":
                body = {"AssertedControls": list(rule.controls)}
            else:
                body = {"GatingControls": list(rule.controls), "TargetControls": list(rule.targets)}
            body |= {"Name": rule.name, "SafetyRuleArn": rule.arn, "RuleConfig": config}
            out.append({rule.kind: body})
        return {"SafetyRules": out}


def findings(plan: DRPlan, config: FakeConfig) -> list[tuple[str, str]]:
    from chalicelib.adapters.traffic.base import TrafficClients
    from chalicelib.adapters.traffic.registry import target_for

    clients = TrafficClients({"route53-recovery-control-config": lambda _region: config})
    out = []
    for check in target_for(plan.traffic).live_checks(plan.traffic, clients):
        out += [(f.severity, f.message) for f in check.run()]
    return out


def test_validation_passes_a_sound_cluster(cluster: ArcCluster) -> None:
    # Given the cluster as the plan names it, with its at-least-one-On rule
    found = findings(arc_plan(), FakeConfig(cluster))
    # Then every check passes
    assert [severity for severity, _ in found] == ["ok"] * 4, found


def test_validation_finds_what_would_stop_a_failover(cluster: ArcCluster) -> None:
    # Given the plan names an endpoint the cluster lacks, the controls' panel is on another cluster, a
    # health check the control does not drive, and a rule that forbids the secondary serving alone
    config = FakeConfig(cluster, endpoints=list(REGIONS[1:]))
    config.panel_cluster = CLUSTER.replace("c0ffee", "other")
    cluster.assertion_rule("primary-always-on", [USE1], type="AND")
    plan = arc_plan(health_check_ids={"primary": "hc-use1"})
    # When plan validation checks the live resources
    found = findings(plan, config)
    errors = [message for severity, message in found if severity == "error"]
    # Then each problem is an error saying what it breaks
    assert any("not endpoints of the cluster: us-east-1" in m for m in errors)
    assert any("on cluster" in m and "other" in m for m in errors)
    assert any("health check hc-use1 is not driven by the primary routing control" in m for m in errors)
    assert any("primary-always-on" in m and "all traffic on the secondary" in m for m in errors)


def test_validation_warns_without_a_rule_that_keeps_one_region_on() -> None:
    # Given a cluster whose control panel has no safety rule
    bare = ArcCluster(CLUSTER, outages=None)
    bare.routing_control(USE1, "On")
    bare.routing_control(USW2, "Off")
    found = findings(arc_plan(), FakeConfig(bare))
    # Then validation warns that both controls could be turned Off
    assert any(s == "warning" and "fail open" in m for s, m in found)


# -- the rules themselves ----------------------------------------------------------------------------------
def rule(kind: Any, controls: tuple[str, ...], type: Any, **config: Any) -> arc_rules.SafetyRule:
    return arc_rules.SafetyRule(arn="r", name="r", kind=kind, controls=controls, type=type, **config)


@pytest.mark.parametrize(
    ("type", "threshold", "inverted", "on", "holds"),
    [
        ("ATLEAST", 1, False, 0, False),
        ("ATLEAST", 1, False, 1, True),
        ("ATLEAST", 2, False, 1, False),
        ("AND", 1, False, 1, False),
        ("AND", 1, False, 2, True),
        ("OR", 1, False, 0, False),
        ("OR", 1, True, 0, True),
        ("AND", 1, True, 2, False),
    ],
)
def test_an_assertion_rule_holds_by_its_config(
    type: Any, threshold: int, inverted: bool, on: int, holds: bool
) -> None:
    # Given two asserted controls, `on` of them On
    states = {"a": "On" if on >= 1 else "Off", "b": "On" if on >= 2 else "Off"}
    assertion = rule("ASSERTION", ("a", "b"), type, threshold=threshold, inverted=inverted)
    # Then the rule holds exactly as its config says
    assert arc_rules.holds(assertion, states) is holds


def test_rules_are_judged_on_the_final_state_of_the_whole_update() -> None:
    one_on = rule("ASSERTION", ("a", "b"), "ATLEAST", threshold=1)
    current = {"a": "On", "b": "Off"}
    # Then swapping both at once passes, turning a off alone breaks the rule
    assert arc_rules.broken_rule([one_on], current, {"a": "Off", "b": "On"}) is None
    assert arc_rules.broken_rule([one_on], current, {"a": "Off"}) is one_on
    # And a gating rule only guards its targets
    gate = rule("GATING", ("g",), "AND", targets=("a",))
    assert arc_rules.broken_rule([gate], {"g": "Off"}, {"a": "On"}) is gate
    assert arc_rules.broken_rule([gate], {"g": "Off"}, {"b": "On"}) is None
    assert arc_rules.broken_rule([gate], {"g": "Off"}, {"g": "On", "a": "On"}) is None


def test_the_local_cluster_refuses_a_request_signed_for_another_region(cluster: ArcCluster) -> None:
    # Given a request signed for us-west-2 but sent to the us-east-1 endpoint
    scope = "k/20260101/us-west-2/route53-recovery-cluster/aws4_request"
    status, body = cluster.respond(
        "us-east-1", {"Authorization": f"AWS4-HMAC-SHA256 Credential={scope}"}, b"{}"
    )
    # Then it is refused as AWS refuses a regional endpoint's wrong scope
    assert status == 403 and b"InvalidSignatureException" in body


class _DownRoute53:
    """Route 53's control plane not answering (what a us-east-1 outage can do to it)."""

    def __getattr__(self, operation: str) -> Any:
        from botocore.exceptions import EndpointConnectionError

        def call(**_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://route53.amazonaws.com")

        return call


def test_a_switch_that_does_not_answer_is_transient_and_named() -> None:
    # Given a route53-weighted plan and Route 53's control plane down
    plan = _shipped()
    router = TrafficRouter(route53=_DownRoute53())
    # When the router reads or shifts, it fails as the state machine retries, naming the switch
    for attempt in (lambda: router.read(plan), lambda: router.shift(plan, ALL_SECONDARY, BOTH_HEALTHY)):
        with pytest.raises(TransientError, match=r"route53-weighted fraud.lifeboat.internal. unreachable"):
            attempt()
