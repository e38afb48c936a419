"""The dashboard's view of one execution: the watch view (`lifeboat watch`'s model) for a failover or a
failback, plus what only the detail page shows: smoke verdicts, the timeline of states, the controls."""

from __future__ import annotations

from datetime import timedelta

from chalicelib.models.failback import FailbackView
from lifeboat_cli.dashboard.steps import execution_view
from tests.unit.dashboard_support import T0, bake, detail, gate, plan, progress, smoke, step


def test_a_failover_in_its_sustain_window_is_the_watch_view_with_the_rto_from_the_first_alarm() -> None:
    # Given an alarm-started failover waiting out its sustain window, the first alarm 20 s before it started
    trigger = {
        "first_alarm_at": (T0 - timedelta(seconds=20)).isoformat(),
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
    # Then what it does, its stage and its clock are the watch view's, the clock from the first alarm
    assert view.watch is not None
    assert view.now == "waiting out the sustain window (the alarms must hold) (20s left)"
    assert view.watch.progress() == "stage 1 of 7 (sustain)"
    assert view.watch.elapsed_seconds == 60.0 and view.watch.within_objective is True
    assert view.watch.clock() == "RTO clock 1m of 5m, 4m to spare"
    # And a failover offers no failback controls
    assert view.actions == [] and view.watch.pending is None


def test_a_failback_baking_at_its_second_step_shows_the_watch_view_and_the_moving_controls() -> None:
    # Given a failback that passed its first gate and bakes at 25% on the primary until 12:01:00
    steps = [
        step("AcquireLock", 0),
        step("CheckReadiness", 1),
        step("ShiftStep", 2, result=progress(0, 10)),
        step("EvaluateGates", 5, result=gate("pass", "every gate alarm OK, smoke tests pass")),
        step("ShiftStep", 6, result=progress(1, 25)),
        step("CheckBake", 7, result=bake(1, T0 + timedelta(seconds=60))),
        step("Bake", 8, None, type_="Wait"),
    ]
    # When it is viewed at 12:00:45.5
    view = execution_view(detail("failback", steps), plan(), now=T0 + timedelta(seconds=45.5))
    # Then it reads as `lifeboat watch` reads it: step 2 of 4 at 25%, the weights, the bake left, the gate
    assert view.watch is not None
    assert view.watch.progress() == "step 2 of 4 (25% on us-east-1)"
    assert view.watch.weights == {"us-east-1": 25, "us-west-2": 75}
    assert view.watch.bake_left_seconds == 14.5
    assert view.now.startswith("baking at 25% for ") and view.now.endswith(" left)")
    assert [(g.share, g.outcome) for g in view.watch.gates] == [(10, "pass")]
    # And the controls of a moving failback are offered
    assert view.actions == ["pause", "fast-track", "abort"]


def test_a_failback_waiting_for_approval_offers_approve_and_reject() -> None:
    # Given a failback waiting for an operator's approval
    steps = [step("AcquireLock", 0), step("CheckReadiness", 1), step("RequestApproval", 2, None)]
    # When it is viewed
    view = execution_view(detail("failback", steps), plan(), now=T0 + timedelta(seconds=5))
    # Then the watch view waits for approval, nothing moved yet, and approve / reject / abort are the controls
    assert view.watch is not None and view.watch.pending is not None
    assert view.watch.pending.kind == "approval"
    assert view.now.startswith("waiting for approval")
    assert view.watch.progress() == "step 0 of 4 (no traffic moved yet)"
    assert view.actions == ["approve", "reject", "abort"]
    assert view.watch.clock() == "5.0s since it started"


def test_a_pause_requested_but_not_yet_reached_offers_resume() -> None:
    # Given a failback moving at 10% whose control record holds a pause request (taken at the next bake check)
    steps = [step("ShiftStep", 2, result=progress(0, 10)), step("VerifyStep", 3, None)]
    control = FailbackView(
        workload="fraud-scoring", execution="arn", status="RUNNING", pause_requested=True, fast_track=False
    )
    # When it is viewed
    view = execution_view(detail("failback", steps), plan(), now=T0 + timedelta(seconds=9), control=control)
    # Then the page says a pause is requested and offers resume
    assert view.pause_requested and not view.fast_track
    assert view.actions == ["resume", "abort"]


def test_a_paused_failback_offers_resume() -> None:
    # Given a failback paused by an operator at 10%
    steps = [step("ShiftStep", 2, result=progress(0, 10)), step("Paused", 3, None)]
    # When it is viewed
    view = execution_view(detail("failback", steps), plan(), now=T0 + timedelta(seconds=9))
    # Then it is paused and resume is offered
    assert view.now.startswith("paused by an operator")
    assert view.actions == ["resume", "abort"]


def test_a_finished_failover_says_its_verdict_with_its_smoke_verdicts_and_timeline() -> None:
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
    # Then it is finished with the watch view's verdict, the clock stopped at its end
    assert view.finished and view.watch is not None
    assert view.now == view.watch.verdict
    assert view.now == "failover failed before it concluded (Refused)"
    assert view.watch.elapsed_seconds == 3.0
    # And the detail page lists the smoke verdicts and every state visited
    assert [(s.target, s.passed) for s in view.smoke] == [("secondary", False)]
    assert [r.name for r in view.timeline] == ["AcquireLock", "SmokeTestBackup", "BackupHealthy"]
    assert view.timeline[-1].note == "-> RefuseBackupUnhealthy"
    assert view.actions == []


def test_an_execution_of_another_kind_is_named_by_its_state_without_a_watch_view() -> None:
    # Given a verification execution (not something `lifeboat watch` shows)
    running = detail("verify", [step("PlanRun", 0), step("VerifyShards", 1, None, type_="Map")])
    # When it is viewed
    view = execution_view(running, plan(), now=T0 + timedelta(seconds=2))
    # Then it says which state it is in, and there is no watch view
    assert view.watch is None and view.now == "in VerifyShards"


def test_a_failback_without_its_plan_offers_the_controls_its_control_record_allows() -> None:
    # Given a failback waiting for approval whose plan cannot be read
    steps = [step("AcquireLock", 0), step("RequestApproval", 2, None)]
    control = FailbackView(
        workload="fraud-scoring", execution="arn", status="RUNNING", waiting_for="approval"
    )
    # When it is viewed
    view = execution_view(detail("failback", steps), None, now=T0 + timedelta(seconds=3), control=control)
    # Then it is named by its state, and approve / reject / abort are still offered
    assert view.watch is None and view.now == "in RequestApproval"
    assert view.actions == ["approve", "reject", "abort"]
