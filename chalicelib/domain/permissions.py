"""The IAM permissions Lifeboat's functions need to run one DR plan, derived from the plan alone.

Used by plan validation: either simulated against Lifeboat's role, or listed for a human to check.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from chalicelib.models.plan import (
    DRPlan,
    DynamoDBAsset,
    HttpEndpoint,
    ModelRegistryAsset,
    Route53FailoverTraffic,
    S3Asset,
    SageMakerEndpoint,
    SageMakerVariantsTraffic,
)


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


def required_permissions(plan: DRPlan, lb: LifeboatResources) -> list[Permission]:
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
    for kind in ("failover", "failback"):
        machine = f"{lb.state_machine_prefix}-{plan.workload}-{kind}"[:80]
        need("states:StartExecution", f"arn:{p}:states:{lb.region}:{acct}:stateMachine:{machine}", kind)
        need("states:ListExecutions", f"arn:{p}:states:{lb.region}:{acct}:stateMachine:{machine}", "status")
        need(
            "states:DescribeExecution",
            f"arn:{p}:states:{lb.region}:{acct}:execution:{machine}:*",
            "status: is the holder of the workload's lock still running",
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

    # Traffic.
    traffic = plan.traffic
    if isinstance(traffic, SageMakerVariantsTraffic):
        arn = f"arn:{p}:sagemaker:{traffic.region}:{acct}:endpoint/{traffic.endpoint_name.lower()}"
        need("sagemaker:DescribeEndpoint", arn, "read variant weights")
        need("sagemaker:UpdateEndpointWeightsAndCapacities", arn, "shift traffic between variants")
    else:
        zone = (
            f"arn:{p}:route53:::hostedzone/{traffic.hosted_zone_id.split('/')[-1]}"
            if (traffic.hosted_zone_id)
            else f"arn:{p}:route53:::hostedzone/*"
        )
        if traffic.hosted_zone_name:
            need("route53:ListHostedZonesByName", "*", "find the hosted zone by name")
        need("route53:ListResourceRecordSets", zone, "read traffic weights")
        if isinstance(traffic, Route53FailoverTraffic):
            for check in (traffic.health_check_ids.primary, traffic.health_check_ids.secondary):
                if check:
                    arn = f"arn:{p}:route53:::healthcheck/{check}"
                    need("route53:UpdateHealthCheck", arn, "move traffic by inverting the health check")
                    need("route53:GetHealthCheck", arn, "validate the health check exists")
        else:
            need("route53:ChangeResourceRecordSets", zone, "shift traffic (one atomic change batch)")

    # Assets: replication checks and verification.
    for asset in plan.assets:
        if isinstance(asset, S3Asset):
            for loc, why in ((asset.source, "source"), (asset.replica, "replica")):
                bucket = _s3_bucket(p, loc.bucket)
                need("s3:ListBucket", bucket, f"compare {asset.name} {why} listings (replication lag)")
                need("s3:GetBucketVersioning", bucket, "validate versioning (required by replication)")
                need("s3:GetObject", f"{bucket}/{loc.prefix}*", f"verify {asset.name} copies")
            need(
                "s3:GetReplicationConfiguration",
                _s3_bucket(p, asset.source.bucket),
                f"validate {asset.name} is replicated",
            )
        elif isinstance(asset, ModelRegistryAsset):
            if asset.source and asset.replica:
                for loc in (asset.source, asset.replica):
                    need("s3:ListBucket", _s3_bucket(p, loc.bucket), "read the model registry manifest")
                    need("s3:GetObject", f"{_s3_bucket(p, loc.bucket)}/{loc.prefix}*", "read the manifest")
            elif asset.model_package_group:
                for region in (plan.regions.primary, plan.regions.secondary):
                    group = asset.model_package_group.lower()
                    arn = f"arn:{p}:sagemaker:{region}:{acct}:model-package-group/{group}"
                    need("sagemaker:DescribeModelPackageGroup", arn, "read the model registry")
                    need("sagemaker:ListModelPackages", "*", "compare approved model versions")
        elif isinstance(asset, DynamoDBAsset):
            for region, table in (
                (plan.regions.primary, asset.table),
                (plan.regions.secondary, asset.replica_table_name),
            ):
                need(
                    "dynamodb:DescribeTable",
                    f"arn:{p}:dynamodb:{region}:{acct}:table/{table}",
                    f"check the {asset.name} replica",
                )

    # Alarms and notifications.
    for alarm in dict.fromkeys([*plan.trigger.alarms, *plan.failback.gate_alarms]):
        need(
            "cloudwatch:DescribeAlarms",
            f"arn:{p}:cloudwatch:{plan.regions.primary}:{acct}:alarm:{alarm}",
            "judge the trigger quorum and failback gates",
        )
    need("sns:Publish", plan.notifications.topic_arn(lb.region, acct), "notify humans")
    return out
