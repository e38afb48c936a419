"""Inputs and outputs of the failback state machine, its tasks and its operator controls."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.models.failover import ContextInput, TaskInput

FailbackOutcome = Literal["completed", "refused", "rolled_back", "aborted", "failed"]
WaitKind = Literal["approval", "pause", "decision"]
"""What a task token waits for: the start approval, an operator's pause, a decision on an unclear gate."""
DecisionAction = Literal["approve", "reject", "resume"]
GatePhase = Literal["gate", "final"]


class FailbackRequest(BaseModel):
    """The input of a failback execution."""

    model_config = ConfigDict(extra="forbid")

    workload: str = Field(description="Workload whose traffic returns to its primary region.")
    reason: str = Field(description="Why: the operator's words or the auto-failback decision.")
    requested_by: str = Field("lifeboat", description="lifeboat (auto failback) or the operator's identity.")
    auto: bool = Field(False, description="True when the auto-failback schedule started it.")


class AwaitInput(TaskInput):
    """A waitForTaskToken task: store the token where the operator controls find it, then notify."""

    token: str = Field(description="$$.Task.Token: SendTaskSuccess with an OperatorDecision ends the wait.")
    kind: WaitKind = Field(description="approval, pause (operator) or decision (inconclusive gate).")
    reason: str = Field("", description="Why the execution waits (shown to the operator).")
    timeout_seconds: int = Field(description="The task's TimeoutSeconds (for the notification).")


class OperatorDecision(BaseModel):
    """The output a task token is completed with."""

    action: DecisionAction = Field(description="approve / reject (approval) or resume (pause, decision).")
    by: str = Field(description="Who decided (IAM identity, or lifeboat for self-resolved races).")
    reason: str = Field("", description="The operator's words.")
    at: datetime = Field(description="When the decision was taken.")


class StepInput(TaskInput):
    steps: list[int] = Field(description="The policy's steps (share of traffic on the primary, percent).")
    previous: dict[str, Any] = Field(description="The previous StepProgress ({next_index: 0} at first).")


class StepProgress(BaseModel):
    """Where the rollout stands after a shift."""

    index: int = Field(description="Index of the step just applied in the policy's steps.")
    primary: int = Field(description="Share of traffic now on the primary, percent.")
    weights: dict[str, int] = Field(description="{primary, secondary} as applied.")
    last: bool = Field(description="True at 100%: final validation comes next.")
    next_index: int = Field(description="Index of the next step (the state machine loops on it).")
    fast_tracked: bool = Field(False, description="An operator fast-tracked: remaining steps were skipped.")
    shifted_at: datetime = Field(description="When this step's shift was applied.")
    first_shift_at: datetime = Field(description="When the first step's shift was applied.")


class BakeInput(TaskInput):
    step: StepProgress = Field(description="The step being baked.")
    bake: dict[str, Any] = Field(description="The previous BakeStatus ({step: -1} before the first bake).")
    bake_seconds: int = Field(ge=0, description="The policy's bake time, whole seconds.")
    chunk_seconds: int = Field(ge=1, description="Longest single Wait: controls act between chunks.")


class BakeStatus(BaseModel):
    step: int = Field(description="Index of the step being baked.")
    action: Literal["wait", "evaluate", "pause"] = Field(description="What the state machine does next.")
    wait_seconds: int = Field(description="Length of the next Wait (action wait).")
    bake_until: datetime = Field(description="When this step's bake ends.")
    fast_tracked: bool = Field(description="The remaining bake was skipped by an operator.")
    reason: str


class GateInput(TaskInput):
    step: StepProgress
    phase: GatePhase = Field("gate", description="gate after an intermediate step; final at 100%.")


class RollbackResult(BaseModel):
    weights: dict[str, int] = Field(description="Weights applied: everything on the secondary.")
    reason: str = Field(description="Why the failback was rolled back.")
    at: datetime


class FailbackMeasurement(BaseModel):
    """How long the failback took (recorded in the ledger and the workload state)."""

    started_at: datetime = Field(description="Execution start.")
    first_shift_at: datetime = Field(description="First traffic shift (after readiness and approval).")
    validated_at: datetime = Field(description="Final validation at 100% passed.")
    duration_seconds: float = Field(description="Execution start to validated, approval wait included.")
    rollout_seconds: float = Field(description="First shift to validated: the gradual rollout itself.")
    steps: list[int] = Field(description="Shares the primary took, in order.")


class FailbackConcludeInput(ContextInput):
    outcome: FailbackOutcome


class FailbackConcluded(BaseModel):
    status: FailbackOutcome
    reason: str
    traffic: dict[str, int] | None = Field(None, description="Traffic weights read back at the conclusion.")
    active_region: str | None = Field(
        default=None, description="Region serving all traffic (None: split/unknown)."
    )
    serving: str = Field(default="", description="Which region serves users, in words (as notified).")


# -- control state (lock table, key control#<workload>#failback#<execution arn>) -----------------------
class PendingDecision(BaseModel):
    kind: WaitKind
    token: str = Field(description="Task token to complete (never shown in the CLI).")
    reason: str
    since: datetime
    expires_at: datetime


class FailbackControl(BaseModel):
    """Operator flags and the pending task token of one failback execution."""

    workload: str
    execution: str
    pause_requested: bool = Field(False, description="Pause at the next bake check.")
    fast_track: bool = Field(False, description="Skip the remaining bake and steps; still validate.")
    abort_requested: bool = Field(False, description="Set first by abort, so an in-flight shift refuses.")
    pending: PendingDecision | None = Field(None, description="The task token the execution waits on.")
    updated_at: datetime | None = None


ControlAction = Literal["approve", "reject", "pause", "resume", "abort", "fast-track"]


class ControlOutcome(BaseModel):
    """What an operator control did."""

    workload: str
    execution: str
    action: ControlAction
    result: str = Field(description="What happened, in words.")
    traffic: dict[str, int] | None = Field(None, description="Weights after an abort.")


class FailbackStarted(BaseModel):
    workload: str
    execution_arn: str
    name: str
    started_now: bool = Field(True, description="False when an execution with that name already existed.")


class FailbackView(BaseModel):
    """A failback execution as an operator sees it."""

    workload: str
    execution: str
    status: str = Field(description="Step Functions status: RUNNING, SUCCEEDED, FAILED, ABORTED...")
    waiting_for: WaitKind | None = Field(None, description="What the execution waits on, if anything.")
    waiting_reason: str | None = None
    pause_requested: bool = False
    fast_track: bool = False
    steps: list[int] = Field(default_factory=list, description="Shares the primary took so far.")
    traffic: dict[str, int] | None = None


class AutoFailbackReport(BaseModel):
    """What one run of the auto-failback schedule decided, per workload."""

    decisions: dict[str, str] = Field(default_factory=dict, description="workload -> reason.")
    started: dict[str, str] = Field(default_factory=dict, description="workload -> execution ARN.")


class Readiness(BaseModel):
    """Is the restored primary fit to take traffic back? Every check, with its reason."""

    ready: bool
    reason: str
    checks: dict[str, dict[str, Any]] = Field(
        description="traffic, smoke, model, replication: {passed, reason}."
    )
    models: dict[str, dict[str, Any]] = Field(description="What each endpoint reported it serves.")
    replication: list[dict[str, Any]] = Field(
        default_factory=list, description="Reverse replication per asset."
    )
