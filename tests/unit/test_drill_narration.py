"""The drill's narration (lifeboat_cli.demo.Watcher): it starts at the drill, never replaying older ledger
entries as if they happened during it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.models.ledger import LedgerEntry
from lifeboat_cli.demo import Watcher

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeLedger:
    def __init__(self) -> None:
        self.items: list[LedgerEntry] = []

    def add(self, at: datetime, kind: str, outcome: str, reason: str) -> None:
        entry_id = f"e{len(self.items)}"
        self.items.append(
            LedgerEntry(workload="w", at=at, kind=kind, outcome=outcome, reason=reason, entry_id=entry_id)  # type: ignore[arg-type]
        )

    def entries(self, workload: str, *, limit: int = 50) -> list[LedgerEntry]:
        return list(reversed(self.items))[:limit]  # newest first, as the ledger lists them


class FakeCloudWatch:
    def describe_alarms(self, AlarmNames: list[str]) -> dict[str, Any]:  # noqa: N803 - boto3's spelling
        return {"MetricAlarms": [{"AlarmName": name, "StateValue": "OK"} for name in AlarmNames]}


def test_the_narration_starts_at_the_drill(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a ledger with yesterday's failover, and a watcher started now
    ledger = FakeLedger()
    ledger.add(NOW - timedelta(days=1), "failover", "completed", "yesterday's failover")
    clock = SimpleNamespace(now=NOW)
    d = SimpleNamespace(ledger=ledger, clock=lambda: clock.now)
    plan = SimpleNamespace(workload="w", trigger=SimpleNamespace(alarms=["a1"]))
    watcher = Watcher(plan, d, started=0.0, cloudwatch=FakeCloudWatch())
    # When the drill's own entries arrive and the watcher polls
    ledger.add(NOW + timedelta(seconds=5), "decision", "suppressed", "quorum not met")
    watcher.poll()
    watcher.poll()
    out = capsys.readouterr().out
    # Then only the drill's entry is narrated, once
    assert "yesterday's failover" not in out
    assert out.count("quorum not met") == 1
