"""Drills requested through the API or the monthly schedule: checked at once, handed to the drill function
through EventBridge, run there to the end."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.drill_faults import FaultInjector
from chalicelib.invariants import present
from chalicelib.models.drill import DrillBody, DrillRecord, DrillRequest, DrillStarted
from chalicelib.observability import logger
from chalicelib.services.deps import Deps
from chalicelib.services.drills.errors import DrillRefused
from chalicelib.services.drills.runner import DrillRunner
from chalicelib.services.drills.subject import in_local_cloud, new_drill_id, resolve_subject


def request_drill(
    workload: str, body: DrillBody, actor: str, d: Deps, *, local: bool | None = None
) -> DrillStarted:
    """Check what can be checked now (plan, subject, confirmation), then hand the drill to the drill
    function through EventBridge; the drill's own pre-conditions run there, and a refusal is recorded."""
    plan = d.plans.get(workload)
    scenario = body.scenario or plan.drill.scenario
    request = DrillRequest(
        workload=plan.workload,
        scenario=scenario,
        live=body.live,
        confirm=body.confirm,
        requested_by=actor,
        reason=body.reason or f"{scenario} drill requested by {actor}",
        drill_id=new_drill_id(d.clock()),
    )
    subject, mode = resolve_subject(plan, request, d, local=in_local_cloud() if local is None else local)
    d.drill_requests.publish(request)
    d.ledger.record(
        subject.workload,
        "drill",
        "requested",
        f"drill {request.drill_id} ({scenario}, {mode}) requested: {request.reason}",
        actor=actor,
        detail={"drill_id": request.drill_id, "scenario": scenario, "mode": mode},
    )
    return DrillStarted(
        drill_id=present(request.drill_id, "the drill request's id"),
        workload=plan.workload,
        subject=subject.workload,
        mode=mode,
        scenario=scenario,
        requested_by=actor,
    )


def run_requested(request: DrillRequest, d: Deps) -> dict[str, Any]:
    """The drill function: run a requested drill to the end (a refusal is recorded, not raised)."""
    try:
        record = DrillRunner(request, d).run()
    except DrillRefused as exc:
        plan = d.plans.get(request.workload)
        d.ledger.record(
            plan.workload,
            "drill",
            "refused",
            f"drill {request.drill_id} ({request.scenario}) refused: {exc}",
            actor=request.requested_by,
            detail={"drill_id": request.drill_id, "scenario": request.scenario},
        )
        logger.warning("drill refused", workload=plan.workload, reason=str(exc))
        return {"drill_id": request.drill_id, "refused": str(exc)}
    return record.summary().model_dump(mode="json")


def schedule_monthly(d: Deps, *, local: bool | None = None) -> dict[str, Any]:
    """The monthly schedule: request the drill of every plan that asks for one (on its drill target)."""
    started: dict[str, Any] = {}
    for plan in d.plans.all():
        if plan.drill.schedule != "monthly":
            continue
        try:
            started[plan.workload] = request_drill(
                plan.workload,
                DrillBody(scenario=None, live=False, confirm=None, reason="monthly scheduled drill"),
                "lifeboat (schedule)",
                d,
                local=local,
            ).model_dump(mode="json")
        except DrillRefused as exc:  # e.g. no drill target in an account: say so, keep going
            started[plan.workload] = {"refused": str(exc)}
            d.ledger.record(plan.workload, "drill", "refused", f"scheduled drill refused: {exc}")
    return {"drills": started}


def run_drill(
    request: DrillRequest,
    d: Deps,
    injector: FaultInjector | None = None,
    **kwargs: Any,
) -> DrillRecord:
    """Convenience: build a runner and run it."""
    return DrillRunner(request, d, injector, **kwargs).run()
