"""One execution as a person follows it: phase in words, step k of n, weights, bake countdown, gate and smoke
verdicts, what it waits for, the RTO clock against the objective. Pure: the history, the plan and the time
come in, a view goes out (the dashboard renders it; `execution_view` is the one entry point)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.clock import parse_timestamp
from chalicelib.domain.history import Step
from chalicelib.models.durations import format_duration
from chalicelib.models.failback import FailbackView
from chalicelib.models.plan import DRPlan
from chalicelib.services.executions import ExecutionDetail

# The phases of each operation, in order: (key, words, the states that belong to it).
FAILOVER_PHASES: tuple[tuple[str, str, frozenset[str]], ...] = (
    (
        "confirm",
        "confirming the outage",
        frozenset(
            {"HasTrigger", "WaitSustain", "WaitRemainingSustain", "RecheckQuorum", "QuorumHeld"}
            | {"ConfirmOutage", "PrimaryStillHealthy", "Suppress"}
        ),
    ),
    ("lock", "taking the workload's lock", frozenset({"AcquireLock", "RecordLockRefusal"})),
    (
        "backup",
        "smoke-testing the backup region",
        frozenset({"SmokeTestBackup", "BackupHealthy", "RefuseBackupUnhealthy"}),
    ),
    (
        "replication",
        "checking replication",
        frozenset({"IsGraceful", "CheckReplication", "ReplicationCaughtUp", "WaitForReplication"}),
    ),
    ("shift", "shifting traffic", frozenset({"ShiftTraffic", "VerifyTraffic"})),
    (
        "validate",
        "validating the switch",
        frozenset({"SmokeTestAfterSwitch", "SwitchValidated", "RecordFailover"}),
    ),
    ("conclude", "concluding", frozenset({"ConcludeCompleted", "Conclude", "ReleaseLock", "Outcome"})),
)
FAILBACK_PHASES: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("lock", "taking the workload's lock", frozenset({"AcquireLock", "RecordLockRefusal"})),
    (
        "readiness",
        "checking the primary is ready",
        frozenset({"CheckReadiness", "PrimaryReady", "RefuseNotReady"}),
    ),
    (
        "approval",
        "waiting for approval",
        frozenset({"RequestApproval", "Approved", "ApprovalRejected", "ApprovalTimedOut"}),
    ),
    (
        "steps",
        "moving traffic back in steps",
        frozenset(
            {"Init", "DrillBake", "ApplyDrillBake", "ShiftStep", "VerifyStep", "CheckBake", "BakeAction"}
            | {"Bake", "EvaluateGates", "GateVerdict", "Paused", "AwaitDecision"}
        ),
    ),
    (
        "final",
        "validating 100% on the primary",
        frozenset({"FinalValidation", "FinalVerdict", "RecordFailback"}),
    ),
    (
        "rollback",
        "rolling back to the secondary",
        frozenset({"Rollback", "VerifyRollback", "ConcludeRolledBack"}),
    ),
    ("conclude", "concluding", frozenset({"ConcludeCompleted", "Conclude", "ReleaseLock", "Outcome"})),
)
PHASES = {"failover": FAILOVER_PHASES, "failback": FAILBACK_PHASES}

# A state that says more than its phase does.
STATE_WORDS = {
    "WaitSustain": "waiting out the alarms' sustain window",
    "WaitRemainingSustain": "waiting out the alarms' sustain window",
    "RecheckQuorum": "checking the alarm quorum still holds",
    "ConfirmOutage": "probing the primary to confirm the outage",
    "WaitForReplication": "waiting for replication to catch up",
    "VerifyTraffic": "reading the traffic switch back",
    "RequestApproval": "waiting for an operator's approval",
    "Bake": "baking",
    "EvaluateGates": "evaluating the gates",
    "Paused": "paused by an operator",
    "AwaitDecision": "waiting for an operator: a gate was inconclusive",
    "FinalValidation": "validating 100% on the primary",
}
WAITING = {"RequestApproval": "approval", "Paused": "pause", "AwaitDecision": "decision"}
CONTROLS = ("approve", "reject", "pause", "resume", "fast-track", "abort")


class GateRow(BaseModel):
    phase: str = Field(description="gate (after an intermediate step) or final (at 100%).")
    outcome: str = Field(description="pass, fail or inconclusive.")
    reason: str
    at: datetime


class SmokeRow(BaseModel):
    state: str = Field(description="The state that ran the smoke test.")
    target: str
    passed: bool
    reason: str


class TimelineRow(BaseModel):
    name: str
    status: str
    entered_at: datetime
    seconds: float | None
    note: str = ""


class ExecutionView(BaseModel):
    """What the dashboard shows of one execution."""

    id: str
    name: str
    arn: str
    workload: str | None
    kind: str | None
    status: str
    finished: bool
    started_at: datetime | None
    stopped_at: datetime | None
    requested_by: str | None
    reason: str | None
    current_state: str | None = Field(description="The state it is in now (None once finished).")
    phase: str = Field(description="Where it stands, in words.")
    phase_index: int | None = Field(description="1-based index of the phase among the operation's phases.")
    phase_count: int | None
    step: int | None = Field(description="Failback: traffic step k (1-based) of `steps`.")
    steps: int | None
    step_label: str = Field(description="'step 2 of 4 (25% on the primary)', or the phase k of n.")
    weights: dict[str, int] | None = Field(description="Traffic weights as last applied by this execution.")
    bake_until: datetime | None
    bake_seconds_left: int | None = Field(description="While baking: seconds until the bake ends.")
    gates: list[GateRow]
    smoke: list[SmokeRow]
    waiting_for: str | None = Field(description="approval, pause or decision: an operator is needed.")
    waiting_reason: str | None = None
    pause_requested: bool = False
    fast_track: bool = False
    clock_label: str = Field(description="'RTO clock 42s (objective 5m)' or the elapsed time.")
    elapsed_seconds: float | None
    objective_seconds: float | None = Field(description="The RTO for a failover; None otherwise.")
    within_objective: bool | None
    outcome: str | None = Field(description="How it ended, in words (None while running).")
    timeline: list[TimelineRow]
    actions: list[str] = Field(description="Operator controls that apply now.")


def execution_view(
    detail: ExecutionDetail,
    plan: DRPlan | None,
    *,
    now: datetime,
    control: FailbackView | None = None,
) -> ExecutionView:
    """The view of one execution from its detail (history steps + ledger decisions), its workload's plan
    (objectives, failback steps), the time, and for a failback its control state (what it waits on)."""
    steps = detail.steps
    running = detail.status == "RUNNING"
    current = steps[-1] if running and steps else None
    phases = PHASES.get(detail.kind or "", ())
    phase_index = _phase_index(phases, current.name) if current else None
    if current is None:
        phase = _ended_words(detail)
    else:
        phase = STATE_WORDS.get(current.name) or (
            phases[phase_index - 1][1] if phase_index else f"in {current.name}"
        )
    progress = _last_result(steps, ("ShiftStep",), ("index", "primary"))
    weights = _weights(steps)
    step = steps_total = None
    if detail.kind == "failback" and plan is not None:
        steps_total = len(plan.failback.steps)
        step = int(progress["index"]) + 1 if progress else 0
    bake_until, bake_left = _bake(steps, current, now)
    waiting_for = control.waiting_for if control else (WAITING.get(current.name) if current else None)
    if current is not None:
        phase = _with_wait(phase, current, bake_left, progress, detail.input)
    step_label = _step_label(detail.kind, step, steps_total, progress, phase_index, len(phases))
    elapsed, objective, within, clock_label = _clock(detail, plan, now)
    return ExecutionView(
        id=detail.id,
        name=detail.name,
        arn=detail.arn,
        workload=detail.workload,
        kind=detail.kind,
        status=detail.status,
        finished=not running,
        started_at=detail.started_at,
        stopped_at=detail.stopped_at,
        requested_by=detail.requested_by,
        reason=detail.reason,
        current_state=current.name if current else None,
        phase=phase,
        phase_index=phase_index,
        phase_count=len(phases) or None,
        step=step,
        steps=steps_total,
        step_label=step_label,
        weights=weights,
        bake_until=bake_until,
        bake_seconds_left=bake_left,
        gates=_gates(steps),
        smoke=_smoke(steps),
        waiting_for=waiting_for if running else None,
        waiting_reason=control.waiting_reason if control and running else None,
        pause_requested=bool(control and control.pause_requested),
        fast_track=bool(control and control.fast_track),
        clock_label=clock_label,
        elapsed_seconds=elapsed,
        objective_seconds=objective,
        within_objective=within,
        outcome=None if running else _ended_words(detail),
        timeline=[_row(s) for s in steps],
        actions=_actions(detail, running, waiting_for, control),
    )


def _phase_index(phases: Sequence[tuple[str, str, frozenset[str]]], state: str) -> int | None:
    return next((i for i, (_, _, states) in enumerate(phases, 1) if state in states), None)


def _results(
    steps: Sequence[Step], names: tuple[str, ...] | None = None
) -> list[tuple[Step, dict[str, Any]]]:
    return [(s, s.result) for s in steps if isinstance(s.result, dict) and (names is None or s.name in names)]


def _last_result(
    steps: Sequence[Step], names: tuple[str, ...], keys: tuple[str, ...]
) -> dict[str, Any] | None:
    found = [r for _, r in _results(steps, names) if all(k in r for k in keys)]
    return found[-1] if found else None


def _weights(steps: Sequence[Step]) -> dict[str, int] | None:
    """The weights the execution last applied (a shift's result, a step's progress, a rollback)."""
    for _, result in reversed(_results(steps)):
        weights = result.get("weights")
        if isinstance(weights, Mapping) and weights and all(isinstance(v, int) for v in weights.values()):
            return {str(k): int(v) for k, v in weights.items()}
    return None


def _bake(steps: Sequence[Step], current: Step | None, now: datetime) -> tuple[datetime | None, int | None]:
    status = _last_result(steps, ("CheckBake",), ("bake_until", "action"))
    if status is None:
        return None, None
    until = _when(status["bake_until"])
    if until is None or current is None or current.name not in ("Bake", "CheckBake", "BakeAction"):
        return until, None
    return until, max(0, int((until - now).total_seconds() + 0.999))


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return parse_timestamp(str(value))
    except (TypeError, ValueError):
        return None


def _gates(steps: Sequence[Step]) -> list[GateRow]:
    rows = []
    for step, result in _results(steps, ("EvaluateGates", "FinalValidation")):
        if "outcome" in result:
            rows.append(
                GateRow(
                    phase="final" if step.name == "FinalValidation" else "gate",
                    outcome=str(result["outcome"]),
                    reason=str(result.get("reason", "")),
                    at=step.exited_at or step.entered_at,
                )
            )
    return rows


def _smoke(steps: Sequence[Step]) -> list[SmokeRow]:
    return [
        SmokeRow(
            state=step.name,
            target=str(result.get("target", "?")),
            passed=bool(result["passed"]),
            reason=str(result.get("reason", "")),
        )
        for step, result in _results(steps)
        if "passed" in result and "success_ratio" in result
    ]


def _with_wait(
    phase: str, current: Step, bake_left: int | None, progress: dict[str, Any] | None, inputs: Any
) -> str:
    if bake_left is not None and current.name in ("Bake", "CheckBake", "BakeAction"):
        share = f" at {progress['primary']}% on the primary" if progress else ""
        return f"baking{share}: {format_duration_s(bake_left)} left"
    trigger = inputs.get("trigger") if isinstance(inputs, dict) else None
    if current.name in ("WaitSustain", "WaitRemainingSustain") and isinstance(trigger, dict):
        until = _when(trigger.get("sustain_until"))
        if until is not None:
            return f"{phase} (until {until:%H:%M:%S} UTC)"
    return phase


def format_duration_s(seconds: float) -> str:
    """Whole seconds, spelled like plan durations: 75.4 -> "1m15s"."""
    return format_duration(timedelta(seconds=int(max(0.0, seconds))))


def _step_label(
    kind: str | None,
    step: int | None,
    steps_total: int | None,
    progress: dict[str, Any] | None,
    phase_index: int | None,
    phase_count: int,
) -> str:
    if kind == "failback" and steps_total:
        if not step:
            return f"step 0 of {steps_total} (no traffic moved yet)"
        share = f" ({progress['primary']}% on the primary)" if progress else ""
        return f"step {step} of {steps_total}{share}"
    if phase_index and phase_count:
        return f"phase {phase_index} of {phase_count}"
    return ""


def _clock(
    detail: ExecutionDetail, plan: DRPlan | None, now: datetime
) -> tuple[float | None, float | None, bool | None, str]:
    """The failover's RTO clock (from the first alarm when alarms started it) against the plan's RTO; the
    elapsed time for everything else."""
    start = detail.started_at
    trigger = detail.input.get("trigger") if isinstance(detail.input, dict) else None
    if detail.kind == "failover" and isinstance(trigger, dict):
        start = _when(trigger.get("first_alarm_at")) or start
    if start is None:
        return None, None, None, ""
    end = detail.stopped_at or now
    elapsed = max(0.0, (end - start).total_seconds())
    if detail.kind == "failover" and plan is not None:
        objective = plan.rto.total_seconds()
        within = elapsed <= objective
        verdict = "within" if within else "BEYOND"
        label = (
            f"RTO clock {format_duration_s(elapsed)}, {verdict} the objective of {format_duration(plan.rto)}"
        )
        return elapsed, objective, within, label
    return (
        elapsed,
        None,
        None,
        f"{'ran' if detail.stopped_at else 'running for'} {format_duration_s(elapsed)}",
    )


def _ended_words(detail: ExecutionDetail) -> str:
    if detail.status == "SUCCEEDED":
        output: dict[str, Any] = detail.output if isinstance(detail.output, dict) else {}
        final = output.get("final")
        concluded = (final.get("reason") if isinstance(final, dict) else None) or output.get("reason")
        return f"succeeded{': ' + str(concluded) if concluded else ''}"
    said = ": ".join(x for x in (detail.error, (detail.cause or "")[:300]) if x)
    return f"{detail.status.lower()}{': ' + said if said else ''}"


def _row(step: Step) -> TimelineRow:
    note = ""
    if step.errors:
        note = f"{step.errors[-1].error}: {step.errors[-1].cause[:120]}"
    elif step.type == "Choice" and step.next:
        note = f"-> {step.next}"
    elif isinstance(step.result, dict) and "reason" in step.result:
        note = str(step.result["reason"])[:160]
    return TimelineRow(
        name=step.name,
        status=step.status,
        entered_at=step.entered_at,
        seconds=step.duration_seconds,
        note=note,
    )


def _actions(
    detail: ExecutionDetail, running: bool, waiting_for: str | None, control: FailbackView | None
) -> list[str]:
    """The controls worth offering: the services refuse the others anyway, with the reason."""
    if not running or detail.kind != "failback":
        return []
    if waiting_for == "approval":
        return ["approve", "reject", "abort"]
    if waiting_for in ("pause", "decision") or (control and control.pause_requested):
        return ["resume", "abort"]
    return ["pause", "fast-track", "abort"]
