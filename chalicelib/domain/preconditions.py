"""Does an operator's failover or failback have anything to do, and is a held lock's holder still alive?

Pure decisions over what the ledger recorded and what was read back from AWS; the services read, these decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from pydantic import BaseModel, Field

from chalicelib.models.plan import DRPlan

ON_PRIMARY = {"primary": 100, "secondary": 0}
ON_SECONDARY = {"primary": 0, "secondary": 100}
CLAIM_GRACE = timedelta(minutes=1)
"""How long a claimed lock's execution may not exist yet: between the claim and StartExecution."""


class Precondition(BaseModel):
    proceed: bool = Field(description="False: answer `reason` and start nothing.")
    reason: str


def failover_needed(
    plan: DRPlan, active_region: str | None, weights: Mapping[str, int] | None
) -> Precondition:
    """A failover has nothing to do only when the ledger *and* the live traffic both say the secondary serves.

    Either alone is not enough: a stale ledger (traffic moved back by hand) or traffic that could not be read
    leaves the decision to the run, which checks everything again.
    """
    secondary = plan.regions.secondary
    if weights is None:
        return Precondition(proceed=True, reason="traffic could not be read; the run checks it again")
    if active_region == secondary and dict(weights) == ON_SECONDARY:
        return Precondition(proceed=False, reason=f"already serving from {secondary}; nothing to do")
    return Precondition(proceed=True, reason=f"traffic is {dict(weights)}: failing over to {secondary}")


def failback_needed(
    plan: DRPlan, active_region: str | None, weights: Mapping[str, int] | None
) -> Precondition:
    """A failback moves traffic from the secondary back in steps: with everything already on the primary its
    first step would *take* traffic away from the primary, so that is refused whatever the ledger says."""
    primary = plan.regions.primary
    if weights is None:
        return Precondition(
            proceed=True, reason="traffic could not be read; the readiness check reads it again"
        )
    if dict(weights) != ON_PRIMARY:
        return Precondition(proceed=True, reason=f"traffic is {dict(weights)}")
    reason = f"nothing to fail back: {primary} already serves all traffic"
    if active_region not in (None, primary):
        reason += f" (the ledger still records {active_region} as active)"
    return Precondition(proceed=False, reason=reason)


class Staleness(BaseModel):
    stale: bool = Field(description="True when the holder is no longer running: nothing will release it.")
    reason: str


def lock_staleness(
    holder_status: str | None,
    problem: str | None = None,
    *,
    missing: bool = False,
    held_for: timedelta = timedelta(0),
) -> Staleness:
    """A lock is live only while its holder execution runs; one we cannot even describe counts as stale,
    because nothing we can see will ever release it (the lease expiry is the only other way out).

    Except for a moment: an operator start claims the lock for its execution's ARN just *before*
    StartExecution, so a holder that does not exist yet but claimed it within `CLAIM_GRACE` is starting.
    """
    if holder_status == "RUNNING":
        return Staleness(stale=False, reason="its execution is running")
    if holder_status is not None:
        return Staleness(stale=True, reason=f"its execution is {holder_status}")
    if missing and held_for < CLAIM_GRACE:
        return Staleness(stale=False, reason="its execution is being started")
    return Staleness(stale=True, reason=f"its holder cannot be described: {problem or 'unknown'}")
