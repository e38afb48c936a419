"""What the drill sees while Lifeboat works: the trigger alarms' transitions and the ledger's decisions, and
from those the failover executions the drill caused and how they concluded."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime
from typing import Any

from chalicelib.models.alarms import AlarmSnapshot
from chalicelib.models.drill import DrillRecord
from chalicelib.models.ledger import LedgerEntry
from chalicelib.models.plan import DRPlan
from chalicelib.observability import logger
from chalicelib.services.deps import Deps


def readable_alarms(plan: DRPlan, d: Deps) -> list[AlarmSnapshot]:
    """The trigger alarms, each read in its own region (a region that cannot be reached is left out)."""
    return d.alarms.read(plan.trigger_alarms_by_region()).snapshots


def entry_dict(entry: LedgerEntry) -> dict[str, Any]:
    """A ledger entry as the drill record keeps it (`decisions`)."""
    error = entry.detail.get("error") if isinstance(entry.detail.get("error"), dict) else {}
    return {
        "at": entry.at,
        "kind": entry.kind,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "actor": entry.actor,
        "execution": entry.execution,
        "error": (error or {}).get("Error"),
    }


class Watcher:
    """Collects alarm transitions and ledger entries into the record as the drill polls."""

    def __init__(
        self, d: Deps, subject: DRPlan, record: DrillRecord, executions: MutableMapping[str, str]
    ) -> None:
        self.d = d
        self.subject = subject
        self.record = record
        self.executions = executions  # the run's own: arn -> kind; failovers the trigger started are added
        self._alarm_states: dict[str, tuple[str, datetime]] = {}
        self._seen_entries: set[str] = set()

    def watch_alarms(self) -> None:
        try:
            snaps = readable_alarms(self.subject, self.d)  # a region that cannot be read is skipped
        except Exception as exc:  # a missed look is fine; the trigger reads alarms on its own
            logger.warning("drill could not read alarms", error=str(exc))
            return
        for snap in snaps:
            before = self._alarm_states.get(snap.name)
            if before is None or before[0] != snap.state or before[1] != snap.since:
                if before is not None or snap.state != "OK":
                    self.record.alarms.append({"alarm": snap.name, "state": snap.state, "at": snap.since})
                self._alarm_states[snap.name] = (snap.state, snap.since)

    def collect_entries(self) -> list[LedgerEntry]:
        fresh = []
        for entry in reversed(self.d.ledger.entries(self.subject.workload, limit=40)):
            if entry.entry_id in self._seen_entries or entry.at < self.record.started_at:
                continue
            self._seen_entries.add(entry.entry_id)
            fresh.append(entry)
            self.record.decisions.append(entry_dict(entry))
            if entry.kind == "decision" and entry.outcome == "started" and entry.execution:
                self.executions.setdefault(entry.execution, "failover")
        return fresh

    def running_failovers(self) -> list[str]:
        return [
            arn
            for arn, kind in self.executions.items()
            if kind == "failover" and self.d.executions.describe(arn)["status"] == "RUNNING"
        ]

    def settle(self) -> tuple[list[str], list[dict[str, Any]]]:
        """(failovers still running, failovers concluded) read consistently: the running ones first, then
        the ledger. A failover writes its conclusion to the ledger before its execution ends, so one that
        is not running any more is always among the concluded (read the other way round, or from entries
        collected a poll ago, a failover that ends between the reads is in neither)."""
        running = self.running_failovers()
        self.collect_entries()
        return running, self.concluded_failovers()

    def concluded_failovers(self) -> list[dict[str, Any]]:
        """Failover executions the drill caused that concluded, with their ledger outcome, oldest first."""
        out = []
        for decision in self.record.decisions:
            if decision["kind"] != "failover" or decision.get("execution") not in self.executions:
                continue
            if decision.get("error") == "LockHeld":
                continue  # a second quorum's execution found the first one running: not a verdict
            out.append(
                {
                    "execution": decision["execution"],
                    "outcome": decision["outcome"],
                    "reason": decision["reason"],
                    "at": decision["at"],
                }
            )
        return out
