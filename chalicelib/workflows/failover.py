"""The failover state machine, generated from a DR plan.

(alarm-started: sustain wait -> recheck quorum -> confirmation probe) -> lock -> smoke-test the backup ->
(graceful: wait for replication) -> shift traffic -> verify read-back -> post-switch smoke test -> record RTO
-> conclude (read traffic back, ledger + notification) -> release lock. An alarm-started run takes the lock
only once its sustain window is over, so cancelling it while it waits (StopExecution) leaves nothing held;
an operator-started run takes it first. Every task is bounded (TimeoutSeconds), retries transient errors and
catches everything else into the same conclude/release path; there is no execution-wide timeout (a timed-out
execution would skip that path). A run that ends without it anyway (stopped, or a failure outside any Catch)
is cleaned up by the janitor (the Step Functions status-change rule, services/janitor.py).
"""

from __future__ import annotations

from typing import Any

from chalicelib.models.plan import DRPlan
from chalicelib.workflows.asl import Resolver, StateBuilder

# The Lambda functions the failover machine calls (Chalice function names).
FAILOVER_TASKS = (
    "acquire_lock",
    "recheck_trigger",
    "probe_endpoint",
    "smoke_test",
    "check_replication",
    "shift_traffic",
    "verify_traffic",
    "record_failover",
    "conclude",
    "release_lock",
)

REPLICATION_POLL_SECONDS = 5


def has_replicated_assets(plan: DRPlan) -> bool:
    return any(a.kind == "s3" for a in plan.assets)


def build_failover(plan: DRPlan, resolve: Resolver) -> dict[str, Any]:
    w = plan.workload
    common = {"workload": w, "execution.$": "$$.Execution.Id", "started.$": "$$.Execution.StartTime"}
    builder = StateBuilder(resolve, common)
    states, t = builder.states, builder.task

    # A zero sustain window needs no wait and no recheck: the trigger decision already saw the quorum.
    sustained = plan.trigger.sustain.total_seconds() > 0
    decided = "ConfirmOutage" if plan.trigger.confirmation_probe else "AcquireLock"
    states["HasTrigger"] = {
        "Type": "Choice",
        "Comment": "Alarm-started failovers wait out the sustain window before taking the lock (a cancelled "
        "one holds nothing); operator-started ones take it at once.",
        "Choices": [
            {
                "Variable": "$.trigger.sustain_until",
                "IsPresent": True,
                "Next": "WaitSustain" if sustained else decided,
            }
        ],
        "Default": "AcquireLock",
    }
    if sustained:
        states["WaitSustain"] = {
            "Type": "Wait",
            "TimestampPath": "$.trigger.sustain_until",
            "Next": "RecheckQuorum",
        }
        # Engines may round a timestamp wait down; the recheck then asks for the whole seconds still left.
        states["WaitRemainingSustain"] = {
            "Type": "Wait",
            "SecondsPath": "$.recheck.retry_after_seconds",
            "Next": "RecheckQuorum",
        }
        t("RecheckQuorum", "recheck_trigger", {"trigger.$": "$.trigger"}, "$.recheck", "QuorumHeld")
        states["QuorumHeld"] = {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.recheck.proceed", "BooleanEquals": True, "Next": decided},
                {"Variable": "$.recheck.wait_more", "BooleanEquals": True, "Next": "WaitRemainingSustain"},
            ],
            "Default": "Suppress",
        }
    if plan.trigger.confirmation_probe:
        t(
            "ConfirmOutage",
            "probe_endpoint",
            {"target": "primary"},
            "$.probe",
            "PrimaryStillHealthy",
            comment="Independent confirmation: if the primary answers its smoke tests, do not fail over.",
        )
        states["PrimaryStillHealthy"] = {
            "Type": "Choice",
            "Choices": [{"Variable": "$.probe.healthy", "BooleanEquals": True, "Next": "Suppress"}],
            "Default": "AcquireLock",
        }
    if sustained or plan.trigger.confirmation_probe:  # otherwise nothing can suppress (no unreachable state)
        t("Suppress", "conclude", {"outcome": "suppressed", "context.$": "$"}, "$.final", "ReleaseLock")
    builder.lock(
        "failover",
        "conclude",
        "SmokeTestBackup",
        comment="One failover or failback per workload at a time (lease lock, renewed before the shift).",
    )

    graceful_next = "IsGraceful" if has_replicated_assets(plan) else "ShiftTraffic"
    t(
        "SmokeTestBackup",
        "smoke_test",
        {"target": "secondary", "phase": "pre-shift"},
        "$.smoke_backup",
        "BackupHealthy",
    )
    states["BackupHealthy"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.smoke_backup.passed", "BooleanEquals": True, "Next": graceful_next}],
        "Default": "RefuseBackupUnhealthy",
    }
    t("RefuseBackupUnhealthy", "conclude", {"outcome": "refused", "context.$": "$"}, "$.final", "ReleaseLock")

    if has_replicated_assets(plan):
        states["IsGraceful"] = {
            "Type": "Choice",
            "Choices": [{"Variable": "$.mode", "StringEquals": "graceful", "Next": "CheckReplication"}],
            "Default": "ShiftTraffic",
        }
        t(
            "CheckReplication",
            "check_replication",
            {"started.$": "$$.Execution.StartTime"},
            "$.replication",
            "ReplicationCaughtUp",
            comment="Graceful mode: bounded wait until writes made before the failover reach the replica.",
        )
        states["ReplicationCaughtUp"] = {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.replication.done", "BooleanEquals": True, "Next": "ShiftTraffic"},
            ],
            "Default": "WaitForReplication",
        }
        states["WaitForReplication"] = {
            "Type": "Wait",
            "SecondsPath": "$.replication.retry_after_seconds",
            "Next": "CheckReplication",
        }

    t(
        "ShiftTraffic",
        "shift_traffic",
        {"target": "secondary"},
        "$.shift",
        "VerifyTraffic",
        comment="Atomic: one Route 53 change batch or one SageMaker weights update; safety rules apply.",
    )
    t(
        "VerifyTraffic",
        "verify_traffic",
        {"expected.$": "$.shift.weights"},
        "$.verify",
        "SmokeTestAfterSwitch",
        extra_retry=[
            {
                "ErrorEquals": ["TrafficNotConverged"],
                "IntervalSeconds": 2,
                "BackoffRate": 1.5,
                "MaxAttempts": 8,
            }
        ],
    )
    t(
        "SmokeTestAfterSwitch",
        "smoke_test",
        {"target": "secondary", "phase": "post-shift"},
        "$.smoke_after",
        "SwitchValidated",
    )
    states["SwitchValidated"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.smoke_after.passed", "BooleanEquals": True, "Next": "RecordFailover"}],
        "Default": "Conclude",
    }
    t("RecordFailover", "record_failover", {"context.$": "$"}, "$.outcome", "ConcludeCompleted")
    t("ConcludeCompleted", "conclude", {"outcome": "completed", "context.$": "$"}, "$.final", "ReleaseLock")
    t(
        "Conclude",
        "conclude",
        {"outcome": "failed", "context.$": "$"},
        "$.final",
        "ReleaseLock",
        catch_to="ReleaseLock",
        comment="Every failure lands here: reconcile traffic to a clean state, record, notify.",
    )
    t("ReleaseLock", "release_lock", {}, "$.released", "Outcome", catch_to="Outcome")
    states["Outcome"] = {
        "Type": "Choice",
        "Choices": [
            {"Not": {"Variable": "$.final.status", "IsPresent": True}, "Next": "Failed"},
            {"Variable": "$.final.status", "StringEquals": "completed", "Next": "FailedOver"},
            {"Variable": "$.final.status", "StringEquals": "suppressed", "Next": "NotNeeded"},
            {"Variable": "$.final.status", "StringEquals": "refused", "Next": "Refused"},
            {"Variable": "$.final.status", "StringEquals": "unvalidated", "Next": "SwitchedUnvalidated"},
        ],
        "Default": "Failed",
    }
    states["FailedOver"] = {"Type": "Succeed"}
    states["NotNeeded"] = {"Type": "Succeed"}
    states["Refused"] = {"Type": "Fail", "Error": "FailoverRefused", "Cause": "see the ledger for the reason"}
    states["SwitchedUnvalidated"] = {
        "Type": "Fail",
        "Error": "FailoverUnvalidated",
        "Cause": "traffic moved to the secondary, then the run failed before validating it: see the ledger",
    }
    states["Failed"] = {"Type": "Fail", "Error": "FailoverFailed", "Cause": "see the ledger for the reason"}

    # No execution-wide TimeoutSeconds: a timed-out execution skips Conclude and ReleaseLock. Every Task is
    # bounded by its own TimeoutSeconds and every Wait by its input (sustain_until, the replication deadline).
    return {
        "Comment": f"Lifeboat failover for {w}: {plan.regions.primary} -> {plan.regions.secondary}",
        "StartAt": "HasTrigger",
        "States": states,
    }
