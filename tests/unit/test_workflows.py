"""The generated failover state machine: shape rules that hold for every plan variant."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from chalicelib.models.planfile import load_plan_text
from chalicelib.services.operations import happy_path
from chalicelib.workflows.asl import TASK_TIMEOUT_SECONDS, capped_retries
from chalicelib.workflows.failback import build_failback
from chalicelib.workflows.failover import build_failover
from chalicelib.workflows.verify import build_verification

EXAMPLE = (Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml").read_text()


def variant(sustain: str, probe: str) -> str:
    text = EXAMPLE.replace("sustain: 20s", f"sustain: {sustain}")
    return text.replace("confirmation_probe: true", f"confirmation_probe: {probe}")


def reachable(definition: dict) -> set[str]:
    states = definition["States"]
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        st = states[name]
        nxt = [st.get("Next"), st.get("Default")]
        nxt += [c["Next"] for c in st.get("Choices", [])] + [c["Next"] for c in st.get("Catch", [])]
        todo += [n for n in nxt if n]
    return seen


@pytest.mark.parametrize("sustain", ["0s", "20s"])
@pytest.mark.parametrize("probe", ["true", "false"])
def test_every_state_is_reachable_and_every_target_exists(sustain: str, probe: str) -> None:
    # Given a plan variant / When its failover machine is built
    definition = build_failover(load_plan_text(variant(sustain, probe)), lambda fn: f"arn:fn:{fn}")
    states = definition["States"]
    # Then no state is unreachable (Step Functions rejects those) and every transition has a target
    assert reachable(definition) == set(states)
    for name, st in states.items():
        for target in [st.get("Next"), st.get("Default"), *[c["Next"] for c in st.get("Choices", [])]]:
            assert target is None or target in states, (name, target)
    # And the sustain wait exists exactly when the plan has a sustain window
    assert ("WaitSustain" in states) is (sustain != "0s")
    assert ("ConfirmOutage" in states) is (probe == "true")


def _tasks(definition: dict) -> list[tuple[str, dict]]:
    """Every Task state, those of Map item processors included."""
    out = []
    for name, st in definition["States"].items():
        if st["Type"] == "Task":
            out.append((name, st))
        processor = st.get("ItemProcessor") or st.get("Iterator")
        if processor:
            out += _tasks(processor)
    return out


def _waits(retry: dict) -> list[float]:
    """The wait before each retry without jitter: the longest FULL jitter can draw."""
    return [
        min(retry["IntervalSeconds"] * retry["BackoffRate"] ** n, retry["MaxDelaySeconds"])
        for n in range(retry["MaxAttempts"])
    ]


@pytest.mark.parametrize("build", [build_failover, build_failback, build_verification])
def test_every_task_rides_out_transient_errors_with_capped_jittered_backoff(build: Any) -> None:
    # Given every Task state of a generated machine
    tasks = _tasks(build(load_plan_text(EXAMPLE), lambda fn: f"arn:fn:{fn}"))
    assert tasks
    for name, st in tasks:
        retry = st["Retry"][-1]
        # Then it retries the Lambda service errors (an invoke timing out included) and our TransientError
        assert {
            "Lambda.ClientExecutionTimeoutException",
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
            "TransientError",
        } <= set(retry["ErrorEquals"]), name
        # And 8 to 10 times, backing off with full jitter (tasks failing together spread their retries)
        assert 8 <= retry["MaxAttempts"] <= 10 and retry["BackoffRate"] > 1, name
        assert retry["JitterStrategy"] == "FULL", name
        # And no wait is longer than MaxDelaySeconds, so a task's retries take minutes at most, not hours
        assert max(_waits(retry)) == retry["MaxDelaySeconds"] and sum(_waits(retry)) <= 90, name


@pytest.mark.parametrize("build", [build_failover, build_failback, build_verification])
def test_capped_retries_shorten_only_the_waits(build: Any) -> None:
    # Given a generated machine (as deployed) and the same machine with its retriers capped at 1 s
    built = build(load_plan_text(EXAMPLE), lambda fn: f"arn:fn:{fn}")
    deployed = copy.deepcopy(built)
    capped = capped_retries(built, 1)
    # Then the generated one is untouched: deployed definitions keep their real backoff
    assert built == deployed
    # And the capped one differs only in its retriers' waits: same states, errors, attempts, rate, jitter
    for (name, st), (_, short) in zip(_tasks(built), _tasks(capped), strict=True):
        assert len(short["Retry"]) == len(st["Retry"]), name
        for retry, capped_retry in zip(st["Retry"], short["Retry"], strict=True):
            assert capped_retry["IntervalSeconds"] == 1 and capped_retry["MaxDelaySeconds"] == 1, name
            kept = {k: v for k, v in retry.items() if k not in ("IntervalSeconds", "MaxDelaySeconds")}
            assert {k: capped_retry[k] for k in kept} == kept, name
    strip = {"IntervalSeconds", "MaxDelaySeconds"}

    def without_waits(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: without_waits(v) for k, v in node.items() if k not in strip}
        return [without_waits(v) for v in node] if isinstance(node, list) else node

    assert without_waits(capped) == without_waits(deployed)


def _without(definition: dict, removed: str) -> dict:
    """The definition with one state taken out (transitions into it lead nowhere)."""
    states = {name: copy.deepcopy(st) for name, st in definition["States"].items() if name != removed}
    for st in states.values():
        for key in ("Next", "Default"):
            if st.get(key) == removed:
                st.pop(key)
        st["Choices"] = [c for c in st.get("Choices", []) if c["Next"] != removed]
        st["Catch"] = [c for c in st.get("Catch", []) if c["Next"] != removed]
    return {**definition, "States": states}


def _reachable_from(definition: dict, start: str) -> set[str]:
    return reachable({**definition, "StartAt": start})


def test_an_alarm_started_failover_takes_the_lock_only_after_its_sustain_window() -> None:
    # Given the example plan (sustain 20s, confirmation probe on)
    definition = build_failover(load_plan_text(EXAMPLE), lambda fn: f"arn:fn:{fn}")
    states = definition["States"]
    # Then an alarm-started run waits first, and an operator-started one takes the lock at once
    assert definition["StartAt"] == "HasTrigger"
    assert states["HasTrigger"]["Choices"][0]["Next"] == "WaitSustain"
    assert states["HasTrigger"]["Default"] == "AcquireLock"
    # And from the sustain wait, the lock is reached only through the recheck and the confirmation probe,
    # so a run stopped while it waits (the trigger cancelling it) holds nothing
    assert "AcquireLock" in _reachable_from(definition, "WaitSustain")
    for gate in ("RecheckQuorum", "ConfirmOutage"):
        assert "AcquireLock" not in _reachable_from(_without(definition, gate), "WaitSustain"), gate
    # And a suppressed run ends through ReleaseLock (a conditional no-op) without ever taking the lock
    assert "AcquireLock" not in _reachable_from(definition, "Suppress")


@pytest.mark.parametrize("sustain", ["0s", "20s"])
@pytest.mark.parametrize("probe", ["true", "false"])
def test_no_execution_timeout_and_every_task_is_bounded(sustain: str, probe: str) -> None:
    # Given a plan variant / When its failover machine is built
    definition = build_failover(load_plan_text(variant(sustain, probe)), lambda fn: f"arn:fn:{fn}")
    # Then there is no execution-wide timeout (it would skip Conclude and ReleaseLock) ...
    assert "TimeoutSeconds" not in definition
    # ... and every Task is bounded instead, a timeout landing in the conclude/release path like any error
    for name, st in definition["States"].items():
        if st["Type"] == "Task":
            assert st["TimeoutSeconds"] == TASK_TIMEOUT_SECONDS, name
            catches = [c for c in st.get("Catch", []) if "States.ALL" in c["ErrorEquals"]]
            assert catches or name == "RecordLockRefusal", name


def test_traffic_moved_but_unvalidated_is_its_own_outcome() -> None:
    states = build_failover(load_plan_text(EXAMPLE), lambda fn: f"arn:fn:{fn}")["States"]
    routes = {c.get("StringEquals"): c["Next"] for c in states["Outcome"]["Choices"]}
    assert states[routes["unvalidated"]] == {
        "Type": "Fail",
        "Error": "FailoverUnvalidated",
        "Cause": "traffic moved to the secondary, then the run failed before validating it: see the ledger",
    }
    assert states[states["Outcome"]["Default"]]["Error"] == "FailoverFailed"


def test_an_operator_failover_takes_the_lock_before_anything_else() -> None:
    # Given the dry-run walk of the generated machine (what the API and CLI show)
    definition = build_failover(load_plan_text(EXAMPLE), lambda fn: fn)
    # Then the only state before the lock is the choice that sends operator runs to it
    assert happy_path(definition, "ungraceful")[:3] == ["HasTrigger", "AcquireLock", "SmokeTestBackup"]
