"""Trigger policy: M-of-N quorum, sustain, cooldown and cancel decisions on real CloudWatch alarm events."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.triggers import (
    evaluate,
    execution_name,
    merge_snapshots,
    quorum_status,
    recheck,
)
from chalicelib.models.alarms import AlarmSnapshot, AlarmStateChange
from chalicelib.models.ledger import WorkloadState
from chalicelib.models.plan import WORKLOAD_PATTERN, DRPlan, TriggerPolicy
from chalicelib.models.planfile import load_plan_file, load_plan_text

ROOT = Path(__file__).resolve().parents[2]
PLAN_FILE = ROOT / "plans" / "fraud-scoring.yaml"
EVENT_FILE = ROOT / "events" / "cloudwatch" / "alarm-state-change-single-metric.json"

ERRORS = "fraud-scoring-use1-errors"
LATENCY = "fraud-scoring-use1-latency"
CANARY = "fraud-scoring-use1-canary"
T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
SECOND = timedelta(seconds=1)
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,80}")


@cache
def example_plan() -> DRPlan:
    # 2 of 3 alarms, sustain 20s, cooldown 10m, us-east-1 -> us-west-2
    return load_plan_file(PLAN_FILE)


@cache
def _raw_event() -> dict:
    return json.loads(EVENT_FILE.read_text())


def alarm_event(name: str, state: str, at: datetime) -> AlarmStateChange:
    """The documented single-metric event, re-aimed at one of our alarms."""
    raw = copy.deepcopy(_raw_event())
    raw["detail"]["alarmName"] = name
    raw["detail"]["state"]["value"] = state
    raw["detail"]["state"]["timestamp"] = (
        at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"
    )
    raw["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    raw["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"]
    return AlarmStateChange.model_validate(raw)


def snap(name: str, state: str, at: datetime) -> AlarmSnapshot:
    return AlarmSnapshot(name=name, state=state, since=at)


def alarms(*snaps: AlarmSnapshot) -> dict[str, AlarmSnapshot]:
    return {s.name: s for s in snaps}


def healthy_state(**kw: object) -> WorkloadState:
    return WorkloadState(workload="fraud-scoring", active_region="us-east-1", **kw)


# -- quorum


def test_one_of_three_alarms_is_not_a_quorum() -> None:
    # Given only the error alarm fires (quorum is 2 of 3)
    status = quorum_status(
        example_plan().trigger,
        alarms(snap(ERRORS, "ALARM", T0), snap(LATENCY, "OK", T0), snap(CANARY, "INSUFFICIENT_DATA", T0)),
    )
    # Then the quorum is not met and no start time is claimed
    assert not status.met
    assert status.in_alarm == [ERRORS]
    assert (status.needed, status.of) == (2, 3)
    assert status.quorum_since is None and status.first_alarm_at is None


def test_exactly_m_alarms_meet_the_quorum_from_the_mth_alarm() -> None:
    # Given the latency alarm fired first and the canary 7s later
    status = quorum_status(
        example_plan().trigger,
        alarms(snap(ERRORS, "OK", T0), snap(CANARY, "ALARM", T0 + 7 * SECOND), snap(LATENCY, "ALARM", T0)),
    )
    # Then 2 of 3 is a quorum, formed when the second alarm fired; the RTO clock starts at the first
    assert status.met
    assert status.in_alarm == [LATENCY, CANARY]
    assert status.first_alarm_at == T0
    assert status.quorum_since == T0 + 7 * SECOND
    assert "2 of 3" in status.describe()


def test_more_than_m_alarms_keep_the_quorum_from_the_mth_alarm() -> None:
    # Given all three alarms fired, 5s apart
    status = quorum_status(
        example_plan().trigger,
        alarms(
            snap(CANARY, "ALARM", T0 + 10 * SECOND),
            snap(ERRORS, "ALARM", T0),
            snap(LATENCY, "ALARM", T0 + 5 * SECOND),
        ),
    )
    # Then the quorum dates from the second alarm, not the last one
    assert status.met
    assert status.in_alarm == [ERRORS, LATENCY, CANARY]
    assert status.first_alarm_at == T0
    assert status.quorum_since == T0 + 5 * SECOND


def test_alarms_the_plan_does_not_name_never_count_towards_the_quorum() -> None:
    # Given one named alarm and two unrelated alarms in ALARM
    status = quorum_status(
        example_plan().trigger,
        alarms(
            snap(ERRORS, "ALARM", T0),
            snap("billing-spike", "ALARM", T0),
            snap("fraud-scoring-usw2-errors", "ALARM", T0),
        ),
    )
    # Then only the named alarm counts
    assert not status.met
    assert status.in_alarm == [ERRORS]


@given(
    data=st.data(),
    n=st.integers(min_value=1, max_value=6),
)
def test_quorum_is_m_of_n_with_the_mth_earliest_alarm_time(data: st.DataObject, n: int) -> None:
    # Given N named alarms in random states and times, plus noise alarms, and a quorum M
    names = [f"alarm-{i}" for i in range(n)]
    m = data.draw(st.integers(min_value=1, max_value=n), label="quorum")
    policy = TriggerPolicy(alarms=names, quorum=m)
    states = data.draw(
        st.lists(st.sampled_from(["OK", "ALARM", "INSUFFICIENT_DATA"]), min_size=n, max_size=n)
    )
    offsets = data.draw(st.lists(st.integers(0, 600), min_size=n, max_size=n))
    snaps = [snap(name, s, T0 + o * SECOND) for name, s, o in zip(names, states, offsets, strict=True)]
    snaps.append(snap("not-in-the-plan", "ALARM", T0 - 60 * SECOND))
    # When the quorum is evaluated
    status = quorum_status(policy, alarms(*snaps))
    # Then it is met exactly when M named alarms are in ALARM, dated from the M-th of them
    firing = sorted(s.since for s in snaps[:n] if s.state == "ALARM")
    assert status.met == (len(firing) >= m)
    assert len(status.in_alarm) == len(firing)
    assert "not-in-the-plan" not in status.in_alarm
    if status.met:
        assert status.quorum_since == firing[m - 1]
        assert status.first_alarm_at == firing[0]
        assert status.first_alarm_at <= status.quorum_since
    else:
        assert status.quorum_since is None


# -- merging what CloudWatch says with what the event says


def test_an_event_newer_than_the_read_state_wins() -> None:
    # Given CloudWatch still reports the canary OK (eventual consistency) but an ALARM event just arrived
    read = [snap(CANARY, "OK", T0), snap(ERRORS, "ALARM", T0)]
    change = alarm_event(CANARY, "ALARM", T0 + 30 * SECOND)
    # When they are merged
    merged = merge_snapshots(read, change)
    # Then the event's state is used
    assert merged[CANARY] == snap(CANARY, "ALARM", T0 + 30 * SECOND)
    assert merged[ERRORS] == snap(ERRORS, "ALARM", T0)


def test_an_event_older_than_the_read_state_is_ignored() -> None:
    # Given a late-delivered ALARM event for an alarm that has since recovered
    read = [snap(CANARY, "OK", T0 + 60 * SECOND)]
    change = alarm_event(CANARY, "ALARM", T0)
    # When they are merged / Then the newer read state stands
    assert merge_snapshots(read, change)[CANARY] == snap(CANARY, "OK", T0 + 60 * SECOND)


def test_an_event_for_an_alarm_not_yet_read_is_added() -> None:
    merged = merge_snapshots([snap(ERRORS, "ALARM", T0)], alarm_event(LATENCY, "ALARM", T0 + SECOND))
    assert set(merged) == {ERRORS, LATENCY}
    assert merge_snapshots([snap(ERRORS, "OK", T0)], None) == {ERRORS: snap(ERRORS, "OK", T0)}


# -- evaluate


def test_an_alarm_the_plan_does_not_name_is_ignored() -> None:
    # Given an alarm event for an unrelated alarm, even with the quorum otherwise met
    change = alarm_event("ServerCpuTooHigh", "ALARM", T0)
    snaps = alarms(
        snap(ERRORS, "ALARM", T0), snap(LATENCY, "ALARM", T0), snap("ServerCpuTooHigh", "ALARM", T0)
    )
    # When evaluated
    decision = evaluate(change, example_plan(), snaps, healthy_state(), T0 + SECOND)
    # Then it is ignored, and the reason says why
    assert decision.action == "ignore"
    assert "ServerCpuTooHigh" in decision.reason and "not a trigger alarm" in decision.reason
    assert decision.execution_name is None


def test_quorum_met_starts_a_failover_after_the_sustain_window() -> None:
    # Given the errors alarm fired at T0 and the latency alarm now fires at T0+4s
    change = alarm_event(LATENCY, "ALARM", T0 + 4 * SECOND)
    snaps = merge_snapshots([snap(ERRORS, "ALARM", T0), snap(LATENCY, "OK", T0 - 3600 * SECOND)], change)
    # When evaluated
    decision = evaluate(change, example_plan(), snaps, healthy_state(), T0 + 5 * SECOND)
    # Then a failover starts, to act once the 20s sustain window after the quorum formed is over
    assert decision.action == "start"
    assert decision.workload == "fraud-scoring" and decision.alarm == LATENCY
    assert decision.quorum.quorum_since == T0 + 4 * SECOND
    assert decision.quorum.first_alarm_at == T0
    assert decision.sustain_until == T0 + 24 * SECOND
    assert decision.execution_name is not None and NAME_RE.fullmatch(decision.execution_name)
    assert "fraud-scoring" in decision.execution_name


def test_quorum_not_met_is_suppressed_with_the_count_in_the_reason() -> None:
    change = alarm_event(ERRORS, "ALARM", T0)
    snaps = alarms(snap(ERRORS, "ALARM", T0), snap(LATENCY, "OK", T0), snap(CANARY, "OK", T0))
    decision = evaluate(change, example_plan(), snaps, healthy_state(), T0 + SECOND)
    assert decision.action == "suppress"
    assert "quorum not met" in decision.reason and "1 of 3" in decision.reason
    assert decision.execution_name is None and decision.sustain_until is None


def test_every_event_describing_the_same_quorum_names_the_same_execution() -> None:
    # Given the quorum formed at T0+4s, then a third alarm fires and the second event is redelivered
    plan = example_plan()
    second = alarm_event(LATENCY, "ALARM", T0 + 4 * SECOND)
    third = alarm_event(CANARY, "ALARM", T0 + 9 * SECOND)
    read = [snap(ERRORS, "ALARM", T0), snap(LATENCY, "ALARM", T0 + 4 * SECOND)]
    # When each is evaluated
    first_decision = evaluate(second, plan, merge_snapshots(read, second), healthy_state(), T0 + 5 * SECOND)
    redelivered = evaluate(second, plan, merge_snapshots(read, second), healthy_state(), T0 + 8 * SECOND)
    later = evaluate(third, plan, merge_snapshots(read, third), healthy_state(), T0 + 10 * SECOND)
    # Then they all name the same execution, so only one failover can start
    assert first_decision.action == redelivered.action == later.action == "start"
    assert first_decision.execution_name == redelivered.execution_name == later.execution_name
    assert first_decision.sustain_until == later.sustain_until


def test_a_quorum_that_re_forms_later_names_a_new_execution() -> None:
    # Given the quorum formed at T0+4s, broke, and re-formed at T0+90s
    plan = example_plan()
    early = evaluate(
        alarm_event(LATENCY, "ALARM", T0 + 4 * SECOND),
        plan,
        alarms(snap(ERRORS, "ALARM", T0), snap(LATENCY, "ALARM", T0 + 4 * SECOND)),
        healthy_state(),
        T0 + 5 * SECOND,
    )
    late = evaluate(
        alarm_event(LATENCY, "ALARM", T0 + 90 * SECOND),
        plan,
        alarms(snap(ERRORS, "ALARM", T0), snap(LATENCY, "ALARM", T0 + 90 * SECOND)),
        healthy_state(),
        T0 + 91 * SECOND,
    )
    # Then the two quorums map to different executions
    assert early.action == late.action == "start"
    assert early.execution_name != late.execution_name


@pytest.mark.parametrize("recovered_to", ["OK", "INSUFFICIENT_DATA"])
def test_recovery_that_breaks_the_quorum_cancels_a_pending_failover(recovered_to: str) -> None:
    # Given a failover waiting out its sustain window, and the latency alarm recovers
    change = alarm_event(LATENCY, recovered_to, T0 + 10 * SECOND)
    read = [snap(ERRORS, "ALARM", T0), snap(LATENCY, "ALARM", T0 + 4 * SECOND), snap(CANARY, "OK", T0)]
    state = healthy_state(pending_execution="arn:aws:states:us-east-1:123456789012:execution:x:y")
    # When evaluated
    decision = evaluate(change, example_plan(), merge_snapshots(read, change), state, T0 + 11 * SECOND)
    # Then the pending failover is cancelled, with the broken quorum in the reason
    assert decision.action == "cancel"
    assert recovered_to in decision.reason and "1 of 3" in decision.reason


def test_recovery_while_the_quorum_still_holds_does_not_cancel() -> None:
    # Given all three alarms fired and a failover is pending, and one of them recovers
    change = alarm_event(CANARY, "OK", T0 + 10 * SECOND)
    read = [snap(ERRORS, "ALARM", T0), snap(LATENCY, "ALARM", T0 + 4 * SECOND), snap(CANARY, "ALARM", T0)]
    state = healthy_state(pending_execution="arn:aws:states:us-east-1:123456789012:execution:x:y")
    # When evaluated / Then 2 of 3 still hold, so nothing is cancelled
    decision = evaluate(change, example_plan(), merge_snapshots(read, change), state, T0 + 11 * SECOND)
    assert decision.action == "ignore"


@pytest.mark.parametrize("recovered_to", ["OK", "INSUFFICIENT_DATA"])
def test_recovery_with_nothing_pending_is_ignored(recovered_to: str) -> None:
    change = alarm_event(ERRORS, recovered_to, T0)
    decision = evaluate(change, example_plan(), merge_snapshots([], change), healthy_state(), T0)
    assert decision.action == "ignore"
    assert "nothing pending" in decision.reason


def test_no_second_failover_once_the_secondary_is_serving() -> None:
    # Given the workload already failed over (long ago, so no cooldown) and the quorum fires again
    change = alarm_event(LATENCY, "ALARM", T0 + 4 * SECOND)
    snaps = alarms(snap(ERRORS, "ALARM", T0), snap(LATENCY, "ALARM", T0 + 4 * SECOND))
    state = WorkloadState(
        workload="fraud-scoring", active_region="us-west-2", last_failover_at=T0 - timedelta(days=2)
    )
    # When evaluated / Then it is suppressed and the reason names the serving region
    decision = evaluate(change, example_plan(), snaps, state, T0 + 5 * SECOND)
    assert decision.action == "suppress"
    assert "already failed over" in decision.reason and "us-west-2" in decision.reason
    assert decision.execution_name is None


def test_cooldown_after_a_failback_suppresses_with_the_end_time() -> None:
    # Given a failback completed 4 minutes ago (cooldown 10m) and an older failover
    failback_at = T0 - timedelta(minutes=4)
    state = healthy_state(last_failover_at=T0 - timedelta(hours=2), last_failback_at=failback_at)
    change = alarm_event(LATENCY, "ALARM", T0 + 4 * SECOND)
    snaps = alarms(snap(ERRORS, "ALARM", T0), snap(LATENCY, "ALARM", T0 + 4 * SECOND))
    # When the quorum fires
    decision = evaluate(change, example_plan(), snaps, state, T0 + 5 * SECOND)
    # Then it is suppressed until ten minutes after the failback, and the reason says when
    assert decision.action == "suppress"
    until = failback_at + timedelta(minutes=10)
    assert "cooldown" in decision.reason and until.isoformat() in decision.reason


def test_once_the_cooldown_is_over_the_quorum_starts_a_failover() -> None:
    state = healthy_state(last_failback_at=T0 - timedelta(minutes=10))
    change = alarm_event(LATENCY, "ALARM", T0)
    snaps = alarms(snap(ERRORS, "ALARM", T0 - SECOND), snap(LATENCY, "ALARM", T0))
    assert evaluate(change, example_plan(), snaps, state, T0).action == "start"


def test_a_plan_with_a_longest_allowed_workload_name_gets_a_valid_unique_execution_name() -> None:
    # Given a plan whose workload name is 40 characters, the longest a plan allows
    workload = "w" + "x-" * 19 + "z"
    text = PLAN_FILE.read_text().replace("workload: fraud-scoring", f"workload: {workload}", 1)
    plan = load_plan_text(text)
    assert plan.workload == workload and len(workload) == 40
    # When two different quorums start failovers
    names = []
    for at in (T0, T0 + timedelta(milliseconds=1)):
        change = alarm_event(LATENCY, "ALARM", at)
        decision = evaluate(
            change,
            plan,
            alarms(snap(ERRORS, "ALARM", T0 - SECOND), snap(LATENCY, "ALARM", at)),
            healthy_state(),
            at,
        )
        assert decision.action == "start"
        names.append(decision.execution_name)
    # Then both names are valid Step Functions names, and different
    assert all(n is not None and NAME_RE.fullmatch(n) for n in names)
    assert names[0] != names[1]


ANCHORS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


@given(
    workload=st.text(min_size=1, max_size=300),
    kind=st.sampled_from(["failover", "failback", "drill"]),
    anchor=ANCHORS,
)
def test_execution_names_are_always_valid_step_functions_names(
    workload: str, kind: str, anchor: datetime
) -> None:
    # Given any workload text, however long or exotic / Then the name is 1-80 safe characters, every time
    name = execution_name(kind, workload, anchor)
    assert NAME_RE.fullmatch(name)
    assert execution_name(kind, workload, anchor) == name


@given(workload=st.from_regex(WORKLOAD_PATTERN, fullmatch=True), a=ANCHORS, b=ANCHORS)
def test_execution_names_differ_exactly_when_the_quorum_time_differs(
    workload: str, a: datetime, b: datetime
) -> None:
    # Given any workload name a plan accepts and two quorum times (millisecond precision, as CloudWatch gives)
    # Then the names are equal exactly when the times are
    assert (execution_name("failover", workload, a) == execution_name("failover", workload, b)) == (a == b)


# -- recheck after the sustain window


def quorum_at(second_alarm_at: datetime) -> dict[str, AlarmSnapshot]:
    return alarms(snap(ERRORS, "ALARM", T0), snap(LATENCY, "ALARM", second_alarm_at), snap(CANARY, "OK", T0))


def test_a_quorum_held_for_the_whole_window_proceeds() -> None:
    # Given the quorum formed at T0+4s and a failover is pending (the pending marker is our own)
    state = healthy_state(pending_execution="arn:aws:states:us-east-1:123456789012:execution:x:y")
    for now in (T0 + 24 * SECOND, T0 + 60 * SECOND):
        # When rechecked exactly at, or after, the end of the 20s window
        result = recheck(example_plan(), quorum_at(T0 + 4 * SECOND), state, now)
        # Then the failover proceeds
        assert result.proceed, result.reason
        assert result.quorum.quorum_since == T0 + 4 * SECOND


def test_a_flapping_alarm_does_not_get_through_the_sustain_window() -> None:
    # Given the latency alarm went OK and back to ALARM at T0+15s, inside the window that began at T0+4s
    flapped = quorum_at(T0 + 15 * SECOND)
    # When rechecked when the original window ends
    result = recheck(example_plan(), flapped, healthy_state(), T0 + 24 * SECOND)
    # Then the failover does not proceed: the quorum only held 9s
    assert not result.proceed
    assert "9.0s" in result.reason and "20s" in result.reason


def test_a_broken_quorum_does_not_proceed() -> None:
    broken = alarms(snap(ERRORS, "ALARM", T0), snap(LATENCY, "OK", T0 + 10 * SECOND), snap(CANARY, "OK", T0))
    result = recheck(example_plan(), broken, healthy_state(), T0 + 24 * SECOND)
    assert not result.proceed
    assert "no longer holds" in result.reason and "1 of 3" in result.reason


def test_recheck_in_cooldown_does_not_proceed() -> None:
    # Given a failover finished (and was failed back) while this one waited
    failover_at = T0 + 10 * SECOND
    state = healthy_state(last_failover_at=failover_at)
    result = recheck(example_plan(), quorum_at(T0 + 4 * SECOND), state, T0 + 24 * SECOND)
    assert not result.proceed
    assert (failover_at + timedelta(minutes=10)).isoformat() in result.reason


def test_recheck_after_another_failover_completed_does_not_proceed() -> None:
    state = WorkloadState(workload="fraud-scoring", active_region="us-west-2")
    result = recheck(example_plan(), quorum_at(T0 + 4 * SECOND), state, T0 + 24 * SECOND)
    assert not result.proceed and "already failed over" in result.reason


def test_recheck_honours_an_explicit_sustain_window() -> None:
    plan = example_plan()
    snaps = quorum_at(T0 + 4 * SECOND)
    assert not recheck(plan, snaps, healthy_state(), T0 + 24 * SECOND, sustain=timedelta(minutes=1)).proceed
    assert recheck(plan, snaps, healthy_state(), T0 + 64 * SECOND, sustain=timedelta(minutes=1)).proceed
