"""Past drills: their summaries from the ledger, a whole record from the evidence bucket."""

from __future__ import annotations

from chalicelib.models.drill import DrillRecord, DrillSummary
from chalicelib.services.deps import Deps


def list_drills(d: Deps, *, workload: str | None = None, limit: int = 20) -> list[DrillSummary]:
    """Finished drills, newest first, from the ledger (one query per workload)."""
    workloads = [workload] if workload else [p.workload for p in d.plans.all()]
    if workload:
        d.plans.get(workload)
    seen: dict[str, DrillSummary] = {}
    for w in workloads:
        for entry in d.ledger.entries(w, limit=max(limit * 3, 50), kind="drill"):
            if entry.outcome not in ("passed", "breached", "failed", "interrupted"):
                continue
            try:
                summary = DrillSummary.model_validate(entry.detail)
            except Exception:  # an entry from an older format: skip rather than fail the listing
                continue
            if summary.workload == w:
                seen.setdefault(summary.drill_id, summary)
    return sorted(seen.values(), key=lambda s: s.started_at, reverse=True)[:limit]


class UnknownDrill(LookupError):
    def __init__(self, drill_id: str) -> None:
        super().__init__(f"no drill {drill_id!r}")


def get_drill(drill_id: str, d: Deps) -> DrillRecord:
    for summary in list_drills(d, limit=500):
        if summary.drill_id == drill_id:
            found = d.drill_evidence.get(summary.workload, drill_id)
            if found is not None:
                return found
    raise UnknownDrill(drill_id)
