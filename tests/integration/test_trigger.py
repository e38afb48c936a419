"""Alarm state changes -> the on_alarm handler (via EventBridge) -> trigger policy -> failover execution."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.ledger import Ledger
from localcloud import lambda_runner, sfn_events
from localcloud.alarms import AlarmSimulator
from localcloud.resources import names
from tests.integration.failback_helpers import locks, reconfigure, wait_for
from tests.integration.stack import Stack

EVENT = json.loads(
    (
        Path(__file__).resolve().parents[2] / "events/cloudwatch/alarm-state-change-single-metric.json"
    ).read_text()
)
ERRORS, LATENCY, CANARY = (
    "fraud-scoring-use1-errors",
    "fraud-scoring-use1-latency",
    "fraud-scoring-use1-canary",
)
STACK_SETTINGS = {"sustain": "2s", "cooldown": "10m", "replication_wait_timeout": "3s"}


@pytest.fixture
def sim(stack: Stack) -> Iterator[AlarmSimulator]:
    """Alarms scripted by hand (no canary): each test starts with every alarm OK and a clean ledger."""
    stack.reset_traffic()
    stack.clear_tables("ledger", "locks", "idempotency")
    simulator = AlarmSimulator(stack.cloud, warm_up=False)
    for alarm in (ERRORS, LATENCY, CANARY):
        simulator.set_state(alarm, "OK", "test reset")
    lambda_runner.drain()
    # What late deliveries of the previous test wrote: entries and state, and claims (in the lock table)
    stack.clear_tables("ledger", "locks")
    yield simulator


def ledger(stack: Stack) -> Ledger:
    return Ledger(names(stack.cloud.stage).ledger_table, stack.cloud.client("dynamodb"))


def executions(stack: Stack) -> list[dict[str, Any]]:
    arn = stack.resources.state_machines["failover"]
    return stack.sfn.list_executions(stateMachineArn=arn)["executions"]


def wait_all(stack: Stack, timeout: float = 60) -> list[dict[str, Any]]:
    lambda_runner.drain()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = executions(stack)
        if all(r["status"] != "RUNNING" for r in runs):
            return runs
        time.sleep(0.2)
    raise AssertionError("executions still running")


def test_quorum_held_for_the_sustain_window_fails_over(stack: Stack, sim: AlarmSimulator) -> None:
    # Given two of the three trigger alarms go into ALARM (the quorum is 2) and stay there
    before = {r["executionArn"] for r in executions(stack)}
    sim.set_state(ERRORS, "ALARM", "canary errors")
    lambda_runner.drain()
    sim.set_state(CANARY, "ALARM", "canary failing")
    # When the sustain window passes (the primary really is down, so the confirmation probe agrees)
    stack.servers["primary"].set_faults(down=True)
    runs = [r for r in wait_all(stack) if r["executionArn"] not in before]
    # Then exactly one failover ran and succeeded; traffic is on the secondary; RTO measured from the alarms
    assert len(runs) == 1, runs
    desc = stack.sfn.describe_execution(executionArn=runs[0]["executionArn"])
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    assert stack.weights() == {"primary": 0, "secondary": 100}
    outcomes = [(e.kind, e.outcome) for e in ledger(stack).entries(stack.plan.workload)]
    assert ("decision", "suppressed") in outcomes  # the first alarm alone: quorum not met
    assert ("decision", "started") in outcomes
    assert ("failover", "completed") in outcomes
    rto = ledger(stack).get_state(stack.plan.workload).last_rto_seconds
    assert rto is not None and rto >= 2.0  # at least the sustain window


def test_a_healthy_primary_on_the_confirmation_probe_suppresses_the_failover(
    stack: Stack, sim: AlarmSimulator
) -> None:
    # Given the quorum forms but the primary still answers correctly (false positive alarms)
    before = {r["executionArn"] for r in executions(stack)}
    sim.set_state(ERRORS, "ALARM", "flaky metric")
    sim.set_state(LATENCY, "ALARM", "flaky metric")
    runs = [r for r in wait_all(stack) if r["executionArn"] not in before]
    # Then the execution ends without failing over and the reason is recorded
    assert len(runs) == 1
    assert stack.weights() == {"primary": 100, "secondary": 0}
    entry = ledger(stack).entries(stack.plan.workload, kind="failover")[0]
    assert entry.outcome == "suppressed" and "confirmation probe" in entry.reason


def test_flapping_alarm_shorter_than_the_sustain_window_never_fails_over(
    stack: Stack, sim: AlarmSimulator
) -> None:
    # Given the primary is really down, but one of the quorum's alarms flaps ALARM/OK faster than the window
    stack.servers["primary"].set_faults(down=True)
    before = {r["executionArn"] for r in executions(stack)}
    sim.set_state(CANARY, "ALARM", "canary failing")
    for _ in range(4):
        sim.set_state(ERRORS, "ALARM", "errors")
        time.sleep(0.6)
        sim.set_state(ERRORS, "OK", "errors cleared")
        time.sleep(0.6)
    runs = [r for r in wait_all(stack) if r["executionArn"] not in before]
    # Then no failover happened; every pending decision was cancelled or suppressed
    assert stack.weights() == {"primary": 100, "secondary": 0}
    assert all(r["status"] != "SUCCEEDED" or _suppressed(stack, r) for r in runs)
    outcomes = {e.outcome for e in ledger(stack).entries(stack.plan.workload, limit=200)}
    assert "completed" not in outcomes
    assert "cancelled" in outcomes or "suppressed" in outcomes


def invoke_on_alarm(stack: Stack, event: Any) -> tuple[bool, Any]:
    """Deliver an event straight to the function, as EventBridge's at-least-once retries do."""
    resp = stack.cloud.client("lambda").invoke(
        FunctionName=names(stack.cloud.stage).function("on_alarm"), Payload=json.dumps(event).encode()
    )
    return "FunctionError" in resp, json.loads(resp["Payload"].read())


def _suppressed(stack: Stack, run: dict[str, Any]) -> bool:
    history = stack.sfn.get_execution_history(executionArn=run["executionArn"])["events"]
    return any((e.get("stateEnteredEventDetails") or {}).get("name") == "NotNeeded" for e in history)


def test_duplicate_storm_starts_exactly_one_execution(stack: Stack, sim: AlarmSimulator) -> None:
    # Given the quorum already holds
    stack.servers["primary"].set_faults(down=True)
    sim.set_state(CANARY, "ALARM", "canary failing")
    before = {r["executionArn"] for r in executions(stack)}
    transition = sim.set_state(ERRORS, "ALARM", "errors")
    assert transition is not None
    # When EventBridge delivers the same event 100 more times
    for _ in range(100):
        invoke_on_alarm(stack, copy.deepcopy(transition.event))
    runs = [r for r in wait_all(stack) if r["executionArn"] not in before]
    # Then exactly one failover execution exists for that quorum
    assert len(runs) == 1, [r["name"] for r in runs]


def test_quorum_not_met_is_recorded_and_starts_nothing(stack: Stack, sim: AlarmSimulator) -> None:
    before = {r["executionArn"] for r in executions(stack)}
    # Given only one of the three alarms fires
    sim.set_state(LATENCY, "ALARM", "slow")
    lambda_runner.drain()
    # Then nothing starts and the ledger says why
    assert [r for r in executions(stack) if r["executionArn"] not in before] == []
    entry = ledger(stack).entries(stack.plan.workload)[0]
    assert entry.outcome == "suppressed" and "quorum not met: 1 of 3" in entry.reason


def test_cooldown_after_a_failover_suppresses_a_new_one(stack: Stack, sim: AlarmSimulator) -> None:
    # Given a failover completed moments ago and traffic was moved back by hand
    from datetime import UTC, datetime

    ledger(stack).update_state(
        stack.plan.workload, last_failback_at=datetime.now(UTC), active_region="us-east-1"
    )
    before = {r["executionArn"] for r in executions(stack)}
    # When the quorum forms again
    sim.set_state(ERRORS, "ALARM", "errors")
    sim.set_state(CANARY, "ALARM", "canary")
    lambda_runner.drain()
    # Then nothing starts: the decision is suppressed for the cooldown
    assert [r for r in executions(stack) if r["executionArn"] not in before] == []
    assert "cooldown" in ledger(stack).entries(stack.plan.workload)[0].reason


@pytest.mark.parametrize(
    "raw",
    [
        "not json at all",
        {"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch"},
        {**EVENT, "detail": {"alarmName": ERRORS}},
        {**EVENT, "detail": {**EVENT["detail"], "alarmName": ERRORS, "state": {"value": 42}}},
        {**EVENT, "detail": {**EVENT["detail"], "alarmName": "x" * 100_000}},
        {**EVENT, "detail": {**EVENT["detail"], "alarmName": "someone-elses-alarm"}},
    ],
)
def test_garbage_events_never_start_anything_and_never_crash(
    stack: Stack, sim: AlarmSimulator, raw: Any
) -> None:
    before = {r["executionArn"] for r in executions(stack)}
    # When the handler receives a malformed or foreign event
    errored, payload = invoke_on_alarm(stack, raw)
    # Then it answers (no crash, so no retry loop), rejects or ignores it, and starts nothing
    assert not errored, payload
    if not (isinstance(raw, dict) and raw.get("detail", {}).get("alarmName") == "someone-elses-alarm"):
        assert payload["rejected"]
    assert [r for r in executions(stack) if r["executionArn"] not in before] == []


def test_a_failover_cancelled_in_its_sustain_window_holds_nothing_and_the_next_quorum_fails_over(
    stack: Stack, sim: AlarmSimulator
) -> None:
    # Given a sustain window long enough that the cancel below always lands inside it, and a primary that
    # really is down (the confirmation probe agrees when the time comes)
    reconfigure(stack, sustain="6s", cooldown="10m", replication_wait_timeout="3s")
    try:
        stack.servers["primary"].set_faults(down=True)
        before = {r["executionArn"] for r in executions(stack)}
        # When the quorum forms (a failover starts and waits out its window) and one alarm clears (a flap)
        sim.set_state(CANARY, "ALARM", "canary failing")
        sim.set_state(ERRORS, "ALARM", "errors")
        cancelled = wait_for(
            lambda: ledger(stack).get_state(stack.plan.workload).pending_execution,
            what="the trigger to start a pending failover",
        )
        sim.set_state(ERRORS, "OK", "errors cleared")
        sfn_events.wait_for(cancelled, "ABORTED")
        lambda_runner.drain()  # the janitor's run on the status change
        # Then the trigger stopped it while it waited, before it ever took the lock: nothing is held
        history = stack.sfn.get_execution_history(executionArn=cancelled, maxResults=1000)["events"]
        entered = [(e.get("stateEnteredEventDetails") or {}).get("name") for e in history]
        assert "WaitSustain" in entered and "AcquireLock" not in entered, entered
        assert locks(stack).current(stack.plan.workload) is None
        assert ledger(stack).get_state(stack.plan.workload).pending_execution is None
        # And the cancel is its conclusion: the janitor records no second outcome for it
        assert ledger(stack).concluded_by(stack.plan.workload, cancelled) == "trigger"
        recorded = {
            (e.kind, e.outcome)
            for e in ledger(stack).entries(stack.plan.workload)
            if e.execution == cancelled
        }
        assert recorded == {("decision", "started"), ("decision", "cancelled")}, recorded
        # When the outage goes on and the quorum forms again
        sim.set_state(ERRORS, "ALARM", "errors again")
        runs = [r for r in wait_all(stack) if r["executionArn"] not in before | {cancelled}]
        # Then the new failover takes the lock and completes: traffic is on the secondary, the lock free
        assert len(runs) == 1, runs
        desc = stack.sfn.describe_execution(executionArn=runs[0]["executionArn"])
        assert desc["status"] == "SUCCEEDED", desc.get("cause")
        assert stack.weights() == {"primary": 0, "secondary": 100}
        assert locks(stack).current(stack.plan.workload) is None
        assert ledger(stack).get_state(stack.plan.workload).active_region == "us-west-2"
    finally:
        reconfigure(stack, sustain="2s", cooldown="10m", replication_wait_timeout="3s")


CAPTURED = Path(__file__).resolve().parents[2] / "events/cloudwatch"


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def test_fifty_concurrent_copies_of_one_event_give_no_function_error(
    stack: Stack, sim: AlarmSimulator
) -> None:
    # Given the quorum holds (one failover started for it)
    stack.servers["primary"].set_faults(down=True)
    sim.set_state(CANARY, "ALARM", "canary failing")
    before = {r["executionArn"] for r in executions(stack)}
    transition = sim.set_state(ERRORS, "ALARM", "errors")
    assert transition is not None
    # When 50 copies of one new delivery of that state change arrive at the same moment
    event = {**copy.deepcopy(transition.event), "id": f"storm-{uuid.uuid4()}"}
    barrier = threading.Barrier(50)

    def deliver(_: int) -> tuple[bool, Any]:
        barrier.wait()
        return invoke_on_alarm(stack, copy.deepcopy(event))

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(deliver, range(50)))
    # Then none is a function error (EventBridge would retry it and the error alarm would page): each is
    # the decision, or "duplicate, in progress" while another copy held the event
    assert [payload for errored, payload in answers if errored] == []
    for _, payload in answers:
        assert payload["decisions"] or "in progress" in (payload.get("duplicate") or ""), payload
    # And the quorum started exactly one failover
    runs = [r for r in wait_all(stack) if r["executionArn"] not in before]
    assert len(runs) == 1, [r["name"] for r in runs]


def test_a_muted_alarm_never_completes_the_quorum(stack: Stack, sim: AlarmSimulator) -> None:
    # Given one trigger alarm in ALARM (the quorum is 2)
    sim.set_state(CANARY, "ALARM", "canary failing")
    lambda_runner.drain()
    before = {r["executionArn"] for r in executions(stack)}
    # When a second alarm goes into ALARM while a mute rule mutes it (the documented muted event, about it)
    cloudwatch = stack.cloud.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName=ERRORS, StateValue="ALARM", StateReason="muted")
    # The event carries the time of that state change, as CloudWatch's does (an earlier stamp would be an
    # older event, which the state read from CloudWatch rightly overrides)
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[ERRORS])["MetricAlarms"]
    now = alarm["StateUpdatedTimestamp"].astimezone(UTC)
    event = json.loads((CAPTURED / "alarm-state-change-muted.json").read_text())
    event.update(
        id=f"muted-{uuid.uuid4()}",
        account=stack.cloud.account_id,
        resources=[f"arn:aws:cloudwatch:us-east-1:{stack.cloud.account_id}:alarm:{ERRORS}"],
    )
    event["detail"]["alarmName"] = ERRORS
    event["detail"]["state"]["timestamp"] = _stamp(now)
    event["detail"]["muteDetail"].update(
        muteWindowStart=_stamp(now - timedelta(minutes=5)), muteWindowEnd=_stamp(now + timedelta(hours=1))
    )
    errored, payload = invoke_on_alarm(stack, event)
    # Then nothing starts, and the ledger records the decision as muted, naming the rule
    assert not errored and [d["action"] for d in payload["decisions"]] == ["mute"], payload
    assert [r for r in executions(stack) if r["executionArn"] not in before] == []
    entry = ledger(stack).entries(stack.plan.workload)[0]
    assert entry.outcome == "muted" and "testMute" in entry.reason and entry.detail["mute"]


def test_an_alarm_invoking_lambda_directly_goes_through_the_same_policy(
    stack: Stack, sim: AlarmSimulator
) -> None:
    # Given one trigger alarm in ALARM, and a second one in ALARM in CloudWatch
    sim.set_state(CANARY, "ALARM", "canary failing")
    lambda_runner.drain()
    before = {r["executionArn"] for r in executions(stack)}
    stack.cloud.client("cloudwatch").set_alarm_state(AlarmName=ERRORS, StateValue="ALARM", StateReason="test")
    # When that second alarm's Lambda action invokes Lifeboat (the documented payload, about it)
    payload = json.loads((CAPTURED / "alarm-action-metric.json").read_text())
    payload.update(
        accountId=stack.cloud.account_id,
        alarmArn=f"arn:aws:cloudwatch:us-east-1:{stack.cloud.account_id}:alarm:{ERRORS}",
        time=_stamp(datetime.now(UTC)),
    )
    payload["alarmData"]["alarmName"] = ERRORS
    payload["alarmData"]["state"]["timestamp"] = _stamp(datetime.now(UTC))
    resp = stack.cloud.client("lambda").invoke(
        FunctionName=names(stack.cloud.stage).function("on_alarm_action"),
        Payload=json.dumps(payload).encode(),
    )
    answer = json.loads(resp["Payload"].read())
    # Then the quorum is judged as for an EventBridge event: a failover starts, recorded with the event id
    assert "FunctionError" not in resp, answer
    assert [d["action"] for d in answer["decisions"]] == ["start"], answer
    assert answer["event_id"].startswith("alarm-action-")
    started = [e for e in ledger(stack).entries(stack.plan.workload) if e.outcome == "started"]
    assert started and started[0].detail["event_id"] == answer["event_id"]
    # And a second delivery of the same payload (CloudWatch and Lambda retry) starts nothing more
    again = stack.cloud.client("lambda").invoke(
        FunctionName=names(stack.cloud.stage).function("on_alarm_action"),
        Payload=json.dumps(payload).encode(),
    )
    assert json.loads(again["Payload"].read())["event_id"] == answer["event_id"]
    runs = [r for r in wait_all(stack) if r["executionArn"] not in before]
    assert len(runs) == 1, [r["name"] for r in runs]
