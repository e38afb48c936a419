"""DynamoDB table assets (e.g. an online feature store): a global table with a replica in the secondary.

One shard per asset (`dynamodb`): the primary table's restore point (PITR, else the newest backup) against
the objective, and the replica table present, ACTIVE and with PITR. Verdicts are in
`chalicelib.domain.assets.dynamodb`.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from chalicelib.adapters.assets.base import ClientFor, ShardPlan, factory_client, grant
from chalicelib.adapters.dynamo import error_code
from chalicelib.adapters.resources import ResourceReader
from chalicelib.domain.assets.dynamodb import (
    judge_replica,
    judge_restore_point,
    pitr_restore_point,
    tables_finding,
)
from chalicelib.models.grants import Grant, arn
from chalicelib.models.live_checks import LiveCheck, LiveFinding
from chalicelib.models.plan import DRPlan, DynamoDBAsset
from chalicelib.models.verification import Shard, ShardResult


class DynamoDBChecker:
    kind = "dynamodb"
    checks = ("dynamodb",)

    def __init__(self, client: ClientFor | None = None) -> None:
        self._client = client or factory_client

    def plan(self, plan: DRPlan, asset: DynamoDBAsset) -> ShardPlan:
        return ShardPlan(shards=[{"kind": "dynamodb"}])

    def check(self, plan: DRPlan, asset: DynamoDBAsset, shard: Shard, *, now: datetime) -> ShardResult:
        if shard.kind != "dynamodb":
            raise ValueError(f"a dynamodb asset has no {shard.kind!r} shards")
        primary = self._client("dynamodb", plan.regions.primary)
        secondary = self._client("dynamodb", plan.regions.secondary)
        result = ShardResult(shard=shard, mode="table")
        pitr = _pitr(primary, asset.table)
        backups = None
        if pitr_restore_point(pitr) is None:
            backups = primary.list_backups(TableName=asset.table).get("BackupSummaries", [])
        judge_restore_point(result, asset.table, pitr, backups, now=now, objective=plan.asset_rpo(asset))
        replica = _table(secondary, asset.replica_table_name)
        replica_pitr = None
        if replica is not None:
            replica_pitr = _pitr(secondary, asset.replica_table_name).get("PointInTimeRecoveryStatus")
        judge_replica(result, asset.replica_table_name, plan.regions.secondary, replica, replica_pitr)
        return result

    def grants(self, asset: DynamoDBAsset, plan: DRPlan) -> list[Grant]:
        tables = (
            arn("dynamodb", plan.regions.primary, f"table/{asset.table}"),
            arn("dynamodb", plan.regions.secondary, f"table/{asset.replica_table_name}"),
        )
        out: list[Grant] = []
        for table in tables:
            for action, why in (
                ("dynamodb:DescribeTable", f"verify {asset.name}: the replica table serves"),
                ("dynamodb:DescribeContinuousBackups", f"verify {asset.name}: its point-in-time recovery"),
            ):
                out.append(grant("asset-verify", action, table, why, "Tables"))
        why = f"verify {asset.name}: the newest backup when PITR is off"
        out.append(grant("asset-verify", "dynamodb:ListBackups", "*", why, "BackupsList"))
        for table in tables:
            out.append(
                grant("inspect", "dynamodb:DescribeTable", table, f"check the {asset.name} replica", "Tables")
            )
        return out

    def live_checks(self, plan: DRPlan, asset: DynamoDBAsset, reader: ResourceReader) -> list[LiveCheck]:
        return [LiveCheck(asset.name, partial(_tables, plan, reader, asset))]


def _pitr(ddb: Any, table: str) -> dict[str, Any]:
    """The table's PointInTimeRecoveryDescription ({} when there is none)."""
    found = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    return dict(found.get("PointInTimeRecoveryDescription") or {})


def _table(ddb: Any, table: str) -> dict[str, Any] | None:
    """DescribeTable's Table, None when there is no such table."""
    try:
        return dict(ddb.describe_table(TableName=table)["Table"])
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return None


def _tables(plan: DRPlan, reader: ResourceReader, asset: DynamoDBAsset) -> list[LiveFinding]:
    primary, secondary = plan.regions.primary, plan.regions.secondary
    source = reader.table(asset.table, primary)
    replica = reader.table(asset.replica_table_name, secondary) if source is not None else None
    return [tables_finding(asset, primary, secondary, source, replica)]
