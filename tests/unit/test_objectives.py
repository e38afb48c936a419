"""RTO and RPO arithmetic: what a failover record, a drill report and the status page all show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.objectives import measure_rto, rpo_exposure

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)


def test_a_failover_inside_the_objective_is_met_with_a_positive_margin() -> None:
    # Given the first alarm at T0, the decision 45s later (sustain + recheck), traffic validated at 3m30s
    rto = measure_rto(T0, T0 + timedelta(seconds=45), T0 + timedelta(minutes=3, seconds=30), FIVE_MINUTES)
    # Then the RTO is met with 90s to spare, and split into detection and automation time
    assert rto.rto_seconds == 210
    assert rto.decision_seconds == 45 and rto.automation_seconds == 165
    assert rto.objective_seconds == 300
    assert rto.met and rto.margin_seconds == 90


def test_a_failover_slower_than_the_objective_is_breached_with_a_negative_margin() -> None:
    rto = measure_rto(T0, T0 + timedelta(seconds=30), T0 + timedelta(minutes=6), FIVE_MINUTES)
    assert not rto.met
    assert rto.margin_seconds == -60


def test_an_rto_exactly_at_the_objective_is_met() -> None:
    rto = measure_rto(T0, T0 + timedelta(seconds=20), T0 + FIVE_MINUTES, FIVE_MINUTES)
    assert rto.met and rto.margin_seconds == 0


TIMES = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
GAPS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2))
OBJECTIVES = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=1))


@given(TIMES, GAPS, GAPS, OBJECTIVES)
def test_decision_and_automation_add_up_to_the_rto(
    started: datetime, to_decision: timedelta, to_validated: timedelta, objective: timedelta
) -> None:
    # Given a decision somewhere between the first alarm and the validated switch
    decided = started + to_decision
    validated = decided + to_validated
    # When measured
    rto = measure_rto(started, decided, validated, objective)
    # Then the two shares add up to the whole, neither is negative, and met agrees with the margin's sign
    assert rto.decision_seconds + rto.automation_seconds == pytest.approx(rto.rto_seconds, abs=1e-6)
    assert rto.decision_seconds >= 0 and rto.automation_seconds >= 0
    assert rto.met == (rto.margin_seconds >= 0)
    assert rto.margin_seconds == pytest.approx(objective.total_seconds() - rto.rto_seconds, abs=1e-6)


def test_an_operator_failover_decided_before_the_recorded_start_has_no_negative_share() -> None:
    # Given a decision timestamp a little before the recorded start (clock skew between services)
    rto = measure_rto(T0, T0 - timedelta(seconds=2), T0 + timedelta(minutes=1), FIVE_MINUTES)
    # Then no share is reported negative
    assert rto.decision_seconds == 0
    assert rto.automation_seconds >= 0
    assert rto.rto_seconds == 60


def test_nothing_pending_means_zero_rpo_exposure() -> None:
    assert rpo_exposure(None, T0) == timedelta(0)


def test_rpo_exposure_is_the_age_of_the_oldest_unreplicated_change() -> None:
    assert rpo_exposure(T0 - timedelta(seconds=42), T0) == timedelta(seconds=42)


@given(TIMES, TIMES)
def test_rpo_exposure_is_never_negative(oldest: datetime, now: datetime) -> None:
    # Given any pair of times, including a change stamped after "now" (clock skew)
    exposure = rpo_exposure(oldest, now)
    # Then the exposure is zero or the change's age, never negative
    assert exposure >= timedelta(0)
    assert exposure == max(timedelta(0), now - oldest)
