"""The drill's arithmetic and verdicts (chalicelib/domain/drills.py): pure functions, time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import drills as rules
from chalicelib.models.drill import ObjectiveResult, Write

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def writes(count: int, interval: float = 1.0, start: float = 0.0) -> list[Write]:
    return [Write(key=f"{i:06d}.json", at=at(start + i * interval)) for i in range(count)]


# -- RTO -------------------------------------------------------------------------------------------------
def test_rto_is_first_alarm_to_validated_and_its_parts_add_up() -> None:
    # Given a fault at 0s, first ALARM at 4s, decision at 24s, switch at 25s, validated at 26.5s
    r = rules.rto_breakdown(
        fault_at=at(0), first_alarm_at=at(4), decided_at=at(24), switched_at=at(25), validated_at=at(26.5)
    )
    # Then the RTO starts at the first ALARM (detection is reported but not part of it)
    assert (r.detection_seconds, r.decision_seconds, r.automation_seconds, r.validation_seconds) == (
        4,
        20,
        1,
        1.5,
    )
    assert r.rto_seconds == 22.5 == r.decision_seconds + r.automation_seconds + r.validation_seconds


def test_instants_from_different_clocks_are_clamped_into_order() -> None:
    # Given a switch stamped a few ms before the decision (two processes' clocks)
    r = rules.rto_breakdown(
        fault_at=at(0), first_alarm_at=at(3), decided_at=at(10), switched_at=at(9.998), validated_at=at(11)
    )
    # Then no phase is negative and the parts still add up
    assert r.automation_seconds == 0 and r.switched_at == at(10)
    assert r.decision_seconds + r.automation_seconds + r.validation_seconds == pytest.approx(r.rto_seconds)


@given(
    gaps=st.lists(st.floats(min_value=0, max_value=3600, allow_nan=False), min_size=4, max_size=4),
)
def test_rto_parts_always_add_up_and_are_never_negative(gaps: list[float]) -> None:
    stamps = [0.0]
    for gap in gaps:
        stamps.append(stamps[-1] + gap)
    r = rules.rto_breakdown(
        fault_at=at(stamps[0]),
        first_alarm_at=at(stamps[1]),
        decided_at=at(stamps[2]),
        switched_at=at(stamps[3]),
        validated_at=at(stamps[4]),
    )
    parts = (r.decision_seconds, r.automation_seconds, r.validation_seconds)
    assert all(p >= 0 for p in parts) and r.detection_seconds >= 0
    assert sum(parts) == pytest.approx(r.rto_seconds, abs=0.002)
    assert r.rto_seconds == pytest.approx(stamps[4] - stamps[1], abs=0.002)


# -- RPO -------------------------------------------------------------------------------------------------
def rpo(log: list[Write], replica: set[str], switch: datetime | None = None, interval: float = 1.0) -> float:
    m = rules.measure_rpo(
        "training-data", timedelta(minutes=15), timedelta(seconds=interval), log, replica, switch
    )
    return m.rpo_seconds


def test_no_writes_or_everything_replicated_is_zero() -> None:
    log = writes(10)
    assert rpo([], set()) == 0
    assert rpo(log, {w.key for w in log}) == 0


def test_rpo_is_the_window_of_writes_the_replica_lacked_at_the_switch() -> None:
    # Given 20 writes a second apart, of which the replica had the first 10 (replication stopped at 9.x s)
    log = writes(20)
    replica = {w.key for w in log[:10]}
    m = rules.measure_rpo("training-data", timedelta(minutes=15), timedelta(seconds=1), log, replica, at(30))
    # Then 10 writes were lost: from the recovery point (write 9 at 9s) to the newest write (19s)
    assert (m.missing, m.rpo_seconds, m.recovery_point_at, m.newest_write_at) == (10, 10.0, at(9), at(19))
    assert m.oldest_missing_at == at(10)


def test_writes_after_the_switch_were_never_at_risk() -> None:
    log = writes(20)
    replica = {w.key for w in log[:10]}
    assert rpo(log, replica, switch=at(14.5)) == 5.0  # newest counted write: 14s


def test_a_replica_with_a_hole_recovers_only_to_before_the_hole() -> None:
    # Given a replica missing write 5 but holding later ones (out-of-order replication)
    log = writes(10)
    replica = {w.key for w in log} - {log[5].key}
    # Then the recovery point is write 4: a restore cannot skip the hole
    assert rpo(log, replica) == 5.0


def test_nothing_replicated_counts_from_one_interval_before_the_first_write() -> None:
    assert rpo(writes(3, interval=2.0), set(), interval=2.0) == 6.0


@given(
    interval=st.sampled_from([0.25, 0.5, 1.0, 5.0]),
    before=st.integers(min_value=1, max_value=50),
    lost=st.integers(min_value=1, max_value=200),
)
def test_rpo_equals_the_replication_gap(interval: float, before: int, lost: int) -> None:
    # Given writes every `interval`, replication paused after `before` of them and `lost` more written
    log = writes(before + lost, interval=interval)
    replica = {w.key for w in log[:before]}
    # Then the RPO is the gap: `lost` intervals
    assert rpo(log, replica, interval=interval) == pytest.approx(lost * interval)


# -- verdicts ---------------------------------------------------------------------------------------------
def test_objective_verdict_and_margin() -> None:
    met = rules.objective("RTO", timedelta(minutes=5), 20.8)
    edge = rules.objective("RTO", timedelta(seconds=30), 30.0)
    breached = rules.objective("RPO", timedelta(seconds=30), 42.5)
    unmeasured = rules.objective("RTO", timedelta(minutes=5), None)
    unbounded = rules.objective("failback", None, 21.4)
    assert (met.met, met.margin_seconds, met.verdict) == (True, 279.2, "met")
    assert edge.met is True and edge.margin_seconds == 0
    assert (breached.met, breached.margin_seconds, breached.verdict) == (False, -12.5, "breached")
    assert unmeasured.verdict == "n/a" and unbounded.verdict == "measured"


@pytest.mark.parametrize(
    ("expect", "failover", "failback", "objectives", "verdict", "as_expected"),
    [
        ("failover", "completed", "completed", [True, True], "passed", True),
        ("failover", "completed", "completed", [True, False], "breached", True),
        ("failover", "completed", "rolled_back", [True], "failed", True),
        ("failover", None, None, [], "failed", False),
        ("failover", "failed", None, [], "failed", False),
        ("refuse", "refused", None, [], "passed", True),
        ("refuse", "completed", "completed", [True], "failed", False),
        ("no-failover", None, None, [], "passed", True),
        ("no-failover", "suppressed", None, [], "passed", True),
        ("no-failover", "completed", "completed", [True], "failed", False),
    ],
)
def test_drill_verdict(
    expect: str,
    failover: str | None,
    failback: str | None,
    objectives: list[bool],
    verdict: str,
    as_expected: bool,
) -> None:
    results = [
        ObjectiveResult(name=f"o{i}", met=m, margin_seconds=1 if m else -1) for i, m in enumerate(objectives)
    ]
    got, expected, reason = rules.drill_verdict(
        expect,  # type: ignore[arg-type]
        rules.behaviour_of(failover),
        results,
        failback_outcome=failback,
    )
    assert (got, expected) == (verdict, as_expected), reason


def test_an_interrupted_drill_says_so_whatever_it_measured() -> None:
    verdict, expected, reason = rules.drill_verdict(
        "failover", "failed-over", [ObjectiveResult(name="RTO", met=True)], interrupted="KeyboardInterrupt"
    )
    assert verdict == "interrupted" and expected is None and "KeyboardInterrupt" in reason


def test_a_leftover_fails_a_drill_that_otherwise_passed() -> None:
    # Given a drill that failed over and back within its objectives
    met = [ObjectiveResult(name="RTO", met=True, margin_seconds=10)]
    # When its scenario left the lock held by a stopped execution
    verdict, expected, reason = rules.drill_verdict(
        "no-failover", "no-failover", met, leftovers=["the workload lock still held by x, which is aborted"]
    )
    # Then the drill fails, says the behaviour was right, and names what was left
    assert (verdict, expected) == ("failed", True) and "lock still held by x" in reason
    # And an interruption still reads as an interruption
    assert rules.drill_verdict("failover", "failed-over", met, interrupted="boom", leftovers=["x"])[0] == (
        "interrupted"
    )


@pytest.mark.parametrize(
    ("holder", "status", "recorded", "serving", "findings"),
    [
        (None, None, None, "us-east-1", []),  # nothing recorded yet means the primary
        (None, None, "us-east-1", "us-east-1", []),
        ("arn:x:failover-1", "RUNNING", "us-east-1", "us-east-1", []),  # still working: not a leftover
        ("arn:x:failover-1", "ABORTED", "us-east-1", "us-east-1", ["lock still held by failover-1"]),
        ("arn:x:failover-1", None, "us-east-1", "us-east-1", ["which is unknown"]),
        (None, None, None, "us-west-2", ["ledger says us-east-1 is active while us-west-2 serves"]),
        (None, None, "us-west-2", None, ["traffic split"]),
    ],
)
def test_residue_names_locks_without_a_running_holder_and_a_ledger_that_disagrees_with_traffic(
    holder: str | None, status: str | None, recorded: str | None, serving: str | None, findings: list[str]
) -> None:
    found = rules.residue(
        lock_holder=holder,
        holder_status=status,
        recorded_region=recorded,
        serving_region=serving,
        primary="us-east-1",
    )
    assert len(found) == len(findings) and all(f in line for f, line in zip(findings, found, strict=True))


def test_every_scenario_has_an_expectation_and_unknown_ones_are_refused() -> None:
    assert set(rules.SCENARIOS) == {
        "region-outage",
        "region-api-outage",
        "endpoint-degraded",
        "replication-stalled",
        "corrupt-artifact",
        "api-throttling",
        "alarm-flapping",
        "backup-unhealthy",
        "data-corruption",
    }
    assert rules.scenario("alarm-flapping").expect == "no-failover"
    assert rules.scenario("backup-unhealthy").expect == "refuse"
    assert rules.scenario("region-api-outage").expect == "failover"
    with pytest.raises(ValueError, match="region-outage"):
        rules.scenario("meteor-strike")


def test_flapping_needs_a_sustain_window_longer_than_an_alarm_burst() -> None:
    assert "sustain window" in (rules.flapping_precondition(timedelta(seconds=2)) or "")
    assert rules.flapping_precondition(timedelta(seconds=20)) is None
    period = rules.flap_period(timedelta(seconds=20))
    assert timedelta(seconds=6) <= period < timedelta(seconds=20)


def test_trend_is_oldest_first_and_bounded() -> None:
    summaries = [
        {
            "drill_id": f"d{i}",
            "started_at": at(-i * 3600),
            "scenario": "region-outage",
            "verdict": "passed",
            "rto_seconds": 20.0 + i,
            "rpo_seconds": 0.0,
        }
        for i in range(20)
    ]
    points = rules.trend_points(summaries, limit=5)
    assert [p.drill_id for p in points] == ["d4", "d3", "d2", "d1", "d0"]
    assert points[-1].rto_seconds == 20.0
