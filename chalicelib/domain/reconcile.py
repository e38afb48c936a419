"""What is true when an operation ends: which region serves users, and the workload state that says so.

Every conclusion (the state machines' Conclude tasks, an operator's abort, the janitor of an execution that
ended without concluding) reads traffic back, records the weights in its ledger entry and updates the
workload state through these rules, so the ledger follows traffic rather than the path the run took.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from chalicelib.models.ledger import WorkloadState
from chalicelib.models.plan import DRPlan

Operation = Literal["failover", "failback"]
# (the side an operation moves traffic to, the side it takes traffic from)
DIRECTION: dict[Operation, tuple[str, str]] = {
    "failover": ("secondary", "primary"),
    "failback": ("primary", "secondary"),
}


def serving_region(plan: DRPlan, weights: Mapping[str, int]) -> str | None:
    """The region taking all traffic, or None while traffic is split (or goes nowhere)."""
    serving = [role for role in ("primary", "secondary") if int(weights.get(role, 0)) > 0]
    return plan.region_of(serving[0]) if len(serving) == 1 else None  # type: ignore[arg-type]


def serving_words(plan: DRPlan, weights: Mapping[str, int] | None) -> str:
    """One sentence for people: which region serves users now."""
    if weights is None:
        return "traffic could not be read back: which region serves users is UNKNOWN"
    active = serving_region(plan, weights)
    if active == plan.regions.primary:
        return f"{active} (primary) serves all users"
    if active == plan.regions.secondary:
        return f"{active} (secondary) serves all users"
    primary, secondary = int(weights.get("primary", 0)), int(weights.get("secondary", 0))
    if primary == secondary == 0:
        return "NO region takes traffic (every weight is 0)"
    return (
        f"traffic is SPLIT: {primary}% on {plan.regions.primary} (primary), "
        f"{secondary}% on {plan.regions.secondary} (secondary)"
    )


def truthful_state(
    plan: DRPlan, state: WorkloadState, weights: Mapping[str, int], now: datetime
) -> dict[str, Any]:
    """The changes that make `state` say what the read-back `weights` show (empty when it already does).

    The active region follows traffic. When the side serving everything changed from what the state last
    said (a failover or failback happened, whether or not its run validated it), the transition's time is
    recorded too: the trigger's cooldown and "already failed over" rules read them. A workload with no
    recorded active region is taken to have been served by its primary.
    """
    active = serving_region(plan, weights)
    changes: dict[str, Any] = {}
    if state.active_region != active:
        changes["active_region"] = active
    before = state.active_region or plan.regions.primary
    if active == plan.regions.secondary and before != plan.regions.secondary:
        changes["last_failover_at"] = now
    elif active == plan.regions.primary and before == plan.regions.secondary:
        changes["last_failback_at"] = now
    return changes


def retreat(
    operation: Operation, weights: Mapping[str, int], last_smoke_passed: Mapping[str, bool | None]
) -> dict[str, int] | None:
    """Where traffic goes when a run that was moving it ends unfinished: back to the side the run took it
    from, but only when the run left all of it on its target and that target failed its last smoke test (a
    failed post-switch or final validation the run did not get to act on). None: traffic stays where it is.

    Never 100% on a target known to be broken; whether the way back is safe (that side may have failed its
    own last smoke test) is the traffic adapter's safety rule, checked when the shift is made.
    """
    target, origin = DIRECTION[operation]
    if int(weights.get(target, 0)) == 100 and last_smoke_passed.get(target) is False:
        return {origin: 100, target: 0}
    return None
