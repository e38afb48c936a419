"""CloudWatch alarm events as EventBridge delivers them, and alarm state snapshots.

Metric, metric-math, anomaly-detection and composite alarms all arrive as "CloudWatch Alarm State Change";
only `detail.configuration` differs, so it is kept loose while the fields Lifeboat decides on are strict.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.clock import parse_timestamp

AlarmStateValue = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
MAX_ALARM_NAME = 255


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="allow")

    value: AlarmStateValue = Field(description="OK, ALARM or INSUFFICIENT_DATA.")
    reason: str = Field("", max_length=10_000, description="CloudWatch's human-readable reason.")
    timestamp: datetime = Field(description="When the alarm entered this state.")

    @field_validator("timestamp", mode="before")
    @classmethod
    def _ts(cls, value: Any) -> Any:
        return parse_timestamp(value) if isinstance(value, str) else value


class AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    alarm_name: str = Field(alias="alarmName", min_length=1, max_length=MAX_ALARM_NAME)
    state: AlarmState = Field(description="The state the alarm moved to.")
    previous_state: AlarmState | None = Field(None, alias="previousState")
    configuration: dict[str, Any] = Field(
        default_factory=dict, description="Metrics (metric/math/anomaly alarms) or alarmRule (composite)."
    )

    @property
    def is_composite(self) -> bool:
        return "alarmRule" in self.configuration


class AlarmStateChange(BaseModel):
    """The EventBridge envelope of a CloudWatch alarm state change."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str = Field(description="Envelope version; AWS sends the string '0'.")
    id: str = Field(min_length=1, max_length=128, description="Event id (idempotency key).")
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    source: Literal["aws.cloudwatch"] = Field(description="Always aws.cloudwatch for alarm events.")
    account: str = Field(description="AWS account id.")
    time: datetime = Field(description="When EventBridge received the event.")
    region: str = Field(description="Region of the alarm.")
    resources: list[str] = Field(default_factory=list, description="The alarm ARN.")
    detail: AlarmDetail

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return parse_timestamp(value) if isinstance(value, str) else value


class AlarmSnapshot(BaseModel):
    """One alarm's current state, as read from CloudWatch or carried by an event."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Alarm name.")
    state: AlarmStateValue = Field(description="Current state.")
    since: datetime = Field(description="When the alarm entered its current state.")
