"""The generated failback state machine, as data: structure follows the plan's failback policy."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_file
from chalicelib.workflows.asl import TASK_TIMEOUT_SECONDS
from chalicelib.workflows.failback import CALLBACK_RESOURCE, FAILBACK_TASKS, build_failback

PLAN_FILE = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"


@cache
def example() -> DRPlan:
    return load_plan_file(PLAN_FILE)


def definition(**failback: object) -> dict[str, Any]:
    base = example()
    plan = base.model_copy(update={"failback": base.failback.model_copy(update=failback)})
    return build_failback(
        plan, lambda fn: f"arn:aws:lambda:us-east-1:123456789012:function:lifeboat-dev-{fn}"
    )


def next_states(state: dict[str, Any]) -> set[str]:
    out = {state[k] for k in ("Next", "Default") if k in state}
    out |= {c["Next"] for c in state.get("Choices", [])}
    out |= {c["Next"] for c in state.get("Catch", [])}
    return out


def test_every_task_retries_and_catches_and_every_state_is_reachable() -> None:
    # Given the definition generated from the example plan with approval on
    d = definition(approval_required=True)
    states = d["States"]
    # Then it is JSONPath-only ASL, every Task retries transient errors and catches the rest
    assert "QueryLanguage" not in d
    for name, state in states.items():
        if state["Type"] == "Task":
            assert any("TransientError" in r["ErrorEquals"] for r in state["Retry"]), name
            if name != "RecordLockRefusal":
                assert state.get("Catch"), name
    # And every state is reachable from the start, and every transition names an existing state
    seen, todo = set(), [d["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for nxt in next_states(states[name]):
            assert nxt in states, f"{name} -> {nxt}"
            todo.append(nxt)
    assert seen == set(states)


def test_steps_and_bake_come_from_the_policy_as_data() -> None:
    d = definition(steps=[20, 60, 100], bake=timedelta(minutes=5))
    policy = d["States"]["Init"]["Result"]["policy"]
    assert policy == {"steps": [20, 60, 100], "bake_seconds": 300, "chunk_seconds": 30}
    assert d["States"]["Bake"] == {
        "Type": "Wait",
        "SecondsPath": "$.rollout.bake.wait_seconds",
        "Next": "CheckBake",
    }


def test_approval_states_exist_only_when_the_plan_requires_approval() -> None:
    with_approval = definition(approval_required=True, approval_timeout=timedelta(minutes=20))
    without = definition(approval_required=False)
    assert without["States"]["PrimaryReady"]["Choices"][0]["Next"] == "Init"
    assert "RequestApproval" not in without["States"]
    ask = with_approval["States"]["RequestApproval"]
    assert ask["Resource"] == CALLBACK_RESOURCE and ask["TimeoutSeconds"] == 1200
    assert ask["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
    timeout_catch = ask["Catch"][0]
    assert timeout_catch["ErrorEquals"] == ["States.Timeout"] and timeout_catch["Next"] == "ApprovalTimedOut"


def test_operator_waits_time_out_into_a_rollback() -> None:
    states = definition()["States"]
    for name in ("Paused", "AwaitDecision"):
        assert states[name]["Resource"] == CALLBACK_RESOURCE
        assert states[name]["Catch"][0] == {
            "ErrorEquals": ["States.Timeout"],
            "ResultPath": "$.error",
            "Next": "Rollback",
        }


def test_every_outcome_goes_through_conclude_and_release() -> None:
    states = definition(approval_required=True)["States"]
    concluders = [n for n, s in states.items() if s.get("Resource", "").endswith("failback_conclude")]
    for name in concluders:
        if name != "RecordLockRefusal":  # refused by the lock: the lock is not ours to release
            assert states[name]["Next"] == "ReleaseLock", name
    assert states["ReleaseLock"]["Next"] == "Outcome"


def test_the_task_list_names_every_function_the_definition_calls() -> None:
    text = json.dumps(definition(approval_required=True))
    for fn in FAILBACK_TASKS:
        assert f"lifeboat-dev-{fn}" in text


def test_no_execution_timeout_and_every_task_is_bounded() -> None:
    # Given the definition with every kind of state (approval on)
    d = definition(approval_required=True, approval_timeout=timedelta(minutes=20))
    # Then no execution-wide timeout (a timed-out execution would skip Conclude and ReleaseLock) ...
    assert "TimeoutSeconds" not in d
    # ... and every Task is bounded: operator waits by the approval timeout, the others by the task bound
    for name, state in d["States"].items():
        if state["Type"] != "Task":
            continue
        bound = 1200 if state["Resource"] == CALLBACK_RESOURCE else TASK_TIMEOUT_SECONDS
        assert state["TimeoutSeconds"] == bound, name
