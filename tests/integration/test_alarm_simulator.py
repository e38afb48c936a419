"""Alarms in the local cloud behave like CloudWatch's: a canary probes a real model server, the simulator
evaluates moto's alarms and EventBridge delivers real-shaped state change events to a Chalice handler."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.models.alarms import AlarmStateChange
from localcloud import lambda_runner
from localcloud.alarms import (
    AlarmSimulator,
    Canary,
    CanaryTarget,
    Transition,
    alarm_spec_for,
)
from localcloud.model import default_artifact, golden_cases
from localcloud.modelserver import ModelServer
from localcloud.server import LocalCloud
from tests.integration import alarm_sink_app

LOCAL_CLOUD_APP = "tests.integration.alarm_sink_app"
SUFFIXES = ("errors", "latency", "canary")
# A period boundary, so the simulator's first tick starts a fresh 2-second period.
T0 = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
STEP = timedelta(seconds=1)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def model_server() -> Iterator[ModelServer]:
    server = ModelServer(default_artifact(), region="us-east-1").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def endpoint(local_cloud: LocalCloud, model_server: ModelServer) -> Iterator[str]:
    """A fresh endpoint name with its three trigger alarms; alarms are deleted afterwards so the next test's
    simulator does not evaluate them."""
    model_server.clear_faults()
    name = f"fraud-{uuid.uuid4().hex[:8]}"
    cloudwatch = local_cloud.client("cloudwatch")
    for suffix in SUFFIXES:
        cloudwatch.put_metric_alarm(**alarm_spec_for(f"{name}-{suffix}", name))
    try:
        yield name
    finally:
        model_server.clear_faults()
        cloudwatch.delete_alarms(AlarmNames=[f"{name}-{suffix}" for suffix in SUFFIXES])


def _canary(cloud: LocalCloud, server: ModelServer, endpoint: str) -> Canary:
    payload = golden_cases(server.artifact)[0]["payload"]
    target = CanaryTarget(name=endpoint, url=f"{server.url}/invocations", payload=payload, timeout_s=5.0)
    return Canary([target], cloud.client("cloudwatch"))


def _drive(simulator: AlarmSimulator, canary: Canary, start: datetime, steps: int) -> list[Transition]:
    """Probe and tick once per simulated second: start, start + 1 s, ..."""
    transitions: list[Transition] = []
    for i in range(steps):
        now = start + i * STEP
        canary.probe_once(now)
        transitions.extend(simulator.tick(now))
    return transitions


def _states(cloud: LocalCloud, endpoint: str) -> dict[str, str]:
    alarms = cloud.client("cloudwatch").describe_alarms(AlarmNamePrefix=endpoint)["MetricAlarms"]
    return {a["AlarmName"].removeprefix(f"{endpoint}-"): a["StateValue"] for a in alarms}


def _describe(cloud: LocalCloud, name: str) -> dict[str, Any]:
    return cloud.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def _delivered(endpoint: str) -> list[AlarmStateChange]:
    """Alarm events the Chalice handler received for this endpoint, parsed by Lifeboat's own model."""
    assert lambda_runner.drain(timeout=60.0)
    return [
        AlarmStateChange.model_validate(event)
        for event in alarm_sink_app.received_alarm_events
        if event["detail"]["alarmName"].startswith(f"{endpoint}-")
    ]


def test_a_healthy_endpoint_keeps_every_alarm_ok(
    local_cloud: LocalCloud, model_server: ModelServer, endpoint: str
) -> None:
    # Given a canary on a healthy model server and a simulator
    canary = _canary(local_cloud, model_server, endpoint)
    simulator = AlarmSimulator(local_cloud).attach(canary)

    # When a few periods are probed and evaluated
    results = canary.probe_once(T0 - STEP)
    transitions = _drive(simulator, canary, T0, 7)

    # Then the canary succeeds and no alarm changes state (moto creates alarms in OK)
    assert [r.success for r in results] == [True]
    assert results[0].status == 200
    assert transitions == []
    assert _states(local_cloud, endpoint) == {"errors": "OK", "latency": "OK", "canary": "OK"}
    assert _delivered(endpoint) == []


def test_a_dead_model_server_raises_alarms_and_recovery_clears_them(
    local_cloud: LocalCloud, model_server: ModelServer, endpoint: str
) -> None:
    # Given a healthy endpoint, watched for a few periods
    canary = _canary(local_cloud, model_server, endpoint)
    simulator = AlarmSimulator(local_cloud).attach(canary)
    assert _drive(simulator, canary, T0, 6) == []

    # When the model server goes down for two full periods
    model_server.set_faults(down=True)
    failing = _drive(simulator, canary, T0 + 6 * STEP, 5)

    # Then the errors and canary alarms go to ALARM, and latency (a fast 503) does not
    assert sorted((t.alarm_name, t.previous, t.value) for t in failing) == [
        (f"{endpoint}-canary", "OK", "ALARM"),
        (f"{endpoint}-errors", "OK", "ALARM"),
    ]
    assert _states(local_cloud, endpoint) == {"errors": "ALARM", "latency": "OK", "canary": "ALARM"}
    # And the Chalice handler receives CloudWatch-shaped events for both
    alarm_events = _delivered(endpoint)
    assert sorted((e.detail.alarm_name, e.detail.state.value) for e in alarm_events) == [
        (f"{endpoint}-canary", "ALARM"),
        (f"{endpoint}-errors", "ALARM"),
    ]
    errors_event = next(e for e in alarm_events if e.detail.alarm_name == f"{endpoint}-errors")
    assert errors_event.source == "aws.cloudwatch"
    assert errors_event.resources == [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{endpoint}-errors"]
    assert errors_event.detail.previous_state is not None
    assert errors_event.detail.previous_state.value == "OK"
    assert "Threshold Crossed: 2 out of the last 2 datapoints" in errors_event.detail.state.reason
    metric = errors_event.detail.configuration["metrics"][0]["metricStat"]
    assert metric["metric"] == {
        "namespace": "Lifeboat/Canary",
        "name": "Errors",
        "dimensions": {"Endpoint": endpoint},
    }
    # And DescribeAlarms dates the change exactly as the event does (Lifeboat's reader relies on it)
    described = _describe(local_cloud, f"{endpoint}-errors")
    since = described.get("StateTransitionedTimestamp") or described["StateUpdatedTimestamp"]
    assert since.astimezone(UTC) == errors_event.detail.state.timestamp
    assert (
        errors_event.detail.state.timestamp == next(t for t in failing if "errors" in t.alarm_name).timestamp
    )

    # When the model server recovers
    model_server.clear_faults()
    recovered = _drive(simulator, canary, T0 + 11 * STEP, 5)

    # Then both alarms return to OK with OK events whose previous state is the ALARM just announced
    assert sorted((t.alarm_name, t.value) for t in recovered) == [
        (f"{endpoint}-canary", "OK"),
        (f"{endpoint}-errors", "OK"),
    ]
    assert _states(local_cloud, endpoint) == {"errors": "OK", "latency": "OK", "canary": "OK"}
    ok_events = [e for e in _delivered(endpoint) if e.detail.state.value == "OK"]
    assert len(ok_events) == 2
    for event in ok_events:
        assert event.detail.previous_state is not None
        assert event.detail.previous_state.value == "ALARM"
        alarm_event = next(e for e in alarm_events if e.detail.alarm_name == event.detail.alarm_name)
        assert event.detail.previous_state.timestamp == alarm_event.detail.state.timestamp


def test_set_state_announces_forced_changes_from_either_initial_state(
    local_cloud: LocalCloud, model_server: ModelServer, endpoint: str
) -> None:
    # Given an alarm forced into INSUFFICIENT_DATA (the other state a new alarm can start in)
    simulator = AlarmSimulator(local_cloud)
    name = f"{endpoint}-errors"
    forced = simulator.set_state(name, "INSUFFICIENT_DATA", "drill: no data yet", now=T0)
    assert forced is not None and forced.previous == "OK"

    # When a drill flaps it to ALARM (and asks again for the state it is already in)
    flapped = simulator.set_state(name, "ALARM", "drill: forced failure", now=T0 + STEP)
    repeated = simulator.set_state(name, "ALARM", "drill: forced failure", now=T0 + 2 * STEP)

    # Then each change is announced once, with the drill's reason, and DescribeAlarms agrees
    assert flapped is not None and repeated is None
    events = _delivered(endpoint)
    assert [(e.detail.previous_state.value if e.detail.previous_state else None) for e in events] == [
        "OK",
        "INSUFFICIENT_DATA",
    ]
    assert [e.detail.state.value for e in events] == ["INSUFFICIENT_DATA", "ALARM"]
    assert events[-1].detail.state.reason == "drill: forced failure"
    assert events[-1].detail.state.timestamp == T0 + STEP
    described = _describe(local_cloud, name)
    assert described["StateValue"] == "ALARM"
    assert described["StateReason"] == "drill: forced failure"

    # And the next evaluation of a healthy endpoint moves it back to OK, as CloudWatch would
    canary = _canary(local_cloud, model_server, endpoint)
    back = _drive(simulator.attach(canary), canary, T0 + 4 * STEP, 5)
    [recovery] = [t for t in back if t.alarm_name == name]
    assert (recovery.previous, recovery.value) == ("ALARM", "OK")
    last = _delivered(endpoint)[-1]
    assert (last.detail.alarm_name, last.detail.state.value) == (name, "OK")
    assert last.detail.state.timestamp == recovery.timestamp


def test_the_canary_reports_a_refused_endpoint_as_a_failure_with_its_latency(
    local_cloud: LocalCloud, endpoint: str
) -> None:
    # Given a target on a port nobody listens on
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        closed_port = probe_socket.getsockname()[1]
    target = CanaryTarget(endpoint, f"http://127.0.0.1:{closed_port}/invocations", {"features": {}}, 2.0)
    cloudwatch = local_cloud.client("cloudwatch")

    # When it is probed
    [result] = Canary([target], cloudwatch).probe_once(T0)

    # Then it failed without an HTTP status, and Success, Errors and Latency were recorded
    assert (result.success, result.status) == (False, None)
    assert result.latency_ms >= 0
    recorded = {}
    for metric in ("Success", "Errors", "Latency"):
        answer = cloudwatch.get_metric_statistics(
            Namespace="Lifeboat/Canary",
            MetricName=metric,
            Dimensions=[{"Name": "Endpoint", "Value": endpoint}],
            StartTime=T0,
            EndTime=T0 + 2 * STEP,
            Period=2,
            Statistics=["Maximum"],
        )
        [point] = answer["Datapoints"]
        recorded[metric] = point["Maximum"]
    assert recorded["Success"] == 0.0
    assert recorded["Errors"] == 1.0
    assert recorded["Latency"] == pytest.approx(result.latency_ms, abs=0.01)


class _FlakyCloudWatch:
    """A CloudWatch client whose first PutMetricData fails, like a cloud that is still starting."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.calls = 0
        self.stored = threading.Event()

    def put_metric_data(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("cloud not ready")
        answer = self._real.put_metric_data(**kwargs)
        self.stored.set()
        return answer


def test_the_background_loop_survives_errors_and_stops_promptly(
    local_cloud: LocalCloud, model_server: ModelServer, endpoint: str
) -> None:
    # Given a simulator whose canary's first round fails
    flaky = _FlakyCloudWatch(local_cloud.client("cloudwatch"))
    target = CanaryTarget(
        endpoint, f"{model_server.url}/invocations", golden_cases(model_server.artifact)[0]["payload"]
    )
    simulator = AlarmSimulator(local_cloud).attach(Canary([target], flaky))

    # When it runs in the background
    simulator.start(interval_s=0.05)
    try:
        # Then a later round still probes and stores metrics
        assert flaky.stored.wait(timeout=60.0)
        assert simulator.running
    finally:
        # And stop() ends the thread
        assert simulator.stop(timeout=60.0)
    assert not simulator.running
    assert flaky.calls >= 2
    with pytest.raises(ValueError):
        simulator.start(interval_s=0)
    # A long interval does not hold stop() up: the loop waits on the stop signal, not in sleep().
    simulator.start(interval_s=600.0)
    assert simulator.stop(timeout=60.0)
