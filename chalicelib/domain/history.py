"""A Step Functions event history, read as the steps a person cares about: what ran, how long, what it
decided, what failed and how often it was retried."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

MAX_RESULT_CHARS = 4000
MAX_CAUSE_CHARS = 1000

StepStatus = Literal["running", "succeeded", "failed"]


class StepError(BaseModel):
    error: str = Field(description="Error name, e.g. TransientError, LockHeld, States.Timeout.")
    cause: str = Field("", description="What the task said (truncated).")
    at: datetime


class Step(BaseModel):
    """One visit of one state (a state visited twice, e.g. a polling loop, appears twice)."""

    name: str
    type: str = Field(description="Task, Choice, Wait, Pass, Succeed, Fail, Parallel, Map.")
    entered_at: datetime
    exited_at: datetime | None = None
    duration_seconds: float | None = Field(None, description="None while the state is still running.")
    status: StepStatus
    attempts: int = Field(0, description="Task invocations, retries included.")
    errors: list[StepError] = Field(default_factory=list, description="Failures met (retried or not).")
    result: Any = Field(None, description="What the task returned (parsed JSON, truncated when large).")
    next: str | None = Field(None, description="The state entered next: for a Choice, its decision.")


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return value
    return {}


def _result(raw: Any) -> Any:
    if not isinstance(raw, str):
        return None
    if len(raw) > MAX_RESULT_CHARS:
        return raw[:MAX_RESULT_CHARS] + "... (truncated)"
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _is_failure(kind: str) -> bool:
    return kind.endswith(("Failed", "TimedOut")) and not kind.startswith("Execution")


def steps_from_history(events: Iterable[Mapping[str, Any]]) -> list[Step]:
    """Fold history events (oldest first) into steps."""
    steps: list[Step] = []
    open_steps: dict[str, Step] = {}
    current: Step | None = None
    ended = False
    for event in events:
        kind = str(event.get("type", ""))
        ended = ended or (kind.startswith("Execution") and kind != "ExecutionStarted")
        at = event.get("timestamp")
        if not isinstance(at, datetime):
            continue  # every Step Functions event has one; skip rather than guess
        details = _details(event)
        if kind.endswith("StateEntered") and "name" in details:
            step = Step(
                name=str(details["name"]), type=kind[: -len("StateEntered")], entered_at=at, status="running"
            )
            if steps and steps[-1].next is None:
                steps[-1].next = step.name
            steps.append(step)
            open_steps[step.name] = step
            current = step
        elif kind.endswith("StateExited") and "name" in details:
            name = str(details["name"])
            if name in open_steps:
                step = open_steps.pop(name)
                step.exited_at = at
                step.duration_seconds = max(0.0, (at - step.entered_at).total_seconds())
                step.status = "failed" if step.errors and step.result is None else "succeeded"
        elif current is not None and kind.endswith("Scheduled"):
            current.attempts += 1
        elif current is not None and kind.endswith("Succeeded") and not kind.startswith("Execution"):
            current.result = _result(details.get("output"))
        elif current is not None and _is_failure(kind):
            current.errors.append(
                StepError(
                    error=str(details.get("error") or kind),
                    cause=str(details.get("cause") or "")[:MAX_CAUSE_CHARS],
                    at=at,
                )
            )
    # A state that never exited because the execution failed inside it failed with it; a Succeed or Fail
    # state ends the execution without an exit event (it is where the run ended, not still running).
    for step in open_steps.values():
        if step.errors or (ended and step.type == "Fail"):
            step.status = "failed"
        elif ended and step.type == "Succeed":
            step.status = "succeeded"
    return steps
