"""How failovers and failbacks conclude (services.conclusion), with in-memory adapters (no socket)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from chalicelib.adapters.plan_store import DirectoryPlanStore
from chalicelib.adapters.traffic import TrafficState
from chalicelib.models.failback import FailbackConcludeInput
from chalicelib.models.failover import ConcludeInput
from chalicelib.models.ledger import LockInfo, WorkloadState
from chalicelib.services import failback, failover
from chalicelib.services.deps import Deps
from tests.unit.fakes import FakeLedger, FakeNotifier

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
W = "fraud-scoring"
RUN = "arn:aws:states:us-west-2:123456789012:execution:lifeboat-dev-fraud-scoring-failover:run-1"
ON_SECONDARY = {"primary": 0, "secondary": 100}


@dataclass
class FakeLocks:
    holder: str | None

    def current(self, workload: str) -> LockInfo | None:
        if self.holder is None:
            return None
        return LockInfo(
            workload=W,
            holder=self.holder,
            operation="failover",
            acquired_at=NOW,
            expires_at=NOW + timedelta(1),
        )


@dataclass
class FakeRouter:
    weights: dict[str, int]
    shifts: list[dict[str, int]] = field(default_factory=list)

    def read(self, plan: Any) -> TrafficState:
        serving = [plan.region_of(role) for role, weight in self.weights.items() if weight == 100]
        return TrafficState(weights=dict(self.weights), active_region=(serving or [None])[0], detail={})

    def shift(self, plan: Any, weights: dict[str, int], last_smoke_passed: Any) -> TrafficState:
        self.shifts.append(dict(weights))
        self.weights = dict(weights)
        return self.read(plan)


@dataclass
class World:
    """The adapters a conclusion uses, as fakes, and the Deps handing them out."""

    ledger: FakeLedger
    router: FakeRouter
    notifier: FakeNotifier
    d: Deps


def world(weights: dict[str, int], holder: str | None = RUN) -> World:
    ledger = FakeLedger(WorkloadState(workload=W, active_region="us-east-1"))
    router, notifier = FakeRouter(weights), FakeNotifier()
    unused: Any = None  # what concluding never calls
    d = Deps(
        plans=DirectoryPlanStore(ROOT / "plans"),
        ledger=cast(Any, ledger),
        locks=cast(Any, FakeLocks(holder)),
        router=cast(Any, router),
        endpoints=unused,
        notifier=cast(Any, notifier),
        alarms=unused,
        executions=unused,
        clock=lambda: NOW,
    )
    return World(ledger, router, notifier, d)


def failed_failover(error: dict[str, Any]) -> ConcludeInput:
    return ConcludeInput(workload=W, execution=RUN, outcome="failed", context={"error": error})


def test_a_failover_that_left_traffic_on_the_secondary_concludes_unvalidated_once() -> None:
    # Given a failover holding the lock that failed after moving all traffic to the secondary
    w = world(ON_SECONDARY)
    inp = failed_failover({"Error": "States.Timeout", "Cause": None})
    # When it concludes
    first = failover.conclude(inp, w.d)
    # Then it is unvalidated, not failed: recorded, the state follows traffic, people are told who serves
    assert first.status == "unvalidated" and first.active_region == "us-west-2"
    assert first.reason.startswith("failover UNVALIDATED: traffic moved to us-west-2, then the run failed")
    assert [(kind, outcome) for kind, outcome, _ in w.ledger.outcomes] == [("failover", "unvalidated")]
    assert w.ledger.get_state(W).active_region == "us-west-2"
    assert w.notifier.sent == ["[Lifeboat] fraud-scoring: FAILOVER UNVALIDATED - us-west-2 serves users"]
    # When the conclusion runs again (its answer was lost, the Catch ran it)
    again = failover.conclude(inp, w.d)
    # Then it answers what it recorded and records, moves and notifies nothing more
    assert again == first
    assert len(w.ledger.recorded) == 1 and len(w.notifier.sent) == 1
    assert w.router.shifts == []


def test_a_refusal_by_an_error_other_than_the_lock_is_a_failure_named_by_the_lambda_message() -> None:
    # Given a failover refused by a task error (not LockHeld), its lock held by another run
    w = world({"primary": 100, "secondary": 0}, holder="arn:other")
    cause = json.dumps({"errorMessage": "endpoint answered 500", "errorType": "SmokeError"})
    inp = ConcludeInput(
        workload=W,
        execution=RUN,
        outcome="refused",
        context={"error": {"Error": "SmokeError", "Cause": cause}},
    )
    # When it concludes
    ended = failover.conclude(inp, w.d)
    # Then it failed, says why in the task's own words, and moved nothing (it is not the holder)
    assert ended.status == "failed"
    assert ended.reason.startswith("failover failed: SmokeError: endpoint answered 500")
    assert w.router.shifts == []


def test_a_rolled_back_failback_forgets_its_controls_and_the_auto_failback_window() -> None:
    # Given a failback whose gate failed and that rolled back: everything on the secondary
    w = world(ON_SECONDARY)
    execution = RUN.replace("failover", "failback")
    context = {"rollback": {"reason": "gate alarm fraud-errors in ALARM"}}
    inp = FailbackConcludeInput(workload=W, execution=execution, outcome="rolled_back", context=context)
    # When it concludes
    ended = failback.conclude(inp, w.d)
    # Then it says so, its control record and the auto-failback health window are gone
    assert ended.status == "rolled_back"
    assert ended.reason.startswith("failback rolled back, all traffic on the secondary (us-west-2)")
    assert w.ledger.controls_deleted == [failback.control_key(execution), failback.AUTO_HEALTH_KEY]
    assert w.notifier.sent == [
        "[Lifeboat] fraud-scoring: failback ROLLED BACK to us-west-2 - us-west-2 serves users"
    ]
