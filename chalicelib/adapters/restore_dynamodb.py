"""DynamoDB for point-in-time restores: the table's restorable window, RestoreTableToPointInTime into a new
table, the wait until it is ACTIVE (polled, `sleep` and `clock` injected), its item count and a sample of its
items, and the explicit swap (the restored items copied back over the source table)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters import aws

Sleep = Callable[[float], None]
Monotonic = Callable[[], float]


class RestoreNotReady(TimeoutError):
    """The restored table did not become ACTIVE within the bound."""


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TableRestorer:
    ddb = aws.Client("dynamodb")

    def __init__(
        self, dynamodb: Any | None = None, *, sleep: Sleep = time.sleep, monotonic: Monotonic = time.monotonic
    ):
        self.ddb = dynamodb
        self._sleep = sleep
        self._monotonic = monotonic

    def _client(self, region: str) -> Any:
        return type(self).ddb.of(self, region)

    def window(self, region: str, table: str) -> tuple[datetime, datetime] | None:
        """(earliest, latest) restorable time, or None when point-in-time recovery is off."""
        desc = self._client(region).describe_continuous_backups(TableName=table)[
            "ContinuousBackupsDescription"
        ]
        pitr = desc.get("PointInTimeRecoveryDescription") or {}
        if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
            return None
        return _utc(pitr["EarliestRestorableDateTime"]), _utc(pitr["LatestRestorableDateTime"])

    def exists(self, region: str, table: str) -> bool:
        try:
            self._client(region).describe_table(TableName=table)
        except self._client(region).exceptions.ResourceNotFoundException:
            return False
        return True

    def key_names(self, region: str, table: str) -> list[str]:
        schema = self._client(region).describe_table(TableName=table)["Table"]["KeySchema"]
        return [k["AttributeName"] for k in sorted(schema, key=lambda k: k["KeyType"] != "HASH")]

    def start(self, region: str, source: str, target: str, to: datetime) -> None:
        self._client(region).restore_table_to_point_in_time(
            SourceTableName=source, TargetTableName=target, RestoreDateTime=to
        )

    def wait_active(self, region: str, table: str, *, timeout: float, interval: float = 5.0) -> float:
        """Poll until the restored table is ACTIVE (restores take minutes to hours in AWS); seconds waited."""
        started = self._monotonic()
        while True:
            status = self._client(region).describe_table(TableName=table)["Table"]["TableStatus"]
            waited = self._monotonic() - started
            if status == "ACTIVE":
                return waited
            if waited >= timeout:
                raise RestoreNotReady(f"{table} is still {status} after {waited:.0f}s")
            self._sleep(interval)

    def count(self, region: str, table: str) -> int:
        """Items in the table, counted by a paginated Scan (exact, unlike DescribeTable's 6-hourly figure)."""
        total, kwargs = 0, {"TableName": table, "Select": "COUNT"}
        while True:
            page = self._client(region).scan(**kwargs)
            total += int(page.get("Count", 0))
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def items(self, region: str, table: str) -> Iterator[dict[str, Any]]:
        """Every item, a page at a time."""
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = self._client(region).scan(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, region: str, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item = self._client(region).get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def put_all(self, region: str, table: str, items: list[dict[str, Any]]) -> None:
        self._write(region, table, [{"PutRequest": {"Item": i}} for i in items])

    def delete_all(self, region: str, table: str, keys: list[dict[str, Any]]) -> None:
        self._write(region, table, [{"DeleteRequest": {"Key": k}} for k in keys])

    def _write(self, region: str, table: str, requests: list[dict[str, Any]]) -> None:
        """BatchWriteItem 25 at a time, retrying what DynamoDB hands back unprocessed (bounded)."""
        client = self._client(region)
        for start in range(0, len(requests), 25):
            pending = {table: requests[start : start + 25]}
            for attempt in range(8):
                left = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not left:
                    break
                pending = left
                self._sleep(min(2**attempt * 0.05, 2.0))
            else:
                raise RuntimeError(f"{table}: DynamoDB left {len(pending[table])} writes unprocessed")
