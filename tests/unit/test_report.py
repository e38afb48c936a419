"""Drill reports (chalicelib/domain/drill_report.py): Markdown and a self-contained HTML page whose pictures
are valid, non-empty SVG that still say something without their text."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import drills as rules
from chalicelib.domain.drill_report import render_html, render_markdown, timeline_svg, trend_svg
from chalicelib.models.drill import DrillRecord, Marker, Phase, TrendPoint, Write

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def failed_over() -> DrillRecord:
    """A region-outage drill as the runner records it."""
    record = DrillRecord(
        drill_id="drill-20260301T120000Z-ab12",
        workload="fraud-scoring",
        subject="fraud-scoring",
        mode="local",
        scenario="region-outage",
        expectation="failover",
        requested_by="arn:aws:iam::123456789012:user/alice",
        reason="game day <b>& friends</b>",
        started_at=T0,
        ended_at=at(60),
        behaviour="failed-over",
        faults=["primary model server killed (SIGKILL pid 42)"],
        failover_outcome="completed",
        failback_outcome="completed",
        failback_seconds=21.4,
    )
    record.rto = rules.rto_breakdown(
        fault_at=at(3), first_alarm_at=at(7), decided_at=at(27), switched_at=at(27.3), validated_at=at(27.5)
    )
    log = [Write(key=f"{i:06d}.json", at=at(i)) for i in range(4)]
    record.rpo = rules.measure_rpo(
        "training-data", timedelta(minutes=15), timedelta(seconds=1), log, {w.key for w in log}, at(27.3)
    )
    record.phases = rules.recovery_timeline(
        record.rto, started_at=T0, restored_at=at(33), failback=(at(34), at(55.4))
    )
    record.markers = [*rules.rto_markers(record.rto), Marker(name="failback", at=at(55.4), label="done")]
    record.objectives = [
        rules.objective("RTO", timedelta(minutes=5), record.rto.rto_seconds),
        rules.objective("RPO", timedelta(minutes=15), record.rpo.rpo_seconds),
        rules.objective("failback", None, 21.4),
    ]
    record.alarms = [
        {"alarm": "fraud-scoring-use1-errors", "state": "ALARM", "at": at(7)},
        {"alarm": "fraud-scoring-use1-errors", "state": "OK", "at": at(32)},
    ]
    record.decisions = [
        {"at": at(8), "kind": "decision", "outcome": "started", "reason": "quorum met: 2 of 3 | alarms"},
        {"at": at(27.6), "kind": "failover", "outcome": "completed", "reason": "failed over"},
        {
            "at": at(33.5),
            "kind": "operator",
            "outcome": "failback-approved",
            "reason": "primary is back",
            "actor": "arn:aws:sts::123456789012:assumed-role/operators/bob",
        },
    ]
    record.plan_revision = "0123456789ab"
    record.plan_rto_seconds, record.plan_rpo_seconds = 300.0, 60.0
    record.asset_rpos = {"training-data": 900.0, "model-artifacts": 60.0, "features": 300.0}
    record.trend = [
        TrendPoint(
            drill_id=f"d{i}",
            at=at(-86400 * i),
            scenario="region-outage",
            verdict="passed",
            rto_seconds=20.0 + i,
            rpo_seconds=float(i),
        )
        for i in range(5, 0, -1)
    ]
    record.verdict, record.as_expected, record.verdict_reason = rules.drill_verdict(
        "failover", "failed-over", record.objectives, failback_outcome="completed"
    )
    return record


def svgs(page: str) -> list[ET.Element]:
    out, start = [], 0
    while (i := page.find("<svg", start)) >= 0:
        j = page.index("</svg>", i) + len("</svg>")
        out.append(ET.fromstring(page[i:j]))
        start = j
    return out


def test_the_html_report_is_self_contained_with_two_valid_pictures() -> None:
    page = render_html(failed_over())
    timeline, trend = svgs(page)
    # Then both pictures parse as SVG and are not empty
    assert timeline.tag == f"{SVG}svg" and trend.tag == f"{SVG}svg"
    assert len(list(timeline.iter(f"{SVG}rect"))) >= 6  # background + a bar per phase + alarm ticks
    assert list(trend.iter(f"{SVG}polyline")) and len(list(trend.iter(f"{SVG}circle"))) >= 5
    # And nothing is fetched or run: no scripts, no external resources
    lowered = page.lower()
    assert "<script" not in lowered and "src=" not in lowered and "<link" not in lowered
    # And what a user supplied is escaped, never markup
    assert "<b>& friends</b>" not in page and "&lt;b&gt;&amp; friends&lt;/b&gt;" in page


def test_the_timeline_reads_without_its_text() -> None:
    timeline = ET.fromstring(timeline_svg(failed_over()))
    # One coloured bar per phase, in the phase's own colour
    fills = {r.get("fill") for r in timeline.iter(f"{SVG}rect")}
    for colour in ("#f59e0b", "#8b5cf6", "#3b82f6", "#10b981", "#94a3b8", "#06b6d4"):
        assert colour in fills, colour
    # Distinct marker shapes: triangle (fault), circles, diamond (decision), square (switch)
    assert len(list(timeline.iter(f"{SVG}polygon"))) >= 2
    assert list(timeline.iter(f"{SVG}circle"))
    # Bars sit in time order on the axis: detection starts left of decision, failback is last
    bars = [r for r in timeline.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    xs = {r.find(f"{SVG}title").text.split(":")[0]: float(r.get("x")) for r in bars}  # type: ignore[union-attr]
    assert xs["detection"] < xs["decision"] < xs["automation"] <= xs["validation"] < xs["failback"]


@pytest.mark.parametrize("kind", ["refused", "no-failover", "interrupted"])
def test_drills_without_a_switch_still_draw_a_valid_picture(kind: str) -> None:
    record = failed_over().model_copy(update={"rto": None, "phases": [], "objectives": [], "trend": []})
    if kind == "refused":
        record.phases = [
            Phase(name="detection", start=at(3), end=at(7)),
            Phase(name="backup check", start=at(27), end=at(28)),
        ]
        record.markers = [Marker(name="fault", at=at(3)), Marker(name="refused", at=at(28))]
    elif kind == "no-failover":
        record.phases = [Phase(name="fault", start=at(3), end=at(40))]
        record.markers = [Marker(name="suppressed", at=at(20))]
    else:
        record.markers = [Marker(name="interrupted", at=at(10))]
    page = render_html(record)
    timeline, trend = svgs(page)
    assert list(timeline.iter(f"{SVG}rect")) and trend.tag == f"{SVG}svg"


def test_trend_of_one_or_no_drills_is_valid() -> None:
    for points in ([], [TrendPoint(drill_id="d", at=T0, scenario="s", verdict="passed", rto_seconds=3.0)]):
        assert ET.fromstring(trend_svg(points, rto_objective=300.0, rpo_objective=None)).tag == f"{SVG}svg"


def test_the_markdown_report_has_the_verdict_objectives_decisions_and_steps() -> None:
    text = render_markdown(failed_over())
    assert text.startswith("# DR drill drill-20260301T120000Z-ab12: fraud-scoring / region-outage")
    assert "**Verdict: PASSED:" in text
    assert "| RTO | 5m | 20s | met | 4m40s |" in text
    assert "RTO 20s of a 5m budget = decision 20s + automation 300ms + validation 200ms" in text
    assert "quorum met: 2 of 3 \\| alarms" in text  # table cells are escaped
    assert "| failback | +34s | +55s | 12:00:34.000 | 12:00:55.400 | 21s |" in text


def test_the_report_names_who_ran_it_the_plan_revision_the_objectives_and_the_approvals() -> None:
    # Given a drill run by alice on plan revision 0123456789ab, whose failback bob approved
    text = render_markdown(failed_over())
    # Then the report says who ran it, which plan revision, the plan's objectives with each asset's RPO
    assert "run by alice (arn:aws:iam::123456789012:user/alice)" in text
    assert "plan revision: `0123456789ab`" in text
    assert (
        "objectives: RPO 1m, RTO 5m (plan); asset RPOs: training-data 15m, model-artifacts 1m, features 5m"
        in text
    )
    # And the RPO row explains its target: the measured asset's own RPO, beside the plan's
    assert "| RPO | 15m (training-data's own; plan 1m) |" in text
    assert "the plan's RPO is 1m, training-data declares its own" in text
    # And the approvals table names bob and what he did
    assert "| 12:00:33.500 | bob | failback approved | primary is back |" in text


def test_the_timeline_shows_the_rto_budget_wall_clock_times_and_each_alarm_by_name() -> None:
    # Given the drill's timeline
    svg = timeline_svg(failed_over())
    root = ET.fromstring(svg)
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    # Then the RTO budget (5m from the first ALARM at +7s) is drawn and said, with where it ends
    assert any(
        t.startswith("RTO budget 5m from the first ALARM (ends 12:05:07 UTC, beyond this picture)")
        for t in texts
    )
    # And each trigger alarm has its own named lane
    assert "fraud-scoring-use1-errors" in texts
    # And the axis reads in seconds from the start and in wall-clock time
    assert "+10s" in texts and "12:00:10" in texts and "UTC" in texts


def test_the_trend_axis_always_reaches_the_objectives() -> None:
    # Given past drills measured far inside a 5m RTO and a 1m RPO
    points = [
        TrendPoint(drill_id="d", at=T0, scenario="s", verdict="passed", rto_seconds=3.0, rpo_seconds=1.0)
    ]
    root = ET.fromstring(trend_svg(points, rto_objective=300.0, rpo_objective=60.0))
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    # Then both objectives are on the scale, named, and the axis top is above the larger one
    assert "RTO objective 5m" in texts and "RPO objective 1m" in texts
    assert "5m30s" in texts  # the axis' top: 10% above the RTO objective
