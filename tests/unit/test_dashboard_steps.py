"""The dashboard's step view of one execution: phase in words, step k of n, weights, bake countdown, gate and
smoke verdicts, what it waits for, the RTO clock against the objective, the controls offered."""

from __future__ import annotations

from datetime import timedelta

from chalicelib.models.failback import FailbackView
from lifeboat_cli.dashboard.steps import execution_view
from tests.unit.dashboard_support import T0, bake, detail, gate, plan, progress, smoke, step


def test_a_failover_waiting_out_the_sustain_window_shows_the_rto_clock_from_the_first_alarm() -> None:
    # Given an alarm-started failover waiting out its sustain window, the first alarm 20 s before it started
    first_alarm = T0 - timedelta(seconds=20)
    trigger = {
        "first_alarm_at": first_alarm.isoformat(),
        "quorum_since": T0.isoformat(),
        "sustain_until": (T0 + timedelta(seconds=60)).isoformat(),
    }
    running = detail(
        "failover",
        [step("HasTrigger", 0, 0.0, type_="Choice"), step("WaitSustain", 0.1, None, type_="Wait")],
        input={"workload": "fraud-scoring", "trigger": trigger},
    )
    # When it is viewed 40 s after it started
    view = execution_view(running, plan(), now=T0 + timedelta(seconds=40))
    # Then it says what it does, which phase of how many, and the RTO clock counts from the first alarm
    assert view.phase == "waiting out the alarms' sustain window (until 12:01:00 UTC)"
    assert view.step_label == "phase 1 of 7"
    assert view.elapsed_seconds == 60.0
    assert view.objective_seconds == plan().rto.total_seconds()
    assert view.within_objective is True
    assert view.clock_label.startswith("RTO clock 1m, within the objective of ")
    # And a failover offers no failback controls
    assert view.actions == [] and view.waiting_for is None


def test_a_failover_past_its_rto_says_so() -> None:
    # Given a failover still shifting traffic long after it started
    running = detail("failover", [step("AcquireLock", 0), step("ShiftTraffic", 1, None)])
    rto = plan().rto.total_seconds()
    # When it is viewed after its RTO
    view = execution_view(running, plan(), now=T0 + timedelta(seconds=rto + 5))
    # Then the clock says it is beyond the objective
    assert view.phase == "shifting traffic"
    assert view.within_objective is False and "BEYOND the objective" in view.clock_label


def test_a_failback_baking_at_its_second_step_counts_the_bake_down_and_shows_gates_and_weights() -> None:
    # Given a failback that passed its first gate and bakes at 25% on the primary until 12:01:00
    until = T0 + timedelta(seconds=60)
    steps = [
        step("AcquireLock", 0),
        step("CheckReadiness", 1),
        step("ShiftStep", 2, result=progress(0, 10)),
        step("EvaluateGates", 5, result=gate("pass", "every gate alarm OK, smoke tests pass")),
        step("ShiftStep", 6, result=progress(1, 25)),
        step("CheckBake", 7, result=bake(1, until)),
        step("Bake", 8, None, type_="Wait"),
    ]
    # When it is viewed at 12:00:45.5
    view = execution_view(detail("failback", steps), plan(), now=T0 + timedelta(seconds=45.5))
    # Then it reads: step 2 of 4 at 25%, the weights applied, 15 s of bake left, the gate that passed
    assert view.step == 2 and view.steps == len(plan().failback.steps)
    assert view.step_label == "step 2 of 4 (25% on the primary)"
    assert view.weights == {"primary": 25, "secondary": 75}
    assert view.bake_seconds_left == 15 and view.bake_until == until
    assert view.phase == "baking at 25% on the primary: 15s left"
    assert [(g.phase, g.outcome) for g in view.gates] == [("gate", "pass")]
    # And the controls of a moving failback are offered
    assert view.actions == ["pause", "fast-track", "abort"]


def test_a_failback_waiting_for_approval_offers_approve_and_reject() -> None:
    # Given a failback waiting for an operator's approval (its control record holds the token)
    steps = [step("AcquireLock", 0), step("CheckReadiness", 1), step("RequestApproval", 2, None)]
    control = FailbackView(
        workload="fraud-scoring",
        execution="arn",
        status="RUNNING",
        waiting_for="approval",
        waiting_reason="approval required by the plan",
    )
    # When it is viewed
    view = execution_view(detail("failback", steps), plan(), now=T0 + timedelta(seconds=5), control=control)
    # Then it waits for approval, nothing moved yet, and approve / reject / abort are the controls
    assert view.waiting_for == "approval" and view.waiting_reason == "approval required by the plan"
    assert view.phase == "waiting for an operator's approval"
    assert view.step_label == "step 0 of 4 (no traffic moved yet)"
    assert view.actions == ["approve", "reject", "abort"]
    assert view.clock_label == "running for 5s" and view.objective_seconds is None


def test_a_paused_failback_offers_resume() -> None:
    # Given a failback paused by an operator at 10%
    steps = [step("ShiftStep", 2, result=progress(0, 10)), step("Paused", 3, None)]
    control = FailbackView(workload="fraud-scoring", execution="arn", status="RUNNING", waiting_for="pause")
    # When it is viewed
    view = execution_view(detail("failback", steps), plan(), now=T0 + timedelta(seconds=9), control=control)
    # Then it is paused and resume is offered
    assert view.phase == "paused by an operator"
    assert view.actions == ["resume", "abort"]


def test_a_finished_failover_says_how_it_ended_with_its_smoke_verdicts_and_timeline() -> None:
    # Given a failover whose backup failed its smoke test, refused
    steps = [
        step("AcquireLock", 0),
        step("SmokeTestBackup", 1, result=smoke("secondary", False, "0/2 cases passed")),
        step("BackupHealthy", 2, 0.0, type_="Choice"),
    ]
    steps[-1].next = "RefuseBackupUnhealthy"
    ended = detail(
        "failover",
        steps,
        status="FAILED",
        stopped_at=T0 + timedelta(seconds=3),
        error="Refused",
        cause="the secondary failed its smoke test",
    )
    # When it is viewed later
    view = execution_view(ended, plan(), now=T0 + timedelta(hours=1))
    # Then it is finished, says why, keeps the clock at its end, and lists the verdicts and every step
    assert view.finished and view.current_state is None
    assert view.outcome == "failed: Refused: the secondary failed its smoke test"
    assert view.elapsed_seconds == 3.0
    assert [(s.target, s.passed) for s in view.smoke] == [("secondary", False)]
    assert [r.name for r in view.timeline] == ["AcquireLock", "SmokeTestBackup", "BackupHealthy"]
    assert view.timeline[-1].note == "-> RefuseBackupUnhealthy"
    assert view.actions == []


def test_an_execution_of_another_kind_is_named_by_its_state() -> None:
    # Given a verification execution (no phases known to the view)
    running = detail("verify", [step("PlanRun", 0), step("VerifyShards", 1, None, type_="Map")])
    # When it is viewed without a plan
    view = execution_view(running, None, now=T0 + timedelta(seconds=2))
    # Then it says which state it is in and how long it runs
    assert view.phase == "in VerifyShards"
    assert view.step_label == "" and view.clock_label == "running for 2s"


def test_a_succeeded_failback_says_what_its_conclusion_said() -> None:
    # Given a failback that ended at 100% with its conclusion in the output
    steps = [step("ShiftStep", 2, result=progress(3, 100)), step("ReleaseLock", 9)]
    output = {
        "workload": "fraud-scoring",
        "reason": "primary restored",
        "final": {"status": "completed", "reason": "failed back to us-east-1 (10% -> 25% -> 50% -> 100%)"},
    }
    ended = detail(
        "failback", steps, status="SUCCEEDED", stopped_at=T0 + timedelta(seconds=10), output=output
    )
    # When it is viewed
    view = execution_view(ended, plan(), now=T0 + timedelta(minutes=5))
    # Then the words are the conclusion's, not the request's, and the progress is complete
    assert view.outcome == view.phase == "succeeded: failed back to us-east-1 (10% -> 25% -> 50% -> 100%)"
    assert view.step_label == "step 4 of 4 (100% on the primary)"
    assert view.weights == {"primary": 100, "secondary": 0} and view.clock_label == "ran 10s"
