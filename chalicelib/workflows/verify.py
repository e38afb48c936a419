"""The verification state machine, generated from a DR plan.

PlanRun (shards -> evidence bucket) -> FanOut: a Distributed Map whose ItemReader reads the shard list from
S3 and runs one child execution per batch of shards (each shard stores its own result) -> Finalize (merge,
report JSON + Markdown, ledger, metrics, alert). A shard that fails after its retries is caught inside the
map (ShardFailed) so the other shards still run; Finalize sees its result missing and reports the asset
"incomplete". Any other failure is caught into Finalize too, so every run ends with a report.

Shard results are stored in S3 rather than returned (ResultPath null): a run over thousands of prefixes
would otherwise exceed the 256 KiB state payload limit.
"""

from __future__ import annotations

from typing import Any

from chalicelib.models.plan import DRPlan
from chalicelib.workflows.asl import Resolver, task

VERIFY_TASKS = ("verify_plan", "verify_shard", "verify_finalize")
MAX_CONCURRENCY = 16


def _timeout_seconds(plan: DRPlan) -> int:
    # Generous: the largest buckets take a while even fanned out; the run must still end.
    return 6 * 3600


def build_verification(plan: DRPlan, resolve: Resolver) -> dict[str, Any]:
    """The ASL definition (JSONPath only); moto 5.2.5 runs it as is, Distributed Map and ItemReader too."""
    w = plan.workload
    common = {
        "workload": w,
        "execution.$": "$$.Execution.Id",
        "run_id.$": "$$.Execution.Name",
        "started.$": "$$.Execution.StartTime",
    }
    shard_task = task(
        resolve,
        "verify_shard",
        parameters={"workload": w, "run_id.$": "$.run_id", "shard.$": "$.shard"},
        result_path="$.result",
        next_state=None,
        catch_to="ShardFailed",
        comment="Compare one shard; throttling/5xx retried, anything else recorded as incomplete.",
    )
    fan_out: dict[str, Any] = {
        "Type": "Map",
        "Comment": "One item per shard: S3 key ranges/prefixes, bucket settings, registry, tables.",
        "MaxConcurrency": MAX_CONCURRENCY,
        "ItemSelector": {"run_id.$": "$.run.run_id", "shard.$": "$$.Map.Item.Value"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "VerifyShard",
            "States": {
                "VerifyShard": shard_task,
                "ShardFailed": {
                    "Type": "Pass",
                    "Comment": "Its result stays missing: Finalize reports the asset incomplete.",
                    "Result": {"status": "failed"},
                    "End": True,
                },
            },
        },
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": "$.run.shards.bucket", "Key.$": "$.run.shards.key"},
        },
        "Label": "VerifyShards",
        "ResultPath": None,
        "Next": "Finalize",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Finalize"}],
    }
    states: dict[str, Any] = {
        "PlanRun": task(
            resolve,
            "verify_plan",
            parameters={**common, "input.$": "$"},
            result_path="$.run",
            next_state="FanOut",
            catch_to="Finalize",
            comment="Split the assets into shards and store the list where the map's ItemReader reads it.",
        ),
        "FanOut": fan_out,
        "Finalize": task(
            resolve,
            "verify_finalize",
            parameters={**common, "context.$": "$"},
            result_path="$.report",
            next_state="Done",
            catch_to="FinalizeFailed",
            comment="Merge shard results; report (JSON + Markdown), ledger, metrics, alert.",
        ),
        "Done": {"Type": "Succeed", "OutputPath": "$.report"},
        "FinalizeFailed": {
            "Type": "Fail",
            "Error": "VerificationNotReported",
            "Cause": "the verification report could not be written; see the execution history",
        },
    }
    return {
        "Comment": f"Lifeboat backup verification of {w}: prove each asset's RPO",
        "StartAt": "PlanRun",
        "TimeoutSeconds": _timeout_seconds(plan),
        "States": states,
    }
