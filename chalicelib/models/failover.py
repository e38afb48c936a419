"""Inputs and outputs of the failover state machine and its tasks (the Step Functions boundary)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.models.plan import Role

Mode = Literal["graceful", "ungraceful"]
FailoverOutcome = Literal["completed", "suppressed", "refused", "failed", "unvalidated"]
"""How a failover concluded. failed: nothing changed, the primary still serves (or traffic could not be
made clean); unvalidated: traffic moved to the secondary, then the run failed before validating it."""


class TriggerInfo(BaseModel):
    """Why an alarm-started failover began: the quorum that formed."""

    alarm: str | None = Field(None, description="The alarm whose change completed the quorum (ledger only).")
    first_alarm_at: datetime = Field(
        description="Earliest ALARM among the quorum: the RTO clock starts here."
    )
    quorum_since: datetime = Field(description="When the quorum became true.")
    sustain_until: datetime = Field(description="When the sustain window ends (the state machine waits).")
    event_id: str | None = Field(
        None, description="EventBridge id of the event that started it (ledger only)."
    )


class FailoverRequest(BaseModel):
    """The input of a failover execution."""

    model_config = ConfigDict(extra="forbid")

    workload: str = Field(description="Workload to fail over.")
    mode: Mode = Field(
        "graceful", description="graceful waits for replication (bounded); ungraceful does not."
    )
    reason: str = Field(description="Why: the trigger decision or the operator's words.")
    requested_by: str = Field("lifeboat", description="lifeboat (alarms) or the operator's IAM identity.")
    trigger: TriggerInfo | None = Field(None, description="Present when alarms started it.")


class TaskInput(BaseModel):
    """Common fields the state machine passes to every task."""

    model_config = ConfigDict(extra="ignore")

    workload: str = Field(description="Workload the execution works on.")
    execution: str = Field(description="Execution ARN ($$.Execution.Id): lock holder and ledger link.")


class LockInput(TaskInput):
    operation: Literal["failover", "failback", "drill", "rollback"] = Field(
        description="What takes the lock."
    )


class RecheckInput(TaskInput):
    trigger: TriggerInfo


class TargetInput(TaskInput):
    target: Role = Field(description="primary or secondary.")
    phase: str = Field("check", description="Free label recorded with the result (pre-shift, post-shift...).")


class ReplicationInput(TaskInput):
    started: datetime = Field(description="Execution start: writes before it must reach the replica.")


class ShiftInput(TaskInput):
    target: Role | None = Field(None, description="Send all traffic to this role ...")
    weights: dict[str, int] | None = Field(
        None, description="... or apply these weights {primary, secondary}."
    )


class VerifyInput(TaskInput):
    expected: dict[str, int] = Field(description="Weights the read-back must show.")


class ContextInput(TaskInput):
    context: dict[str, Any] = Field(description="The execution's whole state ($).")
    started: datetime | None = Field(None, description="Execution start ($$.Execution.StartTime).")


class ConcludeInput(ContextInput):
    outcome: Literal["completed", "suppressed", "refused", "failed"]


class ProbeResult(BaseModel):
    healthy: bool
    reason: str
    verdict: dict[str, Any]


class RpoExposure(BaseModel):
    """What a failover may lose of one asset when the source region cannot be listed (no diff possible)."""

    asset: str = Field(description="The S3 asset.")
    recovery_point: datetime | None = Field(
        None,
        description="Newest object in the replica (when its copy landed): writes to the source after it "
        "may be lost. None when the replica is empty.",
    )
    window_seconds: float | None = Field(
        None,
        description="Time of the check minus the recovery point (or minus the oldest change known missing, "
        "if older): the window of writes that may be lost, as far as the replica tells.",
    )
    known_unreplicated: int = Field(
        0, description="Objects replication events already reported missing from the replica."
    )
    oldest_known_unreplicated_at: datetime | None = Field(
        None, description="Change time of the oldest of those (a lower bound of the exposure)."
    )
    objective_seconds: float = Field(description="The asset's RPO objective.")


class ReplicationStatus(BaseModel):
    done: bool = Field(description="True when caught up or when the bounded wait is over.")
    caught_up: bool = Field(description="Every write made before the failover is in the replica.")
    pending_objects: int = Field(description="Objects written before the failover and not yet replicated.")
    oldest_pending_at: datetime | None = Field(None, description="LastModified of the oldest pending write.")
    retry_after_seconds: int = Field(description="How long the state machine waits before checking again.")
    reason: str
    source_unreachable: list[str] = Field(
        default_factory=list,
        description="Assets whose source bucket could not be listed (its region's API is down): graceful "
        "mode cannot prove them replicated, and proceeds as ungraceful once the bounded wait is over.",
    )
    exposure: list[RpoExposure] = Field(
        default_factory=list, description="RPO exposure of those assets, when the wait ended without them."
    )


class RtoMeasurement(BaseModel):
    """RTO as ARC defines it: first ALARM of the triggering quorum -> traffic switched and validated."""

    started_at: datetime = Field(description="First ALARM of the quorum, or the operator's request.")
    decided_at: datetime = Field(description="When Lifeboat decided (sustain window over, recheck passed).")
    validated_at: datetime = Field(description="When the switched traffic passed its smoke tests.")
    rto_seconds: float
    decision_seconds: float = Field(description="Detection to decision (includes the sustain window).")
    automation_seconds: float = Field(description="Decision to validated switch: the automation's own share.")
    objective_seconds: float
    met: bool
    margin_seconds: float = Field(description="Objective minus measured; negative when breached.")


class Concluded(BaseModel):
    status: FailoverOutcome
    reason: str
    traffic: dict[str, int] | None = Field(None, description="Traffic weights read back at the conclusion.")
    active_region: str | None = Field(
        default=None, description="Region serving all traffic (None: split/unknown)."
    )
    serving: str = Field(default="", description="Which region serves users, in words (as notified).")
