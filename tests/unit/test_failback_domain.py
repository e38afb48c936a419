"""Failback rules: gates, model identity, reverse replication, bake pacing and the auto-failback decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.failback import (
    HISTORY_LIMIT,
    MAX_BAKE_CHUNK,
    ModelIdentity,
    bake_chunk_seconds,
    compare_models,
    evaluate_gates,
    history_estimate,
    next_bake,
    pick_step,
    replication_back,
    should_auto_failback,
    smoke_gate,
    step_weights,
)
from chalicelib.domain.listings import ObjectInfo, diff_listings
from chalicelib.domain.smoke import Invocation, SmokeVerdict, verdict
from chalicelib.models.alarms import AlarmSnapshot
from chalicelib.models.ledger import WorkloadState
from chalicelib.models.plan import DRPlan, FailbackPolicy
from chalicelib.models.planfile import load_plan_file

PLAN_FILE = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
GATES = ["fraud-scoring-use1-errors", "fraud-scoring-use1-latency"]


@cache
def example() -> DRPlan:
    return load_plan_file(PLAN_FILE)


def plan_with(**failback: object) -> DRPlan:
    base = example()
    policy = base.failback.model_copy(update=failback)
    return base.model_copy(update={"failback": policy})


def smoke(*outcomes: str) -> SmokeVerdict:
    """A verdict on the example's cases: 'ok', 'wrong', 'timeout' or 'error' per case, in order."""
    plan = example()
    invocations = []
    for case, outcome in zip(plan.smoke_tests.cases, outcomes, strict=False):
        expect = case.expect
        good = expect.value if expect.value is not None else expect.equals
        if outcome == "timeout":
            invocations.append(Invocation(case=case.name, latency_ms=2000, error="URLError: timed out"))
        elif outcome == "error":
            invocations.append(Invocation(case=case.name, status=503, latency_ms=5, body={"error": "down"}))
        else:
            value = good if outcome == "ok" else ("legit" if isinstance(good, str) else 1 - float(good))
            invocations.append(
                Invocation(case=case.name, status=200, latency_ms=5, body={expect.field.split(".")[0]: value})
            )
    return verdict(plan.smoke_tests, invocations, target="primary", region="us-east-1", at=T0)


def snaps(**states: str) -> dict[str, AlarmSnapshot]:
    names = {"errors": GATES[0], "latency": GATES[1]}
    return {names[k]: AlarmSnapshot(name=names[k], state=v, since=T0) for k, v in states.items()}  # type: ignore[arg-type]


# -- gates -------------------------------------------------------------------------------------------------
def test_gates_pass_when_alarms_ok_and_smoke_passes() -> None:
    # Given both gate alarms OK and a passing smoke test / Then the gate passes
    result = evaluate_gates(GATES, snaps(errors="OK", latency="OK"), smoke("ok", "ok", "ok", "ok"))
    assert result.outcome == "pass"


def test_a_gate_alarm_in_alarm_fails_the_gate_even_if_smoke_passes() -> None:
    result = evaluate_gates(GATES, snaps(errors="ALARM", latency="OK"), smoke("ok", "ok", "ok", "ok"))
    assert result.outcome == "fail" and GATES[0] in result.reason


def test_wrong_prediction_fails_the_gate() -> None:
    result = evaluate_gates(GATES, snaps(errors="OK", latency="OK"), smoke("ok", "wrong", "ok", "ok"))
    assert result.outcome == "fail" and "smoke tests fail" in result.reason


def test_insufficient_data_or_missing_alarm_is_inconclusive() -> None:
    # Given one alarm without data and one that does not exist
    result = evaluate_gates(GATES, snaps(errors="INSUFFICIENT_DATA"), smoke("ok", "ok", "ok", "ok"))
    # Then the gate asks for a decision rather than guessing
    assert result.outcome == "inconclusive"
    assert "INSUFFICIENT_DATA" in result.reason and "MISSING" in result.reason


def test_alarm_beats_inconclusive() -> None:
    result = evaluate_gates(
        GATES, snaps(errors="ALARM", latency="INSUFFICIENT_DATA"), smoke("ok", "ok", "ok", "ok")
    )
    assert result.outcome == "fail"


def test_a_few_probe_timeouts_are_inconclusive_many_fail() -> None:
    # Given one timeout of four probes / Then inconclusive (below the failure threshold)
    assert smoke_gate(smoke("ok", "timeout", "ok", "ok"))[0] == "inconclusive"
    # Given two of four / Then that is at the threshold: the primary looks down
    assert smoke_gate(smoke("timeout", "timeout", "ok", "ok"))[0] == "fail"
    # Given a timeout and an HTTP error / Then the error is definite
    assert smoke_gate(smoke("timeout", "error", "ok", "ok"))[0] == "fail"


def test_no_gate_alarms_configured_still_gates_on_smoke() -> None:
    assert evaluate_gates([], {}, smoke("ok", "ok", "ok", "ok")).outcome == "pass"
    assert evaluate_gates([], {}, smoke("wrong", "ok", "ok", "ok")).outcome == "fail"


# -- readiness ---------------------------------------------------------------------------------------------
def ident(role: str, **fields: str | None) -> ModelIdentity:
    return ModelIdentity(role=role, region="us-east-1" if role == "primary" else "us-west-2", **fields)


def test_same_version_and_checksum_match() -> None:
    check = compare_models(
        ident("primary", version="1.0.0", sha256="ab"), ident("secondary", version="1.0.0", sha256="ab")
    )
    assert check.passed


def test_different_version_is_a_mismatch_naming_both() -> None:
    check = compare_models(
        ident("primary", version="2.0.0", sha256="cd"), ident("secondary", version="1.0.0", sha256="ab")
    )
    assert not check.passed and "2.0.0" in check.reason and "1.0.0" in check.reason


def test_unreadable_or_uncomparable_identity_is_not_ready() -> None:
    assert not compare_models(ident("primary", error="HTTP 503"), ident("secondary", version="1")).passed
    assert not compare_models(ident("primary", version="1"), ident("secondary", sha256="ab")).passed


def test_sagemaker_artifacts_compare_by_region_neutral_key() -> None:
    a = ident("primary", artifact="models/fraud/1.0.0/model.tar.gz")
    b = ident("secondary", artifact="models/fraud/1.0.0/model.tar.gz")
    assert compare_models(a, b).passed


def obj(key: str, at: datetime, etag: str = "e1") -> ObjectInfo:
    return ObjectInfo(key=key, size=10, etag=etag, last_modified=at)


def test_reverse_replication_passes_within_rpo_and_fails_beyond() -> None:
    rpo = timedelta(minutes=1)
    # Given a write made on the secondary 30s ago, not yet on the primary
    secondary = [obj("a", T0 - timedelta(seconds=30))]
    recent = replication_back("data", diff_listings(secondary, []), rpo, T0)
    assert recent.passed and recent.pending == 1
    # Given one made 5 minutes ago
    old = replication_back("data", diff_listings([obj("a", T0 - timedelta(minutes=5))], []), rpo, T0)
    assert not old.passed and old.lagging == 1 and "older than the 1m RPO" in old.reason


def test_reverse_replication_ignores_objects_only_on_the_primary_and_newer_primary_copies() -> None:
    secondary = [obj("a", T0 - timedelta(hours=1), etag="old")]
    primary = [obj("a", T0 - timedelta(minutes=30), etag="new"), obj("b", T0 - timedelta(hours=2))]
    result = replication_back("data", diff_listings(secondary, primary), timedelta(minutes=1), T0)
    assert result.passed and result.pending == 0


# -- steps and bake ----------------------------------------------------------------------------------------
def test_step_weights_always_sum_to_100() -> None:
    assert step_weights(25) == {"primary": 25, "secondary": 75}


def test_fast_track_jumps_to_the_last_step() -> None:
    assert pick_step([10, 25, 50, 100], 1, fast_track=False) == 1
    assert pick_step([10, 25, 50, 100], 1, fast_track=True) == 3


def test_bake_waits_in_chunks_and_controls_act_between_them() -> None:
    until = T0 + timedelta(seconds=45)
    assert next_bake(T0, until, 30, fast_track=False, pause_requested=False).wait_seconds == 30
    assert (
        next_bake(T0 + timedelta(seconds=30), until, 30, fast_track=False, pause_requested=False).wait_seconds
        == 15
    )
    assert next_bake(until, until, 30, fast_track=False, pause_requested=False).action == "evaluate"
    assert next_bake(T0, until, 30, fast_track=True, pause_requested=False).action == "evaluate"
    assert next_bake(T0, until, 30, fast_track=True, pause_requested=True).action == "pause"


def test_chunks_are_a_tenth_of_the_bake_up_to_a_minute() -> None:
    assert bake_chunk_seconds(FailbackPolicy(bake=timedelta(seconds=10))) == 1
    assert bake_chunk_seconds(FailbackPolicy(bake=timedelta(minutes=5))) == 30
    assert bake_chunk_seconds(FailbackPolicy(bake=timedelta(hours=1))) == MAX_BAKE_CHUNK.total_seconds()


@given(
    bake=st.integers(min_value=0, max_value=7 * 86_400),
    count=st.integers(min_value=1, max_value=100),
)
def test_history_stays_well_under_the_limit_for_any_policy(bake: int, count: int) -> None:
    # Given any bake up to a week and any number of steps (1..100, ending at 100)
    steps = sorted({*range(1, 100, max(1, 100 // count)), 100})[-count:]
    policy = FailbackPolicy(steps=steps, bake=timedelta(seconds=bake))
    # Then an uninterrupted execution uses under 60% of Step Functions' 25,000-event history limit, which
    # leaves room for thousands of pauses and retried tasks
    assert history_estimate(policy) < 0.6 * HISTORY_LIMIT


# -- auto failback -----------------------------------------------------------------------------------------
def failed_over_state(**changes: object) -> WorkloadState:
    base = WorkloadState(
        workload="fraud-scoring", active_region="us-west-2", last_failover_at=T0 - timedelta(hours=1)
    )
    return base.model_copy(update=changes)


def test_auto_failback_off_never_starts() -> None:
    decision = should_auto_failback(plan_with(auto=False), failed_over_state(), T0 - timedelta(hours=1), T0)
    assert not decision.start and "off" in decision.reason


def test_auto_failback_waits_out_the_healthy_window() -> None:
    plan = plan_with(auto=True, healthy_window=timedelta(minutes=5))
    assert not should_auto_failback(plan, failed_over_state(), T0 - timedelta(minutes=4), T0).start
    started = should_auto_failback(plan, failed_over_state(), T0 - timedelta(minutes=5), T0)
    assert started.start and started.execution_name


def test_auto_failback_never_during_the_cooldown() -> None:
    # Given the failover completed 5 minutes ago and a 10 minute cooldown
    plan = plan_with(auto=True, healthy_window=timedelta(0))
    state = failed_over_state(last_failover_at=T0 - timedelta(minutes=5))
    decision = should_auto_failback(plan, state, T0 - timedelta(minutes=5), T0)
    # Then no failback, however healthy the primary
    assert not decision.start and "cooldown" in decision.reason


def test_auto_failback_needs_a_failed_over_workload_and_a_healthy_primary() -> None:
    plan = plan_with(auto=True, healthy_window=timedelta(0))
    assert not should_auto_failback(plan, failed_over_state(active_region="us-east-1"), T0, T0).start
    assert not should_auto_failback(plan, failed_over_state(), None, T0).start


def test_auto_failback_name_is_deterministic_per_healthy_streak() -> None:
    plan = plan_with(auto=True, healthy_window=timedelta(minutes=1))
    since = T0 - timedelta(minutes=10)
    a = should_auto_failback(plan, failed_over_state(), since, T0)
    b = should_auto_failback(plan, failed_over_state(), since, T0 + timedelta(minutes=3))
    c = should_auto_failback(plan, failed_over_state(), since + timedelta(minutes=1), T0)
    assert a.execution_name == b.execution_name != c.execution_name
