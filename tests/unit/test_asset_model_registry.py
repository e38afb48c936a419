"""Model registry assets: S3 manifests and SageMaker package groups, judged and checked (moto S3, a fake
SageMaker)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.adapters.assets.model_registry import ModelRegistryChecker
from chalicelib.adapters.resources import ResourceReader
from chalicelib.domain.assets.model_registry import VersionCheck, judge_artifact, version_checks
from chalicelib.models.plan import DRPlan, ModelRegistryAsset
from chalicelib.models.planfile import load_plan_file
from chalicelib.models.verification import Shard, ShardResult
from tests.unit.moto_aws import ClientFor, bucket

ROOT = Path(__file__).resolve().parents[2]
PRIMARY, SECONDARY = "us-east-1", "us-west-2"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SHARD = Shard(index=0, asset="fraud-model", kind="model-registry")


def manifests() -> ModelRegistryAsset:
    return ModelRegistryAsset.model_validate(
        {
            "name": "fraud-model",
            "kind": "model-registry",
            "registry": "s3-manifest",
            "source": {"bucket": "models-use1", "prefix": "registry/"},
            "replica": {"bucket": "models-usw2", "prefix": "registry/"},
        }
    )


def package_group() -> ModelRegistryAsset:
    return ModelRegistryAsset.model_validate(
        {
            "name": "fraud-model",
            "kind": "model-registry",
            "registry": "sagemaker",
            "model_package_group": "Scorer",
        }
    )


def plan_with(asset: ModelRegistryAsset) -> DRPlan:
    plan = load_plan_file(ROOT / "plans" / "fraud-scoring.yaml")
    return plan.model_copy(update={"assets": [asset]})


def version(v: str, sha: str, *, deployable: bool = True, artifact: str = "") -> dict[str, Any]:
    return {"version": v, "sha256": sha, "deployable": deployable, "artifact": artifact}


# -- manifests (pure) -------------------------------------------------------------------------------------
def test_each_deployable_version_is_matched_with_the_secondarys_entry() -> None:
    # Given a primary manifest of five versions and the secondary's, which has three of them
    primary = {
        "versions": [
            version("1", "AA"),
            version("2", "bb"),
            version("3", "cc"),
            version("4", "dd"),
            version("5", "ee", deployable=False),
        ]
    }
    replica = {
        "versions": [
            version("1", "aa", artifact="s3://models-usw2/m/1/model.json"),
            version("2", "other"),
            version("3", "cc", deployable=False),
        ]
    }
    # When they are matched
    checks = version_checks("fraud.json", primary, replica)
    # Then a version with the same checksum is an artifact to check; the others say what is wrong
    assert checks == [
        VersionCheck(name="fraud.json#1", sha256="aa", artifact=("models-usw2", "m/1/model.json")),
        VersionCheck(
            "fraud.json#2", "bb", problem=("different", "the secondary's registry names another checksum")
        ),
        VersionCheck("fraud.json#3", "cc", problem=("different", "not deployable in the secondary")),
        VersionCheck("fraud.json#4", "dd", problem=("missing", "version not in the secondary's registry")),
    ]
    # And a manifest the secondary does not have leaves every version missing
    assert [c.problem for c in version_checks("fraud.json", primary, None)][0] == (
        "missing",
        "version not in the secondary's registry",
    )


def test_an_artifact_with_other_bytes_or_in_another_region_is_a_breach() -> None:
    check = VersionCheck(name="m#1", sha256="a" * 64, artifact=("models-use1", "m/1/model.json"))
    # When the secondary's registry serves it from the primary's bucket, with other bytes
    result = ShardResult(shard=SHARD)
    judge_artifact(result, check, replica_bucket="models-usw2", actual="b" * 64, changed=T0)
    # Then both are breaches and the version counts as different since T0
    assert [f.code for f in result.findings] == [
        "replica-artifact-outside-replica",
        "artifact-checksum-mismatch",
    ]
    assert (result.different, result.oldest_unreplicated_at) == (1, T0)
    # When the artifact is missing, it is missing; when it matches, nothing is found
    gone = ShardResult(shard=SHARD)
    judge_artifact(gone, check, replica_bucket="models-use1", actual=None, changed=T0)
    assert (gone.missing, gone.findings) == (1, [])
    fine = ShardResult(shard=SHARD)
    judge_artifact(fine, check, replica_bucket="models-use1", actual="a" * 64, changed=T0)
    assert (fine.mismatches, fine.findings, fine.samples) == (0, [], [])


# -- manifests, against moto S3 ---------------------------------------------------------------------------
def test_the_manifest_check_reads_the_artifact_the_secondary_would_load(aws: ClientFor) -> None:
    # Given manifests naming two versions, the secondary's artifact of the second corrupted
    good, bad = b'{"w": [1]}', b'{"w": [2]}'
    sha = {v: hashlib.sha256(body).hexdigest() for v, body in (("1", good), ("2", bad))}
    bucket(aws, "models-use1", PRIMARY)
    bucket(aws, "models-usw2", SECONDARY)
    rep = aws("s3", SECONDARY)
    rep.put_object(Bucket="models-usw2", Key="m/1/model.json", Body=good)
    rep.put_object(Bucket="models-usw2", Key="m/2/model.json", Body=b"corrupt")
    versions = [version(v, sha[v], artifact=f"s3://models-usw2/m/{v}/model.json") for v in ("1", "2")]
    for s3, name in ((aws("s3", PRIMARY), "models-use1"), (rep, "models-usw2")):
        s3.put_object(
            Bucket=name, Key="registry/fraud.json", Body=json.dumps({"versions": versions}).encode()
        )
        s3.put_object(Bucket=name, Key="registry/README.txt", Body=b"not a manifest")
    asset = manifests()
    # When the registry shard runs
    result = ModelRegistryChecker(aws).check(plan_with(asset), asset, SHARD, now=T0)
    # Then both versions were checked against the bytes, and the corrupt one is a breach
    assert (result.source_objects, result.replica_objects, result.different) == (2, 1, 1)
    assert [(v["model"], v["verified_by"]) for v in result.detail["registry_versions"]] == [
        ("fraud.json#1", "read"),
        ("fraud.json#2", "read"),
    ]
    assert [f.code for f in result.findings] == ["artifact-checksum-mismatch"]


def test_manifest_validation_looks_for_a_manifest_in_each_region(aws: ClientFor) -> None:
    # Given the primary's manifest and an empty secondary prefix
    bucket(aws, "models-use1", PRIMARY)
    bucket(aws, "models-usw2", SECONDARY)
    aws("s3", PRIMARY).put_object(Bucket="models-use1", Key="registry/fraud.json", Body=b"{}")
    asset = manifests()
    reader = ResourceReader(lambda service, region: aws(service, region or PRIMARY))
    # When the asset's live checks run
    checks = ModelRegistryChecker(aws).live_checks(plan_with(asset), asset, reader)
    # Then the secondary's missing manifest is an error
    assert [(f.subject, f.severity) for c in checks for f in c.run()] == [
        ("fraud-model: s3://models-use1/registry/", "ok"),
        ("fraud-model: s3://models-usw2/registry/", "error"),
    ]


# -- SageMaker package groups -----------------------------------------------------------------------------
class FakeSageMaker:
    """Approved model packages of one group, as list_model_packages/describe_model_package return them."""

    def __init__(self, packages: dict[str, dict[str, Any]]) -> None:
        self.packages = packages

    def list_model_packages(self, **kwargs: object) -> dict[str, Any]:
        assert kwargs["ModelApprovalStatus"] == "Approved"
        return {
            "ModelPackageSummaryList": [{"ModelPackageArn": arn, "CreationTime": T0} for arn in self.packages]
        }

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        return self.packages[ModelPackageName]


def test_sagemaker_registry_versions_are_matched_by_artifact_identity() -> None:
    # Given three approved versions in the primary: one replicated, one not, one without any identity
    primary = FakeSageMaker(
        {
            "arn:p/1": {"CustomerMetadataProperties": {"sha256": "AA"}},
            "arn:p/2": {"InferenceSpecification": {"Containers": [{"ModelDataETag": "bb"}]}},
            "arn:p/3": {},
        }
    )
    secondary = FakeSageMaker({"arn:s/1": {"CustomerMetadataProperties": {"sha256": "aa"}}})
    checker = ModelRegistryChecker(lambda service, region: primary if region == PRIMARY else secondary)
    asset = package_group()
    # When the registry shard runs
    result = checker.check(plan_with(asset), asset, SHARD, now=T0)
    # Then the unreplicated version is missing, the one with nothing to compare is unverified
    assert (result.source_objects, result.missing, result.unverified) == (3, 1, 1)
    assert {s.key: s.kind for s in result.samples} == {"arn:p/2": "missing", "arn:p/3": "unverified"}
    assert result.oldest_unreplicated_at == T0


def test_a_package_group_missing_in_one_region_fails_validation(aws: ClientFor) -> None:
    # Given the group in the primary region only
    aws("sagemaker", PRIMARY).create_model_package_group(ModelPackageGroupName="Scorer")
    asset = package_group()
    reader = ResourceReader(lambda service, region: aws(service, region or PRIMARY))
    # Then validation finds it in one region and not the other
    checks = ModelRegistryChecker(aws).live_checks(plan_with(asset), asset, reader)
    assert [(f.subject, f.severity) for c in checks for f in c.run()] == [
        ("fraud-model: model package group Scorer (us-east-1)", "ok"),
        ("fraud-model: model package group Scorer (us-west-2)", "error"),
    ]


def test_a_package_group_is_granted_by_its_lower_case_arn_in_both_regions() -> None:
    grants = ModelRegistryChecker().grants(package_group(), plan_with(package_group()))
    described = {g.resource for g in grants if g.action == "sagemaker:DescribeModelPackage"}
    assert described == {
        "arn:${AWS::Partition}:sagemaker:us-east-1:${AWS::AccountId}:model-package/scorer/*",
        "arn:${AWS::Partition}:sagemaker:us-west-2:${AWS::AccountId}:model-package/scorer/*",
    }
    # And listing packages, which IAM only grants on "*", is the one unscoped action
    assert {g.action for g in grants if g.resource == "*"} == {"sagemaker:ListModelPackages"}
