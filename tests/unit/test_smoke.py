"""Smoke-test verdicts on the example plan's golden cases: correctness, latency budget and success ratio."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.smoke import (
    _MISSING,
    Invocation,
    SmokeVerdict,
    extract,
    judge_case,
    p95,
    remeasure_slow,
    slow_only,
    verdict,
)
from chalicelib.models.plan import DRPlan, Expectation, SmokeTests
from chalicelib.models.planfile import load_plan_file

PLAN_FILE = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

# What a correct fraud-scoring model answers for each golden case of the example plan.
GOOD_BODIES: dict[str, Any] = {
    "clear-fraud": {"score": 0.994437, "label": "fraud"},
    "clear-legit": {"score": 0.00552, "label": "legit"},
    "borderline": {"score": 0.465964, "label": "legit"},
    "fraud-label": {"score": 0.754126, "label": "fraud"},
}


@cache
def example_plan() -> DRPlan:
    return load_plan_file(PLAN_FILE)


def smoke_config(**update: Any) -> SmokeTests:
    return example_plan().smoke_tests.model_copy(update=update)


def ok(case: str, body: Any, latency_ms: float = 40.0) -> Invocation:
    return Invocation(case=case, status=200, latency_ms=latency_ms, body=body)


def good_run(latency_ms: float = 40.0, **bodies: Any) -> list[Invocation]:
    """One invocation per example case, correct unless a body is overridden (case names use _ for -)."""
    out = []
    for case in example_plan().smoke_tests.cases:
        body = bodies.get(case.name.replace("-", "_"), GOOD_BODIES[case.name])
        out.append(ok(case.name, body, latency_ms))
    return out


def judge(expect: Expectation, body: Any) -> Any:
    return judge_case(expect, ok("case", body))


SCORE = Expectation(field="score", value=0.9, tolerance=0.05)


# -- extract


@pytest.mark.parametrize(
    ("body", "path", "found"),
    [
        ({"score": 0.9}, "score", 0.9),
        ({"predictions": [{"score": 0.1}, {"score": 0.7}]}, "predictions.1.score", 0.7),
        ([{"label": "fraud"}], "0.label", "fraud"),
        ({"outputs": {"probs": [[0.2, 0.8]]}}, "outputs.probs.0.1", 0.8),
        ({"0": "a dict key that looks like an index"}, "0", "a dict key that looks like an index"),
        ({"label": None}, "label", None),
        ({"scores": [0.1, 0.2]}, "scores", [0.1, 0.2]),
    ],
)
def test_extract_follows_dot_paths_through_dicts_and_lists(body: Any, path: str, found: Any) -> None:
    assert extract(body, path) == found


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"score": 0.9}, "label"),
        ({"predictions": [{"score": 0.1}]}, "predictions.1.score"),
        ({"predictions": [{"score": 0.1}]}, "predictions.first.score"),
        ({"score": 0.9}, "score.value"),
        ("not json at all", "score"),
        (None, "score"),
        ([], "0"),
    ],
)
def test_extract_reports_absent_fields_as_missing_not_as_none(body: Any, path: str) -> None:
    # Given a response without the field / Then it is distinguishable from a field that is null
    assert extract(body, path) is _MISSING


def test_a_missing_field_fails_the_case_and_names_the_field() -> None:
    result = judge(Expectation(field="predictions.0.score", value=0.9, tolerance=0.05), {"predictions": []})
    assert not result.passed
    assert "predictions.0.score" in result.reason


# -- judge_case: numbers


@pytest.mark.parametrize("observed", [0.9, 0.93, 0.87, 1])
def test_a_score_within_tolerance_passes(observed: float) -> None:
    result = judge(Expectation(field="score", value=0.9, tolerance=0.1), {"score": observed})
    assert result.passed, result.reason
    assert result.observed == observed


@pytest.mark.parametrize("observed", [0.96, 0.84, 0.0, -0.9])
def test_a_score_outside_tolerance_fails_and_says_by_how_much(observed: float) -> None:
    result = judge(SCORE, {"score": observed})
    assert not result.passed
    assert "away from 0.9" in result.reason
    assert result.observed == observed


@pytest.mark.parametrize(
    ("value", "tolerance", "observed"),
    [
        (0.9, 0.05, 0.95),
        (0.9, 0.05, 0.85),
        (0.1, 0.05, 0.15),
        (0.1, 0.05, 0.05),
        (0.5, 0.0, 0.5),
        (250.3, 0.1, 250.4),
        # A regression model (e.g. a price) with a decimal tolerance: exactly at the tolerance, as written.
        (123456.7, 0.1, 123456.8),
    ],
)
def test_a_value_exactly_at_the_tolerance_passes(value: float, tolerance: float, observed: float) -> None:
    # Given an expectation and an answer exactly `tolerance` away, both written in decimal
    result = judge(Expectation(field="y", value=value, tolerance=tolerance), {"y": observed})
    # Then the case passes
    assert result.passed, result.reason


@pytest.mark.parametrize(
    "observed",
    ["0.9", True, False, None, [0.9], {"value": 0.9}, math.nan, math.inf, -math.inf],
    ids=["string", "true", "false", "null", "list", "object", "nan", "inf", "-inf"],
)
def test_a_non_number_never_satisfies_a_numeric_expectation(observed: Any) -> None:
    # Given a response whose score is not a finite number (True would otherwise be 1.0)
    result = judge(Expectation(field="score", value=1.0, tolerance=0.5), {"score": observed})
    # Then the case fails, saying a number was expected
    assert not result.passed
    assert "expected a number" in result.reason


def test_an_absurdly_large_integer_score_fails_the_case_instead_of_crashing() -> None:
    # Given a broken model server answering with a 400-digit integer (valid JSON, parsed as a Python int)
    # When judged / Then the case fails like any wrong score; the smoke test itself must not crash
    result = judge(SCORE, {"score": 10**400})
    assert not result.passed


# -- judge_case: exact values


@pytest.mark.parametrize(
    ("equals", "observed"),
    [
        ("fraud", "fraud"),
        (None, None),
        (3, 3),
        (["fraud", "review"], ["fraud", "review"]),
        ({"label": "fraud", "codes": [1, 2]}, {"codes": [1, 2], "label": "fraud"}),
        (True, True),
    ],
)
def test_an_exact_expectation_passes_on_an_equal_value(equals: Any, observed: Any) -> None:
    result = judge(Expectation(field="x", equals=equals), {"x": observed})
    assert result.passed, result.reason


@pytest.mark.parametrize(
    ("equals", "observed"),
    [
        ("fraud", "Fraud"),
        ("fraud", "fraud "),
        ("fraud", None),
        (None, "null"),
        (["fraud", "review"], ["review", "fraud"]),
        (["fraud"], ["fraud", "fraud"]),
        ({"label": "fraud"}, {"label": "fraud", "extra": 1}),
        ("1", 1),
    ],
)
def test_an_exact_expectation_fails_on_any_other_value(equals: Any, observed: Any) -> None:
    result = judge(Expectation(field="x", equals=equals), {"x": observed})
    assert not result.passed
    assert repr(equals) in result.reason


@pytest.mark.parametrize(
    ("equals", "observed"),
    [(True, 1), (0, False), ([True, False], [1, 0])],
)
def test_json_booleans_and_numbers_are_different_exact_values(equals: Any, observed: Any) -> None:
    # Given `equals: true` and a model that answers 1 (JSON true and 1 are different values)
    result = judge(Expectation(field="x", equals=equals), {"x": observed})
    # Then the exact expectation is not met
    assert not result.passed, result.reason


# -- judge_case: transport


@pytest.mark.parametrize("status", [500, 503, 404, 302, 199])
def test_an_http_error_fails_the_case_with_the_status(status: int) -> None:
    # Given an error status, even with a correct-looking body
    result = judge_case(SCORE, Invocation(case="c", status=status, latency_ms=5, body={"score": 0.9}))
    # Then the case fails and says which status
    assert not result.passed
    assert f"HTTP {status}" in result.reason


def test_a_transport_error_fails_the_case_with_the_error() -> None:
    inv = Invocation(case="c", status=None, latency_ms=2000, error="timed out after 2s")
    result = judge_case(SCORE, inv)
    assert not result.passed
    assert "timed out after 2s" in result.reason
    assert result.latency_ms == 2000


# -- p95


def test_p95_is_nearest_rank() -> None:
    assert p95(list(range(1, 21))) == 19
    assert p95(list(range(100, 0, -1))) == 95
    assert p95([10.0] * 9 + [500.0]) == 500.0  # 10 samples: rank ceil(9.5) = 10, never interpolated down
    assert p95([7.5]) == 7.5
    assert p95([]) == math.inf


LATENCIES = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=200)


@given(LATENCIES)
def test_p95_lies_between_the_median_and_the_maximum(values: list[float]) -> None:
    result = p95(values)
    assert statistics.median(values) <= result <= max(values)
    assert result in values


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_p95_of_one_sample_is_that_sample(value: float) -> None:
    assert p95([value]) == value


# -- verdict


def test_all_cases_correct_and_fast_passes() -> None:
    # Given the example plan's four cases all answered correctly in 40-120 ms
    invs = good_run()
    invs[1] = ok(invs[1].case, invs[1].body, 120.0)
    # When judged
    result = verdict(example_plan().smoke_tests, invs, target="secondary", region="us-west-2", at=AT)
    # Then the endpoint passes
    assert result.passed, result.reason
    assert result.success_ratio == 1.0
    assert result.p95_latency_ms == 120.0
    assert "4/4 cases passed" in result.reason
    assert (result.target, result.region, result.at) == ("secondary", "us-west-2", AT)


def test_one_wrong_score_fails_the_plan_and_the_reason_names_the_case() -> None:
    # Given the borderline case scores 0.8 (a different model is deployed)
    invs = good_run(borderline={"score": 0.8, "label": "fraud"})
    # When judged against min_success_ratio 1.0
    result = verdict(example_plan().smoke_tests, invs, target="secondary", region="us-west-2", at=AT)
    # Then it fails, and the reason names the failing case and what was wrong
    assert not result.passed
    assert result.success_ratio == 0.75
    assert "borderline" in result.reason and "score=0.8" in result.reason
    assert "clear-fraud" not in result.reason
    assert [c.case for c in result.cases if not c.passed] == ["borderline"]


def test_a_lower_success_ratio_tolerates_one_failure_but_not_two() -> None:
    config = smoke_config(min_success_ratio=0.75)
    one_bad = good_run(borderline={"score": 0.8})
    two_bad = good_run(borderline={"score": 0.8}, fraud_label={"label": "legit"})
    assert verdict(config, one_bad, target="secondary", region="us-west-2", at=AT).passed
    result = verdict(config, two_bad, target="secondary", region="us-west-2", at=AT)
    assert not result.passed
    assert "0.50 below 0.75" in result.reason
    assert "borderline" in result.reason and "fraud-label" in result.reason


def test_a_latency_budget_breach_fails_even_when_every_answer_is_right() -> None:
    # Given every answer correct but slow (budget 300 ms)
    invs = good_run(latency_ms=450.0)
    # When judged
    result = verdict(example_plan().smoke_tests, invs, target="secondary", region="us-west-2", at=AT)
    # Then it fails on latency, saying so
    assert not result.passed
    assert result.success_ratio == 1.0
    assert "p95 latency 450 ms over the 300 ms budget" in result.reason


def test_latency_exactly_at_the_budget_passes() -> None:
    result = verdict(
        example_plan().smoke_tests, good_run(latency_ms=300.0), target="primary", region="us-east-1", at=AT
    )
    assert result.passed, result.reason


def test_an_endpoint_that_is_down_fails_with_every_case_named() -> None:
    invs = [
        Invocation(case=c.name, status=None, latency_ms=2000.0, error="connection refused")
        for c in example_plan().smoke_tests.cases
    ]
    result = verdict(example_plan().smoke_tests, invs, target="primary", region="us-east-1", at=AT)
    assert not result.passed
    assert result.success_ratio == 0.0
    for case in ("clear-fraud", "clear-legit", "borderline", "fraud-label"):
        assert f"{case}: no answer: connection refused" in result.reason


def test_cases_that_never_ran_count_as_failures() -> None:
    # Given only three of the four cases produced an invocation
    result = verdict(
        smoke_config(min_success_ratio=0.5), good_run()[:3], target="primary", region="us-east-1", at=AT
    )
    # Then the verdict fails and says so
    assert not result.passed
    assert "only 3 of 4 cases ran" in result.reason


# -- a precondition re-measures an endpoint that is only slow
def _verdict(*, correct: bool, slow: bool) -> SmokeVerdict:
    budget = SmokeTests.model_validate(
        {
            "latency_budget_p95_ms": 100,
            "cases": [{"name": "c", "payload": {}, "expect": {"field": "x", "equals": 1}}],
        }
    )
    body = {"x": 1 if correct else 2}
    inv = Invocation(case="c", status=200, latency_ms=500.0 if slow else 5.0, body=body)
    return verdict(budget, [inv], target="primary", region="us-east-1", at=datetime(2026, 1, 1, tzinfo=UTC))


def test_a_slow_but_right_endpoint_is_measured_again_and_passes_once_it_is_fast() -> None:
    # Given an endpoint that answers right, slowly the first time and then fast
    answers = iter([_verdict(correct=True, slow=True), _verdict(correct=True, slow=False)])
    calls = []

    def measure() -> SmokeVerdict:
        calls.append(1)
        return next(answers)

    # When the precondition measures it with three attempts
    result = remeasure_slow(measure, 3)
    # Then the spike did not refuse it: it was measured twice and passed
    assert result.passed and len(calls) == 2
    assert slow_only(_verdict(correct=True, slow=True))


def test_a_wrong_answer_is_final_and_a_slow_endpoint_stays_refused_after_its_attempts() -> None:
    # Given an endpoint answering wrong, and one that stays slow
    wrong, slow = [], []

    def measure_wrong() -> SmokeVerdict:
        wrong.append(1)
        return _verdict(correct=False, slow=True)

    def measure_slow() -> SmokeVerdict:
        slow.append(1)
        return _verdict(correct=True, slow=True)

    # When each is measured with three attempts
    w, s = remeasure_slow(measure_wrong, 3), remeasure_slow(measure_slow, 3)
    # Then the wrong answer fails on the first measurement, the slow one after all three, naming the latency
    assert not w.passed and len(wrong) == 1 and not slow_only(w)
    assert not s.passed and len(slow) == 3 and "p95 latency" in s.reason
    with pytest.raises(ValueError):
        remeasure_slow(measure_slow, 0)


def test_re_measuring_stops_once_the_requests_took_the_time_a_task_may_spend() -> None:
    # Given a side that stays slow (500 ms a measurement) and a task that may spend 900 ms on requests
    calls = []

    def measure() -> SmokeVerdict:
        calls.append(1)
        return _verdict(correct=True, slow=True)

    # When it is measured with three attempts and that spend
    result = remeasure_slow(measure, 3, max_spent_ms=900)
    # Then the second measurement reached the spend and no third one started
    assert not result.passed and len(calls) == 2
