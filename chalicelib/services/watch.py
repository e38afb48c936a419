"""Watching a failover or failback execution: one read of its history, ledger and plan, as a `WatchView`.

The CLI's `lifeboat watch` (and every `--wait`) polls `ExecutionWatch.view()`; the pure view model is
`domain.watch.watch_view`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.history import steps_from_history
from chalicelib.domain.watch import Kind, WatchView, watch_view
from chalicelib.models.api import ExecutionRef
from chalicelib.models.ledger import LedgerEntry
from chalicelib.models.plan import DRPlan
from chalicelib.services.deps import Deps
from chalicelib.services.executions import ExecutionDetail, resolve_execution, split_machine_name

WATCHABLE: tuple[Kind, ...] = ("failover", "failback")
LEDGER_SCAN = 100  # the newest ledger entries read on each look for the execution's decisions


class NotWatchable(LookupError):
    """The execution is not a failover or a failback (those are what `watch` can show)."""


class ExecutionWatch:
    """One execution, resolved once; `view()` reads where it stands now."""

    def __init__(self, ref: ExecutionRef, d: Deps) -> None:
        desc = resolve_execution(ref, d)
        self.d = d
        self.arn = str(desc["executionArn"])
        self.name = str(desc.get("name") or self.arn.rsplit(":", 1)[-1])
        machine = self.arn.split(":")[-2]
        workloads = [p.workload for p in d.plans.all()]
        workload, kind = split_machine_name(machine, d.executions.prefix, workloads)
        if workload is None or kind not in WATCHABLE:
            raise NotWatchable(
                f"{self.name} is a {kind or 'Lifeboat'} execution: watch shows failovers and failbacks"
            )
        self.workload: str = workload
        self.kind: Kind = kind  # type: ignore[assignment]
        self.plan = d.plans.get(workload)
        self._input = _json(desc.get("input"))
        self._traffic: dict[str, int] | None = None
        self._traffic_read = False

    def read(self) -> Snapshot:
        """One look at the execution: its description, its history so far, its ledger entries."""
        desc = self.d.executions.describe(self.arn)
        events = self.d.executions.events(self.arn)
        entries = [
            e for e in self.d.ledger.entries(self.workload, limit=LEDGER_SCAN) if e.execution == self.arn
        ]
        if not self._traffic_read:  # where traffic stood when watching began (the history has it later)
            self._traffic_read = True
            try:
                self._traffic = self.d.router.read(self.plan).weights
            except Exception:  # an unreadable switch must not stop the watch: the history still tells
                self._traffic = None
        return Snapshot(desc=desc, events=events, entries=list(reversed(entries)))

    def view(self, snapshot: Snapshot | None = None, *, upto: int | None = None) -> WatchView:
        """The view now (reading afresh without `snapshot`); with `upto`, as it stood once the first `upto`
        events had happened (a replay: what a watcher polling then would have seen)."""
        snap = snapshot or self.read()
        desc, events = snap.desc, snap.events
        status, stopped, now = str(desc.get("status", "RUNNING")), _utc(desc.get("stopDate")), self.d.clock()
        if upto is not None:
            events = events[:upto]
            status, stopped = "RUNNING", None
            now = (_utc(events[-1].get("timestamp")) if events else None) or now
        return watch_view(
            kind=self.kind,
            plan=self.plan,
            name=self.name,
            status=status,
            started_at=_utc(desc.get("startDate")) or now,
            stopped_at=stopped,
            steps=steps_from_history(events),
            execution_input=self._input,
            entries=[e for e in snap.entries if upto is None or e.at <= now],
            now=now,
            error=desc.get("error"),
            traffic=self._traffic,
        )


def detail_view(detail: ExecutionDetail, plan: DRPlan, *, now: datetime) -> WatchView | None:
    """The watch view of an execution already read whole (`executions.get_execution`: its steps and its
    ledger entries), as the dashboard shows it; None when it is not a failover or a failback."""
    if detail.kind not in WATCHABLE:
        return None
    return watch_view(
        kind=detail.kind,  # type: ignore[arg-type]
        plan=plan,
        name=detail.name,
        status=detail.status,
        started_at=detail.started_at or now,
        stopped_at=detail.stopped_at,
        steps=detail.steps,
        execution_input=detail.input,
        entries=detail.decisions,
        now=now,
        error=detail.error,
    )


@dataclass(frozen=True)
class Snapshot:
    desc: dict[str, Any]
    events: list[dict[str, Any]]
    entries: list[LedgerEntry]


def _utc(value: Any) -> datetime | None:
    return value.astimezone(UTC) if isinstance(value, datetime) else None


def _json(raw: Any) -> Any:
    try:
        return json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
