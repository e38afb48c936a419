"""The verification state machine's tasks (plan, one Map item, finalize) and the hourly schedule.

Shards and shard results travel through the evidence bucket: the Distributed Map's ItemReader reads the
planned shards, each item stores its result, and the last task merges them; only small summaries travel
in the execution's state.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.evidence import run_prefix
from chalicelib.domain.verification import finalize
from chalicelib.models.verification import (
    FinalizeInput,
    PlannedRun,
    PlanRunInput,
    Shard,
    ShardInput,
    ShardResult,
    ShardsLocation,
)
from chalicelib.observability import emit
from chalicelib.services.deps import Deps
from chalicelib.services.verification.publish import publish, replication_failures
from chalicelib.services.verification.shards import plan_shards, read_budget, run_shard, share_read_budget


def task_plan_run(inp: PlanRunInput, d: Deps) -> PlannedRun:
    """First state: plan the shards and store them where the Distributed Map's ItemReader reads them."""
    plan = d.plans.get(inp.workload)
    shards, problems = plan_shards(plan, d)
    shards = share_read_budget(shards, read_budget(d))
    store = d.evidence
    base = run_prefix(plan.workload, inp.run_id)
    store.put_json(base + "shards.json", [s.model_dump(mode="json") for s in shards])
    if problems:
        store.put_json(base + "problems.json", problems)
    trigger = str(inp.input.get("trigger") or "execution")
    return PlannedRun(
        workload=plan.workload,
        run_id=inp.run_id,
        trigger=trigger,
        started_at=inp.started or d.clock(),
        shards=ShardsLocation(bucket=store.bucket, key=base + "shards.json", count=len(shards)),
    )


def task_run_shard(inp: ShardInput, d: Deps) -> dict[str, Any]:
    """One Map item: check the shard and store its result (only a small summary travels in the state)."""
    plan = d.plans.get(inp.workload)
    result = run_shard(plan, inp.shard, d, run_id=inp.run_id)
    key = f"{run_prefix(plan.workload, inp.run_id)}shards/{inp.shard.index:06d}.json"
    d.evidence.put_json(key, result.model_dump(mode="json"))
    return {"index": inp.shard.index, "status": result.status, "mismatches": result.mismatches}


def task_finalize(inp: FinalizeInput, d: Deps) -> dict[str, Any]:
    """Last state (also reached from every Catch): merge what the shards stored, publish the report."""
    plan = d.plans.get(inp.workload)
    store = d.evidence
    base = run_prefix(plan.workload, inp.run_id)
    problems = list(store.get_json(base + "problems.json") or [])
    error = inp.context.get("error")
    if error:
        problems.append(
            f"the run stopped early: {error.get('Error', 'error')}: {str(error.get('Cause', ''))[:500]}"
        )
    raw_shards = store.get_json(base + "shards.json")
    shards = [Shard.model_validate(s) for s in raw_shards or []]
    if raw_shards is None and plan.assets:
        problems.append("no shards were planned")
    results = [ShardResult.model_validate(doc) for _, doc in store.iter_json(base + "shards/")]
    run = inp.context.get("run") or {}
    trigger = str(run.get("trigger") or (inp.context.get("trigger")) or "execution")
    started = inp.started or d.clock()
    report = finalize(
        plan,
        shards,
        results,
        run_id=inp.run_id,
        trigger=trigger,
        started_at=started,
        now=d.clock(),
        execution=inp.execution,
        problems=problems,
        replication_failures=replication_failures(plan, d),
    )
    ordered = sorted(results, key=lambda r: r.shard.index)
    publish(plan, report, d, differences=[r.differences_key for r in ordered if r.differences_key])
    return {
        "verdict": report.verdict,
        "summary": report.summary,
        "evidence": report.evidence,
        "assets": {a.asset: a.verdict for a in report.assets},
    }


def start_scheduled(d: Deps) -> dict[str, Any]:
    """The schedule: start one verification execution per plan, named from the hour (idempotent)."""
    now = d.clock()
    started: dict[str, Any] = {}
    for plan in d.plans.all():
        name = f"scheduled-{now:%Y%m%dT%H%M}"
        try:
            arn, new = d.executions.start(
                plan.workload, "verify", name, {"workload": plan.workload, "trigger": "schedule"}
            )
        except LookupError as exc:
            started[plan.workload] = {"started": False, "reason": str(exc)}
            continue
        started[plan.workload] = {"started": new, "execution": arn}
    emit("VerificationScheduled", len(started))
    return started
