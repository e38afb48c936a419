"""The rollback state machine: an endpoint back to an approved registry version, gated by the smoke tests.

Begin -> Locked? (a dry run takes no lock) -> AcquireLock (the workload lock, as failover and failback take
it; re-entrant: the API claimed it for this execution) -> PlanRollback (what the endpoint serves, the
registry's versions, the decision; refusals recorded) -> DryRun? -> Deploy (http: the model server loads the
artifact; SageMaker: model, endpoint config, UpdateEndpoint) -> Settled? (WaitSettle -> CheckSettled, looping
over data: the wait is what the last look asked for) -> SmokeTest -> Passed? -> RecordRollback; failed smoke
tests -> Revert (the previous model or endpoint config) -> Settled? ... -> RecordRollback -> ReleaseLock ->
RolledBack | RollbackFailed.

A failed step (a lock held by another operation included) is caught into RecordRollback, which reverts a
deployed change it finds unreverted, so every run ends recorded; every way out passes a ReleaseLock (a
conditional delete: a run that never got the lock releases nothing). A stopped or timed-out execution skips
them: the janitor releases its lock (services.janitor), and its lease lapses within minutes regardless.
"""

from __future__ import annotations

from typing import Any

from chalicelib.models.plan import DRPlan
from chalicelib.workflows.asl import TASK_TIMEOUT_SECONDS, Resolver, task

ROLLBACK_TASKS = (
    "acquire_lock",
    "rollback_plan",
    "rollback_deploy",
    "rollback_settle",
    "rollback_smoke",
    "rollback_revert",
    "rollback_record",
    "release_lock",
)


def build_rollback(plan: DRPlan, resolve: Resolver) -> dict[str, Any] | None:
    """The ASL definition (JSONPath only); None for a plan with no model registry (nothing to deploy)."""
    if not any(a.kind == "model-registry" for a in plan.assets):
        return None
    w = plan.workload

    def step(function: str, nxt: str, comment: str) -> dict[str, Any]:
        return task(
            resolve,
            function,
            parameters={
                "workload": w,
                "scope.$": "$.scope",
                "progress.$": "$.progress",
                "execution.$": "$$.Execution.Id",
            },
            result_path="$.progress",
            next_state=nxt,
            catch_to="RecordRollback",
            comment=comment,
        )

    states: dict[str, Any] = {
        "Begin": {
            "Type": "Pass",
            "Comment": "Keep the request apart from the progress the steps carry.",
            "Parameters": {"request.$": "$", "progress": {"phase": "deploy"}},
            "Next": "Locked",
        },
        "Locked": {
            "Type": "Choice",
            "Comment": "A dry run changes nothing: it takes no lock, and refuses nothing else.",
            "Choices": [{"Variable": "$.request.dry_run", "BooleanEquals": True, "Next": "PlanRollback"}],
            "Default": "AcquireLock",
        },
        "AcquireLock": task(
            resolve,
            "acquire_lock",
            parameters={"workload": w, "execution.$": "$$.Execution.Id", "operation": "rollback"},
            result_path="$.lock",
            next_state="PlanRollback",
            catch_to="RecordRollback",
            comment="One failover, failback or rollback per workload (lease lock, renewed by every step).",
        ),
        "PlanRollback": task(
            resolve,
            "rollback_plan",
            parameters={"workload": w, "request.$": "$.request", "run_id.$": "$$.Execution.Name"},
            result_path="$.scope",
            next_state="DryRun",
            catch_to="RecordRollback",
            comment="Read what the endpoint serves and the registry; decide the version, or refuse.",
        ),
        "DryRun": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.scope.dry_run", "BooleanEquals": True, "Next": "RecordRollback"}],
            "Default": "Deploy",
        },
        "Deploy": step("rollback_deploy", "Settled", "Start serving the chosen version."),
        "Settled": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.progress.settled", "BooleanEquals": True},
                        {"Variable": "$.progress.phase", "StringEquals": "deploy"},
                    ],
                    "Next": "SmokeTest",
                },
                {"Variable": "$.progress.settled", "BooleanEquals": True, "Next": "RecordRollback"},
            ],
            "Default": "WaitSettle",
        },
        "WaitSettle": {
            "Type": "Wait",
            "Comment": "As long as the last look at the endpoint asked (SageMaker updates take minutes).",
            "SecondsPath": "$.progress.wait_seconds",
            "Next": "CheckSettled",
        },
        "CheckSettled": step("rollback_settle", "Settled", "Is the endpoint serving the new config?"),
        "SmokeTest": step("rollback_smoke", "Passed", "The plan's smoke tests against the endpoint."),
        "Passed": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.progress.phase", "StringEquals": "revert", "Next": "Revert"}],
            "Default": "RecordRollback",
        },
        "Revert": step("rollback_revert", "Settled", "Smoke tests failed: back to the previous model."),
        "RecordRollback": task(
            resolve,
            "rollback_record",
            parameters={"workload": w, "context.$": "$", "execution.$": "$$.Execution.Id"},
            result_path="$.report",
            next_state="ReleaseLock",
            catch_to="ReleaseUnrecorded",
            comment="Evidence report, ledger entry and metrics (a dry run writes nothing).",
        ),
        "ReleaseLock": task(
            resolve,
            "release_lock",
            parameters={"workload": w, "execution.$": "$$.Execution.Id"},
            result_path="$.released",
            next_state="Outcome",
            catch_to="Outcome",
            comment="Only if this execution holds it; a failed release leaves the janitor and the lease.",
        ),
        "ReleaseUnrecorded": task(
            resolve,
            "release_lock",
            parameters={"workload": w, "execution.$": "$$.Execution.Id"},
            result_path="$.released",
            next_state="NotRecorded",
            catch_to="NotRecorded",
            comment="The report failed: the lock is released all the same.",
        ),
        "Outcome": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.report.verdict", "StringEquals": "rolled-back", "Next": "RolledBack"},
                {"Variable": "$.report.verdict", "StringEquals": "planned", "Next": "RolledBack"},
            ],
            "Default": "RollbackFailed",
        },
        "RolledBack": {"Type": "Succeed", "OutputPath": "$.report"},
        "RollbackFailed": {
            "Type": "Fail",
            "Error": "RollbackFailed",
            "Cause": "the rollback was refused, failed or its smoke tests failed; see its report",
        },
        "NotRecorded": {
            "Type": "Fail",
            "Error": "RollbackNotRecorded",
            "Cause": "the rollback's report could not be written; see the execution history",
        },
    }
    for state in states.values():
        if state["Type"] == "Task":
            state["TimeoutSeconds"] = TASK_TIMEOUT_SECONDS
    return {
        "Comment": f"Lifeboat model rollback of {w}",
        "StartAt": "Begin",
        "States": states,
    }
