"""What a drill sees of the failovers it caused: read so that one ending between two reads is never lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from chalicelib.models.ledger import LedgerEntry
from chalicelib.services.deps import Deps
from chalicelib.services.drills.watch import Watcher

T0 = datetime(2026, 12, 2, 13, 58, tzinfo=UTC)
ARN = "arn:aws:states:us-east-1:123456789012:execution:failover:failover-w-1"


class World:
    """One failover that writes its conclusion to the ledger, then ends (as Conclude does), at the instant
    the test chooses: `end()` runs between the watcher's reads."""

    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = [self.entry("decision", "started", 1)]
        self.status = "RUNNING"
        self.on_describe: Any = None

    def entry(self, kind: str, outcome: str, n: int) -> LedgerEntry:
        at = T0 + timedelta(seconds=n)
        return LedgerEntry(
            workload="w", at=at, kind=kind, outcome=outcome, reason=outcome, execution=ARN, entry_id=str(n)
        )

    def end(self) -> None:
        self.entries.append(self.entry("failover", "completed", 2))
        self.status = "SUCCEEDED"

    def describe(self, arn: str) -> dict[str, str]:
        if self.on_describe is not None:
            self.on_describe()
            self.on_describe = None
        return {"status": self.status}

    def ledger_entries(self, workload: str, limit: int = 40) -> list[LedgerEntry]:
        return list(reversed(self.entries))  # newest first, as the ledger answers


def watcher(world: World) -> Watcher:
    d = SimpleNamespace(
        executions=SimpleNamespace(describe=world.describe),
        ledger=SimpleNamespace(entries=world.ledger_entries),
    )
    record = SimpleNamespace(decisions=[], started_at=T0)
    w = Watcher(cast(Deps, d), cast(Any, SimpleNamespace(workload="w")), cast(Any, record), {})
    w.collect_entries()  # the drill's last poll: the failover started and runs
    return w


def test_a_failover_ending_between_the_reads_is_seen_concluded() -> None:
    # Given a drill that saw a failover start, and the failover concluding just as the drill looks again
    world = World()
    w = watcher(world)
    world.on_describe = world.end
    # When the drill reads what runs and what concluded
    running, concluded = w.settle()
    # Then the failover is not running and its conclusion is there: never "neither running nor concluded"
    assert running == []
    assert [c["outcome"] for c in concluded if c["outcome"] != "started"] == ["completed"]


def test_a_running_failover_is_running_and_not_concluded() -> None:
    # Given a failover still running / When the drill looks / Then it is running, with no conclusion yet
    world = World()
    running, concluded = watcher(world).settle()
    assert running == [ARN]
    assert all(c["outcome"] == "started" for c in concluded)
