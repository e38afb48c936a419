"""The alarm handler's once-per-event guard (powertools idempotency), on moto's in-process DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.idempotency import IdempotentEvents, InProgress

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        client.create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def test_an_event_delivered_twice_is_handled_once_and_both_deliveries_get_the_first_answer(
    dynamodb: Any,
) -> None:
    # Given a handler guarded on the event id
    handled: list[tuple[str, int]] = []

    def handle(event: dict[str, Any], attempt: int) -> dict[str, Any]:
        handled.append((event["id"], attempt))
        return {"id": event["id"], "attempt": attempt}

    events = IdempotentEvents(dynamodb)
    guard = events.guard("idempotency", "alarm", handle)
    # When one event arrives twice (the extra argument is not part of the key), then another event
    first = guard(event={"id": "event-1", "detail": {}}, attempt=1)
    again = guard(event={"id": "event-1", "detail": {}}, attempt=2)
    other = guard(event={"id": "event-2", "detail": {}}, attempt=3)
    # Then the handler ran once per event, and the repeat got the first answer
    assert handled == [("event-1", 1), ("event-2", 3)]
    assert again == first == {"id": "event-1", "attempt": 1} and other["attempt"] == 3
    # And the records live under the prefix, one guard per table and prefix
    keys = sorted(item["id"]["S"] for item in dynamodb.scan(TableName="idempotency")["Items"])
    assert len(keys) == 2 and all(k.startswith("alarm#") for k in keys)
    assert events.guard("idempotency", "alarm", handle) is guard


def test_a_copy_arriving_while_the_first_is_still_being_handled_is_reported_in_progress(
    dynamodb: Any,
) -> None:
    # Given a handler that, while it handles an event, sees a second copy of that event arrive
    events = IdempotentEvents(dynamodb)
    seen: list[str] = []

    def handle(event: dict[str, Any]) -> dict[str, Any]:
        try:
            guard(event=dict(event))
        except InProgress as exc:
            seen.append(str(exc))
        return {"handled": event["id"]}

    guard = events.guard("idempotency", "alarm", handle)
    # When the first copy is handled
    answer = guard(event={"id": "event-1"})
    # Then the copy in flight got InProgress (powertools' IdempotencyAlreadyInProgressError, translated),
    # and the first copy's answer is unaffected
    assert answer == {"handled": "event-1"}
    assert len(seen) == 1 and "in progress" in seen[0].lower()
