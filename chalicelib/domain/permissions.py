"""The IAM permissions Lifeboat's functions need to run one DR plan, derived from the plan alone.

Used by plan validation: either simulated against Lifeboat's role, or listed for a human to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from chalicelib.models.grants import Grant
from chalicelib.models.plan import (
    DRPlan,
    HttpEndpoint,
    ModelRegistryAsset,
    S3Asset,
    SageMakerEndpoint,
)
from chalicelib.models.restore import RESTORE_PREFIX


class Permission(BaseModel):
    model_config = {"frozen": True}

    action: str = Field(description="IAM action, e.g. route53:ChangeResourceRecordSets.")
    resource: str = Field(description="Resource ARN the action must be allowed on ('*' when unscoped).")
    why: str = Field(description="Which step of failover/failback/verification needs it.")


@dataclass(frozen=True)
class LifeboatResources:
    """Where Lifeboat itself keeps state (from settings) and where it runs."""

    account: str
    region: str
    ledger_table: str
    lock_table: str
    plan_bucket: str
    state_machine_prefix: str
    partition: str = "aws"


def _s3_bucket(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"


def required_permissions(plan: DRPlan, lb: LifeboatResources, *, grants: Sequence[Grant]) -> list[Permission]:
    """What Lifeboat's functions need to run `plan`: its own state, endpoints, traffic, alarms, topics, and
    `grants` (what the plan's kinds declare, collected by the caller: the domain does not know the kinds)."""
    p, acct = lb.partition, lb.account
    out: list[Permission] = []

    def need(action: str, resource: str, why: str) -> None:
        perm = Permission(action=action, resource=resource, why=why)
        if perm not in out:
            out.append(perm)

    # Lifeboat's own state: the ledger is append-only (no DeleteItem); locks, claims and operator controls
    # come and go in the lock table.
    ledger = f"arn:{p}:dynamodb:{lb.region}:{acct}:table/{lb.ledger_table}"
    for action in ("GetItem", "PutItem", "Query"):
        need(f"dynamodb:{action}", ledger, "the ledger (append-only audit trail and workload state)")
    locks = f"arn:{p}:dynamodb:{lb.region}:{acct}:table/{lb.lock_table}"
    for action in ("GetItem", "PutItem", "DeleteItem"):
        need(f"dynamodb:{action}", locks, "lease locks, one-time claims and operator controls")
    need("s3:ListBucket", _s3_bucket(p, lb.plan_bucket), "read DR plans")
    need("s3:GetObject", f"{_s3_bucket(p, lb.plan_bucket)}/*", "read DR plans")
    # The state machines generated for the plan: restore with an S3 asset, rollback with a model registry.
    kinds = ["failover", "failback"]
    kinds += ["restore"] if any(isinstance(a, S3Asset) for a in plan.assets) else []
    kinds += ["rollback"] if any(isinstance(a, ModelRegistryAsset) for a in plan.assets) else []
    for kind in kinds:
        machine = f"{lb.state_machine_prefix}-{plan.workload}-{kind}"[:80]
        need("states:StartExecution", f"arn:{p}:states:{lb.region}:{acct}:stateMachine:{machine}", kind)
        need("states:ListExecutions", f"arn:{p}:states:{lb.region}:{acct}:stateMachine:{machine}", "status")
        need(
            "states:DescribeExecution",
            f"arn:{p}:states:{lb.region}:{acct}:execution:{machine}:*",
            "status: is the holder of the workload's lock still running"
            if kind != "restore"
            else "status of a restore",
        )
    need("states:ListStateMachines", "*", "find the generated state machines")

    # Endpoints: smoke tests and confirmation probes.
    for role in ("primary", "secondary"):
        endpoint = plan.endpoint_for(role)  # type: ignore[arg-type]
        region = plan.region_of(role)  # type: ignore[arg-type]
        if isinstance(endpoint, SageMakerEndpoint):
            arn = f"arn:{p}:sagemaker:{region}:{acct}:endpoint/{endpoint.endpoint_name.lower()}"
            need("sagemaker:InvokeEndpoint", arn, f"smoke-test the {role} endpoint")
            need("sagemaker:DescribeEndpoint", arn, f"check the {role} endpoint is InService")
        elif isinstance(endpoint, HttpEndpoint):
            pass  # plain HTTPS: no IAM involved

    # What the plan's kinds declare (its traffic switch and its assets: reads, shifts, listings,
    # verification, re-drives, validation), every capability of every function: one permission per action
    # and resource, with the first reason given.
    seen = {(perm.action, perm.resource) for perm in out}
    for grant in grants:
        resource = grant.concrete(partition=p, account=acct)
        if (grant.action, resource) not in seen:
            seen.add((grant.action, resource))
            out.append(Permission(action=grant.action, resource=resource, why=grant.why))

    # Restore and model rollback (docs/restore.md), each action and resource once as well.
    for perm in _restore(plan, p) + _rollback(plan, p, acct):
        if (perm.action, perm.resource) not in seen:
            seen.add((perm.action, perm.resource))
            out.append(perm)

    # Alarms and notifications.
    for alarm in dict.fromkeys([*plan.trigger.alarms, *plan.failback.gate_alarms]):
        need(
            "cloudwatch:DescribeAlarms",
            f"arn:{p}:cloudwatch:{plan.regions.primary}:{acct}:alarm:{alarm}",
            "judge the trigger quorum and failback gates",
        )
    need("sns:Publish", plan.notifications.topic_arn(lb.region, acct), "notify humans")
    return out


def _restore(plan: DRPlan, p: str) -> list[Permission]:
    """Point-in-time restore of each S3 asset, on the side asked for (services/restore.py; as the deployed
    roles' assets.restore and restore.test_cleanup, infra/permissions.py): versions read, copies written to
    the asset's restore prefix (or over the asset, in place: delete markers, never a version deleted)."""
    out: list[Permission] = []
    why = "restore {name} to a point in time (docs/restore.md)"
    for asset in plan.assets:
        if not isinstance(asset, S3Asset):
            continue
        reason = why.format(name=asset.name)
        restored = f"{RESTORE_PREFIX}{asset.name}/"
        for loc in (asset.source, asset.replica):
            bucket = _s3_bucket(p, loc.bucket)
            for action in ("s3:GetBucketVersioning", "s3:ListBucket", "s3:ListBucketVersions"):
                out.append(Permission(action=action, resource=bucket, why=reason))
            for prefix in (loc.prefix, restored):
                objects = f"{bucket}/{prefix}*"
                for action in (
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:GetObjectTagging",
                    "s3:GetObjectVersionTagging",
                    "s3:PutObject",
                    "s3:PutObjectTagging",
                    "s3:DeleteObject",
                ):
                    out.append(Permission(action=action, resource=objects, why=reason))
        scratch = f"{_s3_bucket(p, asset.source.bucket)}/{restored}test-*"
        test_why = f"scheduled restore test of {asset.name}: remove its scratch copy"
        out.append(Permission(action="s3:DeleteObjectVersion", resource=scratch, why=test_why))
    return out


def _rollback(plan: DRPlan, p: str, acct: str) -> list[Permission]:
    """Model rollback (services/rollback.py; as the deployed roles' models.rollback and models.deploy):
    the registry's versions, and for a SageMaker endpoint a new model and endpoint config and UpdateEndpoint.
    An http endpoint is deployed through its model server's /admin/model (no IAM)."""
    out: list[Permission] = []
    for asset in plan.assets:
        if not isinstance(asset, ModelRegistryAsset):
            continue
        why = f"roll an endpoint back to an approved version of {asset.name}"
        for loc in (asset.source, asset.replica):
            if loc is not None:
                bucket = _s3_bucket(p, loc.bucket)
                out.append(Permission(action="s3:ListBucket", resource=bucket, why=why))
                out.append(Permission(action="s3:GetObject", resource=f"{bucket}/{loc.prefix}*", why=why))
        if asset.model_package_group:
            group = asset.model_package_group.lower()
            out.append(Permission(action="sagemaker:ListModelPackages", resource="*", why=why))
            for region in (plan.regions.primary, plan.regions.secondary):
                packages = f"arn:{p}:sagemaker:{region}:{acct}:model-package/{group}/*"
                out.append(Permission(action="sagemaker:DescribeModelPackage", resource=packages, why=why))
    if not out:
        return out
    for role in ("primary", "secondary"):
        endpoint = plan.endpoint_for(role)  # type: ignore[arg-type]
        if not isinstance(endpoint, SageMakerEndpoint):
            continue
        region, name = plan.region_of(role), endpoint.endpoint_name.lower()  # type: ignore[arg-type]
        base = f"arn:{p}:sagemaker:{region}:{acct}"
        why = f"roll the {role} endpoint back: a new model and endpoint config, then UpdateEndpoint"
        for action, resource in (
            ("sagemaker:DescribeEndpoint", f"{base}:endpoint/{name}"),
            ("sagemaker:DescribeEndpointConfig", f"{base}:endpoint-config/*"),
            ("sagemaker:DescribeModel", f"{base}:model/*"),
            ("sagemaker:CreateModel", f"{base}:model/{name}-v*"),
            ("sagemaker:CreateEndpointConfig", f"{base}:endpoint-config/{name}*"),
            ("sagemaker:UpdateEndpoint", f"{base}:endpoint/{name}"),
            ("sagemaker:UpdateEndpoint", f"{base}:endpoint-config/{name}*"),
            ("iam:PassRole", f"arn:{p}:iam::{acct}:role/*"),
        ):
            out.append(Permission(action=action, resource=resource, why=why))
    return out
