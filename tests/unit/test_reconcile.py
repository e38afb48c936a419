"""What a conclusion records: the workload state follows traffic as read back, not the path the run took."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from chalicelib.domain.reconcile import retreat, serving_region, serving_words, truthful_state
from chalicelib.models.ledger import WorkloadState
from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_file

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
PRIMARY, SECONDARY = {"primary": 100, "secondary": 0}, {"primary": 0, "secondary": 100}


@cache
def plan() -> DRPlan:
    return load_plan_file(Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml")


def state(active: str | None, **extra: object) -> WorkloadState:
    return WorkloadState(workload="fraud-scoring", active_region=active, **extra)


def test_traffic_moved_to_the_secondary_is_a_failover_whatever_the_run_said() -> None:
    # Given a run that failed after its shift: the state still says the primary serves
    # When the read-back shows everything on the secondary
    changes = truthful_state(plan(), state("us-east-1"), SECONDARY, NOW)
    # Then the state says the secondary serves, and the cooldown clock starts now
    assert changes == {"active_region": "us-west-2", "last_failover_at": NOW}


def test_nothing_changed_records_nothing_new() -> None:
    # Given a workload never failed over (no active region recorded) whose run changed nothing
    changes = truthful_state(plan(), state(None), PRIMARY, NOW)
    # Then the primary is recorded as active, and no transition (no cooldown) is invented
    assert changes == {"active_region": "us-east-1"}
    assert truthful_state(plan(), state("us-east-1"), PRIMARY, NOW) == {}


def test_traffic_back_on_the_primary_is_a_failback() -> None:
    changes = truthful_state(plan(), state("us-west-2"), PRIMARY, NOW)
    assert changes == {"active_region": "us-east-1", "last_failback_at": NOW}


def test_split_traffic_has_no_active_region_and_starts_no_cooldown() -> None:
    # Given a failback stopped at 25%
    earlier = NOW - timedelta(hours=1)
    changes = truthful_state(
        plan(), state("us-west-2", last_failover_at=earlier), {"primary": 25, "secondary": 75}, NOW
    )
    # Then nobody serves everything, and the last failover keeps its time
    assert changes == {"active_region": None}


@pytest.mark.parametrize(
    ("weights", "words"),
    [
        (PRIMARY, "us-east-1 (primary) serves all users"),
        (SECONDARY, "us-west-2 (secondary) serves all users"),
        ({"primary": 25, "secondary": 75}, "traffic is SPLIT: 25% on us-east-1 (primary), 75% on us-west-2"),
        ({"primary": 0, "secondary": 0}, "NO region takes traffic"),
        (None, "which region serves users is UNKNOWN"),
    ],
)
def test_people_are_told_which_region_serves_users(weights: dict[str, int] | None, words: str) -> None:
    assert words in serving_words(plan(), weights)


def test_the_serving_region_is_the_one_with_all_traffic() -> None:
    assert serving_region(plan(), SECONDARY) == "us-west-2"
    assert serving_region(plan(), {"primary": 50, "secondary": 50}) is None


@pytest.mark.parametrize(
    ("operation", "weights", "smoke", "back_to"),
    [
        # all on the target, which failed its last smoke test: back where the run took traffic from
        ("failover", SECONDARY, {"secondary": False}, PRIMARY),
        ("failback", PRIMARY, {"primary": False}, SECONDARY),
        # the target passed, or was never tested: traffic stays
        ("failover", SECONDARY, {"secondary": True}, None),
        ("failback", PRIMARY, {"primary": None}, None),
        # a failed origin is not the run's target (a failover that never shifted leaves the primary alone)
        ("failover", PRIMARY, {"primary": False}, None),
        # a split stays a split (a stopped failback is put back by `lifeboat abort`, not here)
        ("failback", {"primary": 50, "secondary": 50}, {"primary": False}, None),
    ],
)
def test_a_run_ending_unfinished_retreats_only_from_a_target_that_failed(
    operation: str, weights: dict[str, int], smoke: dict[str, bool | None], back_to: dict[str, int] | None
) -> None:
    assert retreat(operation, weights, smoke) == back_to  # type: ignore[arg-type]
