"""How a failover or failback run concludes: the steps both take, once, in the same order; each operation
says what is its own (`Ending`: its outcomes, how it reconciles traffic, its reasons and notification
subjects).

Every outcome ends here: leave traffic clean (only the lock holder, only after a failure), read it back,
record what is true, notify. A run that concluded already (its conclude task's answer was lost after the work,
then the Catch or a retry ran it again) concludes nothing twice: it gets the conclusion it recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from chalicelib.models.plan import DRPlan
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.services.truth import Truth, holds_lock, record_truth, recorded_conclusion

Ended = TypeVar("Ended", bound=BaseModel)
"""The operation's conclusion model (status, reason, traffic, active_region, serving)."""


@dataclass(frozen=True)
class Ending:
    """What one kind of operation brings to its conclusion."""

    kind: Literal["failover", "failback"]  # its ledger entries' kind and its metrics' prefix
    outcomes: tuple[str, ...]
    detail_keys: tuple[str, ...]  # the run's context kept in the ledger entry and the notification
    subjects: Mapping[str, str]  # outcome -> subject; {w}orkload, {p}rimary, {s}econdary, {where} serves
    reason: Callable[[DRPlan, str, dict[str, Any]], str]  # (plan, outcome, context) -> the outcome in words
    reconcile: Callable[[DRPlan, dict[str, Any], Deps], None]  # a failed run's holder leaves traffic clean
    # The outcome once traffic is read back, for a failed run that held the lock (failover: "unvalidated").
    judge: Callable[[DRPlan, str, Truth], str] | None = None
    # After the conclusion is recorded (failback: its control record and tokens are dead now).
    recorded: Callable[[DRPlan, str, str, Deps], None] | None = None


def error_cause(error: Mapping[str, Any]) -> str:
    """The message of an error a Catch caught: a Lambda error's `errorMessage`, else its Cause as is."""
    cause = error.get("Cause") or ""
    try:
        return str(json.loads(cause).get("errorMessage", cause))
    except (ValueError, AttributeError):
        return str(cause)


def conclude(
    ending: Ending,
    model: type[Ended],
    workload: str,
    execution: str,
    outcome: str,
    ctx: dict[str, Any],
    d: Deps,
) -> Ended:
    """Conclude `execution` of `workload` (see the module docstring); `model` is the task's answer."""
    plan = d.plans.get(workload)
    earlier = recorded_conclusion(plan, execution, ending.kind, ending.outcomes, d)
    if earlier is not None:  # e.g. a completed failback whose answer was lost must not be rolled back now
        return model.model_validate(
            {
                "status": earlier.outcome,
                "reason": earlier.reason,
                "traffic": earlier.detail.get("traffic_after"),
                "active_region": earlier.detail.get("active_region"),
                "serving": str(earlier.detail.get("serving", "")),
            }
        )
    if outcome == "refused" and (ctx.get("error") or {}).get("Error") not in (None, "LockHeld"):
        outcome = "failed"
    holder = outcome == "failed" and holds_lock(plan.workload, execution, d)
    if holder:
        ending.reconcile(plan, ctx, d)
    truth = record_truth(plan, execution, d)
    if holder and ending.judge is not None:
        outcome = ending.judge(plan, outcome, truth)
    reason = f"{ending.reason(plan, outcome, ctx)}; {truth.serving}"
    detail = {k: ctx[k] for k in ending.detail_keys if k in ctx}
    detail.update(traffic_after=truth.weights, active_region=truth.active_region, serving=truth.serving)
    if truth.read_error:
        detail["traffic_read_error"] = truth.read_error
    d.ledger.record(
        plan.workload,
        ending.kind,
        outcome,
        reason,
        actor=str(ctx.get("requested_by", "lifeboat")),
        execution=execution,
        detail=detail,
    )
    d.ledger.mark_concluded(plan.workload, execution, "execution")
    if ending.recorded is not None:
        ending.recorded(plan, execution, outcome, d)
    emit(f"{ending.kind.title()}{outcome.title().replace('_', '')}", 1, workload=plan.workload)
    subject = ending.subjects[outcome].format(
        w=plan.workload, p=plan.regions.primary, s=plan.regions.secondary, where=truth.where
    )
    try:
        d.notifier.publish(plan, subject, reason, {"execution": execution, **detail})
    except Exception as exc:  # a notification failure must not hide the outcome
        logger.error("notification failed", workload=plan.workload, error=str(exc))
    return model.model_validate(
        {
            "status": outcome,
            "reason": reason,
            "traffic": truth.weights,
            "active_region": truth.active_region,
            "serving": truth.serving,
        }
    )
