"""Gradual failback, generated from the example plan and executed for real by moto's ASL engine.

Tasks run the real Chalice handlers in-process; traffic lives in moto's Route 53, gate alarms in moto's
CloudWatch (scripted with the AlarmSimulator), control state and the ledger in DynamoDB. Operator controls go
through the same service functions the API and the CLI call.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.failback import history_estimate
from chalicelib.services import failback_ops as ops
from lifeboat_cli import main as cli
from localcloud import lambda_runner, sfn_events
from localcloud.alarms import AlarmSimulator
from localcloud.model import make_training_data, train
from localcloud.modelserver import ModelServer
from localcloud.resources import names
from tests.integration.failback_helpers import (
    ON_PRIMARY,
    ON_SECONDARY,
    OPERATOR,
    before_gates,
    deps,
    failback_entries,
    failed_over,
    ledger,
    locks,
    set_alarm,
    subjects,
    wait_for_share,
    wait_for_subject,
    wait_until_waiting,
)
from tests.integration.stack import Stack

pytestmark = pytest.mark.timeout(300)

ERRORS_GATE = "fraud-scoring-use1-errors"
ABORTED_EVENT = (
    Path(__file__).resolve().parents[2] / "events" / "stepfunctions" / "execution-status-change-aborted.json"
)
STACK_SETTINGS = {"bake": "0s", "approval_required": "false"}


def start(stack: Stack) -> str:
    return ops.start_failback(stack.plan.workload, "primary restored", OPERATOR, deps()).execution_arn


def cli_control(action: str, execution: str) -> int:
    """`lifeboat <action> <execution>` against this local cloud (the cloud is already selected)."""
    args = argparse.Namespace(command=action, execution=execution, reason="", json=True)
    return int(cli.cmd_failback_control(args))


def steps_of(stack: Stack, execution: str) -> list[int]:
    return [int(e.detail["primary"]) for e in failback_entries(stack, execution) if e.outcome == "step"]


def outcome_of(stack: Stack, execution: str) -> object:
    return [e for e in failback_entries(stack, execution) if e.outcome != "step"][-1]


def test_happy_path_returns_traffic_in_steps_and_records_the_duration(stack: Stack) -> None:
    # Given a workload failed over to the secondary and a restored, healthy primary serving the same model
    failed_over(stack)
    # When an operator starts a failback
    arn = start(stack)
    result = stack.wait(arn)
    # Then traffic went back through every step of the plan and the primary is active again
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert steps_of(stack, arn) == [10, 25, 50, 100]
    assert stack.weights() == ON_PRIMARY
    state = ledger(stack).get_state(stack.plan.workload)
    assert state.active_region == "us-east-1"
    assert state.last_failback_at is not None and state.last_failback_seconds is not None
    final = outcome_of(stack, arn)
    assert final.outcome == "completed" and "measured duration" in final.reason
    assert final.actor == OPERATOR
    # And the lock is free, people were told, and the history stayed within the documented bound
    assert locks(stack).current(stack.plan.workload) is None
    assert any("failed back to us-east-1" in s for s in subjects(stack))
    history = stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    assert len(history) <= history_estimate(stack.plan.failback)


def test_gate_alarm_at_25_percent_rolls_back_to_the_secondary(stack: Stack) -> None:
    # Given a failback under way with a short bake
    failed_over(stack, bake="1s")
    # When a gate alarm fires while 25% of traffic is on the primary (before that step's gates)
    alarm = AlarmSimulator(stack.cloud, warm_up=False)
    with before_gates(25, lambda: alarm.set_state(ERRORS_GATE, "ALARM", "scripted by the test")) as fired:
        arn = start(stack)
        result = stack.wait(arn)
    lambda_runner.drain()
    assert fired.is_set()
    # Then the failback rolls back: all traffic on the secondary, the primary left at 0, the reason recorded
    assert result["status"] == "FAILED" and result["error"] == "FailbackRolledBack"
    assert stack.weights() == ON_SECONDARY
    assert steps_of(stack, arn) == [10, 25]
    final = outcome_of(stack, arn)
    assert final.outcome == "rolled_back" and ERRORS_GATE in final.reason and "25%" in final.reason
    assert ledger(stack).get_state(stack.plan.workload).active_region == "us-west-2"
    assert locks(stack).current(stack.plan.workload) is None
    assert any("ROLLED BACK" in s for s in subjects(stack))


def test_failing_smoke_test_at_50_percent_rolls_back(stack: Stack) -> None:
    # Given a failback under way with a short bake
    failed_over(stack, bake="1s")
    # When the primary starts returning wrong predictions at the 50% step (before that step's gates)
    with before_gates(50, lambda: stack.servers["primary"].set_faults(wrong_answers=True)) as fired:
        arn = start(stack)
        result = stack.wait(arn)
    assert fired.is_set()
    # Then the failback rolls back and says the smoke tests failed
    assert result["status"] == "FAILED" and result["error"] == "FailbackRolledBack"
    assert stack.weights() == ON_SECONDARY
    assert steps_of(stack, arn) == [10, 25, 50]
    final = outcome_of(stack, arn)
    assert "50%" in final.reason and "smoke tests fail" in final.reason


def test_inconclusive_gate_pauses_for_a_decision_then_resumes(stack: Stack) -> None:
    # Given a gate alarm with no data (INSUFFICIENT_DATA)
    failed_over(stack)
    set_alarm(stack, ERRORS_GATE, "INSUFFICIENT_DATA")
    # When a failback reaches its first gate
    arn = start(stack)
    view = wait_until_waiting(arn, "decision")
    # Then it neither proceeds nor rolls back: it holds 10% and asks a human
    assert ERRORS_GATE in (view.waiting_reason or "")
    assert stack.weights() == {"primary": 10, "secondary": 90}
    wait_for_subject(stack, "needs a decision")
    # When the alarm has data again and the operator resumes (the service the API and CLI call)
    set_alarm(stack, ERRORS_GATE, "OK")
    outcome = ops.resume(arn, OPERATOR, deps(), reason="metrics pipeline fixed")
    result = stack.wait(arn)
    # Then the gates are evaluated again and the failback completes
    assert "evaluated again" in outcome.result
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert steps_of(stack, arn) == [10, 25, 50, 100]
    assert stack.weights() == ON_PRIMARY


def test_rejected_approval_shifts_nothing(stack: Stack) -> None:
    # Given a plan that requires approval
    failed_over(stack, approval_required="true")
    arn = start(stack)
    wait_until_waiting(arn, "approval")
    wait_for_subject(stack, "waits for approval")
    # When the operator rejects it
    ops.reject(arn, OPERATOR, deps(), reason="not during the sale")
    result = stack.wait(arn)
    # Then nothing moved and the rejection is recorded with who and why
    assert result["status"] == "FAILED" and result["error"] == "FailbackRefused"
    assert stack.weights() == ON_SECONDARY
    assert steps_of(stack, arn) == []
    final = outcome_of(stack, arn)
    assert final.outcome == "refused" and OPERATOR in final.reason and "not during the sale" in final.reason


def test_approval_timeout_aborts_safely(stack: Stack) -> None:
    # Given a plan that requires approval within 2 seconds
    failed_over(stack, approval_required="true", approval_timeout="2s")
    # When nobody answers
    arn = start(stack)
    result = stack.wait(arn)
    # Then the failback is aborted, nothing shifted, the lock is free
    assert result["status"] == "FAILED" and result["error"] == "FailbackAborted"
    assert stack.weights() == ON_SECONDARY
    assert outcome_of(stack, arn).outcome == "aborted" and "nothing shifted" in outcome_of(stack, arn).reason
    assert locks(stack).current(stack.plan.workload) is None


def test_approved_failback_proceeds(stack: Stack) -> None:
    # Given a failback waiting for approval
    failed_over(stack, approval_required="true")
    arn = start(stack)
    wait_until_waiting(arn, "approval")
    assert stack.weights() == ON_SECONDARY
    # When the operator approves it with the CLI (`lifeboat approve <execution name>`)
    name = arn.rsplit(":", 1)[-1]
    assert cli_control("approve", name) == 0
    # Then it runs to completion; a second approval is refused (exit 1), an unknown execution is a usage error
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    assert cli_control("approve", name) == 1
    assert cli_control("approve", "failback-no-such-execution") == 2
    with pytest.raises(ops.ControlRefused):
        ops.approve(arn, OPERATOR, deps())


def test_abort_mid_bake_rolls_back_now_and_frees_the_lock(stack: Stack) -> None:
    # Given a failback baking its first step (a long bake)
    failed_over(stack, bake="30s")
    arn = start(stack)
    wait_for_share(stack, 10, arn)
    # When the operator aborts it
    outcome = ops.abort(arn, OPERATOR, deps(), reason="pager went off")
    # Then the execution is stopped, all traffic is back on the secondary, recorded, and the lock is free
    assert outcome.traffic == ON_SECONDARY
    assert stack.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    assert stack.weights() == ON_SECONDARY
    final = outcome_of(stack, arn)
    assert final.outcome == "aborted" and "pager went off" in final.reason and final.actor == OPERATOR
    assert "us-west-2 (secondary) serves all users" in final.reason
    assert locks(stack).current(stack.plan.workload) is None
    # And the janitor, told of the stop, leaves the operator's conclusion alone: one outcome, not two
    sfn_events.wait_for(arn, "ABORTED")
    lambda_runner.drain()
    assert [e.outcome for e in failback_entries(stack, arn) if e.outcome != "step"] == ["aborted"]
    assert ledger(stack).get_state(stack.plan.workload).active_region == "us-west-2"


def test_pause_holds_the_step_until_resumed(stack: Stack) -> None:
    # Given a failback baking its first step
    failed_over(stack, bake="30s")
    arn = start(stack)
    wait_for_share(stack, 10, arn)
    # When the operator pauses it
    ops.pause(arn, OPERATOR, deps())
    wait_until_waiting(arn, "pause")
    # Then traffic holds at 10%, and a resume lets the failback finish
    assert stack.weights() == {"primary": 10, "secondary": 90}
    ops.fast_track(arn, OPERATOR, deps(), reason="looks good, finish it")
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    assert steps_of(stack, arn) == [10, 100]


def test_fast_track_skips_remaining_bake_and_steps_but_still_validates(stack: Stack) -> None:
    # Given a failback baking its first step (a long bake)
    failed_over(stack, bake="30s")
    arn = start(stack)
    wait_for_share(stack, 10, arn)
    # When the operator fast-tracks it
    ops.fast_track(arn, OPERATOR, deps())
    result = stack.wait(arn)
    # Then it goes straight to 100% after the current gate, validates, and completes
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert steps_of(stack, arn) == [10, 100]
    assert stack.weights() == ON_PRIMARY
    assert outcome_of(stack, arn).outcome == "completed"


def test_failback_refused_while_the_primary_serves_another_model_version(stack: Stack) -> None:
    # Given the restored primary serves model 2.0.0 (same predictions, so smoke tests pass) and the
    # secondary serves the original version
    other = ModelServer(train(make_training_data(), version="2.0.0"), region="us-east-1").start()
    try:
        failed_over(stack, primary_url=other.url + "/invocations")
        # When a failback starts
        arn = start(stack)
        result = stack.wait(arn)
    finally:
        other.stop()
    # Then it is refused before anything moves, naming the version mismatch
    assert result["status"] == "FAILED" and result["error"] == "FailbackRefused"
    assert stack.weights() == ON_SECONDARY
    reason = outcome_of(stack, arn).reason
    assert "model mismatch" in reason and "2.0.0" in reason


def test_second_failback_while_one_runs_is_refused_by_the_lock(stack: Stack) -> None:
    # Given a failback baking its first step
    failed_over(stack, bake="30s")
    first = start(stack)
    wait_for_share(stack, 10, first)
    # When a second failback starts
    second = start(stack)
    result = stack.wait(second)
    # Then the second is refused by the lock and the first keeps going
    assert result["status"] == "FAILED" and result["error"] == "LockHeld"
    assert "locked by failback" in outcome_of(stack, second).reason
    assert stack.sfn.describe_execution(executionArn=first)["status"] == "RUNNING"
    assert locks(stack).current(stack.plan.workload).holder == first
    ops.abort(first, OPERATOR, deps())


def test_auto_failback_starts_once_per_healthy_streak(stack: Stack) -> None:
    # Given auto failback with no healthy window, failed over an hour ago (cooldown 10m is over)
    failed_over(stack, auto="true", healthy_window="0s")
    # When the schedule runs
    report = ops.evaluate_auto_failback(deps())
    # Then it starts a failback with a deterministic name, which completes
    arn = report.started[stack.plan.workload]
    assert arn.rsplit(":", 1)[-1].startswith(f"failback-{stack.plan.workload}-")
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    # And the next run starts nothing (not failed over any more)
    again = ops.evaluate_auto_failback(deps())
    assert again.started == {} and "not failed over" in again.decisions[stack.plan.workload]


def test_generated_definition_uses_jsonpath_and_every_task_retries_and_catches(stack: Stack) -> None:
    # Given the generated failback definition (approval on, so every state kind is present)
    failed_over(stack, approval_required="true")
    desc = stack.sfn.describe_state_machine(stateMachineArn=stack.resources.state_machines["failback"])
    definition = json.loads(desc["definition"])
    # Then there is no JSONata; every Task retries and catches; operator waits are bounded; waits are data
    assert "QueryLanguage" not in definition
    for name, state in definition["States"].items():
        if state["Type"] == "Task":
            assert state.get("Retry"), name
            if name != "RecordLockRefusal":
                assert state.get("Catch"), name
            if state["Resource"].endswith(".waitForTaskToken"):
                assert state["TimeoutSeconds"] == 30, name
        if state["Type"] == "Wait":
            assert "SecondsPath" in state, name


def test_a_failback_stopped_outside_lifeboat_is_cleaned_up_by_the_janitor(stack: Stack) -> None:
    # Given a failback baking its first step (10% of traffic on the primary)
    failed_over(stack, bake="30s")
    arn = start(stack)
    wait_for_share(stack, 10, arn)
    # When someone stops the execution directly (StopExecution: no Catch runs, so no Conclude, no ReleaseLock)
    stack.sfn.stop_execution(executionArn=arn, error="Manual", cause="stopped from the console")
    sent = sfn_events.wait_for(arn, "ABORTED")
    lambda_runner.drain()  # the janitor's run on the status change
    # (the local cloud sent the status change in the documented shape, as Step Functions does)
    assert set(sent) - {"id"} == set(json.loads(ABORTED_EVENT.read_text())["detail"])
    # Then the janitor released the lock the run held
    assert locks(stack).current(stack.plan.workload) is None
    # And the ledger says what is true: traffic is split, so no region is recorded as serving everything
    assert stack.weights() == {"primary": 10, "secondary": 90}
    assert ledger(stack).get_state(stack.plan.workload).active_region is None
    final = outcome_of(stack, arn)
    assert final.outcome == "stopped" and final.actor == "lifeboat"
    assert final.detail["traffic_after"] == {"primary": 10, "secondary": 90}
    assert "its lock was released" in final.reason
    assert "traffic is SPLIT: 10% on us-east-1 (primary), 90% on us-west-2 (secondary)" in final.reason
    # And people are told which region serves users
    wait_for_subject(stack, "failback STOPPED - TRAFFIC SPLIT")
    # When EventBridge delivers the same status change again (it delivers at least once)
    errored, outcome = invoke_janitor(stack, status_change(arn, stack.resources.state_machines["failback"]))
    # Then the janitor finds the run concluded already: nothing is recorded or notified twice
    assert not errored, outcome
    assert (outcome["action"], outcome["concluded_by"]) == ("cleaned", "janitor")
    assert [e.outcome for e in failback_entries(stack, arn) if e.outcome != "step"] == ["stopped"]
    assert not any("STOPPED" in s for s in subjects(stack))


def status_change(execution: str, machine: str) -> dict[str, Any]:
    """The documented ABORTED status-change event, about `execution` of `machine`."""
    event = json.loads(ABORTED_EVENT.read_text())
    event["resources"] = [execution]
    event["detail"].update(
        executionArn=execution,
        stateMachineArn=machine,
        name=execution.rsplit(":", 1)[-1],
        input=json.dumps({"workload": "fraud-scoring"}),
    )
    return dict(event)


def invoke_janitor(stack: Stack, event: dict[str, Any]) -> tuple[bool, Any]:
    resp = stack.cloud.client("lambda").invoke(
        FunctionName=names(stack.cloud.stage).function("on_execution_end"), Payload=json.dumps(event).encode()
    )
    return "FunctionError" in resp, json.loads(resp["Payload"].read())
