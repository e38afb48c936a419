"""Reading traffic back and recording it as the workload's state: the last thing every conclusion does."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.reconcile import serving_region, serving_words, truthful_state
from chalicelib.models.ledger import EntryKind, LedgerEntry, WorkloadState
from chalicelib.models.plan import DRPlan
from chalicelib.observability import logger
from chalicelib.services.deps import Deps


class Truth(BaseModel):
    """Traffic as read back when an operation ended, and whether the workload state now says so."""

    weights: dict[str, int] | None = Field(description="Read-back weights; None when they could not be read.")
    active_region: str | None = Field(description="Region serving all traffic; None when split or unknown.")
    serving: str = Field(
        description="Which region serves users, in words (for the ledger and notifications)."
    )
    read_error: str | None = Field(default=None, description="Why traffic could not be read back.")
    recorded: bool = Field(default=False, description="The workload state was updated to match.")
    held_by: str | None = Field(
        default=None,
        description="Another operation holding the lock: it owns traffic and state, nothing recorded.",
    )

    @property
    def where(self) -> str:
        """Who serves users, at the end of a notification subject (ASCII: SNS allows nothing else there)."""
        if self.weights is None:
            return "traffic UNKNOWN"
        return f"{self.active_region} serves users" if self.active_region else "TRAFFIC SPLIT"


def read_traffic(plan: DRPlan, d: Deps) -> Truth:
    """The read-back; never raises (an unreadable traffic state is itself the truth to report)."""
    try:
        weights = d.router.read(plan).weights
    except Exception as exc:
        logger.error("cannot read traffic back", workload=plan.workload, error=str(exc))
        return Truth(
            weights=None,
            active_region=None,
            serving=serving_words(plan, None),
            read_error=f"{type(exc).__name__}: {exc}",
        )
    return Truth(
        weights=weights, active_region=serving_region(plan, weights), serving=serving_words(plan, weights)
    )


def holds_lock(workload: str, execution: str, d: Deps) -> bool:
    """Does `execution` hold the workload's lock? Only the holder may move traffic."""
    held = d.locks.current(workload)
    return held is not None and held.holder == execution


def record_truth(plan: DRPlan, execution: str | None, d: Deps, truth: Truth | None = None) -> Truth:
    """Read traffic back (unless given) and make the workload state say what it shows.

    `execution` ends: a pending mark it left is cleared in any case. The active region and the
    cooldown clock are written only while no other operation holds the lock (that one owns them, and
    records its own truth when it ends) and only when traffic could be read.
    """
    truth = truth if truth is not None else read_traffic(plan, d)
    held = d.locks.current(plan.workload)
    if held is not None and held.holder != execution:
        truth.held_by = f"{held.operation} {held.holder}"
    owner = truth.held_by is None and truth.weights is not None
    now = d.clock()

    def mutate(state: WorkloadState) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if execution is not None and state.pending_execution == execution:
            changes["pending_execution"] = None
        if owner and truth.weights is not None:
            changes.update(truthful_state(plan, state, truth.weights, now))
        return changes

    state = d.ledger.get_state(plan.workload)
    if mutate(state):
        d.ledger.update_state(plan.workload, current=state, mutate=mutate)
    truth.recorded = owner
    if owner:
        logger.info(
            "recorded traffic",
            workload=plan.workload,
            weights=truth.weights,
            active_region=truth.active_region,
        )
    return truth


def recorded_conclusion(
    plan: DRPlan, execution: str, kind: EntryKind, outcomes: Collection[str], d: Deps
) -> LedgerEntry | None:
    """The conclusion `execution` recorded itself, if it did (None: it has not concluded).

    A conclude task can run twice for one run: its answer lost after its work was done, the Catch runs the
    failure conclusion next (or Lambda retries it). The second run must not move traffic, record or notify
    again: one run, one conclusion.
    """
    if d.ledger.concluded_by(plan.workload, execution) != "execution":
        return None
    for entry in d.ledger.entries(plan.workload, limit=200, kind=kind):
        if entry.execution == execution and entry.outcome in outcomes:
            return entry
    return None
