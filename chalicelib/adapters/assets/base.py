"""The AssetChecker protocol: what one kind of asset (the plan's `assets[].kind`) provides to Lifeboat.

A kind's checker plans its verification shards, runs one shard (the AWS reads; the verdicts are in
`chalicelib.domain.assets.<kind>`), declares the IAM it needs (`grants`), and checks a plan's asset against
the live resources (plan validation). Clients come from a `(service, region) -> client` function, the
factory by default, asked on each use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import error_code
from chalicelib.adapters.resources import ResourceReader
from chalicelib.models.grants import Capability, Grant, s3_arn
from chalicelib.models.live_checks import LiveCheck
from chalicelib.models.plan import DRPlan, S3Location
from chalicelib.models.verification import Shard, ShardResult

ClientFor = Callable[[str, str], Any]
"""(service, region) -> boto3 client."""

A = TypeVar("A", contravariant=True)


def factory_client(service: str, region: str) -> Any:
    """The client factory's client (looked up on each call, so a reset or a test's fake reaches it)."""
    return aws.client(service, region)


def describe_error(exc: BaseException) -> str:
    """'<AWS error code or exception class>: <message>', for reports and shard reasons."""
    code = error_code(exc) if isinstance(exc, Exception) else ""
    return f"{code or type(exc).__name__}: {exc}"


def grant(capability: Capability, action: str, resource: str, why: str, sid: str) -> Grant:
    return Grant(capability=capability, action=action, resource=resource, why=why, sid=sid)


def s3_list_grant(loc: S3Location, capability: Capability, why: str) -> Grant:
    """s3:ListBucket on the location's bucket, limited to its prefix (none: the whole bucket)."""
    condition = {"StringLike": {"s3:prefix": [f"{loc.prefix}*"]}} if loc.prefix else None
    return Grant(
        capability=capability,
        action="s3:ListBucket",
        resource=s3_arn(loc.bucket),
        why=why,
        condition=condition,
    )


def s3_objects(loc: S3Location) -> str:
    """The ARN pattern of the objects under a location."""
    return s3_arn(loc.bucket, f"{loc.prefix}*")


def replicated_objects_grants(name: str, source: S3Location, replica: S3Location) -> list[Grant]:
    """What verifying and re-driving objects replicated from `source` to `replica` needs (S3 assets, S3
    manifests): listings, bucket settings and object reads of both sides; the re-drive's copy."""
    sides = (("source", source), ("replica", replica))
    out = [
        s3_list_grant(loc, "asset-verify", f"verify {name}: list the {side} objects") for side, loc in sides
    ]
    for _, loc in sides:
        for action, why in (
            ("s3:GetBucketVersioning", "verify versioning (required by replication)"),
            ("s3:GetReplicationConfiguration", f"verify {name} is replicated"),
            ("s3:GetEncryptionConfiguration", f"verify {name}: default encryption of both buckets"),
            ("s3:GetBucketObjectLockConfiguration", f"verify {name}: the replica cannot be deleted"),
            ("s3:ListBucketVersions", f"verify {name}: count object versions"),
        ):
            out.append(grant("asset-verify", action, s3_arn(loc.bucket), why, "Buckets"))
    for _, loc in sides:
        for action in ("s3:GetObject", "s3:GetObjectVersion"):
            out.append(grant("asset-verify", action, s3_objects(loc), f"verify {name} copies", "Objects"))
    for action in (
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectTagging",
        "s3:GetObjectVersionTagging",
    ):
        why = f"re-drive a failed {name} replication: read the source version"
        out.append(grant("asset-redrive", action, s3_objects(source), why, "Read"))
    for action in ("s3:PutObject", "s3:PutObjectTagging"):
        why = f"re-drive a failed {name} replication: copy it into the replica"
        out.append(grant("asset-redrive", action, s3_objects(replica), why, "Write"))
    return out


@dataclass
class ShardPlan:
    """The shards of one asset (each: the `Shard` fields but index and asset) and planning problems."""

    shards: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class AssetChecker(Protocol[A]):
    """One kind of asset. `A` is its model in `chalicelib.models.plan` (S3Asset, DynamoDBAsset...)."""

    @property
    def kind(self) -> str:
        """The asset model's `kind` discriminator."""
        ...

    @property
    def checks(self) -> tuple[str, ...]:
        """The shard kinds (`Shard.kind`) its shards carry; unique across kinds."""
        ...

    def plan(self, plan: DRPlan, asset: A) -> ShardPlan:
        """The verification work for the asset. Throttling/5xx propagate (the caller retries)."""
        ...

    def check(self, plan: DRPlan, asset: A, shard: Shard, *, now: datetime) -> ShardResult:
        """Run one of its shards. Throttling/5xx propagate; the caller makes other errors "incomplete"."""
        ...

    def grants(self, asset: A, plan: DRPlan) -> list[Grant]:
        """Every IAM action Lifeboat needs on the asset, by capability."""
        ...

    def live_checks(self, plan: DRPlan, asset: A, reader: ResourceReader) -> list[LiveCheck]:
        """Plan validation: the checks of the live resources the asset names."""
        ...
