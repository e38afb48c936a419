"""DynamoDB table assets: the restore point against the objective, the replica, validation (moto DynamoDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.adapters.assets.dynamodb import DynamoDBChecker
from chalicelib.adapters.resources import ResourceReader
from chalicelib.domain.assets.dynamodb import judge_replica, judge_restore_point, tables_finding
from chalicelib.models.plan import DRPlan, DynamoDBAsset
from chalicelib.models.planfile import load_plan_file
from chalicelib.models.verification import Shard, ShardResult
from tests.unit.moto_aws import ClientFor, table

ROOT = Path(__file__).resolve().parents[2]
PRIMARY, SECONDARY = "us-east-1", "us-west-2"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SHARD = Shard(index=0, asset="features", kind="dynamodb")
FIVE_MINUTES = timedelta(minutes=5)


def features(replica_table: str | None = None) -> DynamoDBAsset:
    spec: dict[str, Any] = {"name": "features", "kind": "dynamodb", "table": "fraud-features", "rpo": "5m"}
    if replica_table:
        spec["replica_table"] = replica_table
    return DynamoDBAsset.model_validate(spec)


def plan_with(asset: DynamoDBAsset) -> DRPlan:
    plan = load_plan_file(ROOT / "plans" / "fraud-scoring.yaml")
    return plan.model_copy(update={"assets": [asset]})


# -- restore points and replicas (pure) -------------------------------------------------------------------
def test_pitr_within_the_objective_is_the_restore_point() -> None:
    result = ShardResult(shard=SHARD)
    pitr = {"PointInTimeRecoveryStatus": "ENABLED", "LatestRestorableDateTime": T0}
    judge_restore_point(result, "t", pitr, None, now=T0 + timedelta(minutes=1), objective=FIVE_MINUTES)
    assert (result.findings, result.samples, result.oldest_unreplicated_at) == ([], [], T0)
    assert result.detail["pitr"] == {"status": "ENABLED", "latest_restorable": T0.isoformat()}


def test_without_pitr_the_newest_available_backup_is_the_restore_point_and_may_be_stale() -> None:
    # Given PITR off and two backups, the newer one still being created
    backups = [
        {"BackupCreationDateTime": T0, "BackupStatus": "AVAILABLE"},
        {"BackupCreationDateTime": T0 + timedelta(hours=1), "BackupStatus": "CREATING"},
    ]
    result = ShardResult(shard=SHARD)
    judge_restore_point(
        result, "t", {"PointInTimeRecoveryStatus": "DISABLED"}, backups, now=T0 + timedelta(hours=2),
        objective=FIVE_MINUTES,
    )  # fmt: skip
    # Then the available backup is the restore point: a warning, and two hours is stale against five minutes
    assert [(f.code, f.severity) for f in result.findings] == [("pitr-disabled", "warning")]
    assert [s.kind for s in result.samples] == ["stale"] and result.oldest_unreplicated_at == T0
    # And without any backup there is no restore point at all: a breach
    none = ShardResult(shard=SHARD)
    judge_restore_point(none, "t", {}, [], now=T0, objective=FIVE_MINUTES)
    assert [(f.code, f.severity) for f in none.findings] == [("pitr-disabled", "breach")]
    assert none.detail["pitr"] == {"status": "DISABLED"} and none.oldest_unreplicated_at is None


def test_a_replica_must_exist_be_active_and_keep_pitr() -> None:
    missing = ShardResult(shard=SHARD)
    judge_replica(missing, "t", SECONDARY, None, None)
    assert (missing.missing, [f.code for f in missing.findings]) == (1, ["replica-table-missing"])
    weak = ShardResult(shard=SHARD)
    judge_replica(weak, "t", SECONDARY, {"TableStatus": "UPDATING"}, "DISABLED")
    assert [f.code for f in weak.findings] == ["replica-table-not-active", "replica-pitr-disabled"]


def test_validation_wants_the_secondary_to_be_a_replica_of_a_global_table() -> None:
    asset = features()
    source = {"Replicas": [{"RegionName": "eu-west-1"}]}
    assert tables_finding(asset, PRIMARY, SECONDARY, None, None).severity == "error"
    assert (
        tables_finding(asset, PRIMARY, SECONDARY, source, None).message
        == f"no replica fraud-features in {SECONDARY}"
    )
    assert tables_finding(asset, PRIMARY, SECONDARY, source, {}).severity == "warning"
    joined = {"Replicas": [{"RegionName": SECONDARY}]}
    assert tables_finding(asset, PRIMARY, SECONDARY, joined, {}).severity == "ok"
    # A replica under another name is a table of its own: no global table to belong to
    assert tables_finding(features("copy"), PRIMARY, SECONDARY, source, {}).severity == "ok"


# -- the checker, against moto ----------------------------------------------------------------------------
def test_the_table_check_reads_the_restore_point_and_the_replica(aws: ClientFor) -> None:
    # Given the table with PITR on, and its replica without PITR
    table(aws, "fraud-features", PRIMARY)
    table(aws, "fraud-features", SECONDARY, pitr=False)
    asset = features()
    # When the shard runs a day after moto's restore point
    result = DynamoDBChecker(aws).check(
        plan_with(asset), asset, SHARD, now=datetime.now(UTC) + timedelta(days=1)
    )
    # Then the restore point is a day old (stale against 5m) and the replica's missing PITR is a warning
    assert result.detail["pitr"]["status"] == "ENABLED"
    assert [s.kind for s in result.samples] == ["stale"]
    assert [f.code for f in result.findings] == ["replica-pitr-disabled"]
    assert (result.source_objects, result.replica_objects) == (1, 1)


def test_a_missing_replica_table_is_a_breach_and_fails_validation(aws: ClientFor) -> None:
    # Given the primary table only, without PITR and without backups
    table(aws, "fraud-features", PRIMARY, pitr=False)
    asset = features()
    # When the shard runs
    result = DynamoDBChecker(aws).check(plan_with(asset), asset, SHARD, now=T0)
    # Then there is no restore point and no replica
    assert {f.code: f.severity for f in result.findings} == {
        "pitr-disabled": "breach",
        "replica-table-missing": "breach",
    }
    # And plan validation says the replica is missing
    reader = ResourceReader(lambda service, region: aws(service, region or PRIMARY))
    checks = DynamoDBChecker(aws).live_checks(plan_with(asset), asset, reader)
    assert [(f.severity, f.message) for c in checks for f in c.run()] == [
        ("error", f"no replica fraud-features in {SECONDARY}")
    ]
