"""The failback state machine's tasks: readiness, operator waits, steps, bake checks, gates, rollback, record
and conclude. Each is one use case over the plan, the adapters and the pure rules of `domain.failback`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any, get_args

from chalicelib.clock import parse_timestamp
from chalicelib.domain import leases
from chalicelib.domain.failback import (
    Check,
    compare_models,
    evaluate_gates,
    next_bake,
    pick_step,
    replication_back,
    step_weights,
)
from chalicelib.domain.listings import diff_listings
from chalicelib.domain.smoke import SLOW_SMOKE_ATTEMPTS, remeasure_slow, smoke_spend_ms
from chalicelib.models.durations import format_duration, format_seconds
from chalicelib.models.failback import (
    AwaitInput,
    BakeInput,
    BakeStatus,
    FailbackConcluded,
    FailbackConcludeInput,
    FailbackControl,
    FailbackMeasurement,
    FailbackOutcome,
    GateInput,
    OperatorDecision,
    PendingDecision,
    Readiness,
    RollbackResult,
    StepInput,
    StepProgress,
)
from chalicelib.models.failover import ContextInput, TaskInput
from chalicelib.models.plan import ROLES, DRPlan, S3Asset
from chalicelib.observability import emit, logger
from chalicelib.services import conclusion
from chalicelib.services.conclusion import Ending, error_cause
from chalicelib.services.deps import Deps
from chalicelib.services.smoke import last_smoke_passed, run_smoke

ALL_ON_SECONDARY = {"primary": 0, "secondary": 100}
AUTO_HEALTH_KEY = "failback-auto"


class FailbackAborted(RuntimeError):
    """An operator aborted the failback: no further shift may happen (the error name the machine catches)."""


# -- control records ---------------------------------------------------------------------------------------
def control_key(execution: str) -> str:
    return f"failback#{execution}"


def load_control(workload: str, execution: str, d: Deps) -> FailbackControl:
    raw = d.ledger.get_control(workload, control_key(execution))
    if raw is None:
        return FailbackControl(workload=workload, execution=execution)
    return FailbackControl.model_validate(raw)


def change_control(workload: str, execution: str, d: Deps, change: Any) -> FailbackControl:
    """Apply `change(FailbackControl) -> FailbackControl` atomically (retried if another writer won)."""

    def apply(raw: dict[str, Any] | None) -> dict[str, Any]:
        current = (
            FailbackControl.model_validate(raw)
            if raw is not None
            else FailbackControl(workload=workload, execution=execution)
        )
        updated: FailbackControl = change(current)
        return updated.model_copy(update={"updated_at": d.clock()}).model_dump(mode="json")

    return FailbackControl.model_validate(d.ledger.update_control(workload, control_key(execution), apply))


def _renew_lock(plan: DRPlan, execution: str, d: Deps, wait: timedelta = timedelta(0)) -> None:
    """Renew the lease for what comes before the next renewal: `wait` (a bake chunk, an operator's answer)
    and the tasks after it (domain.leases). Re-entrant for the holder; LockHeld if another operation took
    the workload after the lease lapsed."""
    d.locks.acquire(plan.workload, execution, "failback", leases.lease(wait))


# -- readiness -----------------------------------------------------------------------------------------------
def _reverse_replication(plan: DRPlan, now: datetime, d: Deps) -> list[dict[str, Any]]:
    results = []
    for asset in plan.assets:
        if not isinstance(asset, S3Asset):
            continue
        # Reverse direction: the secondary's copy is the source of truth for writes made while it served.
        secondary = d.buckets.objects(plan.regions.secondary, asset.replica.bucket, asset.replica.prefix)
        primary = d.buckets.objects(plan.regions.primary, asset.source.bucket, asset.source.prefix)
        check = replication_back(asset.name, diff_listings(secondary, primary), plan.asset_rpo(asset), now)
        emit("FailbackReplicationLagging", check.lagging, workload=plan.workload)
        results.append(check.model_dump(mode="json"))
    return results


def check_readiness(inp: TaskInput, d: Deps) -> Readiness:
    plan = d.plans.get(inp.workload)
    checks: dict[str, Check] = {}
    try:
        weights = d.router.read(plan).weights
        on_secondary = weights == ALL_ON_SECONDARY
        checks["traffic"] = Check(
            passed=on_secondary,
            reason="all traffic is on the secondary"
            if on_secondary
            else f"traffic is {weights}, not all on the secondary: nothing to fail back from",
        )
    except Exception as exc:  # unreadable traffic is a reason not to start, never a crash
        checks["traffic"] = Check(passed=False, reason=f"cannot read traffic: {type(exc).__name__}: {exc}")

    smoke = remeasure_slow(
        partial(run_smoke, plan, "primary", d, phase="failback-readiness"),
        SLOW_SMOKE_ATTEMPTS,
        smoke_spend_ms(plan.smoke_tests),
    )
    checks["smoke"] = Check(passed=smoke.passed, reason=f"primary smoke tests: {smoke.reason}")

    timeout = plan.smoke_tests.request_timeout.total_seconds()
    probe = plan.smoke_tests.cases[0].payload
    models = {
        role: d.models.identify(role, plan.endpoint_for(role), plan.region_of(role), probe, timeout)
        for role in ROLES
    }
    checks["model"] = compare_models(models["primary"], models["secondary"])

    try:
        replication = _reverse_replication(plan, d.clock(), d)
        failed = [r["reason"] for r in replication if not r["passed"]]
        checks["replication"] = Check(
            passed=not failed,
            reason="; ".join(failed or [r["reason"] for r in replication])
            or "no S3 assets to replicate back",
        )
    except Exception as exc:
        replication = []
        checks["replication"] = Check(
            passed=False, reason=f"cannot compare listings: {type(exc).__name__}: {exc}"
        )

    ready = all(c.passed for c in checks.values())
    if ready:
        reason = "primary ready: " + "; ".join(c.reason for c in checks.values())
    else:
        reason = "primary not ready: " + "; ".join(c.reason for c in checks.values() if not c.passed)
    emit("FailbackReady", 1 if ready else 0, workload=plan.workload)
    logger.info("failback readiness", workload=plan.workload, ready=ready, reason=reason)
    return Readiness(
        ready=ready,
        reason=reason,
        checks={k: c.model_dump() for k, c in checks.items()},
        models={role: ident.model_dump(mode="json") for role, ident in models.items()},
        replication=replication,
    )


# -- operator waits (waitForTaskToken) -----------------------------------------------------------------------
_WAIT_WORDS = {
    "approval": ("waiting-approval", "waits for approval", "approve or reject"),
    "pause": ("paused", "is paused", "resume, fast-track or abort"),
    "decision": ("awaiting-decision", "needs a decision", "resume (re-evaluate), fast-track or abort"),
}


def await_operator(inp: AwaitInput, d: Deps) -> dict[str, Any]:
    """Park the task token where approve/reject/resume find it, and tell a human what is expected."""
    plan = d.plans.get(inp.workload)
    _renew_lock(plan, inp.execution, d, timedelta(seconds=inp.timeout_seconds))
    now = d.clock()
    pending = PendingDecision(
        kind=inp.kind,
        token=inp.token,
        reason=inp.reason,
        since=now,
        expires_at=now + timedelta(seconds=inp.timeout_seconds),
    )
    stored = True

    def park(ctl: FailbackControl) -> FailbackControl:
        nonlocal stored
        if inp.kind == "pause" and not ctl.pause_requested:
            stored = False  # resumed between the bake check and this task: the pause never takes effect
            return ctl
        return ctl.model_copy(update={"pending": pending, "pause_requested": False})

    change_control(plan.workload, inp.execution, d, park)
    if not stored:
        decision = OperatorDecision(
            action="resume", by="lifeboat", reason="resumed before the pause took effect", at=now
        )
        d.executions.send_task_success(inp.token, decision.model_dump(mode="json"))
        return {"waiting": False, "kind": inp.kind}

    outcome, words, options = _WAIT_WORDS[inp.kind]
    name = inp.execution.rsplit(":", 1)[-1]
    reason = inp.reason or f"failback of {plan.workload} {words}"
    d.ledger.record(plan.workload, "failback", outcome, reason, execution=inp.execution)
    emit(f"Failback{outcome.title().replace('-', '')}", 1, workload=plan.workload)
    try:
        d.notifier.publish(
            plan,
            f"[Lifeboat] {plan.workload}: failback {words}",
            f"{reason}\n\nWithin {format_duration(timedelta(seconds=inp.timeout_seconds))}: {options} "
            f"(lifeboat approve|reject|resume|fast-track|abort {name}). Without an answer the failback "
            + (
                "is abandoned and nothing moves."
                if inp.kind == "approval"
                else "rolls back to the secondary."
            ),
            {"execution": inp.execution, "waiting_for": inp.kind, "expires_at": pending.expires_at},
        )
    except Exception as exc:  # the wait stands even if the notification failed
        logger.error("notification failed", workload=plan.workload, error=str(exc))
    return {"waiting": True, "kind": inp.kind}


# -- steps -------------------------------------------------------------------------------------------------
def shift_step(inp: StepInput, d: Deps) -> StepProgress:
    plan = d.plans.get(inp.workload)
    ctl = load_control(plan.workload, inp.execution, d)
    if ctl.abort_requested:
        raise FailbackAborted("an operator aborted the failback; no further shift")
    _renew_lock(plan, inp.execution, d)
    index = pick_step(inp.steps, int(inp.previous.get("next_index", 0)), fast_track=ctl.fast_track)
    share = inp.steps[index]
    weights = step_weights(share)
    d.router.shift(plan, weights, last_smoke_passed(plan, d))
    now = d.clock()
    first = inp.previous.get("first_shift_at")
    last = index == len(inp.steps) - 1
    skipped = ctl.fast_track and int(inp.previous.get("next_index", 0)) < index
    d.ledger.record(
        plan.workload,
        "failback",
        "step",
        f"{share}% of traffic on the primary ({plan.regions.primary}), {100 - share}% on the secondary"
        + (" (fast-tracked: intermediate steps skipped)" if skipped else ""),
        execution=inp.execution,
        detail={"primary": share, "index": index, "weights": weights, "fast_tracked": ctl.fast_track},
    )
    logger.info("failback step", workload=plan.workload, primary=share, weights=weights)
    emit("FailbackStep", share, "Percent", workload=plan.workload)
    return StepProgress(
        index=index,
        primary=share,
        weights=weights,
        last=last,
        next_index=min(index + 1, len(inp.steps) - 1),
        fast_tracked=ctl.fast_track,
        shifted_at=now,
        first_shift_at=parse_timestamp(first) if first else now,
    )


def check_bake(inp: BakeInput, d: Deps) -> BakeStatus:
    """Between chunks of a bake: honour pause and fast-track, else say how long to wait next."""
    plan = d.plans.get(inp.workload)
    ctl = load_control(plan.workload, inp.execution, d)
    now = d.clock()
    if inp.bake.get("step") == inp.step.index and inp.bake.get("bake_until"):
        bake_until = parse_timestamp(str(inp.bake["bake_until"]))
    else:
        bake_until = now + timedelta(seconds=inp.bake_seconds)
    decision = next_bake(
        now, bake_until, inp.chunk_seconds, fast_track=ctl.fast_track, pause_requested=ctl.pause_requested
    )
    _renew_lock(plan, inp.execution, d, timedelta(seconds=decision.wait_seconds))
    return BakeStatus(
        step=inp.step.index,
        action=decision.action,
        wait_seconds=decision.wait_seconds,
        bake_until=bake_until,
        fast_tracked=ctl.fast_track,
        reason=decision.reason,
    )


def evaluate_step_gates(inp: GateInput, d: Deps) -> dict[str, Any]:
    plan = d.plans.get(inp.workload)
    alarms = plan.failback.gate_alarms
    snaps = {s.name: s for s in d.alarms.snapshots(alarms, plan.regions.primary)} if alarms else {}
    smoke = remeasure_slow(
        partial(run_smoke, plan, "primary", d, phase=f"failback-{inp.phase}-{inp.step.primary}"),
        SLOW_SMOKE_ATTEMPTS,
        smoke_spend_ms(plan.smoke_tests),
    )
    verdict = evaluate_gates(alarms, snaps, smoke)
    emit(f"FailbackGate{verdict.outcome.capitalize()}", 1, workload=plan.workload)
    log = logger.info if verdict.outcome == "pass" else logger.warning
    log(
        "failback gate",
        workload=plan.workload,
        step=inp.step.primary,
        outcome=verdict.outcome,
        reason=verdict.reason,
    )
    return {
        **verdict.model_dump(mode="json"),
        "step": inp.step.primary,
        "phase": inp.phase,
        "at": d.clock().isoformat(),
    }


# -- rollback, record, conclude ----------------------------------------------------------------------------
def _rollback_reason(plan: DRPlan, ctx: dict[str, Any]) -> str:
    error = ctx.get("error") or {}
    gates = ctx.get("gates") or {}
    share = (ctx.get("rollout") or {}).get("step", {}).get("primary")
    if error.get("Error") == "States.Timeout":
        return (
            f"no operator decision within {format_duration(plan.failback.approval_timeout)} while paused at "
            f"{share}%"
        )
    if gates.get("outcome") == "fail":
        where = (
            "final validation at 100%" if gates.get("phase") == "final" else f"gate at {gates.get('step')}%"
        )
        return f"{where} failed: {gates.get('reason')}"
    return f"rolled back at {share}%"


def rollback(inp: ContextInput, d: Deps) -> RollbackResult:
    """All traffic back to the secondary in one atomic change (the adapter's safety rules apply)."""
    plan = d.plans.get(inp.workload)
    reason = _rollback_reason(plan, inp.context)
    d.router.shift(plan, ALL_ON_SECONDARY, last_smoke_passed(plan, d))
    logger.warning("failback rolled back", workload=plan.workload, reason=reason)
    emit("FailbackRollback", 1, workload=plan.workload)
    return RollbackResult(weights=dict(ALL_ON_SECONDARY), reason=reason, at=d.clock())


def recorded_steps(workload: str, execution: str, d: Deps) -> list[int]:
    """Shares the primary took during `execution`, oldest first (from the ledger's step entries)."""
    entries = d.ledger.entries(workload, limit=500, kind="failback")
    steps = [e for e in entries if e.execution == execution and e.outcome == "step"]
    return [int(e.detail.get("primary", 0)) for e in reversed(steps)]


def record_failback(inp: ContextInput, d: Deps) -> FailbackMeasurement:
    plan = d.plans.get(inp.workload)
    now = d.clock()
    started = inp.started or now
    step = (inp.context.get("rollout") or {}).get("step") or {}
    first = parse_timestamp(step["first_shift_at"]) if step.get("first_shift_at") else started
    measured = FailbackMeasurement(
        started_at=started,
        first_shift_at=first,
        validated_at=now,
        duration_seconds=round((now - started).total_seconds(), 3),
        rollout_seconds=round((now - first).total_seconds(), 3),
        steps=recorded_steps(plan.workload, inp.execution, d),
    )
    d.ledger.update_state(
        plan.workload,
        active_region=plan.regions.primary,
        last_failback_at=now,
        last_failback_seconds=measured.duration_seconds,
    )
    emit("FailbackDuration", measured.duration_seconds, "Seconds", workload=plan.workload)
    emit("FailbackRolloutDuration", measured.rollout_seconds, "Seconds", workload=plan.workload)
    return measured


def _reason(plan: DRPlan, outcome: str, ctx: dict[str, Any]) -> str:
    error = ctx.get("error") or {}
    if outcome == "completed":
        m = ctx.get("outcome") or {}
        path = " -> ".join(f"{s}%" for s in m.get("steps", []))
        took, rollout = (
            format_seconds(m.get("duration_seconds", 0)),
            format_seconds(m.get("rollout_seconds", 0)),
        )
        return f"failed back to {plan.regions.primary} ({path}); measured duration {took}, rollout {rollout}"
    if outcome == "refused":
        if error:
            return f"failback refused: {error_cause(error)}"
        approval = ctx.get("approval") or {}
        if approval.get("action") == "reject":
            words = f": {approval['reason']}" if approval.get("reason") else ""
            return f"failback refused: approval rejected by {approval.get('by')}{words}; nothing shifted"
        return f"failback refused: {(ctx.get('readiness') or {}).get('reason', 'primary not ready')}"
    if outcome == "rolled_back":
        return (
            f"failback rolled back, all traffic on the secondary ({plan.regions.secondary}): "
            f"{(ctx.get('rollback') or {}).get('reason', 'gate failed')}"
        )
    if outcome == "aborted":
        return (
            f"failback aborted: no approval within {format_duration(plan.failback.approval_timeout)}; "
            "nothing shifted"
        )
    share = _share_reached(ctx)
    where = f"after {share}% of traffic had moved to the primary" if share else "before any traffic moved"
    return f"failback failed {where}: {error.get('Error', 'unknown error')}: {error_cause(error)}"


def _share_reached(ctx: dict[str, Any]) -> int:
    """The share of traffic this run had put on the primary (0: it never shifted)."""
    step = (ctx.get("rollout") or {}).get("step") or {}
    return int(step.get("primary") or 0)


def _reconcile(plan: DRPlan, ctx: dict[str, Any], d: Deps) -> None:
    """After a failure, by the lock holder: the secondary served before the failback began, so it takes
    everything back (the read-back that follows records whether that worked)."""
    try:
        if d.router.read(plan).weights != ALL_ON_SECONDARY:
            logger.warning("reconcile: moving all traffic back to the secondary", workload=plan.workload)
            d.router.shift(plan, ALL_ON_SECONDARY, last_smoke_passed(plan, d))
    except Exception as exc:  # the conclusion reports what is true, never guesses
        logger.error("reconcile failed", workload=plan.workload, error=str(exc))


def _recorded(plan: DRPlan, execution: str, outcome: str, d: Deps) -> None:
    d.ledger.delete_control(plan.workload, control_key(execution))  # its flags and tokens are dead now
    if outcome == "rolled_back":
        # The primary just failed a gate: an auto failback must see a fresh healthy window first.
        d.ledger.delete_control(plan.workload, AUTO_HEALTH_KEY)


ENDING = Ending(
    kind="failback",
    outcomes=get_args(FailbackOutcome),
    detail_keys=(
        "requested_by",
        "auto",
        "readiness",
        "approval",
        "rollout",
        "gates",
        "decision",
        "rollback",
        "outcome",
        "error",
    ),
    subjects={
        "completed": "[Lifeboat] {w} failed back to {p}",
        "refused": "[Lifeboat] {w}: failback refused - {where}",
        "rolled_back": "[Lifeboat] {w}: failback ROLLED BACK to {s} - {where}",
        "aborted": "[Lifeboat] {w}: failback aborted - {where}",
        "failed": "[Lifeboat] {w}: FAILBACK FAILED - {where}",
    },
    reason=_reason,
    reconcile=_reconcile,
    recorded=_recorded,
)


def conclude(inp: FailbackConcludeInput, d: Deps) -> FailbackConcluded:
    """Every outcome ends here (`services.conclusion`): a failed run's holder gives all traffic back to the
    secondary, then traffic is read back, recorded and notified."""
    return conclusion.conclude(
        ENDING, FailbackConcluded, inp.workload, inp.execution, inp.outcome, inp.context, d
    )
