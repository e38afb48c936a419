"""The data-corruption drill's pure parts: failover or restore (chalicelib/domain/damage.py), the restore
point, the data lost to the restore and the time to restore (chalicelib/domain/drills.py), the verdict,
the plan's refusal, and the report."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import damage
from chalicelib.domain import drills as rules
from chalicelib.domain.damage import RegionCheck
from chalicelib.domain.drill_report import render_html, render_markdown
from chalicelib.models.drill import AssetRestore, DrillRecord, ObjectiveResult, Write
from chalicelib.models.planfile import PlanError, load_plan_text

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PLANS = Path(__file__).resolve().parents[2] / "plans"
HEALTHY = RegionCheck(smoke_passed=True)
BAD_MODEL = RegionCheck(smoke_passed=False)
BAD_DATA = RegionCheck(smoke_passed=True, missing=("000003.json",), altered=("000001.json",))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- failover or restore ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("primary", "secondary", "action"),
    [
        (HEALTHY, HEALTHY, "none"),
        (BAD_MODEL, HEALTHY, "failover"),  # the classic: the other region is fit to serve
        (BAD_DATA, HEALTHY, "failover"),
        (HEALTHY, BAD_DATA, "repair-replica"),  # traffic stays on the healthy primary
        (BAD_MODEL, BAD_MODEL, "restore"),  # a bad model replicated: both fail their smoke tests
        (BAD_DATA, BAD_DATA, "restore"),  # a bad write replicated: smoke tests pass, the data does not
        (BAD_MODEL, BAD_DATA, "restore"),
    ],
)
def test_a_failover_helps_only_when_the_other_region_is_healthy(
    primary: RegionCheck, secondary: RegionCheck, action: str
) -> None:
    judgement = damage.judge(primary, secondary)
    assert judgement.action == action
    assert len(judgement.evidence) == 2 and judgement.evidence[0].startswith("primary: ")


def test_the_restore_judgement_says_why_a_failover_would_not_help() -> None:
    both = RegionCheck(smoke_passed=False, missing=("a",), altered=("b", "c"))
    judgement = damage.judge(both, both)
    assert "both regions" in judgement.reason and "would serve the same damage" in judgement.reason
    assert (
        judgement.evidence[1] == "secondary: smoke tests fail, 2 object(s) overwritten, 1 object(s) deleted"
    )


def test_damage_is_what_changed_since_the_last_verified_state_not_what_was_added() -> None:
    good = {"1": "e1", "2": "e2", "3": "e3"}
    now = {"1": "e1", "2": "BAD", "4": "e4"}  # 2 overwritten, 3 deleted, 4 written since (not damage)
    assert damage.differences(good, now) == (("3",), ("2",))
    assert damage.differences(good, dict(good)) == ((), ())


@pytest.mark.parametrize(
    ("damage_at", "point"),
    [
        (datetime(2026, 3, 1, 12, 0, 10, 400_000, tzinfo=UTC), datetime(2026, 3, 1, 12, 0, 9, tzinfo=UTC)),
        (datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC), datetime(2026, 3, 1, 12, 0, 9, tzinfo=UTC)),
    ],
)
def test_the_restore_point_is_the_second_before_the_damage(damage_at: datetime, point: datetime) -> None:
    # S3 stamps LastModified to the second: anything in the damage's own second counts as after the point
    assert damage.restore_point(damage_at) == point


def test_the_assets_restored_are_the_damaged_dataset_and_the_suspect_model() -> None:
    assets = [("training-data", "dataset"), ("model-artifacts", "model-artifacts"), ("other", "other")]
    both = damage.assets_to_restore(assets, data_asset="training-data", data_damaged=True, model_suspect=True)
    assert both == ["training-data", "model-artifacts"]
    assert damage.assets_to_restore(
        assets, data_asset="training-data", data_damaged=False, model_suspect=True
    ) == ["model-artifacts"]
    assert damage.assets_to_restore(
        assets, data_asset="training-data", data_damaged=True, model_suspect=False
    ) == ["training-data"]


# -- data lost and time to restore ---------------------------------------------------------------------------
def writes(count: int) -> list[Write]:
    return [Write(key=f"{i:06d}.json", at=at(i)) for i in range(count)]


def test_data_lost_is_the_window_of_writes_the_restore_undid() -> None:
    # Given writes every second from 0s to 9s, and a restore to 5s that kept every write up to it (the
    # damaged ones brought back) and undid the four after it
    log = writes(10)
    kept = {w.key for w in log if w.at <= at(5)}
    m = rules.measure_restore_rpo(
        "training-data", timedelta(minutes=15), timedelta(seconds=1), log, kept, at(9.5)
    )
    # Then the data lost runs from the recovery point (5s) to the newest write (9s)
    assert (m.missing, m.recovery_point_at, m.newest_write_at, m.rpo_seconds) == (4, at(5), at(9), 4.0)


def test_a_deleted_object_the_restore_did_not_bring_back_moves_the_recovery_point_before_it() -> None:
    log = writes(10)
    kept = {w.key for w in log if w.at <= at(5)} - {"000002.json"}
    m = rules.measure_restore_rpo(
        "training-data", timedelta(minutes=15), timedelta(seconds=1), log, kept, at(9.5)
    )
    assert m.recovery_point_at == at(1) and m.rpo_seconds == 8.0 and m.missing == 5


def test_the_time_to_restore_runs_from_detection_and_its_parts_add_up() -> None:
    r = rules.restore_breakdown(
        damaged_at=at(0),
        detected_at=at(2),
        decided_at=at(2.5),
        restored_at=at(4),
        redeployed_at=at(6),
        validated_at=at(6.5),
        restore_point=at(-1),
    )
    assert (r.detection_seconds, r.decision_seconds, r.restore_seconds) == (2, 0.5, 1.5)
    assert (r.redeploy_seconds, r.validation_seconds, r.rto_seconds) == (2, 0.5, 4.5)
    assert [p.name for p in rules.restore_timeline(r)] == [
        "detection",
        "decision",
        "restore",
        "redeploy",
        "validation",
    ]


@given(gaps=st.lists(st.floats(min_value=-5, max_value=3600, allow_nan=False), min_size=5, max_size=5))
def test_restore_phases_are_never_negative_and_always_add_up(gaps: list[float]) -> None:
    stamps = [0.0]
    for gap in gaps:
        stamps.append(stamps[-1] + gap)  # instants from different clocks may run backwards a little
    r = rules.restore_breakdown(
        damaged_at=at(stamps[0]),
        detected_at=at(stamps[1]),
        decided_at=at(stamps[2]),
        restored_at=at(stamps[3]),
        redeployed_at=at(stamps[4]),
        validated_at=at(stamps[5]),
        restore_point=at(-1),
    )
    parts = (r.decision_seconds, r.restore_seconds, r.redeploy_seconds, r.validation_seconds)
    assert all(p >= 0 for p in parts) and r.detection_seconds >= 0
    assert sum(parts) == pytest.approx(r.rto_seconds, abs=0.002)


# -- the verdict ---------------------------------------------------------------------------------------------
MET = [ObjectiveResult(name="RTO", objective_seconds=300, measured_seconds=2, met=True, margin_seconds=298)]


@pytest.mark.parametrize(
    ("behaviour", "outcome", "objectives", "verdict", "words"),
    [
        ("no-failover", "restored", MET, "passed", "did not fail over, as expected"),
        ("refused", "restored", MET, "passed", "refuse to fail over, as expected"),  # no traffic moved
        ("failed-over", "restored", MET, "failed", "but it did fail over"),
        ("no-failover", "not-detected", MET, "failed", "never detected"),
        ("no-failover", "unvalidated", MET, "failed", "still failed"),
        ("no-failover", None, MET, "failed", "never ran"),
        (
            "no-failover",
            "restored",
            [
                ObjectiveResult(
                    name="RTO", objective_seconds=1, measured_seconds=2, met=False, margin_seconds=-1
                )
            ],
            "breached",
            "RTO by 1.0s",
        ),
    ],
)
def test_a_restore_drill_passes_when_no_traffic_moved_and_the_restore_was_validated(
    behaviour: str, outcome: str | None, objectives: list[ObjectiveResult], verdict: str, words: str
) -> None:
    got, _, why = rules.drill_verdict(
        "restore",
        behaviour,  # type: ignore[arg-type]
        objectives,
        restore_outcome=outcome,
    )
    assert got == verdict and words in why, why


def test_data_corruption_expects_a_restore() -> None:
    assert rules.scenario("data-corruption").expect == "restore"
    assert not rules.scenario("data-corruption").kills_primary


# -- the plan ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fraud-scoring.yaml", "fraud-scoring-sagemaker.yaml"])
def test_the_shipped_plans_can_schedule_the_data_corruption_drill(name: str) -> None:
    text = (PLANS / name).read_text().replace("scenario: region-outage", "scenario: data-corruption", 1)
    plan = load_plan_text(text, name)
    assert plan.drill.scenario == "data-corruption" and plan.data_corruption_gap() is None
    assert rules.data_corruption_precondition(plan, has_dataset=True) is None


def test_a_plan_without_model_artefacts_in_s3_refuses_the_data_corruption_drill() -> None:
    text = (PLANS / "fraud-scoring.yaml").read_text()
    text = text.replace("role: model-artifacts", "role: other").replace(
        "scenario: region-outage", "scenario: data-corruption", 1
    )
    with pytest.raises(PlanError, match="drill.scenario") as raised:
        load_plan_text(text, "fraud.yaml")
    assert "no S3 asset has role model-artifacts" in str(raised.value)
    # and a drill asked for it by name (the plan schedules another) is refused before anything breaks
    plan = load_plan_text(text.replace("scenario: data-corruption", "scenario: region-outage", 1))
    assert "model-artifacts" in (rules.data_corruption_precondition(plan, has_dataset=True) or "")


# -- the report ----------------------------------------------------------------------------------------------
def restored_record() -> DrillRecord:
    r = rules.restore_breakdown(
        damaged_at=at(10.4),
        detected_at=at(11.4),
        decided_at=at(11.5),
        restored_at=at(11.7),
        redeployed_at=at(13),
        validated_at=at(13.1),
        restore_point=at(9),
    )
    log = [Write(key=f"{i:06d}.json", at=at(i)) for i in range(12)]
    rpo = rules.measure_restore_rpo(
        "training-data", timedelta(minutes=15), timedelta(seconds=1), log, {w.key for w in log[:10]}, at(11.5)
    )
    record = DrillRecord(
        drill_id="drill-1",
        workload="fraud-scoring",
        subject="fraud-scoring",
        mode="local",
        scenario="data-corruption",
        expectation="restore",
        requested_by="tester",
        reason="unit test",
        started_at=at(0),
        ended_at=at(20),
        behaviour="no-failover",
        detected_by=["primary: smoke tests fail, 2 object(s) overwritten", "secondary: smoke tests fail"],
        recovery_action="restore",
        recovery_reason="the damage is in both regions",
        restore=r,
        rpo=rpo,
        restored_assets=[
            AssetRestore(asset="training-data", run_id="run-1", verdict="restored", changes={"reverted": 2})
        ],
        restore_outcome="restored",
        phases=rules.restore_timeline(r),
        markers=rules.restore_markers(r),
        objectives=[
            rules.objective("RTO", timedelta(minutes=5), r.rto_seconds, "time to restore"),
            rules.objective("RPO", timedelta(minutes=15), rpo.rpo_seconds, "writes the restore undid"),
        ],
        plan_rto_seconds=300,
        plan_rpo_seconds=60,
    )
    record.verdict, record.as_expected, record.verdict_reason = rules.drill_verdict(
        "restore", "no-failover", record.objectives, restore_outcome="restored"
    )
    return record


def test_the_report_shows_the_data_lost_and_the_time_to_restore_against_the_objectives() -> None:
    record = restored_record()
    text = render_markdown(record)
    assert record.verdict == "passed" and record.summary().rto_seconds == 1.7
    assert "## Restore (no failover)" in text and "Judged: restore - the damage is in both regions" in text
    assert "Time to restore 1.7s of a 5m budget = decision 100ms + restore 200ms + redeploy 1.3s" in text
    assert "the restore to 12:00:09 UTC undid 2 of them" in text and "data lost 2.0s (RPO)" in text
    assert "| RTO | 5m | 1.7s | met |" in text
    page = render_html(record)
    svg = page[page.index("<svg") : page.index("</svg>") + len("</svg>")]
    assert ET.fromstring(svg) is not None and "RTO budget 5m from the damage detected" in page
