"""Model registry assets, pure: does the secondary's registry name the same deployable model versions, with
the same bytes, as the primary's?

Two registries: S3 manifests (JSON objects listing versions with their SHA-256 and artifact) and SageMaker
model package groups (Approved packages, identified by their artifact's SHA-256, compared across the
regions by approval, model version, artifact location and the bytes the secondary's package would load).
The reads are in `chalicelib.adapters.assets.model_registry`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.verification import add_sample
from chalicelib.invariants import present
from chalicelib.models.live_checks import LiveFinding
from chalicelib.models.plan import S3Location
from chalicelib.models.verification import Finding, ShardResult


# -- S3 manifests -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionCheck:
    """One deployable version of a primary manifest, and what its secondary counterpart says about it."""

    name: str  # <manifest key>#<version>
    sha256: str  # what the primary registered (lower-case hex)
    problem: tuple[str, str] | None = None  # (sample kind, why) when the secondary's entry is wrong already
    artifact: tuple[str, str] | None = None  # (bucket, key) the secondary would load, to be checked


def version_checks(
    manifest_key: str, primary: dict[str, Any] | None, replica: dict[str, Any] | None
) -> list[VersionCheck]:
    """The primary manifest's deployable versions, each matched with the secondary manifest's entry."""
    theirs_by_version = {str(v.get("version")): v for v in (replica or {}).get("versions", [])}
    out: list[VersionCheck] = []
    for version in (primary or {}).get("versions", []):
        if not version.get("deployable"):
            continue
        name = f"{manifest_key}#{version.get('version')}"
        expected = str(version.get("sha256", "")).lower()
        theirs = theirs_by_version.get(str(version.get("version")))
        problem: tuple[str, str] | None = None
        if theirs is None:
            problem = ("missing", "version not in the secondary's registry")
        elif str(theirs.get("sha256", "")).lower() != expected:
            problem = ("different", "the secondary's registry names another checksum")
        elif not theirs.get("deployable"):
            problem = ("different", "not deployable in the secondary")
        if problem is not None or theirs is None:
            out.append(VersionCheck(name=name, sha256=expected, problem=problem))
            continue
        bucket, _, key = str(theirs.get("artifact", "")).removeprefix("s3://").partition("/")
        out.append(VersionCheck(name=name, sha256=expected, artifact=(bucket, key)))
    return out


def judge_artifact(
    result: ShardResult,
    check: VersionCheck,
    *,
    replica_bucket: str,
    actual: str | None,
    changed: datetime | None,
) -> None:
    """Fold what the secondary's artifact really is (`actual` SHA-256, None: missing) into the result."""
    bucket, key = present(check.artifact, f"the artifact of model {check.name}")
    if bucket != replica_bucket:
        result.findings.append(
            Finding(
                severity="breach",
                code="replica-artifact-outside-replica",
                message=f"the secondary's registry serves {check.name} from s3://{bucket}/{key}, not from "
                f"replica bucket {replica_bucket}: the secondary depends on another region",
            )
        )
    if actual is None:
        add_sample(result, "missing", check.name, f"artifact s3://{bucket}/{key} is missing", changed)
    elif actual != check.sha256:
        add_sample(
            result,
            "different",
            check.name,
            f"artifact SHA-256 {actual[:12]}... != registered {check.sha256[:12]}... "
            "(corrupt or wrong model)",
            changed,
        )
        result.findings.append(
            Finding(
                severity="breach",
                code="artifact-checksum-mismatch",
                message=f"the secondary would load different bytes for {check.name} than the primary "
                f"registered (s3://{bucket}/{key}): restore it from the primary",
            )
        )


# -- SageMaker model package groups -----------------------------------------------------------------------
def package_identity(description: dict[str, Any]) -> str | None:
    """What identifies a package's artifact: its sha256 metadata, else its first container's ModelDataETag."""
    meta = description.get("CustomerMetadataProperties") or {}
    containers = (description.get("InferenceSpecification") or {}).get("Containers") or [{}]
    ident = meta.get("sha256") or containers[0].get("ModelDataETag")
    return str(ident).lower() if ident else None


@dataclass(frozen=True)
class Package:
    """One model package of a group, as the registry verification compares it across the regions."""

    arn: str
    status: str  # ModelApprovalStatus: Approved, PendingManualApproval, Rejected
    identity: str | None  # package_identity
    version: str | None  # the model version it registers (metadata model_version, else the package version)
    artifact: tuple[str, str] | None  # (bucket, key) of its first container's ModelDataUrl
    created: datetime | None

    @property
    def label(self) -> str:
        return f"version {self.version}" if self.version else self.arn


def package(description: dict[str, Any], created: datetime | None = None) -> Package:
    """The parts of a DescribeModelPackage answer the comparison needs."""
    meta = description.get("CustomerMetadataProperties") or {}
    containers = (description.get("InferenceSpecification") or {}).get("Containers") or [{}]
    url = str(containers[0].get("ModelDataUrl") or "")
    artifact = None
    if url.startswith("s3://"):
        bucket, _, key = url.removeprefix("s3://").partition("/")
        artifact = (bucket, key)
    version = meta.get("model_version") or description.get("ModelPackageVersion")
    return Package(
        arn=str(description.get("ModelPackageArn", "")),
        status=str(description.get("ModelApprovalStatus", "")),
        identity=package_identity(description),
        version=str(version) if version is not None else None,
        artifact=artifact,
        created=created or description.get("CreationTime"),
    )


@dataclass(frozen=True)
class ReplicaOf:
    """Where a plan's model-artifacts asset replicates a primary artifact: the same key under the replica."""

    source_bucket: str
    source_prefix: str
    replica_bucket: str
    replica_prefix: str

    def of(self, bucket: str, key: str) -> tuple[str, str] | None:
        if bucket != self.source_bucket or not key.startswith(self.source_prefix):
            return None
        return self.replica_bucket, self.replica_prefix + key[len(self.source_prefix) :]


@dataclass(frozen=True)
class PackageCheck:
    """An Approved primary package, its secondary counterpart, and the artifact left to read (if any)."""

    primary: Package
    secondary: Package | None = None
    artifact: tuple[str, str] | None = None  # the secondary's artifact: its checksum is read next


def match_packages(
    result: ShardResult,
    primary: Iterable[Package],
    secondary: Iterable[Package],
    *,
    group: str,
    replicas: Iterable[ReplicaOf] = (),
) -> list[PackageCheck]:
    """Every Approved primary package needs an Approved secondary package with the same artifact identity,
    model version and artifact location (the primary's artifact as the plan's model-artifacts asset
    replicates it). What is wrong already is folded into `result`; the checks returned name the secondary
    artifacts whose bytes must still be read (`judge_package_artifact`)."""
    theirs = list(secondary)
    out: list[PackageCheck] = []
    for mine in (p for p in primary if p.status == "Approved"):
        if mine.identity is None:
            add_sample(
                result, "unverified", mine.arn, "no sha256 metadata or ModelDataETag to compare", mine.created
            )
            continue
        same = [p for p in theirs if p.identity == mine.identity]
        approved = [p for p in same if p.status == "Approved"]
        if not same:
            add_sample(
                result,
                "missing",
                mine.arn,
                f"no package with artifact {mine.identity[:16]} in the secondary's group {group}",
                mine.created,
            )
            continue
        if not approved:
            other = same[0]
            add_sample(result, "missing", mine.arn, f"{other.status} in the secondary", mine.created)
            result.findings.append(
                Finding(
                    severity="breach",
                    code="package-approved-only-in-primary",
                    message=f"{mine.label} of {group} is Approved in the primary but {other.status} in "
                    f"the secondary ({other.arn}): a failover would not deploy it there; approve it in "
                    "the secondary's registry",
                )
            )
            continue
        counterpart = next((p for p in approved if p.version == mine.version), approved[0])
        if mine.version is not None and counterpart.version != mine.version:
            add_sample(
                result,
                "different",
                mine.arn,
                f"the secondary registers this artifact as version {counterpart.version}, the primary as "
                f"{mine.version}",
                mine.created,
            )
            result.findings.append(
                Finding(
                    severity="breach",
                    code="package-version-differs",
                    message=f"{group}: the primary's Approved version {mine.version} is version "
                    f"{counterpart.version} in the secondary ({counterpart.arn})",
                )
            )
            continue
        if counterpart.artifact is None:
            add_sample(
                result, "unverified", mine.arn, "the secondary's package names no S3 model data", mine.created
            )
            continue
        expected = None
        if mine.artifact is not None:
            expected = next(
                (at for r in replicas if (at := r.of(*mine.artifact)) is not None),
                None,
            )
        if expected is not None and counterpart.artifact != expected:
            b, k = counterpart.artifact
            result.findings.append(
                Finding(
                    severity="breach",
                    code="package-artifact-elsewhere",
                    message=f"{mine.label} of {group}: the secondary's package loads s3://{b}/{k}, not "
                    f"s3://{expected[0]}/{expected[1]} where the primary's artifact is replicated: the "
                    "secondary would serve bytes replication does not keep in step",
                )
            )
        out.append(PackageCheck(primary=mine, secondary=counterpart, artifact=counterpart.artifact))
    return out


def judge_package_artifact(
    result: ShardResult, check: PackageCheck, *, group: str, actual: str | None
) -> None:
    """Fold the secondary artifact's real SHA-256 (`actual`; None: no such object) into the result."""
    bucket, key = present(check.artifact, f"the artifact of {check.primary.arn}")
    mine = check.primary
    registered = present(mine.identity, f"the identity of {mine.arn}")
    if actual is None:
        add_sample(result, "missing", mine.arn, f"artifact s3://{bucket}/{key} is missing", mine.created)
        result.findings.append(
            Finding(
                severity="breach",
                code="package-artifact-missing",
                message=f"{mine.label} of {group}: the secondary's package names s3://{bucket}/{key}, which "
                f"is not in bucket {bucket}: a failover would not find the model; replicate the artifact",
            )
        )
    elif actual != registered:
        add_sample(
            result,
            "different",
            mine.arn,
            f"artifact SHA-256 {actual[:12]}... != registered {registered[:12]}... (corrupt or wrong model)",
            mine.created,
        )
        result.findings.append(
            Finding(
                severity="breach",
                code="artifact-checksum-mismatch",
                message=f"the secondary would load different bytes for {mine.label} of {group} than the "
                f"primary registered (s3://{bucket}/{key}): restore it from the primary",
            )
        )


# -- plan validation --------------------------------------------------------------------------------------
def manifest_finding(name: str, location: S3Location, found: bool) -> LiveFinding:
    subject = f"{name}: s3://{location.bucket}/{location.prefix}"
    if found:
        return LiveFinding(subject, "ok", "registry manifest present")
    return LiveFinding(subject, "error", "no registry manifest under this prefix")


def package_group_finding(name: str, group: str, region: str, exists: bool) -> LiveFinding:
    subject = f"{name}: model package group {group} ({region})"
    return LiveFinding(subject, "ok", "exists") if exists else LiveFinding(subject, "error", "does not exist")
