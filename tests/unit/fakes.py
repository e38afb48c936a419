"""In-memory stand-ins for the ledger and the notifier, for use-case tests (no socket)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.models.ledger import LedgerEntry, WorkloadState


@dataclass
class FakeLedger:
    """The ledger table of one workload: its state, its entries (newest last), conclusion marks, controls."""

    state: WorkloadState
    recorded: list[LedgerEntry] = field(default_factory=list)
    marks: dict[str, str] = field(default_factory=dict)
    controls_deleted: list[str] = field(default_factory=list)

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

    def delete_control(self, workload: str, key: str) -> None:
        self.controls_deleted.append(key)


@dataclass
class FakeNotifier:
    sent: list[str] = field(default_factory=list)  # the subjects, in order

    def publish(self, plan: Any, subject: str, summary: str, facts: dict[str, Any]) -> str:
        self.sent.append(subject)
        return "message-id"
