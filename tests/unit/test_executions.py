"""Finding one of Lifeboat's executions by name or ARN, on moto's Step Functions in-process (no socket)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.executions import Executions
from chalicelib.adapters.plan_store import DirectoryPlanStore
from chalicelib.models.api import ExecutionRef
from chalicelib.services.deps import Deps
from chalicelib.services.executions import UnknownExecution, resolve_execution
from tests.unit.moto_aws import ClientFor

ROOT = Path(__file__).resolve().parents[2]
W = "fraud-scoring"
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/lifeboat"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.fixture
def machines(aws: ClientFor) -> dict[str, str]:
    """Lifeboat's failover and failback machines of the example plan, and another application's machine."""
    sfn = aws("stepfunctions", REGION)
    names = ("lifeboat-dev-fraud-scoring-failover", "lifeboat-dev-fraud-scoring-failback", "billing-nightly")
    return {
        name: sfn.create_state_machine(name=name, definition=DEFINITION, roleArn=ROLE)["stateMachineArn"]
        for name in names
    }


def deps(aws: ClientFor) -> Deps:
    none: Any = None  # what resolving an execution never calls
    return Deps(
        plans=DirectoryPlanStore(ROOT / "plans"),
        ledger=none,
        locks=none,
        router=none,
        endpoints=none,
        notifier=none,
        alarms=none,
        executions=Executions("lifeboat-dev", aws("stepfunctions", REGION)),
    )


def start(aws: ClientFor, machine: str, name: str) -> str:
    payload = json.dumps({"workload": W})
    return str(
        aws("stepfunctions", REGION).start_execution(stateMachineArn=machine, name=name, input=payload)[
            "executionArn"
        ]
    )


def test_a_name_is_found_on_whichever_lifeboat_machine_ran_it(
    aws: ClientFor, machines: dict[str, str]
) -> None:
    # Given a failback execution
    arn = start(aws, machines["lifeboat-dev-fraud-scoring-failback"], "failback-fraud-scoring-op-1")
    # When it is looked up by its name alone, of any kind or as a failback
    # Then both find it
    assert (
        resolve_execution(ExecutionRef(name="failback-fraud-scoring-op-1"), deps(aws))["executionArn"] == arn
    )
    found = resolve_execution(ExecutionRef(name="failback-fraud-scoring-op-1"), deps(aws), kind="failback")
    assert found["executionArn"] == arn


def test_an_execution_of_another_kind_is_unknown_as_that_kind(
    aws: ClientFor, machines: dict[str, str]
) -> None:
    # Given a failover execution
    arn = start(aws, machines["lifeboat-dev-fraud-scoring-failover"], "manual-1")
    # When a failback control names it, by name or by ARN
    # Then it is no failback execution (and says so)
    with pytest.raises(UnknownExecution, match="no failback execution 'manual-1'"):
        resolve_execution(ExecutionRef(name="manual-1"), deps(aws), kind="failback")
    with pytest.raises(UnknownExecution, match="no failback execution"):
        resolve_execution(ExecutionRef(arn=arn, name="manual-1"), deps(aws), kind="failback")


def test_executions_of_other_applications_and_missing_ones_are_unknown(
    aws: ClientFor, machines: dict[str, str]
) -> None:
    # Given an execution of another application's machine in the same account
    other = start(aws, machines["billing-nightly"], "nightly-1")
    # When it is asked for by ARN or by name, or an execution that never ran is
    # Then Lifeboat knows none of them
    with pytest.raises(UnknownExecution, match="no Lifeboat execution"):
        resolve_execution(ExecutionRef(arn=other, name="nightly-1"), deps(aws))
    with pytest.raises(UnknownExecution):
        resolve_execution(ExecutionRef(name="nightly-1"), deps(aws))
    missing = (
        machines["lifeboat-dev-fraud-scoring-failover"].replace(":stateMachine:", ":execution:") + ":gone"
    )
    with pytest.raises(UnknownExecution):
        resolve_execution(ExecutionRef(arn=missing, name="gone"), deps(aws))


def test_listings_and_histories_read_lifeboat_machines_only(aws: ClientFor, machines: dict[str, str]) -> None:
    # Given one execution on a Lifeboat machine and one on another application's
    arn = start(aws, machines["lifeboat-dev-fraud-scoring-failover"], "manual-2")
    start(aws, machines["billing-nightly"], "nightly-2")
    sfn = deps(aws).executions
    # Then only Lifeboat's machines are listed, with their executions, and a missing execution is None
    assert set(sfn.state_machines()) == {
        "lifeboat-dev-fraud-scoring-failover",
        "lifeboat-dev-fraud-scoring-failback",
    }
    assert [e["executionArn"] for e in sfn.recent(machines["lifeboat-dev-fraud-scoring-failover"])] == [arn]
    assert sfn.find(arn.replace("manual-2", "never")) is None
    assert sfn.events(arn)[0]["type"] == "ExecutionStarted"


class PagedSfn:
    """Step Functions listing five executions two at a time, as it pages with nextToken."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def list_executions(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        at = int(kwargs.get("nextToken", 0))
        page: dict[str, Any] = {"executions": [{"name": f"run-{i}"} for i in range(at, min(at + 2, 5))]}
        if at + 2 < 5:
            page["nextToken"] = str(at + 2)
        return page


def test_a_listing_follows_the_pages_until_it_has_enough() -> None:
    # Given a machine with five executions, listed two per page
    sfn = PagedSfn()
    executions = Executions("lifeboat-dev", sfn)
    # When three, then all of them, are asked for
    three = executions.recent("arn:machine", limit=3)
    every = executions.recent("arn:machine", status="SUCCEEDED", limit=20)
    # Then the listing stops at the page that holds the third, and reads every page for all
    assert [e["name"] for e in three] == ["run-0", "run-1", "run-2"]
    assert [e["name"] for e in every] == [f"run-{i}" for i in range(5)]
    assert len(sfn.calls) == 2 + 3
    assert sfn.calls[-1] == {
        "stateMachineArn": "arn:machine",
        "maxResults": 20,
        "statusFilter": "SUCCEEDED",
        "nextToken": "4",
    }
