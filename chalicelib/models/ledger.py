"""What the ledger and the lock table hold: decisions, workload state, lease locks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EntryKind = Literal[
    "decision",
    "failover",
    "failback",
    "verification",
    "replication",
    "drill",
    "operator",
    "restore",
    "rollback",
]


class LedgerEntry(BaseModel):
    """One immutable record of something Lifeboat decided or did, and why."""

    model_config = ConfigDict(frozen=True)

    workload: str = Field(description="Workload the entry belongs to.")
    at: datetime = Field(description="When it was recorded (UTC).")
    kind: EntryKind = Field(description="What area of Lifeboat recorded it.")
    outcome: str = Field(description="Short machine-readable outcome, e.g. started, suppressed, refused.")
    reason: str = Field(description="Human-readable explanation.")
    actor: str = Field("lifeboat", description="Who caused it: lifeboat, or the operator's IAM identity.")
    execution: str | None = Field(None, description="Step Functions execution ARN, when there is one.")
    detail: dict[str, Any] = Field(default_factory=dict, description="Structured facts behind the entry.")
    entry_id: str = Field(description="Unique id (sort key suffix).")


class WorkloadState(BaseModel):
    """The current, mutable state of one protected workload."""

    workload: str = Field(description="Workload name.")
    active_region: str | None = Field(None, description="Region currently serving, as last recorded.")
    last_failover_at: datetime | None = Field(None, description="When the last failover completed.")
    last_failback_at: datetime | None = Field(None, description="When the last failback completed.")
    last_rto_seconds: float | None = Field(None, description="Measured RTO of the last failover.")
    last_failback_seconds: float | None = Field(
        None, description="Measured duration of the last failback (start to validated at 100%)."
    )
    last_smoke: dict[str, Any] = Field(
        default_factory=dict, description="Last smoke-test verdict per region: {region: {passed, at, ...}}."
    )
    pending_execution: str | None = Field(
        None, description="Execution ARN of a failover waiting out its sustain window, if any."
    )
    version: int = Field(0, description="Optimistic-concurrency counter.")

    def last_transition_at(self) -> datetime | None:
        stamps = [t for t in (self.last_failover_at, self.last_failback_at) if t is not None]
        return max(stamps) if stamps else None


class LockInfo(BaseModel):
    """A lease lock: one failover, failback or model rollback per workload at a time."""

    workload: str = Field(description="Workload the lock protects.")
    holder: str = Field(description="Who holds it (an execution ARN or an operator request id).")
    operation: str = Field(description="failover, failback, drill or rollback.")
    acquired_at: datetime = Field(description="When the lease was taken.")
    expires_at: datetime = Field(description="When the lease lapses if never released (crash safety).")
