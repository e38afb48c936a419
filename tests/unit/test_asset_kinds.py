"""The asset kind registry: every kind a plan may name has one checker, and verification only orchestrates."""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.assets import CHECKERS, asset_grants, checker_for
from chalicelib.adapters.assets.base import ShardPlan
from chalicelib.adapters.errors import TransientError
from chalicelib.models.plan import Asset, DRPlan, DynamoDBAsset
from chalicelib.models.planfile import load_plan_file
from chalicelib.models.verification import Shard, ShardResult
from chalicelib.services.verification import shards as work

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def plan_kinds() -> set[str]:
    """The `kind` of every asset model the plan's `assets` accept."""
    union = typing.get_args(Asset)[0]
    return {typing.get_args(model.model_fields["kind"].annotation)[0] for model in typing.get_args(union)}


def test_every_asset_kind_a_plan_may_name_has_exactly_one_checker() -> None:
    assert set(CHECKERS) == plan_kinds()
    # And each shard kind belongs to one checker, so a stored shard always finds its code
    owned = [check for checker in CHECKERS.values() for check in checker.checks]
    assert len(owned) == len(set(owned))


def test_an_asset_of_an_unknown_kind_is_named_in_the_error() -> None:
    stray = DynamoDBAsset.model_construct(name="stray", kind="feature-store", table="t")
    with pytest.raises(LookupError, match="no asset checker for kind 'feature-store' \\(asset stray\\)"):
        checker_for(stray)


def test_the_example_plans_grants_can_all_be_rendered() -> None:
    # Given every grant the example plan's assets declare
    grants = asset_grants(load_plan_file(ROOT / "plans" / "fraud-scoring.yaml"))
    # Then each joins a named statement (or is a listing, merged per bucket), and each capability is used
    assert all(g.sid or g.action == "s3:ListBucket" for g in grants)
    assert {g.capability for g in grants} == {
        "asset-list",
        "asset-verify",
        "asset-redrive",
        "inspect",
        "model-identify",
    }
    assert all(g.why for g in grants)


# -- verification asks the kind's checker -----------------------------------------------------------------
class FakeChecker:
    """A kind whose shards are scripted: what a new kind's module plugs into."""

    kind = "dynamodb"
    checks = ("first", "second")

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.ran: list[tuple[str, datetime]] = []

    def plan(self, plan: DRPlan, asset: Any) -> ShardPlan:
        return ShardPlan(shards=[{"kind": "first"}, {"kind": "second"}], problems=[f"{asset.name}: partly"])

    def check(self, plan: DRPlan, asset: Any, shard: Shard, *, now: datetime) -> ShardResult:
        self.ran.append((shard.kind, now))
        if self.failure is not None:
            raise self.failure
        return ShardResult(shard=shard, source_objects=1)


class Clock:
    def clock(self) -> datetime:
        return T0


@pytest.fixture
def features_plan() -> DRPlan:
    plan = load_plan_file(ROOT / "plans" / "fraud-scoring.yaml")
    return plan.model_copy(update={"assets": [a for a in plan.assets if a.kind == "dynamodb"]})


def test_shards_are_planned_and_run_by_the_assets_kind(
    monkeypatch: pytest.MonkeyPatch, features_plan: DRPlan
) -> None:
    # Given a checker registered for the plan's only asset kind
    fake = FakeChecker()
    monkeypatch.setitem(CHECKERS, "dynamodb", fake)
    # When the run is planned and one shard runs
    shards, problems = work.plan_shards(features_plan, Clock())  # type: ignore[arg-type]
    result = work.run_shard(features_plan, shards[1], Clock())  # type: ignore[arg-type]
    # Then the shards are the kind's, numbered in the run, and its problems are the run's
    assert [(s.index, s.asset, s.kind) for s in shards] == [
        (0, "features", "first"),
        (1, "features", "second"),
    ]
    assert problems == ["features: partly"]
    # And the shard ran in the kind's checker, at the run's time
    assert fake.ran == [("second", T0)] and result.source_objects == 1


def test_a_failing_check_makes_its_shard_incomplete_but_throttling_is_retried(
    monkeypatch: pytest.MonkeyPatch, features_plan: DRPlan
) -> None:
    shard = Shard(index=0, asset="features", kind="first")
    # A check that fails for good makes the shard incomplete, saying why
    monkeypatch.setitem(CHECKERS, "dynamodb", FakeChecker(RuntimeError("table gone")))
    result = work.run_shard(features_plan, shard, Clock())  # type: ignore[arg-type]
    assert (result.status, result.reason) == ("incomplete", "RuntimeError: table gone")
    # A transient failure propagates, so the state machine (or the on-demand pool) retries the shard
    monkeypatch.setitem(CHECKERS, "dynamodb", FakeChecker(TransientError("ThrottlingException")))
    with pytest.raises(TransientError):
        work.run_shard(features_plan, shard, Clock())  # type: ignore[arg-type]
