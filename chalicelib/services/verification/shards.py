"""A verification run's work: the shards of every asset, and one shard run, each asked of the asset's kind."""

from __future__ import annotations

from chalicelib.adapters.assets import checker_for
from chalicelib.adapters.assets.base import describe_error
from chalicelib.adapters.errors import TransientError, is_transient
from chalicelib.models.plan import DRPlan
from chalicelib.models.verification import Shard, ShardResult
from chalicelib.observability import logger
from chalicelib.services.deps import Deps


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
