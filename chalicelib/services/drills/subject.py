"""Which plan a drill breaks: in the local cloud the plan itself (a sandbox); in an AWS account its drill
target (a drill copy of the workload), or - only live and confirmed with the workload's name - production."""

from __future__ import annotations

import uuid
from datetime import datetime

from chalicelib.adapters.plan_store import UnknownWorkload
from chalicelib.models.drill import DrillMode, DrillRequest
from chalicelib.models.plan import DRPlan
from chalicelib.services.deps import Deps
from chalicelib.services.drills.errors import DrillRefused
from chalicelib.settings import get_settings

ON_PRIMARY = {"primary": 100, "secondary": 0}
ON_SECONDARY = {"primary": 0, "secondary": 100}


def in_local_cloud() -> bool:
    """The local cloud sets an endpoint override; AWS never does (settings say so)."""
    return get_settings().endpoint_url is not None


def new_drill_id(now: datetime) -> str:
    return f"drill-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:4]}"


def resolve_subject(plan: DRPlan, request: DrillRequest, d: Deps, *, local: bool) -> tuple[DRPlan, DrillMode]:
    """Which plan the drill breaks: never production traffic in an account unless live and confirmed."""
    if local:
        return plan, "local"
    if request.live:
        if request.confirm != plan.workload:
            raise DrillRefused(
                f"a live drill breaks the production traffic of {plan.workload}: confirm with the workload "
                f"name (--confirm {plan.workload}); nothing was started"
            )
        return plan, "live"
    if plan.drill.target is None:
        raise DrillRefused(
            f"{plan.workload} names no drill target (drill.target in its plan), so a drill in this account "
            f"would break production: add a drill copy of the workload, or run --live --confirm "
            f"{plan.workload}; nothing was started"
        )
    try:
        target = d.plans.get(plan.drill.target)
    except UnknownWorkload:
        raise DrillRefused(
            f"drill target {plan.drill.target!r} of {plan.workload} is not a deployed plan"
        ) from None
    shared = _shared_production(plan, target)
    if shared:
        raise DrillRefused(f"drill target {target.workload} shares {shared} with production; refusing")
    return target, "drill-target"


def _shared_production(plan: DRPlan, target: DRPlan) -> str | None:
    if getattr(plan.traffic, "record_name", None) and getattr(plan.traffic, "record_name", None) == getattr(
        target.traffic, "record_name", None
    ):
        return f"the traffic record {plan.traffic.record_name}"  # type: ignore[union-attr]
    if set(plan.trigger.alarms) & set(target.trigger.alarms):
        return "trigger alarms"
    for role in ("primary", "secondary"):
        if plan.endpoint_for(role) == target.endpoint_for(role):  # type: ignore[arg-type]
            return f"the {role} endpoint"
    return None
