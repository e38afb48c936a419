"""Resilience assessment of a workload (`lifeboat assess`, POST /workloads/{w}/assess, the schedule): read the
live resources and the history, judge them (`domain/assessment.py`), store the report, emit its metrics."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.dynamo import error_code
from chalicelib.adapters.evidence import latest_key as verification_latest_key
from chalicelib.domain.assessment import assess, render_markdown
from chalicelib.models.assessment import (
    SEVERITIES,
    AssessmentFacts,
    AssessmentReport,
    AssetMeasurement,
    DrillRun,
    HistoryFacts,
    Unreadable,
)
from chalicelib.models.plan import DRPlan
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps

PREFIX = "assessment/"
METRIC = "AssessmentFindings"
"""Emitted once per severity on every run (0 included, so an alarm sees a clean bill too); dimensions workload
and severity."""


def latest_key(workload: str) -> str:
    return f"{PREFIX}{workload}/latest.json"


def _failure(exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{error_code(exc) or type(exc).__name__}: {first}"[:300]


def _history(plan: DRPlan, d: Deps, facts: AssessmentFacts) -> HistoryFacts:
    """Drills, the last failover and the measured replication lag, from the ledger and the last verification.
    What cannot be read is recorded as unreadable (the estimates then say they had less to go on)."""
    out = HistoryFacts()
    try:
        for entry in d.ledger.entries(plan.workload, limit=50, kind="drill"):
            if entry.outcome not in ("passed", "breached", "failed"):
                continue
            started = entry.detail.get("started_at")
            out.drills.append(
                DrillRun(
                    at=started or entry.at,
                    verdict=entry.outcome,
                    rto_seconds=entry.detail.get("rto_seconds"),
                )
            )
        out.drills.sort(key=lambda r: r.at, reverse=True)
        out.last_failover_rto_seconds = d.ledger.get_state(plan.workload).last_rto_seconds
    except Exception as exc:
        facts.unreadable.append(Unreadable(subject="the ledger", plan_path="drill", error=_failure(exc)))
    try:
        for state in d.asset_states.all(plan.workload):
            if state.measured_rpo_seconds is not None:
                out.measurements.append(
                    AssetMeasurement(
                        asset=state.asset,
                        seconds=state.measured_rpo_seconds,
                        at=state.measured_at,
                        source=state.measured_by or "replication-events",
                    )
                )
    except Exception as exc:
        facts.unreadable.append(
            Unreadable(subject="replication measurements", plan_path="assets", error=_failure(exc))
        )
    try:
        report = d.evidence.get_json(verification_latest_key(plan.workload))
    except Exception as exc:
        facts.unreadable.append(
            Unreadable(subject="the last verification report", plan_path="assets", error=_failure(exc))
        )
        report = None
    if report:
        out.last_verification_at = report.get("finished_at")
        out.last_verification_verdict = report.get("verdict")
        for asset in report.get("assets") or []:
            if asset.get("measured_rpo_seconds") is not None:
                out.measurements.append(
                    AssetMeasurement(
                        asset=asset["asset"],
                        seconds=asset["measured_rpo_seconds"],
                        at=report.get("finished_at"),
                        source="verification",
                    )
                )
    return out


def assess_plan(plan: DRPlan, d: Deps, *, trigger: str = "on-demand", store: bool = True) -> AssessmentReport:
    """Assess one plan's workload now; with `store`, write the report to the evidence bucket."""
    now = d.clock()
    facts = AssessmentFacts(workload=plan.workload, read_at=now)
    facts.history = _history(plan, d, facts)
    expected = [d.executions.state_machine_name(plan.workload, "failover")]
    d.assessment.gather(plan, facts, state_machines=expected)
    report = assess(plan, facts, now=now, trigger=trigger)
    if store:
        report.evidence = publish(report, d)
    for severity in SEVERITIES:
        emit(METRIC, report.counts.get(severity, 0), workload=plan.workload, severity=severity)
    logger.info("assessed", workload=plan.workload, counts=report.counts, trigger=trigger)
    return report


def assess_workload(
    workload: str, d: Deps, *, trigger: str = "on-demand", store: bool = True
) -> AssessmentReport:
    return assess_plan(d.plans.get(workload), d, trigger=trigger, store=store)


def publish(report: AssessmentReport, d: Deps) -> dict[str, str]:
    """The report as JSON and Markdown under assessment/<workload>/<time>, and as the workload's latest."""
    base = f"{PREFIX}{report.workload}/{report.assessed_at:%Y%m%dT%H%M%SZ}"
    store = d.evidence
    evidence = {"json": store.uri(base + ".json"), "markdown": store.uri(base + ".md")}
    stored = report.model_copy(update={"evidence": evidence})
    store.put_json(base + ".json", stored.model_dump(mode="json"))
    store.put_text(base + ".md", render_markdown(stored))
    store.put_json(latest_key(report.workload), stored.model_dump(mode="json"))
    return evidence


def last_assessment(workload: str, d: Deps) -> AssessmentReport | None:
    """The latest stored report of the workload (None when it was never assessed)."""
    found = d.evidence.get_json(latest_key(workload))
    return None if found is None else AssessmentReport.model_validate(found)


def last_summary(workload: str, d: Deps) -> str | None:
    """`lifeboat status`'s line about the last assessment; None when there is none, and what went wrong when
    it cannot be read (status must still show everything else)."""
    try:
        report = last_assessment(workload, d)
    except Exception as exc:
        return f"unavailable ({_failure(exc)})"
    return None if report is None else report.summary()


def assess_scheduled(d: Deps) -> dict[str, Any]:
    """The schedule: assess every plan, store each report; a plan that fails to assess is logged and
    counted, the others still run."""
    out: dict[str, Any] = {}
    for plan in d.plans.all():
        try:
            report = assess_plan(plan, d, trigger="schedule")
        except Exception as exc:
            logger.exception("assessment failed", workload=plan.workload)
            emit("AssessmentFailed", 1, workload=plan.workload)
            out[plan.workload] = {"error": _failure(exc)}
            continue
        out[plan.workload] = {"counts": report.counts, "evidence": report.evidence}
    return out
