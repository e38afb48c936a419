"""The deployed roles' asset statements come from what each asset kind declares (no packaging needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.models.grants import Grant
from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_file
from infra import permissions

ROOT = Path(__file__).resolve().parents[2]


def scope(*plans: DRPlan) -> permissions.Scope:
    return permissions.Scope(
        plans=plans,
        region="us-east-1",
        ledger_table_arn="ledger",
        lock_table_arn="locks",
        idempotency_table_arn="idempotency",
        plan_bucket_arn="plans",
        plan_objects_arn="plans/*",
        plan_prefix="plans/",
        evidence_bucket_arn="evidence",
        evidence_objects_arn="evidence/*",
        key_arn="key",
        topic_arns=("topic",),
        own_topic_arns=(),
    )


def example() -> DRPlan:
    return load_plan_file(ROOT / "plans" / "fraud-scoring.yaml")


def by_sid(statements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in statements}


def arns(statement: dict[str, Any]) -> list[str]:
    return [r if isinstance(r, str) else r["Fn::Sub"] for r in statement["Resource"]]


def test_verification_may_list_every_prefix_it_compares_on_a_shared_bucket() -> None:
    # Given the example plan: the model artifacts (models/) and the registry (registry/) share two buckets
    statements = by_sid(permissions.statements_for("verify_shard", scope(example())))
    # Then each of those buckets' listing allows both prefixes, the data bucket's only its own
    shared = statements["VerifyList2"]
    assert arns(shared) == ["arn:${AWS::Partition}:s3:::fraud-models-use1"]
    assert shared["Condition"] == {"StringLike": {"s3:prefix": ["models/*", "registry/*"]}}
    assert statements["VerifyList0"]["Condition"] == {"StringLike": {"s3:prefix": ["datasets/*"]}}
    # And the other asset statements join one per declared statement name
    assert [sid for sid in statements if sid.startswith("Verify") and "List" not in sid] == [
        "VerifyBuckets",
        "VerifyObjects",
        "VerifyTables",
    ]
    assert statements["VerifyTables"]["Action"] == [
        "dynamodb:DescribeContinuousBackups",
        "dynamodb:DescribeTable",
    ]


def test_each_kind_brings_its_own_statements_and_only_unscopable_reads_go_unscoped() -> None:
    # Given a plan with a whole-bucket S3 asset, a SageMaker registry and a table
    assets = [
        {"name": "raw", "kind": "s3", "source": {"bucket": "raw-use1"}, "replica": {"bucket": "raw-usw2"}},
        {"name": "registry", "kind": "model-registry", "registry": "sagemaker", "model_package_group": "G"},
        {"name": "features", "kind": "dynamodb", "table": "features"},
    ]
    plan = DRPlan.model_validate({**example().model_dump(), "assets": assets})
    verify = by_sid(permissions.statements_for("verify_shard", scope(plan)))
    # Then the whole bucket may be listed, the registry's packages described, the table read
    assert "Condition" not in verify["VerifyList0"]
    assert arns(verify["VerifyModelPackages"]) == [
        "arn:${AWS::Partition}:sagemaker:us-east-1:${AWS::AccountId}:model-package/g/*",
        "arn:${AWS::Partition}:sagemaker:us-west-2:${AWS::AccountId}:model-package/g/*",
    ]
    unscoped = {a for s in verify.values() if s["Resource"] == ["*"] for a in s["Action"]}
    assert unscoped == {"sagemaker:ListModelPackages", "dynamodb:ListBackups"}
    assert unscoped <= permissions.UNSCOPABLE_READS
    # And plan validation reads the group and the tables, and lists nothing of the S3 asset
    inspect = by_sid(permissions.statements_for("api_handler", scope(plan)))
    assert {"InspectBuckets", "InspectModelGroups", "InspectTables"} <= set(inspect)
    assert not any(sid.startswith("InspectList") for sid in inspect)


def test_a_grant_that_names_no_statement_cannot_be_rendered() -> None:
    grant = Grant(capability="asset-verify", action="s3:GetObject", resource="arn:x", why="read it")
    with pytest.raises(ValueError, match="names no statement"):
        permissions._kind_statements("Verify", [grant])  # noqa: SLF001 - the renderer's own rule
