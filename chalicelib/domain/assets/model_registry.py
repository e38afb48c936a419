"""Model registry assets, pure: does the secondary's registry name the same deployable model versions, with
the same bytes, as the primary's?

Two registries: S3 manifests (JSON objects listing versions with their SHA-256 and artifact) and SageMaker
model package groups (approved packages, identified by their artifact). The reads are in
`chalicelib.adapters.assets.model_registry`.
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


def compare_packages(
    result: ShardResult,
    primary: Iterable[tuple[str | None, str, datetime | None]],
    secondary: set[str | None],
) -> None:
    """Every approved primary package (identity, ARN, created) needs an approved secondary package with the
    same artifact identity; one with no identity cannot be verified."""
    for ident, arn, created in primary:
        if ident is None:
            add_sample(result, "unverified", arn, "no sha256 metadata or ModelDataETag to compare", created)
        elif ident not in secondary:
            add_sample(
                result,
                "missing",
                arn,
                f"no approved package with artifact {ident[:16]} in the secondary",
                created,
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
