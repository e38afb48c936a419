"""The failover state machine's tasks: each is one use case over the plan, the adapters and the domain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, get_args

from chalicelib.adapters.errors import unreachable
from chalicelib.adapters.locks import LockHeld
from chalicelib.adapters.s3objects import ObjectInfo
from chalicelib.adapters.traffic import TrafficState
from chalicelib.clock import parse_timestamp
from chalicelib.domain import leases, triggers
from chalicelib.domain.listings import diff_listings
from chalicelib.domain.objectives import measure_rto
from chalicelib.domain.reconcile import retreat
from chalicelib.models.durations import format_duration, format_seconds
from chalicelib.models.failover import (
    Concluded,
    ConcludeInput,
    ContextInput,
    FailoverOutcome,
    LockInput,
    ProbeResult,
    RecheckInput,
    ReplicationInput,
    ReplicationStatus,
    RpoExposure,
    RtoMeasurement,
    ShiftInput,
    TargetInput,
    TaskInput,
    VerifyInput,
)
from chalicelib.models.plan import DRPlan, S3Asset
from chalicelib.observability import emit, logger
from chalicelib.services import conclusion
from chalicelib.services.conclusion import Ending, error_cause
from chalicelib.services.deps import Deps
from chalicelib.services.reach import read_trigger_alarms, replica_exposure
from chalicelib.services.smoke import last_smoke_passed, run_smoke
from chalicelib.services.truth import Truth

REPLICATION_POLL = timedelta(seconds=5)


def lock_lease(plan: DRPlan) -> timedelta:
    """The lease AcquireLock takes: the tasks up to the holder's first renewal (domain.leases), not a whole
    run, so a run that dies without releasing frees the workload within minutes."""
    return leases.lease()


def acquire_lock(inp: LockInput, d: Deps) -> dict[str, Any]:
    plan = d.plans.get(inp.workload)
    info = d.locks.acquire(inp.workload, inp.execution, inp.operation, lock_lease(plan))
    if inp.operation == "failover":
        # An alarm-started failover takes the lock once its sustain window and recheck are over: it is
        # decided, no longer pending, so a quorum breaking from here on does not cancel it.
        state = d.ledger.get_state(inp.workload)
        if state.pending_execution == inp.execution:
            d.ledger.update_state(inp.workload, current=state, pending_execution=None)
    return info.model_dump(mode="json")


def release_lock(inp: TaskInput, d: Deps) -> dict[str, Any]:
    released = d.locks.release(inp.workload, inp.execution)
    return {"released": released}


def recheck_trigger(inp: RecheckInput, d: Deps) -> dict[str, Any]:
    plan = d.plans.get(inp.workload)
    seen = read_trigger_alarms(plan, d)  # each alarm in its own region; unreachable ones: see the rule
    state = d.ledger.get_state(plan.workload)
    result = triggers.recheck(
        plan,
        seen.snapshots,
        state,
        d.clock(),
        expected_since=inp.trigger.quorum_since,
        sustain_until=inp.trigger.sustain_until,
        unreachable=seen.unreachable,
    )
    emit("TriggerRecheck", 1 if result.proceed else 0, workload=plan.workload)
    out = result.model_dump(mode="json")
    out["at"] = d.clock().isoformat()
    if seen.regions_down:
        out["regions_unreachable"] = seen.regions_down
    return out


def probe_endpoint(inp: TargetInput, d: Deps) -> ProbeResult:
    plan = d.plans.get(inp.workload)
    verdict = run_smoke(plan, inp.target, d, phase="confirmation-probe")
    region = plan.region_of(inp.target)
    if verdict.passed:
        reason = (
            f"{inp.target} ({region}) passed its smoke tests on the confirmation probe: alarms look false"
        )
    else:
        reason = f"{inp.target} ({region}) confirmed down: {verdict.reason}"
    return ProbeResult(healthy=verdict.passed, reason=reason, verdict=verdict.model_dump(mode="json"))


def smoke_test(inp: TargetInput, d: Deps) -> dict[str, Any]:
    plan = d.plans.get(inp.workload)
    return run_smoke(plan, inp.target, d, phase=inp.phase).model_dump(mode="json")


class _SourceUnreachable(Exception):
    """Listing an asset's source failed the way an unreachable region does."""


def _source(objects: Iterator[ObjectInfo]) -> Iterator[ObjectInfo]:
    try:
        yield from objects
    except Exception as exc:
        if unreachable(exc):
            raise _SourceUnreachable(f"{type(exc).__name__}: {exc}") from exc
        raise


def check_replication(inp: ReplicationInput, d: Deps) -> ReplicationStatus:
    """Graceful mode: have writes made before the failover reached the replica? Bounded by the plan.

    A source bucket that cannot be listed (its region's API is down) cannot be proven replicated: the check
    keeps trying until the bounded wait is over, then lets the failover proceed as ungraceful and records
    the RPO exposure (what the replica holds) in the ledger, rather than failing the failover.
    """
    plan = d.plans.get(inp.workload)
    now = d.clock()
    deadline = inp.started + plan.failover.replication_wait_timeout
    pending = 0
    oldest = None
    blind: list[S3Asset] = []
    for asset in plan.assets:
        if not isinstance(asset, S3Asset):
            continue
        # Fail fast: the wait is bounded by the plan, an outage must not spend it in retries.
        src = _source(
            d.buckets.objects(plan.regions.primary, asset.source.bucket, asset.source.prefix, fail_fast=True)
        )
        rep = d.buckets.objects(plan.regions.secondary, asset.replica.bucket, asset.replica.prefix)
        try:
            for diff in diff_listings(src, rep):
                if diff.kind == "extra" or diff.source is None or diff.source.last_modified > inp.started:
                    continue
                pending += 1
                if oldest is None or diff.source.last_modified < oldest:
                    oldest = diff.source.last_modified
        except _SourceUnreachable as exc:
            logger.warning(
                "replication source unreachable", workload=plan.workload, asset=asset.name, error=str(exc)
            )
            blind.append(asset)
    caught_up = pending == 0 and not blind
    timed_out = now >= deadline
    exposure = [replica_exposure(plan, a, d, now) for a in blind] if timed_out and blind else []
    if caught_up:
        reason = "every write made before the failover is in the replica"
    elif blind and timed_out:
        reason = _exposure_reason(plan, blind, exposure, pending)
    elif timed_out:
        reason = f"{pending} writes still unreplicated at the {plan.failover.replication_wait_timeout} limit"
    elif blind:
        names = ", ".join(a.name for a in blind)
        reason = f"cannot list the source of {names} in {plan.regions.primary}: retrying until the wait ends"
    else:
        reason = f"waiting for {pending} writes to replicate"
    retry = min(REPLICATION_POLL, max(deadline - now, timedelta(0)))
    # Renewed for the poll wait that follows and the tasks after it (re-entrant; LockHeld if it lapsed).
    d.locks.acquire(plan.workload, inp.execution, "failover", leases.lease(retry))
    emit("ReplicationPendingObjects", pending, workload=plan.workload)
    status = ReplicationStatus(
        done=caught_up or timed_out,
        caught_up=caught_up,
        pending_objects=pending,
        oldest_pending_at=oldest,
        retry_after_seconds=max(1, int(retry.total_seconds())) if not (caught_up or timed_out) else 0,
        reason=reason,
        source_unreachable=[a.name for a in blind],
        exposure=exposure,
    )
    if exposure:
        for e in exposure:
            if e.window_seconds is not None:
                emit("FailoverRpoExposureSeconds", e.window_seconds, "Seconds", workload=plan.workload)
        d.ledger.record(
            plan.workload,
            "replication",
            "rpo-exposed",
            reason,
            execution=inp.execution,
            detail=status.model_dump(mode="json"),
        )
    return status


def _exposure_reason(plan: DRPlan, blind: list[S3Asset], exposure: list[RpoExposure], pending: int) -> str:
    parts = []
    for e in exposure:
        if e.window_seconds is None:
            parts.append(f"{e.asset}: the replica is empty, every write may be lost")
            continue
        verdict = "within" if e.window_seconds <= e.objective_seconds else "BEYOND"
        since = min(p for p in (e.recovery_point, e.oldest_known_unreplicated_at) if p is not None)
        window, objective = format_seconds(e.window_seconds), format_seconds(e.objective_seconds)
        parts.append(
            f"{e.asset}: writes after {since:%H:%M:%S} UTC may be lost "
            f"(up to {window}, {verdict} its {objective} RPO)"
        )
    also = f"; {pending} more writes of reachable assets unreplicated" if pending else ""
    return (
        f"graceful failover proceeds as ungraceful: {plan.regions.primary} is unreachable, so replication "
        f"of {', '.join(a.name for a in blind)} could not be checked within "
        f"{format_duration(plan.failover.replication_wait_timeout)}; RPO exposure {'; '.join(parts)}{also}"
    )


def _target_weights(inp: ShiftInput) -> dict[str, int]:
    if inp.weights is not None:
        return {"primary": int(inp.weights["primary"]), "secondary": int(inp.weights["secondary"])}
    if inp.target == "secondary":
        return {"primary": 0, "secondary": 100}
    if inp.target == "primary":
        return {"primary": 100, "secondary": 0}
    raise ValueError("shift needs a target or weights")


def shift_traffic(inp: ShiftInput, d: Deps) -> TrafficState:
    plan = d.plans.get(inp.workload)
    # Traffic moves only under the lock: renew it (re-entrant), or fail with LockHeld if the lease lapsed
    # and another operation took the workload.
    d.locks.acquire(plan.workload, inp.execution, "failover", leases.lease())
    after = d.router.shift(plan, _target_weights(inp), last_smoke_passed(plan, d))
    logger.info("shifted", workload=plan.workload, before=after.detail["before"], after=after.weights)
    emit("TrafficShift", 1, workload=plan.workload)
    after.detail["at"] = d.clock().isoformat()
    return after


def verify_traffic(inp: VerifyInput, d: Deps) -> TrafficState:
    plan = d.plans.get(inp.workload)
    return d.router.verify(plan, inp.expected)


def record_failover(inp: ContextInput, d: Deps) -> RtoMeasurement:
    plan = d.plans.get(inp.workload)
    ctx = inp.context
    now = d.clock()
    trigger = ctx.get("trigger") or {}
    exec_start = inp.started
    started_at = parse_timestamp(trigger["first_alarm_at"]) if trigger else (exec_start or now)
    recheck_at = (ctx.get("recheck") or {}).get("at")
    decided_at = parse_timestamp(recheck_at) if recheck_at else (exec_start or started_at)
    rto = measure_rto(started_at, decided_at, now, plan.rto)
    d.ledger.update_state(
        plan.workload,
        active_region=plan.regions.secondary,
        last_failover_at=now,
        last_rto_seconds=rto.rto_seconds,
        pending_execution=None,
    )
    emit("FailoverRTO", rto.rto_seconds, "Seconds", workload=plan.workload)
    emit("FailoverAutomationSeconds", rto.automation_seconds, "Seconds", workload=plan.workload)
    emit("RTOObjectiveMet", 1 if rto.met else 0, workload=plan.workload)
    return rto


def _reason(plan: DRPlan, outcome: str, ctx: dict[str, Any]) -> str:
    error = ctx.get("error") or {}
    if outcome == "completed":
        rto = ctx.get("outcome") or {}
        verdict = "met" if rto.get("met") else "BREACHED"
        return (
            f"failed over; measured RTO {format_seconds(rto.get('rto_seconds', 0))} "
            f"(objective {format_seconds(rto.get('objective_seconds', 0))}, {verdict}); "
            f"automation {format_seconds(rto.get('automation_seconds', 0))}"
        )
    if outcome == "suppressed":
        if (ctx.get("probe") or {}).get("healthy"):
            return "failover suppressed: " + ctx["probe"]["reason"]
        return "failover suppressed: " + (ctx.get("recheck") or {}).get("reason", "trigger no longer holds")
    if outcome == "refused":
        if error:
            return f"failover refused: {error_cause(error)}"
        smoke = ctx.get("smoke_backup") or {}
        return f"failover refused: backup unhealthy ({smoke.get('reason', 'smoke test failed')})"
    smoke_after = ctx.get("smoke_after") or {}
    if smoke_after and not smoke_after.get("passed", True):
        why = f"post-switch validation failed ({smoke_after.get('reason')})"
    else:
        why = f"{error.get('Error', 'unknown error')}: {error_cause(error)}"
    if outcome == "unvalidated":
        return f"failover UNVALIDATED: traffic moved to {plan.regions.secondary}, then the run failed: {why}"
    return f"failover failed: {why}"


def _reconcile(plan: DRPlan, ctx: dict[str, Any], d: Deps) -> None:
    """After a failure, by the lock holder: leave traffic all on one side, never half-shifted, and never all
    on a secondary that failed its last smoke test (the post-switch validation) when the primary may take it
    back (the adapter's safety rules decide)."""
    try:
        current = d.router.read(plan)
    except Exception as exc:  # reading traffic failed too: the conclusion reports it, never guesses
        logger.error("reconcile: cannot read traffic", workload=plan.workload, error=str(exc))
        return
    smoke = last_smoke_passed(plan, d)
    if current.active_region is None:
        shift = ctx.get("shift") or {}
        wanted = (shift.get("detail") or {}).get("before") or {"primary": 100, "secondary": 0}
    else:
        wanted = retreat("failover", current.weights, smoke)
        if wanted is None:
            return
    logger.warning("reconcile: restoring pre-shift weights", workload=plan.workload, weights=wanted)
    try:
        d.router.shift(plan, wanted, smoke)
    except Exception as exc:  # the read-back that follows records whatever is true now
        logger.error("reconcile: restoring failed", workload=plan.workload, error=str(exc))


def _judge(plan: DRPlan, outcome: str, truth: Truth) -> str:
    # Traffic moved to the secondary and stayed there: not "failed" (nothing changed) but unvalidated.
    return "unvalidated" if truth.active_region == plan.regions.secondary else outcome


ENDING = Ending(
    kind="failover",
    outcomes=get_args(FailoverOutcome),
    detail_keys=(
        "trigger",
        "mode",
        "recheck",
        "probe",
        "smoke_backup",
        "shift",
        "smoke_after",
        "outcome",
        "error",
        "replication",
    ),
    subjects={
        "completed": "[Lifeboat] {w} failed over to {s}",
        "suppressed": "[Lifeboat] {w}: failover suppressed - {where}",
        "refused": "[Lifeboat] {w}: failover refused - {where}",
        "failed": "[Lifeboat] {w}: FAILOVER FAILED - {where}",
        "unvalidated": "[Lifeboat] {w}: FAILOVER UNVALIDATED - {where}",
    },
    reason=_reason,
    reconcile=_reconcile,
    judge=_judge,
)


def conclude(inp: ConcludeInput, d: Deps) -> Concluded:
    """Every outcome ends here (`services.conclusion`).

    "failed" (nothing changed, or it was undone: the primary serves) and "unvalidated" (traffic moved to
    the secondary, then the run failed before validating it) are different outcomes; both record the
    read-back, so the active region and the cooldown follow traffic, not the path the run took.
    """
    return conclusion.conclude(ENDING, Concluded, inp.workload, inp.execution, inp.outcome, inp.context, d)


__all__ = [
    "LockHeld",
    "acquire_lock",
    "check_replication",
    "conclude",
    "probe_endpoint",
    "recheck_trigger",
    "record_failover",
    "release_lock",
    "shift_traffic",
    "smoke_test",
    "verify_traffic",
]
