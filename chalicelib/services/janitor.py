"""The janitor: a failover or failback execution that ended without concluding leaves nothing behind.

Stopped (StopExecution), timed out, or failed outside every Catch, an execution skips its own Conclude and
ReleaseLock; one that succeeded may still have failed to release. Told by Step Functions' "Execution Status
Change" event (EventBridge), the janitor releases the lock if that execution still holds it, makes the
workload state follow traffic as read back, and — unless someone already concluded the run — records the
outcome and tells people which region serves users.

It moves traffic in one case only, as the run's own Conclude would have: the run left all of it on its target
right after that target failed its smoke test (a failed post-switch or final validation it did not get to
act on, or a Conclude that crashed). Traffic then goes back where the run took it from, under the run's lock
(still held, or taken back while nobody holds it: never while another operation owns traffic) and through
the traffic adapter's safety rules (domain.reconcile.retreat). Anything else — a split left by a stopped
failback, say — stays as it is, recorded as it is.

A model rollback that ended (services.rollback) gets its lock released if it still holds it; one stopped or
timed out before it recorded its report is recorded as such (its endpoint may serve the new version untested).

Idempotent, as EventBridge delivers at least once: the release is conditional on the holder, the state
follows the read-back, and the ledger's conclusion mark lets exactly one party record the outcome.
"""

from __future__ import annotations

import json
from typing import Literal

from chalicelib.adapters.locks import LockHeld
from chalicelib.domain import leases
from chalicelib.domain.reconcile import retreat
from chalicelib.models.plan import DRPlan, Role
from chalicelib.models.stepfunctions import (
    ENDED,
    ExecutionStatusChange,
    ExecutionStatusDetail,
    JanitorOutcome,
)
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.services.failback import control_key
from chalicelib.services.smoke import last_smoke_passed
from chalicelib.services.truth import Truth, holds_lock, record_truth

Kind = Literal["failover", "failback"]
KINDS: tuple[Kind, ...] = ("failover", "failback")
ROLLBACK: Literal["rollback"] = "rollback"
OUTCOMES = {"ABORTED": "stopped", "TIMED_OUT": "timed-out", "FAILED": "failed"}
WORDS = {"ABORTED": "was stopped", "TIMED_OUT": "timed out", "FAILED": "failed"}
# Who stops a run and concludes it from outside (services.failback_ops.abort, the drill cleanup).
STOPPED_BY_OWNER = ("operator", "drill")


def _identify(detail: ExecutionStatusDetail, d: Deps) -> tuple[DRPlan, Kind | Literal["rollback"]] | None:
    """The plan and kind whose state machine ran the execution (None: not one of Lifeboat's operations)."""
    machine = detail.state_machine_arn.rsplit(":", 1)[-1]
    try:
        named = json.loads(detail.input or "{}").get("workload")
    except (ValueError, AttributeError):
        named = None
    # The input names the workload, unless EventBridge left it out (inputs over 248 KB): then ask every plan.
    plans = [d.plans.get(named)] if isinstance(named, str) and named else d.plans.all()
    for plan in plans:
        for kind in (*KINDS, ROLLBACK):
            if d.executions.state_machine_name(plan.workload, kind) == machine:
                return plan, kind  # type: ignore[return-value]
    return None


def tidy_up(change: ExecutionStatusChange, d: Deps) -> JanitorOutcome:
    detail = change.detail
    arn = detail.execution_arn
    if detail.status not in ENDED:
        return JanitorOutcome(
            execution=arn, status=detail.status, action="ignored", reason=f"{detail.status}: nothing to do"
        )
    try:
        found = _identify(detail, d)
    except LookupError as exc:  # a workload whose plan is gone: nothing Lifeboat can reconcile
        found = None
        logger.warning("janitor: unknown workload", execution=arn, error=str(exc))
    if found is None:
        return JanitorOutcome(
            execution=arn,
            status=detail.status,
            action="ignored",
            reason="not a failover, failback or rollback execution of a plan Lifeboat protects",
        )
    plan, found_kind = found
    if found_kind == "rollback":
        return _rollback_ended(plan, detail, d)
    kind = found_kind
    out = JanitorOutcome(
        execution=arn, status=detail.status, action="cleaned", reason="", workload=plan.workload, kind=kind
    )
    by = d.ledger.concluded_by(plan.workload, arn)
    if by in STOPPED_BY_OWNER:
        return _left_to_owner(out, by)
    # A succeeded run concluded itself (every way to success passes a Conclude): only its lock may be left.
    succeeded = detail.status == "SUCCEEDED"
    if by is None and not succeeded and not d.ledger.mark_concluded(plan.workload, arn, "janitor"):
        by = d.ledger.concluded_by(plan.workload, arn) or "unknown"  # someone got there first
        if by in STOPPED_BY_OWNER:
            return _left_to_owner(out, by)
    holder = holds_lock(plan.workload, arn, d)
    # The janitor records the outcome of a run nobody concluded, and of a "cancelled" pending failover that
    # turns out to have been past its sustain window already (it held the lock, so it may have acted).
    concludes = not succeeded and (by is None or (by == "trigger" and holder))
    moved = _retreat(plan, kind, arn, d) if concludes else None
    out.lock_released = d.locks.release(plan.workload, arn) and holder
    if by is None and kind == "failback":
        d.ledger.delete_control(plan.workload, control_key(arn))  # its flags and task tokens are dead
    truth = record_truth(plan, arn, d)
    out.concluded_by, out.weights, out.active_region = by, truth.weights, truth.active_region
    if out.lock_released:
        emit("JanitorLockReleased", 1, workload=plan.workload)
        logger.warning("janitor released a lock", workload=plan.workload, execution=arn, status=detail.status)
    if not concludes:
        released = "lock released; " if out.lock_released else ""
        out.reason = f"concluded by {by or 'the execution'}; {released}{truth.serving}"
        return out
    out.action = "concluded"
    out.reason = _record(plan, kind, detail, change.id, out.lock_released, truth, d, moved)
    return out


def _rollback_ended(plan: DRPlan, detail: ExecutionStatusDetail, d: Deps) -> JanitorOutcome:
    """A rollback moves no traffic: its lock, released if it still holds it, is all it can leave behind.
    Stopped or timed out, it skipped its RecordRollback too: the ledger says so, once."""
    arn = detail.execution_arn
    released = d.locks.release(plan.workload, arn)
    out = JanitorOutcome(
        execution=arn,
        status=detail.status,
        action="cleaned",
        reason="lock released" if released else "it held no lock",
        workload=plan.workload,
        kind=ROLLBACK,
        lock_released=released,
    )
    if released:
        emit("JanitorLockReleased", 1, workload=plan.workload)
        logger.warning("janitor released a lock", workload=plan.workload, execution=arn, status=detail.status)
    if detail.status not in ("ABORTED", "TIMED_OUT") or not d.ledger.mark_concluded(
        plan.workload, arn, "janitor"
    ):
        return out
    reason = (
        f"rollback {detail.name} {WORDS[detail.status]} before it was recorded"
        + ("; its lock was released" if released else "")
        + "; the endpoint may serve the version it was deploying, smoke tests not run: check it with "
        f"`lifeboat rollback {plan.workload} --dry-run`"
    )
    facts = {"status": detail.status, "lock_released": released}
    d.ledger.record(plan.workload, ROLLBACK, OUTCOMES[detail.status], reason, execution=arn, detail=facts)
    out.action, out.reason = "concluded", reason
    return out


def _retreat(plan: DRPlan, kind: Kind, execution: str, d: Deps) -> dict[str, int] | None:
    """Traffic back where the run took it from, if the run left all of it on a target that failed its last
    smoke test (domain.reconcile.retreat). Only under the run's lock: it still holds it, or nobody does and
    the janitor takes it back for the move (released right after); the adapter's safety rules still apply.
    Returns the weights moved to, or None when nothing moved."""
    try:
        smoke = last_smoke_passed(plan, d)
        wanted = retreat(kind, d.router.read(plan).weights, smoke)
        if wanted is None:
            return None
        d.locks.acquire(plan.workload, execution, kind, leases.lease())  # re-entrant; LockHeld if taken
        d.router.shift(plan, wanted, smoke)
    except LockHeld as exc:  # another operation owns traffic now: it is not the janitor's to move
        logger.warning("janitor leaves traffic to the lock's holder", workload=plan.workload, error=str(exc))
        return None
    except Exception as exc:  # the read-back that follows records whatever is true
        logger.error("janitor could not move traffic back", workload=plan.workload, error=str(exc))
        return None
    emit("JanitorMovedTrafficBack", 1, workload=plan.workload)
    logger.warning("janitor moved traffic back", workload=plan.workload, weights=wanted)
    return wanted


def _left_to_owner(out: JanitorOutcome, by: str) -> JanitorOutcome:
    # `lifeboat abort` or a drill's cleanup stopped the run and is putting traffic back right now: it records,
    # releases the lock and sets the state itself; reading traffic mid-move would only race it.
    out.concluded_by = by
    out.reason = f"the {by} that stopped this run concludes it (traffic, ledger, lock)"
    emit("JanitorLeftToOwner", 1, workload=out.workload or "")
    return out


def _record(
    plan: DRPlan,
    kind: Kind,
    detail: ExecutionStatusDetail,
    event_id: str,
    released: bool,
    truth: Truth,
    d: Deps,
    moved: dict[str, int] | None = None,
) -> str:
    outcome = OUTCOMES[detail.status]
    reason = f"{kind} {detail.name} {WORDS[detail.status]} before it concluded"
    if moved is not None:
        target: Role = "secondary" if kind == "failover" else "primary"
        reason += (
            f"; it had left all traffic on the {target} ({plan.region_of(target)}), which failed its last "
            "smoke test: traffic was moved back"
        )
    if released:
        reason += "; its lock was released"
    if truth.held_by:
        reason += f"; {truth.held_by} holds the lock now and owns the state"
    reason += f"; {truth.serving}"
    facts = {
        "status": detail.status,
        "started": detail.start_date.isoformat(),
        "stopped": detail.stop_date.isoformat() if detail.stop_date else None,
        "lock_released": released,
        "moved_back_to": moved,
        "traffic_after": truth.weights,
        "active_region": truth.active_region,
        "serving": truth.serving,
        "state_recorded": truth.recorded,
        "event_id": event_id,
    }
    if truth.read_error:
        facts["traffic_read_error"] = truth.read_error
    d.ledger.record(plan.workload, kind, outcome, reason, execution=detail.execution_arn, detail=facts)
    emit(f"Janitor{kind.capitalize()}{outcome.title().replace('-', '')}", 1, workload=plan.workload)
    subject = f"[Lifeboat] {plan.workload}: {kind} {outcome.upper()} - {truth.where}"
    try:
        d.notifier.publish(plan, subject, reason, {"execution": detail.execution_arn, **facts})
    except Exception as exc:  # a notification failure must not hide the outcome
        logger.error("notification failed", workload=plan.workload, error=str(exc))
    return reason
