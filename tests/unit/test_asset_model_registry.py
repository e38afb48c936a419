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


# -- SageMaker package groups (moto SageMaker and S3) --------------------------------------------------------
MODEL_KEY = "models/fraud/3/model.json"
BODY = b'{"model": "fraud", "version": "3"}'
SHA = hashlib.sha256(BODY).hexdigest()


def sagemaker_plan(asset: ModelRegistryAsset) -> DRPlan:
    """The SageMaker example plan: model artifacts fraud-sm-models-use1/models/ -> fraud-sm-models-usw2/."""
    plan = load_plan_file(ROOT / "plans" / "fraud-scoring-sagemaker.yaml")
    models = [a for a in plan.assets if a.kind == "s3" and getattr(a, "role", "") == "model-artifacts"]
    return plan.model_copy(update={"assets": [*models, asset]})


def register(
    aws: ClientFor,
    region: str,
    *,
    url: str,
    status: str = "Approved",
    sha: str | None = SHA,
    version: str = "3",
) -> str:
    sm = aws("sagemaker", region)
    groups = sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
    if not any(g["ModelPackageGroupName"] == "Scorer" for g in groups):
        sm.create_model_package_group(ModelPackageGroupName="Scorer")
    meta = {"model_version": version, **({"sha256": sha} if sha else {})}
    return str(
        sm.create_model_package(
            ModelPackageGroupName="Scorer",
            InferenceSpecification={
                "Containers": [{"Image": "scorer:3", "ModelDataUrl": url}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus=status,
            CustomerMetadataProperties=meta,
        )["ModelPackageArn"]
    )


def artifacts(aws: ClientFor, *, replica_body: bytes | None = BODY) -> None:
    bucket(aws, "fraud-sm-models-use1", PRIMARY)
    bucket(aws, "fraud-sm-models-usw2", SECONDARY)
    aws("s3", PRIMARY).put_object(Bucket="fraud-sm-models-use1", Key=MODEL_KEY, Body=BODY)
    if replica_body is not None:
        aws("s3", SECONDARY).put_object(Bucket="fraud-sm-models-usw2", Key=MODEL_KEY, Body=replica_body)


PRIMARY_URL = f"s3://fraud-sm-models-use1/{MODEL_KEY}"
REPLICA_URL = f"s3://fraud-sm-models-usw2/{MODEL_KEY}"


def verify(aws: ClientFor) -> ShardResult:
    asset = package_group()
    return ModelRegistryChecker(aws).check(sagemaker_plan(asset), asset, SHARD, now=T0)


def breaches(result: ShardResult) -> dict[str, str]:
    return {f.code: f.message for f in result.findings if f.severity == "breach"}


def test_the_same_approved_package_in_both_regions_with_its_replicated_artifact_is_green(
    aws: ClientFor,
) -> None:
    # Given version 3 Approved in both regions, each naming its region's copy, the copies identical
    artifacts(aws)
    primary = register(aws, PRIMARY, url=PRIMARY_URL)
    secondary = register(aws, SECONDARY, url=REPLICA_URL)
    # When the registry shard runs
    result = verify(aws)
    # Then nothing is missing, different or breached, and the report names what was compared
    assert (result.source_objects, result.replica_objects) == (1, 1)
    assert (result.missing, result.different, result.unverified, result.findings) == (0, 0, 0, [])
    [checked] = result.detail["registry_versions"]
    assert checked["primary"] == primary and checked["secondary"] == secondary
    assert checked["artifact"] == REPLICA_URL and checked["actual"] == SHA


def test_a_package_approved_only_in_the_primary_is_a_breach_saying_so(aws: ClientFor) -> None:
    # Given version 3 Approved in the primary, still pending approval in the secondary
    artifacts(aws)
    register(aws, PRIMARY, url=PRIMARY_URL)
    pending = register(aws, SECONDARY, url=REPLICA_URL, status="PendingManualApproval")
    # When the registry shard runs
    result = verify(aws)
    # Then it is a breach naming the version, both statuses and the secondary's package
    assert breaches(result) == {
        "package-approved-only-in-primary": f"version 3 of Scorer is Approved in the primary but "
        f"PendingManualApproval in the secondary ({pending}): a failover would not deploy it there; approve "
        "it in the secondary's registry"
    }
    assert result.missing == 1 and result.samples[0].why == "PendingManualApproval in the secondary"


def test_a_package_whose_artifact_is_not_in_the_replica_bucket_is_a_breach_naming_the_object(
    aws: ClientFor,
) -> None:
    # Given the secondary's Approved package naming the replica copy, which replication never delivered
    artifacts(aws, replica_body=None)
    register(aws, PRIMARY, url=PRIMARY_URL)
    register(aws, SECONDARY, url=REPLICA_URL)
    # When the registry shard runs
    result = verify(aws)
    # Then it is a breach naming the missing object
    assert breaches(result) == {
        "package-artifact-missing": f"version 3 of Scorer: the secondary's package names {REPLICA_URL}, "
        "which is not in bucket fraud-sm-models-usw2: a failover would not find the model; replicate the "
        "artifact"
    }
    assert result.missing == 1


def test_a_package_loading_from_another_regions_bucket_is_a_breach(aws: ClientFor) -> None:
    # Given the secondary's package loading the primary region's bucket
    artifacts(aws)
    register(aws, PRIMARY, url=PRIMARY_URL)
    register(aws, SECONDARY, url=PRIMARY_URL)
    # When the registry shard runs (moto has one S3 for both regions: the object is found)
    result = verify(aws)
    # Then the location is a breach: the secondary depends on the primary's region
    assert set(breaches(result)) == {"package-artifact-elsewhere"}
    assert f"loads {PRIMARY_URL}, not {REPLICA_URL}" in breaches(result)["package-artifact-elsewhere"]


def test_a_replica_artifact_with_other_bytes_is_a_breach(aws: ClientFor) -> None:
    # Given the secondary's package naming the replica copy, whose bytes are not the registered ones
    artifacts(aws, replica_body=b"corrupt")
    register(aws, PRIMARY, url=PRIMARY_URL)
    register(aws, SECONDARY, url=REPLICA_URL)
    # When the registry shard runs
    result = verify(aws)
    # Then it is a breach: the secondary would load another model
    assert set(breaches(result)) == {"artifact-checksum-mismatch"} and result.different == 1


def test_unreplicated_different_or_unidentifiable_versions_are_counted(aws: ClientFor) -> None:
    # Given three Approved primary versions: one not registered in the secondary at all, one registered there
    # under another version number, and one with nothing to identify its artifact
    artifacts(aws)
    register(aws, PRIMARY, url=PRIMARY_URL, sha="aa" * 32, version="1")
    register(aws, PRIMARY, url=PRIMARY_URL, version="3")
    no_identity = register(aws, PRIMARY, url=PRIMARY_URL, sha=None, version="4")
    register(aws, SECONDARY, url=REPLICA_URL, version="2")
    # When the registry shard runs
    result = verify(aws)
    # Then each is counted as what it is, the version mismatch a breach
    assert (result.source_objects, result.missing, result.different, result.unverified) == (3, 1, 1, 1)
    assert set(breaches(result)) == {"package-version-differs"}
    assert any(s.key == no_identity and s.kind == "unverified" for s in result.samples)
    assert result.oldest_unreplicated_at is not None


def test_the_registry_check_may_read_the_replicated_model_artifacts_it_checksums() -> None:
    # Given the SageMaker plan's registry and model artifacts
    asset = package_group()
    grants = ModelRegistryChecker().grants(asset, sagemaker_plan(asset))
    # Then the verification may read the replica artifacts (and nothing of the primary's bucket), and list
    # the replica bucket so that a missing artifact is a 404, not a 403
    reads = {(g.action, g.resource) for g in grants if g.action.startswith("s3:")}
    assert reads == {
        ("s3:GetObject", "arn:${AWS::Partition}:s3:::fraud-sm-models-usw2/models/*"),
        ("s3:GetObjectVersion", "arn:${AWS::Partition}:s3:::fraud-sm-models-usw2/models/*"),
        ("s3:ListBucket", "arn:${AWS::Partition}:s3:::fraud-sm-models-usw2"),
    }


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
