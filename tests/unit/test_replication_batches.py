"""The replication queue's handler on whole SQS batches: poison records are batch-item failures with the
reason in the ledger, never a function error and never a re-drive, whatever the batch holds.

The service runs for real on the documented SQS and S3 shapes (events/sqs, events/s3); the plans are the
shipped ones, the ledger and the buckets in-memory fakes (a re-drive would call the buckets fake).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.plan_store import DirectoryPlanStore
from chalicelib.services.deps import Deps
from chalicelib.services.replication_events import UNATTRIBUTED, handle_batch

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
NOW = datetime(2024, 9, 5, 21, 5, tzinfo=UTC)


@dataclass
class FakeLedger:
    claims: set[tuple[str, str]] = field(default_factory=set)
    entries: list[tuple[str, str, str, str, dict[str, Any]]] = field(default_factory=list)

    def claim(self, workload: str, key: str, **_: Any) -> bool:
        if (workload, key) in self.claims:
            return False
        self.claims.add((workload, key))
        return True

    def release_claim(self, workload: str, key: str) -> None:
        self.claims.discard((workload, key))

    def record(self, workload: str, kind: str, outcome: str, reason: str, **kw: Any) -> None:
        self.entries.append((workload, kind, outcome, reason, kw.get("detail") or {}))


class NoBuckets:
    """Any S3 call is a re-drive attempt, which a malformed record must never cause."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"buckets.{name} was called for a malformed record")


def make_deps() -> Deps:
    d = Deps(
        plans=DirectoryPlanStore(ROOT / "plans"),
        ledger=FakeLedger(),  # type: ignore[arg-type]
        locks=None,  # type: ignore[arg-type]
        router=None,  # type: ignore[arg-type]
        endpoints=None,  # type: ignore[arg-type]
        notifier=None,  # type: ignore[arg-type]
        alarms=None,  # type: ignore[arg-type]
        executions=None,  # type: ignore[arg-type]
        clock=lambda: NOW,
    )
    d.buckets = NoBuckets()  # type: ignore[assignment]
    return d


def sqs_record(body: str, receive_count: int = 1, message_id: str | None = None) -> dict[str, Any]:
    """A record as Lambda's SQS event source delivers it (events/sqs/s3-notification-via-sqs.json)."""
    record = json.loads((EVENTS / "sqs" / "s3-notification-via-sqs.json").read_text())["Records"][0]
    record.update(body=body, messageId=message_id or str(uuid.uuid4()))
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return record


def failed_in_plan_bucket(**data: Any) -> str:
    """The documented failed-replication message, about the shipped plan's training data."""
    message = json.loads((EVENTS / "s3" / "replication-operation-failed.json").read_text())
    record = message["Records"][0]
    record["s3"]["bucket"]["name"] = "fraud-data-use1"
    record["s3"]["object"]["key"] = "datasets/x.csv"
    record.update(data)
    return json.dumps(message)


@pytest.mark.parametrize(
    "body",
    [
        "this is not JSON",
        json.dumps({"not": "an S3 notification"}),
        json.dumps({"Records": []}),
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
    ],
)
def test_a_batch_whose_only_record_is_malformed_is_a_batch_item_failure_not_a_function_error(
    body: str,
) -> None:
    # Given a batch of one poison record
    d = make_deps()
    record = sqs_record(body)
    # When it is handled / Then the answer names it as a batch-item failure (powertools would have raised)
    report = handle_batch({"Records": [record]}, lambda: d)
    assert report.batch_item_failures == [{"itemIdentifier": record["messageId"]}]
    (outcome,) = report.outcomes
    assert outcome.outcome == "malformed"
    # And the ledger says why, with the message id, where no workload claims it
    ((workload, kind, recorded, reason, detail),) = d.ledger.entries  # type: ignore[attr-defined]
    assert (workload, kind, recorded) == (UNATTRIBUTED, "replication", "malformed")
    assert (
        record["messageId"] in reason and "dead-letter queue" in reason and "nothing was re-driven" in reason
    )
    assert detail["message_id"] == record["messageId"] and detail["receive_count"] == 1


@pytest.mark.parametrize(
    "data",
    [
        {"replicationEventData": None},
        {"replicationEventData": {"s3Operation": "OBJECT_PUT"}},
    ],
)
def test_a_failed_replication_without_its_failure_data_is_never_redriven(data: dict[str, Any]) -> None:
    # Given a failed replication of a protected object, without what S3 always says about a failure
    d = make_deps()
    record = sqs_record(failed_in_plan_bucket(**data))
    # When handled (a re-drive would call the buckets fake and fail the test)
    report = handle_batch({"Records": [record]}, lambda: d)
    # Then it is a batch-item failure, recorded under the workload whose bucket it names
    assert report.batch_item_failures == [{"itemIdentifier": record["messageId"]}]
    ((workload, _, recorded, reason, _),) = d.ledger.entries  # type: ignore[attr-defined]
    assert (workload, recorded) == ("fraud-scoring", "malformed") and "replicationEventData" in reason


def test_a_negative_object_size_is_malformed() -> None:
    d = make_deps()
    body = json.loads(failed_in_plan_bucket())
    body["Records"][0]["s3"]["object"]["size"] = -520080
    record = sqs_record(json.dumps(body))
    report = handle_batch({"Records": [record]}, lambda: d)
    assert report.batch_item_failures == [{"itemIdentifier": record["messageId"]}]
    assert "size" in report.outcomes[0].reason


def test_each_poison_message_is_explained_once_however_often_it_returns() -> None:
    # Given a poison message delivered again and again (until SQS moves it to the dead-letter queue)
    d = make_deps()
    message_id = str(uuid.uuid4())
    # When it comes back five times
    for count in range(1, 6):
        report = handle_batch({"Records": [sqs_record("garbage", count, message_id)]}, lambda: d)
        assert report.batch_item_failures == [{"itemIdentifier": message_id}]
    # Then the ledger holds one explanation, not five
    assert len(d.ledger.entries) == 1  # type: ignore[attr-defined]


def test_poison_records_do_not_hold_back_the_good_ones() -> None:
    # Given an S3 test event and two poison records in one batch
    d = make_deps()
    good = sqs_record((EVENTS / "s3" / "test-event.json").read_text())
    poison = [sqs_record("{"), sqs_record("[]")]
    # When handled / Then only the poison records return to the queue
    report = handle_batch({"Records": [good, *poison]}, lambda: d)
    assert sorted(f["itemIdentifier"] for f in report.batch_item_failures) == sorted(
        r["messageId"] for r in poison
    )


@pytest.mark.parametrize("event", [None, [], "Records", {"Records": "x"}, {}])
def test_an_invocation_that_is_not_an_sqs_batch_answers_without_raising(event: Any) -> None:
    report = handle_batch(event, make_deps)
    assert report.batch_item_failures == [] and report.outcomes == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@given(st.lists(st.one_of(st.text(max_size=300), json_values.map(json.dumps)), min_size=1, max_size=5))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_bodies_give_a_report_and_never_an_exception(bodies: list[str]) -> None:
    # Given a batch of records with any bodies at all
    d = make_deps()
    records = [sqs_record(body) for body in bodies]
    # When it is handled / Then a report comes back (a hang meets pytest-timeout), naming exactly the records
    # not acted on
    report = handle_batch({"Records": records}, lambda: d)
    failed = {f["itemIdentifier"] for f in report.batch_item_failures}
    for record, outcome in zip(records, report.outcomes, strict=True):
        assert (record["messageId"] in failed) == (outcome.outcome in ("malformed", "failed"))
