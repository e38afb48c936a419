"""Operator-started operations (API and CLI): failover now, or show exactly what a failover would do."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.models.failover import FailoverRequest, Mode
from chalicelib.services.deps import Deps
from chalicelib.services.smoke import run_smoke
from chalicelib.services.workload_lock import start_claimed
from chalicelib.workflows.failover import build_failover


class FailoverPlanPreview(BaseModel):
    """A dry run: what would happen, with nothing changed."""

    workload: str
    mode: Mode
    steps: list[str] = Field(description="State names in the order an operator-started run visits them.")
    traffic_before: dict[str, int] | None
    traffic_after: dict[str, int]
    backup_smoke_passed: bool = Field(description="Would the backup pass its smoke tests right now?")
    backup_smoke_reason: str
    would_refuse: bool = Field(description="True when the run would stop at the backup check.")


class FailoverStarted(BaseModel):
    workload: str
    execution_arn: str
    name: str


def happy_path(definition: dict[str, Any], mode: Mode) -> list[str]:
    """Walk the generated ASL the way an operator-started, successful run goes."""
    states = definition["States"]
    steps: list[str] = []
    name: str | None = definition["StartAt"]
    while name is not None and name not in steps:
        steps.append(name)
        state = states[name]
        name = _choose(name, state, mode) if state["Type"] == "Choice" else state.get("Next")
    return steps


def _choose(name: str, state: dict[str, Any], mode: Mode) -> str:
    if name == "HasTrigger":
        return str(state["Default"])  # operator-started: no sustain window
    if name == "IsGraceful":
        return str(state["Choices"][0]["Next"] if mode == "graceful" else state["Default"])
    if name == "ReplicationCaughtUp":
        return str(state["Choices"][0]["Next"])
    if name == "Outcome":
        return "FailedOver"
    # Every other choice's first branch is the healthy outcome.
    return str(state["Choices"][0]["Next"])


def preview_failover(workload: str, mode: Mode, d: Deps) -> FailoverPlanPreview:
    plan = d.plans.get(workload)
    definition = build_failover(plan, lambda fn: fn)
    try:
        before: dict[str, int] | None = d.router.read(plan).weights
    except Exception:
        before = None
    smoke = run_smoke(plan, "secondary", d, phase="dry-run", record=False)
    return FailoverPlanPreview(
        workload=workload,
        mode=mode,
        steps=happy_path(definition, mode),
        traffic_before=before,
        traffic_after={"primary": 0, "secondary": 100},
        backup_smoke_passed=smoke.passed,
        backup_smoke_reason=smoke.reason,
        would_refuse=not smoke.passed,
    )


def start_failover(
    workload: str, mode: Mode, reason: str, requested_by: str, d: Deps, *, force: bool = False
) -> FailoverStarted:
    """Claim the workload's lock and start a failover (OperationConflict naming the holder when taken)."""
    d.plans.get(workload)  # unknown workload -> UnknownWorkload before anything starts
    request = FailoverRequest(workload=workload, mode=mode, reason=reason, requested_by=requested_by)
    name = f"failover-{workload}-op-{d.clock():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    arn, _ = start_claimed(workload, "failover", name, request.model_dump(mode="json"), d)
    d.ledger.record(
        workload,
        "operator",
        "failover-requested",
        reason,
        actor=requested_by,
        execution=arn,
        detail={"mode": mode, **({"force": True} if force else {})},
    )
    return FailoverStarted(workload=workload, execution_arn=arn, name=name)
