"""The local cloud creates every kind of asset a plan may name (moto in-process, no local cloud server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.adapters.assets import CHECKERS
from chalicelib.models.planfile import load_plan_file
from localcloud.asset_kinds import NOT_PROVISIONED, PROVISIONERS, PublishedModel, name_model, provision_assets
from tests.unit.moto_aws import ClientFor

ROOT = Path(__file__).resolve().parents[2]
PRIMARY, SECONDARY = "us-east-1", "us-west-2"


class Cloud:
    """What a provisioner uses of the LocalCloud: its clients."""

    def __init__(self, aws: ClientFor) -> None:
        self._aws = aws

    def client(self, service: str, region: str | None = None) -> Any:
        return self._aws(service, region or PRIMARY)


def test_every_asset_kind_is_provisioned_locally_or_says_why_not() -> None:
    assert set(PROVISIONERS) | set(NOT_PROVISIONED) == set(CHECKERS)
    assert not set(PROVISIONERS) & set(NOT_PROVISIONED)
    assert all(reason.strip() for reason in NOT_PROVISIONED.values())


def test_the_example_plans_assets_exist_in_both_regions_and_the_registry_names_the_model(
    aws: ClientFor,
) -> None:
    # Given the example plan (S3 data and model artifacts, an S3 manifest registry, a DynamoDB table)
    plan = load_plan_file(ROOT / "plans" / "fraud-scoring.yaml")
    cloud = Cloud(aws)
    # When its assets are provisioned, twice (provisioning is idempotent)
    provision_assets(cloud, plan)  # type: ignore[arg-type]
    provision_assets(cloud, plan)  # type: ignore[arg-type]
    # Then each bucket is versioned and encrypted in its region, and each table keeps PITR
    for name, region in (("fraud-data-use1", PRIMARY), ("fraud-models-usw2", SECONDARY)):
        s3 = aws("s3", region)
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
        assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] in (None, region)
        assert s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    for region in (PRIMARY, SECONDARY):
        pitr = aws("dynamodb", region).describe_continuous_backups(TableName="fraud-features")
        status = pitr["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
            "PointInTimeRecoveryStatus"
        ]
        assert status == "ENABLED"
    # When a model is published, the registry's manifests name it, each region its own copy
    model = PublishedModel(
        name="fraud",
        version="3",
        sha256="ab" * 32,
        primary_bucket="fraud-models-use1",
        primary_key="models/fraud/3/model.json",
        secondary_bucket="fraud-models-usw2",
        secondary_key="models/fraud/3/model.json",
    )
    name_model(cloud, plan, model)  # type: ignore[arg-type]
    for bucket, region in (("fraud-models-use1", PRIMARY), ("fraud-models-usw2", SECONDARY)):
        body = aws("s3", region).get_object(Bucket=bucket, Key="registry/fraud.json")["Body"].read()
        assert json.loads(body)["versions"] == [
            {"version": "3", "artifact": f"s3://{bucket}/models/fraud/3/model.json", "sha256": "ab" * 32,
             "deployable": True}
        ]  # fmt: skip


def test_the_sagemaker_plans_registry_holds_one_approved_package_per_region_naming_its_copy(
    aws: ClientFor,
) -> None:
    # Given the SageMaker example plan (a SageMaker model package group as its registry)
    plan = load_plan_file(ROOT / "plans" / "fraud-scoring-sagemaker.yaml")
    cloud = Cloud(aws)
    model = PublishedModel(
        name="fraud",
        version="3",
        sha256="cd" * 32,
        primary_bucket="fraud-sm-models-use1",
        primary_key="models/fraud/3/model.json",
        secondary_bucket="fraud-sm-models-usw2",
        secondary_key="models/fraud/3/model.json",
    )
    # When its assets are provisioned and the model published, twice (both are idempotent)
    for _ in range(2):
        provision_assets(cloud, plan)  # type: ignore[arg-type]
        name_model(cloud, plan, model)  # type: ignore[arg-type]
    # Then each region's group holds one Approved package naming that region's copy, with its checksum
    for bucket, region in (("fraud-sm-models-use1", PRIMARY), ("fraud-sm-models-usw2", SECONDARY)):
        sm = aws("sagemaker", region)
        assert sm.describe_model_package_group(ModelPackageGroupName="fraud-scorer")
        [summary] = sm.list_model_packages(ModelPackageGroupName="fraud-scorer")["ModelPackageSummaryList"]
        package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        assert package["ModelApprovalStatus"] == "Approved"
        container = package["InferenceSpecification"]["Containers"][0]
        assert container["ModelDataUrl"] == f"s3://{bucket}/models/fraud/3/model.json"
        assert package["CustomerMetadataProperties"] == {"sha256": "cd" * 32, "model_version": "3"}
