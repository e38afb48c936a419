"""Per-asset replication state (measured RPO exposure) and the outcome of each replication event."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_PENDING = 200
"""Pending objects remembered per asset; beyond it the oldest are kept (they define the exposure)."""


class AssetReplicationState(BaseModel):
    """What Lifeboat currently knows about one asset's replication, from events and verification runs.

    Stored as its own item next to the workload state, so a burst of replication events never contends with
    failover/failback state writes.
    """

    model_config = ConfigDict(extra="ignore")

    workload: str
    asset: str
    objective_seconds: float | None = Field(None, description="The asset's RPO objective.")
    pending: dict[str, datetime] = Field(
        default_factory=dict, description="Objects known not to be in the replica: key -> change time."
    )
    measured_rpo_seconds: float | None = Field(None, description="Exposure when last measured.")
    measured_at: datetime | None = None
    measured_by: str | None = Field(None, description="verification or replication-event.")
    last_event: dict[str, Any] = Field(default_factory=dict, description="The last replication event seen.")
    last_verification: dict[str, Any] = Field(default_factory=dict, description="run_id, verdict, at.")
    counters: dict[str, int] = Field(default_factory=dict, description="Events seen per kind, re-drives.")
    failures: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Replication failures per failureReason since the last clean verification: "
        "count, last_at, last_key, retry_fixes, action.",
    )
    version: int = 0

    def oldest_pending(self) -> datetime | None:
        return min(self.pending.values()) if self.pending else None

    def add_pending(self, key: str, since: datetime) -> None:
        current = self.pending.get(key)
        self.pending[key] = since if current is None else min(current, since)
        if len(self.pending) > MAX_PENDING:
            newest = max(self.pending, key=lambda k: self.pending[k])
            del self.pending[newest]

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


EventOutcome = Literal[
    "acknowledged",  # s3:TestEvent
    "recorded",  # a replication event, recorded (nothing to re-drive)
    "redriven",  # failed replication, copied by Lifeboat
    "not-redriven",  # failed replication that a copy cannot or must not fix
    "redrive-failed",  # the copy itself failed for good (e.g. AccessDenied)
    "source-gone",  # the object no longer exists in the source
    "duplicate",  # already processed (SQS delivers at least once)
    "unmatched",  # no plan protects this bucket/prefix
    "malformed",  # never acted on; returned to the queue (to the DLQ after maxReceiveCount); ledger says why
    "failed",  # a transient error: returned to the queue to be retried
]


class RecordOutcome(BaseModel):
    """What happened to one SQS record (one S3 notification, possibly several event records)."""

    message_id: str
    outcome: EventOutcome
    reason: str
    workload: str | None = None
    asset: str | None = None
    events: list[dict[str, Any]] = Field(default_factory=list, description="Per event record: what was done.")
    buckets: list[str] = Field(
        default_factory=list, description="Malformed: the source buckets its records named, when readable."
    )


class BatchReport(BaseModel):
    """One SQS batch: per-record outcomes and the items Lambda must return to the queue."""

    outcomes: list[RecordOutcome]
    batch_item_failures: list[dict[str, str]] = Field(
        default_factory=list, description="[{itemIdentifier: messageId}] for records to retry."
    )
