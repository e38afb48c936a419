"""Per-asset replication state items in the ledger table (pk workload#<w>, sk asset#<name>)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import error_code, from_item, to_item
from chalicelib.models.replication import AssetReplicationState

ASSET_PREFIX = "asset#"
_MAX_RETRIES = 8


class AssetStateConflict(RuntimeError):
    """The asset state kept changing under us (many events at once); the caller retries later."""


class AssetStateStore:
    ddb = aws.Client("dynamodb")

    def __init__(self, table_name: str, dynamodb: Any | None = None) -> None:
        self.table_name = table_name
        self.ddb = dynamodb

    @staticmethod
    def _key(workload: str, asset: str) -> dict[str, Any]:
        return {"pk": {"S": f"workload#{workload}"}, "sk": {"S": f"{ASSET_PREFIX}{asset}"}}

    def get(self, workload: str, asset: str) -> AssetReplicationState:
        resp = self.ddb.get_item(
            TableName=self.table_name, Key=self._key(workload, asset), ConsistentRead=True
        )
        if "Item" not in resp:
            return AssetReplicationState(workload=workload, asset=asset)
        return AssetReplicationState.model_validate_json(from_item(resp["Item"])["state"])

    def all(self, workload: str) -> list[AssetReplicationState]:
        resp = self.ddb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"workload#{workload}"}, ":prefix": {"S": ASSET_PREFIX}},
        )
        return [
            AssetReplicationState.model_validate_json(from_item(i)["state"]) for i in resp.get("Items", [])
        ]

    def update(
        self, workload: str, asset: str, change: Callable[[AssetReplicationState], None]
    ) -> AssetReplicationState:
        """Apply `change` to the current state with optimistic concurrency (events arrive in parallel)."""
        for _ in range(_MAX_RETRIES):
            current = self.get(workload, asset)
            updated = current.model_copy(deep=True)
            change(updated)
            updated.version = current.version + 1
            item = to_item(
                {
                    "pk": f"workload#{workload}",
                    "sk": f"{ASSET_PREFIX}{asset}",
                    "version": updated.version,
                    "state": updated.model_dump_json(),
                }
            )
            kwargs: dict[str, Any] = {"TableName": self.table_name, "Item": item}
            if current.version:
                kwargs["ConditionExpression"] = "version = :v"
                kwargs["ExpressionAttributeValues"] = {":v": {"N": str(current.version)}}
            else:
                kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
            try:
                self.ddb.put_item(**kwargs)
                return updated
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
        raise AssetStateConflict(
            f"state of {workload}/{asset} kept changing; gave up after {_MAX_RETRIES} tries"
        )
