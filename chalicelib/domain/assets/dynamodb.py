"""DynamoDB table assets, pure: how old is the newest restore point, and is the replica there to serve?

The table descriptions come from `chalicelib.adapters.assets.dynamodb`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib.models.live_checks import LiveFinding
from chalicelib.models.plan import DynamoDBAsset
from chalicelib.models.verification import Finding, ObjectSample, ShardResult


def pitr_restore_point(pitr: dict[str, Any]) -> datetime | None:
    """The latest restorable time of a PointInTimeRecoveryDescription, None when PITR is not on."""
    if pitr.get("PointInTimeRecoveryStatus") == "ENABLED" and pitr.get("LatestRestorableDateTime"):
        return pitr["LatestRestorableDateTime"]  # type: ignore[no-any-return]
    return None


def judge_restore_point(
    result: ShardResult,
    table: str,
    pitr: dict[str, Any],
    backups: list[dict[str, Any]] | None,
    *,
    now: datetime,
    objective: timedelta,
) -> None:
    """PITR on and its latest restorable time within the objective, or else the newest available on-demand
    backup (`backups`: the table's BackupSummaries, read only when PITR is off) as the restore point."""
    restore_point = pitr_restore_point(pitr)
    if restore_point is not None:
        result.detail["pitr"] = {"status": "ENABLED", "latest_restorable": restore_point.isoformat()}
    else:
        times = [b["BackupCreationDateTime"] for b in backups or [] if b.get("BackupStatus") == "AVAILABLE"]
        result.detail["pitr"] = {"status": pitr.get("PointInTimeRecoveryStatus", "DISABLED")}
        if times:
            restore_point = max(times)
            result.detail["latest_backup"] = restore_point.isoformat()
            result.findings.append(
                Finding(
                    severity="warning",
                    code="pitr-disabled",
                    message=f"point-in-time recovery is off on {table}; the newest on-demand backup "
                    f"({restore_point:%Y-%m-%d %H:%M} UTC) is the restore point",
                )
            )
        else:
            result.findings.append(
                Finding(
                    severity="breach",
                    code="pitr-disabled",
                    message=f"point-in-time recovery is off on {table} and it has no backup: there "
                    "is no restore point at all. Enable PITR",
                )
            )
    result.source_objects = 1
    if restore_point is None:
        return
    result.oldest_unreplicated_at = restore_point
    result.oldest_unreplicated_key = table
    if now - restore_point > objective:
        result.samples.append(
            ObjectSample(
                kind="stale",
                key=table,
                why=f"latest restore point is {now - restore_point} old (objective {objective})",
                source_last_modified=restore_point,
            )
        )


def judge_replica(
    result: ShardResult,
    table: str,
    region: str,
    description: dict[str, Any] | None,
    pitr_status: str | None,
) -> None:
    """The replica table must exist (`description` None: it does not), be ACTIVE, and have PITR on too."""
    if description is None:
        result.missing += 1
        result.findings.append(
            Finding(
                severity="breach",
                code="replica-table-missing",
                message=f"replica table {table} does not exist in {region}",
            )
        )
        return
    result.replica_objects = 1
    if description.get("TableStatus") != "ACTIVE":
        result.findings.append(
            Finding(
                severity="warning",
                code="replica-table-not-active",
                message=f"replica table {table} is {description.get('TableStatus')}",
            )
        )
    if pitr_status != "ENABLED":
        result.findings.append(
            Finding(
                severity="warning",
                code="replica-pitr-disabled",
                message=f"PITR is off on replica table {table}: after a failover the "
                "table serving traffic has no point-in-time recovery",
            )
        )


def tables_finding(
    asset: DynamoDBAsset,
    primary: str,
    secondary: str,
    source: dict[str, Any] | None,
    replica: dict[str, Any] | None,
) -> LiveFinding:
    """Plan validation: the table exists in the primary, its replica in the secondary, and (same name) the
    secondary is a replica of the global table."""
    subject = f"{asset.name}: table {asset.table}"
    if source is None:
        return LiveFinding(subject, "error", f"table {asset.table} does not exist in {primary}")
    if replica is None:
        return LiveFinding(subject, "error", f"no replica {asset.replica_table_name} in {secondary}")
    regions = {r.get("RegionName") for r in source.get("Replicas", [])}
    if asset.replica_table_name == asset.table and secondary not in regions:
        message = f"exists in both regions but {secondary} is not a replica of the global table"
        return LiveFinding(subject, "warning", message)
    return LiveFinding(subject, "ok", f"exists in {primary} and {secondary}")
