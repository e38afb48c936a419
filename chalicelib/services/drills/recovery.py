"""Recovery of a drill whose process died: its lease lapsed, so restore the faults, clean the subject up and
record it as interrupted (the daemon's dead-man switch runs this; so does `lifeboat drill recover`)."""

from __future__ import annotations

from pathlib import Path

from chalicelib.adapters.drill_faults import FaultInjector
from chalicelib.clock import parse_timestamp
from chalicelib.domain import drills as rules
from chalicelib.models.drill import DrillRecord, Marker
from chalicelib.observability import emit
from chalicelib.services.deps import Deps
from chalicelib.services.drills.cleanup import clean_subject
from chalicelib.services.drills.control import take_over
from chalicelib.services.drills.dataset import dataset_copy, remove_writes
from chalicelib.services.drills.faults import injector_for
from chalicelib.services.drills.report import finish_record
from chalicelib.services.drills.watch import entry_dict


def recover(
    workload: str,
    d: Deps,
    injector: FaultInjector | None = None,
    *,
    reports_dir: Path | None = None,
    force: bool = False,
) -> DrillRecord | None:
    """A drill whose lease lapsed (its process died): restore, clean up, record it as interrupted.

    None when no drill is left behind. `force` takes over even a live lease (an operator's decision).
    """
    plan = d.plans.get(workload)
    taken = take_over(d, plan.workload, d.clock(), force=force)
    if taken is None:
        return None
    injector = injector or injector_for(plan)
    started = parse_timestamp(taken["started_at"])
    record = DrillRecord(
        drill_id=taken["drill_id"],
        workload=taken.get("workload", workload),
        subject=plan.workload,
        mode=taken.get("mode", "local"),
        scenario=taken["scenario"],
        expectation=rules.scenario(taken["scenario"]).expect,
        requested_by=taken.get("requested_by", "lifeboat"),
        reason=taken.get("reason", "DR drill"),
        started_at=started,
        faults=list(taken.get("faults", [])),
    )
    cleanup = [f"faults: {w}" for w in injector.restore_all()]
    cleanup += clean_subject(plan, d, dict(taken.get("executions") or {}), since=started, interrupted=True)
    copy = dataset_copy(plan, record.drill_id)
    if copy is not None:
        cleanup.append(remove_writes(d.drill_dataset, copy[1]))
    injector.close()
    record.cleanup = cleanup
    record.ended_at = d.clock()
    for entry in reversed(d.ledger.entries(plan.workload, limit=100)):
        if entry.at >= started and entry.kind != "drill":
            record.decisions.append(entry_dict(entry))
    record.verdict, record.as_expected, record.verdict_reason = rules.drill_verdict(
        record.expectation,
        None,
        [],
        interrupted=f"its process stopped during phase {taken.get('phase', '?')} (lease lapsed "
        f"{taken.get('lease_until')}); recovered and cleaned up",
    )
    record.markers.append(Marker(name="interrupted", at=record.ended_at, label="recovered"))
    finish_record(record, d, reports_dir)
    emit("DrillInterrupted", 1, workload=plan.workload, scenario=record.scenario)
    return record
