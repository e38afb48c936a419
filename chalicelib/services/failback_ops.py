"""Operator controls of a failback (the API and the CLI call these) and the auto-failback schedule.

start, approve, reject, pause, resume, fast-track, abort, describe. Flags and the pending task token live in
the lock table (`control#<workload>#failback#<execution arn>`); decisions reach the execution as
SendTaskSuccess.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from chalicelib.adapters.executions import TokenExpired
from chalicelib.adapters.traffic import TrafficNotConverged
from chalicelib.clock import parse_timestamp
from chalicelib.domain.failback import should_auto_failback
from chalicelib.models.api import ExecutionRef
from chalicelib.models.failback import (
    AutoFailbackReport,
    ControlAction,
    ControlOutcome,
    DecisionAction,
    FailbackControl,
    FailbackRequest,
    FailbackStarted,
    FailbackView,
    OperatorDecision,
    WaitKind,
)
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.services.executions import UnknownExecution, resolve_execution
from chalicelib.services.failback import (
    ALL_ON_SECONDARY,
    AUTO_HEALTH_KEY,
    change_control,
    control_key,
    load_control,
    recorded_steps,
)
from chalicelib.services.smoke import last_smoke_passed, run_smoke
from chalicelib.services.truth import record_truth
from chalicelib.services.workload_lock import start_claimed

VERIFY_ATTEMPTS = 10


class ControlRefused(RuntimeError):
    """The control does not apply to the execution as it stands (not waiting, already over...)."""


# -- start ---------------------------------------------------------------------------------------------------
def start_failback(
    workload: str,
    reason: str,
    requested_by: str,
    d: Deps,
    *,
    auto: bool = False,
    name: str | None = None,
    claim: bool = False,
) -> FailbackStarted:
    """Start a failback execution; with `name`, idempotently (the auto schedule's deterministic names).

    `claim`: take the workload's lock for it first (operator starts), so a conflict is an OperationConflict
    now rather than a LockHeld refusal inside the execution later.
    """
    d.plans.get(workload)  # unknown workload -> UnknownWorkload before anything starts
    request = FailbackRequest(workload=workload, reason=reason, requested_by=requested_by, auto=auto)
    name = name or f"failback-{workload}-op-{d.clock():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    payload = request.model_dump(mode="json")
    if claim:
        arn, started_now = start_claimed(workload, "failback", name, payload, d)
    else:
        arn, started_now = d.executions.start(workload, "failback", name, payload)
    if started_now:
        d.ledger.record(
            workload,
            "decision" if auto else "operator",
            "failback-started" if auto else "failback-requested",
            reason,
            actor=requested_by,
            execution=arn,
        )
    return FailbackStarted(workload=workload, execution_arn=arn, name=name, started_now=started_now)


# -- finding an execution ----------------------------------------------------------------------------------
def _failback(ref: str, d: Deps) -> tuple[dict[str, Any], str]:
    """(DescribeExecution, workload) of a failback execution given by ARN or by name; UnknownExecution
    unless it is one of Lifeboat's failbacks, run by the failback machine of the workload it names."""
    named = (
        ExecutionRef(arn=ref, name=ref.rsplit(":", 1)[-1])
        if ref.startswith("arn:")
        else ExecutionRef(name=ref)
    )
    desc = resolve_execution(named, d, kind="failback")
    workload = json.loads(desc.get("input") or "{}").get("workload")
    machine = str(desc.get("stateMachineArn", ""))
    if not workload or not machine.endswith(":" + d.executions.state_machine_name(workload, "failback")):
        raise UnknownExecution(ref, "failback")
    return desc, str(workload)


def _running(ref: str, action: ControlAction, d: Deps) -> tuple[str, str]:
    desc, workload = _failback(ref, d)
    if desc["status"] != "RUNNING":
        raise ControlRefused(f"{desc['name']} is {desc['status']}: nothing to {action}")
    return str(desc["executionArn"]), workload


def _operator_entry(workload: str, execution: str, action: str, reason: str, actor: str, d: Deps) -> None:
    d.ledger.record(workload, "operator", f"failback-{action}", reason, actor=actor, execution=execution)
    emit(f"FailbackOperator{action.title().replace('-', '')}", 1, workload=workload)


def _complete_wait(
    workload: str,
    execution: str,
    kinds: tuple[WaitKind, ...],
    action: DecisionAction,
    actor: str,
    reason: str,
    d: Deps,
) -> WaitKind | None:
    """Take the pending token (atomically, so two operators cannot both decide) and complete it."""
    taken: dict[str, Any] = {}

    def take(ctl: FailbackControl) -> FailbackControl:
        taken.clear()
        if ctl.pending is None or ctl.pending.kind not in kinds:
            return ctl
        taken["pending"] = ctl.pending
        return ctl.model_copy(update={"pending": None})

    change_control(workload, execution, d, take)
    pending = taken.get("pending")
    if pending is None:
        return None
    decision = OperatorDecision(action=action, by=actor, reason=reason, at=d.clock())
    try:
        d.executions.send_task_success(pending.token, decision.model_dump(mode="json"))
    except TokenExpired as exc:
        raise ControlRefused(f"the execution stopped waiting ({exc})") from None
    return pending.kind  # type: ignore[no-any-return]


# -- approve / reject ----------------------------------------------------------------------------------------
def _decide_approval(ref: str, action: DecisionAction, actor: str, reason: str, d: Deps) -> ControlOutcome:
    verb: ControlAction = "approve" if action == "approve" else "reject"
    execution, workload = _running(ref, verb, d)
    if _complete_wait(workload, execution, ("approval",), action, actor, reason, d) is None:
        raise ControlRefused(f"{execution.rsplit(':', 1)[-1]} is not waiting for approval")
    words = "approved: traffic starts moving back" if action == "approve" else "rejected: nothing shifts"
    _operator_entry(
        workload, execution, "approved" if action == "approve" else "rejected", reason or words, actor, d
    )
    return ControlOutcome(workload=workload, execution=execution, action=verb, result=words)


def approve(ref: str, actor: str, d: Deps, reason: str = "") -> ControlOutcome:
    return _decide_approval(ref, "approve", actor, reason, d)


def reject(ref: str, actor: str, d: Deps, reason: str = "") -> ControlOutcome:
    return _decide_approval(ref, "reject", actor, reason, d)


# -- pause / resume / fast-track ---------------------------------------------------------------------------
def pause(ref: str, actor: str, d: Deps, reason: str = "") -> ControlOutcome:
    execution, workload = _running(ref, "pause", d)
    ctl = load_control(workload, execution, d)
    if ctl.pending is not None and ctl.pending.kind == "approval":
        raise ControlRefused("the failback has not started moving traffic: approve or reject it")
    if ctl.pending is not None:
        raise ControlRefused(f"already paused ({ctl.pending.reason or ctl.pending.kind})")
    change_control(workload, execution, d, lambda c: c.model_copy(update={"pause_requested": True}))
    result = "pause requested: it takes effect at the next bake check, traffic stays where it is"
    _operator_entry(workload, execution, "paused", reason or result, actor, d)
    return ControlOutcome(workload=workload, execution=execution, action="pause", result=result)


def resume(ref: str, actor: str, d: Deps, reason: str = "") -> ControlOutcome:
    execution, workload = _running(ref, "resume", d)
    kind = _complete_wait(workload, execution, ("pause", "decision"), "resume", actor, reason, d)
    if kind is None:
        cancelled: dict[str, bool] = {}

        def cancel(ctl: FailbackControl) -> FailbackControl:
            cancelled["yes"] = ctl.pause_requested
            return ctl.model_copy(update={"pause_requested": False})

        change_control(workload, execution, d, cancel)
        if not cancelled.get("yes"):
            raise ControlRefused(f"{execution.rsplit(':', 1)[-1]} is not paused")
        result = "pause cancelled before it took effect"
    elif kind == "decision":
        result = "resumed: the gates are evaluated again (a failing gate still rolls back)"
    else:
        result = "resumed: the bake continues"
    _operator_entry(workload, execution, "resumed", reason or result, actor, d)
    return ControlOutcome(workload=workload, execution=execution, action="resume", result=result)


def fast_track(ref: str, actor: str, d: Deps, reason: str = "") -> ControlOutcome:
    execution, workload = _running(ref, "fast-track", d)
    ctl = load_control(workload, execution, d)
    if ctl.pending is not None and ctl.pending.kind == "approval":
        raise ControlRefused("the failback waits for approval: approve it first")
    change_control(workload, execution, d, lambda c: c.model_copy(update={"fast_track": True}))
    _complete_wait(workload, execution, ("pause", "decision"), "resume", actor, reason or "fast-track", d)
    result = "fast-tracked: remaining bake and steps skipped; the gates still validate 100% on the primary"
    _operator_entry(workload, execution, "fast-tracked", reason or result, actor, d)
    return ControlOutcome(workload=workload, execution=execution, action="fast-track", result=result)


# -- abort ---------------------------------------------------------------------------------------------------
def abort(
    ref: str, actor: str, d: Deps, reason: str = "", *, sleep: Callable[[float], None] = time.sleep
) -> ControlOutcome:
    """Roll back now: stop the execution, all traffic to the secondary (safety rules apply), record what
    is true, release the lock."""
    execution, workload = _running(ref, "abort", d)
    plan = d.plans.get(workload)
    # The flag first: a shift task already in flight refuses to move traffic once it sees it.
    change_control(workload, execution, d, lambda c: c.model_copy(update={"abort_requested": True}))
    # This abort concludes the run (records, notifies, releases): the janitor, told of the stop, leaves it be.
    d.ledger.mark_concluded(workload, execution, "operator")
    d.executions.stop(execution, f"aborted by {actor}: {reason or 'operator abort'}")
    traffic: dict[str, int] | None = None
    problem = None
    try:
        if d.router.read(plan).weights != ALL_ON_SECONDARY:
            d.router.shift(plan, ALL_ON_SECONDARY, last_smoke_passed(plan, d))
        traffic = _verified(plan, d, sleep)
    except Exception as exc:  # record what happened before telling the caller
        problem = f"{type(exc).__name__}: {exc}"
    secondary = plan.regions.secondary
    # Still holding the run's lock: the read-back is recorded as the workload's state.
    truth = record_truth(plan, execution, d)
    if problem is None:
        result = f"aborted: execution stopped, all traffic back on the secondary ({secondary})"
    else:
        result = f"aborted: execution stopped, but traffic could not be moved back: {problem}"
    words = (
        f"failback aborted by {actor}"
        + (f" ({reason})" if reason else "")
        + f"; {result[len('aborted: ') :]}; {truth.serving}"
    )
    facts = {"traffic": traffic, "active_region": truth.active_region, "serving": truth.serving}
    d.ledger.record(workload, "failback", "aborted", words, actor=actor, execution=execution, detail=facts)
    d.locks.release(workload, execution)
    d.ledger.delete_control(workload, control_key(execution))
    emit("FailbackAborted", 1, workload=workload)
    try:
        subject = f"[Lifeboat] {workload}: failback aborted - {truth.where}"
        d.notifier.publish(plan, subject, words, {"execution": execution, **facts})
    except Exception as exc:
        logger.error("notification failed", workload=workload, error=str(exc))
    if problem is not None:
        raise ControlRefused(result)
    return ControlOutcome(
        workload=workload, execution=execution, action="abort", result=result, traffic=traffic
    )


def _verified(plan: Any, d: Deps, sleep: Callable[[float], None]) -> dict[str, int]:
    for attempt in range(VERIFY_ATTEMPTS):
        try:
            return d.router.verify(plan, ALL_ON_SECONDARY).weights
        except TrafficNotConverged:
            if attempt == VERIFY_ATTEMPTS - 1:
                raise
            sleep(1.0)
    raise AssertionError("unreachable")


# -- describe ------------------------------------------------------------------------------------------------
def describe_failback(ref: str, d: Deps) -> FailbackView:
    desc, workload = _failback(ref, d)
    execution = str(desc["executionArn"])
    ctl = load_control(workload, execution, d)
    try:
        traffic: dict[str, int] | None = d.router.read(d.plans.get(workload)).weights
    except Exception:
        traffic = None
    return FailbackView(
        workload=workload,
        execution=execution,
        status=str(desc["status"]),
        waiting_for=ctl.pending.kind if ctl.pending else None,
        waiting_reason=ctl.pending.reason if ctl.pending else None,
        pause_requested=ctl.pause_requested,
        fast_track=ctl.fast_track,
        steps=recorded_steps(workload, execution, d),
        traffic=traffic,
    )


# -- auto failback -------------------------------------------------------------------------------------------
def _track_primary_health(workload: str, passed: bool, d: Deps) -> Any:
    """Healthy since when? Kept across schedule runs; any failed smoke test restarts the window."""
    now = d.clock()

    def track(raw: dict[str, Any] | None) -> dict[str, Any]:
        since = (raw or {}).get("primary_healthy_since")
        if not passed:
            since = None
        elif since is None:
            since = now.isoformat()
        return {"primary_healthy_since": since, "checked_at": now.isoformat()}

    record = d.ledger.update_control(workload, AUTO_HEALTH_KEY, track)
    since = record.get("primary_healthy_since")
    return parse_timestamp(since) if since else None


def evaluate_auto_failback(d: Deps) -> AutoFailbackReport:
    """One run of the schedule: for each plan with auto failback, decide, and start at most one execution."""
    report = AutoFailbackReport()
    for plan in d.plans.all():
        if not plan.failback.auto:
            continue
        state = d.ledger.get_state(plan.workload)
        healthy_since = None
        if state.active_region == plan.regions.secondary:
            smoke = run_smoke(plan, "primary", d, phase="auto-failback-health")
            healthy_since = _track_primary_health(plan.workload, smoke.passed, d)
        decision = should_auto_failback(plan, state, healthy_since, d.clock())
        report.decisions[plan.workload] = decision.reason
        if not decision.start or decision.execution_name is None:
            continue
        held = d.locks.current(plan.workload)
        if held is not None:
            report.decisions[plan.workload] = f"{decision.reason}; but {held.operation} {held.holder} runs"
            continue
        started = start_failback(
            plan.workload,
            f"auto failback: {decision.reason}",
            "lifeboat",
            d,
            auto=True,
            name=decision.execution_name,
        )
        report.started[plan.workload] = started.execution_arn
        logger.info(
            "auto failback", workload=plan.workload, execution=started.execution_arn, new=started.started_now
        )
    return report
