"""One execution as the dashboard shows it. For a failover or a failback, what is happening (phase in words,
step k of n, weights, bake countdown, gate verdicts, what waits for a person, decisions, the RTO clock
against the objective, the verdict line) is the watch view, `lifeboat watch`'s model
(`chalicelib.domain.watch.WatchView`); this module adds only what a detail page shows beyond it: the smoke
test verdicts, the timeline of states visited and the controls that apply now. Pure: the execution's detail,
its plan and the time come in, a view goes out (`execution_view` is the one entry point)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.history import Step
from chalicelib.domain.watch import WatchView
from chalicelib.models.failback import FailbackView
from chalicelib.models.plan import DRPlan
from chalicelib.services.executions import ExecutionDetail
from chalicelib.services.watch import detail_view

CONTROLS = ("approve", "reject", "pause", "resume", "fast-track", "abort")


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
    watch: WatchView | None = Field(
        description="The watch view (a failover or failback of a known plan), as `lifeboat watch` shows it."
    )
    now: str = Field(
        description="What it does now or how it ended, in words: the watch view's, else the state it is in."
    )
    pause_requested: bool = False
    fast_track: bool = False
    smoke: list[SmokeRow]
    timeline: list[TimelineRow]
    actions: list[str] = Field(description="Operator controls that apply now.")


def execution_view(
    detail: ExecutionDetail,
    plan: DRPlan | None,
    *,
    now: datetime,
    control: FailbackView | None = None,
) -> ExecutionView:
    """The view of one execution from its detail (history steps + ledger decisions), its workload's plan, the
    time, and for a failback its control record (a pause requested, fast-track on: what the history does
    not tell yet)."""
    running = detail.status == "RUNNING"
    watch = detail_view(detail, plan, now=now) if plan is not None else None
    if watch is not None:
        words = watch.now()
    elif running:
        words = f"in {detail.steps[-1].name}" if detail.steps else "starting"
    else:
        words = _ended_words(detail)
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
        watch=watch,
        now=words,
        pause_requested=bool(control and control.pause_requested and running),
        fast_track=bool(control and control.fast_track and running),
        smoke=_smoke(detail.steps),
        timeline=[_row(s) for s in detail.steps],
        actions=_actions(detail, running, watch, control),
    )


def _smoke(steps: list[Step]) -> list[SmokeRow]:
    return [
        SmokeRow(
            state=step.name,
            target=str(step.result.get("target", "?")),
            passed=bool(step.result["passed"]),
            reason=str(step.result.get("reason", "")),
        )
        for step in steps
        if isinstance(step.result, dict) and "passed" in step.result and "success_ratio" in step.result
    ]


def _ended_words(detail: ExecutionDetail) -> str:
    """How an execution the watch view does not cover (a verification, a drill...) ended."""
    if detail.status == "SUCCEEDED":
        output: dict[str, Any] = detail.output if isinstance(detail.output, dict) else {}
        return f"succeeded{': ' + str(output['reason']) if output.get('reason') else ''}"
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
    detail: ExecutionDetail, running: bool, watch: WatchView | None, control: FailbackView | None
) -> list[str]:
    """The controls worth offering: the services refuse the others anyway, with the reason."""
    if not running or detail.kind != "failback":
        return []
    if watch is not None:
        waiting = watch.pending.kind if watch.pending is not None else None
    else:  # no plan to read the history with: the control record says what it waits for
        waiting = control.waiting_for if control else None
    if waiting == "approval":
        return ["approve", "reject", "abort"]
    if waiting in ("pause", "decision") or (control and control.pause_requested):
        return ["resume", "abort"]
    return ["pause", "fast-track", "abort"]
