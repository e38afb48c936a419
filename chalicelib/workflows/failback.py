"""The failback state machine, generated from a DR plan's failback policy.

lock -> readiness of the restored primary (smoke, same model as the secondary, writes replicated back) ->
(approval: task token, bounded) -> for each step: shift -> verify read-back -> bake (chunked Waits with a
control check between them) -> gates (alarms + smoke) -> next step | roll back | pause for a decision ->
final validation at 100% -> record duration -> conclude -> release lock.

Every Task is bounded (TimeoutSeconds), retries transient errors and catches everything else into the
conclude/release path; a run that ends without it anyway (stopped outside `lifeboat abort`) is cleaned up by
the janitor (services/janitor.py). The lock's lease is renewed by every step, bake check and operator wait,
each for what comes before its next renewal (domain.leases). The steps are a loop over data (the policy's
steps in the Init state), so the definition's size does not grow with them and the history grows by a
bounded number of events per step (see domain.failback.history_estimate).
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.failback import bake_chunk_seconds
from chalicelib.models.plan import DRPlan
from chalicelib.workflows.asl import Resolver, StateBuilder, task

# The Lambda functions the failback machine calls (Chalice function names).
FAILBACK_TASKS = (
    "acquire_lock",
    "failback_readiness",
    "failback_await",
    "failback_shift",
    "verify_traffic",
    "failback_bake",
    "failback_gates",
    "failback_rollback",
    "failback_record",
    "failback_conclude",
    "release_lock",
)

CALLBACK_RESOURCE = "arn:aws:states:::lambda:invoke.waitForTaskToken"
TRAFFIC_RETRY = {
    "ErrorEquals": ["TrafficNotConverged"],
    "IntervalSeconds": 2,
    "BackoffRate": 1.5,
    "MaxAttempts": 8,
}


def build_failback(plan: DRPlan, resolve: Resolver) -> dict[str, Any]:
    w = plan.workload
    policy = plan.failback
    approval_seconds = max(1, int(policy.approval_timeout.total_seconds()))
    common = {"workload": w, "execution.$": "$$.Execution.Id"}
    builder = StateBuilder(resolve, common)
    states, t = builder.states, builder.task

    def wait_for_operator(
        name: str, kind: str, reason: dict[str, str], result: str, nxt: str, **kw: Any
    ) -> None:
        # lambda:invoke.waitForTaskToken: the function parks $$.Task.Token in the ledger and notifies; the
        # operator controls complete it with SendTaskSuccess. TimeoutSeconds bounds every human wait.
        payload = {
            **common,
            "token.$": "$$.Task.Token",
            "kind": kind,
            "timeout_seconds": approval_seconds,
            **reason,
        }
        state = task(
            lambda _fn: CALLBACK_RESOURCE,
            "failback_await",
            parameters={"FunctionName": resolve("failback_await"), "Payload": payload},
            result_path=result,
            next_state=nxt,
            catch_to="Conclude",
            **kw,
        )
        state["TimeoutSeconds"] = approval_seconds
        states[name] = state

    # -- lock and readiness -----------------------------------------------------------------------------
    builder.lock(
        "failback",
        "failback_conclude",
        "CheckReadiness",
        comment="One failover or failback per workload at a time (lease lock, renewed by every step).",
    )
    t(
        "CheckReadiness",
        "failback_readiness",
        {},
        "$.readiness",
        "PrimaryReady",
        comment="Smoke tests, same model version and checksum as the secondary, writes replicated back.",
    )
    after_ready = "RequestApproval" if policy.approval_required else "Init"
    states["PrimaryReady"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.readiness.ready", "BooleanEquals": True, "Next": after_ready}],
        "Default": "RefuseNotReady",
    }
    t(
        "RefuseNotReady",
        "failback_conclude",
        {"outcome": "refused", "context.$": "$"},
        "$.final",
        "ReleaseLock",
    )

    # -- approval ---------------------------------------------------------------------------------------
    if policy.approval_required:
        wait_for_operator(
            "RequestApproval",
            "approval",
            {"reason.$": "$.readiness.reason"},
            "$.approval",
            "Approved",
            extra_catch=[
                {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "ApprovalTimedOut"}
            ],
        )
        states["Approved"] = {
            "Type": "Choice",
            "Choices": [{"Variable": "$.approval.action", "StringEquals": "approve", "Next": "Init"}],
            "Default": "ApprovalRejected",
        }
        t(
            "ApprovalRejected",
            "failback_conclude",
            {"outcome": "refused", "context.$": "$"},
            "$.final",
            "ReleaseLock",
        )
        t(
            "ApprovalTimedOut",
            "failback_conclude",
            {"outcome": "aborted", "context.$": "$"},
            "$.final",
            "ReleaseLock",
        )

    # -- the steps ----------------------------------------------------------------------------------------
    states["Init"] = {
        "Type": "Pass",
        "Comment": "The policy, as generated: steps (share on the primary), bake and chunk length, seconds.",
        "Result": {
            "policy": {
                "steps": list(policy.steps),
                "bake_seconds": int(policy.bake.total_seconds()),
                "chunk_seconds": bake_chunk_seconds(policy),
            },
            "step": {"next_index": 0},
            "bake": {"step": -1},
        },
        "ResultPath": "$.rollout",
        "Next": "DrillBake",
    }
    # A drill may bake each step for less than the plan says (the plan's drill.failback_bake, passed by the
    # drill runner as `bake_seconds`); nothing else can shorten it.
    states["DrillBake"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.bake_seconds", "IsPresent": True, "Next": "ApplyDrillBake"}],
        "Default": "ShiftStep",
    }
    states["ApplyDrillBake"] = {
        "Type": "Pass",
        "InputPath": "$.bake_seconds",
        "ResultPath": "$.rollout.policy.bake_seconds",
        "Next": "ShiftStep",
    }
    t(
        "ShiftStep",
        "failback_shift",
        {"steps.$": "$.rollout.policy.steps", "previous.$": "$.rollout.step"},
        "$.rollout.step",
        "VerifyStep",
        comment="Atomic weights change {primary: s, secondary: 100-s}; the adapter's safety rules apply.",
    )
    t(
        "VerifyStep",
        "verify_traffic",
        {"expected.$": "$.rollout.step.weights"},
        "$.verify",
        "CheckBake",
        extra_retry=[TRAFFIC_RETRY],
    )
    t(
        "CheckBake",
        "failback_bake",
        {
            "step.$": "$.rollout.step",
            "bake.$": "$.rollout.bake",
            "bake_seconds.$": "$.rollout.policy.bake_seconds",
            "chunk_seconds.$": "$.rollout.policy.chunk_seconds",
        },
        "$.rollout.bake",
        "BakeAction",
        comment="Between bake chunks: honour pause and fast-track; renew the lock.",
    )
    states["BakeAction"] = {
        "Type": "Choice",
        "Choices": [
            {"Variable": "$.rollout.bake.action", "StringEquals": "wait", "Next": "Bake"},
            {"Variable": "$.rollout.bake.action", "StringEquals": "pause", "Next": "Paused"},
            {"Variable": "$.rollout.step.last", "BooleanEquals": True, "Next": "FinalValidation"},
        ],
        "Default": "EvaluateGates",
    }
    states["Bake"] = {"Type": "Wait", "SecondsPath": "$.rollout.bake.wait_seconds", "Next": "CheckBake"}
    t(
        "EvaluateGates",
        "failback_gates",
        {"step.$": "$.rollout.step", "phase": "gate"},
        "$.gates",
        "GateVerdict",
    )
    states["GateVerdict"] = {
        "Type": "Choice",
        "Choices": [
            {"Variable": "$.gates.outcome", "StringEquals": "pass", "Next": "ShiftStep"},
            {"Variable": "$.gates.outcome", "StringEquals": "inconclusive", "Next": "AwaitDecision"},
        ],
        "Default": "Rollback",
    }
    t(
        "FinalValidation",
        "failback_gates",
        {"step.$": "$.rollout.step", "phase": "final"},
        "$.gates",
        "FinalVerdict",
        comment="At 100%: the gates once more before the primary is declared active.",
    )
    states["FinalVerdict"] = {
        "Type": "Choice",
        "Choices": [
            {"Variable": "$.gates.outcome", "StringEquals": "pass", "Next": "RecordFailback"},
            {"Variable": "$.gates.outcome", "StringEquals": "inconclusive", "Next": "AwaitDecision"},
        ],
        "Default": "Rollback",
    }

    # -- pauses: an operator's, or an inconclusive gate's (never guess) ------------------------------------
    timeout_rollback = [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "Rollback"}]
    wait_for_operator(
        "Paused",
        "pause",
        {"reason": "an operator paused the failback"},
        "$.decision",
        "CheckBake",
        extra_catch=timeout_rollback,
    )
    wait_for_operator(
        "AwaitDecision",
        "decision",
        {"reason.$": "$.gates.reason"},
        "$.decision",
        "CheckBake",
        extra_catch=timeout_rollback,
    )

    # -- outcomes -----------------------------------------------------------------------------------------
    t(
        "Rollback",
        "failback_rollback",
        {"context.$": "$"},
        "$.rollback",
        "VerifyRollback",
        comment="All traffic back to the secondary in one change, from whichever step failed.",
    )
    t(
        "VerifyRollback",
        "verify_traffic",
        {"expected.$": "$.rollback.weights"},
        "$.verify",
        "ConcludeRolledBack",
        extra_retry=[TRAFFIC_RETRY],
    )
    t(
        "ConcludeRolledBack",
        "failback_conclude",
        {"outcome": "rolled_back", "context.$": "$"},
        "$.final",
        "ReleaseLock",
    )
    t(
        "RecordFailback",
        "failback_record",
        {"context.$": "$", "started.$": "$$.Execution.StartTime"},
        "$.outcome",
        "ConcludeCompleted",
    )
    t(
        "ConcludeCompleted",
        "failback_conclude",
        {"outcome": "completed", "context.$": "$"},
        "$.final",
        "ReleaseLock",
    )
    t(
        "Conclude",
        "failback_conclude",
        {"outcome": "failed", "context.$": "$"},
        "$.final",
        "ReleaseLock",
        catch_to="ReleaseLock",
        comment="Every failure lands here: all traffic back to the secondary, record, notify.",
    )
    t("ReleaseLock", "release_lock", {}, "$.released", "Outcome", catch_to="Outcome")
    states["Outcome"] = {
        "Type": "Choice",
        "Choices": [
            {"Not": {"Variable": "$.final.status", "IsPresent": True}, "Next": "Failed"},
            {"Variable": "$.final.status", "StringEquals": "completed", "Next": "FailedBack"},
            {"Variable": "$.final.status", "StringEquals": "refused", "Next": "Refused"},
            {"Variable": "$.final.status", "StringEquals": "rolled_back", "Next": "RolledBack"},
            {"Variable": "$.final.status", "StringEquals": "aborted", "Next": "Aborted"},
        ],
        "Default": "Failed",
    }
    states["FailedBack"] = {"Type": "Succeed"}
    states["Refused"] = {"Type": "Fail", "Error": "FailbackRefused", "Cause": "see the ledger for the reason"}
    states["RolledBack"] = {
        "Type": "Fail",
        "Error": "FailbackRolledBack",
        "Cause": "see the ledger for the reason",
    }
    states["Aborted"] = {"Type": "Fail", "Error": "FailbackAborted", "Cause": "see the ledger for the reason"}
    states["Failed"] = {"Type": "Fail", "Error": "FailbackFailed", "Cause": "see the ledger for the reason"}

    # No execution-wide TimeoutSeconds: a timed-out execution skips Conclude and could leave traffic split.
    # Every wait inside is bounded instead (bake chunks, TimeoutSeconds on each operator wait and task).
    return {
        "Comment": f"Lifeboat failback for {w}: {plan.regions.secondary} -> {plan.regions.primary} "
        f"in steps {policy.steps}",
        "StartAt": "AcquireLock",
        "States": states,
    }
