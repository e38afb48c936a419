"""The shipped example plans agree with the demo model they protect, and with each other."""

from pathlib import Path

import pytest

from chalicelib.domain.smoke import Invocation, verdict
from chalicelib.models.plan import ModelRegistryAsset, SageMakerEndpoint
from chalicelib.models.planfile import load_plan_file
from localcloud.model import default_artifact, predict

PLANS_DIR = Path(__file__).resolve().parents[2] / "plans"
PLAN = PLANS_DIR / "fraud-scoring.yaml"
SAGEMAKER_PLAN = PLANS_DIR / "fraud-scoring-sagemaker.yaml"
EXAMPLES = [PLAN, SAGEMAKER_PLAN]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_golden_cases_pass_against_the_demo_model(path: Path) -> None:
    # Given an example plan and the demo fraud model
    plan = load_plan_file(path)
    artifact = default_artifact()
    # When every golden case is scored by the model
    invocations = [
        Invocation(case=c.name, status=200, latency_ms=1.0, body=predict(artifact, c.payload["features"]))
        for c in plan.smoke_tests.cases
    ]
    # Then the plan's smoke verdict passes
    result = verdict(plan.smoke_tests, invocations, target="primary", region="us-east-1", at=artifact_time())
    assert result.passed, result.reason


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_a_model_that_answers_wrongly_fails_the_golden_cases(path: Path) -> None:
    # Given the model inverted (the "wrong answers" fault of a drill)
    plan = load_plan_file(path)
    artifact = default_artifact()
    invocations = []
    for c in plan.smoke_tests.cases:
        body = predict(artifact, c.payload["features"])
        body = {**body, "score": 1 - body["score"], "label": "legit" if body["label"] == "fraud" else "fraud"}
        invocations.append(Invocation(case=c.name, status=200, latency_ms=1.0, body=body))
    # Then the verdict fails
    assert not verdict(
        plan.smoke_tests, invocations, target="secondary", region="us-west-2", at=artifact_time()
    ).passed


def test_the_sagemaker_plan_runs_the_same_model_on_sagemaker_with_its_registry_in_both_regions() -> None:
    # Given both example plans
    http, sagemaker = load_plan_file(PLAN), load_plan_file(SAGEMAKER_PLAN)
    # Then the SageMaker plan smoke-tests the same cases against a SageMaker endpoint (one variant) per region
    assert sagemaker.smoke_tests == http.smoke_tests
    for role in ("primary", "secondary"):
        endpoint = sagemaker.endpoint_for(role)
        assert isinstance(endpoint, SageMakerEndpoint) and endpoint.variant_name == "AllTraffic"
    # And its approved model version is compared in each region's SageMaker Model Registry
    registry = next(a for a in sagemaker.assets if isinstance(a, ModelRegistryAsset))
    assert registry.registry == "sagemaker" and registry.model_package_group == "fraud-scorer"
    # And traffic moves between the regional endpoints by Route 53, failback in steps
    assert sagemaker.traffic.kind == "route53-weighted" and sagemaker.failback.steps == http.failback.steps


def test_the_two_example_plans_name_no_resource_in_common() -> None:
    # Given both plans (the local cloud runs them side by side)
    http, sagemaker = load_plan_file(PLAN), load_plan_file(SAGEMAKER_PLAN)

    def named(plan):  # type: ignore[no-untyped-def]
        out = {plan.workload, plan.notifications.topic, *plan.trigger.alarms}
        out.add(plan.traffic.record_name)  # type: ignore[union-attr]
        for asset in plan.assets:
            dumped = asset.model_dump()
            for side in ("source", "replica"):
                if dumped.get(side):
                    out.add(dumped[side]["bucket"])
            out.update(str(dumped[k]) for k in ("table", "replica_table") if dumped.get(k))
        return out

    # Then no workload, bucket, table, alarm, topic or record is shared (a drill of one leaves the other be)
    assert named(http) & named(sagemaker) == set()


def artifact_time():
    from datetime import UTC, datetime

    return datetime(2026, 1, 1, tzinfo=UTC)
