"""CloudWatch alarm state changes, as EventBridge delivers them and as an alarm's Lambda action sends them,
and alarm state snapshots.

Metric, metric-math, anomaly-detection and composite alarms all arrive as "CloudWatch Alarm State Change";
only `detail.configuration` differs, so it is kept loose while the fields Lifeboat decides on are strict:
the envelope must name the alarm's ARN in its own account and region (an event that does not cannot be
told apart from one forged or mangled on the way). An alarm muted by a mute rule carries `muteDetail`.
An alarm whose action invokes a Lambda function directly sends another shape (`alarmData`, no
`detail-type`); `AlarmActionPayload` reads it and turns it into the same state change.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chalicelib.clock import parse_timestamp

AlarmStateValue = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
MAX_ALARM_NAME = 255
ACCOUNT_PATTERN = r"^\d{12}$"
EVENT_REGION_PATTERN = r"^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$"
_ALARM_ARN = re.compile(
    r"^arn:aws[a-z-]*:cloudwatch:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):alarm:(?P<name>.+)$"
)


def alarm_arn_names(arn: str, *, region: str, account: str) -> str | None:
    """The alarm name in `arn` when it is a CloudWatch alarm ARN of `region` and `account`, else None."""
    found = _ALARM_ARN.match(arn)
    if found is None or found["region"] != region or found["account"] != account:
        return None
    return found["name"]


def _timestamp(value: Any) -> Any:
    return parse_timestamp(value) if isinstance(value, str) else value


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="allow")

    value: AlarmStateValue = Field(description="OK, ALARM or INSUFFICIENT_DATA.")
    reason: str = Field("", max_length=10_000, description="CloudWatch's human-readable reason.")
    timestamp: datetime = Field(description="When the alarm entered this state.")

    _ts = field_validator("timestamp", mode="before")(_timestamp)


class MuteDetail(BaseModel):
    """An alarm mute rule muting the alarm's actions (CloudWatch adds it to state changes while muted)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    muted_by: str = Field(alias="mutedByArn", min_length=1, max_length=1600, description="The rule's ARN.")
    window_start: datetime = Field(alias="muteWindowStart", description="When the mute window opened.")
    window_end: datetime = Field(alias="muteWindowEnd", description="When it closes.")

    _times = field_validator("window_start", "window_end", mode="before")(_timestamp)

    @model_validator(mode="after")
    def _ordered(self) -> MuteDetail:
        if self.window_end < self.window_start:
            raise ValueError("muteWindowEnd is before muteWindowStart")
        return self

    def covers(self, moment: datetime) -> bool:
        """True when `moment` falls inside the mute window (start included, end excluded)."""
        return self.window_start <= moment < self.window_end

    def describe(self) -> str:
        rule = self.muted_by.rsplit(":", 1)[-1]
        return f"muted by rule {rule} until {self.window_end.isoformat()}"


class AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    alarm_name: str = Field(alias="alarmName", min_length=1, max_length=MAX_ALARM_NAME)
    state: AlarmState = Field(description="The state the alarm moved to.")
    previous_state: AlarmState | None = Field(None, alias="previousState")
    configuration: dict[str, Any] = Field(
        default_factory=dict, description="Metrics (metric/math/anomaly alarms) or alarmRule (composite)."
    )
    mute_detail: MuteDetail | None = Field(
        None, alias="muteDetail", description="The mute rule muting the alarm's actions, when one does."
    )

    @property
    def is_composite(self) -> bool:
        return "alarmRule" in self.configuration

    @property
    def mute(self) -> MuteDetail | None:
        """The mute in force when the alarm entered this state (its own timestamp), or None.

        AWS mutes the actions of a state change that happens inside the window; a `muteDetail` whose window
        does not cover the change (a replay, a skewed clock, the documentation's sample) mutes nothing.
        """
        found = self.mute_detail
        return found if found is not None and found.covers(self.state.timestamp) else None


class AlarmStateChange(BaseModel):
    """The EventBridge envelope of a CloudWatch alarm state change."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str = Field(description="Envelope version; AWS sends the string '0'.")
    id: str = Field(min_length=1, max_length=128, description="Event id (idempotency key).")
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    source: Literal["aws.cloudwatch"] = Field(description="Always aws.cloudwatch for alarm events.")
    account: str = Field(pattern=ACCOUNT_PATTERN, description="AWS account id (12 digits).")
    time: datetime = Field(description="When EventBridge received the event.")
    region: str = Field(pattern=EVENT_REGION_PATTERN, description="Region of the alarm.")
    resources: list[str] = Field(
        min_length=1, max_length=10, description="The alarm's ARN (in the event's account and region)."
    )
    detail: AlarmDetail

    _time = field_validator("time", mode="before")(_timestamp)

    @model_validator(mode="after")
    def _names_its_alarm(self) -> AlarmStateChange:
        # The policy acts on the alarm's name in the event's region; the ARN ties the three together.
        named = {alarm_arn_names(r, region=self.region, account=self.account) for r in self.resources}
        if self.detail.alarm_name not in named:
            raise ValueError(
                f"resources must include the ARN of alarm {self.detail.alarm_name!r} in account "
                f"{self.account}, region {self.region}"
            )
        return self


class AlarmSnapshot(BaseModel):
    """One alarm's current state, as read from CloudWatch or carried by an event."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Alarm name.")
    state: AlarmStateValue = Field(description="Current state.")
    since: datetime = Field(description="When the alarm entered its current state.")
    muted_by: str | None = Field(
        None, description="The mute rule that muted this state change (known from the alarm's own event)."
    )


class AlarmActionPayload(BaseModel):
    """What CloudWatch sends a Lambda function that is an alarm's action (no EventBridge envelope).

    It has no event id: a redelivery of the same state change carries the same alarm, state and timestamp,
    so the id of the state change it becomes is derived from those (`to_state_change`).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    source: Literal["aws.cloudwatch"] = Field(description="Always aws.cloudwatch.")
    alarm_arn: str = Field(alias="alarmArn", min_length=1, max_length=1600, description="The alarm's ARN.")
    account_id: str = Field(alias="accountId", pattern=ACCOUNT_PATTERN, description="The alarm's account.")
    time: datetime = Field(description="When CloudWatch sent it.")
    region: str = Field(pattern=EVENT_REGION_PATTERN, description="The alarm's region.")
    alarm_data: AlarmDetail = Field(alias="alarmData", description="The alarm's name, states, configuration.")

    _time = field_validator("time", mode="before")(_timestamp)

    @model_validator(mode="after")
    def _names_its_alarm(self) -> AlarmActionPayload:
        named = alarm_arn_names(self.alarm_arn, region=self.region, account=self.account_id)
        if named != self.alarm_data.alarm_name:
            raise ValueError(
                f"alarmArn must be the ARN of alarm {self.alarm_data.alarm_name!r} in account "
                f"{self.account_id}, region {self.region} (got {self.alarm_arn[:300]})"
            )
        return self

    def event_id(self) -> str:
        """The same for every delivery of one state change, different for any other."""
        state = self.alarm_data.state
        key = f"{self.alarm_arn}|{state.value}|{state.timestamp.isoformat()}"
        return "alarm-action-" + hashlib.sha256(key.encode()).hexdigest()[:40]

    def to_state_change(self) -> dict[str, Any]:
        """The EventBridge state change this payload stands for (what the trigger policy reads)."""
        return {
            "version": "0",
            "id": self.event_id(),
            "detail-type": ALARM_STATE_CHANGE,
            "source": self.source,
            "account": self.account_id,
            "time": self.time.isoformat(),
            "region": self.region,
            "resources": [self.alarm_arn],
            "detail": self.alarm_data.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
