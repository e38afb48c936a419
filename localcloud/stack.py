"""Everything a DR plan protects, created in the local cloud, plus the model servers that serve it.

`provision_plan` mirrors what exists in a real account before Lifeboat arrives (buckets, tables, DNS records,
alarms, the model artifact and its registry manifest) and what Lifeboat's deployment adds per plan (the
generated state machine, the notification topic). The model servers are real processes on 127.0.0.1,
serving the artifact each one loads from its own region's bucket.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from chalicelib.models.plan import DRPlan, DynamoDBAsset, ModelRegistryAsset, Route53WeightedTraffic, S3Asset
from chalicelib.workflows.failback import build_failback
from chalicelib.workflows.failover import build_failover
from chalicelib.workflows.verify import build_verification
from localcloud.alarms import alarm_spec_for
from localcloud.model import ModelArtifact, default_artifact
from localcloud.modelserver import ModelServerProcess, publish_artifact, spawn_model_server, stop_process
from localcloud.regional import copies
from localcloud.replication import configure_replication
from localcloud.resources import ResourceNames, names
from localcloud.server import LocalCloud

log = logging.getLogger(__name__)

ROLES = ("primary", "secondary")


def endpoint_metric_name(plan: DRPlan, role: str) -> str:
    """The canary's `Endpoint` dimension for one of a plan's endpoints."""
    return f"{plan.workload}-{role}"


def model_key(asset: S3Asset, artifact: ModelArtifact) -> str:
    return f"{asset.source.prefix}{artifact.model_name}/{artifact.version}/model.json"


def model_asset(plan: DRPlan) -> S3Asset | None:
    for asset in plan.assets:
        if isinstance(asset, S3Asset) and asset.role == "model-artifacts":
            return asset
    return None


@dataclass
class PlanResources:
    plan: DRPlan
    state_machines: dict[str, str] = field(default_factory=dict)
    topic_arn: str = ""
    zone_id: str | None = None
    model: dict[str, str] = field(default_factory=dict)
    # Lifeboat's copies in other regions (localcloud/regional.py): region -> kind -> state machine ARN.
    copies: dict[str, dict[str, str]] = field(default_factory=dict)


def _bucket(cloud: LocalCloud, name: str, region: str) -> None:
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


def _table(cloud: LocalCloud, name: str, region: str) -> None:
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


def _weighted_records(cloud: LocalCloud, plan: DRPlan, traffic: Route53WeightedTraffic) -> str:
    r53 = cloud.client("route53")
    zone_name = traffic.hosted_zone_name or "lifeboat.internal."
    zones = r53.list_hosted_zones_by_name(DNSName=zone_name).get("HostedZones", [])
    match = [z for z in zones if z["Name"] == zone_name]
    if match:
        zone_id = match[0]["Id"].split("/")[-1]
    else:
        zone_id = r53.create_hosted_zone(Name=zone_name, CallerReference=f"lifeboat-{zone_name}")[
            "HostedZone"
        ]["Id"].split("/")[-1]
    changes = []
    for role, weight in (("primary", 100), ("secondary", 0)):
        region = plan.region_of(role)  # type: ignore[arg-type]
        changes.append(
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": traffic.record_name,
                    "Type": traffic.record_type,
                    "SetIdentifier": getattr(traffic.set_identifiers, role),
                    "Weight": weight,
                    "TTL": int(traffic.ttl.total_seconds()),
                    "ResourceRecords": [{"Value": f"{region}.{traffic.record_name}"}],
                },
            }
        )
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return zone_id


def provision_plan(
    cloud: LocalCloud,
    plan: DRPlan,
    plan_text: str,
    *,
    stage: str = "dev",
    artifact: ModelArtifact | None = None,
) -> PlanResources:
    """Create (idempotently) what `plan` protects and what Lifeboat needs for it, in the local cloud."""
    n = names(stage)
    out = PlanResources(plan=plan)
    primary, secondary = plan.regions.primary, plan.regions.secondary
    cloud.iam.deploy_plan(plan)  # the functions' roles now grant what the template grants for this plan

    cloud.client("s3").put_object(
        Bucket=n.plan_bucket,
        Key=f"plans/{plan.workload}.yaml",
        Body=plan_text.encode(),
        ServerSideEncryption="AES256",
    )

    # Notifications: the plan's topic, with a local inbox queue subscribed so notifications can be read.
    out.topic_arn = _topic(cloud, plan, n.notifications_inbox, cloud.region)
    for region, copy in copies(cloud).items():  # every copy publishes the plan and notifies in its region
        cloud.client("s3", region).put_object(
            Bucket=copy["plan_bucket"],
            Key=f"plans/{plan.workload}.yaml",
            Body=plan_text.encode(),
            ServerSideEncryption="AES256",
        )
        _topic(cloud, plan, n.notifications_inbox, region)

    # The assets: buckets in both regions (versioned, encrypted), feature tables with PITR.
    for asset in plan.assets:
        if isinstance(asset, S3Asset) or (
            isinstance(asset, ModelRegistryAsset) and asset.source and asset.replica
        ):
            assert asset.source is not None and asset.replica is not None
            _bucket(cloud, asset.source.bucket, primary)
            _bucket(cloud, asset.replica.bucket, secondary)
        elif isinstance(asset, DynamoDBAsset):
            _table(cloud, asset.table, primary)
            _table(cloud, asset.replica_table_name, secondary)

    # S3 replication as a real account has it: rules, replication events to the stage queue, locked replicas.
    configure_replication(
        cloud, plan, role_arn=cloud.resources.get("role_arn", ""), queue_arn=cloud.resources.get("queue_arn")
    )

    # The model: one artifact, published to the primary bucket and its replica, named by the registry.
    models = model_asset(plan)
    if models is not None:
        art = artifact or default_artifact()
        key = model_key(models, art)
        replica_key = models.replica.prefix + key[len(models.source.prefix) :]
        sha = publish_artifact(cloud.client("s3", primary), models.source.bucket, key, art)
        publish_artifact(cloud.client("s3", secondary), models.replica.bucket, replica_key, art)
        out.model = {
            "primary_bucket": models.source.bucket,
            "primary_key": key,
            "secondary_bucket": models.replica.bucket,
            "secondary_key": replica_key,
            "sha256": sha,
            "version": art.version,
        }
        for asset in plan.assets:
            if isinstance(asset, ModelRegistryAsset) and asset.source and asset.replica:
                for loc, bucket, k in (
                    (asset.source, models.source.bucket, key),
                    (asset.replica, models.replica.bucket, replica_key),
                ):
                    manifest = {
                        "model": art.model_name,
                        "versions": [
                            {
                                "version": art.version,
                                "artifact": f"s3://{bucket}/{k}",
                                "sha256": sha,
                                "deployable": True,
                            }
                        ],
                    }
                    region = primary if loc is asset.source else secondary
                    cloud.client("s3", region).put_object(
                        Bucket=loc.bucket,
                        Key=f"{loc.prefix}{art.model_name}.json",
                        Body=json.dumps(manifest, indent=2).encode(),
                        ContentType="application/json",
                    )

    if isinstance(plan.traffic, Route53WeightedTraffic):
        out.zone_id = _weighted_records(cloud, plan, plan.traffic)

    # Alarms on the primary endpoint's canary metrics (the trigger and the failback gates), each in its
    # region: an alarm in the secondary region watches what the secondary region's canary sees of the primary.
    for alarm in dict.fromkeys([*plan.trigger.alarms, *plan.failback.gate_alarms]):
        region = plan.alarm_region(alarm) if alarm in plan.trigger.alarms else primary
        cloud.client("cloudwatch", region).put_metric_alarm(
            **alarm_spec_for(alarm, endpoint_metric_name(plan, "primary"))
        )

    # The generated state machines, calling the local Lambda functions of the same copy.
    out.state_machines = _state_machines(cloud, plan, n, cloud.region, cloud.resources["functions"])
    for region, copy in copies(cloud).items():
        out.copies[region] = _state_machines(cloud, plan, n, region, copy["functions"])
    return out


def _topic(cloud: LocalCloud, plan: DRPlan, inbox: str, region: str) -> str:
    sns, sqs = cloud.client("sns", region), cloud.client("sqs", region)
    topic_arn = str(sns.create_topic(Name=plan.notifications.topic.split(":")[-1])["TopicArn"])
    inbox_url = sqs.create_queue(QueueName=inbox)["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox_arn)
    return topic_arn


def _state_machines(
    cloud: LocalCloud, plan: DRPlan, n: ResourceNames, region: str, functions: dict[str, str]
) -> dict[str, str]:
    sfn = cloud.client("stepfunctions", region)
    existing = {sm["name"]: sm["stateMachineArn"] for sm in sfn.list_state_machines()["stateMachines"]}
    arns: dict[str, str] = {}
    for kind, definition in (
        ("failover", build_failover(plan, lambda fn: functions[n.function(fn)])),
        ("failback", build_failback(plan, lambda fn: functions[n.function(fn)])),
        ("verify", build_verification(plan, lambda fn: functions[n.function(fn)])),
    ):
        name = n.state_machine(plan.workload, kind)
        body = json.dumps(definition)
        if name in existing:
            sfn.update_state_machine(stateMachineArn=existing[name], definition=body)
            arns[kind] = existing[name]
        else:
            arns[kind] = sfn.create_state_machine(
                name=name, definition=body, roleArn=cloud.resources["role_arn"]
            )["stateMachineArn"]
    return arns


def local_port(url: str) -> int | None:
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        return None
    return parsed.port


def start_model_servers(cloud: LocalCloud, res: PlanResources) -> dict[str, ModelServerProcess]:
    """Spawn one model server per http endpoint of the plan on 127.0.0.1, each loading its region's copy."""
    servers: dict[str, ModelServerProcess] = {}
    if not res.model:
        return servers
    try:
        for role in ROLES:
            endpoint = res.plan.endpoint_for(role)  # type: ignore[arg-type]
            port = local_port(getattr(endpoint, "url", "") or "")
            if port is None:
                continue
            servers[role] = spawn_model_server(
                port,
                res.plan.region_of(role),  # type: ignore[arg-type]
                res.model[f"{role}_bucket"],
                res.model[f"{role}_key"],
                cloud.endpoint_url,
                env={k: v for k, v in cloud.env().items() if k.startswith("AWS_")},
            )
    except Exception:
        for proc in servers.values():
            stop_process(proc)
        raise
    return servers
