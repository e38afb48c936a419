"""The traffic kinds' registry: every kind of the plan model has its module, declares what it needs from IAM
(read by both permission renderers), and is either provisioned by the local cloud or listed with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import pytest

from chalicelib.adapters.traffic import KINDS, Reading, TrafficClients, grants_for
from chalicelib.adapters.traffic import registry as traffic_registry
from chalicelib.domain.permissions import LifeboatResources, required_permissions
from chalicelib.models.grants import Grant, arn
from chalicelib.models.live_checks import LiveCheck
from chalicelib.models.plan import DRPlan, Traffic
from chalicelib.models.planfile import load_plan_file
from infra import permissions as infra_permissions
from localcloud.traffic_kinds import NOT_PROVISIONED, PROVISIONERS

PLAN = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
R53 = {"record_name": "fraud.example.com.", "set_identifiers": {"primary": "a", "secondary": "b"}}
# One plan's traffic per kind; a new kind adds its example here (the first test says so).
EXAMPLES: dict[str, dict[str, Any]] = {
    "route53-weighted": {"kind": "route53-weighted", "hosted_zone_name": "example.com.", **R53},
    "route53-failover": {
        "kind": "route53-failover",
        "hosted_zone_id": "Z0123456789",
        "health_check_ids": {"primary": "hc-1", "secondary": "hc-2"},
        **R53,
    },
    "arc-routing-control": {
        "kind": "arc-routing-control",
        "cluster_arn": "arn:aws:route53-recovery-control::123456789012:cluster/c1",
        "cluster_endpoints": [{"region": "us-west-2", "url": "https://host.us-west-2.example.aws/v1"}],
        "routing_controls": {
            "primary": "arn:aws:route53-recovery-control::123456789012:controlpanel/p/routingcontrol/a",
            "secondary": "arn:aws:route53-recovery-control::123456789012:controlpanel/p/routingcontrol/b",
        },
    },
    "sagemaker-variants": {
        "kind": "sagemaker-variants",
        "endpoint_name": "fraud",
        "region": "us-west-2",
        "variants": {"primary": "use1", "secondary": "usw2"},
    },
}
LB = LifeboatResources("123456789012", "us-east-1", "ledger", "locks", "plans", "lifeboat-dev")
TRAFFIC_CAPABILITIES = {"traffic-find-zone", "traffic-read", "traffic-shift", "inspect"}


def plan_kinds() -> set[str]:
    """The `kind` literals of the plan model's traffic union."""
    union = get_args(Traffic)[0]
    return {get_args(model.model_fields["kind"].annotation)[0] for model in get_args(union)}


def plan_with(kind: str) -> DRPlan:
    data = load_plan_file(PLAN).model_dump(mode="json", exclude_none=True)
    data["traffic"] = EXAMPLES[kind]
    if kind == "arc-routing-control":
        data["failback"]["steps"] = [100]  # routing controls alone move all traffic at once
    return DRPlan.model_validate(data)


def test_every_kind_of_the_plan_model_has_exactly_one_module() -> None:
    # Given the kinds a plan's traffic may have
    kinds = plan_kinds()
    # Then each is registered under its name, nothing else is, and each has an example here
    assert set(KINDS) == kinds == set(EXAMPLES)
    for kind, target in KINDS.items():
        assert target.kind == kind


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_each_kind_declares_how_it_reads_and_moves_traffic_with_a_reason_for_each_action(kind: str) -> None:
    # Given a plan of that kind
    grants = grants_for(plan_with(kind).traffic)
    # Then it declares a read and the one shift, only traffic capabilities, each action with its reason
    capabilities = {g.capability for g in grants}
    assert {"traffic-read", "traffic-shift"} <= capabilities <= TRAFFIC_CAPABILITIES
    assert all(g.why and ":" in g.action for g in grants)
    # And every resource is an ARN template or "*" (AWS grants only a few reads that way)
    assert all(g.resource == "*" or g.resource.startswith("arn:${AWS::Partition}:") for g in grants)
    assert all(g.capability != "traffic-shift" for g in grants if g.resource == "*")


def test_every_kind_is_provisioned_by_the_local_cloud_or_listed_with_the_reason() -> None:
    # Given the registered kinds
    for kind in KINDS:
        # Then the local cloud creates its switch, or says why it cannot (never both)
        assert (kind in PROVISIONERS) != (kind in NOT_PROVISIONED), kind
        assert kind in PROVISIONERS or len(NOT_PROVISIONED[kind]) > 20, kind
    # And it names no kind that does not exist
    assert set(PROVISIONERS) | set(NOT_PROVISIONED) <= set(KINDS)


# -- one source of IAM truth ----------------------------------------------------------------------------
class _WithRoutingControl:
    """The weighted kind plus the grants a routing-control kind would declare (Route 53 ARC)."""

    kind = "route53-weighted"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def describe(self, traffic: Any) -> str:
        return str(self.inner.describe(traffic))

    def read(self, traffic: Any, clients: TrafficClients) -> Reading:
        raise AssertionError("no AWS call in this test")

    def apply(self, traffic: Any, wanted: Mapping[str, int], clients: TrafficClients) -> dict[str, int]:
        raise AssertionError("no AWS call in this test")

    def ready(self, traffic: Any, clients: TrafficClients) -> None:
        raise AssertionError("no AWS call in this test")

    def live_checks(self, traffic: Any, clients: TrafficClients) -> list[LiveCheck]:
        return []

    def grants(self, traffic: Any) -> list[Grant]:
        control = arn("route53-recovery-control", "", "controlpanel/abc/routingcontrol/def")
        return [
            *self.inner.grants(traffic),
            Grant(
                capability="traffic-read",
                action="route53-recovery-cluster:GetRoutingControlState",
                resource=control,
                why="read the routing control",
            ),
            Grant(
                capability="traffic-shift",
                action="route53-recovery-cluster:UpdateRoutingControlState",
                resource=control,
                why="flip the routing control",
            ),
        ]


def _scope(plan: DRPlan) -> infra_permissions.Scope:
    return infra_permissions.Scope(
        plans=(plan,),
        region="us-west-2",
        ledger_table_arn="ledger",
        lock_table_arn="locks",
        idempotency_table_arn="idempotency",
        plan_bucket_arn="plans",
        plan_objects_arn="plans/*",
        plan_prefix="plans/",
        evidence_bucket_arn="evidence",
        evidence_objects_arn="evidence/*",
        key_arn="key",
        topic_arns=("topic",),
        own_topic_arns=(),
    )


def test_what_a_kind_declares_is_what_the_roles_get_and_what_validation_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the weighted kind declaring two more actions, as a routing-control kind would
    weighted = KINDS["route53-weighted"]
    monkeypatch.setitem(traffic_registry.KINDS, "route53-weighted", _WithRoutingControl(weighted))
    plan = plan_with("route53-weighted")
    control = arn("route53-recovery-control", "", "controlpanel/abc/routingcontrol/def")
    # When the deployed role of the shift task is rendered
    statements = {s["Sid"]: s for s in infra_permissions.statements_for("shift_traffic", _scope(plan))}
    # Then it may read and flip the control, named after the action, next to the record change it had
    read = statements["TrafficReadRoute53RecoveryClusterGetRoutingControlState"]
    assert read["Action"] == ["route53-recovery-cluster:GetRoutingControlState"]
    assert read["Resource"] == [{"Fn::Sub": control}]
    assert statements["TrafficShift0"]["Action"] == ["route53:ChangeResourceRecordSets"]
    assert statements["TrafficShift0Part2"]["Action"] == [
        "route53-recovery-cluster:UpdateRoutingControlState"
    ]
    # And a function that never reads traffic does not get it
    assert not any("recovery" in str(s) for s in infra_permissions.statements_for("load_plan", _scope(plan)))
    # When plan validation lists what Lifeboat's role needs
    listed = required_permissions(plan, LB, grants=grants_for(plan.traffic))
    # Then the same actions are there, with the partition and account filled in
    flip = next(p for p in listed if p.action == "route53-recovery-cluster:UpdateRoutingControlState")
    assert flip.resource == (
        "arn:aws:route53-recovery-control::123456789012:controlpanel/abc/routingcontrol/def"
    )
    assert flip.why == "flip the routing control"


def test_validation_lists_an_action_needed_for_two_uses_once() -> None:
    # Given failover records (each health check is read, and checked by plan validation)
    plan = plan_with("route53-failover")
    # When plan validation lists the permissions
    listed = required_permissions(plan, LB, grants=grants_for(plan.traffic))
    # Then each health check's GetHealthCheck appears once, next to the inversion that moves traffic
    checks = [
        (p.action, p.resource) for p in listed if p.resource.startswith("arn:aws:route53:::healthcheck/")
    ]
    assert checks == [
        ("route53:UpdateHealthCheck", "arn:aws:route53:::healthcheck/hc-1"),
        ("route53:GetHealthCheck", "arn:aws:route53:::healthcheck/hc-1"),
        ("route53:UpdateHealthCheck", "arn:aws:route53:::healthcheck/hc-2"),
        ("route53:GetHealthCheck", "arn:aws:route53:::healthcheck/hc-2"),
    ]
