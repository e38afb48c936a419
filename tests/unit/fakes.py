"""In-memory stand-ins for the ledger and the notifier, for use-case tests (no socket)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.locks import LockHeld
from chalicelib.models.ledger import LedgerEntry, LockInfo, WorkloadState


@dataclass
class FakeLedger:
    """The ledger table of one workload: its state, its entries (newest last), conclusion marks, controls."""

    state: WorkloadState
    recorded: list[LedgerEntry] = field(default_factory=list)
    marks: dict[str, str] = field(default_factory=dict)
    controls_deleted: list[str] = field(default_factory=list)
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def outcomes(self) -> list[tuple[str, str, str]]:
        """(kind, outcome, reason) of each entry recorded, oldest first."""
        return [(e.kind, e.outcome, e.reason) for e in self.recorded]

    def concluded_by(self, workload: str, execution: str) -> str | None:
        return self.marks.get(execution)

    def mark_concluded(self, workload: str, execution: str, by: str) -> bool:
        if execution in self.marks:
            return False
        self.marks[execution] = by
        return True

    def get_state(self, workload: str) -> WorkloadState:
        return self.state

    def update_state(self, workload: str, *, current: Any = None, mutate: Any = None, **changes: Any) -> Any:
        delta = {**changes, **(mutate(self.state) if mutate else {})}
        self.state = self.state.model_copy(update={**delta, "version": self.state.version + 1})
        return self.state

    def record(self, workload: str, kind: str, outcome: str, reason: str, **kw: Any) -> None:
        entry = {"workload": workload, "kind": kind, "outcome": outcome, "reason": reason, **kw}
        at = datetime.now(UTC)
        self.recorded.append(
            LedgerEntry.model_validate({**entry, "at": at, "entry_id": str(len(self.recorded))})
        )

    def entries(self, workload: str, limit: int = 50, kind: str | None = None) -> list[LedgerEntry]:
        """Newest first, as the ledger answers."""
        return [e for e in reversed(self.recorded) if kind is None or e.kind == kind][:limit]

    def get_control(self, workload: str, key: str) -> dict[str, Any] | None:
        return self.controls.get(key)

    def delete_control(self, workload: str, key: str) -> None:
        self.controls_deleted.append(key)


@dataclass
class FakeLocks:
    """The lock table of one workload: conditional as the real one (re-entrant for its holder), with every
    lease asked for kept in `leases` (holder, lease)."""

    held: LockInfo | None = None
    leases: list[tuple[str, timedelta]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    now: datetime = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)

    def current(self, workload: str) -> LockInfo | None:
        return self.held

    def acquire(self, workload: str, holder: str, operation: str, lease: timedelta) -> LockInfo:
        if self.held is not None and self.held.holder != holder:
            raise LockHeld(self.held)
        self.leases.append((holder, lease))
        self.held = LockInfo(
            workload=workload,
            holder=holder,
            operation=operation,
            acquired_at=self.now,
            expires_at=self.now + lease,
        )
        return self.held

    def release(self, workload: str, holder: str) -> bool:
        if self.held is None or self.held.holder != holder:
            return False
        self.held = None
        self.released.append(holder)
        return True


@dataclass
class FakeNotifier:
    sent: list[str] = field(default_factory=list)  # the subjects, in order

    def publish(self, plan: Any, subject: str, summary: str, facts: dict[str, Any]) -> str:
        self.sent.append(subject)
        return "message-id"
