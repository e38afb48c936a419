"""Smoke-test calls to SageMaker endpoints: what is timed, what is sent, what a failure becomes."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from chalicelib.adapters.endpoints import EndpointClient
from chalicelib.models.plan import SageMakerEndpoint


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeRuntime:
    """A sagemaker-runtime client that takes `latency` seconds (on the fake clock) per call."""

    def __init__(self, clock: Clock, latency: float) -> None:
        self.clock, self.latency = clock, latency
        self.calls: list[dict[str, Any]] = []

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        self.clock.now += self.latency
        return {"Body": io.BytesIO(json.dumps({"score": 0.9}).encode())}


ENDPOINT = SageMakerEndpoint(kind="sagemaker", endpoint_name="fraud-scorer", variant_name="AllTraffic")


def test_building_the_runtime_client_is_not_counted_as_the_endpoints_latency() -> None:
    # Given a runtime client whose first construction takes 1.5 s (botocore loading its model on a cold start)
    clock = Clock()
    runtime = FakeRuntime(clock, latency=0.02)

    def build(region: str) -> FakeRuntime:
        clock.now += 1.5
        return runtime

    client = EndpointClient(sagemaker_runtime=build, timer=clock)
    # When a smoke case invokes the endpoint
    call = client.invoke(ENDPOINT, "us-west-2", "clear-fraud", {"features": {}}, 2.0)
    # Then only the call itself is timed, and it targeted the plan's variant
    assert call.status == 200 and call.body == {"score": 0.9}
    assert call.latency_ms == pytest.approx(20.0)
    assert runtime.calls[0]["TargetVariant"] == "AllTraffic"
    assert runtime.calls[0]["EndpointName"] == "fraud-scorer"


def test_a_runtime_client_that_cannot_be_built_is_a_failed_case() -> None:
    # Given no way to build the client (no region configured, say)
    def broken(region: str) -> Any:
        raise ValueError("You must specify a region.")

    # When a smoke case runs
    call = EndpointClient(sagemaker_runtime=broken).invoke(ENDPOINT, "us-west-2", "c", {}, 2.0)
    # Then it failed, saying why, instead of crashing the smoke test
    assert call.status is None and call.error == "ValueError: You must specify a region."
