"""The workload lock as operators meet it: claimed before an operator-started execution exists, shown with
whether its holder still runs, and broken by hand when it outlived its holder.

One lease lock per workload (`adapters/locks.py`); the failover, failback and rollback state machines take it
in AcquireLock with their execution ARN as holder (`lifeboat rollback`, run in the operator's process, holds
it as `cli:<run id>`). An operator start claims it first, for the ARN the execution is about to have, so the
API and the CLI answer 202 or 409 before anything runs; AcquireLock then finds its own ARN holding the lock,
which is re-entrant (it renews the lease).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from chalicelib.adapters.dynamo import error_code
from chalicelib.adapters.locks import LockHeld
from chalicelib.domain.preconditions import lock_staleness
from chalicelib.models.api import EXECUTION_ARN
from chalicelib.models.ledger import LockInfo
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.services.failover import lock_lease

PROCESS_HOLDER = "cli:"
"""A holder that is a process, not an execution (services.rollback.CLI_HOLDER): nothing to describe; it
releases the lock when it ends, or its lease lapses."""


class OperationConflict(RuntimeError):
    """Another operation runs (or holds the lock) for the workload, or the request has nothing to act on:
    the API answers 409 (with the execution in the way, when there is one), the CLI exits 1."""

    def __init__(self, workload: str, operation: str, execution: str | None, message: str) -> None:
        self.workload = workload
        self.operation = operation
        self.execution = execution
        super().__init__(message)


class HeldLock(LockInfo):
    """A held lock, and whether anything will ever release it."""

    holder_name: str = Field(description="The holder's execution name (the last part of its ARN).")
    holder_status: str | None = Field(
        default=None,
        description="The holder execution's status (RUNNING, SUCCEEDED, ABORTED...); None: unknown.",
    )
    stale: bool = Field(
        description="True when the holder is not RUNNING (or cannot be described): only its lease expiry "
        "or an operator's unlock frees the workload."
    )
    stale_reason: str = Field(description="Why it is (or is not) stale.")


class Unlocked(BaseModel):
    workload: str
    released: HeldLock | None = Field(
        default=None, description="The lock that was removed, as it was (None: no lock was held)."
    )
    result: str = Field(description="What happened, in words.")
    requested_by: str = Field(description="Your IAM identity, as recorded in the ledger.")


def describe_lock(info: LockInfo, d: Deps) -> HeldLock:
    """The lock with its holder's execution status (one DescribeExecution)."""
    status: str | None = None
    problem: str | None = None
    if info.holder.startswith(PROCESS_HOLDER):
        return HeldLock(
            **info.model_dump(),
            holder_name=info.holder,
            stale=False,
            stale_reason="it is held by `lifeboat` in an operator's process, which releases it when done "
            "(or its lease lapses)",
        )
    if not EXECUTION_ARN.match(info.holder):
        problem = f"{info.holder!r} is not an execution ARN"
    else:
        try:
            status = str(d.executions.describe(info.holder)["status"])
        except Exception as exc:  # ExecutionDoesNotExist, AccessDenied, throttling: all say "cannot tell"
            problem = error_code(exc) or f"{type(exc).__name__}: {exc}"
    verdict = lock_staleness(
        status,
        problem,
        missing=problem == "ExecutionDoesNotExist",
        held_for=d.clock() - info.acquired_at,
    )
    return HeldLock(
        **info.model_dump(),
        holder_name=info.holder.rsplit(":", 1)[-1],
        holder_status=status,
        stale=verdict.stale,
        stale_reason=verdict.reason,
    )


def lock_view(workload: str, d: Deps) -> HeldLock | None:
    """The workload's live lock (a lapsed lease counts as free), or None."""
    info = d.locks.current(workload)
    return describe_lock(info, d) if info is not None else None


def conflict(info: LockInfo, d: Deps) -> OperationConflict:
    """The 409 for a held lock: who holds it, until when, and how to free it when nothing else will."""
    held = describe_lock(info, d)
    until = info.expires_at.isoformat()
    if held.stale:
        message = (
            f"{info.workload} is locked by a {info.operation} ({held.holder_name}) that is no longer "
            f"running ({held.stale_reason}); its lease lapses at {until}. Free it now with "
            f"`lifeboat unlock {info.workload} --reason ...` (POST /workloads/{info.workload}/unlock)"
        )
    else:
        state = "running" if held.holder_status == "RUNNING" else "starting"  # claimed, not started yet
        if info.holder.startswith(PROCESS_HOLDER):
            state = "running (CLI)"
        message = (
            f"{info.workload} is locked by a {state} {info.operation} ({held.holder_name}) until {until}"
        )
    holder = info.holder if EXECUTION_ARN.match(info.holder) else None
    return OperationConflict(info.workload, info.operation, holder, message)


def start_claimed(workload: str, kind: str, name: str, payload: dict[str, Any], d: Deps) -> tuple[str, bool]:
    """Claim the lock for the execution `name` will be, then start it; (arn, started_now).

    Of any number of simultaneous requests exactly one claim succeeds (a conditional write); the others get
    OperationConflict naming the winner. A start that fails gives the claim back.
    """
    plan = d.plans.get(workload)
    arn = d.executions.execution_arn(workload, kind, name)  # LookupError when not deployed: nothing claimed
    try:
        d.locks.acquire(workload, arn, kind, lock_lease(plan))
    except LockHeld as held:
        raise conflict(held.info, d) from None
    try:
        started, started_now = d.executions.start(workload, kind, name, payload)
    except Exception:
        d.locks.release(workload, arn)
        raise
    if started != arn:  # never seen; but a claim under a wrong ARN would refuse the execution its own lock
        logger.error("execution ARN differs from the claimed one", claimed=arn, started=started)
        d.locks.release(workload, arn)
    return started, started_now


def unlock(workload: str, reason: str, actor: str, d: Deps) -> Unlocked:
    """Remove the workload's lock whoever holds it, and record who did it and why.

    Meant for a lock whose holder is gone (`stale`); a holder that still runs is not stopped, and the answer
    says so. A failback renews its lease at every step and takes the lock back if it is free.
    """
    d.plans.get(workload)  # unknown workload -> UnknownWorkload (404)
    removed = d.locks.break_lock(workload)
    if removed is None:
        return Unlocked(
            workload=workload, result=f"{workload} was not locked: nothing to do", requested_by=actor
        )
    held = describe_lock(removed, d)
    what = f"the lock of {removed.operation} {held.holder_name}"
    if removed.expires_at <= d.clock():
        result = f"removed {what}, whose lease had already lapsed ({held.stale_reason})"
    elif held.stale:
        result = f"released {what} ({held.stale_reason})"
    else:
        result = (
            f"released {what}, but {held.stale_reason} and may go on: stop it if it must not "
            f"(`lifeboat abort {held.holder_name}` for a failback)"
        )
    d.ledger.record(
        workload,
        "operator",
        "unlocked",
        reason,
        actor=actor,
        execution=removed.holder if EXECUTION_ARN.match(removed.holder) else None,
        detail={"lock": held.model_dump(mode="json"), "result": result},
    )
    emit("LockBroken", 1, workload=workload)
    logger.warning("lock broken by an operator", workload=workload, holder=removed.holder, actor=actor)
    return Unlocked(workload=workload, released=held, result=result, requested_by=actor)
