"""A whole verification run in this process (`lifeboat verify`, the API): the shards in a thread pool, each
retried a few times, then the report published."""

from __future__ import annotations

import contextvars
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.adapters.assets.base import describe_error
from chalicelib.domain.verification import finalize
from chalicelib.models.verification import Shard, ShardResult, VerificationReport
from chalicelib.services.deps import Deps
from chalicelib.services.verification import shards as work
from chalicelib.services.verification.publish import publish, replication_failures

SHARD_ATTEMPTS = 3
Progress = Callable[[str, Any], None]


def verify_workload(
    workload: str,
    d: Deps,
    *,
    trigger: str = "operator",
    progress: Progress | None = None,
    max_workers: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> VerificationReport:
    """Run a whole verification in this process (the shards in a thread pool) and publish its report."""
    plan = d.plans.get(workload)
    started = d.clock()
    run_id = f"{trigger}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    try:
        shards, problems = work.plan_shards(plan, d)
        shards = work.share_read_budget(shards, work.read_budget(d))
    except Exception as exc:
        shards, problems = [], [f"planning failed: {describe_error(exc)}"]
    if progress:
        progress("planned", shards)

    def one(shard: Shard) -> ShardResult:
        delay = 0.5
        for attempt in range(1, SHARD_ATTEMPTS + 1):
            try:
                return work.run_shard(plan, shard, d, run_id=run_id)
            except Exception as exc:
                if attempt == SHARD_ATTEMPTS:
                    return ShardResult(
                        shard=shard,
                        status="incomplete",
                        reason=f"gave up after {attempt} attempts: {describe_error(exc)}",
                    )
                sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    results: list[ShardResult] = []
    # Workers see this context's settings (the local cloud runs copies of Lifeboat for two regions).
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="verify") as pool:
        for result in pool.map(lambda shard: context.copy().run(one, shard), shards):
            results.append(result)
            if progress:
                progress("shard", result)
    report = finalize(
        plan,
        shards,
        results,
        run_id=run_id,
        trigger=trigger,
        started_at=started,
        now=d.clock(),
        problems=problems,
        replication_failures=replication_failures(plan, d),
    )
    return publish(plan, report, d, differences=[r.differences_key for r in results if r.differences_key])
