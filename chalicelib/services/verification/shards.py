"""A verification run's work: the shards of every asset, and one shard run, each asked of the asset's kind."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.assets import checker_for
from chalicelib.adapters.assets.base import describe_error
from chalicelib.adapters.errors import TransientError, is_transient
from chalicelib.adapters.evidence import run_prefix
from chalicelib.models.plan import DRPlan
from chalicelib.models.verification import Shard, ShardResult
from chalicelib.observability import logger
from chalicelib.services.deps import Deps
from chalicelib.services.verification.differences import DifferenceList
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


def run_shard(plan: DRPlan, shard: Shard, d: Deps, *, run_id: str | None = None) -> ShardResult:
    """Check one shard. Throttling/5xx propagate (to be retried); anything else makes it incomplete.

    With a `run_id`, the shard's complete difference list is stored in the evidence bucket
    (`<run>/differences/NNNNNN.jsonl`, named by `differences_key`) for the run's merged list.
    """
    asset = plan.asset(shard.asset)
    checker: Any = checker_for(asset)
    found = DifferenceList(shard.asset, shard.index) if run_id is not None else None
    try:
        if found is not None and getattr(checker, "streams_differences", False):
            result: ShardResult = checker.check(plan, asset, shard, now=d.clock(), sink=found.add)
        else:
            result = checker.check(plan, asset, shard, now=d.clock())
            if found is not None:
                found.add_samples(result.samples)
        if found is not None and run_id is not None and found.count:
            key = f"{run_prefix(plan.workload, run_id)}differences/{shard.index:06d}.jsonl"
            d.evidence.put_lines(key, found.file)
            result.differences_key = key
        return result
    except Exception as exc:
        if is_transient(exc) or isinstance(exc, TransientError):
            raise
        reason = describe_error(exc)
        logger.warning("shard incomplete", workload=plan.workload, shard=shard.index, error=reason)
        return ShardResult(shard=shard, status="incomplete", reason=reason)
    finally:
        if found is not None:
            found.close()
