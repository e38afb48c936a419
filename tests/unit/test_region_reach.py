"""Deciding without the primary region's APIs: alarms in either region, the quorum when some cannot be read,
and the RPO exposure of a failover that cannot list its source (pure functions, no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.adapters.errors import unreachable
from chalicelib.domain.objectives import blind_rpo_exposure
from chalicelib.domain.triggers import needed_alarms, quorum_status, recheck
from chalicelib.models.alarms import AlarmSnapshot
from chalicelib.models.ledger import WorkloadState
from chalicelib.models.plan import DRPlan, TriggerPolicy
from chalicelib.models.planfile import PlanError, load_plan_text

ROOT = Path(__file__).resolve().parents[2]
ERRORS, LATENCY, CANARY = (
    "fraud-scoring-use1-errors",
    "fraud-scoring-use1-latency",
    "fraud-scoring-use1-canary",
)
PROBE = "fraud-scoring-usw2-probe"  # a canary in us-west-2 probing the primary endpoint
PRIMARY_ALARMS = [ERRORS, LATENCY, CANARY]
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def plan_text(alarm_regions: str = f"    {PROBE}: us-west-2\n", probe: bool = True) -> str:
    text = (ROOT / "plans" / "fraud-scoring.yaml").read_text()
    text = text.replace(
        "    - fraud-scoring-use1-canary\n",
        f"    - fraud-scoring-use1-canary\n    - {PROBE}\n  alarm_regions:\n{alarm_regions}",
    )
    if not probe:
        text = text.replace("confirmation_probe: true", "confirmation_probe: false")
    return text


@cache
def two_region_plan() -> DRPlan:
    # 2 of 4 alarms: three in us-east-1, one in us-west-2; confirmation probe on
    return load_plan_text(plan_text(), "two-regions.yaml")


def snap(name: str, state: str, at: datetime) -> AlarmSnapshot:
    return AlarmSnapshot(name=name, state=state, since=at)


def on_primary() -> WorkloadState:
    return WorkloadState(workload="fraud-scoring", active_region="us-east-1")


# -- where alarms live


def test_alarms_default_to_the_primary_region_and_may_name_the_secondary() -> None:
    # Given a plan naming one alarm in us-west-2
    plan = two_region_plan()
    # Then that alarm lives there, every other in the primary, grouped for reading region by region
    assert plan.alarm_region(PROBE) == "us-west-2"
    assert plan.alarm_region(ERRORS) == "us-east-1"
    assert plan.trigger_alarms_by_region() == {"us-east-1": PRIMARY_ALARMS, "us-west-2": [PROBE]}


@pytest.mark.parametrize(
    ("alarm_regions", "message"),
    [
        (
            f"    {PROBE}: eu-west-1\n",
            "must be the plan's primary (us-east-1) or secondary (us-west-2) region",
        ),
        (f"    {PROBE}: westeros\n", "unknown AWS region 'westeros'"),
        ("    not-a-trigger-alarm: us-west-2\n", "'not-a-trigger-alarm' is not one of the trigger alarms"),
    ],
)
def test_an_alarm_region_outside_the_plan_is_refused_on_its_line(alarm_regions: str, message: str) -> None:
    # When a plan places an alarm in a third region, misspells a region or places an unknown alarm
    with pytest.raises(PlanError) as caught:
        load_plan_text(plan_text(alarm_regions), "bad.yaml")
    # Then the error names the file, the field and what is wrong
    (problem,) = caught.value.problems
    assert problem.field.startswith("trigger.alarm_regions.") and message in problem.message
    assert problem.line is not None


# -- the quorum when a region cannot be read


def test_with_every_region_readable_the_plans_quorum_stands() -> None:
    # Given only the secondary-region probe is in ALARM, everything readable
    plan = two_region_plan()
    alarms = {n: snap(n, "OK", T0) for n in PRIMARY_ALARMS} | {PROBE: snap(PROBE, "ALARM", T0)}
    # Then 1 of 4 is no quorum of 2
    status = quorum_status(plan.trigger, alarms)
    assert not status.met and status.needed == 2 and status.unreachable == []


def test_primary_unreachable_quorum_is_judged_on_the_readable_alarms() -> None:
    # Given us-east-1 cannot be read and the us-west-2 probe has been in ALARM since T0
    plan = two_region_plan()
    status = quorum_status(plan.trigger, {PROBE: snap(PROBE, "ALARM", T0)}, unreachable=PRIMARY_ALARMS)
    # Then the quorum is lowered to the one readable alarm, and it holds since the probe's ALARM
    assert status.met and status.needed == 1
    assert status.quorum_since == T0 and status.first_alarm_at == T0
    assert status.unreachable == PRIMARY_ALARMS
    assert "1 of 1 readable alarms in ALARM (quorum 1)" in status.describe()
    assert "unreadable (region unreachable)" in status.describe()


def test_unreachable_alarms_are_never_evidence_of_health_nor_of_an_outage_alone() -> None:
    plan = two_region_plan()
    # Given the primary cannot be read and the readable probe is OK: no quorum (unknown is not ALARM)
    calm = quorum_status(plan.trigger, {PROBE: snap(PROBE, "OK", T0)}, unreachable=PRIMARY_ALARMS)
    assert not calm.met
    # Given nothing at all can be read: no quorum either
    blind = quorum_status(plan.trigger, {}, unreachable=[*PRIMARY_ALARMS, PROBE])
    assert not blind.met and blind.in_alarm == []


def test_without_the_confirmation_probe_the_full_quorum_is_required() -> None:
    # Given a plan that skips the confirmation probe (no second witness for a lowered quorum)
    plan = load_plan_text(plan_text(probe=False), "no-probe.yaml")
    status = quorum_status(plan.trigger, {PROBE: snap(PROBE, "ALARM", T0)}, unreachable=PRIMARY_ALARMS)
    # Then one readable alarm cannot meet a quorum of 2
    assert not status.met and status.needed == 2


def test_an_alarm_known_from_the_event_is_not_unreachable() -> None:
    # Given the event carried a us-east-1 alarm's state even though us-east-1 cannot be read now
    plan = two_region_plan()
    alarms = {ERRORS: snap(ERRORS, "ALARM", T0), PROBE: snap(PROBE, "ALARM", T0 + SECOND)}
    status = quorum_status(plan.trigger, alarms, unreachable=PRIMARY_ALARMS)
    # Then it counts: 2 of the 2 known alarms, quorum 2 (the plan's, since two are readable)
    assert status.met and status.needed == 2 and status.quorum_since == T0 + SECOND
    assert status.unreachable == [LATENCY, CANARY]


@given(
    quorum=st.integers(1, 4),
    states=st.lists(st.sampled_from(["OK", "ALARM", "INSUFFICIENT_DATA", None]), min_size=4, max_size=4),
    probe=st.booleans(),
)
def test_lowering_the_quorum_never_lets_fewer_than_one_alarm_decide(
    quorum: int, states: list[str | None], probe: bool
) -> None:
    # Given any quorum, any mix of readable states and unreadable alarms (None)
    names = [*PRIMARY_ALARMS, PROBE]
    policy = TriggerPolicy(alarms=names, quorum=quorum, confirmation_probe=probe)
    alarms = {n: snap(n, s, T0) for n, s in zip(names, states, strict=True) if s is not None}
    missing = [n for n, s in zip(names, states, strict=True) if s is None]
    status = quorum_status(policy, alarms, unreachable=missing)
    firing = sum(1 for s in states if s == "ALARM")
    readable = len(names) - len(missing)
    # Then met means: at least one readable ALARM, and as many as min(quorum, readable) (the full quorum
    # without the confirmation probe); and with everything readable it is exactly the plan's M of N
    if status.met:
        assert firing >= 1
        assert firing >= (min(quorum, readable) if probe else quorum)
    else:
        assert readable == 0 or firing < (min(quorum, readable) if probe else quorum)
    if not missing:
        assert status.met == (firing >= quorum)
    assert needed_alarms(policy, missing) == (0 if readable == 0 else status.needed)


def test_the_recheck_uses_what_it_can_reach() -> None:
    # Given the trigger saw the quorum form at T0 (two primary alarms) and then us-east-1 went dark;
    # the us-west-2 probe has been in ALARM since before
    plan = two_region_plan()
    now = T0 + plan.trigger.sustain + SECOND
    result = recheck(
        plan,
        {PROBE: snap(PROBE, "ALARM", T0 - SECOND)},
        on_primary(),
        now,
        expected_since=T0,
        sustain_until=T0 + plan.trigger.sustain,
        unreachable=PRIMARY_ALARMS,
    )
    # Then the quorum of what is readable held through the window: proceed
    assert result.proceed, result.reason
    assert result.quorum.unreachable == PRIMARY_ALARMS


def test_the_recheck_suppresses_when_the_reachable_alarm_flapped() -> None:
    # Given the only readable alarm re-entered ALARM during the sustain window
    plan = two_region_plan()
    now = T0 + plan.trigger.sustain + SECOND
    result = recheck(
        plan,
        {PROBE: snap(PROBE, "ALARM", T0 + 5 * SECOND)},
        on_primary(),
        now,
        expected_since=T0,
        sustain_until=T0 + plan.trigger.sustain,
        unreachable=PRIMARY_ALARMS,
    )
    # Then the quorum re-formed: no failover on a flapping witness
    assert not result.proceed and "re-formed" in result.reason


# -- what an unreachable region looks like


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionClosedError(endpoint_url="http://x"), True),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ReadTimeoutError(endpoint_url="http://x"), True),
        (type("E", (Exception,), {"response": {"Error": {"Code": "ServiceUnavailable"}}})(), True),
        (
            type(
                "E",
                (Exception,),
                {"response": {"Error": {"Code": "X"}, "ResponseMetadata": {"HTTPStatusCode": 502}}},
            )(),
            True,
        ),
        (type("E", (Exception,), {"response": {"Error": {"Code": "Throttling"}}})(), False),
        (
            type(
                "E",
                (Exception,),
                {"response": {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}},
            )(),
            False,
        ),
        (type("E", (Exception,), {"response": {"Error": {"Code": "AccessDenied"}}})(), False),
        (ValueError("bug"), False),
    ],
)
def test_unreachable_means_no_useful_answer_not_throttling(exc: BaseException, expected: bool) -> None:
    assert unreachable(exc) is expected


# -- RPO exposure when the source cannot be listed


def test_exposure_runs_from_the_replicas_newest_copy() -> None:
    # Given the replica's newest object landed 40s before the check, nothing reported missing
    exposure = blind_rpo_exposure(
        "training-data",
        replica_newest=T0 - 40 * SECOND,
        known_unreplicated={},
        objective=timedelta(minutes=15),
        now=T0,
    )
    # Then up to 40s of writes may be lost, against a 15m objective
    assert exposure.window_seconds == 40 and exposure.objective_seconds == 900
    assert exposure.recovery_point == T0 - 40 * SECOND and exposure.known_unreplicated == 0


def test_a_hole_reported_by_replication_events_widens_the_exposure() -> None:
    # Given replication events reported an object missing since 90s ago, older than the replica's newest copy
    exposure = blind_rpo_exposure(
        "training-data",
        replica_newest=T0 - 10 * SECOND,
        known_unreplicated={"datasets/a.json": T0 - 90 * SECOND, "datasets/b.json": T0 - 30 * SECOND},
        objective=timedelta(minutes=1),
        now=T0,
    )
    # Then the recovery point is before the hole: 90s may be lost
    assert exposure.window_seconds == 90 and exposure.known_unreplicated == 2
    assert exposure.oldest_known_unreplicated_at == T0 - 90 * SECOND


def test_an_empty_replica_has_no_bound() -> None:
    exposure = blind_rpo_exposure(
        "models", replica_newest=None, known_unreplicated={}, objective=timedelta(minutes=1), now=T0
    )
    assert exposure.window_seconds is None and exposure.recovery_point is None


# -- the region-api-outage drill's pre-conditions


def test_region_api_outage_runs_only_from_the_secondary_copy_with_something_to_see_the_outage() -> None:
    from chalicelib.domain.drills import region_api_outage_precondition

    example = load_plan_text((ROOT / "plans" / "fraud-scoring.yaml").read_text(), "example.yaml")
    # From the primary region's copy: refused (the drill takes that copy down)
    assert "run it from the copy in us-west-2" in str(
        region_api_outage_precondition(two_region_plan(), "us-east-1")
    )
    # Every trigger alarm in the primary: refused (nothing could see the outage)
    assert "trigger.alarm_regions" in str(region_api_outage_precondition(example, "us-west-2"))
    # Without the confirmation probe the full quorum (2) stands, and one alarm lives outside the primary
    no_probe = load_plan_text(plan_text(probe=False), "no-probe.yaml")
    assert "full quorum" in str(region_api_outage_precondition(no_probe, "us-west-2"))
    # A plan with a us-west-2 alarm and the probe, from the us-west-2 copy: fine
    assert region_api_outage_precondition(two_region_plan(), "us-west-2") is None
