"""The shipped ARC example plan (plans/fraud-scoring-arc.yaml): it loads, names the new kind as documented,
agrees with the demo model it protects, and sits next to the other plans (one workload per file)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from chalicelib.domain.smoke import Invocation, verdict
from chalicelib.models.plan import ArcRoutingControlTraffic
from chalicelib.models.planfile import load_plan_file, load_plan_files
from localcloud.model import default_artifact, predict

PLANS = Path(__file__).resolve().parents[2] / "plans"
PLAN = PLANS / "fraud-scoring-arc.yaml"


def test_the_arc_plan_switches_with_routing_controls_and_fails_back_through_weighted_records() -> None:
    # Given the shipped ARC plan
    plan = load_plan_file(PLAN)
    traffic = plan.traffic
    # Then it names the cluster's five regional endpoints, one routing control per region, and the weighted
    # records its gradual failback needs
    assert isinstance(traffic, ArcRoutingControlTraffic)
    assert len(traffic.cluster_endpoints) == 5
    assert {e.region for e in traffic.cluster_endpoints} >= {plan.regions.primary, plan.regions.secondary}
    assert traffic.routing_controls.primary != traffic.routing_controls.secondary
    assert traffic.failback_records is not None and plan.failback.steps[-1] == 100
    # And a canary in the secondary region sees an outage of the primary's APIs (region-api-outage drills)
    assert plan.regions.secondary in plan.trigger.alarm_regions.values()


def test_the_arc_plans_golden_cases_pass_against_the_demo_model() -> None:
    plan = load_plan_file(PLAN)
    artifact = default_artifact()
    invocations = [
        Invocation(case=c.name, status=200, latency_ms=1.0, body=predict(artifact, c.payload["features"]))
        for c in plan.smoke_tests.cases
    ]
    result = verdict(
        plan.smoke_tests,
        invocations,
        target="primary",
        region="us-east-1",
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert result.passed, result.reason


def test_every_shipped_plan_loads_together() -> None:
    # Given every plan in plans/ (the local cloud and the build read them all)
    plans = load_plan_files(sorted(PLANS.glob("*.yaml")))
    # Then each workload is in one file, and the ARC plan's buckets and alarms are its own
    workloads = [p.workload for p in plans]
    assert len(set(workloads)) == len(workloads) and "fraud-scoring-arc" in workloads
    arc = next(p for p in plans if p.workload == "fraud-scoring-arc")
    others = [p for p in plans if p.workload != "fraud-scoring-arc"]
    buckets = {a.source.bucket for a in arc.assets if getattr(a, "source", None) is not None}
    assert buckets
    assert not buckets & {
        a.source.bucket for p in others for a in p.assets if getattr(a, "source", None) is not None
    }
    assert not set(arc.trigger.alarms) & {a for p in others for a in p.trigger.alarms}
