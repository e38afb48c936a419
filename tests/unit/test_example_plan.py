"""The shipped example plan agrees with the demo model it protects."""

from pathlib import Path

from chalicelib.domain.smoke import Invocation, verdict
from chalicelib.models.planfile import load_plan_file
from localcloud.model import default_artifact, predict

PLAN = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"


def test_golden_cases_pass_against_the_demo_model() -> None:
    # Given the example plan and the demo fraud model
    plan = load_plan_file(PLAN)
    artifact = default_artifact()
    # When every golden case is scored by the model
    invocations = [
        Invocation(case=c.name, status=200, latency_ms=1.0, body=predict(artifact, c.payload["features"]))
        for c in plan.smoke_tests.cases
    ]
    # Then the plan's smoke verdict passes
    result = verdict(plan.smoke_tests, invocations, target="primary", region="us-east-1", at=artifact_time())
    assert result.passed, result.reason


def test_a_model_that_answers_wrongly_fails_the_golden_cases() -> None:
    # Given the model inverted (the "wrong answers" fault of a drill)
    plan = load_plan_file(PLAN)
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


def artifact_time():
    from datetime import UTC, datetime

    return datetime(2026, 1, 1, tzinfo=UTC)
