"""Alarm state change events, parsed from the real AWS documentation examples in events/."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.clock import parse_timestamp
from chalicelib.models.alarms import AlarmStateChange

EVENTS = Path(__file__).resolve().parents[2] / "events" / "cloudwatch"


@pytest.mark.parametrize(
    ("fixture", "name", "composite"),
    [
        ("alarm-state-change-single-metric.json", "ServerCpuTooHigh", False),
        ("alarm-state-change-metric-math.json", "TotalNetworkTrafficTooHigh", False),
        ("alarm-state-change-anomaly-detection.json", "EC2 CPU Utilization Anomaly", False),
        ("alarm-state-change-composite.json", None, True),
    ],
)
def test_every_documented_alarm_kind_parses(fixture: str, name: str | None, composite: bool) -> None:
    # Given a state change event exactly as AWS documents it
    raw = json.loads((EVENTS / fixture).read_text())
    # When it is parsed
    change = AlarmStateChange.model_validate(raw)
    # Then the fields the trigger policy decides on are typed and timezone-aware
    assert change.version == "0"
    assert change.detail.state.value in {"OK", "ALARM", "INSUFFICIENT_DATA"}
    assert change.detail.state.timestamp.tzinfo is not None
    assert change.detail.is_composite is composite
    if name is not None:
        assert change.detail.alarm_name == name


def test_configuration_change_events_are_not_state_changes() -> None:
    # Given the documented alarm *configuration* change event
    raw = json.loads((EVENTS / "alarm-configuration-change.json").read_text())
    # When it is parsed as a state change / Then it is rejected on its detail-type
    with pytest.raises(ValidationError) as err:
        AlarmStateChange.model_validate(raw)
    assert "detail-type" in str(err.value)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.pop("detail"),
        lambda e: e["detail"].pop("alarmName"),
        lambda e: e["detail"]["state"].update(value="PANIC"),
        lambda e: e["detail"]["state"].update(timestamp="yesterday"),
        lambda e: e.update(source="aws.ec2"),
        lambda e: e["detail"].update(alarmName="x" * 10_000),
    ],
)
def test_malformed_events_are_rejected(mutate) -> None:
    # Given a real event with one field broken
    raw = json.loads((EVENTS / "alarm-state-change-single-metric.json").read_text())
    mutate(raw)
    # When / Then parsing fails with a validation error, never anything else
    with pytest.raises(ValidationError):
        AlarmStateChange.model_validate(raw)


def test_cloudwatch_timestamp_variants() -> None:
    # Given the timestamp spellings AWS uses / Then all parse to the same instant in UTC
    expected = datetime(2019, 10, 2, 17, 4, 40, 989000, tzinfo=UTC)
    assert parse_timestamp("2019-10-02T17:04:40.989+0000") == expected
    assert parse_timestamp("2019-10-02T17:04:40.989Z") == expected
    assert parse_timestamp("2019-10-02T17:04:40.989+00:00") == expected


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)))
def test_timestamp_round_trip(moment: datetime) -> None:
    # Given any instant written the way CloudWatch writes it / Then it parses back to the same instant
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0000"
    assert parse_timestamp(text) == moment
