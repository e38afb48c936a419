"""The restore functions' roles: exactly what a point-in-time restore of the plans' S3 assets calls, scoped to
each asset's prefix and Lifeboat's restore prefix, never a version deletion (no packaging needed)."""

from __future__ import annotations

from typing import Any

from infra import permissions
from tests.infra.test_asset_permissions import arns, by_sid, example, scope


def actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in s["Action"]}


def test_the_restore_batches_may_copy_and_delete_only_inside_the_assets_and_their_restore_prefix() -> None:
    # Given the example plan (training data, model artefacts; the registry and the table are not S3 assets)
    statements = by_sid(permissions.statements_for("restore_batch", scope(example())))
    # Then the writes name each S3 asset's prefix and its restore prefix, on both sides, and nothing else
    write = statements["RestoreWrite"]
    assert write["Action"] == ["s3:DeleteObject", "s3:PutObject", "s3:PutObjectTagging"]
    assert sorted(arns(write)) == sorted(
        f"arn:${{AWS::Partition}}:s3:::{bucket}/{prefix}*"
        for bucket, asset, prefix in [
            ("fraud-data-use1", "training-data", "datasets/"),
            ("fraud-data-usw2", "training-data", "datasets/"),
            ("fraud-models-use1", "model-artifacts", "models/"),
            ("fraud-models-usw2", "model-artifacts", "models/"),
        ]
        for prefix in (prefix, f"lifeboat-restore/{asset}/")
    )
    # And the version listings are limited to those prefixes
    listing = statements["RestoreList0"]
    assert listing["Action"] == ["s3:ListBucket", "s3:ListBucketVersions"]
    assert listing["Condition"] == {
        "StringLike": {"s3:prefix": ["datasets/*", "lifeboat-restore/training-data/*"]}
    }
    # And no restore role may delete a version or touch the ledger's history
    for fn in ("restore_plan", "restore_batch", "restore_record"):
        granted = actions(permissions.statements_for(fn, scope(example())))
        assert "s3:DeleteObjectVersion" not in granted and "dynamodb:DeleteItem" not in granted, fn


def test_planning_reads_and_recording_writes_only_evidence_and_the_ledger() -> None:
    plan_fn = actions(permissions.statements_for("restore_plan", scope(example())))
    record = by_sid(permissions.statements_for("restore_record", scope(example())))
    assert "s3:ListBucketVersions" in plan_fn and "s3:GetBucketVersioning" in plan_fn
    assert set(record) == {"EvidenceWrite", "LedgerWrite"}


def test_the_restore_test_may_delete_versions_only_in_its_scratch_prefixes() -> None:
    statements = by_sid(permissions.statements_for("restore_test_scheduled", scope(example())))
    cleanup = statements["RestoreTestCleanup"]
    assert cleanup["Action"] == ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    assert arns(cleanup) == [
        "arn:${AWS::Partition}:s3:::fraud-data-use1/lifeboat-restore/training-data/test-*",
        "arn:${AWS::Partition}:s3:::fraud-models-use1/lifeboat-restore/model-artifacts/test-*",
    ]
    # And no other statement of any role deletes a version
    for fn in permissions.FUNCTIONS:
        for statement in permissions.statements_for(fn, scope(example())):
            if "s3:DeleteObjectVersion" in statement["Action"] and statement["Sid"] != "RestoreTestCleanup":
                assert statement["Sid"] == "DrillWrites", (fn, statement["Sid"])  # the drill's own writes
