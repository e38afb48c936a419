"""Model registry assets: the registry of model versions must name the same approved versions in both regions.

Two registries: S3 manifests (JSON objects, replicated like any S3 object; the artifact each names in the
secondary is checksummed) and SageMaker model package groups (Approved packages compared by artifact
identity, model version and artifact location; the artifact the secondary's package names is checksummed).
One shard per asset (`model-registry`); verdicts are in `chalicelib.domain.assets.model_registry`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import Any

from chalicelib.adapters.assets.base import (
    ClientFor,
    ShardPlan,
    factory_client,
    grant,
    replicated_objects_grants,
    s3_list_grant,
)
from chalicelib.adapters.resources import ResourceReader
from chalicelib.adapters.s3objects import get_json, iter_objects, object_sha256
from chalicelib.domain.assets.model_registry import (
    Package,
    ReplicaOf,
    judge_artifact,
    judge_package_artifact,
    manifest_finding,
    match_packages,
    package,
    package_group_finding,
    version_checks,
)
from chalicelib.domain.verification import add_sample
from chalicelib.invariants import present
from chalicelib.models.grants import Grant, arn, s3_arn
from chalicelib.models.live_checks import LiveCheck, LiveFinding
from chalicelib.models.plan import DRPlan, ModelRegistryAsset, S3Asset, S3Location
from chalicelib.models.verification import Shard, ShardResult


class ModelRegistryChecker:
    kind = "model-registry"
    checks = ("model-registry",)

    def __init__(self, client: ClientFor | None = None) -> None:
        self._client = client or factory_client

    def plan(self, plan: DRPlan, asset: ModelRegistryAsset) -> ShardPlan:
        return ShardPlan(shards=[{"kind": "model-registry"}])

    def check(self, plan: DRPlan, asset: ModelRegistryAsset, shard: Shard, *, now: datetime) -> ShardResult:
        if shard.kind != "model-registry":
            raise ValueError(f"a model-registry asset has no {shard.kind!r} shards")
        if asset.registry == "s3-manifest":
            return self._check_manifests(plan, asset, shard)
        return self._check_model_packages(plan, asset, shard)

    def _check_manifests(self, plan: DRPlan, asset: ModelRegistryAsset, shard: Shard) -> ShardResult:
        """Every deployable version in the primary's manifests exists in the secondary's, with the same
        SHA-256, and the artifact the secondary's manifest names really has those bytes."""
        source_at = present(asset.source, f"the source manifest location of {asset.name}")
        replica_at = present(asset.replica, f"the replica manifest location of {asset.name}")
        src_s3 = self._client("s3", plan.regions.primary)
        rep_s3 = self._client("s3", plan.regions.secondary)
        result = ShardResult(shard=shard, mode="registry")
        checked: list[dict[str, Any]] = []
        for manifest in iter_objects(src_s3, source_at.bucket, source_at.prefix):
            if not manifest.key.endswith(".json"):
                continue
            primary = get_json(src_s3, source_at.bucket, source_at.prefix + manifest.key)
            replica = get_json(rep_s3, replica_at.bucket, replica_at.prefix + manifest.key)
            result.replica_objects += 0 if replica is None else 1
            for version in version_checks(manifest.key, primary, replica):
                result.source_objects += 1
                entry: dict[str, Any] = {"model": version.name, "sha256": version.sha256}
                checked.append(entry)
                if version.artifact is None:
                    kind, why = present(version.problem, f"why model {version.name} has no artifact")
                    add_sample(result, kind, version.name, why, manifest.last_modified)
                    continue
                bucket, key = version.artifact
                actual, how = object_sha256(rep_s3, bucket, key)
                entry.update(artifact=f"s3://{bucket}/{key}", actual=actual, verified_by=how)
                judge_artifact(
                    result,
                    version,
                    replica_bucket=replica_at.bucket,
                    actual=actual,
                    changed=manifest.last_modified,
                )
        result.detail = {"registry_versions": checked}
        return result

    def _check_model_packages(self, plan: DRPlan, asset: ModelRegistryAsset, shard: Shard) -> ShardResult:
        """SageMaker: every Approved package in the primary's group has an Approved counterpart in the
        secondary's with the same artifact identity (CustomerMetadataProperties sha256, else the container's
        ModelDataETag) and model version, loading the primary's artifact as the plan's model-artifacts asset
        replicates it, and that object really has the registered bytes."""
        group = present(asset.model_package_group, f"the model package group of {asset.name}")
        result = ShardResult(shard=shard, mode="registry")
        primary = [p for p in _packages(self._client("sagemaker", plan.regions.primary), group)]
        secondary = list(_packages(self._client("sagemaker", plan.regions.secondary), group))
        result.source_objects = sum(1 for p in primary if p.status == "Approved")
        result.replica_objects = sum(1 for p in secondary if p.status == "Approved")
        checks = match_packages(result, primary, secondary, group=group, replicas=_replicas(plan))
        rep_s3 = self._client("s3", plan.regions.secondary)
        checked: list[dict[str, Any]] = []
        for check in checks:
            bucket, key = present(check.artifact, f"the artifact of {check.primary.arn}")
            actual, how = object_sha256(rep_s3, bucket, key)
            judge_package_artifact(result, check, group=group, actual=actual)
            checked.append(
                {
                    "model": check.primary.label,
                    "sha256": check.primary.identity,
                    "primary": check.primary.arn,
                    "secondary": present(check.secondary, "the counterpart").arn,
                    "artifact": f"s3://{bucket}/{key}",
                    "actual": actual,
                    "verified_by": how,
                }
            )
        result.detail = {"registry_versions": checked}
        return result

    def grants(self, asset: ModelRegistryAsset, plan: DRPlan) -> list[Grant]:
        if asset.source is not None and asset.replica is not None:
            out = replicated_objects_grants(asset.name, asset.source, asset.replica)
            for loc in (asset.source, asset.replica):
                out.append(s3_list_grant(loc, "inspect", f"validate {asset.name}: find its manifest"))
            return out
        # SageMaker ARNs carry names in lower case
        group = present(asset.model_package_group, f"the model package group of {asset.name}").lower()
        regions = (plan.regions.primary, plan.regions.secondary)
        why = f"verify {asset.name}: compare the approved model versions"
        out = [grant("asset-verify", "sagemaker:ListModelPackages", "*", why, "ModelPackagesList")]
        for region in regions:
            packages = arn("sagemaker", region, f"model-package/{group}/*")
            out.append(
                grant("asset-verify", "sagemaker:DescribeModelPackage", packages, why, "ModelPackages")
            )
        for region in regions:
            resource = arn("sagemaker", region, f"model-package-group/{group}")
            why = f"validate {asset.name}: the model package group exists"
            out.append(grant("inspect", "sagemaker:DescribeModelPackageGroup", resource, why, "ModelGroups"))
        # The bytes the secondary's packages would load: the replicas of the plan's model artifacts.
        why = f"verify {asset.name}: checksum the artifact the secondary's package loads"
        for replica in _replicas(plan):
            objects = s3_arn(replica.replica_bucket, f"{replica.replica_prefix}*")
            for action in ("s3:GetObject", "s3:GetObjectVersion"):
                out.append(grant("asset-verify", action, objects, why, "ModelArtifacts"))
            # S3 answers a missing object 404 (not 403) only to a caller that may list the bucket, and a
            # HeadObject carries no s3:prefix to limit that grant with
            why_list = f"{why}: tell a missing artifact (404) from a denied read (403)"
            bucket_arn = s3_arn(replica.replica_bucket)
            out.append(grant("asset-verify", "s3:ListBucket", bucket_arn, why_list, "ModelArtifacts"))
        return out

    def live_checks(self, plan: DRPlan, asset: ModelRegistryAsset, reader: ResourceReader) -> list[LiveCheck]:
        primary, secondary = plan.regions.primary, plan.regions.secondary
        if asset.source is not None and asset.replica is not None:
            return [
                LiveCheck(asset.name, partial(_manifest, reader, asset.name, loc, region))
                for loc, region in ((asset.source, primary), (asset.replica, secondary))
            ]
        group = present(asset.model_package_group, f"the model package group of {asset.name}")
        return [
            LiveCheck(asset.name, partial(_package_group, reader, asset.name, group, region))
            for region in (primary, secondary)
        ]


def _packages(sm: Any, group: str) -> Iterator[Package]:
    """Every package of the group (any approval status), described."""
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group}
    while True:
        page = sm.list_model_packages(**kwargs)
        for summary in page.get("ModelPackageSummaryList", []):
            arn_ = summary["ModelPackageArn"]
            described = sm.describe_model_package(ModelPackageName=arn_)
            yield package({"ModelPackageArn": arn_, **described}, summary.get("CreationTime"))
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def _replicas(plan: DRPlan) -> list[ReplicaOf]:
    """Where the plan replicates model artifacts (its S3 assets of role model-artifacts)."""
    return [
        ReplicaOf(a.source.bucket, a.source.prefix, a.replica.bucket, a.replica.prefix)
        for a in plan.assets
        if isinstance(a, S3Asset) and a.role == "model-artifacts"
    ]


def _manifest(reader: ResourceReader, name: str, loc: S3Location, region: str) -> list[LiveFinding]:
    return [manifest_finding(name, loc, bool(reader.keys(loc.bucket, loc.prefix, region, limit=5)))]


def _package_group(reader: ResourceReader, name: str, group: str, region: str) -> list[LiveFinding]:
    return [package_group_finding(name, group, region, reader.model_package_group(group, region) is not None)]
