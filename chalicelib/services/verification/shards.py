"""A verification run's work: the shards of every asset, and one shard run, each asked of the asset's kind."""

from __future__ import annotations

from chalicelib.adapters.assets import checker_for
from chalicelib.adapters.assets.base import describe_error
from chalicelib.adapters.errors import TransientError, is_transient
from chalicelib.models.plan import DRPlan
from chalicelib.models.verification import Shard, ShardResult
from chalicelib.observability import logger
from chalicelib.services.deps import Deps
from chalicelib.settings import get_settings

OBJECT_SHARDS = frozenset({"s3-objects"})
"""Shard kinds that may read objects to hash them."""


def plan_shards(plan: DRPlan, d: Deps) -> tuple[list[Shard], list[str]]:
    """The work of one run, and planning problems (an asset whose shards could not be planned)."""
    shards: list[Shard] = []
    problems: list[str] = []
    for asset in plan.assets:
        planned = checker_for(asset).plan(plan, asset)
        for fields in planned.shards:
            shards.append(Shard(index=len(shards), asset=asset.name, **fields))
        problems += planned.problems
    return shards, problems


def read_budget(d: Deps) -> int:
    """The run's read-and-hash budget (settings.verify_read_budget_bytes)."""
    return (d.settings or get_settings()).verify_read_budget_bytes


def share_read_budget(shards: list[Shard], budget: int) -> list[Shard]:
    """The run's read-and-hash budget, split evenly among its object shards (each runs on its own, in
    parallel: a fixed share needs no coordination, and bounds the run's reads by the budget)."""
    objects = [s for s in shards if s.kind in OBJECT_SHARDS]
    if not objects:
        return shards
    each = budget // len(objects)
    return [
        s.model_copy(update={"read_budget_bytes": each}) if s.kind in OBJECT_SHARDS else s for s in shards
    ]


def run_shard(plan: DRPlan, shard: Shard, d: Deps) -> ShardResult:
    """Check one shard. Throttling/5xx propagate (to be retried); anything else makes it incomplete."""
    asset = plan.asset(shard.asset)
    try:
        return checker_for(asset).check(plan, asset, shard, now=d.clock())
    except Exception as exc:
        if is_transient(exc) or isinstance(exc, TransientError):
            raise
        reason = describe_error(exc)
        logger.warning("shard incomplete", workload=plan.workload, shard=shard.index, error=reason)
        return ShardResult(shard=shard, status="incomplete", reason=reason)
