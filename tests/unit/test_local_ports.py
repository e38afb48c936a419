"""The plan the local cloud runs: its local endpoints on the free ports its model servers got."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.models.plan import HttpEndpoint
from chalicelib.models.planfile import load_plan_file, load_plan_text
from localcloud.ports import local_port, local_roles, local_url, on_ports

EXAMPLE = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"


def test_the_example_plan_names_two_local_endpoints_on_any_free_port() -> None:
    # Given the shipped example plan
    plan = load_plan_file(EXAMPLE)
    # Then both endpoints are model servers of the local cloud, and no port is fixed
    assert local_roles(plan) == ["primary", "secondary"]
    urls = [local_url(plan, "primary"), local_url(plan, "secondary")]
    assert [local_port(url or "") for url in urls] == [0, 0]


def test_local_endpoints_move_to_the_ports_the_local_cloud_got_and_nothing_else_changes() -> None:
    # Given the example plan and the two ports the local cloud reserved
    source = load_plan_file(EXAMPLE)
    # When the plan is put on them
    plan, text = on_ports(source, {"primary": 40001, "secondary": 40002}, "plans/fraud-scoring.yaml")
    # Then each endpoint names its port, on the same host and path
    assert plan.endpoint_for("primary") == HttpEndpoint(kind="http", url="http://127.0.0.1:40001/invocations")  # type: ignore[arg-type]
    assert plan.endpoint_for("secondary") == HttpEndpoint(
        kind="http", url="http://127.0.0.1:40002/invocations"
    )  # type: ignore[arg-type]
    # And the rest of the plan is the plan file's
    assert plan.model_copy(update={"endpoints": source.endpoints}) == source
    # And the text the local cloud stores is that plan, saying where it came from
    assert load_plan_text(text) == plan
    assert text.startswith("# plans/fraud-scoring.yaml as the local cloud runs it")


def test_a_port_written_in_the_plan_is_replaced_too_and_localhost_stays_localhost() -> None:
    # Given endpoints on localhost without a port and on 127.0.0.1 with a fixed one
    text = EXAMPLE.read_text()
    text = text.replace("http://127.0.0.1:0/invocations", "http://localhost/predict", 1)
    text = text.replace("http://127.0.0.1:0/invocations", "http://127.0.0.1:18081/invocations", 1)
    source = load_plan_text(text)
    # When they are put on free ports
    plan, _ = on_ports(source, {"primary": 40011, "secondary": 40012})
    # Then only the ports change
    assert str(plan.endpoint_for("primary").url) == "http://localhost:40011/predict"  # type: ignore[union-attr]
    assert str(plan.endpoint_for("secondary").url) == "http://127.0.0.1:40012/invocations"  # type: ignore[union-attr]


def test_endpoints_elsewhere_are_not_the_local_clouds_to_move() -> None:
    # Given a plan whose primary is a remote HTTP endpoint and whose secondary is a SageMaker endpoint
    text = EXAMPLE.read_text()
    text = text.replace(
        "url: http://127.0.0.1:0/invocations", "url: https://fraud.example.com/invocations", 1
    )
    text = text.replace(
        "kind: http\n    url: http://127.0.0.1:0/invocations", "kind: sagemaker\n    endpoint_name: fraud", 1
    )
    plan = load_plan_text(text)
    # Then the local cloud starts no model server for either
    assert local_roles(plan) == []
    # And refuses to put one on a port
    with pytest.raises(ValueError, match="primary endpoint of fraud-scoring is not served on this machine"):
        on_ports(plan, {"primary": 40021})
