"""The two alarm entries (EventBridge state changes, an alarm's Lambda action) on the real captured events in
events/cloudwatch/: mute rules, envelope limits, hollow events, duplicates in progress, and any input at all.

The trigger service runs for real; what it calls (plans, ledger, CloudWatch, Step Functions, the idempotency
guard) are in-memory fakes, so nothing here opens a socket.
"""

from __future__ import annotations

import copy
import io
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.alarms import AlarmReadings
from chalicelib.adapters.idempotency import InProgress
from chalicelib.adapters.plan_store import DirectoryPlanStore
from chalicelib.domain import triggers
from chalicelib.models.alarms import AlarmActionPayload, AlarmSnapshot, AlarmStateChange, AlarmStateValue
from chalicelib.models.envelope import MAX_EVENT_BYTES, json_size_over
from chalicelib.models.ledger import WorkloadState
from chalicelib.observability import logger
from chalicelib.services import trigger
from chalicelib.services.deps import Deps

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events" / "cloudwatch"
W = "fraud-scoring"
ERRORS, LATENCY, CANARY = (
    "fraud-scoring-use1-errors",
    "fraud-scoring-use1-latency",
    "fraud-scoring-use1-canary",
)
ACCOUNT = "123456789012"
NOW = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)  # inside the documented mute window (10:00-12:00)


def captured(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def as_plan_alarm(
    raw: dict[str, Any], alarm: str, *, at: datetime = NOW, value: str = "ALARM"
) -> dict[str, Any]:
    """A captured state change, about one of the plan's alarms at `at` (everything else as AWS wrote it)."""
    event = copy.deepcopy(raw)
    event["detail"]["alarmName"] = alarm
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{alarm}"]
    event["id"] = f"{alarm}-{value}-{at.isoformat()}"
    event["detail"]["state"].update(value=value, timestamp=at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000")
    return event


def muted_event(alarm: str = ERRORS) -> dict[str, Any]:
    """The documented muted state change (events/cloudwatch/alarm-state-change-muted.json), its alarm one of
    the plan's, changing state inside the documented mute window."""
    return as_plan_alarm(captured("alarm-state-change-muted.json"), alarm)


def plain_event(alarm: str, at: datetime = NOW, value: str = "ALARM") -> dict[str, Any]:
    return as_plan_alarm(captured("alarm-state-change-single-metric.json"), alarm, at=at, value=value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=40,
)


# -- fakes ----------------------------------------------------------------------------------------------
@dataclass
class FakeLedger:
    state: WorkloadState = field(default_factory=lambda: WorkloadState(workload=W, active_region="us-east-1"))
    claims: set[str] = field(default_factory=set)
    records: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    def get_state(self, workload: str) -> WorkloadState:
        return self.state

    def claim(self, workload: str, key: str, **_: Any) -> bool:
        if key in self.claims:
            return False
        self.claims.add(key)
        return True

    def release_claim(self, workload: str, key: str) -> None:
        self.claims.discard(key)

    def record(self, workload: str, kind: str, outcome: str, reason: str, **kw: Any) -> None:
        self.records.append((kind, outcome, reason, kw.get("detail") or {}))

    def update_state(self, workload: str, **kw: Any) -> None:
        self.state = self.state.model_copy(update={k: v for k, v in kw.items() if k != "current"})

    def mark_concluded(self, *args: Any) -> bool:
        return True


@dataclass
class FakeAlarms:
    """CloudWatch as DescribeAlarms reads it: states only (it says nothing about mute rules)."""

    states: dict[str, tuple[AlarmStateValue, datetime]] = field(default_factory=dict)

    def read(self, names_by_region: dict[str, list[str]]) -> AlarmReadings:
        names = [n for group in names_by_region.values() for n in group]
        quiet: tuple[AlarmStateValue, datetime] = ("OK", NOW - timedelta(hours=1))
        readings = AlarmReadings()
        for name in names:
            state, since = self.states.get(name, quiet)
            readings.snapshots.append(AlarmSnapshot(name=name, state=state, since=since))
        return readings


@dataclass
class FakeExecutions:
    started: list[str] = field(default_factory=list)

    def start(self, workload: str, kind: str, name: str, payload: dict[str, Any]) -> tuple[str, bool]:
        self.started.append(name)
        return f"arn:aws:states:us-west-2:{ACCOUNT}:execution:lifeboat-dev-{workload}-{kind}:{name}", True

    def stop(self, arn: str, cause: str) -> bool:
        return True


class BusyGuard:
    """The idempotency guard while another invocation holds the event's record."""

    def guard(self, table: str, prefix: str, handler: Any) -> Any:
        class Guard:
            def register_lambda_context(self, context: Any) -> None: ...

            def __call__(self, *, event: dict[str, Any], **kw: Any) -> dict[str, Any]:
                raise InProgress("Execution already in progress with idempotency key")

        return Guard()


def deps(alarms: FakeAlarms | None = None) -> Deps:
    d = Deps(
        plans=DirectoryPlanStore(ROOT / "plans"),
        ledger=FakeLedger(),  # type: ignore[arg-type]
        locks=None,  # type: ignore[arg-type]
        router=None,  # type: ignore[arg-type]
        endpoints=None,  # type: ignore[arg-type]
        notifier=None,  # type: ignore[arg-type]
        alarms=alarms or FakeAlarms(),  # type: ignore[arg-type]
        executions=FakeExecutions(),  # type: ignore[arg-type]
        clock=lambda: NOW,
    )
    return d


def handle(raw: Any, d: Deps) -> trigger.AlarmOutcome:
    return trigger.on_alarm_event(raw, d, idempotency_table=None)


# -- mute rules -----------------------------------------------------------------------------------------
def test_a_muted_alarm_is_recorded_as_muted_and_never_completes_a_quorum() -> None:
    # Given one trigger alarm already in ALARM (the quorum is 2 of 3)
    d = deps(FakeAlarms({CANARY: ("ALARM", NOW - timedelta(minutes=1))}))
    # When a second alarm goes into ALARM while a mute rule mutes it (the documented muted event)
    outcome = handle(muted_event(ERRORS), d)
    # Then nothing starts: the decision is "mute", and the ledger records it as muted with the rule
    (decision,) = outcome.decisions
    assert decision.action == "mute" and decision.quorum.muted == [ERRORS]
    assert decision.quorum.in_alarm == [CANARY] and not decision.quorum.met
    assert "muted by rule testMute" in decision.reason
    assert d.executions.started == []  # type: ignore[attr-defined]
    ((kind, recorded, _, detail),) = d.ledger.records  # type: ignore[attr-defined]
    assert (kind, recorded) == ("decision", "muted")
    assert detail["mute"]["muted_by"].endswith(":alarm-mute-rule:testMute")


def test_the_same_alarm_unmuted_completes_the_quorum_and_starts_a_failover() -> None:
    # Given the same situation without the mute rule
    d = deps(FakeAlarms({CANARY: ("ALARM", NOW - timedelta(minutes=1))}))
    event = muted_event(ERRORS)
    del event["detail"]["muteDetail"]
    # When the alarm goes into ALARM / Then the quorum holds and a failover starts
    (decision,) = handle(event, d).decisions
    assert decision.action == "start" and decision.quorum.met
    assert len(d.executions.started) == 1  # type: ignore[attr-defined]


def test_a_muted_alarm_does_not_stop_a_quorum_the_other_alarms_hold() -> None:
    # Given two unmuted alarms in ALARM: the quorum holds without the muted one
    d = deps(
        FakeAlarms(
            {CANARY: ("ALARM", NOW - timedelta(minutes=2)), LATENCY: ("ALARM", NOW - timedelta(minutes=1))}
        )
    )
    # When a third, muted, alarm goes into ALARM
    (decision,) = handle(muted_event(ERRORS), d).decisions
    # Then the quorum stands on the two others (the muted one is listed, not counted)
    assert decision.action == "start"
    assert decision.quorum.in_alarm == [CANARY, LATENCY] and decision.quorum.muted == [ERRORS]


def test_a_mute_window_that_does_not_cover_the_state_change_mutes_nothing() -> None:
    # Given the documented muted event exactly as AWS shows it: a state change in 2019, a window in 2026
    raw = captured("alarm-state-change-muted.json")
    change = AlarmStateChange.model_validate(raw)
    # Then the mute detail is read, but the change happened outside its window: the alarm counts
    assert change.detail.mute_detail is not None and change.detail.mute is None
    snapshots = triggers.merge_snapshots([], change)
    assert snapshots["ServerCpuTooHigh"].muted_by is None


# -- envelope limits and hollow events -------------------------------------------------------------------
def test_an_event_over_eventbridges_size_limit_is_refused_before_it_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an otherwise valid event padded past 256 KB
    event = plain_event(ERRORS)
    event["detail"]["configuration"]["description"] = "x" * MAX_EVENT_BYTES

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the oversize event was parsed")

    monkeypatch.setattr(AlarmStateChange, "model_validate", never)
    # When it arrives (the functions' log lines read from the logger's own handler, as Lambda writes them:
    # the powertools logger does not propagate, so pytest's capture would depend on what ran before)
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        outcome = handle(event, deps())
    finally:
        handler.setStream(previous)
    # Then it is rejected without being parsed, with one short log line
    assert outcome.rejected and "larger than 262144 bytes" in outcome.rejected and outcome.decisions == []
    lines = [
        ln for ln in buffer.getvalue().splitlines() if json.loads(ln).get("message") == "rejected alarm event"
    ]
    (line,) = lines
    assert len(line) < 2000


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda e: e.update(resources=[]), "resources"),
        (lambda e: e.pop("resources"), "resources"),
        (lambda e: e.update(resources=["arn:aws:cloudwatch:us-east-1:123456789012:alarm:other"]), "ARN"),
        (lambda e: e.update(resources=[f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{ERRORS}"]), "ARN"),
        (lambda e: e.update(resources=[f"arn:aws:cloudwatch:us-east-1:999999999999:alarm:{ERRORS}"]), "ARN"),
        (lambda e: e.pop("account"), "account"),
        (lambda e: e.update(account=""), "account"),
        (lambda e: e.pop("region"), "region"),
        (lambda e: e.update(region="US EAST"), "region"),
        (lambda e: e.update(id=""), "id"),
    ],
)
def test_a_hollow_event_is_rejected_naming_what_is_missing(mutate: Any, words: str) -> None:
    # Given a captured event that would complete the quorum, with a field the policy relies on broken
    d = deps(FakeAlarms({CANARY: ("ALARM", NOW - timedelta(minutes=1))}))
    event = plain_event(ERRORS)
    mutate(event)
    # When it arrives / Then it is rejected with the reason, and nothing starts
    outcome = handle(event, d)
    assert outcome.rejected and words in outcome.rejected, outcome.rejected
    assert d.executions.started == []  # type: ignore[attr-defined]


@given(json_values | st.text(), st.integers(min_value=0, max_value=2000))
@settings(max_examples=300, deadline=None)
def test_the_size_measure_agrees_with_the_json_text(value: Any, limit: int) -> None:
    # Given any JSON value and any limit
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    real = len(text.encode("utf-8", "surrogatepass"))
    # When it is measured / Then it is over the limit exactly when its compact JSON text is
    for bound in (limit, real - 1, real):
        assert (json_size_over(value, bound) is not None) == (real > bound)


def test_the_size_measure_stops_early_on_huge_and_deep_values() -> None:
    # Given values far larger or deeper than any event
    huge = {"a": ["x" * 1000] * 1_000_000}
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    # When measured / Then the huge one is refused after counting a sliver of its ~1 GB (the walk stops at
    # the limit), and the deep one is judged without recursion
    counted = json_size_over(huge)
    assert counted is not None and counted < 1_000_000 * 1000 // 100
    assert json_size_over(deep) is None and json_size_over(deep, 1000) is not None


# -- an alarm's Lambda action ---------------------------------------------------------------------------
def action_payload(alarm: str = ERRORS, at: datetime = NOW) -> dict[str, Any]:
    """The documented Lambda alarm action payload (events/cloudwatch/alarm-action-metric.json), about one
    of the plan's alarms."""
    raw = captured("alarm-action-metric.json")
    raw.update(accountId=ACCOUNT, alarmArn=f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{alarm}")
    raw["alarmData"]["alarmName"] = alarm
    raw["alarmData"]["state"]["timestamp"] = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return raw


def test_the_documented_alarm_action_payload_becomes_the_same_state_change() -> None:
    # Given the payload exactly as AWS documents it
    payload = AlarmActionPayload.model_validate(captured("alarm-action-metric.json"))
    # When it is turned into a state change
    change = AlarmStateChange.model_validate(payload.to_state_change())
    # Then it names the same alarm, state and time, and its id is the same for every delivery
    assert change.detail.alarm_name == "lambda-demo-metric-alarm" and change.detail.state.value == "ALARM"
    assert change.region == "us-east-1" and change.account == "444455556666"
    again = AlarmActionPayload.model_validate(captured("alarm-action-metric.json"))
    assert change.id == again.event_id() and change.id.startswith("alarm-action-")


def test_an_alarm_action_goes_through_the_same_trigger_policy() -> None:
    # Given the quorum needs one more alarm
    d = deps(FakeAlarms({CANARY: ("ALARM", NOW - timedelta(minutes=1))}))
    # When that alarm's Lambda action invokes the function
    outcome = trigger.on_alarm_action(action_payload(ERRORS), d, idempotency_table=None)
    # Then the decision is the one the EventBridge event would have given: a failover starts
    (decision,) = outcome.decisions
    assert decision.action == "start" and outcome.rejected is None
    assert d.executions.started == [decision.execution_name]  # type: ignore[attr-defined]


def test_the_documented_composite_action_payload_is_refused_for_naming_two_alarms() -> None:
    # Given the documented composite example, whose alarmArn (SuppressionDemo.Main) and alarmName
    # (CompositeDemo.Main) disagree
    outcome = trigger.on_alarm_action(captured("alarm-action-composite.json"), deps(), idempotency_table=None)
    # Then it is rejected naming the mismatch, never acted on
    assert outcome.rejected and "alarmArn" in outcome.rejected and outcome.decisions == []


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (captured("alarm-state-change-single-metric.json"), "EventBridge event"),
        ({"source": "aws.cloudwatch"}, "alarmArn"),
        ({**captured("alarm-action-metric.json"), "source": "aws.ec2"}, "source"),
        ([1, 2, 3], "not a JSON object"),
    ],
)
def test_what_is_not_an_alarm_action_is_rejected(raw: Any, words: str) -> None:
    outcome = trigger.on_alarm_action(raw, deps(), idempotency_table=None)
    assert outcome.rejected and words in outcome.rejected, outcome.rejected


# -- duplicates in flight -------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", ["eventbridge", "alarm-action"])
def test_a_copy_of_an_event_another_invocation_is_handling_is_a_clean_duplicate(entry: str) -> None:
    # Given another invocation holds the event's idempotency record
    d = deps()
    d.idempotency = BusyGuard()  # type: ignore[assignment]
    # When a copy arrives
    if entry == "eventbridge":
        outcome = trigger.on_alarm_event(plain_event(ERRORS), d, idempotency_table="t")
    else:
        outcome = trigger.on_alarm_action(action_payload(ERRORS), d, idempotency_table="t")
    # Then it answers "duplicate, in progress" (no exception, so no function error and no retry)
    assert outcome.duplicate and "in progress" in outcome.duplicate
    assert outcome.rejected is None and outcome.decisions == []


# -- any input at all -----------------------------------------------------------------------------------
FIELDS = ["id", "account", "region", "resources", "time", "source", "detail-type", "version", "detail"]


@given(st.one_of(json_values, st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=9)))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_json_value_gives_a_typed_outcome(raw: Any) -> None:
    # Given anything at all as an EventBridge event or an alarm action's payload
    for entry in (trigger.on_alarm_event, trigger.on_alarm_action):
        # When it is handled / Then an outcome comes back, never an exception (a hang meets pytest-timeout)
        outcome = entry(raw, deps(), idempotency_table=None)
        assert isinstance(outcome, trigger.AlarmOutcome)


@given(
    st.sampled_from(FIELDS[:-1] + ["detail.state", "detail.alarmName", "detail.muteDetail"]),
    json_values,
)
@settings(max_examples=150, deadline=None)
def test_a_captured_event_with_any_field_replaced_gives_a_typed_outcome(path: str, value: Any) -> None:
    # Given the real muted event with one field replaced by any JSON value
    event = muted_event(ERRORS)
    parent, _, key = path.rpartition(".")
    (event["detail"] if parent else event)[key] = value
    # When it is handled / Then the outcome is typed: rejected with a reason, or a decision
    outcome = handle(event, deps())
    assert outcome.rejected or outcome.decisions


@given(st.integers(min_value=MAX_EVENT_BYTES - 2048, max_value=MAX_EVENT_BYTES + 2048))
@settings(max_examples=20, deadline=None)
def test_any_size_up_to_the_limit_is_judged_and_past_it_refused(size: int) -> None:
    # Given the real event padded to about `size` bytes
    event = plain_event(ERRORS)
    event["detail"]["configuration"]["description"] = ""
    base = len(json.dumps(event, separators=(",", ":")))
    event["detail"]["configuration"]["description"] = "x" * max(0, size - base)
    real = len(json.dumps(event, separators=(",", ":")))
    # When it is handled
    outcome = handle(event, deps())
    # Then within the limit it is decided on; well past it, it is refused as too large
    if real <= MAX_EVENT_BYTES - 512:
        assert outcome.rejected is None and outcome.decisions
    if real > MAX_EVENT_BYTES:
        assert outcome.rejected and "larger than" in outcome.rejected
