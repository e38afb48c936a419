"""Operator requests decided before answering: does a failover/failback have anything to do, is a held lock
stale, and does the synchronous claim give exactly one of two requests the workload (fakes, no sockets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.adapters.locks import LockHeld
from chalicelib.domain.preconditions import (
    ON_PRIMARY,
    ON_SECONDARY,
    failback_needed,
    failover_needed,
    lock_staleness,
)
from chalicelib.models.ledger import LockInfo
from chalicelib.models.planfile import load_plan_file
from chalicelib.services.workload_lock import OperationConflict, start_claimed, unlock

PLAN = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
W = "fraud-scoring"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MACHINE = "arn:aws:states:us-west-2:123456789012:stateMachine:lifeboat-dev-fraud-scoring-failover"
SPLIT = {"primary": 50, "secondary": 50}


@cache
def plan() -> Any:
    return load_plan_file(PLAN)


# -- does the request have anything to do? ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("active", "weights", "proceed"),
    [
        ("us-west-2", ON_SECONDARY, False),  # ledger and traffic agree: already failed over
        ("us-east-1", ON_SECONDARY, True),  # the ledger does not know: the run records it properly
        ("us-west-2", ON_PRIMARY, True),  # traffic was moved back by hand: the ledger is stale
        ("us-west-2", SPLIT, True),
        ("us-west-2", None, True),  # traffic unreadable: the run checks again
        (None, ON_PRIMARY, True),
    ],
)
def test_a_failover_has_nothing_to_do_only_when_ledger_and_traffic_both_say_secondary(
    active: str | None, weights: dict[str, int] | None, proceed: bool
) -> None:
    # When an operator asks for a failover with this recorded active region and this live traffic
    verdict = failover_needed(plan(), active, weights)
    # Then it runs unless both say the secondary already serves, and then says so in those words
    assert verdict.proceed is proceed
    if not proceed:
        assert verdict.reason == "already serving from us-west-2; nothing to do"


def test_a_failback_with_everything_on_the_primary_is_refused_with_the_reason() -> None:
    # When a failback is asked for while all traffic is on the primary (the ledger agreeing, or not)
    agreed = failback_needed(plan(), "us-east-1", ON_PRIMARY)
    stale_ledger = failback_needed(plan(), "us-west-2", ON_PRIMARY)
    # Then both are refused: a first step of 10% would take traffic *off* the primary
    assert (
        not agreed.proceed and agreed.reason == "nothing to fail back: us-east-1 already serves all traffic"
    )
    assert not stale_ledger.proceed and "ledger still records us-west-2 as active" in stale_ledger.reason


@pytest.mark.parametrize("weights", [ON_SECONDARY, SPLIT, None])
def test_a_failback_runs_whenever_traffic_is_not_all_on_the_primary(weights: dict[str, int] | None) -> None:
    # When traffic is on the secondary, split, or unreadable
    verdict = failback_needed(plan(), "us-west-2", weights)
    # Then the failback starts (its readiness check decides about the unusual cases, and records why)
    assert verdict.proceed


def test_a_lock_is_stale_once_its_holder_stopped_or_cannot_be_described() -> None:
    # When the holder execution runs, has ended, or cannot be described
    running = lock_staleness("RUNNING")
    aborted = lock_staleness("ABORTED")
    denied = lock_staleness(None, "AccessDeniedException")
    # Then only the running one is live, and each says why
    assert (running.stale, aborted.stale, denied.stale) == (False, True, True)
    assert aborted.reason == "its execution is ABORTED"
    assert denied.reason == "its holder cannot be described: AccessDeniedException"


@pytest.mark.parametrize(("held_for", "stale"), [(timedelta(seconds=2), False), (timedelta(minutes=5), True)])
def test_a_holder_that_does_not_exist_yet_is_starting_for_a_moment(held_for: timedelta, stale: bool) -> None:
    # Given an operator start claims the lock for its execution just before starting it
    # When the holder does not exist, shortly after the claim or long after
    verdict = lock_staleness(None, "ExecutionDoesNotExist", missing=True, held_for=held_for)
    # Then it is first "being started", and stale once the claim is older than any start takes
    assert verdict.stale is stale
    assert verdict.reason == (
        "its holder cannot be described: ExecutionDoesNotExist" if stale else "its execution is being started"
    )


# -- the claim --------------------------------------------------------------------------------------------
class FakeLocks:
    """LockTable's contract in memory: conditional take (re-entrant for the holder), conditional release."""

    def __init__(self, clock: Any) -> None:
        self.items: dict[str, LockInfo] = {}
        self.clock = clock

    def acquire(self, workload: str, holder: str, operation: str, lease: timedelta) -> LockInfo:
        held = self.current(workload)
        if held is not None and held.holder != holder:
            raise LockHeld(held)
        now = self.clock()
        info = LockInfo(
            workload=workload, holder=holder, operation=operation, acquired_at=now, expires_at=now + lease
        )
        self.items[workload] = info
        return info

    def release(self, workload: str, holder: str) -> bool:
        if workload in self.items and self.items[workload].holder == holder:
            del self.items[workload]
            return True
        return False

    def current(self, workload: str) -> LockInfo | None:
        info = self.items.get(workload)
        return info if info is not None and info.expires_at > self.clock() else None

    def break_lock(self, workload: str) -> LockInfo | None:
        return self.items.pop(workload, None)


@dataclass
class FakeExecutions:
    status: dict[str, str] = field(default_factory=dict)
    fail_start: Exception | None = None

    def execution_arn(self, workload: str, kind: str, name: str) -> str:
        return MACHINE.replace(":stateMachine:", ":execution:").replace("failover", kind) + f":{name}"

    def start(self, workload: str, kind: str, name: str, payload: dict[str, Any]) -> tuple[str, bool]:
        if self.fail_start is not None:
            raise self.fail_start
        arn = self.execution_arn(workload, kind, name)
        self.status[arn] = "RUNNING"
        return arn, True

    def describe(self, arn: str) -> dict[str, Any]:
        if arn not in self.status:
            raise NoSuchExecution(arn)
        return {"executionArn": arn, "status": self.status[arn]}


class NoSuchExecution(Exception):
    """What botocore raises for a missing execution: an error code in `response`."""

    response = {"Error": {"Code": "ExecutionDoesNotExist"}}


@dataclass
class FakeLedger:
    entries: list[dict[str, Any]] = field(default_factory=list)

    def record(self, workload: str, kind: str, outcome: str, reason: str, **kw: Any) -> None:
        self.entries.append({"kind": kind, "outcome": outcome, "reason": reason, **kw})


def fake_deps() -> Any:
    clock = lambda: T0  # noqa: E731
    plans = SimpleNamespace(get=lambda workload: plan())
    return SimpleNamespace(
        plans=plans, locks=FakeLocks(clock), executions=FakeExecutions(), ledger=FakeLedger(), clock=clock
    )


def test_of_two_simultaneous_requests_one_starts_and_the_other_is_told_who_won() -> None:
    # Given nothing holds the workload
    d = fake_deps()
    # When a failover and a failback are requested at the same moment
    winner, _ = start_claimed(W, "failover", "failover-op-1", {}, d)
    with pytest.raises(OperationConflict) as loser:
        start_claimed(W, "failback", "failback-op-2", {}, d)
    # Then the first started and holds the lock under its own execution ARN; the second started nothing
    assert d.locks.current(W).holder == winner and winner.endswith(":failover-op-1")
    assert list(d.executions.status) == [winner]
    # And the refusal names the winner, running, so the API can answer 409 with its id
    assert loser.value.execution == winner
    assert "locked by a running failover (failover-op-1)" in str(loser.value)


def test_the_execution_finds_its_own_claim_and_takes_it_over() -> None:
    # Given an operator start claimed the lock for the execution it started
    d = fake_deps()
    arn, _ = start_claimed(W, "failover", "failover-op-1", {}, d)
    # When the execution's AcquireLock takes the lock with its own ARN (a lease renewal)
    info = d.locks.acquire(W, arn, "failover", timedelta(minutes=30))
    # Then it has it
    assert info.holder == arn


def test_a_request_between_the_winners_claim_and_its_start_is_told_it_is_starting() -> None:
    # Given another request has just claimed the lock and not yet called StartExecution
    d = fake_deps()
    claimed = FakeExecutions().execution_arn(W, "failback", "failback-op-1")
    d.locks.acquire(W, claimed, "failback", timedelta(minutes=30))
    # When a failover is requested at that moment
    with pytest.raises(OperationConflict) as refused:
        start_claimed(W, "failover", "failover-op-2", {}, d)
    # Then it is refused naming the winner as starting, never as a stale lock to unlock
    assert refused.value.execution == claimed
    assert "locked by a starting failback (failback-op-1)" in str(refused.value)
    assert "unlock" not in str(refused.value)


def test_a_start_that_fails_gives_the_claim_back() -> None:
    # Given StartExecution fails (throttled past its retries)
    d = fake_deps()
    d.executions.fail_start = RuntimeError("ThrottlingException")
    # When an operator asks for a failover
    with pytest.raises(RuntimeError, match="Throttling"):
        start_claimed(W, "failover", "failover-op-1", {}, d)
    # Then the workload is free again: a retry, once StartExecution works, claims it and starts
    assert d.locks.current(W) is None
    d.executions.fail_start = None
    assert start_claimed(W, "failover", "failover-op-2", {}, d)[0].endswith(":failover-op-2")


def test_a_lock_whose_holder_stopped_is_a_conflict_that_says_how_to_free_it() -> None:
    # Given the lock is held by an execution that was stopped by hand without releasing it
    d = fake_deps()
    stopped, _ = start_claimed(W, "failback", "failback-op-1", {}, d)
    d.executions.status[stopped] = "ABORTED"
    # When a failover is requested
    with pytest.raises(OperationConflict) as refused:
        start_claimed(W, "failover", "failover-op-2", {}, d)
    # Then the refusal says the holder no longer runs and names the way out
    assert "no longer running (its execution is ABORTED)" in str(refused.value)
    assert f"lifeboat unlock {W}" in str(refused.value)


def test_unlock_removes_the_lock_and_records_who_and_why() -> None:
    # Given a lock held by a stopped failback
    d = fake_deps()
    stopped, _ = start_claimed(W, "failback", "failback-op-1", {}, d)
    d.executions.status[stopped] = "FAILED"
    # When bob unlocks it
    outcome = unlock(W, "failback crashed; checked traffic", "arn:aws:iam::123456789012:user/bob", d)
    # Then the workload is free, the answer names what was removed, and the ledger has his reason
    assert d.locks.current(W) is None
    assert outcome.released is not None and outcome.released.holder == stopped and outcome.released.stale
    assert outcome.result == "released the lock of failback failback-op-1 (its execution is FAILED)"
    [entry] = d.ledger.entries
    assert (entry["kind"], entry["outcome"], entry["reason"], entry["actor"], entry["execution"]) == (
        "operator",
        "unlocked",
        "failback crashed; checked traffic",
        "arn:aws:iam::123456789012:user/bob",
        stopped,
    )


def test_unlocking_a_running_holder_warns_and_an_unheld_lock_is_nothing_to_do() -> None:
    # Given a running failover holding the lock
    d = fake_deps()
    start_claimed(W, "failover", "failover-op-1", {}, d)
    # When it is unlocked, then unlocked again
    first = unlock(W, "testing", "bob", d)
    second = unlock(W, "testing", "bob", d)
    # Then the first answer warns that the holder still runs; the second removed nothing and recorded nothing
    assert first.released is not None and not first.released.stale
    assert "but its execution is running and may go on" in first.result
    assert second.released is None and "was not locked" in second.result
    assert len(d.ledger.entries) == 1
