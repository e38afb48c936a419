"""A drill record rendered as evidence: Markdown, and a self-contained HTML page with two inline SVG pictures
(the timeline of the phases, and the trend of RTO/RPO over past drills). Pure: a record in, text out.

The timeline reads without its labels: one coloured bar per phase on a time axis, and a distinct shape per
marker (fault: red triangle, first ALARM: orange circle, decision: purple diamond, switch: blue square,
validated: green circle, primary restored: grey circle, failback done: cyan circle, refused: black
cross), plus a legend.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.drills import EXPECTATION_WORDS, SCENARIOS
from chalicelib.models.drill import DrillRecord, Marker, Phase, TrendPoint
from chalicelib.models.durations import format_seconds
from chalicelib.models.plan import DRPlan

PHASE_COLOURS = {
    "baseline": "#cbd5e1",
    "fault": "#ef4444",
    "detection": "#f59e0b",
    "decision": "#8b5cf6",
    "automation": "#3b82f6",
    "validation": "#10b981",
    "restore": "#94a3b8",
    "failback": "#06b6d4",
    "backup check": "#64748b",
    "replication paused": "#fcd34d",
    "redeploy": "#a78bfa",
}
MARKER_STYLE = {
    "fault": ("triangle", "#dc2626"),
    "paused": ("triangle", "#d97706"),
    "heal": ("circle", "#86efac"),
    "alarm": ("circle", "#f97316"),
    "verified": ("circle", "#a3e635"),
    "detected": ("circle", "#f97316"),
    "decision": ("diamond", "#7c3aed"),
    "switch": ("square", "#2563eb"),
    "validated": ("circle", "#16a34a"),
    "restored": ("circle", "#64748b"),
    "failback": ("circle", "#0891b2"),
    "refused": ("cross", "#111827"),
    "suppressed": ("cross", "#6b7280"),
    "interrupted": ("cross", "#dc2626"),
}
LEGEND = (
    *("fault", "alarm", "decision", "switch", "validated"),
    *("restored", "failback", "refused", "suppressed", "detected"),
)
VERDICT_COLOURS = {"passed": "#059669", "breached": "#d97706", "failed": "#dc2626", "interrupted": "#6b7280"}

WIDTH = 920
LEFT = 190  # room for the alarms' names
RIGHT = 64  # room for the last bar's duration label
ROW = 26


def _x(at: datetime, start: datetime, seconds: float) -> float:
    span = max(seconds, 1e-6)
    offset = (at - start).total_seconds()
    return LEFT + max(0.0, min(1.0, offset / span)) * (WIDTH - LEFT - RIGHT)


def _a(value: object) -> str:
    """An attribute value, escaped for XML."""
    return html.escape(str(value), quote=True)


def _span(record: DrillRecord) -> tuple[datetime, float]:
    stamps = [record.started_at]
    stamps += [p.end for p in record.phases] + [p.start for p in record.phases]
    stamps += [m.at for m in record.markers]
    stamps += [a["at"] for a in record.alarms if isinstance(a.get("at"), datetime)]
    if record.ended_at:
        stamps.append(record.ended_at)
    start, end = min(stamps), max(stamps)
    return start, max(1.0, (end - start).total_seconds())


def _ticks(seconds: float) -> list[float]:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if seconds / step <= 10:
            break
    return [i * step for i in range(int(seconds // step) + 1)]


def _marker_shape(kind: str, x: float, y: float) -> str:
    shape, colour = MARKER_STYLE.get(kind, ("circle", "#111827"))
    if shape == "triangle":
        points = f"{x:.1f},{y - 7:.1f} {x - 7:.1f},{y + 6:.1f} {x + 7:.1f},{y + 6:.1f}"
        return f'<polygon points="{points}" fill="{colour}"/>'
    if shape == "diamond":
        points = f"{x:.1f},{y - 7:.1f} {x + 7:.1f},{y:.1f} {x:.1f},{y + 7:.1f} {x - 7:.1f},{y:.1f}"
        return f'<polygon points="{points}" fill="{colour}"/>'
    if shape == "square":
        return f'<rect x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" height="12" fill="{colour}"/>'
    if shape == "cross":
        return (
            f'<path d="M{x - 6:.1f},{y - 6:.1f} L{x + 6:.1f},{y + 6:.1f} M{x + 6:.1f},{y - 6:.1f} '
            f'L{x - 6:.1f},{y + 6:.1f}" stroke="{colour}" stroke-width="3"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{colour}"/>'


def _budget(record: DrillRecord) -> tuple[datetime, datetime, float] | None:
    """The RTO budget: from the first ALARM of the quorum (a restore's: from the damage detected), the plan's
    RTO objective long."""
    rto = record.objective("RTO")
    objective = record.plan_rto_seconds or (rto.objective_seconds if rto else None)
    if not objective:
        return None
    if record.rto is not None:
        start = record.rto.first_alarm_at
    elif record.restore is not None:
        start = record.restore.detected_at
    else:
        return None
    return start, start + timedelta(seconds=objective), objective


def _budget_from(record: DrillRecord) -> str:
    return "the damage detected" if record.rto is None and record.restore is not None else "the first ALARM"


def _budget_used(record: DrillRecord) -> float | None:
    if record.rto is not None:
        return record.rto.rto_seconds
    return record.restore.rto_seconds if record.restore is not None else None


def _alarm_rows_svg(record: DrillRecord) -> dict[str, list[tuple[datetime, str]]]:
    """Each trigger alarm's state changes, in the order the alarms first changed."""
    rows: dict[str, list[tuple[datetime, str]]] = {}
    for change in sorted(
        (c for c in record.alarms if isinstance(c.get("at"), datetime)), key=lambda c: c["at"]
    ):
        rows.setdefault(str(change.get("alarm", "?")), []).append((change["at"], str(change.get("state"))))
    return rows


def timeline_svg(record: DrillRecord) -> str:
    """The drill as a picture: marker lane, the RTO budget, one lane per phase, one lane per alarm (named, red
    while in ALARM), a time axis in seconds from the start and wall-clock time (UTC), and a legend."""
    start, seconds = _span(record)
    end = start + timedelta(seconds=seconds)
    phases: Sequence[Phase] = record.phases or [
        Phase(name="baseline", start=record.started_at, end=record.ended_at or record.started_at)
    ]
    alarms = _alarm_rows_svg(record)
    top = 76
    alarm_y = top + len(phases) * ROW + 8
    axis_y = alarm_y + max(1, len(alarms)) * ROW
    legend_y = axis_y + 50
    height = legend_y + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" font-family="sans-serif" font-size="12">',
        f"<title>{_a(f'Drill {record.drill_id}: {record.scenario} timeline')}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    # The RTO budget: a green band from the first ALARM for the objective's length (cut at the picture's
    # edge when it outlasts the drill), with what it is and where it ends.
    budget = _budget(record)
    if budget is not None:
        b_start, b_end, objective = budget
        x1, x2 = _x(b_start, start, seconds), _x(min(b_end, end), start, seconds)
        parts.append(
            f'<rect x="{x1:.1f}" y="{top - 6}" width="{max(2.0, x2 - x1):.1f}" height="{axis_y - top + 6}" '
            'fill="#10b981" fill-opacity="0.08" stroke="#10b981" stroke-dasharray="4,3" stroke-width="1">'
            f"<title>{_a(f'RTO budget {format_seconds(objective)} from {_budget_from(record)}')}"
            "</title></rect>"
        )
        beyond = "" if b_end <= end else ", beyond this picture"
        words = (
            f"RTO budget {format_seconds(objective)} from {_budget_from(record)} "
            f"(ends {_clock(b_end, seconds=True)} UTC{beyond})"
        )
        if (spent := _budget_used(record)) is not None:
            words += f": {format_seconds(spent)} used"
        parts.append(f'<text x="{x1 + 4:.1f}" y="{top - 12}" fill="#047857">{_a(words)}</text>')
    # Marker lane: a dashed guide down the picture and the marker's shape on top (crowded markers, e.g.
    # decision/switch/validated a fraction of a second apart, alternate between two rows).
    last_x, row = -100.0, 0
    for marker in sorted(record.markers, key=lambda m: m.at):
        x = _x(marker.at, start, seconds)
        row = 1 - row if x - last_x < 16 else 0
        last_x = x
        y = 14 + row * 18
        colour = MARKER_STYLE.get(marker.name, ("", "#111827"))[1]
        parts.append(
            f'<line x1="{x:.1f}" y1="{y + 8}" x2="{x:.1f}" y2="{axis_y}" stroke="{colour}" '
            f'stroke-dasharray="3,3" stroke-width="1"/>'
        )
        shape = _marker_shape(marker.name, x, y)
        label = f"{marker.label or marker.name} at {_clock(marker.at)} UTC"
        parts.append(f"<g><title>{_a(label)}</title>{shape}</g>")
    # Phase lanes.
    for index, phase in enumerate(phases):
        y = top + index * ROW
        x1, x2 = _x(phase.start, start, seconds), _x(phase.end, start, seconds)
        colour = PHASE_COLOURS.get(phase.name, "#64748b")
        took = format_seconds(phase.seconds)
        parts.append(f'<text x="{LEFT - 8}" y="{y + 15}" text-anchor="end">{_a(phase.name)}</text>')
        parts.append(
            f'<rect x="{x1:.1f}" y="{y + 3}" width="{max(2.0, x2 - x1):.1f}" height="{ROW - 8}" rx="3" '
            f'fill="{colour}"><title>{_a(f"{phase.name}: {took}, from {_clock(phase.start)} UTC")}</title>'
            "</rect>"
        )
        parts.append(f'<text x="{max(x1, x2) + 4:.1f}" y="{y + 15}" fill="#334155">{took}</text>')
    # Alarm lanes: one per trigger alarm, named; red while it was in ALARM, a tick at each change.
    if not alarms:
        parts.append(f'<text x="{LEFT - 8}" y="{alarm_y + 14}" text-anchor="end">alarms</text>')
        parts.append(f'<text x="{LEFT + 4}" y="{alarm_y + 14}" fill="#64748b">no alarm changed</text>')
    for index, (name, changes) in enumerate(alarms.items()):
        y = alarm_y + index * ROW
        parts.append(f'<text x="{LEFT - 8}" y="{y + 14}" text-anchor="end" font-size="11">{_a(name)}</text>')
        for (at, state), following in zip(changes, [*changes[1:], (end, "")], strict=True):
            x1, x2 = _x(at, start, seconds), _x(following[0], start, seconds)
            words = f"{name} -> {state} at {_clock(at)} UTC"
            if state == "ALARM":
                parts.append(
                    f'<rect x="{x1:.1f}" y="{y + 5}" width="{max(2.0, x2 - x1):.1f}" height="{ROW - 12}" '
                    f'fill="#fecaca"><title>{_a(words)}</title></rect>'
                )
            colour = "#dc2626" if state == "ALARM" else "#16a34a"
            parts.append(
                f'<rect x="{x1 - 1.5:.1f}" y="{y + 2}" width="3" height="{ROW - 8}" fill="{colour}">'
                f"<title>{_a(words)}</title></rect>"
            )
    # Time axis: seconds from the start, and wall-clock time (UTC) under them.
    parts.append(
        f'<line x1="{LEFT}" y1="{axis_y}" x2="{WIDTH - RIGHT}" y2="{axis_y}" stroke="#334155" '
        'stroke-width="1"/>'
    )
    for tick in _ticks(seconds):
        x = LEFT + tick / seconds * (WIDTH - LEFT - RIGHT)
        wall = start + timedelta(seconds=tick)
        parts.append(f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 5}" stroke="#334155"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{axis_y + 18}" text-anchor="middle">+{format_seconds(tick)}</text>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{axis_y + 32}" text-anchor="middle" fill="#64748b" font-size="10">'
            f"{wall:%H:%M:%S}</text>"
        )
    parts.append(
        f'<text x="{LEFT - 34}" y="{axis_y + 32}" text-anchor="end" fill="#64748b" font-size="10">UTC</text>'
    )
    # Legend: marker shapes.
    x = 12
    used = {m.name for m in record.markers}
    for kind in [k for k in LEGEND if k in used or k in ("fault", "alarm", "switch")]:
        parts.append(_marker_shape(kind, x + 6, legend_y))
        parts.append(f'<text x="{x + 16}" y="{legend_y + 4}">{_a(kind)}</text>')
        x += 100
    parts.append("</svg>")
    return "".join(parts)


def trend_svg(
    points: Sequence[TrendPoint], *, rto_objective: float | None, rpo_objective: float | None
) -> str:
    """Measured RTO (blue) and RPO (orange) of past drills, oldest on the left; the dashed lines are the
    objectives, always on the scale (a drill far inside its objective shows as far below its line)."""
    width, height, left, bottom, top = 460, 190, 56, 30, 22
    values = [v for p in points for v in (p.rto_seconds, p.rpo_seconds) if v is not None]
    bounds = [b for b in (rto_objective, rpo_objective) if b is not None]
    peak = max([*values, *bounds, 1.0]) * 1.1
    plot_w, plot_h = width - left - 12, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w * i / max(1, len(points) - 1) if len(points) > 1 else plot_w / 2)

    def y(value: float) -> float:
        return top + plot_h - plot_h * min(value, peak) / peak

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="11">',
        "<title>Measured RTO and RPO over past drills</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 12}" y2="{top + plot_h}" stroke="#334155"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#334155"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{format_seconds(peak)}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0s</text>',
    ]
    for name, bound, colour in (("RTO", rto_objective, "#2563eb"), ("RPO", rpo_objective, "#ea580c")):
        if bound is None:
            continue
        parts.append(
            f'<line x1="{left}" y1="{y(bound):.1f}" x2="{width - 12}" y2="{y(bound):.1f}" '
            f'stroke="{colour}" stroke-dasharray="6,4" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{width - 14}" y="{y(bound) - 3:.1f}" text-anchor="end" fill="{colour}">'
            f"{name} objective {format_seconds(bound)}</text>"
        )
        parts.append(
            f'<text x="{left - 4}" y="{y(bound) + 4:.1f}" text-anchor="end" fill="{colour}">'
            f"{format_seconds(bound)}</text>"
        )
    for field, colour in (("rto_seconds", "#2563eb"), ("rpo_seconds", "#ea580c")):
        coords = [(x(i), y(v)) for i, p in enumerate(points) if (v := getattr(p, field)) is not None]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for cx, cy in coords:
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{colour}"/>')
    parts.append(f'<rect x="{left + 6}" y="{height - 14}" width="10" height="4" fill="#2563eb"/>')
    parts.append(f'<text x="{left + 20}" y="{height - 9}">RTO</text>')
    parts.append(f'<rect x="{left + 60}" y="{height - 14}" width="10" height="4" fill="#ea580c"/>')
    parts.append(f'<text x="{left + 74}" y="{height - 9}">RPO</text>')
    parts.append(f'<text x="{width - 12}" y="{height - 9}" text-anchor="end">{len(points)} drill(s)</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- text --------------------------------------------------------------------------------------------------
def plan_revision(plan: DRPlan) -> str:
    """Which revision of a plan was drilled: the first 12 hex digits of the SHA-256 of the plan as loaded."""
    return hashlib.sha256(plan.model_dump_json().encode()).hexdigest()[:12]


def plan_facts(plan: DRPlan) -> dict[str, Any]:
    """What a drill record keeps of its plan: the revision, the objectives and each asset's RPO."""
    return {
        "plan_revision": plan_revision(plan),
        "plan_rto_seconds": plan.rto.total_seconds(),
        "plan_rpo_seconds": plan.rpo.total_seconds(),
        "asset_rpos": {a.name: plan.asset_rpo(a).total_seconds() for a in plan.assets},
    }


def who(actor: str) -> str:
    """An IAM identity as people say it (alice for arn:aws:iam::1:user/alice); anything else as it is."""
    from chalicelib.domain.watch import who as short

    return short(actor)


def _secs(value: float | None) -> str:
    return format_seconds(value)


def _rel(record: DrillRecord, at: datetime) -> str:
    return f"+{format_seconds(max(0.0, (at - record.started_at).total_seconds()))}"


def _clock(at: datetime | None, *, seconds: bool = False) -> str:
    """Wall-clock time (UTC): to the millisecond, or to the second."""
    if at is None:
        return "-"
    return at.strftime("%H:%M:%S") if seconds else at.strftime("%H:%M:%S.%f")[:-3]


def objective_target(record: DrillRecord, name: str, objective: float | None) -> str:
    """An objective's target; the RPO is measured on one asset, whose own RPO may differ from the plan's."""
    text = _secs(objective)
    if name == "RPO" and record.rpo is not None and record.plan_rpo_seconds is not None:
        if objective != record.plan_rpo_seconds:
            return f"{text} ({record.rpo.asset}'s own; plan {format_seconds(record.plan_rpo_seconds)})"
        return f"{text} (plan, for {record.rpo.asset})"
    return text


def _objective_rows(record: DrillRecord) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            o.name,
            objective_target(record, o.name, o.objective_seconds),
            _secs(o.measured_seconds),
            o.verdict,
            _secs(o.margin_seconds),
        )
        for o in record.objectives
    ]


def objectives_words(record: DrillRecord) -> str:
    """The plan's objectives, and each asset's RPO beside them."""
    if record.plan_rpo_seconds is None or record.plan_rto_seconds is None:
        return "-"
    plan = f"RPO {format_seconds(record.plan_rpo_seconds)}, RTO {format_seconds(record.plan_rto_seconds)}"
    assets = ", ".join(f"{name} {format_seconds(rpo)}" for name, rpo in record.asset_rpos.items())
    return f"{plan} (plan); asset RPOs: {assets}" if assets else f"{plan} (plan)"


PHASE_HEADER = ("phase", "from", "to", "from (UTC)", "to (UTC)", "duration")


def _phase_rows(record: DrillRecord) -> list[tuple[str, ...]]:
    return [
        (
            p.name,
            _rel(record, p.start),
            _rel(record, p.end),
            _clock(p.start),
            _clock(p.end),
            _secs(p.seconds),
        )
        for p in record.phases
    ]


ALARM_HEADER = ("alarm", "state", "at (UTC)", "at")


def _alarm_rows(record: DrillRecord) -> list[tuple[str, str, str, str]]:
    return [
        (name, state, _clock(at), _rel(record, at))
        for name, changes in _alarm_rows_by_name(record).items()
        for at, state in changes
    ]


def _alarm_rows_by_name(record: DrillRecord) -> dict[str, list[tuple[datetime, str]]]:
    return _alarm_rows_svg(record)


DECISION_HEADER = ("at (UTC)", "at", "kind", "outcome", "by", "reason")


def _decision_rows(record: DrillRecord) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for entry in record.decisions:
        at = entry.get("at")
        rel, clock = (_rel(record, at), _clock(at)) if isinstance(at, datetime) else (str(at), "-")
        kind, outcome, reason = (str(entry.get(k, "")) for k in ("kind", "outcome", "reason"))
        rows.append((clock, rel, kind, outcome, who(str(entry.get("actor", "lifeboat"))), reason))
    return rows


APPROVAL_HEADER = ("at (UTC)", "who", "what", "reason")


def _approval_rows(record: DrillRecord) -> list[tuple[str, str, str, str]]:
    """What people decided during the drill (approvals, pauses, aborts): the ledger's operator entries."""
    rows = []
    for entry in record.decisions:
        if entry.get("kind") != "operator":
            continue
        at = entry.get("at")
        what = str(entry.get("outcome", "")).replace("-", " ")
        actor = str(entry.get("actor", ""))
        rows.append(
            (_clock(at) if isinstance(at, datetime) else "-", who(actor), what, str(entry.get("reason", "")))
        )
    return rows


def _step_rows(record: DrillRecord) -> list[tuple[str, str, str, str, str]]:
    return [
        (s.execution, s.name, _secs(s.duration_seconds), str(s.attempts), str(s.errors))
        for s in record.steps
        if s.type not in ("Choice", "Succeed", "Fail", "Pass")
    ]


def rpo_sentence(record: DrillRecord) -> str:
    p = record.rpo
    if p is None:
        return "RPO not measured"
    plan = ""
    if record.plan_rpo_seconds is not None and record.plan_rpo_seconds != p.objective_seconds:
        plan = f"; the plan's RPO is {format_seconds(record.plan_rpo_seconds)}, {p.asset} declares its own"
    if record.restore is not None:
        return (
            f"{p.writes} writes to {p.asset} every {format_seconds(p.interval_seconds)} before the restore; "
            f"the restore to {_clock(record.restore.restore_point, seconds=True)} UTC undid {p.missing} of "
            f"them. Newest write {_clock(p.newest_write_at)}, recovery point (newest write kept with every "
            f"earlier one) {_clock(p.recovery_point_at)} (UTC): data lost {format_seconds(p.rpo_seconds)} "
            f"(RPO) against {p.asset}'s objective of {format_seconds(p.objective_seconds)}{plan}."
        )
    return (
        f"{p.writes} writes to {p.asset} every {format_seconds(p.interval_seconds)} before the switch; the "
        f"replica lacked {p.missing}. Newest write {_clock(p.newest_write_at)}, "
        f"recovery point {_clock(p.recovery_point_at)} (UTC): "
        f"RPO {format_seconds(p.rpo_seconds)} against {p.asset}'s objective of "
        f"{format_seconds(p.objective_seconds)}{plan}."
    )


def rto_sentence(record: DrillRecord) -> str:
    r = record.rto
    if r is None:
        return "RTO not measured"
    budget = _budget(record)
    of = f" of a {format_seconds(budget[2])} budget" if budget else ""
    return (
        f"RTO {format_seconds(r.rto_seconds)}{of} = decision {format_seconds(r.decision_seconds)} "
        f"+ automation {format_seconds(r.automation_seconds)} "
        f"+ validation {format_seconds(r.validation_seconds)} "
        f"(detection before the first ALARM at {_clock(r.first_alarm_at)} UTC: "
        f"{format_seconds(r.detection_seconds)})"
    )


def restore_sentence(record: DrillRecord) -> str:
    """data-corruption: the damage, its detection, the decision, and the time to restore in its phases."""
    r = record.restore
    words = []
    if record.detected_by:
        words.append("Detected by the checks of both regions: " + "; ".join(record.detected_by) + ".")
    if record.recovery_action:
        words.append(f"Judged: {record.recovery_action} - {record.recovery_reason}.")
    for a in record.restored_assets:
        changed = ", ".join(f"{v} {k}" for k, v in a.changes.items()) or "nothing changed"
        words.append(
            f"{a.asset}: {a.verdict} in place ({changed}; {a.copies} copies verified, {a.deletes} deletions, "
            f"{format_seconds(a.duration_seconds)}; run {a.run_id})."
        )
    if r is not None:
        budget = _budget(record)
        of = f" of a {format_seconds(budget[2])} budget" if budget else ""
        words.append(
            f"Restored to {_clock(r.restore_point, seconds=True)} UTC (the second before the damage at "
            f"{_clock(r.damaged_at)}). Time to restore {format_seconds(r.rto_seconds)}{of} = decision "
            f"{format_seconds(r.decision_seconds)} + restore {format_seconds(r.restore_seconds)} + redeploy "
            f"{format_seconds(r.redeploy_seconds)} + validation {format_seconds(r.validation_seconds)} "
            f"(detection, damage -> detected at {_clock(r.detected_at)} UTC: "
            f"{format_seconds(r.detection_seconds)})."
        )
    if record.restore_outcome and record.restore_outcome != "restored":
        words.append(f"Restore outcome: {record.restore_outcome}.")
    if record.restore_problems:
        words.append("Still wrong: " + "; ".join(record.restore_problems) + ".")
    return " ".join(words) or "no restore"


def _restore_words(record: DrillRecord) -> str:
    if record.restore_outcome is None:
        return "-"
    assets = ", ".join(a.asset for a in record.restored_assets)
    return record.restore_outcome + (f" ({assets})" if assets else "")


OBJECTIVE_HEADER = ("objective", "target", "measured", "verdict", "margin")


def _trend_rows(record: DrillRecord) -> list[tuple[str, str, str, str, str]]:
    return [
        (t.drill_id, t.scenario, t.verdict, _secs(t.rto_seconds), _secs(t.rpo_seconds)) for t in record.trend
    ]


def _failover_words(record: DrillRecord) -> str:
    words = record.failover_outcome or "-"
    return f"{words}: {record.failover_reason}" if record.failover_reason else words


def _failback_words(record: DrillRecord) -> str:
    words = record.failback_outcome or "-"
    return (
        f"{words} in {format_seconds(record.failback_seconds)}"
        if record.failback_seconds is not None
        else words
    )


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return "_none_\n"
    clean = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in clean]
    return "\n".join(lines) + "\n"


def headline(record: DrillRecord) -> str:
    return f"{record.verdict.upper()}: {record.verdict_reason}"


def render_markdown(record: DrillRecord) -> str:
    spec = SCENARIOS.get(record.scenario)
    out = [
        f"# DR drill {record.drill_id}: {record.workload} / {record.scenario}\n",
        f"**Verdict: {headline(record)}**\n",
        f"- subject: `{record.subject}` ({record.mode}); run by {who(record.requested_by)} "
        f"({record.requested_by}): {record.reason}",
        f"- plan revision: `{record.plan_revision or '-'}`; objectives: {objectives_words(record)}",
        f"- started {record.started_at:%Y-%m-%d %H:%M:%S} UTC, ended "
        + (f"{record.ended_at:%H:%M:%S} UTC" if record.ended_at else "-"),
        f"- scenario: {spec.summary if spec else record.scenario}",
        f"- expected: Lifeboat should {EXPECTATION_WORDS[record.expectation]}; "
        f"observed: {record.behaviour or '-'}",
        f"- failover: {_failover_words(record)}",
        f"- failback: {_failback_words(record)}",
        *([f"- restore: {_restore_words(record)}"] if record.restore_outcome else []),
        "",
        "## Faults injected\n",
        "\n".join(f"1. {f}" for f in record.faults) or "_none_",
        "",
        "## Objectives\n",
        _md_table(OBJECTIVE_HEADER, _objective_rows(record)),
    ]
    if record.rto:
        out += ["## RTO breakdown\n", rto_sentence(record) + "\n"]
    if record.restore_outcome:
        out += ["## Restore (no failover)\n", restore_sentence(record) + "\n"]
    if record.rpo:
        out += ["## RPO evidence\n", rpo_sentence(record) + "\n"]
    out += [
        "## Phases\n",
        _md_table(PHASE_HEADER, _phase_rows(record)),
        "## Alarms\n",
        _md_table(ALARM_HEADER, _alarm_rows(record)),
        "## Approvals and operator decisions\n",
        _md_table(APPROVAL_HEADER, _approval_rows(record)),
        "## Decisions (ledger)\n",
        _md_table(DECISION_HEADER, _decision_rows(record)),
        "## Steps (execution histories)\n",
        _md_table(("execution", "state", "duration", "attempts", "errors"), _step_rows(record)),
        "## Left behind by the scenario (seen before the cleanup)\n",
        "\n".join(f"- {c}" for c in record.leftovers) or "_nothing_",
        "",
        "## Cleanup\n",
        "\n".join(f"- {c}" for c in record.cleanup) or "_nothing to restore_",
        "",
        "## Trend (previous drills)\n",
        _md_table(
            ("drill", "scenario", "verdict", "RTO", "RPO"),
            _trend_rows(record),
        ),
    ]
    if record.evidence:
        out += ["## Evidence\n"] + [f"- {k}: `{v}`" for k, v in sorted(record.evidence.items())] + [""]
    return "\n".join(out)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{_a(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{_a(classes[i])}"' if i < len(classes) and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{_a(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(record: DrillRecord) -> str:
    """One self-contained page (inline CSS and SVG, no scripts, nothing fetched)."""
    colour = VERDICT_COLOURS.get(record.verdict, "#111827")
    spec = SCENARIOS.get(record.scenario)
    rto_obj = record.objective("RTO")
    rpo_obj = record.objective("RPO")
    facts = [
        ("subject", f"{record.subject} ({record.mode})"),
        ("run by", f"{who(record.requested_by)} ({record.requested_by}): {record.reason}"),
        ("plan revision", record.plan_revision or "-"),
        ("objectives", objectives_words(record)),
        ("started", f"{record.started_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("scenario", spec.summary if spec else record.scenario),
        ("expected", f"Lifeboat should {EXPECTATION_WORDS[record.expectation]}"),
        ("observed", record.behaviour or "-"),
        ("failover", _failover_words(record)),
        ("failback", _failback_words(record)),
        *([("restore", _restore_words(record))] if record.restore_outcome else []),
    ]
    breakdown = f"<p>{_a(rto_sentence(record))}</p>" if record.rto else ""
    if record.restore_outcome:
        breakdown += f"<h3>Restore (no failover)</h3><p>{_a(restore_sentence(record))}</p>"
    rpo = f"<p>{_a(rpo_sentence(record))}</p>" if record.rpo else ""
    objective_classes = [{True: "met", False: "breached"}.get(o.met, "") for o in record.objectives]  # type: ignore[arg-type]
    evidence = ", ".join(f"{k}: {v}" for k, v in sorted(record.evidence.items()))
    trend = trend_svg(
        record.trend,
        rto_objective=record.plan_rto_seconds or (rto_obj.objective_seconds if rto_obj else None),
        rpo_objective=record.plan_rpo_seconds or (rpo_obj.objective_seconds if rpo_obj else None),
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{_a(f"DR drill {record.drill_id}: {record.workload} / {record.scenario}")}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #0f172a; }}
.verdict {{ color: #fff; background: {colour}; padding: .6em 1em; border-radius: 6px; font-weight: bold; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; width: 100%; font-size: 14px; }}
th, td {{ border-bottom: 1px solid #e2e8f0; padding: 4px 8px; text-align: left; vertical-align: top; }}
tr.met td:nth-child(4) {{ color: #059669; font-weight: bold; }}
tr.breached td:nth-child(4) {{ color: #dc2626; font-weight: bold; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }}
dt {{ color: #475569; }}
figure {{ margin: 0 0 1.5em; }}
</style></head>
<body>
<h1>DR drill {_a(record.drill_id)}</h1>
<p class="verdict">{_a(headline(record))}</p>
<dl>{"".join(f"<dt>{_a(k)}</dt><dd>{_a(v)}</dd>" for k, v in facts)}</dl>
<h2>Timeline</h2>
<figure>{timeline_svg(record)}</figure>
<h2>Objectives</h2>
{_html_table(OBJECTIVE_HEADER, _objective_rows(record), objective_classes)}
{breakdown}{rpo}
<h2>Faults injected</h2>
<ol>{"".join(f"<li>{_a(f)}</li>" for f in record.faults)}</ol>
<h2>Phases</h2>
{_html_table(PHASE_HEADER, _phase_rows(record))}
<h2>Alarms</h2>
{_html_table(ALARM_HEADER, _alarm_rows(record))}
<h2>Approvals and operator decisions</h2>
{_html_table(APPROVAL_HEADER, _approval_rows(record))}
<h2>Decisions the automation took, and why</h2>
{_html_table(DECISION_HEADER, _decision_rows(record))}
<h2>Steps</h2>
{_html_table(("execution", "state", "duration", "attempts", "errors"), _step_rows(record))}
<h2>Left behind by the scenario (seen before the cleanup)</h2>
<ul>{"".join(f"<li>{_a(c)}</li>" for c in record.leftovers) or "<li>nothing</li>"}</ul>
<h2>Cleanup</h2>
<ul>{"".join(f"<li>{_a(c)}</li>" for c in record.cleanup) or "<li>nothing to restore</li>"}</ul>
<h2>Trend of measured RTO and RPO</h2>
<figure>{trend}</figure>
{_html_table(("drill", "scenario", "verdict", "RTO", "RPO"), _trend_rows(record))}
<p><small>Evidence: {_a(evidence or "-")}</small></p>
</body></html>
"""


__all__ = ["headline", "render_html", "render_markdown", "timeline_svg", "trend_svg", "Marker"]
