"""The end of a drill: its timeline and verdict, then the evidence - trend, reports (evidence bucket and
local files), the ledger summary - and the subject released for the next drill."""

from __future__ import annotations

from pathlib import Path

from chalicelib.domain import drills as rules
from chalicelib.domain.drill_report import headline, render_html, render_markdown
from chalicelib.models.drill import DrillRecord, Phase
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.services.drills.context import DrillContext
from chalicelib.services.drills.control import release


def finish(run: DrillContext, reports_dir: Path | None, interrupted: str | None) -> None:
    """The verdict (an interruption is one), then the record kept and the subject released."""
    rec, plan = run.record, run.subject
    rec.ended_at = run.now()
    if rec.rto is not None:
        rec.phases = [
            *rules.recovery_timeline(
                rec.rto,
                started_at=rec.started_at,
                restored_at=next((m.at for m in rec.markers if m.name == "restored"), None),
            ),
            *[p for p in rec.phases if p.name == "failback"],
        ]
    paused = next((m.at for m in rec.markers if m.name == "paused"), None)
    if paused is not None:  # replication-stalled: how long the replica fell behind before the switch
        until = rec.rto.switched_at if rec.rto else rec.ended_at
        rec.phases.insert(0, Phase(name="replication paused", start=paused, end=max(until, paused)))
    rec.verdict, rec.as_expected, rec.verdict_reason = rules.drill_verdict(
        rec.expectation,
        rec.behaviour,
        rec.objectives,
        failback_outcome=rec.failback_outcome,
        restore_outcome=rec.restore_outcome,
        interrupted=interrupted,
        leftovers=rec.leftovers,
    )
    if interrupted:
        run.mark("interrupted", "drill interrupted")
    rec.decisions.sort(key=lambda e: e["at"])
    finish_record(rec, run.d, reports_dir)
    emit(f"Drill{rec.verdict.capitalize()}", 1, workload=plan.workload, scenario=rec.scenario)
    run.say("verdict", headline(rec))


def finish_record(record: DrillRecord, d: Deps, reports_dir: Path | None) -> None:
    """Trend, reports, evidence bucket, local files, the ledger summary, and the control record's release."""
    try:
        previous = [
            e.detail
            for e in d.ledger.entries(record.workload, limit=200, kind="drill")
            if e.outcome in ("passed", "breached", "failed", "interrupted")
            and e.detail.get("drill_id") != record.drill_id
        ]
        record.trend = rules.trend_points([*previous, record.summary().model_dump(mode="json")])
    except Exception as exc:  # the trend is a picture; the verdict stands without it
        logger.warning("drill trend unavailable", error=str(exc))
    evidence = d.drill_evidence
    record.evidence = evidence.urls(record)
    markdown, page = render_markdown(record), render_html(record)
    try:
        evidence.put(record, markdown=markdown, html=page)
    except Exception as exc:
        logger.error("drill evidence not stored", error=str(exc))
        record.cleanup.append(f"evidence bucket unavailable: {type(exc).__name__}: {exc}")
    if reports_dir is not None:
        reports_dir.mkdir(parents=True, exist_ok=True)
        base = reports_dir / f"{record.workload}-{record.drill_id}"
        base.with_suffix(".md").write_text(markdown, encoding="utf-8")
        base.with_suffix(".html").write_text(page, encoding="utf-8")
        record.report_paths = {
            "markdown": str(base.with_suffix(".md")),
            "html": str(base.with_suffix(".html")),
        }
    d.ledger.record(
        record.subject,
        "drill",
        record.verdict,
        f"drill {record.drill_id} ({record.scenario}): {record.verdict_reason}",
        actor=record.requested_by,
        detail=record.summary().model_dump(mode="json"),
    )
    if record.subject != record.workload:
        d.ledger.record(
            record.workload,
            "drill",
            record.verdict,
            f"drill {record.drill_id} on {record.subject}: {record.verdict_reason}",
            actor=record.requested_by,
            detail=record.summary().model_dump(mode="json"),
        )
    release(d, record.subject)
