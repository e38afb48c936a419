"""How long a holder keeps the workload lock: a lease covers the stretch until its holder renews it.

A lease is not sized for a whole run. Each task that renews it (AcquireLock, CheckReplication and ShiftTraffic
in a failover; AcquireLock, each ShiftStep, CheckBake and operator wait in a failback) asks for what comes
before its next renewal: the wait it is about to start (a bake chunk, the replication poll, an operator's
answer) plus `STEP_BUDGET` for the tasks in between. A crashed or stopped run therefore frees the workload
within minutes even when the janitor (the execution-status rule) never runs, and a run whose lease lapsed
finds out at its next renewal (LockHeld) instead of acting without the lock.
"""

from __future__ import annotations

from datetime import timedelta

STEP_BUDGET = timedelta(minutes=15)
"""Room for the tasks between two renewals. Every Task state is bounded by its TimeoutSeconds
(workflows.asl.TASK_TIMEOUT_SECONDS, 2 minutes) and the longest path between renewals runs 6 tasks (a
conclusion that fails into Conclude; tests/unit/test_leases.py counts them in both definitions), so one
attempt of each fits; tasks normally take seconds, which leaves the rest for retries (a task's transient
retrier waits 79 s at most in all, workflows.asl.TRANSIENT_RETRY)."""


def lease(wait: timedelta = timedelta(0)) -> timedelta:
    """The lease a holder asks for when its next renewal comes after `wait` and the tasks that follow."""
    return max(wait, timedelta(0)) + STEP_BUDGET
