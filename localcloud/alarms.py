"""CloudWatch alarm evaluation for the local cloud: moto stores alarms and metric data but never evaluates
an alarm nor emits the "CloudWatch Alarm State Change" event Lifeboat's trigger listens to; this module does.

- `Canary` probes inference endpoints and puts `Success`, `Errors` and `Latency` in the `Lifeboat/Canary`
  namespace (dimension `Endpoint=<target name>`).
- `evaluate_alarm` is CloudWatch's metric-alarm evaluation as a pure function (see its docstring for the exact
  rules and where they simplify CloudWatch's).
- `AlarmSimulator.tick` evaluates every metric alarm in moto and, on each state change, calls SetAlarmState
  and puts the state change event on the default EventBridge bus, shaped like AWS's own.

Trigger alarm naming convention (`alarm_spec_for`): the suffix of an alarm name picks what it watches on the
canary metrics of its endpoint, over 2-second periods, 2 out of 2 datapoints to alarm:
  `<name>-errors`  -> Sum of Errors >= 1                 (missing data not breaching)
  `<name>-latency` -> Average of Latency > 1000 ms       (missing data not breaching)
  `<name>-canary`  -> Minimum of Success < 1             (missing data breaching: a dead canary is a failure)
  anything else    -> same as `-errors`.

moto facts this relies on (moto 5.2.5): a new alarm starts in OK ("Unchecked: Initial alarm creation");
SetAlarmState stamps StateUpdatedTimestamp with the wall clock and DescribeAlarms returns no
StateTransitionedTimestamp. So after each transition the simulator writes the transition time into both
attributes of moto's in-process alarm object (DescribeAlarms then returns both, equal to the event's
`state.timestamp`, even under an injected clock). GetMetricStatistics buckets from the first datapoint found
rather than from period boundaries, so datapoints are read one period per call.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.client import HTTPException
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from localcloud.region_outage import log_round_failure

if TYPE_CHECKING:
    from moto.cloudwatch.models import Alarm

    from localcloud.server import LocalCloud

logger = logging.getLogger(__name__)

CANARY_NAMESPACE = "Lifeboat/Canary"
ENDPOINT_DIMENSION = "Endpoint"
ALARM_EVENT_SOURCE = "aws.cloudwatch"
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
STATISTICS = ("Average", "Sum", "Minimum", "Maximum", "SampleCount")
TREAT_MISSING = ("missing", "notBreaching", "breaching", "ignore")
# (comparison, the words CloudWatch's reason uses for it)
COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
MAX_STATE_REASON = 1023  # SetAlarmState's limit
_METRIC_DATA_BATCH = 900  # PutMetricData accepts 1,000 metrics per call

TRIGGER_PERIOD_S = 2
TRIGGER_EVALUATION_PERIODS = 2
LATENCY_THRESHOLD_MS = 1000.0


def utc_now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------------ canary


@dataclass(frozen=True)
class CanaryTarget:
    """One inference endpoint to probe: `url` receives a POST of `payload` as JSON."""

    name: str
    url: str
    payload: dict[str, Any]
    timeout_s: float = 2.0


@dataclass(frozen=True)
class ProbeResult:
    """What one probe of one target saw."""

    name: str
    success: bool
    latency_ms: float
    status: int | None = None  # HTTP status, None when no response came back
    error: str | None = None


class Canary:
    """Synthetic probe of inference endpoints, publishing what it sees as CloudWatch metrics."""

    def __init__(
        self,
        targets: Sequence[CanaryTarget],
        cloudwatch: Any,
        *,
        clock: Callable[[], datetime] = utc_now,
        max_workers: int = 8,
    ) -> None:
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise ValueError(f"canary target names must be unique (they are metric dimensions): {names}")
        self.targets = list(targets)
        self._cloudwatch = cloudwatch
        self._clock = clock
        self._max_workers = max(1, max_workers)

    def probe_once(self, now: datetime | None = None) -> list[ProbeResult]:
        """Probe every target concurrently and put one datapoint per metric, stamped `now`."""
        now = now or self._clock()
        if not self.targets:
            return []
        workers = min(self._max_workers, len(self.targets))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="canary") as pool:
            results = list(pool.map(probe, self.targets))
        metric_data = [datum for result in results for datum in _metric_data(result, now)]
        for i in range(0, len(metric_data), _METRIC_DATA_BATCH):
            self._cloudwatch.put_metric_data(
                Namespace=CANARY_NAMESPACE, MetricData=metric_data[i : i + _METRIC_DATA_BATCH]
            )
        return results


def probe(target: CanaryTarget) -> ProbeResult:
    """POST the target's payload; success means a 2xx answer with a JSON body within the timeout."""
    body = json.dumps(target.payload).encode("utf-8")
    request = urllib.request.Request(
        target.url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    status: int | None = None
    try:
        with urllib.request.urlopen(request, timeout=target.timeout_s) as response:
            status = response.status
            raw = response.read()
        json.loads(raw)
    except urllib.error.HTTPError as exc:
        exc.close()
        return _result(target, started, status=exc.code, error=f"HTTP {exc.code}")
    except (OSError, HTTPException, ValueError) as exc:  # refused, timed out, cut short; or not JSON
        return _result(target, started, status=status, error=f"{type(exc).__name__}: {exc}")
    ok = status is not None and 200 <= status < 300
    return _result(target, started, status=status, error=None if ok else f"HTTP {status}", success=ok)


def _result(
    target: CanaryTarget, started: float, *, status: int | None, error: str | None, success: bool = False
) -> ProbeResult:
    latency_ms = (time.perf_counter() - started) * 1000
    return ProbeResult(name=target.name, success=success, latency_ms=latency_ms, status=status, error=error)


def _metric_data(result: ProbeResult, now: datetime) -> list[dict[str, Any]]:
    dimensions = [{"Name": ENDPOINT_DIMENSION, "Value": result.name}]
    success = 1.0 if result.success else 0.0
    return [
        {
            "MetricName": "Success",
            "Dimensions": dimensions,
            "Timestamp": now,
            "Value": success,
            "Unit": "Count",
        },
        {
            "MetricName": "Errors",
            "Dimensions": dimensions,
            "Timestamp": now,
            "Value": 1.0 - success,
            "Unit": "Count",
        },
        {
            "MetricName": "Latency",
            "Dimensions": dimensions,
            "Timestamp": now,
            "Value": round(result.latency_ms, 3),
            "Unit": "Milliseconds",
        },
    ]


# -------------------------------------------------------------------------------------- pure evaluation


def period_start(timestamp: datetime, period_s: int) -> datetime:
    """Start of the period holding `timestamp` (periods are aligned to multiples of `period_s` since 1970)."""
    seconds = math.floor(_aware(timestamp).timestamp())
    return datetime.fromtimestamp(seconds - seconds % period_s, UTC)


def evaluation_window(now: datetime, period_s: int, evaluation_periods: int) -> list[datetime]:
    """Starts of the last `evaluation_periods` *complete* periods before `now`, oldest first."""
    current = period_start(now, period_s)
    return [current - timedelta(seconds=period_s * k) for k in range(evaluation_periods, 0, -1)]


def aggregate(values: Sequence[float], statistic: str) -> float | None:
    """One period's datapoint from its raw samples (None when there are none)."""
    if not values:
        return None
    if statistic == "Sum":
        return float(sum(values))
    if statistic == "Average":
        return float(sum(values)) / len(values)
    if statistic == "Minimum":
        return float(min(values))
    if statistic == "Maximum":
        return float(max(values))
    if statistic == "SampleCount":
        return float(len(values))
    raise ValueError(f"Statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")


@dataclass(frozen=True)
class _Definition:
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    statistic: str
    threshold: float
    comparison: str
    treat_missing: str
    state: str
    state_reason: str


def _definition(alarm: Mapping[str, Any]) -> _Definition:
    def need(key: str) -> Any:
        if alarm.get(key) is None:
            raise ValueError(f"alarm {alarm.get('AlarmName', '?')!r}: {key} is required")
        return alarm[key]

    period = int(need("Period"))
    n = int(need("EvaluationPeriods"))
    m = int(alarm.get("DatapointsToAlarm") or n)
    statistic = str(need("Statistic"))
    comparison = str(need("ComparisonOperator"))
    treat = str(alarm.get("TreatMissingData") or "missing")
    state = str(alarm.get("StateValue") or "INSUFFICIENT_DATA")
    problems = []
    if period < 1:
        problems.append(f"Period must be >= 1 second, got {period}")
    if n < 1:
        problems.append(f"EvaluationPeriods must be >= 1, got {n}")
    if not 1 <= m <= max(n, 1):
        problems.append(f"DatapointsToAlarm must be between 1 and EvaluationPeriods ({n}), got {m}")
    if statistic not in STATISTICS:
        problems.append(f"Statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    if comparison not in COMPARISONS:
        problems.append(f"ComparisonOperator must be one of {', '.join(COMPARISONS)}, got {comparison!r}")
    if treat not in TREAT_MISSING:
        problems.append(f"TreatMissingData must be one of {', '.join(TREAT_MISSING)}, got {treat!r}")
    if state not in STATES:
        problems.append(f"StateValue must be one of {', '.join(STATES)}, got {state!r}")
    if problems:
        raise ValueError(f"alarm {alarm.get('AlarmName', '?')!r}: " + "; ".join(problems))
    return _Definition(
        period=period,
        evaluation_periods=n,
        datapoints_to_alarm=m,
        statistic=statistic,
        threshold=float(need("Threshold")),
        comparison=comparison,
        treat_missing=treat,
        state=state,
        state_reason=str(alarm.get("StateReason") or ""),
    )


def evaluate_alarm(
    definition: Mapping[str, Any], datapoints_by_period: Mapping[datetime, float | None], now: datetime
) -> tuple[str, str, dict[str, Any]]:
    """Evaluate a metric alarm like CloudWatch; returns (state, reason, reasonData).

    `definition` is a MetricAlarm as DescribeAlarms returns it (Period, EvaluationPeriods, DatapointsToAlarm,
    Statistic, Threshold, ComparisonOperator, TreatMissingData, StateValue). `datapoints_by_period` maps a
    period's start to the statistic's value over that period (None or absent: no data); keys are aligned with
    `period_start`, so any timestamp inside a period stands for it.

    Only the last N *complete* periods before `now` are evaluated: the period holding `now` is still filling
    and a half-empty period would read as "missing" or a skewed Average. With M = DatapointsToAlarm:
    - breaching / notBreaching: a missing period counts as breaching / not breaching.
    - ALARM when at least M periods breach; otherwise OK.
    - missing: no datapoint at all -> INSUFFICIENT_DATA; fewer than M datapoints, all breaching -> ALARM
      (as CloudWatch's table for partial data); otherwise OK unless M breach.
    - ignore: like missing, except the alarm keeps its current state where missing would give
      INSUFFICIENT_DATA or the partial-data ALARM.
    Simplification: CloudWatch looks further back than N periods when data is missing; this does not.
    """
    d = _definition(definition)
    compare, words = COMPARISONS[d.comparison]
    window = evaluation_window(now, d.period, d.evaluation_periods)
    aligned: dict[datetime, float] = {}
    for timestamp, value in datapoints_by_period.items():
        if value is not None:
            aligned[period_start(timestamp, d.period)] = float(value)
    points = [(start, aligned.get(start)) for start in window]
    present = [(start, value) for start, value in points if value is not None]
    breaching = [(start, value) for start, value in present if compare(value, d.threshold)]
    calm = [(start, value) for start, value in present if not compare(value, d.threshold)]
    missing = len(points) - len(present)
    n, m = d.evaluation_periods, d.datapoints_to_alarm
    reason_data = _reason_data(d, window, points, now)

    breach_count = len(breaching) + (missing if d.treat_missing == "breaching" else 0)
    if not present and d.treat_missing in ("missing", "ignore"):
        if d.treat_missing == "ignore":
            return d.state, d.state_reason, reason_data
        return (
            "INSUFFICIENT_DATA",
            f"Insufficient Data: {_count(n, 'datapoint')} {_was(n)} unknown.",
            reason_data,
        )
    if breach_count >= m:
        extra = missing if d.treat_missing == "breaching" else 0
        phrase = _crossed(breaching, n, words, d.threshold, missing=extra, treated_as="Breaching")
        return "ALARM", f"{phrase} {_minimum(m, d.state, 'ALARM')}.", reason_data
    if d.treat_missing in ("missing", "ignore") and len(present) < m and len(breaching) == len(present):
        if d.treat_missing == "ignore":
            return d.state, d.state_reason, reason_data
        phrase = _crossed(breaching, n, words, d.threshold, missing=0, treated_as="")
        unknown = f"{_count(missing, 'datapoint')} {_was(missing)} unknown"
        return "ALARM", f"{phrase} and {unknown} {_minimum(m, d.state, 'ALARM')}.", reason_data
    extra = missing if d.treat_missing == "notBreaching" else 0
    phrase = _crossed(calm, n, f"not {words}", d.threshold, missing=extra, treated_as="NonBreaching")
    return "OK", f"{phrase} {_minimum(n - m + 1, d.state, 'OK')}.", reason_data


def _crossed(
    points: Sequence[tuple[datetime, float]],
    n: int,
    words: str,
    threshold: float,
    *,
    missing: int,
    treated_as: str,
) -> str:
    treated = f"{_count(missing, 'missing datapoint')} {_was(missing)} treated as [{treated_as}]"
    if not points:
        if missing == n:
            return f"Threshold Crossed: no datapoints were received for {_count(n, 'period')} and {treated}"
        return f"Threshold Crossed: {treated}"
    # CloudWatch lists the datapoints newest first.
    listed = ", ".join(f"{_number(v)} ({s:%d/%m/%y %H:%M:%S})" for s, v in reversed(points))
    text = (
        f"Threshold Crossed: {len(points)} out of the last {n} datapoints [{listed}] {_was(len(points))} "
        f"{words} the threshold ({_number(threshold)})"
    )
    return f"{text} and {treated}" if missing else text


def _minimum(count: int, previous: str, new: str) -> str:
    return f"(minimum {_count(count, 'datapoint')} for {previous} -> {new} transition)"


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


def _number(value: float) -> str:
    # CloudWatch prints Java doubles: 1.0, 99.50160229693434.
    return repr(float(value))


def _reason_data(
    d: _Definition, window: Sequence[datetime], points: Sequence[tuple[datetime, float | None]], now: datetime
) -> dict[str, Any]:
    evaluated: list[dict[str, Any]] = []
    for start, value in reversed(points):
        evaluated.append({"timestamp": cw_timestamp(start)} | ({} if value is None else {"value": value}))
    return {
        "version": "1.0",
        "queryDate": cw_timestamp(now),
        "startDate": cw_timestamp(window[0]),
        "statistic": d.statistic,
        "period": d.period,
        "recentDatapoints": [value for _, value in points if value is not None],
        "threshold": d.threshold,
        "evaluatedDatapoints": evaluated,
    }


def cw_timestamp(value: datetime) -> str:
    """CloudWatch's timestamp format in events and reasonData: `2019-10-02T17:04:40.989+0000`."""
    value = _aware(value).astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}+0000"


def _aware(value: datetime) -> datetime:
    # boto3 returns tz-aware datetimes; moto's own objects are naive UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _millis(value: datetime) -> datetime:
    value = _aware(value).astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _stamp(alarm: Alarm, naive_utc: datetime) -> None:
    """Both timestamps of a transition on moto's in-process alarm object."""
    alarm.state_updated_timestamp = naive_utc
    # moto's Alarm declares no such attribute, yet DescribeAlarms returns it as StateTransitionedTimestamp
    # (its serializer reads every attribute named after a response field).
    alarm.state_transitioned_timestamp = naive_utc  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------------------------- events


def state_change_event(
    alarm: Mapping[str, Any],
    *,
    state: Mapping[str, Any],
    account: str,
    region: str,
    at: datetime,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The EventBridge event of a state change of `alarm` (a DescribeAlarms MetricAlarm) to `state`
    ({value, reason, reasonData?, timestamp}), as EventBridge delivers it to a rule's target."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": ALARM_STATE_CHANGE,
        "source": ALARM_EVENT_SOURCE,
        "account": account,
        "time": _aware(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [alarm_arn(alarm, account=account, region=region)],
        "detail": alarm_event_detail(alarm, state),
    }


def alarm_event_detail(alarm: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    """`detail` of a "CloudWatch Alarm State Change" event; `previousState` is the alarm's current state."""
    arn = str(alarm.get("AlarmArn") or alarm["AlarmName"])
    metric = {
        "namespace": alarm.get("Namespace"),
        "name": alarm.get("MetricName"),
        "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions") or []},
    }
    configuration: dict[str, Any] = {}
    if alarm.get("AlarmDescription"):
        configuration["description"] = alarm["AlarmDescription"]
    configuration["metrics"] = [
        {
            # Stable per alarm, so repeated events of one alarm name the same metric query.
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, arn)),
            "metricStat": {"metric": metric, "period": alarm.get("Period"), "stat": alarm.get("Statistic")},
            "returnData": True,
        }
    ]
    previous_since = alarm.get("StateTransitionedTimestamp") or alarm.get("StateUpdatedTimestamp")
    previous: dict[str, Any] = {"reason": alarm.get("StateReason") or ""}
    if alarm.get("StateReasonData"):
        previous["reasonData"] = alarm["StateReasonData"]
    previous["timestamp"] = cw_timestamp(previous_since) if previous_since else None
    previous["value"] = alarm.get("StateValue") or "INSUFFICIENT_DATA"
    return {
        "alarmName": alarm["AlarmName"],
        "configuration": configuration,
        "previousState": previous,
        "state": dict(state),
    }


def alarm_arn(alarm: Mapping[str, Any], *, account: str, region: str) -> str:
    return str(alarm.get("AlarmArn") or f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm['AlarmName']}")


# -------------------------------------------------------------------------------------------- simulator


@dataclass(frozen=True)
class Transition:
    """One state change the simulator made (and announced)."""

    alarm_name: str
    previous: str
    value: str
    reason: str
    timestamp: datetime
    event: dict[str, Any] = field(repr=False)


class AlarmSimulator:
    """Evaluates moto's metric alarms and announces their state changes, like CloudWatch does.

    An alarm is first evaluated once N complete periods have passed since the simulator first saw it
    (`warm_up`): CloudWatch would judge a new alarm on the metric's history at once, but in the local cloud
    the canary starts with the simulator, so every alarm treating missing data as breaching would fire on
    the first tick.
    """

    def __init__(
        self,
        cloud: LocalCloud,
        *,
        region: str = "us-east-1",
        clock: Callable[[], datetime] = utc_now,
        warm_up: bool = True,
    ) -> None:
        self._cloud = cloud
        self.region = region
        self._clock = clock
        self._warm_up = warm_up
        self._canary: Canary | None = None
        self._lock = threading.Lock()  # one evaluation or forced change at a time
        self._first_seen: dict[str, tuple[Any, datetime]] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def cloudwatch(self) -> Any:
        return self._cloud.client("cloudwatch", self.region)

    @property
    def events(self) -> Any:
        return self._cloud.client("events", self.region)

    def attach(self, canary: Canary) -> AlarmSimulator:
        """Probe with `canary` before every tick of the background loop."""
        self._canary = canary
        return self

    # ------------------------------------------------------------------------------------- evaluation

    def tick(self, now: datetime | None = None) -> list[Transition]:
        """Evaluate every metric alarm once at `now`; change (and announce) those whose state changed."""
        now = _millis(now or self._clock())
        transitions: list[Transition] = []
        with self._lock:
            for alarm in self._metric_alarms():
                name = alarm["AlarmName"]
                if not alarm.get("MetricName") or not alarm.get("Statistic"):
                    logger.debug(
                        "alarm %s is not a single-metric alarm with a statistic; not evaluated", name
                    )
                    continue
                if not self._warmed_up(alarm, now):
                    continue
                try:
                    datapoints = self._datapoints(alarm, now)
                    value, reason, reason_data = evaluate_alarm(alarm, datapoints, now)
                except (ValueError, BotoCoreError, ClientError):
                    # One alarm the simulator cannot read or judge must not hold up the others.
                    logger.exception("alarm %s cannot be evaluated", name)
                    continue
                if value != alarm["StateValue"]:
                    transitions.append(self._transition(alarm, value, reason, reason_data, now))
        return transitions

    def set_state(
        self,
        alarm_name: str,
        value: str,
        reason: str,
        *,
        reason_data: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Transition | None:
        """Force `alarm_name` into `value` and announce it, like SetAlarmState; None if it is already there.

        As in CloudWatch, the next `tick` evaluates the alarm again and may move it back.
        """
        if value not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, got {value!r}")
        now = _millis(now or self._clock())
        with self._lock:
            found = [a for a in self._metric_alarms([alarm_name]) if a["AlarmName"] == alarm_name]
            if not found:
                raise KeyError(f"no metric alarm named {alarm_name!r}")
            if found[0]["StateValue"] == value:
                return None
            return self._transition(found[0], value, reason, reason_data, now)

    def _metric_alarms(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"AlarmTypes": ["MetricAlarm"]}
        if names is not None:
            kwargs["AlarmNames"] = list(names)
        alarms: list[dict[str, Any]] = []
        while True:
            page = self.cloudwatch.describe_alarms(**kwargs)
            alarms.extend(page.get("MetricAlarms", []))
            if not page.get("NextToken"):
                return alarms
            kwargs["NextToken"] = page["NextToken"]

    def _warmed_up(self, alarm: Mapping[str, Any], now: datetime) -> bool:
        if not self._warm_up:
            return True
        name = alarm["AlarmName"]
        # Re-putting an alarm makes a new one in moto (state back to OK): it warms up again.
        identity = alarm.get("AlarmConfigurationUpdatedTimestamp")
        seen = self._first_seen.get(name)
        if seen is None or seen[0] != identity:
            seen = (identity, now)
            self._first_seen[name] = seen
        period = max(1, int(alarm.get("Period") or 1))
        first_evaluated = evaluation_window(now, period, max(1, int(alarm.get("EvaluationPeriods") or 1)))[0]
        return first_evaluated >= period_start(seen[1], period)

    def _datapoints(self, alarm: Mapping[str, Any], now: datetime) -> dict[datetime, float | None]:
        period = int(alarm["Period"])
        statistic = alarm["Statistic"]
        query: dict[str, Any] = {
            "Namespace": alarm["Namespace"],
            "MetricName": alarm["MetricName"],
            "Dimensions": alarm.get("Dimensions") or [],
            "Period": period,
            "Statistics": [statistic],
        }
        if alarm.get("Unit"):
            query["Unit"] = alarm["Unit"]
        values: dict[datetime, float | None] = {}
        # One call per period: moto buckets from the first datapoint it finds, not from period boundaries.
        for start in evaluation_window(now, period, int(alarm["EvaluationPeriods"])):
            answer = self.cloudwatch.get_metric_statistics(
                StartTime=start, EndTime=start + timedelta(seconds=period), **query
            )
            points = [p[statistic] for p in answer.get("Datapoints", []) if statistic in p]
            values[start] = _combine(points, statistic) if points else None
        return values

    def _transition(
        self,
        alarm: Mapping[str, Any],
        value: str,
        reason: str,
        reason_data: Mapping[str, Any] | None,
        now: datetime,
    ) -> Transition:
        name = alarm["AlarmName"]
        reason = reason[:MAX_STATE_REASON]
        reason_data_json = json.dumps(reason_data, separators=(",", ":")) if reason_data is not None else None
        state: dict[str, Any] = {"reason": reason}
        if reason_data_json is not None:
            state["reasonData"] = reason_data_json
        state.update(timestamp=cw_timestamp(now), value=value)
        event = state_change_event(
            alarm, state=state, account=self._cloud.account_id, region=self.region, at=now
        )

        kwargs: dict[str, Any] = {"AlarmName": name, "StateValue": value, "StateReason": reason}
        if reason_data_json is not None:
            kwargs["StateReasonData"] = reason_data_json
        if not self._set_state_in_process(name, value, reason, reason_data_json, now):
            self.cloudwatch.set_alarm_state(**kwargs)
            self._stamp_transition(name, now)

        answer = self.events.put_events(
            Entries=[
                {
                    "Time": now,
                    "Source": ALARM_EVENT_SOURCE,
                    "DetailType": ALARM_STATE_CHANGE,
                    "Resources": event["resources"],
                    "Detail": json.dumps(event["detail"]),
                }
            ]
        )
        entry = (answer.get("Entries") or [{}])[0]
        if answer.get("FailedEntryCount") or not entry.get("EventId"):
            logger.error("EventBridge refused the state change event of %s: %s", name, entry)
        else:
            event["id"] = entry["EventId"]  # the id the rule targets receive
        logger.info("alarm %s: %s -> %s (%s)", name, alarm["StateValue"], value, reason)
        return Transition(
            alarm_name=name,
            previous=alarm["StateValue"],
            value=value,
            reason=reason,
            timestamp=now,
            event=event,
        )

    def _set_state_in_process(
        self, alarm_name: str, value: str, reason: str, reason_data: str | None, when: datetime
    ) -> bool:
        """SetAlarmState and the timestamps in one step on moto's alarm object.

        Through the API, describe_alarms could answer between the state change and the stamping with moto's
        own wall-clock time; two alarm handlers reading then would see the quorum form at two instants.
        CloudWatch changes both at once, so do the same here. False when moto's objects are not reachable.
        """
        try:
            from moto.cloudwatch.models import cloudwatch_backends

            alarm = cloudwatch_backends[self._cloud.account_id][self.region].alarms.get(alarm_name)
        except Exception:  # noqa: BLE001 - fall back to the API
            return False
        if alarm is None or not hasattr(alarm, "update_state"):
            return False
        naive = when.astimezone(UTC).replace(tzinfo=None)  # moto keeps naive UTC
        alarm.update_state(reason, reason_data or "", value)
        _stamp(alarm, naive)
        return True

    def _stamp_transition(self, alarm_name: str, when: datetime) -> None:
        # moto stamps SetAlarmState with its wall clock and keeps no StateTransitionedTimestamp; the reader
        # and the event must agree on when the alarm changed, also under an injected clock.
        try:
            from moto.cloudwatch.models import cloudwatch_backends

            alarm = cloudwatch_backends[self._cloud.account_id][self.region].alarms.get(alarm_name)
        except Exception:  # noqa: BLE001 - the timestamps are a refinement; the state change already happened
            logger.warning("cannot reach moto's alarm %s to stamp its transition", alarm_name, exc_info=True)
            return
        if alarm is None or not hasattr(alarm, "state_updated_timestamp"):
            logger.warning("moto's alarm %s has no state_updated_timestamp; not stamped", alarm_name)
            return
        _stamp(alarm, when.astimezone(UTC).replace(tzinfo=None))  # moto keeps naive UTC

    # ------------------------------------------------------------------------------------ background

    def start(self, interval_s: float = 1.0) -> AlarmSimulator:
        """Probe (if a canary is attached) and tick every `interval_s` seconds in a daemon thread."""
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        if self._thread is not None:
            raise RuntimeError("the alarm simulator is already running")
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name="alarm-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the loop and join its thread (at most `timeout` seconds); True when it has ended."""
        thread, self._thread = self._thread, None
        self._stopping.set()
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("the alarm simulator loop did not end within %.1fs", timeout)
            return False
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, interval_s: float) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                now = self._clock()
                if self._canary is not None:
                    self._canary.probe_once(now)
                self.tick(now)
            except Exception as exc:  # noqa: BLE001 - one bad round (cloud restarting, region down) must not end the loop
                log_round_failure(logger, "alarm simulator round failed", exc)
            self._stopping.wait(max(0.0, interval_s - (time.monotonic() - started)))

    def __enter__(self) -> AlarmSimulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _combine(points: Sequence[float], statistic: str) -> float:
    # A single-period query answers one datapoint; should moto split it, combine the parts soundly
    # (an Average of parts is only approximate, which no local threshold is that close to).
    if len(points) == 1:
        return float(points[0])
    if statistic in ("Sum", "SampleCount"):
        return float(sum(points))
    if statistic == "Minimum":
        return float(min(points))
    if statistic == "Maximum":
        return float(max(points))
    return float(sum(points)) / len(points)


# ----------------------------------------------------------------------------------------- conventions


def alarm_spec_for(name: str, endpoint_name: str) -> dict[str, Any]:
    """PutMetricAlarm arguments of a trigger alarm on `endpoint_name`'s canary metrics (see module doc)."""
    if name.endswith("-latency"):
        metric, statistic, threshold, comparison = (
            "Latency",
            "Average",
            LATENCY_THRESHOLD_MS,
            "GreaterThanThreshold",
        )
        description = f"Canary latency of {endpoint_name} above {LATENCY_THRESHOLD_MS:g} ms"
    elif name.endswith("-canary"):
        metric, statistic, threshold, comparison = "Success", "Minimum", 1.0, "LessThanThreshold"
        description = f"Canary of {endpoint_name} failing or silent"
    else:  # "-errors" and anything else
        metric, statistic, threshold, comparison = "Errors", "Sum", 1.0, "GreaterThanOrEqualToThreshold"
        description = f"Canary errors on {endpoint_name}"
    return {
        "AlarmName": name,
        "AlarmDescription": description,
        "Namespace": CANARY_NAMESPACE,
        "MetricName": metric,
        "Dimensions": [{"Name": ENDPOINT_DIMENSION, "Value": endpoint_name}],
        "Statistic": statistic,
        "Period": TRIGGER_PERIOD_S,
        "EvaluationPeriods": TRIGGER_EVALUATION_PERIODS,
        "DatapointsToAlarm": TRIGGER_EVALUATION_PERIODS,
        "Threshold": threshold,
        "ComparisonOperator": comparison,
        "TreatMissingData": "breaching" if name.endswith("-canary") else "notBreaching",
    }
