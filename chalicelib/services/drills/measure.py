"""What a drill measures: the RTO and its phases from the failover's own ledger entry, the RPO from the
drill's write log against the replica at the switch, the phases of a run that did not switch, and each
execution's step timings from its history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.clock import parse_timestamp
from chalicelib.domain import drills as rules
from chalicelib.domain.history import steps_from_history
from chalicelib.models.drill import Phase
from chalicelib.models.durations import format_duration, format_seconds
from chalicelib.models.ledger import LedgerEntry
from chalicelib.observability import logger
from chalicelib.services.deps import Deps
from chalicelib.services.drills.context import DrillContext


def failover_entry(d: Deps, workload: str, execution: str) -> LedgerEntry | None:
    for entry in d.ledger.entries(workload, limit=100, kind="failover"):
        if entry.execution == execution:
            return entry
    return None


def measure_failover(run: DrillContext, outcome: dict[str, Any], fault_at: datetime) -> None:
    plan, rec = run.subject, run.record
    entry = failover_entry(run.d, plan.workload, outcome["execution"])
    detail = entry.detail if entry else {}
    rto = detail.get("outcome") or {}
    shift = (detail.get("shift") or {}).get("detail") or {}
    validated = parse_timestamp(rto["validated_at"]) if rto.get("validated_at") else outcome["at"]
    first_alarm = parse_timestamp(rto["started_at"]) if rto.get("started_at") else fault_at
    decided = parse_timestamp(rto["decided_at"]) if rto.get("decided_at") else first_alarm
    switched = parse_timestamp(shift["at"]) if shift.get("at") else validated
    rec.rto = rules.rto_breakdown(
        fault_at=fault_at,
        first_alarm_at=first_alarm,
        decided_at=decided,
        switched_at=switched,
        validated_at=validated,
    )
    rec.markers.extend(m for m in rules.rto_markers(rec.rto) if m.name != "fault")
    rec.objectives.append(rules.objective("RTO", plan.rto, rec.rto.rto_seconds, "first ALARM -> validated"))
    writes = run.writes
    if writes.asset is not None:
        asset = writes.asset
        replica = writes.replica_at_switch
        if replica is None:
            replica = writes.replica_keys()
        rec.rpo = rules.measure_rpo(
            asset.name,
            plan.asset_rpo(asset),
            run.policy.write_interval,
            writes.log(),
            replica,
            switched,
        )
        rec.objectives.append(
            rules.objective("RPO", plan.asset_rpo(asset), rec.rpo.rpo_seconds, f"writes to {asset.name}")
        )
    else:
        rec.objectives.append(
            rules.objective("RPO", plan.rpo, None, "the plan has no S3 dataset to write to")
        )
    run.say(
        "measured",
        f"RTO {format_seconds(rec.rto.rto_seconds)} (objective {format_duration(plan.rto)})"
        + (f", RPO {format_seconds(rec.rpo.rpo_seconds)}" if rec.rpo else ""),
    )


def measure_no_switch(run: DrillContext, outcome: dict[str, Any] | None, fault_at: datetime) -> None:
    rec = run.record
    execution = outcome.get("execution") if outcome else None
    entry = failover_entry(run.d, run.subject.workload, execution) if execution else None
    detail = entry.detail if entry else {}
    trigger = detail.get("trigger") or {}
    recheck = detail.get("recheck") or {}
    end = outcome["at"] if outcome else run.now()
    first = parse_timestamp(trigger["first_alarm_at"]) if trigger.get("first_alarm_at") else None
    first = first or rules.first_alarm_transitions(rec.alarms, fault_at)
    if rec.expectation == "no-failover":
        rec.phases.append(Phase(name="fault", start=fault_at, end=end if outcome else run.now()))
    elif first is not None:
        decided = parse_timestamp(recheck["at"]) if recheck.get("at") else first
        rec.phases += [
            Phase(name="detection", start=fault_at, end=max(first, fault_at)),
            Phase(name="decision", start=first, end=max(decided, first)),
            Phase(name="backup check", start=max(decided, first), end=max(end, decided, first)),
        ]
        run.mark("alarm", "first ALARM", first)
        run.mark("decision", "decision", max(decided, first))
    for decision in rec.decisions:
        if decision["kind"] in ("decision", "failover") and decision["outcome"] in (
            "suppressed",
            "cancelled",
        ):
            run.mark("suppressed", f"{decision['kind']} {decision['outcome']}", decision["at"])
    if outcome and outcome.get("outcome") == "refused":
        run.mark("refused", "failover refused", outcome["at"])
    rec.objectives.append(rules.objective("RTO", run.subject.rto, None, "no switch in this scenario"))


def collect_steps(run: DrillContext) -> None:
    """Step timings of the drill's failover and failback, read from their execution histories."""
    for arn, kind in run.executions.items():
        if arn not in (run.record.failover_execution, run.record.failback_execution):
            continue
        try:
            steps = steps_from_history(run.d.executions.events(arn))
        except Exception as exc:  # the history is evidence, not a reason to fail the drill
            logger.warning("drill could not read history", execution=arn, error=str(exc))
            continue
        run.record.steps.extend(rules.step_timings(kind, steps))
