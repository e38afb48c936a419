"""One running drill's shared state - the request, its subject, the record being written, its own
executions - with the parts that keep it going (lease, watcher, writes), its narration, its clock and its
poll. Every part of the drill works on this."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from chalicelib.adapters.drill_faults import FaultInjector
from chalicelib.domain import drills as rules
from chalicelib.models.drill import DrillMode, DrillRecord, DrillRequest, Marker
from chalicelib.models.durations import format_duration
from chalicelib.models.plan import DrillPolicy, DRPlan
from chalicelib.observability import logger
from chalicelib.services.deps import Deps
from chalicelib.services.drills.control import DrillLease
from chalicelib.services.drills.dataset import DrillWrites
from chalicelib.services.drills.errors import DrillInterrupted
from chalicelib.services.drills.watch import Watcher


class DrillObserver(Protocol):
    """Narration: the CLI and the demo print these; the Lambda handler logs them."""

    def event(self, kind: str, message: str) -> None: ...

    def tick(self) -> None: ...


class LogObserver:
    def event(self, kind: str, message: str) -> None:
        logger.info("drill", kind=kind, text=message)

    def tick(self) -> None:
        return None


@dataclass
class DrillContext:
    request: DrillRequest
    d: Deps
    plan: DRPlan  # the requested workload's plan (its drill policy applies)
    subject: DRPlan  # the plan the drill breaks (the plan itself, or its drill target)
    mode: DrillMode
    injector: FaultInjector
    observer: DrillObserver
    record: DrillRecord
    lease: DrillLease
    watch: Watcher
    writes: DrillWrites
    executions: dict[str, str]  # the drill's executions: arn -> failover / failback
    poll: float  # seconds between two looks
    sleep: Callable[[float], None]  # how a poll waits (real time: alarms and executions move in it)
    # Test seams: called when the drill reaches a named point (e.g. "after-failover").
    hooks: dict[str, Callable[[], None]] = field(default_factory=dict)

    @property
    def policy(self) -> DrillPolicy:
        return self.plan.drill

    @property
    def scenario(self) -> rules.Scenario:
        return rules.scenario(self.request.scenario)

    # -- narration and time ----------------------------------------------------------------------------
    def say(self, kind: str, message: str) -> None:
        self.observer.event(kind, message)

    def now(self) -> datetime:
        return self.d.clock()

    def mark(self, name: str, label: str, at: datetime | None = None) -> datetime:
        at = at or self.now()
        self.record.markers.append(Marker(name=name, at=at, label=label))
        return at

    def hook(self, point: str) -> None:
        if point in self.hooks:
            self.hooks[point]()

    # -- polling ---------------------------------------------------------------------------------------
    def tick(self, sleep: float | None = None) -> None:
        """One poll: stop conditions, heartbeat, alarms, ledger, narration, then sleep."""
        if self.now() - self.record.started_at > self.policy.timeout:
            raise DrillInterrupted(
                "stop condition: the drill ran longer than its timeout "
                f"({format_duration(self.policy.timeout)})"
            )
        self.lease.heartbeat()
        self.watch.watch_alarms()
        self.watch.collect_entries()
        self.observer.tick()
        self.sleep(self.poll if sleep is None else sleep)

    def wait(self, seconds: float) -> None:
        """Poll for `seconds` of the drill's clock."""
        deadline = self.now() + timedelta(seconds=seconds)
        while (remaining := (deadline - self.now()).total_seconds()) > 0:
            self.tick(sleep=min(self.poll, remaining))
