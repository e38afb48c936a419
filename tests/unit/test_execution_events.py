"""Step Functions execution status changes, parsed from the AWS documentation's examples in events/."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern
from pydantic import ValidationError

from chalicelib.blueprints.janitor import EXECUTION_ENDED
from chalicelib.models.stepfunctions import ExecutionStatusChange

EVENTS = Path(__file__).resolve().parents[2] / "events" / "stepfunctions"
FIXTURES = {
    "RUNNING": "execution-status-change-running.json",
    "SUCCEEDED": "execution-status-change-succeeded.json",
    "FAILED": "execution-status-change-failed.json",
    "TIMED_OUT": "execution-status-change-timed-out.json",
    "ABORTED": "execution-status-change-aborted.json",
}


def fixture(status: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / FIXTURES[status]).read_text()))


@pytest.mark.parametrize("status", FIXTURES)
def test_every_documented_status_change_parses(status: str) -> None:
    # Given a status change event exactly as AWS documents it
    raw = fixture(status)
    # When it is parsed
    change = ExecutionStatusChange.model_validate(raw)
    # Then what the janitor decides on is typed: the execution, its machine, how it ended and when
    assert change.detail.status == status
    assert change.detail.execution_arn.endswith(":execution:state-machine-name:execution-name")
    assert change.detail.state_machine_arn.rsplit(":", 1)[-1] == "state-machine"
    assert change.detail.start_date.tzinfo is not None and change.detail.start_date.year == 2019
    assert (change.detail.stop_date is None) is (status == "RUNNING")
    assert json.loads(change.detail.input or "null") == {}


def test_epoch_milliseconds_become_instants() -> None:
    change = ExecutionStatusChange.model_validate(fixture("ABORTED"))
    assert change.detail.start_date == datetime.fromtimestamp(1551225014.968, UTC)
    assert change.detail.stop_date == datetime.fromtimestamp(1551225017.576, UTC)


@pytest.mark.parametrize(
    ("status", "matches"),
    [("ABORTED", True), ("TIMED_OUT", True), ("FAILED", True), ("SUCCEEDED", True), ("RUNNING", False)],
)
def test_the_janitor_rule_matches_every_end_of_an_execution(status: str, matches: bool) -> None:
    # Given the janitor's EventBridge pattern / When a documented event is matched against it
    pattern = EventPattern.load(json.dumps(EXECUTION_ENDED))
    # Then every status an execution ends in reaches the janitor (a succeeded run may still hold its lock)
    assert pattern.matches_event(fixture(status)) is matches


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.pop("detail"),
        lambda e: e["detail"].pop("executionArn"),
        lambda e: e["detail"].update(status="SLEEPING"),
        lambda e: e.update(source="aws.cloudwatch"),
        lambda e: e.update({"detail-type": "Step Functions State Machine Status Change"}),
    ],
)
def test_malformed_events_are_rejected(mutate: Any) -> None:
    raw = fixture("ABORTED")
    mutate(raw)
    with pytest.raises(ValidationError):
        ExecutionStatusChange.model_validate(raw)
