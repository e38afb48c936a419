"""The failover state machine, generated from the example plan, executed for real by moto's ASL engine.

Every task calls the real Chalice handler through the local cloud's Lambda runner; traffic lives in
moto's Route 53, the ledger and locks in moto's DynamoDB, notifications in SNS -> an SQS inbox.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chalicelib.adapters.ledger import Ledger
from chalicelib.adapters.locks import LockTable
from chalicelib.domain.triggers import evaluate
from chalicelib.models.alarms import AlarmStateChange
from chalicelib.models.plan import DRPlan
from localcloud.faults import AwsFaults
from localcloud.resources import names
from tests.integration.stack import Stack

ALARM_EVENT = Path(__file__).resolve().parents[2] / "events/cloudwatch/alarm-state-change-single-metric.json"
STACK_SETTINGS = {"sustain": "1s", "replication_wait_timeout": "3s"}


@pytest.fixture
def fresh(stack: Stack) -> Stack:
    """Each test starts with all traffic on the primary, healthy servers, no state, an empty inbox."""
    return stack.fresh()


def ledger(stack: Stack) -> Ledger:
    return Ledger(names(stack.cloud.stage).ledger_table, stack.cloud.client("dynamodb"))


def test_operator_failover_switches_traffic_and_records_rto(fresh: Stack) -> None:
    # Given all traffic on a healthy primary and a healthy secondary
    assert fresh.weights() == {"primary": 100, "secondary": 0}
    # When an operator starts an (ungraceful) failover
    arn = fresh.start_failover("op-failover-1", requested_by="arn:aws:iam::123456789012:user/alice")
    result = fresh.wait(arn)
    # Then it succeeds, the secondary takes all traffic, and the ledger holds the measured RTO
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert fresh.weights() == {"primary": 0, "secondary": 100}
    entries = ledger(fresh).entries(fresh.plan.workload, kind="failover")
    assert entries[0].outcome == "completed"
    assert "measured RTO" in entries[0].reason
    assert entries[0].actor == "arn:aws:iam::123456789012:user/alice"
    state = ledger(fresh).get_state(fresh.plan.workload)
    assert state.active_region == "us-west-2" and state.last_rto_seconds is not None
    # And the lock is free again, and a notification went out
    assert (
        LockTable(names(fresh.cloud.stage).lock_table, fresh.cloud.client("dynamodb")).current(
            fresh.plan.workload
        )
        is None
    )
    subjects = [m.get("Subject", "") for m in fresh.inbox()]
    assert any("failed over to us-west-2" in s for s in subjects)


def test_unhealthy_backup_refuses_failover_and_leaves_traffic_alone(fresh: Stack) -> None:
    # Given the secondary returns wrong predictions
    fresh.servers["secondary"].set_faults(wrong_answers=True)
    # When a failover is attempted
    result = fresh.wait(fresh.start_failover("op-failover-bad-backup"))
    # Then it is refused, nothing moved, the reason is recorded and notified
    assert result["status"] == "FAILED"
    assert result.get("error") == "FailoverRefused"
    assert fresh.weights() == {"primary": 100, "secondary": 0}
    entry = ledger(fresh).entries(fresh.plan.workload, kind="failover")[0]
    assert entry.outcome == "refused"
    assert "backup unhealthy" in entry.reason
    assert any("refused" in m.get("Subject", "") for m in fresh.inbox())


def test_route53_throttling_is_retried_and_the_failover_completes(fresh: Stack) -> None:
    # Given Route 53 throttles the next 8 ChangeResourceRecordSets calls (more than botocore's own retries)
    faults = AwsFaults()
    rule = faults.throttle("route53", "ChangeResourceRecordSets", 8)
    try:
        # When a failover runs
        result = fresh.wait(fresh.start_failover("op-failover-throttled"), timeout=90)
    finally:
        faults.clear()
    # Then the throttling was met, retried, and the failover still completed
    assert rule.hits == 8
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert fresh.weights() == {"primary": 0, "secondary": 100}


def test_a_crash_after_the_shift_is_recorded_as_failed_over_unvalidated(fresh: Stack) -> None:
    # Given reading the records back fails hard (not retryable) right after the shift: the shift itself
    # lists the records once (to rewrite them), the verification is the second listing
    started = datetime.now(UTC)
    faults = AwsFaults()
    rule = faults.add("route53", "ListResourceRecordSets", 1, status=403, code="AccessDenied", after=1)
    try:
        # When a failover runs
        result = fresh.wait(fresh.start_failover("op-failover-crash"))
    finally:
        faults.clear()
    # Then the run ends "unvalidated", not "failed": traffic did move, and all of it is on the secondary
    assert rule.hits == 1
    assert result["status"] == "FAILED" and result["error"] == "FailoverUnvalidated"
    assert fresh.weights() == {"primary": 0, "secondary": 100}
    entry = ledger(fresh).entries(fresh.plan.workload, kind="failover")[0]
    assert entry.outcome == "unvalidated", entry.reason
    assert "AccessDenied" in entry.reason and "us-west-2 (secondary) serves all users" in entry.reason
    assert entry.detail["traffic_after"] == {"primary": 0, "secondary": 100}
    # And the workload state says what is true: the secondary is active and the cooldown clock started
    state = ledger(fresh).get_state(fresh.plan.workload)
    assert state.active_region == "us-west-2"
    assert state.last_failover_at is not None and state.last_failover_at >= started
    # So the next quorum does not start another failover
    decision = evaluate(alarm_event(fresh.plan), fresh.plan, {}, state, datetime.now(UTC))
    assert decision.action == "suppress" and "already failed over" in decision.reason
    # And people are told which region serves users; the lock is free
    subjects = [m.get("Subject", "") for m in fresh.inbox()]
    assert "[Lifeboat] fraud-scoring: FAILOVER UNVALIDATED - us-west-2 serves users" in subjects, subjects
    assert (
        LockTable(names(fresh.cloud.stage).lock_table, fresh.cloud.client("dynamodb")).current(
            fresh.plan.workload
        )
        is None
    )


def test_a_failure_before_the_shift_changes_nothing_and_says_the_primary_serves(fresh: Stack) -> None:
    # Given the shift's own listing of the records fails hard (not retryable)
    faults = AwsFaults()
    rule = faults.add("route53", "ListResourceRecordSets", 1, status=403, code="AccessDenied")
    try:
        # When a failover runs
        result = fresh.wait(fresh.start_failover("op-failover-no-shift"))
    finally:
        faults.clear()
    # Then it failed, nothing changed, and the ledger and the notification say the primary still serves
    assert rule.hits == 1
    assert result["status"] == "FAILED" and result["error"] == "FailoverFailed"
    assert fresh.weights() == {"primary": 100, "secondary": 0}
    entry = ledger(fresh).entries(fresh.plan.workload, kind="failover")[0]
    assert entry.outcome == "failed" and "us-east-1 (primary) serves all users" in entry.reason
    state = ledger(fresh).get_state(fresh.plan.workload)
    assert state.active_region == "us-east-1" and state.last_failover_at is None
    subjects = [m.get("Subject", "") for m in fresh.inbox()]
    assert "[Lifeboat] fraud-scoring: FAILOVER FAILED - us-east-1 serves users" in subjects, subjects


def alarm_event(plan: DRPlan) -> AlarmStateChange:
    """The documented alarm state change, for one of the plan's trigger alarms, going into ALARM."""
    raw = json.loads(ALARM_EVENT.read_text())
    raw["detail"]["alarmName"] = plan.trigger.alarms[0]
    raw["resources"] = [f"arn:aws:cloudwatch:{raw['region']}:{raw['account']}:alarm:{plan.trigger.alarms[0]}"]
    raw["detail"]["state"] = {**raw["detail"]["state"], "value": "ALARM"}
    return AlarmStateChange.model_validate(raw)


def test_second_operation_while_one_holds_the_lock_is_refused(fresh: Stack) -> None:
    # Given another operation holds the workload's lock
    from datetime import timedelta

    locks = LockTable(names(fresh.cloud.stage).lock_table, fresh.cloud.client("dynamodb"))
    locks.acquire(fresh.plan.workload, "someone-else", "failback", timedelta(minutes=5))
    # When a failover starts
    result = fresh.wait(fresh.start_failover("op-failover-locked"))
    # Then it is refused without touching traffic or the other holder's lock
    assert result["status"] == "FAILED" and result.get("error") == "LockHeld"
    assert fresh.weights() == {"primary": 100, "secondary": 0}
    assert locks.current(fresh.plan.workload).holder == "someone-else"
    assert "locked by failback someone-else" in ledger(fresh).entries(fresh.plan.workload)[0].reason


def test_generated_definition_uses_jsonpath_only_and_every_task_retries_and_catches(stack: Stack) -> None:
    # Given the generated failover definition
    desc = stack.sfn.describe_state_machine(stateMachineArn=stack.resources.state_machines["failover"])
    definition = json.loads(desc["definition"])
    # Then there is no JSONata, every Task has Retry, and every Task but the lock refusal path has a Catch
    assert "QueryLanguage" not in definition
    for name, state in definition["States"].items():
        if state["Type"] == "Task":
            assert state.get("Retry"), name
            if name != "RecordLockRefusal":
                assert state.get("Catch"), name
