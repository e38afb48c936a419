"""The local cloud's CloudWatch metric-alarm evaluation and the state change events it emits (no sockets)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.models.alarms import AlarmStateChange
from localcloud.alarms import (
    aggregate,
    alarm_spec_for,
    cw_timestamp,
    evaluate_alarm,
    evaluation_window,
    period_start,
    state_change_event,
)

DOCUMENTED_EVENT = (
    Path(__file__).resolve().parents[2] / "events" / "cloudwatch" / "alarm-state-change-single-metric.json"
)
PERIOD = 60
# Mid-period: the period starting 07:22:00 is still filling, so the last complete one starts at 07:21:00.
NOW = datetime(2026, 11, 28, 7, 22, 30, 250000, tzinfo=UTC)


def alarm(**overrides: Any) -> dict[str, Any]:
    """A MetricAlarm as DescribeAlarms returns it."""
    definition: dict[str, Any] = {
        "AlarmName": "fraud-scorer-errors",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:fraud-scorer-errors",
        "AlarmDescription": "Canary errors on fraud-scorer",
        "Namespace": "Lifeboat/Canary",
        "MetricName": "Errors",
        "Dimensions": [{"Name": "Endpoint", "Value": "fraud-scorer"}],
        "Statistic": "Sum",
        "Period": PERIOD,
        "EvaluationPeriods": 2,
        "DatapointsToAlarm": 2,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "missing",
        "StateValue": "OK",
        "StateReason": "Unchecked: Initial alarm creation",
        "StateReasonData": "{}",
        "StateUpdatedTimestamp": datetime(2026, 11, 28, 7, 0, tzinfo=UTC),
    }
    definition.update(overrides)
    return definition


def series(*values: float | None, now: datetime = NOW) -> dict[datetime, float | None]:
    """Datapoints of the last len(values) complete periods, oldest first (None: no data)."""
    window = evaluation_window(now, PERIOD, len(values))
    return dict(zip(window, values, strict=True))


@pytest.mark.parametrize(
    ("overrides", "values", "expected"),
    [
        # M of N
        ({}, (1, 1), "ALARM"),
        ({}, (1, 0), "OK"),
        ({}, (0, 1), "OK"),
        ({"EvaluationPeriods": 3, "DatapointsToAlarm": 2}, (1, 0, 1), "ALARM"),
        ({"EvaluationPeriods": 3, "DatapointsToAlarm": 2}, (0, 0, 1), "OK"),
        ({"EvaluationPeriods": 3, "DatapointsToAlarm": None}, (1, 1, 0), "OK"),  # M defaults to N
        ({"EvaluationPeriods": 1, "DatapointsToAlarm": 1}, (5,), "ALARM"),
        # every operator, on and around the threshold
        ({"ComparisonOperator": "GreaterThanOrEqualToThreshold"}, (1, 1), "ALARM"),
        ({"ComparisonOperator": "GreaterThanThreshold"}, (1, 1), "OK"),
        ({"ComparisonOperator": "GreaterThanThreshold"}, (1.5, 2), "ALARM"),
        ({"ComparisonOperator": "LessThanThreshold"}, (0, 0.5), "ALARM"),
        ({"ComparisonOperator": "LessThanThreshold"}, (1, 1), "OK"),
        ({"ComparisonOperator": "LessThanOrEqualToThreshold"}, (1, 1), "ALARM"),
        ({"ComparisonOperator": "LessThanOrEqualToThreshold"}, (1, 2), "OK"),
        # TreatMissingData
        ({"TreatMissingData": "missing"}, (None, None), "INSUFFICIENT_DATA"),
        ({"TreatMissingData": None}, (None, None), "INSUFFICIENT_DATA"),  # missing is the default
        ({"TreatMissingData": "notBreaching"}, (None, None), "OK"),
        ({"TreatMissingData": "breaching"}, (None, None), "ALARM"),
        ({"TreatMissingData": "ignore", "StateValue": "ALARM"}, (None, None), "ALARM"),
        ({"TreatMissingData": "ignore", "StateValue": "OK"}, (None, None), "OK"),
        ({"TreatMissingData": "breaching"}, (1, None), "ALARM"),
        ({"TreatMissingData": "breaching"}, (0, None), "OK"),
        ({"TreatMissingData": "notBreaching"}, (1, None), "OK"),
        ({"TreatMissingData": "notBreaching"}, (1, 1), "ALARM"),
        ({"TreatMissingData": "missing"}, (None, 1), "ALARM"),  # fewer than M points, all breaching
        ({"TreatMissingData": "missing"}, (0, None), "OK"),
        ({"TreatMissingData": "ignore", "StateValue": "OK"}, (None, 1), "OK"),  # keeps its state
        ({"TreatMissingData": "ignore", "StateValue": "ALARM"}, (None, 0), "OK"),
        # statistics only change which number is compared; the value per period is given
        ({"Statistic": "Average", "Threshold": 0.5}, (0.5, 0.75), "ALARM"),
        (
            {"Statistic": "SampleCount", "Threshold": 3, "ComparisonOperator": "LessThanThreshold"},
            (2, 1),
            "ALARM",
        ),
    ],
)
def test_alarm_state_follows_cloudwatch_semantics(
    overrides: dict[str, Any], values: tuple[float | None, ...], expected: str
) -> None:
    # Given an alarm and a datapoint (or none) for each of its last complete periods
    definition = alarm(**overrides)
    # When it is evaluated
    state, reason, _ = evaluate_alarm(definition, series(*values), NOW)
    # Then the state is CloudWatch's
    assert state == expected, reason


def test_the_period_still_filling_is_not_evaluated() -> None:
    # Given two calm complete periods and a breaching value in the period that holds "now"
    datapoints = {**series(0, 0), period_start(NOW, PERIOD): 50.0}
    # When the alarm is evaluated / Then the current period does not count
    assert evaluate_alarm(alarm(), datapoints, NOW)[0] == "OK"
    # And once that period is over, it does
    one_period_later = NOW + timedelta(seconds=PERIOD)
    datapoints[period_start(NOW, PERIOD) - timedelta(seconds=PERIOD)] = 3.0
    assert evaluate_alarm(alarm(), datapoints, one_period_later)[0] == "ALARM"


def test_a_period_counts_as_complete_from_its_last_instant() -> None:
    # Given "now" exactly on a period boundary
    boundary = datetime(2026, 11, 28, 7, 22, 0, tzinfo=UTC)
    # Then the period that just ended is the newest one evaluated
    assert evaluation_window(boundary, PERIOD, 2) == [
        datetime(2026, 11, 28, 7, 20, tzinfo=UTC),
        datetime(2026, 11, 28, 7, 21, tzinfo=UTC),
    ]


def test_datapoints_are_matched_to_their_period_whatever_their_timestamp() -> None:
    # Given datapoints keyed mid-period, one of them naive UTC (as moto stores them)
    datapoints = {
        datetime(2026, 11, 28, 7, 20, 42, tzinfo=UTC): 1.0,
        datetime(2026, 11, 28, 7, 21, 59, 999000): 2.0,
    }
    # When evaluated / Then both periods breach
    state, _, data = evaluate_alarm(alarm(), datapoints, NOW)
    assert state == "ALARM"
    assert data["recentDatapoints"] == [1.0, 2.0]


def test_alarm_reason_lists_the_breaching_datapoints_like_cloudwatch() -> None:
    # Given two breaching periods
    state, reason, _ = evaluate_alarm(alarm(), series(1, 2), NOW)
    # Then the reason reads like CloudWatch's, newest datapoint first
    assert state == "ALARM"
    assert reason == (
        "Threshold Crossed: 2 out of the last 2 datapoints "
        "[2.0 (28/11/26 07:21:00), 1.0 (28/11/26 07:20:00)] were greater than or equal to the "
        "threshold (1.0) (minimum 2 datapoints for OK -> ALARM transition)."
    )


def test_ok_reason_lists_the_calm_datapoints_and_the_minimum_for_recovery() -> None:
    # Given an alarm in ALARM, 1 of 1, whose last period is calm
    definition = alarm(
        EvaluationPeriods=1,
        DatapointsToAlarm=1,
        Threshold=50.0,
        Statistic="Average",
        ComparisonOperator="GreaterThanThreshold",
        StateValue="ALARM",
    )
    state, reason, _ = evaluate_alarm(definition, series(0.0666851903306472), NOW)
    # Then the reason has the documented example's wording
    assert state == "OK"
    assert reason == (
        "Threshold Crossed: 1 out of the last 1 datapoints [0.0666851903306472 (28/11/26 07:21:00)] was not "
        "greater than the threshold (50.0) (minimum 1 datapoint for ALARM -> OK transition)."
    )


@pytest.mark.parametrize(
    ("treat", "values", "expected_state", "fragment"),
    [
        (
            "breaching",
            (None, None),
            "ALARM",
            "no datapoints were received for 2 periods and 2 missing datapoints",
        ),
        ("breaching", (1, None), "ALARM", "1 missing datapoint was treated as [Breaching]"),
        ("notBreaching", (None, None), "OK", "2 missing datapoints were treated as [NonBreaching]"),
        ("missing", (None, None), "INSUFFICIENT_DATA", "Insufficient Data: 2 datapoints were unknown."),
        ("missing", (None, 3), "ALARM", "[3.0 (28/11/26 07:21:00)]"),
    ],
)
def test_reason_says_how_missing_data_was_treated(
    treat: str, values: tuple[float | None, ...], expected_state: str, fragment: str
) -> None:
    state, reason, _ = evaluate_alarm(alarm(TreatMissingData=treat), series(*values), NOW)
    assert state == expected_state
    assert fragment in reason


def test_reason_data_has_cloudwatchs_fields() -> None:
    # Given the documented event's reasonData
    documented = json.loads(json.loads(DOCUMENTED_EVENT.read_text())["detail"]["state"]["reasonData"])
    # When an alarm is evaluated
    _, _, data = evaluate_alarm(alarm(Statistic="Average"), series(0.5, None), NOW)
    # Then its reasonData carries the same fields, in CloudWatch's formats
    assert set(documented) <= set(data)
    assert data["version"] == "1.0"
    assert data["queryDate"] == "2026-11-28T07:22:30.250+0000"
    assert data["startDate"] == "2026-11-28T07:20:00.000+0000"
    assert data["statistic"] == "Average"
    assert data["period"] == PERIOD
    assert data["recentDatapoints"] == [0.5]
    assert data["threshold"] == 1.0
    json.dumps(data)  # it goes to SetAlarmState as JSON


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"DatapointsToAlarm": 3}, "DatapointsToAlarm"),
        ({"Period": 0}, "Period"),
        ({"ComparisonOperator": "GreaterThanUpperThreshold"}, "ComparisonOperator"),
        ({"Statistic": "p99"}, "Statistic"),
        ({"TreatMissingData": "sometimes"}, "TreatMissingData"),
        ({"Threshold": None}, "Threshold"),
    ],
)
def test_an_alarm_the_simulator_cannot_evaluate_is_named_with_its_field(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError) as err:
        evaluate_alarm(alarm(**overrides), series(1, 1), NOW)
    assert field in str(err.value)
    assert "fraud-scorer-errors" in str(err.value)


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [("Sum", 6.0), ("Average", 2.0), ("Minimum", 1.0), ("Maximum", 3.0), ("SampleCount", 3.0)],
)
def test_aggregate(statistic: str, expected: float) -> None:
    assert aggregate([1, 2, 3], statistic) == expected
    assert aggregate([], statistic) is None


def test_periods_are_aligned_to_the_epoch() -> None:
    assert period_start(datetime(2026, 11, 28, 7, 20, 3, 900000, tzinfo=UTC), 2) == datetime(
        2026, 11, 28, 7, 20, 2, tzinfo=UTC
    )
    assert period_start(datetime(2026, 11, 28, 7, 24, 59, tzinfo=UTC), 300) == datetime(
        2026, 11, 28, 7, 20, tzinfo=UTC
    )


def test_timestamps_use_cloudwatchs_format() -> None:
    assert (
        cw_timestamp(datetime(2019, 10, 2, 17, 4, 40, 989123, tzinfo=UTC)) == "2019-10-02T17:04:40.989+0000"
    )
    assert cw_timestamp(datetime(2019, 10, 2, 17, 4, 40)) == "2019-10-02T17:04:40.000+0000"


@pytest.mark.parametrize(
    ("name", "metric", "statistic", "comparison", "threshold", "missing"),
    [
        ("fraud-us-east-1-errors", "Errors", "Sum", "GreaterThanOrEqualToThreshold", 1.0, "notBreaching"),
        ("fraud-us-east-1-latency", "Latency", "Average", "GreaterThanThreshold", 1000.0, "notBreaching"),
        ("fraud-us-east-1-canary", "Success", "Minimum", "LessThanThreshold", 1.0, "breaching"),
        ("fraud-us-east-1-health", "Errors", "Sum", "GreaterThanOrEqualToThreshold", 1.0, "notBreaching"),
    ],
)
def test_trigger_alarm_specs_follow_the_naming_convention(
    name: str, metric: str, statistic: str, comparison: str, threshold: float, missing: str
) -> None:
    spec = alarm_spec_for(name, "fraud-us-east-1")
    assert spec["AlarmName"] == name
    assert spec["Namespace"] == "Lifeboat/Canary"
    assert spec["Dimensions"] == [{"Name": "Endpoint", "Value": "fraud-us-east-1"}]
    assert (spec["MetricName"], spec["Statistic"], spec["ComparisonOperator"]) == (
        metric,
        statistic,
        comparison,
    )
    assert spec["Threshold"] == threshold
    assert spec["TreatMissingData"] == missing
    assert (spec["Period"], spec["EvaluationPeriods"], spec["DatapointsToAlarm"]) == (2, 2, 2)
    # And the spec is a valid definition for the evaluator
    evaluate_alarm({**spec, "StateValue": "OK"}, {}, NOW)


def _shape(value: Any) -> Any:
    """The nested keys of a JSON value (lists by their first element), without the values; dimension names
    are the metric's own, so only their type counts."""
    if isinstance(value, dict):
        return {key: "dimensions" if key == "dimensions" else _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_state_change_event_has_the_documented_shape_and_parses() -> None:
    # Given an alarm whose evaluation moves it from OK to ALARM
    definition = alarm()
    state, reason, reason_data = evaluate_alarm(definition, series(1, 1), NOW)
    new_state = {
        "reason": reason,
        "reasonData": json.dumps(reason_data, separators=(",", ":")),
        "timestamp": cw_timestamp(NOW),
        "value": state,
    }

    # When its state change event is built
    event = state_change_event(
        definition, state=new_state, account="123456789012", region="us-east-1", at=NOW
    )

    # Then Lifeboat's model accepts it
    change = AlarmStateChange.model_validate(event)
    assert change.detail.alarm_name == "fraud-scorer-errors"
    assert change.detail.state.value == "ALARM"
    assert change.detail.state.timestamp == NOW.replace(microsecond=250000)
    assert change.detail.previous_state is not None
    assert change.detail.previous_state.value == "OK"
    assert change.detail.previous_state.timestamp == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    assert change.resources == ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:fraud-scorer-errors"]
    # And it has exactly the keys (and value types) of AWS's documented example
    documented = json.loads(DOCUMENTED_EVENT.read_text())
    assert _shape(event) == _shape(documented)
    metric = event["detail"]["configuration"]["metrics"][0]["metricStat"]
    assert metric == {
        "metric": {
            "namespace": "Lifeboat/Canary",
            "name": "Errors",
            "dimensions": {"Endpoint": "fraud-scorer"},
        },
        "period": PERIOD,
        "stat": "Sum",
    }
    assert event["time"] == "2026-11-28T07:22:30Z"
