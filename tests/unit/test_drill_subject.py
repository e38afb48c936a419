"""Where a drill may run (never production traffic in an AWS account unless live and confirmed), and what
the monthly schedule requests."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.adapters.drill_requests import DrillRequests
from chalicelib.adapters.plan_store import UnknownWorkload
from chalicelib.models.drill import DrillRequest
from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import PlanError, load_plan_text
from chalicelib.services.drills import DrillRefused, resolve_subject, schedule_monthly

EXAMPLE = (Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml").read_text()


@cache
def production(target: str | None = "fraud-scoring-drill") -> DRPlan:
    text = (
        EXAMPLE
        if target is None
        else EXAMPLE.replace("  # target: fraud-scoring-drill", f"  target: {target}")
    )
    return load_plan_text(text, "prod.yaml")


@cache
def drill_copy(record: str = "drill.fraud.lifeboat.internal.") -> DRPlan:
    text = (
        EXAMPLE.replace("workload: fraud-scoring", "workload: fraud-scoring-drill")
        .replace("record_name: fraud.lifeboat.internal.", f"record_name: {record}")
        .replace("fraud-scoring-use1-", "fraud-scoring-drill-use1-")
        # The drill copy's own model servers (the example plan's endpoints are local ones on port 0).
        .replace("127.0.0.1:0/invocations", "127.0.0.1:28081/invocations", 1)
        .replace("127.0.0.1:0/invocations", "127.0.0.1:28082/invocations", 1)
    )
    return load_plan_text(text, "drill.yaml")


def deps(*plans: DRPlan) -> Any:
    by_name = {p.workload: p for p in plans}

    def get(workload: str) -> DRPlan:
        if workload not in by_name:
            raise UnknownWorkload(workload)
        return by_name[workload]

    return SimpleNamespace(plans=SimpleNamespace(get=get))


def request(**kwargs: Any) -> DrillRequest:
    return DrillRequest(workload="fraud-scoring", scenario="region-outage", **kwargs)


def test_the_local_cloud_is_a_sandbox_the_plan_itself_is_drilled() -> None:
    plan, mode = resolve_subject(production(None), request(), deps(), local=True)
    assert (plan.workload, mode) == ("fraud-scoring", "local")


def test_in_an_account_a_drill_breaks_the_drill_target_not_production() -> None:
    plan, mode = resolve_subject(production(), request(), deps(production(), drill_copy()), local=False)
    assert (plan.workload, mode) == ("fraud-scoring-drill", "drill-target")


def test_without_a_target_only_a_confirmed_live_drill_runs_in_an_account() -> None:
    d = deps(production(None))
    with pytest.raises(DrillRefused, match="names no drill target"):
        resolve_subject(production(None), request(), d, local=False)
    with pytest.raises(DrillRefused, match="--confirm fraud-scoring"):
        resolve_subject(production(None), request(live=True), d, local=False)
    with pytest.raises(DrillRefused, match="confirm"):
        resolve_subject(production(None), request(live=True, confirm="fraud-scorin"), d, local=False)
    plan, mode = resolve_subject(
        production(None), request(live=True, confirm="fraud-scoring"), d, local=False
    )
    assert (plan.workload, mode) == ("fraud-scoring", "live")


def test_a_target_sharing_production_traffic_or_missing_is_refused() -> None:
    shared = drill_copy("fraud.lifeboat.internal.")
    with pytest.raises(DrillRefused, match="shares the traffic record"):
        resolve_subject(production(), request(), deps(production(), shared), local=False)
    with pytest.raises(DrillRefused, match="not a deployed plan"):
        resolve_subject(production(), request(), deps(production()), local=False)


def test_a_plan_cannot_name_itself_as_its_drill_target() -> None:
    with pytest.raises(PlanError, match="drill.target"):
        load_plan_text(
            EXAMPLE.replace("  # target: fraud-scoring-drill", "  target: fraud-scoring"), "p.yaml"
        )


class Recorder:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str]] = []
        self.published: list[DrillRequest] = []

    def record(self, workload: str, kind: str, outcome: str, reason: str, **_: Any) -> None:
        self.entries.append((workload, kind, outcome))

    def publish(self, request: DrillRequest) -> str:
        self.published.append(request)
        return "event-1"


def test_the_monthly_schedule_requests_the_drill_of_plans_that_ask_for_one() -> None:
    # Given a plan with a monthly drill and a drill target, and one without a target, in an account
    monthly = load_plan_text(
        EXAMPLE.replace("  # target: fraud-scoring-drill", "  target: fraud-scoring-drill").replace(
            "schedule: never", "schedule: monthly"
        ),
        "prod.yaml",
    )
    untargeted = load_plan_text(
        EXAMPLE.replace("workload: fraud-scoring", "workload: other-model").replace(
            "schedule: never", "schedule: monthly"
        ),
        "other.yaml",
    )
    book = Recorder()
    d = deps(monthly, untargeted, drill_copy())
    d.plans.all = lambda: [monthly, untargeted, drill_copy()]
    d.ledger, d.drill_requests = book, _Requests(book)
    d.clock = lambda: datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    # When the schedule fires
    result = schedule_monthly(d, local=False)["drills"]
    # Then the targeted plan's drill is requested on its target; the other is refused and that is recorded
    assert result["fraud-scoring"]["subject"] == "fraud-scoring-drill"
    assert [(r.workload, r.scenario, r.requested_by) for r in book.published] == [
        ("fraud-scoring", "region-outage", "lifeboat (schedule)")
    ]
    assert "names no drill target" in result["other-model"]["refused"]
    assert ("other-model", "drill", "refused") in book.entries
    assert ("fraud-scoring-drill", "drill", "requested") in book.entries


class _Requests(DrillRequests):
    def __init__(self, book: Recorder) -> None:
        self.book = book

    def publish(self, request: DrillRequest) -> str:
        return self.book.publish(request)
