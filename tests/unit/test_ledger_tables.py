"""Where the ledger adapter keeps what: the audit trail in the ledger table, which Lifeboat never deletes
from; claims and operator control items, which it does delete, in the lock table (in-process moto, no
socket)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.ledger import Ledger

LEDGER, LOCKS = "lifeboat-test-ledger", "lifeboat-test-locks"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Recording:
    """The DynamoDB client, noting which table each write and delete went to."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in ("put_item", "delete_item", "update_item"):
            return method

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs["TableName"]))
            return method(**kwargs)

        return call


@pytest.fixture
def ddb() -> Iterator[Recording]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for name, keys in ((LEDGER, ("pk", "sk")), (LOCKS, ("pk",))):
            client.create_table(
                TableName=name,
                KeySchema=[
                    {"AttributeName": k, "KeyType": t}
                    for k, t in zip(keys, ("HASH", "RANGE")[: len(keys)], strict=True)
                ],
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        yield Recording(client)


def items(ddb: Recording, table: str) -> list[dict[str, Any]]:
    return list(ddb.scan(TableName=table)["Items"])


def test_claims_and_control_items_come_and_go_in_the_lock_table(ddb: Recording) -> None:
    ledger = Ledger(LEDGER, ddb, clock=lambda: NOW, control_table=LOCKS)
    # When a claim is taken twice, given back, and an operator control item is written and deleted
    assert ledger.claim("fraud-scoring", "quorum-1") is True
    assert ledger.claim("fraud-scoring", "quorum-1") is False
    ledger.update_control("fraud-scoring", "failback#arn:x", lambda current: {"pause_requested": True})
    assert ledger.get_control("fraud-scoring", "failback#arn:x") == {"pause_requested": True}
    keys = sorted(item["pk"]["S"] for item in items(ddb, LOCKS))
    ledger.release_claim("fraud-scoring", "quorum-1")
    ledger.delete_control("fraud-scoring", "failback#arn:x")
    # Then both lived in the lock table, keyed by kind and workload, and are gone
    assert keys == ["claim#fraud-scoring#quorum-1", "control#fraud-scoring#failback#arn:x"]
    assert items(ddb, LOCKS) == [] and ledger.get_control("fraud-scoring", "failback#arn:x") is None
    # And the ledger table was never written, let alone deleted from
    assert items(ddb, LEDGER) == []
    assert all(table == LOCKS for _, table in ddb.calls)


def test_the_audit_trail_is_only_ever_added_to(ddb: Recording) -> None:
    ledger = Ledger(LEDGER, ddb, clock=lambda: NOW, control_table=LOCKS)
    # When decisions are recorded and the state changes
    ledger.record("fraud-scoring", "failover", "completed", "test")
    ledger.record("fraud-scoring", "failover", "completed", "test")
    ledger.update_state("fraud-scoring", active_region="us-west-2")
    ledger.mark_concluded("fraud-scoring", "arn:execution", "execution")
    # Then every entry is there, and the ledger table only saw conditional writes (never a delete)
    assert len(ledger.entries("fraud-scoring")) == 2
    assert {name for name, table in ddb.calls if table == LEDGER} == {"put_item"}


def test_a_ledger_without_a_control_table_refuses_claims_rather_than_write_them_into_the_ledger(
    ddb: Recording,
) -> None:
    ledger = Ledger(LEDGER, ddb, clock=lambda: NOW)
    with pytest.raises(RuntimeError, match="lock table"):
        ledger.claim("fraud-scoring", "quorum-1")
    assert items(ddb, LEDGER) == []
