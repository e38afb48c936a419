"""Publishing a verification report: evidence (JSON + Markdown), ledger entry, metrics, each asset's
replication state, and an alert when an objective is breached or could not be proven."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.errors import is_transient
from chalicelib.adapters.evidence import latest_key, run_prefix
from chalicelib.domain.verification import render_markdown
from chalicelib.models.plan import DRPlan
from chalicelib.models.replication import AssetReplicationState
from chalicelib.models.verification import AssetVerification, VerificationReport
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.services.verification.differences import merge


def replication_failures(plan: DRPlan, d: Deps) -> dict[str, dict[str, dict[str, Any]]]:
    """Failure reasons the replication events recorded per asset since its last clean verification."""
    try:
        return {s.asset: s.failures for s in d.asset_states.all(plan.workload) if s.failures}
    except Exception as exc:
        if is_transient(exc):
            raise
        logger.warning("asset states unreadable", workload=plan.workload, error=str(exc))
        return {}


def publish(
    plan: DRPlan, report: VerificationReport, d: Deps, *, differences: list[str] | None = None
) -> VerificationReport:
    """Evidence (JSON + Markdown + the complete difference list merged from the shards' `differences`
    parts), ledger, metrics, asset state, and an alert when an objective is breached or the run could not
    prove it."""
    store = d.evidence
    base = run_prefix(plan.workload, report.run_id)
    report.evidence = {"json": store.uri(base + "report.json"), "markdown": store.uri(base + "report.md")}
    try:
        report.evidence["differences"] = merge(store, list(differences or []), base + "differences.jsonl")
    except Exception as exc:  # the report stands without its full list; it says so
        if is_transient(exc):
            raise
        report.problems.append(f"the complete difference list could not be written: {exc}")
        logger.error("difference list not written", workload=plan.workload, error=str(exc))
    store.put_text(base + "report.md", render_markdown(report))
    store.put_json(base + "report.json", report.model_dump(mode="json"))
    store.put_json(
        latest_key(plan.workload),
        {"run_id": report.run_id, "verdict": report.verdict, "at": report.finished_at, **report.evidence},
    )
    d.ledger.record(
        plan.workload,
        "verification",
        report.verdict,
        report.summary,
        actor="lifeboat" if report.trigger != "operator" else "operator",
        execution=report.execution,
        detail={
            "run_id": report.run_id,
            "trigger": report.trigger,
            "evidence": report.evidence,
            "assets": [
                {
                    "asset": a.asset,
                    "verdict": a.verdict,
                    "measured_rpo_seconds": a.measured_rpo_seconds,
                    "objective_seconds": a.objective_seconds,
                    "mismatches": a.mismatches,
                    "extra": a.extra,
                    "unverified": a.unverified,
                    "findings": [f.code for f in a.findings],
                }
                for a in report.assets
            ],
        },
        at=report.finished_at,
    )
    for a in report.assets:
        dims = {"workload": plan.workload, "asset": a.asset}
        emit("VerificationObjectsChecked", a.objects_checked, **dims)
        emit("VerificationMismatches", a.mismatches + a.extra, **dims)
        if a.measured_rpo_seconds is not None:
            emit("VerificationMeasuredRPO", a.measured_rpo_seconds, "Seconds", **dims)
        emit("VerificationObjectiveMet", 0 if a.verdict in ("breached", "incomplete") else 1, **dims)
        _record_asset_state(plan, a, report, d)
    emit("VerificationRun", 1, workload=plan.workload, verdict=report.verdict)
    # The deployed "<workload>-rpo-breach" alarm watches this metric (infra/template.py RPO_BREACH_METRIC).
    emit("RPOBreached", sum(1 for a in report.assets if a.verdict == "breached"), workload=plan.workload)
    if report.verdict in ("breached", "incomplete"):
        subject = {
            "breached": f"[Lifeboat] {plan.workload}: RPO objective BREACHED",
            "incomplete": f"[Lifeboat] {plan.workload}: backup verification INCOMPLETE",
        }[report.verdict]
        try:
            d.notifier.publish(plan, subject, report.summary, {"run_id": report.run_id, **report.evidence})
        except Exception as exc:  # the alert failing must not lose the report
            logger.error("verification alert failed", workload=plan.workload, error=str(exc))
    logger.info("verification", workload=plan.workload, run_id=report.run_id, verdict=report.verdict)
    return report


def _record_asset_state(plan: DRPlan, a: AssetVerification, report: VerificationReport, d: Deps) -> None:
    def change(state: AssetReplicationState) -> None:
        state.objective_seconds = a.objective_seconds
        state.last_verification = {
            "run_id": report.run_id,
            "verdict": a.verdict,
            "at": report.finished_at.isoformat(),
            "measured_rpo_seconds": a.measured_rpo_seconds,
            "mismatches": a.mismatches,
        }
        if a.incomplete_reasons:
            return  # an incomplete run proves nothing about what is pending
        # A complete run knows exactly what is outstanding: it replaces what events had accumulated.
        state.pending = {}
        if a.mismatches == 0:
            state.failures = {}  # every failed object is in the replica now
        for s in a.samples:
            if s.kind in ("missing", "different", "stale") and s.source_last_modified is not None:
                state.add_pending(s.key, s.source_last_modified)
        if a.oldest_unreplicated_key and a.oldest_unreplicated_at:
            state.add_pending(a.oldest_unreplicated_key, a.oldest_unreplicated_at)
        state.measured_rpo_seconds = a.measured_rpo_seconds
        state.measured_at = report.finished_at
        state.measured_by = "verification"

    try:
        d.asset_states.update(plan.workload, a.asset, change)
    except Exception as exc:  # the report stands even if the state write fails
        logger.error("asset state not updated", workload=plan.workload, asset=a.asset, error=str(exc))
