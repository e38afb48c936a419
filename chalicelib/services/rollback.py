"""Model rollback: an endpoint back to a named or the previous approved registry version (or, restoring the
primary before a failback, the newest approved one), gated by the plan's smoke tests.

Steps, shared by every entry point: `resolve` (what the endpoint serves, the registry's versions, the
decision in domain/rollback.py), `deploy`, `settle` (a SageMaker endpoint updates for minutes), `smoke`
(failing: `revert` to what was served before, then `settle` again), `publish` (evidence, ledger, metrics).
`lifeboat rollback` runs them in this process (`rollback`); the API starts the rollback state machine
(`request_rollback`), whose tasks are the `task_*` functions and whose waits are Wait states over data.

A rollback (not a dry run) holds the workload lock from before it reads the endpoint until it is recorded,
as a failover or failback does: none of them starts while another runs, and a drill neither. Each step renews
the lease for the wait it is about to start (domain.leases), so a run that dies frees the workload within
minutes even when nothing releases its lock (the janitor does, for a stopped or timed-out execution).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from chalicelib.adapters.locks import LockHeld
from chalicelib.clock import parse_timestamp
from chalicelib.domain import leases
from chalicelib.domain.rollback import (
    RollbackRefusal,
    choose_target,
    deployed_version,
    poll_interval,
    resource_name,
)
from chalicelib.models.api import execution_links
from chalicelib.models.plan import DRPlan, HttpEndpoint, ModelRegistryAsset, SageMakerEndpoint
from chalicelib.models.restore import stamp
from chalicelib.models.rollback import (
    Role,
    RollbackBody,
    RollbackProgress,
    RollbackReport,
    RollbackRequest,
    RollbackScope,
    RollbackTaskInput,
)
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.services.workload_lock import OperationConflict, conflict, start_claimed

EVIDENCE_PREFIX = "rollback/"
CLI_HOLDER = "cli:"
"""The lock holder of a rollback run by `lifeboat rollback` in the operator's process: `cli:<run id>`."""
DRILL_CONTROL = "drill"  # services.drills.control.CONTROL_KEY (not imported: it pulls in the fault injector)
MAX_POLLS = 120  # 30 s apart at most: an hour for a SageMaker endpoint to take the new config

Sleep = Callable[[float], None]


class RollbackRefused(OperationConflict):
    """The rollback cannot run as asked (no registry, no earlier approved version, a version not approved or
    already deployed...): the API answers 409, the CLI exits 1."""

    def __init__(self, workload: str, message: str) -> None:
        super().__init__(workload, "rollback", None, message)


class RollbackRefusalRecord(BaseModel):
    """A rollback refused before it changed anything (the state machine's outcome)."""

    workload: str
    verdict: str = "refused"
    error: str


def role_of(plan: DRPlan, region: str) -> Role:
    """primary / secondary, or the plan's region of that name."""
    if region in ("primary", "secondary"):
        return region  # type: ignore[return-value]
    for role in ("primary", "secondary"):
        if plan.region_of(role) == region:  # type: ignore[arg-type]
            return role  # type: ignore[return-value]
    raise RollbackRefused(
        plan.workload,
        f"{region} is not a region of {plan.workload} ({plan.regions.primary}, {plan.regions.secondary})",
    )


def registry_of(plan: DRPlan) -> ModelRegistryAsset:
    found = [a for a in plan.assets if isinstance(a, ModelRegistryAsset)]
    if not found:
        raise RollbackRefused(
            plan.workload, f"{plan.workload} names no model-registry asset to roll back from"
        )
    return found[0]


def _endpoint_name(plan: DRPlan, role: Role) -> str:
    endpoint = plan.endpoint_for(role)
    if isinstance(endpoint, SageMakerEndpoint):
        return f"SageMaker endpoint {endpoint.endpoint_name}" + (
            f" (variant {endpoint.variant_name})" if endpoint.variant_name else ""
        )
    return str(endpoint.url)


# -- the workload lock ------------------------------------------------------------------------------------
def hold(workload: str, holder: str, d: Deps, wait_seconds: float = 0) -> None:
    """Take or renew the workload lock for `holder` (re-entrant): for the wait it is about to start and the
    steps after it (domain.leases). LockHeld when another operation holds it."""
    d.locks.acquire(workload, holder, "rollback", leases.lease(timedelta(seconds=wait_seconds)))


def refuse_during_drill(workload: str, d: Deps) -> None:
    """A drill runs a failover and then a failback of the workload, holding the lock only while each runs:
    a rollback in between would change the model the drill measures. Refused while its lease is alive."""
    control = d.ledger.get_control(workload, DRILL_CONTROL)
    if not control or control.get("status") != "running":
        return
    try:
        alive = parse_timestamp(str(control.get("lease_until"))) > d.clock()
    except ValueError:
        alive = True
    if alive:
        raise OperationConflict(
            workload,
            "drill",
            None,
            f"drill {control.get('drill_id')} is running on {workload} (phase {control.get('phase')}): "
            "a rollback would change the model it measures; wait for it to end",
        )


@contextmanager
def _locked(workload: str, holder: str, d: Deps) -> Iterator[None]:
    """The lock for a rollback in this process, released however the run ends; 409-style OperationConflict
    naming the holder when another operation has it."""
    try:
        hold(workload, holder, d)
    except LockHeld as held:
        raise conflict(held.info, d) from None
    try:
        yield
    finally:
        d.locks.release(workload, holder)


def _run_id(role: str, d: Deps) -> str:
    return f"rollback-{role}-{stamp(d.clock())}-{uuid.uuid4().hex[:6]}"


# -- the decision -----------------------------------------------------------------------------------------
def resolve(request: RollbackRequest, d: Deps, *, run_id: str | None = None) -> RollbackScope:
    """The request checked against the plan, the endpoint and the registry: what changes, or refused."""
    w = request.workload
    plan = d.plans.get(w)
    asset = registry_of(plan)
    role = request.role
    region = plan.region_of(role)
    endpoint = plan.endpoint_for(role)
    described = f"the {role} endpoint"
    current = d.deployer.current(endpoint, region, plan.smoke_tests.request_timeout.total_seconds())
    versions = d.registry.versions(plan, asset, region)
    models = sorted({v.model for v in versions if v.model})
    if len(models) > 1:  # several manifests: the one naming what the endpoint serves
        now = deployed_version(versions, current)
        if now is None:
            raise RollbackRefused(
                w,
                f"the registry holds several models ({', '.join(models)}); {described} serves none of them",
            )
        versions = [v for v in versions if v.model == now.model]
    try:
        now, target = choose_target(
            versions, current, to_version=request.to_version, latest=request.latest, endpoint=described
        )
    except RollbackRefusal as exc:
        raise RollbackRefused(w, f"{asset.name}: {exc}") from None
    started = d.clock()
    config_before = config_after = model_after = None
    if isinstance(endpoint, SageMakerEndpoint):
        if current.endpoint_config is None:
            raise RollbackRefused(w, f"cannot read {described} ({current.error or 'no endpoint config'})")
        if target.package is None and target.artifact is None:
            raise RollbackRefused(w, f"version {target.version} names neither a model package nor model data")
        config_before = current.endpoint_config
        config_after = model_after = resource_name(endpoint.endpoint_name, target.version, started)
    elif target.artifact is None:
        raise RollbackRefused(w, f"version {target.version} names no artifact to load")
    return RollbackScope(
        workload=w,
        run_id=run_id or _run_id(role, d),
        role=role,
        region=region,
        endpoint=_endpoint_name(plan, role),
        registry=f"{asset.name} ({asset.registry}, {region})",
        current=current,
        current_version=now.version if now else current.version,
        target=target,
        config_before=config_before,
        config_after=config_after,
        model_after=model_after,
        dry_run=request.dry_run,
        requested_by=request.requested_by,
        reason=request.reason,
        started_at=started,
    )


# -- the steps --------------------------------------------------------------------------------------------
def deploy(scope: RollbackScope, d: Deps) -> RollbackProgress:
    """Start serving the target version; settled at once for an http model server."""
    plan = d.plans.get(scope.workload)
    endpoint = plan.endpoint_for(scope.role)
    target = scope.target
    if isinstance(endpoint, HttpEndpoint):
        served = d.deployer.deploy_http(endpoint, target.artifact or "", target.sha256)
        if target.sha256 and served.sha256 != target.sha256:
            raise RuntimeError(f"{scope.endpoint} serves sha256 {served.sha256}, not {target.sha256}")
        return RollbackProgress(phase="deploy", deployed=True, settled=True)
    d.deployer.deploy_sagemaker(
        endpoint,
        scope.region,
        scope.current,
        model_name=scope.model_after or "",
        config_name=scope.config_after or "",
        package_arn=target.package,
        artifact=target.artifact,
    )
    logger.info(
        "rollback deployed", workload=scope.workload, config=scope.config_after, version=target.version
    )
    return settle(scope, RollbackProgress(phase="deploy", deployed=True), d)


def settle(scope: RollbackScope, progress: RollbackProgress, d: Deps) -> RollbackProgress:
    """Look at a SageMaker endpoint once: updated to the config this phase wants (settled), still updating
    (wait `wait_seconds`), or the update failed (SageMaker serves the old config again)."""
    plan = d.plans.get(scope.workload)
    endpoint = plan.endpoint_for(scope.role)
    if not isinstance(endpoint, SageMakerEndpoint) or progress.settled:
        return progress.model_copy(update={"settled": True, "wait_seconds": 0})
    wanted = scope.config_after if progress.phase == "deploy" else scope.config_before
    status, config, failure = d.deployer.endpoint_state(endpoint, scope.region)
    if status == "InService" and config == wanted:
        return progress.model_copy(update={"settled": True, "wait_seconds": 0})
    if status in ("Updating", "SystemUpdating", "Creating") and progress.polls < MAX_POLLS:
        return progress.model_copy(
            update={"wait_seconds": poll_interval(progress.polls), "polls": progress.polls + 1}
        )
    raise RuntimeError(
        f"{scope.endpoint} did not take endpoint config {wanted}: {status} with {config}"
        + (f" ({failure})" if failure else "")
    )


def smoke(scope: RollbackScope, progress: RollbackProgress, d: Deps) -> RollbackProgress:
    """The plan's smoke tests against the endpoint: passing ends the rollback, failing reverts it."""
    from chalicelib.services.smoke import run_smoke

    plan = d.plans.get(scope.workload)
    result = run_smoke(plan, scope.role, d, phase="rollback")
    update: dict[str, Any] = {"smoke_passed": result.passed, "smoke_reason": result.reason}
    update["phase"] = "done" if result.passed else "revert"
    return progress.model_copy(update=update)


def revert(scope: RollbackScope, progress: RollbackProgress, d: Deps) -> RollbackProgress:
    """Back to what the endpoint served before the rollback."""
    plan = d.plans.get(scope.workload)
    endpoint = plan.endpoint_for(scope.role)
    out = progress.model_copy(update={"phase": "revert", "settled": False, "polls": 0, "wait_seconds": 0})
    if isinstance(endpoint, HttpEndpoint):
        before = scope.current
        artifact = before.artifact or _artifact_of(scope, d)
        if artifact is None:
            raise RuntimeError(f"{scope.endpoint} did not say which artifact it served before: cannot revert")
        d.deployer.deploy_http(endpoint, artifact, before.sha256)
        return out.model_copy(update={"settled": True, "reverted": True})
    d.deployer.switch_config(endpoint, scope.region, scope.config_before or "")
    return settle(scope, out.model_copy(update={"reverted": True}), d)


def _artifact_of(scope: RollbackScope, d: Deps) -> str | None:
    plan = d.plans.get(scope.workload)
    versions = d.registry.versions(plan, registry_of(plan), scope.region)
    now = deployed_version(versions, scope.current)
    return now.artifact if now else None


# -- the report -------------------------------------------------------------------------------------------
def report_of(
    scope: RollbackScope, progress: RollbackProgress, now: datetime, error: str | None = None
) -> RollbackReport:
    if scope.dry_run:
        verdict = "failed" if error else "planned"
    else:
        ok = error is None and progress.smoke_passed is True and not progress.reverted
        verdict = "rolled-back" if ok else "failed"
    reason = error or progress.error
    if reason is None and progress.smoke_passed is False:
        reason = f"smoke tests failed on version {scope.target.version}: {progress.smoke_reason}; " + (
            f"{scope.current_version or 'the previous model'} restored"
            if progress.reverted
            else "not reverted"
        )
    return RollbackReport(
        workload=scope.workload,
        run_id=scope.run_id,
        verdict=verdict,  # type: ignore[arg-type]
        role=scope.role,
        region=scope.region,
        endpoint=scope.endpoint,
        registry=scope.registry,
        dry_run=scope.dry_run,
        from_version=scope.current_version,
        to_version=scope.target.version,
        from_sha256=scope.current.sha256,
        to_sha256=scope.target.sha256,
        to_artifact=scope.target.artifact,
        to_package=scope.target.package,
        config_before=scope.config_before,
        config_after=scope.config_after,
        smoke_passed=progress.smoke_passed,
        smoke_reason=progress.smoke_reason,
        reverted=progress.reverted,
        started_at=scope.started_at,
        finished_at=now,
        duration_seconds=round((now - scope.started_at).total_seconds(), 3),
        requested_by=scope.requested_by,
        reason=scope.reason,
        error=reason,
    )


def publish(report: RollbackReport, d: Deps, *, execution: str | None = None) -> RollbackReport:
    """A real rollback's evidence (JSON report), ledger entry and metrics; a dry run writes nothing."""
    if report.dry_run:
        return report
    key = f"{EVIDENCE_PREFIX}{report.workload}/{report.run_id}.json"
    report = report.model_copy(update={"evidence": d.evidence.uri(key)})
    d.evidence.put_json(key, report.model_dump(mode="json"))
    what = f"{report.role} endpoint rolled back from {report.from_version} to {report.to_version}"
    if report.verdict != "rolled-back":
        what = f"rollback of the {report.role} endpoint to {report.to_version} failed: {report.error}"
    detail = {
        "role": report.role,
        "region": report.region,
        "from_version": report.from_version,
        "to_version": report.to_version,
        "config_before": report.config_before,
        "config_after": report.config_after,
        "smoke_passed": report.smoke_passed,
        "reverted": report.reverted,
        "evidence": report.evidence,
    }
    d.ledger.record(
        report.workload,
        "rollback",
        report.verdict,
        what,
        actor=report.requested_by,
        execution=execution,
        detail=detail,
    )
    emit("ModelRollbacks", 1 if report.verdict == "rolled-back" else 0, workload=report.workload)
    emit("ModelRollbackFailures", 0 if report.verdict == "rolled-back" else 1, workload=report.workload)
    logger.info("rollback reported", workload=report.workload, verdict=report.verdict, to=report.to_version)
    return report


# -- in this process: `lifeboat rollback` -----------------------------------------------------------------
def rollback(request: RollbackRequest, d: Deps, *, sleep: Sleep = time.sleep) -> RollbackReport:
    """A whole rollback (or dry run) in this process; RollbackRefused before anything changes, and
    OperationConflict (naming the holder) while another operation holds the workload lock or a drill runs.
    A dry run takes no lock: it changes nothing."""
    if request.dry_run:
        return report_of(resolve(request, d), RollbackProgress(), d.clock())
    d.plans.get(request.workload)  # an unknown workload is refused before any lock is taken
    refuse_during_drill(request.workload, d)
    run_id = _run_id(request.role, d)
    holder = f"{CLI_HOLDER}{run_id}"
    with _locked(request.workload, holder, d):
        return _rollback(resolve(request, d, run_id=run_id), holder, d, sleep)


def _rollback(scope: RollbackScope, holder: str, d: Deps, sleep: Sleep) -> RollbackReport:
    progress = RollbackProgress()
    error = None
    try:
        progress = _until_settled(scope, deploy(scope, d), d, sleep, holder)
        hold(scope.workload, holder, d)
        progress = smoke(scope, progress, d)
        if progress.phase == "revert":
            hold(scope.workload, holder, d)
            progress = _until_settled(scope, revert(scope, progress, d), d, sleep, holder)
    except Exception as exc:  # recorded as a failed rollback, then the endpoint is put back when it moved
        error = f"{type(exc).__name__}: {exc}"
        if progress.deployed and not progress.reverted:
            try:
                progress = _until_settled(scope, revert(scope, progress, d), d, sleep, holder)
            except Exception as again:  # noqa: BLE001 - both reasons are reported
                error += f"; reverting failed too: {type(again).__name__}: {again}"
    return publish(report_of(scope, progress, d.clock(), error), d)


def _until_settled(
    scope: RollbackScope, progress: RollbackProgress, d: Deps, sleep: Sleep, holder: str
) -> RollbackProgress:
    while not progress.settled:
        hold(scope.workload, holder, d, progress.wait_seconds)
        sleep(progress.wait_seconds)
        progress = settle(scope, progress, d)
    return progress


# -- the state machine's tasks ----------------------------------------------------------------------------
def task_plan(request: RollbackRequest, run_id: str, d: Deps) -> RollbackScope:
    return resolve(request, d, run_id=run_id)


def _scope(inp: RollbackTaskInput) -> RollbackScope:
    if inp.scope is None:
        raise ValueError("a rollback step needs the checked scope")
    return inp.scope


def _renewing(
    inp: RollbackTaskInput, d: Deps, step: Callable[[RollbackScope], RollbackProgress]
) -> RollbackProgress:
    """A step under the execution's lock: renewed before it acts (LockHeld if the lease lapsed and another
    operation took the workload: the step fails into RecordRollback), and again for the wait it asks for."""
    scope = _scope(inp)
    if inp.execution is None or scope.dry_run:
        return step(scope)
    hold(scope.workload, inp.execution, d)
    progress = step(scope)
    if progress.wait_seconds > 0:
        hold(scope.workload, inp.execution, d, progress.wait_seconds)
    return progress


def task_deploy(inp: RollbackTaskInput, d: Deps) -> RollbackProgress:
    return _renewing(inp, d, lambda scope: deploy(scope, d))


def task_settle(inp: RollbackTaskInput, d: Deps) -> RollbackProgress:
    return _renewing(inp, d, lambda scope: settle(scope, inp.progress, d))


def task_smoke(inp: RollbackTaskInput, d: Deps) -> RollbackProgress:
    return _renewing(inp, d, lambda scope: smoke(scope, inp.progress, d))


def task_revert(inp: RollbackTaskInput, d: Deps) -> RollbackProgress:
    return _renewing(inp, d, lambda scope: revert(scope, inp.progress, d))


def task_record(
    inp: RollbackTaskInput, execution: str | None, d: Deps
) -> RollbackReport | RollbackRefusalRecord:
    """The run's outcome: its report (published), or the refusal recorded when it never got a scope. A run
    that failed after deploying and was not reverted is reverted here first (best effort, reported)."""
    cause = _cause(inp.error)
    if inp.scope is None:
        request = inp.request
        workload = request.workload if request else "unknown"
        refusal = RollbackRefusalRecord(workload=workload, error=cause or "the rollback was not planned")
        if request is not None:
            d.ledger.record(
                workload,
                "rollback",
                "refused",
                f"rollback of the {request.role} endpoint refused: {refusal.error}",
                actor=request.requested_by,
                execution=execution,
                detail={"role": request.role, "to_version": request.to_version, "latest": request.latest},
            )
        return refusal
    progress = inp.progress
    if cause is not None and progress.deployed and not progress.reverted and not inp.scope.dry_run:
        try:
            progress = revert(inp.scope, progress, d)  # not waited for: SageMaker finishes it
        except Exception as exc:  # noqa: BLE001 - reported
            cause += f"; reverting failed too: {type(exc).__name__}: {exc}"
    return publish(report_of(inp.scope, progress, d.clock(), cause), d, execution=execution)


def _cause(error: dict[str, Any] | None) -> str | None:
    if not error:
        return None
    return f"{error.get('Error', 'Error')}: {str(error.get('Cause', ''))[:1000]}"


# -- the API ----------------------------------------------------------------------------------------------
def request_of(body: RollbackBody, workload: str, actor: str, d: Deps) -> RollbackRequest:
    """The API body as a request: its region (a role or one of the plan's region names) as a role."""
    plan = d.plans.get(workload)
    return RollbackRequest(
        workload=workload,
        role=role_of(plan, body.region),
        to_version=body.to_version,
        latest=body.latest,
        dry_run=body.dry_run,
        reason=body.reason,
        requested_by=actor,
    )


def request_rollback(request: RollbackRequest, d: Deps) -> Any:
    """Start the rollback state machine (the API): the plan checked first (409 with the reason); one rollback
    of a workload at a time, and none while a failover, failback or drill runs: the workload lock is claimed
    for the execution before it starts (409 naming the holder), as an operator failover claims it. A dry run
    takes no lock. The registry and the endpoint are read by the machine's first task."""
    from chalicelib.services.console import OperationStarted, _deployed

    plan = d.plans.get(request.workload)
    registry_of(plan)
    if not request.dry_run:
        refuse_during_drill(request.workload, d)
    try:
        running = d.executions.running(request.workload, "rollback")
    except LookupError:
        running = []
    if running:
        arn = str(running[0]["executionArn"])
        raise OperationConflict(
            request.workload, "rollback", arn, f"a rollback of {request.workload} is running"
        )
    run_id = _run_id(request.role, d)
    payload = request.model_dump(mode="json")
    with _deployed("rollback", request.workload):
        if request.dry_run:
            arn, started_now = d.executions.start(request.workload, "rollback", run_id, payload)
        else:
            arn, started_now = start_claimed(request.workload, "rollback", run_id, payload, d)
    target = request.to_version or (
        "the newest approved version" if request.latest else "the previous approved version"
    )
    why = request.reason or f"rollback of the {request.role} endpoint to {target} requested"
    outcome = "rollback-dry-run-requested" if request.dry_run else "rollback-requested"
    d.ledger.record(request.workload, "operator", outcome, why, actor=request.requested_by, execution=arn)
    return OperationStarted(
        workload=request.workload,
        operation="rollback",
        execution=execution_links(arn),
        requested_by=request.requested_by,
        started_now=started_now,
    )
