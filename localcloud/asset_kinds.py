"""What each kind of asset is in the local cloud, created as a real account has it before Lifeboat arrives.

One provisioner per asset kind, keyed like `chalicelib.adapters.assets.CHECKERS` (a unit test keeps the two
in step): `create` makes the resources the asset names (buckets, tables) in both regions; `name_model` runs
once the stack has published the model artifact, for kinds that name it (a registry's manifests).
Replication between the regions is `localcloud/replication.py`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.models.plan import DRPlan, DynamoDBAsset, ModelRegistryAsset, S3Asset
from localcloud.server import LocalCloud

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishedModel:
    """The model artifact the stack published: one copy in each region's model-artifacts bucket."""

    name: str
    version: str
    sha256: str
    primary_bucket: str
    primary_key: str
    secondary_bucket: str
    secondary_key: str


class AssetProvisioner(Protocol):
    @property
    def kind(self) -> str: ...

    def create(self, cloud: LocalCloud, plan: DRPlan, asset: Any) -> None:
        """The asset's resources in both regions (idempotent)."""
        ...

    def name_model(self, cloud: LocalCloud, plan: DRPlan, asset: Any, model: PublishedModel) -> None:
        """After the artifact is published: make the asset name it, if the kind names models."""
        ...


def bucket(cloud: LocalCloud, name: str, region: str) -> None:
    """A versioned bucket with default encryption (what S3 replication needs on both sides)."""
    s3 = cloud.client("s3", region)
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(**kwargs)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


class S3Provisioner:
    kind = "s3"

    def create(self, cloud: LocalCloud, plan: DRPlan, asset: S3Asset) -> None:
        bucket(cloud, asset.source.bucket, plan.regions.primary)
        bucket(cloud, asset.replica.bucket, plan.regions.secondary)

    def name_model(self, cloud: LocalCloud, plan: DRPlan, asset: S3Asset, model: PublishedModel) -> None:
        """Nothing: the stack publishes the artifact into the model-artifacts asset itself."""


class ModelRegistryProvisioner:
    """S3 manifests: their buckets, then a manifest naming the published model in each region. SageMaker: the
    model package group in each region's Model Registry, then an Approved package in each naming that
    region's copy of the artifact, with its SHA-256 (what registry verification compares)."""

    kind = "model-registry"

    def create(self, cloud: LocalCloud, plan: DRPlan, asset: ModelRegistryAsset) -> None:
        if asset.model_package_group is not None:
            for region in (plan.regions.primary, plan.regions.secondary):
                sm = cloud.client("sagemaker", region)
                groups = sm.list_model_package_groups(NameContains=asset.model_package_group)
                if not any(
                    g["ModelPackageGroupName"] == asset.model_package_group
                    for g in groups.get("ModelPackageGroupSummaryList", [])
                ):
                    sm.create_model_package_group(
                        ModelPackageGroupName=asset.model_package_group,
                        ModelPackageGroupDescription=f"{plan.workload}: approved model versions",
                    )
            return
        if asset.source is None or asset.replica is None:
            return
        bucket(cloud, asset.source.bucket, plan.regions.primary)
        bucket(cloud, asset.replica.bucket, plan.regions.secondary)

    def name_model(
        self, cloud: LocalCloud, plan: DRPlan, asset: ModelRegistryAsset, model: PublishedModel
    ) -> None:
        if asset.model_package_group is not None:
            for region, bucket_name, key in (
                (plan.regions.primary, model.primary_bucket, model.primary_key),
                (plan.regions.secondary, model.secondary_bucket, model.secondary_key),
            ):
                register_package(
                    cloud.client("sagemaker", region),
                    asset.model_package_group,
                    model,
                    f"s3://{bucket_name}/{key}",
                )
            return
        if asset.source is None or asset.replica is None:
            return
        for loc, region, bucket_name, key in (
            (asset.source, plan.regions.primary, model.primary_bucket, model.primary_key),
            (asset.replica, plan.regions.secondary, model.secondary_bucket, model.secondary_key),
        ):
            manifest = {
                "model": model.name,
                "versions": [
                    {
                        "version": model.version,
                        "artifact": f"s3://{bucket_name}/{key}",
                        "sha256": model.sha256,
                        "deployable": True,
                    }
                ],
            }
            cloud.client("s3", region).put_object(
                Bucket=loc.bucket,
                Key=f"{loc.prefix}{model.name}.json",
                Body=json.dumps(manifest, indent=2).encode(),
                ContentType="application/json",
            )


PACKAGE_IMAGE = "lifeboat/model-server:local"


def register_package(
    sm: Any, group: str, model: PublishedModel, artifact_url: str, *, status: str = "Approved"
) -> str:
    """An Approved package of `group` naming `artifact_url` with the model's version and SHA-256, unless the
    group already has one for this version (idempotent); its ARN."""
    pages = sm.list_model_packages(ModelPackageGroupName=group).get("ModelPackageSummaryList", [])
    for summary in pages:
        described = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if (described.get("CustomerMetadataProperties") or {}).get("model_version") == model.version:
            return str(summary["ModelPackageArn"])
    return str(
        sm.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=f"{model.name} {model.version}",
            InferenceSpecification={
                "Containers": [{"Image": PACKAGE_IMAGE, "ModelDataUrl": artifact_url}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus=status,
            CustomerMetadataProperties={"sha256": model.sha256, "model_version": model.version},
        )["ModelPackageArn"]
    )


class DynamoDBProvisioner:
    """A table in each region, with point-in-time recovery on (moto has no global tables: two tables)."""

    kind = "dynamodb"

    def create(self, cloud: LocalCloud, plan: DRPlan, asset: DynamoDBAsset) -> None:
        for name, region in (
            (asset.table, plan.regions.primary),
            (asset.replica_table_name, plan.regions.secondary),
        ):
            ddb = cloud.client("dynamodb", region)
            with contextlib.suppress(ddb.exceptions.ResourceInUseException):
                ddb.create_table(
                    TableName=name,
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )

    def name_model(
        self, cloud: LocalCloud, plan: DRPlan, asset: DynamoDBAsset, model: PublishedModel
    ) -> None:
        """Nothing: a table names no model."""


PROVISIONERS: dict[str, AssetProvisioner] = {
    p.kind: p for p in (S3Provisioner(), ModelRegistryProvisioner(), DynamoDBProvisioner())
}
"""Asset kind -> how the local cloud creates it."""

NOT_PROVISIONED: dict[str, str] = {}
"""Asset kinds the local cloud leaves out, each with the reason (plans naming one run without it)."""


def provision_assets(cloud: LocalCloud, plan: DRPlan) -> None:
    """Create what each of the plan's assets names."""
    for asset in plan.assets:
        provisioner = PROVISIONERS.get(asset.kind)
        if provisioner is None:
            reason = NOT_PROVISIONED.get(asset.kind, "no provisioner")
            log.warning("asset %s (%s) is not provisioned locally: %s", asset.name, asset.kind, reason)
            continue
        provisioner.create(cloud, plan, asset)


def name_model(cloud: LocalCloud, plan: DRPlan, model: PublishedModel) -> None:
    """Let each asset that names models (registries) name the published one."""
    for asset in plan.assets:
        provisioner = PROVISIONERS.get(asset.kind)
        if provisioner is not None:
            provisioner.name_model(cloud, plan, asset, model)
