"""The watch view (domain.watch) read from execution histories captured on the local cloud (tests/unit/data/
watch: real failover and failback runs of the example plan, trimmed to what the view reads).

Each history is replayed event by event, as a watcher polling at that moment would have seen it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.history import steps_from_history
from chalicelib.domain.watch import WatchView, failover_steps_in_words, watch_view
from chalicelib.models.ledger import LedgerEntry
from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_file
from chalicelib.workflows.failback import build_failback
from chalicelib.workflows.failover import build_failover

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "watch"
CAPTURED = sorted(p.stem for p in DATA.glob("*.json"))


def example_plan(**failback: Any) -> DRPlan:
    plan = load_plan_file(ROOT / "plans" / "fraud-scoring.yaml")
    return plan.model_copy(update={"failback": plan.failback.model_copy(update=failback)})


# The captures ran the example plan with these failback settings (tests/integration/failback_helpers).
PLANS = {
    "failback-awaiting-approval": {"bake": timedelta(seconds=2), "approval_timeout": timedelta(seconds=60)},
    "failback-baking": {"bake": timedelta(seconds=2), "approval_timeout": timedelta(seconds=60)},
    "failback-completed": {"bake": timedelta(seconds=2), "approval_timeout": timedelta(seconds=60)},
    "failback-rolled-back": {"bake": timedelta(seconds=3)},
}


class Captured:
    def __init__(self, name: str, plan: DRPlan | None = None) -> None:
        data = json.loads((DATA / f"{name}.json").read_text())
        self.desc = data["describe"]
        self.events = data["events"]
        for event in self.events:
            event["timestamp"] = datetime.fromisoformat(event["timestamp"])
        self.entries = [LedgerEntry(**e) for e in data["ledger"]]
        self.kind = "failback" if "failback" in self.desc["executionArn"] else "failover"
        self.plan = plan or example_plan(**PLANS.get(name, {}))

    def at(self, upto: int | None = None, *, now: datetime | None = None) -> WatchView:
        """The view once the first `upto` events had happened (default: all of them, as it ended)."""
        events = self.events if upto is None else self.events[:upto]
        ended = upto is None and self.desc["status"] != "RUNNING"
        moment = now or events[-1]["timestamp"]
        return watch_view(
            kind=self.kind,  # type: ignore[arg-type]
            plan=self.plan,
            name=self.desc["name"],
            status=self.desc["status"] if ended else "RUNNING",
            started_at=self.events[0]["timestamp"],
            stopped_at=datetime.fromisoformat(self.desc["stopDate"]) if ended else None,
            steps=steps_from_history(events),
            execution_input=json.loads(self.desc["input"]),
            entries=[e for e in self.entries if e.at <= moment],
            now=moment,
            error=self.desc["error"] if ended else None,
        )

    def replay(self) -> list[WatchView]:
        return [self.at(i) for i in range(1, len(self.events) + 1)]

    def first(self, predicate: Any) -> tuple[int, WatchView]:
        for i in range(1, len(self.events) + 1):
            view = self.at(i)
            if predicate(view):
                return i, view
        raise AssertionError("no moment of the history matches")


def state_names() -> set[str]:
    plan = example_plan(approval_required=True)
    names: set[str] = set()
    for build in (build_failover, build_failback):
        names |= set(build(plan, lambda fn: fn)["States"])
    return names


def words(view: WatchView) -> set[str]:
    text = " ".join([view.summary(), view.phase, view.countdown or "", view.verdict or "", *view.decisions])
    return set(re.findall(r"[A-Za-z]+", text))


@pytest.mark.parametrize("name", CAPTURED)
def test_no_moment_of_any_captured_run_shows_a_state_machine_state_name(name: str) -> None:
    # Given a captured run, When it is replayed event by event
    views = Captured(name).replay()
    # Then no view says the name of a state (CheckBake, HasTrigger, Outcome...)
    shown = set().union(*(words(v) for v in views)) & state_names()
    assert not shown, f"{name} shows {sorted(shown)}"


def test_an_operator_failover_ends_serving_from_the_secondary_with_the_rto_against_the_objective() -> None:
    # Given the history of a completed operator failover
    run = Captured("failover-completed")
    # When it is viewed as it ended
    view = run.at()
    # Then its verdict says where traffic is and the RTO measured against the 5m objective
    assert view.outcome == "ok"
    assert view.verdict == "now serving from us-west-2, RTO 1.1s of 5m"
    assert view.weights == {"us-east-1": 0, "us-west-2": 100}
    assert view.rto_seconds == pytest.approx(1.086803)
    assert view.objective_seconds == 300


def test_the_failover_moves_through_its_stages_in_order_and_shows_the_switch() -> None:
    # Given a graceful operator failover (no alarm: no sustain window, no confirmation)
    run = Captured("failover-completed")
    # When it is replayed
    stages = [(v.step, v.steps, v.stage) for v in run.replay() if v.stage]
    # Then it counts 5 stages, from checking the backup to recording, never going back
    assert {s[1] for s in stages} == {5}
    assert [s[2] for s in dict.fromkeys(stages)] == [
        "check backup",
        "replication",
        "switch",
        "validate",
        "record",
    ]
    numbers = [s[0] for s in stages]
    assert numbers == sorted(numbers)
    # And the traffic appears once the switch has read back
    _, switched = run.first(lambda v: v.weights is not None)
    assert switched.weights == {"us-east-1": 0, "us-west-2": 100}
    assert switched.phase == "moving all traffic to us-west-2"


def test_an_alarm_started_failover_counts_the_rto_from_the_first_alarm_and_shows_the_sustain_window() -> None:
    # Given a failover the alarms started (sustain window, recheck, confirmation probe)
    run = Captured("failover-alarm-completed")
    trigger = json.loads(run.desc["input"])["trigger"]
    first_alarm = datetime.fromisoformat(trigger["first_alarm_at"].replace("Z", "+00:00"))
    # When it is seen waiting out the sustain window
    index, waiting = run.first(lambda v: v.phase.startswith("waiting out the sustain window"))
    # Then it is stage 1 of 7, with the time left until the window ends, and the RTO clock runs from the
    # first alarm, not from the execution's start
    assert (waiting.step, waiting.steps, waiting.stage) == (1, 7, "sustain")
    assert waiting.countdown is not None and waiting.countdown.endswith("left")
    moment = run.events[index - 1]["timestamp"]
    assert waiting.elapsed_seconds == pytest.approx((moment - first_alarm).total_seconds())
    # And it ends serving from the secondary with the RTO the run recorded
    final = run.at()
    assert final.verdict == f"now serving from us-west-2, RTO {final.rto_seconds:.1f}s of 5m"


def test_an_rto_over_the_objective_is_a_breach_even_when_traffic_moved() -> None:
    # Given the completed failover's history and a plan whose RTO objective is 1s
    plan = example_plan()
    plan = plan.model_copy(
        update={"objectives": plan.objectives.model_copy(update={"rto": timedelta(seconds=1)})}
    )
    # When it is viewed as it ended
    view = Captured("failover-completed", plan).at()
    # Then the verdict is a breach (exit 1), naming both
    assert view.outcome == "breached"
    assert view.verdict == "now serving from us-west-2, but RTO 1.1s breached the objective of 1s"


def test_a_refused_failover_says_why_and_where_traffic_stayed() -> None:
    # Given a failover refused because the secondary failed its smoke tests
    view = Captured("failover-refused").at()
    # Then the outcome is a refusal with the reason, led by what happened (said once)
    assert view.outcome == "refused"
    assert view.verdict is not None and view.verdict.startswith("failover refused: backup unhealthy")
    assert "failover refused: failover refused" not in view.verdict
    assert view.weights == {"us-east-1": 100, "us-west-2": 0}


def test_a_failback_waiting_for_approval_names_the_commands_and_the_time_left() -> None:
    # Given a failback that waits for approval (the plan gives up after 60s)
    run = Captured("failback-awaiting-approval")
    name = run.desc["name"]
    entered = run.events[-1]["timestamp"]
    # When it is viewed 15s into the wait
    view = run.at(len(run.events), now=entered + timedelta(seconds=15))
    # Then it waits for approval, with the readiness reason, the commands and 45s left
    assert view.phase == "waiting for approval"
    assert view.pending is not None and view.pending.kind == "approval"
    assert view.pending.reason.startswith("primary ready")
    assert view.pending.commands == [f"lifeboat approve {name}", f"lifeboat reject {name}"]
    assert view.countdown == "45s before it gives up"
    assert view.decisions == [f"requested by alice at {run.entries[0].at:%H:%M:%S}: primary restored"]


def test_a_baking_failback_shows_its_step_the_split_the_gates_so_far_and_the_bake_left() -> None:
    # Given a failback at its second step (25%), the first step's gates passed
    run = Captured("failback-baking")
    index, view = run.first(lambda v: v.step == 2 and v.bake_left_seconds is not None)
    bake_until = view.bake_left_seconds
    # Then it is step 2 of 4, 25% on the primary, baking with time left, and the 10% gates passed
    assert (view.step, view.steps) == (2, 4)
    assert view.weights == {"us-east-1": 25, "us-west-2": 75}
    assert view.phase == "baking at 25% for 2.0s"
    assert bake_until is not None and 0 < bake_until <= 2
    assert [(g.share, g.outcome, g.final) for g in view.gates] == [(10, "pass", False)]
    # And the one-line summary does not change while only the clock moves
    later = run.at(index, now=run.events[index - 1]["timestamp"] + timedelta(milliseconds=700))
    assert later.summary() == view.summary() and later.countdown != view.countdown


def test_a_completed_failback_ends_serving_from_the_primary_with_who_approved_it() -> None:
    # Given a failback approved by alice that went 10 -> 25 -> 50 -> 100
    view = Captured("failback-completed").at()
    # Then the verdict says where traffic is, how long it took and in how many steps
    assert view.outcome == "ok"
    assert re.fullmatch(
        r"now serving from us-east-1 again, failback took \d\.\ds in 4 steps", view.verdict or ""
    )
    assert [(g.share, g.outcome, g.final) for g in view.gates] == [
        (10, "pass", False),
        (25, "pass", False),
        (50, "pass", False),
        (100, "pass", True),
    ]
    assert any(d.startswith("approved by alice") and d.endswith("looks good") for d in view.decisions)
    assert view.pending is None and view.countdown is None


def test_a_failback_rolled_back_by_a_gate_alarm_fails_with_the_gate_and_the_traffic_back() -> None:
    # Given a failback whose gate alarm went into ALARM at its first step
    view = Captured("failback-rolled-back").at()
    # Then it failed (exit 1): rolled back, naming the alarm, all traffic on the secondary
    assert view.outcome == "failed"
    assert view.verdict is not None and view.verdict.startswith("failback rolled back")
    assert "fraud-scoring-use1-errors" in view.verdict
    assert view.gates[-1].outcome == "fail" and view.gates[-1].share == 10
    assert view.weights == {"us-east-1": 0, "us-west-2": 100}


def test_an_execution_stopped_before_it_concluded_says_so_with_where_traffic_stands() -> None:
    # Given the failback's history cut in the middle of its bake, then stopped (ABORTED) there
    run = Captured("failback-baking")
    view = watch_view(
        kind="failback",
        plan=run.plan,
        name=run.desc["name"],
        status="ABORTED",
        started_at=run.events[0]["timestamp"],
        stopped_at=run.events[-1]["timestamp"],
        steps=steps_from_history(run.events),
        execution_input=json.loads(run.desc["input"]),
        now=run.events[-1]["timestamp"],
    )
    # Then the verdict says it stopped before concluding, and the split it left
    assert view.outcome == "failed"
    assert view.verdict == (
        "failback stopped before it concluded (no outcome recorded); "
        "traffic split: us-east-1 25%, us-west-2 75%"
    )


def test_a_state_the_view_does_not_know_reads_as_working() -> None:
    # Given a history whose last state is one a newer state machine added
    run = Captured("failover-completed")
    events = [*run.events[:8]]
    at = events[-1]["timestamp"]
    events.append(
        {
            "id": 999,
            "type": "TaskStateEntered",
            "timestamp": at,
            "stateEnteredEventDetails": {"name": "NewThing"},
        }
    )
    view = watch_view(
        kind="failover",
        plan=run.plan,
        name="x",
        status="RUNNING",
        started_at=run.events[0]["timestamp"],
        stopped_at=None,
        steps=steps_from_history(events),
        execution_input=None,
        now=at,
    )
    # Then it is "working", never the state's name
    assert view.phase == "working" and "NewThing" not in view.summary()


def test_the_state_a_finished_run_ended_in_is_not_shown_as_running() -> None:
    # Given finished runs that ended in a Fail state and in a Succeed state (neither has an exit event)
    rolled_back = steps_from_history(Captured("failback-rolled-back").events)
    completed = steps_from_history(Captured("failover-completed").events)
    # Then `execution ID` shows them failed and succeeded, not running
    assert (rolled_back[-1].type, rolled_back[-1].status) == ("Fail", "failed")
    assert (completed[-1].type, completed[-1].status) == ("Succeed", "succeeded")


def test_a_dry_run_s_path_reads_as_steps_in_words_each_once() -> None:
    # Given the path of a graceful failover, as the dry run lists its states
    path = [s.name for s in steps_from_history(Captured("failover-completed").events)]
    # When it is put in words
    steps = failover_steps_in_words(example_plan(), path)
    # Then each step is said once, with the regions, and no state name appears
    assert steps[:2] == ["taking the workload's lock", "smoke-testing us-west-2 before moving traffic"]
    assert "moving all traffic to us-west-2" in steps
    assert len(steps) == len(set(steps))
    assert not {w for s in steps for w in re.findall(r"[A-Za-z]+", s)} & state_names()


def test_a_failback_s_progress_names_its_step_and_the_primary_s_share() -> None:
    # Given a failback waiting for approval, and one baking at its second step
    waiting = Captured("failback-awaiting-approval").at(len(Captured("failback-awaiting-approval").events))
    _, baking = Captured("failback-baking").first(lambda v: v.step == 2 and v.bake_left_seconds is not None)
    # Then nothing has moved before the approval, and the second step is 25% on the primary
    assert waiting.progress() == "step 0 of 4 (no traffic moved yet)"
    assert (baking.share, baking.primary) == (25, "us-east-1")
    assert baking.progress() == "step 2 of 4 (25% on us-east-1)"
    # And what it does now carries the bake left
    assert baking.now() == f"baking at 25% for 2.0s ({baking.countdown})"
    # And as it ended, it is at 100% on the primary and says its verdict
    done = Captured("failback-completed").at()
    assert done.progress() == "step 4 of 4 (100% on us-east-1)" and done.now() == done.verdict


def test_a_failover_s_clock_runs_against_the_objective_and_says_when_it_is_over() -> None:
    # Given an alarm-started failover waiting out its sustain window
    run = Captured("failover-alarm-completed")
    _, waiting = run.first(lambda v: v.phase.startswith("waiting out the sustain window"))
    # Then its progress is the stage, and its clock counts against the 5m objective with time to spare
    assert waiting.progress() == "stage 1 of 7 (sustain)"
    assert waiting.within_objective is True
    assert waiting.clock().startswith("RTO clock ") and waiting.clock().endswith(" to spare")
    assert " of 5m, " in waiting.clock()
    # And the same moment against a 1s objective is over it
    late = waiting.model_copy(update={"objective_seconds": 1.0, "elapsed_seconds": 3.5})
    assert late.within_objective is False
    assert late.clock() == "RTO clock 3.5s of 1.0s, over by 2.5s"
    # And a failback has no objective: its clock is the time since it started
    _, baking = Captured("failback-baking").first(lambda v: v.step == 2)
    assert baking.within_objective is None and baking.clock().endswith(" since it started")
