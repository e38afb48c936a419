"""The restore state machine: point-in-time restore of one S3 asset's prefix, started by the API.

Begin (the request, no progress yet) -> PlanRestore (the request checked: asset, time, versioning, target)
-> RestoreBatch (decide and copy the next keys, about 40 s of work, verifying every copy) -> MoreKeys? (loop
until the listing ends) -> RecordRestore (evidence report, ledger, metrics) -> Restored | RestoreFailed.

The batches are a loop over data: each returns the last key it finished (the cursor) and the running totals,
so a retried batch resumes where its input says and the history grows by a bounded number of events per
batch (a million keys is 2,000 batches, about 10,000 events, under the 25,000 limit). A refused or failed
run is caught into RecordRestore, so every run ends recorded. The restore takes no workload lock: it moves
no traffic, and one restore of a workload runs at a time (the API refuses a second).
"""

from __future__ import annotations

from typing import Any

from chalicelib.models.plan import DRPlan
from chalicelib.workflows.asl import TASK_TIMEOUT_SECONDS, Resolver, task

RESTORE_TASKS = ("restore_plan", "restore_batch", "restore_record")


def build_restore(plan: DRPlan, resolve: Resolver) -> dict[str, Any] | None:
    """The ASL definition (JSONPath only); None for a plan with no S3 asset (nothing it could restore)."""
    if not any(a.kind == "s3" for a in plan.assets):
        return None
    w = plan.workload
    states: dict[str, Any] = {
        "Begin": {
            "Type": "Pass",
            "Comment": "Keep the request apart from the totals the batches carry.",
            "Parameters": {"request.$": "$", "progress": {"done": False}},
            "Next": "PlanRestore",
        },
        "PlanRestore": task(
            resolve,
            "restore_plan",
            parameters={"workload": w, "request.$": "$.request", "run_id.$": "$$.Execution.Name"},
            result_path="$.scope",
            next_state="RestoreBatch",
            catch_to="RecordRestore",
            comment="Check the request against the plan and the buckets; refusals are recorded.",
        ),
        "RestoreBatch": task(
            resolve,
            "restore_batch",
            parameters={"workload": w, "scope.$": "$.scope", "progress.$": "$.progress"},
            result_path="$.progress",
            next_state="MoreKeys",
            catch_to="RecordRestore",
            comment="Decide the next keys from the version listing, copy and verify them (time-bounded).",
        ),
        "MoreKeys": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.progress.done", "BooleanEquals": False, "Next": "RestoreBatch"}],
            "Default": "RecordRestore",
        },
        "RecordRestore": task(
            resolve,
            "restore_record",
            parameters={"workload": w, "context.$": "$", "execution.$": "$$.Execution.Id"},
            result_path="$.report",
            next_state="Outcome",
            catch_to="NotRecorded",
            comment="Evidence report, ledger entry and metrics (a dry run writes nothing).",
        ),
        "Outcome": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.report.verdict", "StringEquals": "restored", "Next": "Restored"},
                {"Variable": "$.report.verdict", "StringEquals": "planned", "Next": "Restored"},
            ],
            "Default": "RestoreFailed",
        },
        "Restored": {"Type": "Succeed", "OutputPath": "$.report"},
        "RestoreFailed": {
            "Type": "Fail",
            "Error": "RestoreFailed",
            "Cause": "the restore was refused or some objects were not restored; see its report",
        },
        "NotRecorded": {
            "Type": "Fail",
            "Error": "RestoreNotRecorded",
            "Cause": "the restore's report could not be written; see the execution history",
        },
    }
    for state in states.values():
        if state["Type"] == "Task":
            state["TimeoutSeconds"] = TASK_TIMEOUT_SECONDS
    return {
        "Comment": f"Lifeboat point-in-time restore of an S3 asset of {w}",
        "StartAt": "Begin",
        "States": states,
    }
