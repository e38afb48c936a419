"""After the scenario: what it left behind (judged before anything is tidied), then the cleanup that leaves
the subject as a drill found it whatever stopped the drill - faults restored, no drill execution running or
holding the lock, traffic all on one side, the drill's objects deleted."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta

from chalicelib.domain import drills as rules
from chalicelib.domain.reconcile import serving_region
from chalicelib.models.plan import DRPlan
from chalicelib.observability import logger
from chalicelib.services.deps import Deps
from chalicelib.services.drills.context import DrillContext
from chalicelib.services.drills.subject import ON_PRIMARY, ON_SECONDARY
from chalicelib.services.smoke import last_smoke_passed, run_smoke

# How long Lifeboat may take to tidy up by itself after a scenario (the janitor that releases the lock of a
# stopped execution runs on its status-change event) before a leftover counts against it.
LEFTOVER_GRACE = timedelta(seconds=60)
CONVERGE_POLLS = 10
CONVERGE_EVERY = 0.5  # seconds of real time: traffic converges in the real world, whatever the drill's clock


def leftovers(run: DrillContext) -> list[str]:
    """What the scenario left behind, before any cleanup: a lock outliving its execution, a ledger that
    disagrees with traffic. Lifeboat gets LEFTOVER_GRACE to tidy up by itself (the janitor runs on the
    execution's status-change event, asynchronously), then whatever is still there is a finding."""
    plan, d = run.subject, run.d
    deadline = run.now() + LEFTOVER_GRACE
    run.lease.heartbeat("checking what the scenario left", force=True)
    while True:
        lock = d.locks.current(plan.workload)
        status = None
        if lock is not None:
            try:
                status = d.executions.describe(lock.holder)["status"]
            except Exception as exc:  # not an execution we can read: it is not running either
                logger.warning("lock holder not readable", holder=lock.holder, error=str(exc))
        serving = serving_region(plan, d.router.read(plan).weights)
        found = rules.residue(
            lock_holder=lock.holder if lock else None,
            holder_status=status,
            recorded_region=d.ledger.get_state(plan.workload).active_region,
            serving_region=serving,
            primary=plan.regions.primary,
        )
        if not found or run.now() >= deadline:
            return found
        run.tick()


def cleanup(run: DrillContext, *, interrupted: bool) -> list[str]:
    """Restore every fault, leave the subject clean, delete the drill's objects; returns what was done."""
    done = [f"faults: {w}" for w in run.injector.restore_all()]
    done += clean_subject(
        run.subject, run.d, run.executions, since=run.record.started_at, interrupted=interrupted
    )
    removed = run.writes.remove()
    if removed is not None:
        done.append(removed)
    run.injector.close()
    return done


def clean_subject(
    plan: DRPlan, d: Deps, executions: Mapping[str, str], *, since: datetime, interrupted: bool
) -> list[str]:
    """Leave the subject clean: no drill execution running or holding the lock, traffic all on one side
    (the primary once it is healthy again), the workload state saying where traffic is."""
    done: list[str] = []
    known = dict(executions)
    for kind in ("failover", "failback"):
        try:
            for run in d.executions.running(plan.workload, kind):
                if run["startDate"] >= since - timedelta(seconds=5):
                    known.setdefault(run["executionArn"], kind)
        except LookupError:
            continue
    for arn, kind in known.items():
        if d.executions.describe(arn)["status"] == "RUNNING":
            # The cleanup concludes it (lock, traffic, state below): the janitor leaves it be.
            d.ledger.mark_concluded(plan.workload, arn, "drill")
            d.executions.stop(arn, "stopped by the drill's cleanup")
            done.append(f"stopped the {kind} execution {arn.rsplit(':', 1)[-1]}")
        if d.locks.release(plan.workload, arn):
            done.append(f"released the lock held by {arn.rsplit(':', 1)[-1]}")
    weights = d.router.read(plan).weights
    if weights != ON_PRIMARY:
        primary = run_smoke(plan, "primary", d, phase="drill-cleanup")
        target = ON_PRIMARY if primary.passed else ON_SECONDARY
        if weights != target:
            d.router.shift(plan, target, last_smoke_passed(plan, d))
            for _ in range(CONVERGE_POLLS):
                if d.router.read(plan).weights == target:
                    break
                time.sleep(CONVERGE_EVERY)
            side = "primary" if target == ON_PRIMARY else "secondary (the primary is not healthy yet)"
            done.append(f"traffic was {weights}: all of it moved back to the {side}")
        weights = d.router.read(plan).weights
    active = plan.regions.primary if weights == ON_PRIMARY else plan.regions.secondary
    state = d.ledger.get_state(plan.workload)
    if state.active_region != active or state.pending_execution:
        d.ledger.update_state(plan.workload, current=state, active_region=active, pending_execution=None)
        if interrupted:
            done.append(f"workload state set to {active} active")
    done.append(f"traffic is clean: {weights}")
    return done
