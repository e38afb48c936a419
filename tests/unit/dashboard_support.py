"""Builders shared by the dashboard's unit tests: executions with the steps and task results the state
machines produce, and the example plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.domain.history import Step
from chalicelib.models.api import execution_id
from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_file
from chalicelib.services.executions import ExecutionDetail

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ACCOUNT = "123456789012"


def plan() -> DRPlan:
    return load_plan_file(str(ROOT / "plans" / "fraud-scoring.yaml"))


def step(name: str, at: float, took: float | None = 0.5, result: Any = None, type_: str = "Task") -> Step:
    entered = T0 + timedelta(seconds=at)
    return Step(
        name=name,
        type=type_,
        entered_at=entered,
        exited_at=None if took is None else entered + timedelta(seconds=took),
        duration_seconds=took,
        status="running" if took is None else "succeeded",
        result=result,
    )


def detail(
    kind: str,
    steps: list[Step],
    *,
    status: str = "RUNNING",
    input: dict[str, Any] | None = None,
    stopped_at: datetime | None = None,
    error: str | None = None,
    cause: str | None = None,
    output: Any = None,
) -> ExecutionDetail:
    name = f"{kind}-fraud-scoring-op-20260301T120000-abc123"
    arn = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:lifeboat-dev-fraud-scoring-{kind}:{name}"
    return ExecutionDetail(
        id=execution_id(arn),
        name=name,
        arn=arn,
        workload="fraud-scoring",
        kind=kind,
        status=status,
        started_at=T0,
        stopped_at=stopped_at,
        requested_by="arn:aws:iam::123456789012:user/alice",
        reason="primary restored",
        input=input or {"workload": "fraud-scoring"},
        output=output,
        error=error,
        cause=cause,
        steps=steps,
        decisions=[],
    )


def progress(index: int, primary: int) -> dict[str, Any]:
    """A failback ShiftStep result (StepProgress)."""
    return {
        "index": index,
        "primary": primary,
        "weights": {"primary": primary, "secondary": 100 - primary},
        "last": primary == 100,
        "next_index": index + 1,
        "fast_tracked": False,
        "shifted_at": (T0 + timedelta(seconds=10)).isoformat(),
        "first_shift_at": (T0 + timedelta(seconds=5)).isoformat(),
    }


def bake(index: int, until: datetime) -> dict[str, Any]:
    """A failback CheckBake result (BakeStatus)."""
    return {
        "step": index,
        "action": "wait",
        "wait_seconds": 30,
        "bake_until": until.isoformat(),
        "fast_tracked": False,
        "reason": "baking",
    }


def gate(outcome: str, reason: str) -> dict[str, Any]:
    """A failback EvaluateGates / FinalValidation result (GateVerdict)."""
    return {
        "outcome": outcome,
        "reason": reason,
        "alarms": {"fraud-scoring-use1-errors": "OK"},
        "smoke": "pass",
        "smoke_reason": "2/2 cases passed",
    }


def smoke(target: str, passed: bool, reason: str) -> dict[str, Any]:
    """A smoke_test task result (SmokeVerdict)."""
    return {
        "target": target,
        "region": "us-west-2",
        "passed": passed,
        "reason": reason,
        "success_ratio": 1.0 if passed else 0.0,
        "p95_latency_ms": 12.0,
        "cases": [],
        "at": T0.isoformat(),
    }
