"""A workload's DR status, read live: traffic, endpoint health, objectives, last transitions, executions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.smoke import SmokeVerdict
from chalicelib.models.durations import format_duration
from chalicelib.models.ledger import LedgerEntry, WorkloadState
from chalicelib.models.plan import DRPlan
from chalicelib.services.deps import Deps
from chalicelib.services.smoke import run_smoke
from chalicelib.services.workload_lock import HeldLock, lock_view


class EndpointHealth(BaseModel):
    role: str
    region: str
    endpoint: str = Field(description="URL or SageMaker endpoint/variant.")
    weight: int | None = Field(None, description="Share of traffic it receives now.")
    smoke: SmokeVerdict | None = Field(None, description="Smoke test run for this status (when probed).")


class WorkloadStatus(BaseModel):
    workload: str
    tier: str
    objectives: dict[str, str] = Field(description="rpo and rto, as durations.")
    active_region: str | None = Field(description="Region taking all traffic (None while split or unknown).")
    traffic_error: str | None = Field(None, description="Why traffic could not be read, if it could not.")
    endpoints: list[EndpointHealth]
    state: WorkloadState
    running: list[dict[str, Any]] = Field(default_factory=list, description="Running executions.")
    lock: HeldLock | None = Field(
        None, description="The operation holding the workload's lock, if any, and whether it is stale."
    )
    recent: list[LedgerEntry] = Field(default_factory=list, description="Latest ledger entries.")
    assessment: str | None = Field(
        None, description="One line on the last resilience assessment (when asked for and there is one)."
    )
    at: datetime


def _describe(endpoint: Any) -> str:
    if getattr(endpoint, "url", None):
        return str(endpoint.url)
    variant = getattr(endpoint, "variant_name", None)
    return f"sagemaker:{endpoint.endpoint_name}" + (f"/{variant}" if variant else "")


def workload_status(
    plan: DRPlan, d: Deps, *, probe: bool = True, recent: int = 5, assessment: bool = False
) -> WorkloadStatus:
    weights: dict[str, int] = {}
    traffic_error = None
    active = None
    try:
        traffic = d.router.read(plan)
        weights, active = traffic.weights, traffic.active_region
    except Exception as exc:  # status must still show everything else
        traffic_error = f"{type(exc).__name__}: {exc}"
    endpoints = []
    for role in ("primary", "secondary"):
        endpoints.append(
            EndpointHealth(
                role=role,
                region=plan.region_of(role),  # type: ignore[arg-type]
                endpoint=_describe(plan.endpoint_for(role)),  # type: ignore[arg-type]
                weight=weights.get(role),
                smoke=run_smoke(plan, role, d, phase="status", record=False) if probe else None,  # type: ignore[arg-type]
            )
        )
    running: list[dict[str, Any]] = []
    for kind in ("failover", "failback"):
        try:
            running += [
                {"kind": kind, "arn": e["executionArn"], "name": e["name"], "started": str(e["startDate"])}
                for e in d.executions.running(plan.workload, kind)
            ]
        except LookupError:
            continue  # that state machine is not deployed (yet)
    return WorkloadStatus(
        workload=plan.workload,
        tier=plan.tier,
        objectives={"rpo": format_duration(plan.rpo), "rto": format_duration(plan.rto)},
        active_region=active,
        traffic_error=traffic_error,
        endpoints=endpoints,
        state=d.ledger.get_state(plan.workload),
        running=running,
        lock=lock_view(plan.workload, d),
        recent=d.ledger.entries(plan.workload, limit=recent),
        assessment=_last_assessment(plan, d) if assessment else None,
        at=d.clock(),
    )


def _last_assessment(plan: DRPlan, d: Deps) -> str | None:
    from chalicelib.services.assessment import last_summary

    return last_summary(plan.workload, d)
