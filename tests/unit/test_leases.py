"""Lease sizing: a lease covers the stretch until its holder renews it, in both generated state machines."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.leases import STEP_BUDGET, lease
from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_file
from chalicelib.workflows.asl import TASK_TIMEOUT_SECONDS
from chalicelib.workflows.failback import CALLBACK_RESOURCE, build_failback
from chalicelib.workflows.failover import build_failover

ROOT = Path(__file__).resolve().parents[2]
# Functions that take or renew the workload lock (services: acquire_lock, check_replication, shift_traffic,
# failback shift_step / check_bake / await_operator) and the one that gives it back.
RENEWING = {"acquire_lock", "check_replication", "shift_traffic", "failback_shift", "failback_bake"}
RELEASE = "release_lock"


@cache
def example() -> DRPlan:
    return load_plan_file(ROOT / "plans" / "fraud-scoring.yaml")


def _function(state: dict[str, Any]) -> str | None:
    if state.get("Type") != "Task":
        return None
    if state["Resource"] == CALLBACK_RESOURCE:
        return "failback_await"
    return str(state["Resource"]).rsplit(":", 1)[-1]


def _renews(state: dict[str, Any]) -> bool:
    return _function(state) in RENEWING or _function(state) == "failback_await"


def _next(state: dict[str, Any]) -> list[str]:
    out = [state[k] for k in ("Next", "Default") if k in state]
    return out + [c["Next"] for c in (*state.get("Choices", []), *state.get("Catch", []))]


def longest_unrenewed_run(definition: dict[str, Any]) -> tuple[int, list[str]]:
    """The most Task states any path runs after a renewal before the next renewal or the release."""
    states = definition["States"]
    best: tuple[int, list[str]] = (0, [])

    def walk(name: str, path: list[str]) -> None:
        nonlocal best
        state = states[name]
        if _renews(state):
            return
        assert name not in path, f"a loop without a renewal: {path + [name]}"
        path = path + [name]
        if _function(state) == RELEASE or not _next(state):
            tasks = [n for n in path if _function(states[n])]
            best = max(best, (len(tasks), tasks))
            return
        for nxt in _next(state):
            walk(nxt, path)

    for state in states.values():
        if _renews(state):
            for nxt in _next(state):
                walk(nxt, [])
    return best


@pytest.mark.parametrize("kind", ["failover", "failback"])
def test_every_lease_covers_the_tasks_until_the_next_renewal(kind: str) -> None:
    # Given the generated machine (failback with approval, so every operator wait is in it)
    plan = example()
    if kind == "failback":
        policy = plan.failback.model_copy(update={"approval_required": True})
        plan = plan.model_copy(update={"failback": policy})
    build = build_failover if kind == "failover" else build_failback
    definition = build(plan, lambda fn: f"arn:fn:{fn}")
    # When we find the longest run of tasks between two renewals (or a renewal and the release)
    count, tasks = longest_unrenewed_run(definition)
    # Then one attempt of each, to its TimeoutSeconds, fits in the lease's step budget
    assert count > 0
    assert count * timedelta(seconds=TASK_TIMEOUT_SECONDS) <= STEP_BUDGET, tasks
    # And the machine has no execution-wide timeout (the lease, not a timeout, bounds a dead run's lock)
    assert "TimeoutSeconds" not in definition


def test_a_lease_is_the_wait_before_the_next_renewal_plus_the_step_budget() -> None:
    # Given the example plan's longest failback wait (an hour-long approval), the old run-long lease (79 min
    # for the example plan) is gone: a moving failover or failback holds the lock for the step budget
    assert lease() == STEP_BUDGET == timedelta(minutes=15)
    assert lease(timedelta(hours=1)) == timedelta(minutes=75)
    assert lease(timedelta(seconds=-5)) == STEP_BUDGET
