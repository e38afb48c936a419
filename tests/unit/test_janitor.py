"""The janitor's decisions, on the documented status-change event, with in-memory adapters (no socket)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.executions import Executions
from chalicelib.adapters.locks import LockHeld
from chalicelib.adapters.plan_store import DirectoryPlanStore
from chalicelib.adapters.traffic import ShiftRefused, TrafficState
from chalicelib.domain.safety import check_shift
from chalicelib.models.ledger import LockInfo, WorkloadState
from chalicelib.models.stepfunctions import ExecutionStatusChange
from chalicelib.services.deps import Deps
from chalicelib.services.janitor import tidy_up
from tests.unit.fakes import FakeLedger, FakeNotifier

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
W = "fraud-scoring"
MACHINES = "arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-dev-fraud-scoring"
RUN = "arn:aws:states:us-east-1:123456789012:execution:lifeboat-dev-fraud-scoring-failback:fb-1"
SPLIT = {"primary": 25, "secondary": 75}


@dataclass
class FakeLocks:
    held: LockInfo | None = None

    def current(self, workload: str) -> LockInfo | None:
        return self.held

    def release(self, workload: str, holder: str) -> bool:
        if self.held is None or self.held.holder != holder:
            return False
        self.held = None
        return True

    def acquire(self, workload: str, holder: str, operation: str, lease: timedelta) -> LockInfo:
        if self.held is not None and self.held.holder != holder:
            raise LockHeld(self.held)
        self.held = LockInfo(
            workload=W, holder=holder, operation=operation, acquired_at=NOW, expires_at=NOW + lease
        )
        return self.held


@dataclass
class FakeRouter:
    weights: dict[str, int] | None = field(default_factory=lambda: dict(SPLIT))
    shifts: list[dict[str, int]] = field(default_factory=list)

    def read(self, plan: Any) -> TrafficState:
        if self.weights is None:
            raise LookupError("Route 53 is unreachable")
        return TrafficState(weights=self.weights, active_region=None, detail={})

    def shift(self, plan: Any, weights: dict[str, int], last_smoke_passed: Any) -> TrafficState:
        verdict = check_shift(weights, last_smoke_passed)  # the adapter's own safety rules
        if not verdict.allowed:
            raise ShiftRefused(verdict.reason)
        self.shifts.append(dict(weights))
        self.weights = dict(weights)
        return TrafficState(weights=self.weights, active_region=None, detail={})


def deps(*, holder: str | None = RUN, weights: dict[str, int] | None = SPLIT) -> Deps:
    held = None
    if holder is not None:
        held = LockInfo(
            workload=W, holder=holder, operation="failback", acquired_at=NOW, expires_at=NOW + timedelta(1)
        )
    return Deps(
        plans=DirectoryPlanStore(ROOT / "plans"),
        ledger=FakeLedger(WorkloadState(workload=W, active_region="us-west-2")),
        locks=FakeLocks(held),
        router=FakeRouter(None if weights is None else dict(weights)),
        endpoints=None,
        notifier=FakeNotifier(),
        alarms=None,
        executions=Executions("lifeboat-dev"),
        clock=lambda: NOW,
    )


def event(status: str = "ABORTED", kind: str = "failback", execution: str = RUN) -> ExecutionStatusChange:
    """The documented status change, about `execution` of the plan's `kind` machine."""
    name = {"ABORTED": "aborted", "TIMED_OUT": "timed-out", "FAILED": "failed", "SUCCEEDED": "succeeded"}
    raw = json.loads((ROOT / f"events/stepfunctions/execution-status-change-{name[status]}.json").read_text())
    raw["detail"].update(
        executionArn=execution,
        stateMachineArn=f"{MACHINES}-{kind}",
        name=execution.rsplit(":", 1)[-1],
        input=json.dumps({"workload": W}),
    )
    return ExecutionStatusChange.model_validate(raw)


def test_a_stopped_run_holding_the_lock_is_concluded_once() -> None:
    # Given a failback stopped at 25% while it held the lock
    d = deps()
    # When the janitor hears of it, twice (EventBridge delivers at least once)
    first, second = tidy_up(event(), d), tidy_up(event(), d)
    # Then the lock is free, the state follows traffic (split: no active region), one outcome, one notice
    assert (first.action, first.lock_released, first.weights) == ("concluded", True, SPLIT)
    assert d.locks.current(W) is None
    assert d.ledger.get_state(W).active_region is None
    assert d.ledger.outcomes == [("failback", "stopped", first.reason)]
    assert "SPLIT: 25% on us-east-1" in first.reason and "its lock was released" in first.reason
    assert d.notifier.sent == ["[Lifeboat] fraud-scoring: failback STOPPED - TRAFFIC SPLIT"]
    assert d.ledger.controls_deleted == [f"failback#{RUN}"]
    assert (second.action, second.concluded_by, second.lock_released) == ("cleaned", "janitor", False)


@pytest.mark.parametrize(("status", "outcome"), [("TIMED_OUT", "timed-out"), ("FAILED", "failed")])
def test_every_ending_without_success_has_its_own_outcome(status: str, outcome: str) -> None:
    d = deps()
    assert tidy_up(event(status), d).action == "concluded"
    assert [e[1] for e in d.ledger.outcomes] == [outcome]


def test_a_run_that_concluded_itself_only_gets_its_lock_back() -> None:
    # Given a run whose Conclude ran but whose ReleaseLock did not
    d = deps()
    d.ledger.mark_concluded(W, RUN, "execution")
    # When the janitor hears it failed
    out = tidy_up(event("FAILED"), d)
    # Then it releases the lock and records nothing more
    assert (out.action, out.lock_released, out.concluded_by) == ("cleaned", True, "execution")
    assert d.ledger.outcomes == [] and d.notifier.sent == []


@pytest.mark.parametrize("owner", ["operator", "drill"])
def test_a_run_stopped_by_an_abort_or_a_drill_is_left_to_them(owner: str) -> None:
    # Given `lifeboat abort` (or a drill's cleanup) stopped the run and is moving traffic back under its lock
    d = deps()
    d.ledger.mark_concluded(W, RUN, owner)
    # When the janitor hears of the stop / Then it touches nothing: not the lock, not the state
    out = tidy_up(event(), d)
    assert (out.action, out.concluded_by, out.lock_released) == ("cleaned", owner, False)
    assert d.locks.current(W) is not None
    assert d.ledger.get_state(W).active_region == "us-west-2" and d.ledger.outcomes == []


def test_a_cancelled_failover_that_already_held_the_lock_is_reported() -> None:
    # Given the trigger cancelled a failover that had just taken the lock (it may have acted)
    run = RUN.replace("-failback:fb-1", "-failover:fo-1")
    d = deps(holder=run, weights={"primary": 0, "secondary": 100})
    d.ledger.state = WorkloadState(workload=W, active_region="us-east-1")
    d.ledger.mark_concluded(W, run, "trigger")
    # When the janitor hears of the stop
    out = tidy_up(event(kind="failover", execution=run), d)
    # Then the truth is recorded (the secondary serves, the cooldown started) and people are told
    assert (out.action, out.lock_released) == ("concluded", True)
    state = d.ledger.get_state(W)
    assert state.active_region == "us-west-2" and state.last_failover_at == NOW
    assert d.notifier.sent == ["[Lifeboat] fraud-scoring: failover STOPPED - us-west-2 serves users"]


def test_the_state_of_another_operation_holding_the_lock_is_left_alone() -> None:
    # Given a run that never got the lock (another failback holds it) and ended without concluding
    d = deps(holder=RUN.replace("fb-1", "fb-2"))
    out = tidy_up(event("FAILED"), d)
    # Then nothing is released, the state is not rewritten, and the entry says who owns it
    assert (out.action, out.lock_released) == ("concluded", False)
    assert d.ledger.get_state(W).version == 0
    assert "holds the lock now and owns the state" in out.reason


def test_unreadable_traffic_is_reported_as_unknown_and_never_guessed() -> None:
    d = deps(weights=None)
    out = tidy_up(event(), d)
    assert out.action == "concluded" and "UNKNOWN" in out.reason
    assert d.ledger.get_state(W).active_region == "us-west-2"  # unchanged: nothing read, nothing written
    assert d.notifier.sent == ["[Lifeboat] fraud-scoring: failback STOPPED - traffic UNKNOWN"]


@pytest.mark.parametrize(
    "change",
    [
        lambda: event("ABORTED", kind="verify", execution=RUN.replace("-failback:", "-verify:")),
        lambda: event("SUCCEEDED", kind="verify", execution=RUN.replace("-failback:", "-verify:")),
    ],
    ids=["stopped", "succeeded"],
)
def test_executions_of_machines_that_hold_no_lock_are_ignored(change: Any) -> None:
    d = deps()
    assert tidy_up(change(), d).action == "ignored"
    assert d.locks.current(W) is not None and d.ledger.outcomes == []


def test_a_succeeded_run_whose_release_failed_only_gets_its_lock_back() -> None:
    # Given a failback that concluded (failed back), then its ReleaseLock failed and the Catch went on to
    # the outcome: the execution SUCCEEDED with the lock still held
    d = deps(weights={"primary": 100, "secondary": 0})
    d.ledger.mark_concluded(W, RUN, "execution")
    # When the janitor hears it succeeded
    out = tidy_up(event("SUCCEEDED"), d)
    # Then the lock is free within the janitor's run, and nothing is recorded or notified a second time
    assert (out.action, out.lock_released, out.concluded_by) == ("cleaned", True, "execution")
    assert d.locks.current(W) is None
    assert d.ledger.outcomes == [] and d.notifier.sent == [] and d.router.shifts == []


def smoke(**passed: bool) -> dict[str, Any]:
    return {role: {"passed": value, "at": NOW.isoformat()} for role, value in passed.items()}


def test_a_run_stopped_right_after_its_target_failed_validation_moves_traffic_back() -> None:
    # Given a failback stopped right after its final validation failed: all traffic on a primary that just
    # failed its smoke test, the run's lock still held
    d = deps(weights={"primary": 100, "secondary": 0})
    d.ledger.state = WorkloadState(workload=W, active_region="us-west-2", last_smoke=smoke(primary=False))
    # When the janitor hears of the stop
    out = tidy_up(event(), d)
    # Then traffic goes back to the secondary (safety rules applied), and that is what is recorded and told
    assert d.router.shifts == [{"secondary": 100, "primary": 0}]
    assert (out.action, out.lock_released, out.active_region) == ("concluded", True, "us-west-2")
    assert "failed its last smoke test: traffic was moved back" in out.reason
    assert d.notifier.sent == ["[Lifeboat] fraud-scoring: failback STOPPED - us-west-2 serves users"]


def test_no_way_back_to_a_side_that_failed_too_and_nothing_moves_for_others() -> None:
    # Given a stopped failback at 100% on a failed primary, whose secondary failed its last smoke test too
    d = deps(weights={"primary": 100, "secondary": 0})
    d.ledger.state = WorkloadState(workload=W, last_smoke=smoke(primary=False, secondary=False))
    out = tidy_up(event(), d)
    # Then the adapter's safety rules refuse the way back: nothing moves, the truth is recorded
    assert d.router.shifts == [] and out.active_region == "us-east-1"
    # And while another operation holds the lock (it owns traffic) nothing moves either
    other = deps(holder=RUN.replace("fb-1", "fb-2"), weights={"primary": 100, "secondary": 0})
    other.ledger.state = WorkloadState(workload=W, last_smoke=smoke(primary=False))
    tidy_up(event(), other)
    assert other.router.shifts == [] and other.locks.current(W).holder.endswith("fb-2")


def test_a_run_whose_conclude_crashed_after_releasing_is_moved_back_under_a_lock_taken_back() -> None:
    # Given a failover whose post-switch validation failed, then whose Conclude crashed: its Catch went on to
    # ReleaseLock (the lock is free) and the run FAILED with all traffic on the failed secondary
    run = RUN.replace("-failback:fb-1", "-failover:fo-1")
    d = deps(holder=None, weights={"primary": 0, "secondary": 100})
    d.ledger.state = WorkloadState(workload=W, active_region="us-west-2", last_smoke=smoke(secondary=False))
    # When the janitor hears it failed
    out = tidy_up(event("FAILED", kind="failover", execution=run), d)
    # Then it took the free lock back for the move, moved traffic to the primary, and left the lock free
    assert d.router.shifts == [{"primary": 100, "secondary": 0}]
    assert d.locks.current(W) is None and out.lock_released is False
    assert out.active_region == "us-east-1"
    assert d.notifier.sent == ["[Lifeboat] fraud-scoring: failover FAILED - us-east-1 serves users"]


ROLLBACK = "arn:aws:states:us-east-1:123456789012:execution:lifeboat-dev-fraud-scoring-rollback:rb-1"


@pytest.mark.parametrize(("status", "outcome"), [("ABORTED", "stopped"), ("TIMED_OUT", "timed-out")])
def test_a_stopped_rollback_gets_its_lock_released_and_is_recorded_once(status: str, outcome: str) -> None:
    # Given a rollback stopped while it held the workload lock (it skipped RecordRollback and ReleaseLock)
    d = deps(holder=ROLLBACK)
    # When the janitor hears of it, twice
    first = tidy_up(event(status, kind="rollback", execution=ROLLBACK), d)
    second = tidy_up(event(status, kind="rollback", execution=ROLLBACK), d)
    # Then the lock is free, one rollback entry says what to check; traffic and state are not touched
    assert (first.action, first.kind, first.lock_released) == ("concluded", "rollback", True)
    assert d.locks.current(W) is None
    assert [(k, o) for k, o, _ in d.ledger.outcomes] == [("rollback", outcome)]
    assert "smoke tests not run" in first.reason and f"lifeboat rollback {W} --dry-run" in first.reason
    assert d.router.shifts == [] and d.notifier.sent == []
    assert d.ledger.get_state(W).active_region == "us-west-2"
    assert (second.action, second.lock_released) == ("cleaned", False)


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED"])
def test_a_rollback_that_recorded_itself_only_gets_its_lock_back(status: str) -> None:
    # Given a rollback that ended through its own RecordRollback, whose ReleaseLock failed
    d = deps(holder=ROLLBACK)
    out = tidy_up(event(status, kind="rollback", execution=ROLLBACK), d)
    # Then the janitor releases the lock and records nothing
    assert (out.action, out.lock_released) == ("cleaned", True)
    assert d.locks.current(W) is None and d.ledger.outcomes == []


def test_the_janitor_leaves_another_operations_lock_when_a_rollback_ends() -> None:
    # Given a failback holding the lock, and a (refused) rollback that ended
    d = deps()
    out = tidy_up(event("FAILED", kind="rollback", execution=ROLLBACK), d)
    # Then the failback's lock stays
    assert (out.action, out.lock_released) == ("cleaned", False)
    assert d.locks.current(W) is not None and d.locks.current(W).holder == RUN  # type: ignore[union-attr]
