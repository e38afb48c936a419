"""The drill's failback: once the primary is restored, a gradual failback like an operator's, watched to the
end and measured (its duration, its phase on the timeline, its step timings)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.domain import drills as rules
from chalicelib.models.durations import format_duration, format_seconds
from chalicelib.services.drills.context import DrillContext


def run_failback(run: DrillContext) -> None:
    plan, rec, d = run.subject, run.record, run.d
    bake = run.policy.failback_bake if run.policy.failback_bake is not None else plan.failback.bake
    payload: dict[str, Any] = {
        "workload": plan.workload,
        "reason": f"drill {rec.drill_id}: fail back after {rec.scenario}",
        "requested_by": rec.requested_by,
        "auto": False,
        "bake_seconds": int(bake.total_seconds()),
    }
    name = f"failback-{plan.workload}-{rec.drill_id}"[:80]
    arn, _ = d.executions.start(plan.workload, "failback", name, payload)
    run.executions[arn] = "failback"
    rec.failback_execution = arn
    d.ledger.record(
        plan.workload,
        "drill",
        "failback-requested",
        payload["reason"],
        actor=rec.requested_by,
        execution=arn,
    )
    run.say(
        "failback",
        f"gradual failback started ({' -> '.join(f'{s}%' for s in plan.failback.steps)}, "
        f"bake {format_duration(bake)} per step)",
    )
    started = run.now()
    run.lease.heartbeat("failing back", force=True)
    while True:
        desc = d.executions.describe(arn)
        if desc["status"] != "RUNNING":
            break
        run.tick()
    run.watch.collect_entries()
    entries = [e for e in d.ledger.entries(plan.workload, limit=100, kind="failback") if e.execution == arn]
    final = next((e for e in entries if e.outcome != "step"), None)
    rec.failback_outcome = final.outcome if final else desc["status"].lower()
    measured = (final.detail.get("outcome") or {}) if final else {}
    ended = desc.get("stopDate") or run.now()
    start = desc.get("startDate") or started
    rec.failback_seconds = float(measured.get("duration_seconds") or (ended - start).total_seconds())
    rec.phases.extend(
        rules.recovery_timeline(
            None,
            started_at=rec.started_at,
            failback=(start, start + timedelta(seconds=rec.failback_seconds)),
        )
    )
    run.mark("failback", f"failback {rec.failback_outcome}", start + timedelta(seconds=rec.failback_seconds))
    rec.objectives.append(
        rules.objective(
            "failback",
            None,
            rec.failback_seconds,
            f"steps {plan.failback.steps}, bake {format_duration(bake)}",
        )
    )
    run.say("failback", f"failback {rec.failback_outcome} in {format_seconds(rec.failback_seconds)}")
