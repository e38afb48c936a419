"""Use cases behind the on-demand console API (and the CLI): plans, status, operator-started operations, the
ledger. One function per route; each returns a model, or raises a named exception the API maps to 4xx."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.adapters.plan_store import UnknownWorkload
from chalicelib.domain.objectives import rpo_exposure
from chalicelib.domain.preconditions import failback_needed, failover_needed
from chalicelib.models.api import ExecutionRef, FailoverBody, execution_links
from chalicelib.models.drill import DrillBody, DrillList, DrillRecord, DrillStarted
from chalicelib.models.durations import format_duration
from chalicelib.models.failback import ControlOutcome
from chalicelib.models.ledger import EntryKind, LedgerEntry
from chalicelib.models.plan import DRPlan
from chalicelib.models.replication import AssetReplicationState
from chalicelib.services import drills as drill_service
from chalicelib.services import failback_ops, operations
from chalicelib.services.deps import Deps
from chalicelib.services.executions import resolve_execution, split_machine_name
from chalicelib.services.operations import FailoverPlanPreview
from chalicelib.services.status import WorkloadStatus, workload_status
from chalicelib.services.unavailable import FeatureUnavailable
from chalicelib.services.workload_lock import OperationConflict, Unlocked, conflict
from chalicelib.services.workload_lock import unlock as unlock_workload

DRILL_ID = re.compile(r"^drill-\d{8}T\d{6}Z-[0-9a-f]{4}$")
CONFLICTING_KINDS = ("failover", "failback")
"""State machines whose running executions block a new operator-started failover or failback."""


# -- plans -----------------------------------------------------------------------------------------------
class PlanSummary(BaseModel):
    workload: str
    tier: str
    description: str | None
    regions: dict[str, str] = Field(description="primary and secondary region.")
    objectives: dict[str, str] = Field(description="Effective rpo and rto (the tier's when left out).")
    traffic: str = Field(
        description="How traffic moves: route53-weighted, route53-failover, sagemaker-variants."
    )
    assets: list[str] = Field(description="Asset names.")


class PlanList(BaseModel):
    plans: list[PlanSummary]


class PlanDetail(BaseModel):
    workload: str
    objectives: dict[str, str] = Field(description="Effective rpo and rto.")
    asset_rpo: dict[str, str] = Field(description="Effective RPO of each asset.")
    plan: dict[str, Any] = Field(description="The plan as stored (JSON form of the YAML).")


def _summary(plan: DRPlan) -> PlanSummary:
    return PlanSummary(
        workload=plan.workload,
        tier=plan.tier,
        description=plan.description,
        regions={"primary": plan.regions.primary, "secondary": plan.regions.secondary},
        objectives={"rpo": format_duration(plan.rpo), "rto": format_duration(plan.rto)},
        traffic=plan.traffic.kind,
        assets=[a.name for a in plan.assets],
    )


def list_plans(d: Deps) -> PlanList:
    return PlanList(plans=[_summary(p) for p in sorted(d.plans.all(), key=lambda p: p.workload)])


def show_plan(workload: str, d: Deps) -> PlanDetail:
    plan = d.plans.get(workload)
    return PlanDetail(
        workload=plan.workload,
        objectives={"rpo": format_duration(plan.rpo), "rto": format_duration(plan.rto)},
        asset_rpo={a.name: format_duration(plan.asset_rpo(a)) for a in plan.assets},
        plan=plan.model_dump(mode="json", exclude_unset=True),
    )


# -- status ----------------------------------------------------------------------------------------------
class AssetRpo(BaseModel):
    asset: str
    kind: str
    objective: str = Field(description="The RPO the asset is held to.")
    measured_seconds: float | None = Field(None, description="Last measured RPO (None: never measured).")
    measured_at: datetime | None = None
    met: bool | None = Field(None, description="measured <= objective (None when never measured).")
    source: str | None = Field(None, description="What measured it: verification or replication-event.")
    pending_objects: int = Field(0, description="Changes known not to be in the replica yet.")
    exposure_seconds: float = Field(0.0, description="Age of the oldest of those, now (0 when none).")
    last_verification: dict[str, Any] = Field(default_factory=dict, description="run_id, verdict, at.")


class LastOperation(BaseModel):
    kind: str
    outcome: str
    at: datetime
    reason: str
    actor: str
    execution: str | None
    measured_seconds: float | None = Field(None, description="RTO of a failover; duration of a failback.")


class ConsoleStatus(WorkloadStatus):
    assets: list[AssetRpo] = Field(description="RPO objective and last measurement per asset.")
    assets_error: str | None = Field(None, description="Why asset replication state could not be read.")
    last_failover: LastOperation | None = None
    last_failback: LastOperation | None = None


class StatusList(BaseModel):
    workloads: list[ConsoleStatus]


def _asset_rpo(plan: DRPlan, states: dict[str, AssetReplicationState], now: datetime) -> list[AssetRpo]:
    out = []
    for asset in plan.assets:
        objective = plan.asset_rpo(asset).total_seconds()
        state = states.get(asset.name)
        measured = state.measured_rpo_seconds if state else None
        out.append(
            AssetRpo(
                asset=asset.name,
                kind=asset.kind,
                objective=format_duration(plan.asset_rpo(asset)),
                measured_seconds=measured,
                measured_at=state.measured_at if state else None,
                met=None if measured is None else measured <= objective,
                source=state.measured_by if state else None,
                pending_objects=len(state.pending) if state else 0,
                exposure_seconds=rpo_exposure(state.oldest_pending() if state else None, now).total_seconds(),
                last_verification=state.last_verification if state else {},
            )
        )
    return out


def _last(entries: list[LedgerEntry], measured: float | None) -> LastOperation | None:
    if not entries:
        return None
    e = entries[0]
    value = measured if e.outcome == "completed" else None
    return LastOperation(
        kind=e.kind,
        outcome=e.outcome,
        at=e.at,
        reason=e.reason,
        actor=e.actor,
        execution=e.execution,
        measured_seconds=value,
    )


def console_status(plan: DRPlan, d: Deps, *, probe: bool = False) -> ConsoleStatus:
    base = workload_status(plan, d, probe=probe)
    asset_error = None
    try:  # kept per asset by replication events and verification runs
        states = {s.asset: s for s in d.asset_states.all(plan.workload)}
    except Exception as exc:  # status must still show everything else
        states, asset_error = {}, f"{type(exc).__name__}: {exc}"
    state = base.state
    return ConsoleStatus(
        **dict(base),
        assets=_asset_rpo(plan, states, d.clock()),
        assets_error=asset_error,
        last_failover=_last(
            d.ledger.entries(plan.workload, limit=1, kind="failover"), state.last_rto_seconds
        ),
        last_failback=_last(
            d.ledger.entries(plan.workload, limit=1, kind="failback"),
            getattr(state, "last_failback_seconds", None),
        ),
    )


def status_of(workload: str, d: Deps, *, probe: bool = False) -> ConsoleStatus:
    return console_status(d.plans.get(workload), d, probe=probe)


def status_all(d: Deps, *, probe: bool = False) -> StatusList:
    plans = sorted(d.plans.all(), key=lambda p: p.workload)
    return StatusList(workloads=[console_status(p, d, probe=probe) for p in plans])


# -- operations ------------------------------------------------------------------------------------------
def ensure_idle(workload: str, d: Deps) -> None:
    """Refuse (409) while another failover/failback runs or holds the lock: one operation per workload.

    A cheap early answer; the claim taken when the execution starts (`workload_lock.start_claimed`) is what
    decides between simultaneous requests.
    """
    lock = d.locks.current(workload)
    if lock is not None:
        raise conflict(lock, d)
    for kind in CONFLICTING_KINDS:
        try:
            running = d.executions.running(workload, kind)
        except LookupError:
            continue  # that state machine is not deployed
        if running:
            arn = str(running[0]["executionArn"])
            raise OperationConflict(
                workload, kind, arn, f"a {kind} of {workload} is running ({arn.rsplit(':', 1)[-1]})"
            )


@contextmanager
def _deployed(kind: str, workload: str) -> Iterator[None]:
    """A state machine missing from this deployment is a 501 that says so, not an anonymous 500."""
    try:
        yield
    except UnknownWorkload:
        raise
    except LookupError as exc:
        raise FeatureUnavailable(kind, f"cannot start a {kind} of {workload}: {exc}") from exc


class OperationStarted(BaseModel):
    workload: str
    operation: str
    execution: dict[str, str] = Field(description="id (for /executions/{id}), arn and name.")
    requested_by: str = Field(description="Your IAM identity, as recorded in the ledger.")
    started_now: bool = Field(True, description="False when an execution with that name already existed.")


class NothingToDo(BaseModel):
    """A request that found its work already done: nothing started, nothing changed (no new RTO)."""

    workload: str
    operation: str
    reason: str = Field(description="Why there is nothing to do, e.g. already serving from us-west-2.")
    traffic: dict[str, int] | None = Field(
        default=None, description="The traffic weights read back just now."
    )
    requested_by: str = Field(description="Your IAM identity, as recorded in the ledger.")


def _started(
    workload: str, operation: str, arn: str, actor: str, started_now: bool = True
) -> OperationStarted:
    return OperationStarted(
        workload=workload,
        operation=operation,
        execution=execution_links(arn),
        requested_by=actor,
        started_now=started_now,
    )


def _traffic(plan: DRPlan, d: Deps) -> dict[str, int] | None:
    try:
        return d.router.read(plan).weights
    except Exception:  # unreadable traffic decides nothing here: the execution reads it again
        return None


def request_failover(
    workload: str, body: FailoverBody, actor: str, d: Deps
) -> FailoverPlanPreview | OperationStarted | NothingToDo:
    """A dry run (the exact steps and traffic change, nothing changed), nothing to do (already failed over,
    unless `force`), or a started failover; OperationConflict (409) when another operation is in the way."""
    plan = d.plans.get(workload)
    mode = body.mode or plan.failover.mode
    if body.dry_run:
        return operations.preview_failover(workload, mode, d)
    ensure_idle(workload, d)
    if not body.force:
        traffic = _traffic(plan, d)
        verdict = failover_needed(plan, d.ledger.get_state(workload).active_region, traffic)
        if not verdict.proceed:
            d.ledger.record(
                workload,
                "operator",
                "failover-not-needed",
                verdict.reason,
                actor=actor,
                detail={"traffic": traffic},
            )
            return NothingToDo(
                workload=workload,
                operation="failover",
                reason=verdict.reason,
                traffic=traffic,
                requested_by=actor,
            )
    with _deployed("failover", workload):
        started = operations.start_failover(workload, mode, str(body.reason), actor, d, force=body.force)
    return _started(workload, "failover", started.execution_arn, actor)


def request_failback(workload: str, reason: str, actor: str, d: Deps) -> OperationStarted:
    """A started failback; OperationConflict (409) when another operation is in the way or when there is
    nothing to fail back (all traffic already on the primary)."""
    plan = d.plans.get(workload)
    ensure_idle(workload, d)
    traffic = _traffic(plan, d)
    verdict = failback_needed(plan, d.ledger.get_state(workload).active_region, traffic)
    if not verdict.proceed:
        d.ledger.record(
            workload, "operator", "failback-refused", verdict.reason, actor=actor, detail={"traffic": traffic}
        )
        raise OperationConflict(workload, "failback", None, verdict.reason)
    with _deployed("failback", workload):
        started = failback_ops.start_failback(workload, reason, actor, d, claim=True)
    return _started(workload, "failback", started.execution_arn, actor, started.started_now)


def unlock(workload: str, reason: str, actor: str, d: Deps) -> Unlocked:
    """Remove the workload's lock whoever holds it (an escape hatch for a stale one); caller and reason go
    to the ledger."""
    return unlock_workload(workload, reason, actor, d)


_CONTROLS: dict[str, Callable[..., ControlOutcome]] = {
    "approve": failback_ops.approve,
    "reject": failback_ops.reject,
    "pause": failback_ops.pause,
    "resume": failback_ops.resume,
    "abort": failback_ops.abort,
    "fast-track": failback_ops.fast_track,
}
CONTROL_ACTIONS = tuple(_CONTROLS)


def control_execution(
    action: str, ref: ExecutionRef, reason: str | None, actor: str, d: Deps
) -> ControlOutcome:
    """approve/reject/pause/resume/abort/fast-track a (failback) execution; the failback service decides."""
    desc = resolve_execution(ref, d)  # 404 unless it is one of Lifeboat's executions
    arn = str(desc["executionArn"])
    machine = str(desc.get("stateMachineArn", "")).rsplit(":", 1)[-1]
    workload, kind = split_machine_name(machine, d.executions.prefix, [p.workload for p in d.plans.all()])
    if kind != "failback":
        raise OperationConflict(
            workload or "?",
            kind or "?",
            arn,
            f"{desc.get('name')} is a {kind} execution: only failback executions take {action}",
        )
    return _CONTROLS[action](arn, actor, d, reason or "")


def request_verification(workload: str, reason: str | None, actor: str, d: Deps) -> OperationStarted:
    """Start a backup verification run (the plan's verify state machine) now.

    Read-only, so it may run alongside a failover or failback; but one run per workload at a time (409).
    """
    d.plans.get(workload)
    try:
        running = d.executions.running(workload, "verify")
    except LookupError:
        running = []  # not deployed: the start below says so (501)
    if running:
        arn = str(running[0]["executionArn"])
        raise OperationConflict(
            workload, "verify", arn, f"a verification of {workload} is running ({arn.rsplit(':', 1)[-1]})"
        )
    name = f"operator-{d.clock():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"  # also the run id of the report
    payload = {"workload": workload, "trigger": "operator", "requested_by": actor, "reason": reason}
    with _deployed("verification", workload):
        arn, started_now = d.executions.start(workload, "verify", name, payload)
    why = reason or "backup verification requested"
    d.ledger.record(workload, "operator", "verification-requested", why, actor=actor, execution=arn)
    return _started(workload, "verification", arn, actor, started_now)


def request_drill(workload: str, body: DrillBody, actor: str, d: Deps) -> DrillStarted:
    """Start a drill (asynchronously); a failed pre-condition (no drill target, live unconfirmed) is a 409."""
    try:
        return drill_service.request_drill(workload, body, actor, d)
    except drill_service.DrillRefused as exc:
        raise OperationConflict(workload, "drill", None, str(exc)) from None


def list_drills(d: Deps, *, workload: str | None = None, limit: int = 20) -> DrillList:
    return DrillList(drills=drill_service.list_drills(d, workload=workload, limit=limit))


def show_drill(drill_id: str, d: Deps) -> DrillRecord:
    """One drill's record from the evidence bucket; UnknownWorkload (404) for an unknown or malformed id."""
    if not DRILL_ID.match(drill_id):
        raise UnknownWorkload(f"drill {drill_id[:80]!r}")
    try:
        return drill_service.get_drill(drill_id, d)
    except drill_service.UnknownDrill:
        raise UnknownWorkload(f"drill {drill_id}") from None


# -- ledger ----------------------------------------------------------------------------------------------
class LedgerPage(BaseModel):
    workload: str
    entries: list[LedgerEntry] = Field(description="Newest first.")


def ledger_page(workload: str, d: Deps, *, limit: int = 50, kind: EntryKind | None = None) -> LedgerPage:
    d.plans.get(workload)
    return LedgerPage(workload=workload, entries=d.ledger.entries(workload, limit=limit, kind=kind))
