"""Step Functions "Execution Status Change" events as EventBridge delivers them, and what the janitor did.

The shape is the documented one (events/stepfunctions/*.json): the detail carries what DescribeExecution
returns, minus error and cause. Unknown fields are kept (AWS adds fields over time).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.clock import parse_timestamp

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
ENDED_WITHOUT_SUCCESS: tuple[ExecutionStatus, ...] = ("ABORTED", "TIMED_OUT", "FAILED")
"""The statuses an execution can end in without its own Conclude/ReleaseLock having run."""
ENDED: tuple[ExecutionStatus, ...] = ("SUCCEEDED", *ENDED_WITHOUT_SUCCESS)
"""Every end of an execution: a succeeded one concluded itself, but its ReleaseLock may have failed."""


def _epoch_millis(value: Any) -> Any:
    # Step Functions sends startDate/stopDate as epoch milliseconds.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    return value


class ExecutionStatusDetail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    execution_arn: str = Field(alias="executionArn", min_length=1, max_length=256)
    state_machine_arn: str = Field(alias="stateMachineArn", min_length=1, max_length=256)
    name: str = Field(description="Execution name.", min_length=1, max_length=80)
    status: ExecutionStatus = Field(description="Status when the event was sent.")
    start_date: datetime = Field(alias="startDate", description="Execution start (epoch ms in the event).")
    stop_date: datetime | None = Field(
        default=None, alias="stopDate", description="Execution end, None while running."
    )
    input: str | None = Field(
        default=None, description="The execution input (a JSON string), unless truncated."
    )
    output: str | None = Field(
        default=None, description="The output (a JSON string) of a succeeded execution."
    )

    @field_validator("start_date", "stop_date", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return _epoch_millis(value)


class ExecutionStatusChange(BaseModel):
    """The EventBridge envelope of a Step Functions execution status change."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str = Field(description="Envelope version; AWS sends the string '0'.")
    id: str = Field(min_length=1, max_length=128, description="Event id.")
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    source: Literal["aws.states"] = Field(description="Always aws.states for Step Functions events.")
    account: str = Field(description="AWS account id.")
    time: datetime = Field(description="When EventBridge received the event.")
    region: str = Field(description="Region of the execution.")
    resources: list[str] = Field(default_factory=list, description="The execution ARN.")
    detail: ExecutionStatusDetail

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return parse_timestamp(value) if isinstance(value, str) else value


JanitorAction = Literal["ignored", "cleaned", "concluded"]


class JanitorOutcome(BaseModel):
    """What the janitor did about one execution that ended."""

    execution: str = Field(description="Execution ARN from the event.")
    status: ExecutionStatus = Field(description="How the execution ended.")
    action: JanitorAction = Field(
        description="ignored (not Lifeboat's, or not ended); cleaned (it had concluded: lock and pending "
        "state only); concluded (it ended without concluding: the janitor recorded and notified)."
    )
    reason: str = Field(description="Why, in words.")
    workload: str | None = Field(
        default=None, description="The workload, when the execution is one of Lifeboat's."
    )
    kind: Literal["failover", "failback", "rollback"] | None = Field(
        default=None, description="Which state machine it ran."
    )
    lock_released: bool = Field(default=False, description="The janitor released a lock this execution held.")
    concluded_by: str | None = Field(
        default=None, description="Who had concluded it already: execution, operator, trigger or janitor."
    )
    weights: dict[str, int] | None = Field(default=None, description="Traffic read back by the janitor.")
    active_region: str | None = Field(
        default=None, description="Region serving all traffic (None: split/unknown)."
    )
