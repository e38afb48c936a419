"""Lease locks in DynamoDB: one failover or failback per workload, and a crashed run cannot block forever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import error_code, from_item, to_item
from chalicelib.clock import Clock, utc_now
from chalicelib.models.ledger import LockInfo


class LockHeld(RuntimeError):
    """Another operation holds the workload's lock (the error name Step Functions catches)."""

    def __init__(self, info: LockInfo) -> None:
        self.info = info
        super().__init__(
            f"{info.workload} is locked by {info.operation} {info.holder} until {info.expires_at.isoformat()}"
        )


def _pk(workload: str) -> str:
    return f"lock#{workload}"


class LockTable:
    ddb = aws.Client("dynamodb")

    def __init__(self, table_name: str, dynamodb: Any | None = None, *, clock: Clock = utc_now) -> None:
        self.table_name = table_name
        self.ddb = dynamodb
        self._clock = clock

    def acquire(self, workload: str, holder: str, operation: str, lease: timedelta) -> LockInfo:
        """Take the lock, or renew it if `holder` already has it; raise LockHeld otherwise."""
        now = self._clock()
        info = LockInfo(
            workload=workload, holder=holder, operation=operation, acquired_at=now, expires_at=now + lease
        )
        try:
            self.ddb.put_item(
                TableName=self.table_name,
                Item=to_item(
                    {
                        "pk": _pk(workload),
                        "holder": holder,
                        "operation": operation,
                        "acquired_at": int(now.timestamp()),
                        "expires_at": int(info.expires_at.timestamp()),
                    }
                ),
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR holder = :holder",
                ExpressionAttributeValues={
                    ":now": {"N": str(int(now.timestamp()))},
                    ":holder": {"S": holder},
                },
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            current = self.current(workload)
            if current is None:  # released between our write and our read: try once more
                return self.acquire(workload, holder, operation, lease)
            raise LockHeld(current) from None
        return info

    def release(self, workload: str, holder: str) -> bool:
        """Release if held by `holder`; returns False when someone else holds it (or nobody)."""
        try:
            self.ddb.delete_item(
                TableName=self.table_name,
                Key={"pk": {"S": _pk(workload)}},
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": {"S": holder}},
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def break_lock(self, workload: str) -> LockInfo | None:
        """Remove the lock whoever holds it (an operator's escape hatch); returns what was removed, lapsed
        leases included, or None when there was nothing."""
        resp = self.ddb.delete_item(
            TableName=self.table_name, Key={"pk": {"S": _pk(workload)}}, ReturnValues="ALL_OLD"
        )
        return _info(workload, from_item(resp["Attributes"])) if resp.get("Attributes") else None

    def current(self, workload: str) -> LockInfo | None:
        """The live lock, or None when free or lapsed."""
        resp = self.ddb.get_item(
            TableName=self.table_name, Key={"pk": {"S": _pk(workload)}}, ConsistentRead=True
        )
        if "Item" not in resp:
            return None
        info = _info(workload, from_item(resp["Item"]))
        if info.expires_at <= self._clock():
            return None
        return info


def _info(workload: str, item: dict[str, Any]) -> LockInfo:
    return LockInfo(
        workload=workload,
        holder=item["holder"],
        operation=item["operation"],
        acquired_at=datetime.fromtimestamp(item["acquired_at"], UTC),
        expires_at=datetime.fromtimestamp(item["expires_at"], UTC),
    )
