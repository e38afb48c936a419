"""The on-demand console API (REST, API Gateway + IAM auth): parse, call one use case, answer its model.

Every route but GET /health is behind `IAMAuthorizer()`; mutating routes record the caller's IAM identity
in the ledger. docs/api.md documents the routes; docs/openapi.json is generated from them.
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.blueprints import http
from chalicelib.blueprints.http import (
    caller,
    execution_param,
    parse_body,
    parse_query,
    reply,
    route,
    workload_param,
)

bp = Blueprint(__name__)
bp.register_middleware(http.error_shape, "http")


@bp.route("/health", methods=["GET"])
def health() -> Response:
    """Liveness only: reveals nothing about plans, workloads or AWS (the one anonymous route)."""
    return Response(body={"status": "ok"}, status_code=200, headers=dict(http.JSON_HEADERS))


# -- plans ----------------------------------------------------------------------------------------------
@route(bp, "/plans", "GET", tag="plans", responses={200: "chalicelib.services.console:PlanList"})
def list_plans() -> Response:
    """List the DR plans Lifeboat holds, with their effective objectives."""
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    return reply(console.list_plans(deps()))


@route(
    bp,
    "/plans/{workload}",
    "GET",
    tag="plans",
    responses={200: "chalicelib.services.console:PlanDetail"},
    errors=(404,),
)
def get_plan(workload: str) -> Response:
    """One DR plan as stored, with the effective RPO/RTO of the plan and of each asset."""
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    return reply(console.show_plan(workload_param(workload), deps()))


@route(
    bp,
    "/plans/{workload}/validate",
    "POST",
    tag="plans",
    body="chalicelib.models.api:ValidateBody",
    body_required=False,
    responses={200: "chalicelib.services.validate:ValidationReport"},
    errors=(404,),
)
def validate(workload: str) -> Response:
    """Dry check of a plan against live resources; changes nothing.

    Endpoints answer their smoke tests, buckets are versioned and replicated, alarms, hosted zone and
    records exist, the state machines are deployed, and Lifeboat's role has the IAM permissions the plan
    needs (simulated with iam:SimulatePrincipalPolicy when allowed, else listed). Findings carry a severity.
    """
    from chalicelib.models.api import ValidateBody
    from chalicelib.services.deps import deps
    from chalicelib.services.validate import validate_plan

    body = parse_body(bp, ValidateBody, required=False)
    report = validate_plan(
        workload_param(workload), deps(), probe_endpoints=body.probe_endpoints, simulate_iam=body.simulate_iam
    )
    return reply(report)


# -- status ---------------------------------------------------------------------------------------------
@route(
    bp,
    "/status",
    "GET",
    tag="status",
    query="chalicelib.models.api:StatusQuery",
    responses={200: "chalicelib.services.console:StatusList"},
)
def status_all() -> Response:
    """DR status of every workload (add ?probe=true to smoke-test the endpoints now)."""
    from chalicelib.models.api import StatusQuery
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    query = parse_query(bp, StatusQuery)
    return reply(console.status_all(deps(), probe=query.probe))


@route(
    bp,
    "/status/{workload}",
    "GET",
    tag="status",
    query="chalicelib.models.api:StatusQuery",
    responses={200: "chalicelib.services.console:ConsoleStatus"},
    errors=(404,),
)
def status_one(workload: str) -> Response:
    """A workload's DR status: active region, live traffic weights, last smoke tests, RPO per asset,
    last failover/failback with measured RTO, running executions and the lock."""
    from chalicelib.models.api import StatusQuery
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    query = parse_query(bp, StatusQuery)
    return reply(console.status_of(workload_param(workload), deps(), probe=query.probe))


# -- operations -----------------------------------------------------------------------------------------
@route(
    bp,
    "/workloads/{workload}/failover",
    "POST",
    tag="operations",
    body="chalicelib.models.api:FailoverBody",
    responses={
        200: (
            "chalicelib.services.operations:FailoverPlanPreview",
            "chalicelib.services.console:NothingToDo",
        ),
        202: "chalicelib.services.console:OperationStarted",
    },
    errors=(404, 409, 501),
)
def failover(workload: str) -> Response:
    """Fail a workload over to its secondary region now, or (dry_run) show exactly what that would do.

    A dry run answers 200 with the steps and traffic change and changes nothing. A real run takes the
    workload's lock before answering: 202 with the execution id (your IAM identity and reason go to the
    ledger), or 409 naming the failover/failback that holds the lock or runs. When the workload already
    serves from its secondary (ledger and live traffic agree) the answer is 200 "nothing to do" and
    nothing starts; `force` runs it anyway.
    """
    from chalicelib.models.api import FailoverBody
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    body = parse_body(bp, FailoverBody)
    result = console.request_failover(workload_param(workload), body, caller(bp), deps())
    return reply(result, 202 if isinstance(result, console.OperationStarted) else 200)


@route(
    bp,
    "/workloads/{workload}/failback",
    "POST",
    tag="operations",
    body="chalicelib.models.api:FailbackBody",
    responses={202: "chalicelib.services.console:OperationStarted"},
    errors=(404, 409, 501),
)
def failback(workload: str) -> Response:
    """Start a stepped failback to the primary region (approval, steps, bakes and gates from the plan).

    Takes the workload's lock before answering: 202 with the execution id, or 409 naming the operation in
    the way. 409 too, with the reason, when there is nothing to fail back (all traffic on the primary).
    """
    from chalicelib.models.api import FailbackBody
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    body = parse_body(bp, FailbackBody)
    return reply(console.request_failback(workload_param(workload), body.reason, caller(bp), deps()), 202)


@route(
    bp,
    "/workloads/{workload}/unlock",
    "POST",
    tag="operations",
    body="chalicelib.models.api:UnlockBody",
    responses={200: "chalicelib.services.workload_lock:Unlocked"},
    errors=(404,),
)
def unlock(workload: str) -> Response:
    """Remove the workload's failover/failback lock whoever holds it: the escape hatch for a stale lock.

    Status shows a held lock with `stale: true` when its holder execution no longer runs. The lock removed
    (or none) comes back, and your IAM identity and reason go to the ledger. A holder that still runs is not
    stopped, and the answer says so.
    """
    from chalicelib.models.api import UnlockBody
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    body = parse_body(bp, UnlockBody)
    return reply(console.unlock(workload_param(workload), body.reason, caller(bp), deps()))


@route(
    bp,
    "/workloads/{workload}/verify",
    "POST",
    tag="operations",
    body="chalicelib.models.api:VerifyBody",
    body_required=False,
    responses={202: "chalicelib.services.console:OperationStarted"},
    errors=(404, 409, 501),
)
def verify(workload: str) -> Response:
    """Start a backup verification run now: every asset's replica compared, RPO measured, report written.

    Answers 202 with the execution id; the verdict lands in the ledger, status (measured RPO per asset)
    and the evidence bucket when the run finishes. 409 while a verification of the workload runs.
    """
    from chalicelib.models.api import VerifyBody
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    body = parse_body(bp, VerifyBody, required=False)
    return reply(console.request_verification(workload_param(workload), body.reason, caller(bp), deps()), 202)


@route(
    bp,
    "/workloads/{workload}/assess",
    "POST",
    tag="operations",
    body="chalicelib.models.assessment:AssessBody",
    body_required=False,
    responses={200: "chalicelib.models.assessment:AssessmentReport"},
    errors=(404,),
)
def assess(workload: str) -> Response:
    """Assess the workload's resilience now: single points of failure, encryption, data residency, and
    the estimated RTO/RPO against the objectives (docs/assess.md). Read-only.

    Answers the report, each finding with a stable id, severity, plan key, evidence and fix; stored in the
    evidence bucket (and shown by status) unless `store` is false.
    """
    from chalicelib.models.assessment import AssessBody
    from chalicelib.services.assessment import assess_workload
    from chalicelib.services.deps import deps

    body = parse_body(bp, AssessBody, required=False)
    return reply(assess_workload(workload_param(workload), deps(), store=body.store))


@route(
    bp,
    "/workloads/{workload}/restores",
    "POST",
    tag="operations",
    body="chalicelib.models.restore:RestoreBody",
    responses={202: "chalicelib.services.console:OperationStarted"},
    errors=(404, 409, 501),
)
def restores(workload: str) -> Response:
    """Restore an S3 asset's prefix to a point in time (each key's version then), or dry-run it.

    Checked before answering (the asset is an S3 asset of the plan, the time is past, the bucket is
    versioned, the target is empty, an in-place restore is confirmed with the workload's name): 409 with
    the reason otherwise. Then 202 with the restore execution; its output is the report (counts, the
    changes, every copy verified against its source version), also in the evidence bucket and the ledger.
    """
    from chalicelib.models.restore import RestoreBody
    from chalicelib.services import restore
    from chalicelib.services.deps import deps

    body = parse_body(bp, RestoreBody)
    return reply(restore.request_restore(body.request(workload_param(workload), caller(bp)), deps()), 202)


@route(
    bp,
    "/workloads/{workload}/rollback",
    "POST",
    tag="operations",
    body="chalicelib.models.rollback:RollbackBody",
    body_required=False,
    responses={202: "chalicelib.services.console:OperationStarted"},
    errors=(404, 409, 501),
)
def rollback(workload: str) -> Response:
    """Roll an endpoint back to the previous (or a named) approved registry version, or dry-run it.

    The plan is checked before answering (it names a model registry, the region is one of its two): 409
    with the reason otherwise, and while a rollback of the workload runs. Then 202 with the rollback
    execution: it reads what the endpoint serves and the registry, refuses (no earlier approved version, a
    version not approved or already deployed) or deploys, runs the smoke tests and reverts when they fail.
    Its output is the report (current -> target version, endpoint configs), also in the ledger.
    """
    from chalicelib.models.rollback import RollbackBody
    from chalicelib.services import rollback as uc
    from chalicelib.services.deps import deps

    body = parse_body(bp, RollbackBody, required=False)
    d = deps()
    name = workload_param(workload)
    request = uc.request_of(body, name, caller(bp), d)
    return reply(uc.request_rollback(request, d), 202)


@route(
    bp,
    "/workloads/{workload}/drills",
    "POST",
    tag="drills",
    body="chalicelib.models.drill:DrillBody",
    body_required=False,
    responses={202: "chalicelib.models.drill:DrillStarted"},
    errors=(404, 409),
)
def drills(workload: str) -> Response:
    """Start a DR drill: inject the scenario's fault, let Lifeboat recover on its own, measure, report.

    Runs asynchronously: 202 with the drill id; its record is at GET /drills/{drill_id} once it ends. In
    an AWS account the drill breaks the plan's drill target (drill.target), never production unless `live`
    is set with `confirm` equal to the workload's name. 409 when that pre-condition fails.
    """
    from chalicelib.models.drill import DrillBody
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    body = parse_body(bp, DrillBody, required=False)
    return reply(console.request_drill(workload_param(workload), body, caller(bp), deps()), 202)


@route(
    bp,
    "/drills",
    "GET",
    tag="drills",
    query="chalicelib.models.drill:DrillsQuery",
    responses={200: "chalicelib.models.drill:DrillList"},
    errors=(404,),
)
def list_drills() -> Response:
    """Finished drills, newest first (?workload=, ?limit=): verdict, RTO, RPO, evidence locations."""
    from chalicelib.models.drill import DrillsQuery
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    q = parse_query(bp, DrillsQuery)
    return reply(console.list_drills(deps(), workload=q.workload, limit=q.limit))


@route(
    bp,
    "/drills/{drill_id}",
    "GET",
    tag="drills",
    responses={200: "chalicelib.models.drill:DrillRecord"},
    errors=(404,),
)
def get_drill(drill_id: str) -> Response:
    """One drill's full record: phases, objectives with verdicts and margins, decisions, step timings."""
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    return reply(console.show_drill(drill_id, deps()))


# -- execution controls (failback) ----------------------------------------------------------------------
def _control(action: str, id: str) -> Response:
    from chalicelib.models.api import ExecutionActionBody
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    body = parse_body(bp, ExecutionActionBody, required=False)
    outcome = console.control_execution(action, execution_param(id), body.reason, caller(bp), deps())
    return reply(outcome)


_CONTROL = {
    "tag": "executions",
    "body": "chalicelib.models.api:ExecutionActionBody",
    "body_required": False,
    "responses": {200: "chalicelib.models.failback:ControlOutcome"},
    "errors": (404, 409),
}


@route(bp, "/executions/{id}/approve", "POST", **_CONTROL)  # type: ignore[arg-type]
def approve(id: str) -> Response:
    """Approve a failback waiting for approval: traffic starts moving back."""
    return _control("approve", id)


@route(bp, "/executions/{id}/reject", "POST", **_CONTROL)  # type: ignore[arg-type]
def reject(id: str) -> Response:
    """Reject a failback waiting for approval: nothing shifts."""
    return _control("reject", id)


@route(bp, "/executions/{id}/pause", "POST", **_CONTROL)  # type: ignore[arg-type]
def pause(id: str) -> Response:
    """Pause a failback at its next bake check; traffic stays where it is."""
    return _control("pause", id)


@route(bp, "/executions/{id}/resume", "POST", **_CONTROL)  # type: ignore[arg-type]
def resume(id: str) -> Response:
    """Resume a paused failback (or one waiting for a decision after a gate)."""
    return _control("resume", id)


@route(bp, "/executions/{id}/abort", "POST", **_CONTROL)  # type: ignore[arg-type]
def abort(id: str) -> Response:
    """Abort a failback: stop it and send all traffic back to the secondary."""
    return _control("abort", id)


@route(bp, "/executions/{id}/fast-track", "POST", **_CONTROL)  # type: ignore[arg-type]
def fast_track(id: str) -> Response:
    """Skip the remaining bakes and steps of a failback (the final gates still apply)."""
    return _control("fast-track", id)


# -- executions and ledger ------------------------------------------------------------------------------
@route(
    bp,
    "/executions",
    "GET",
    tag="executions",
    query="chalicelib.models.api:ExecutionsQuery",
    responses={200: "chalicelib.services.executions:ExecutionList"},
    errors=(404,),
)
def list_executions() -> Response:
    """Lifeboat's executions, most recent first (?workload=, ?status=, ?limit=)."""
    from chalicelib.models.api import ExecutionsQuery
    from chalicelib.services import executions as runs
    from chalicelib.services.deps import deps

    q = parse_query(bp, ExecutionsQuery)
    return reply(runs.list_executions(deps(), workload=q.workload, status=q.status, limit=q.limit))


@route(
    bp,
    "/executions/{id}",
    "GET",
    tag="executions",
    responses={200: "chalicelib.services.executions:ExecutionDetail"},
    errors=(404,),
)
def get_execution(id: str) -> Response:
    """One execution: every step with timings and results, and its decisions from the ledger.

    `id` is the `id` field of any execution in a response (the ARN in unpadded base64url), or the
    execution name.
    """
    from chalicelib.services import executions as runs
    from chalicelib.services.deps import deps

    return reply(runs.get_execution(execution_param(id), deps()))


@route(
    bp,
    "/ledger/{workload}",
    "GET",
    tag="ledger",
    query="chalicelib.models.api:LedgerQuery",
    responses={200: "chalicelib.services.console:LedgerPage"},
    errors=(404,),
)
def ledger(workload: str) -> Response:
    """A workload's decisions and operations, newest first (?limit=, ?kind=)."""
    from chalicelib.models.api import LedgerQuery
    from chalicelib.services import console
    from chalicelib.services.deps import deps

    q = parse_query(bp, LedgerQuery)
    return reply(console.ledger_page(workload_param(workload), deps(), limit=q.limit, kind=q.kind))


def declared_routes() -> dict[tuple[str, str], Any]:
    """(path, method) -> RouteDoc of every authorised route (the OpenAPI builder and tests read it)."""
    return {key: doc.resolved() for key, doc in http.ROUTES.items()}
