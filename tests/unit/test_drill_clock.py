"""A drill keeps time on its injected clock: its waits and its timeout stop condition follow `Deps.clock`,
not the machine's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.models.drill import DrillRecord, DrillRequest
from chalicelib.models.planfile import load_plan_text
from chalicelib.services.drills.context import DrillContext
from chalicelib.services.drills.errors import DrillInterrupted

PLAN = load_plan_text(
    (Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml").read_text(), "fraud.yaml"
)
START = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


class Recorder:
    """Counts the polls: heartbeats, looks at alarms and ledger, narration ticks."""

    def __init__(self) -> None:
        self.polls = 0

    def heartbeat(self) -> None:
        self.polls += 1

    def watch_alarms(self) -> None:
        return None

    def collect_entries(self) -> list[Any]:
        return []

    def event(self, kind: str, message: str) -> None:
        return None

    def tick(self) -> None:
        return None


def drill(clock: list[datetime], poll: float = 0.5) -> tuple[DrillContext, Recorder]:
    """A drill on a clock that moves only when the drill sleeps (no real time passes)."""

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)

    seen = Recorder()
    record = DrillRecord(
        drill_id="drill-1",
        workload=PLAN.workload,
        subject=PLAN.workload,
        mode="local",
        scenario="region-outage",
        expectation="failover",
        requested_by="tester",
        reason="unit test",
        started_at=START,
    )
    context = DrillContext(
        request=DrillRequest(workload=PLAN.workload, scenario="region-outage"),
        d=SimpleNamespace(clock=lambda: clock[0]),  # type: ignore[arg-type]
        plan=PLAN,
        subject=PLAN,
        mode="local",
        injector=SimpleNamespace(),  # type: ignore[arg-type]
        observer=seen,
        record=record,
        lease=seen,  # type: ignore[arg-type]
        watch=seen,  # type: ignore[arg-type]
        writes=SimpleNamespace(),  # type: ignore[arg-type]
        executions={},
        poll=poll,
        sleep=sleep,
    )
    return context, seen


def test_a_wait_lasts_its_seconds_on_the_drill_clock_polling_all_along() -> None:
    # Given a drill whose clock moves only as it sleeps
    clock = [START]
    context, seen = drill(clock)
    # When it waits 3 seconds (a baseline of writes, a replication gap)
    context.wait(3.0)
    # Then exactly 3 seconds of its clock passed, in polls of at most its poll interval
    assert clock[0] - START == timedelta(seconds=3)
    assert seen.polls == 6


def test_the_timeout_stop_condition_reads_the_drill_clock() -> None:
    # Given a drill whose clock is past the plan's drill timeout (15 minutes) since it started
    clock = [START + PLAN.drill.timeout + timedelta(seconds=1)]
    context, seen = drill(clock)
    # When it polls / Then the stop condition interrupts it, and nothing else ran
    with pytest.raises(DrillInterrupted, match="longer than its timeout"):
        context.tick()
    assert seen.polls == 0
