"""Everything a DR plan protects, created in the local cloud, plus the model servers that serve it.

`provision_plan` mirrors what exists in a real account before Lifeboat arrives (buckets, tables, DNS records,
alarms, the model artifact and its registry manifest) and what Lifeboat's deployment adds per plan (the
generated state machine, the notification topic). The model servers are real processes on 127.0.0.1,
serving the artifact each one loads from its own region's bucket.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chalicelib.models.plan import DRPlan, S3Asset
from chalicelib.workflows.asl import capped_retries
from chalicelib.workflows.failback import build_failback
from chalicelib.workflows.failover import build_failover
from chalicelib.workflows.restore import build_restore
from chalicelib.workflows.rollback import build_rollback
from chalicelib.workflows.verify import build_verification
from localcloud.alarms import alarm_spec_for
from localcloud.asset_kinds import PublishedModel, name_model, provision_assets
from localcloud.model import ModelArtifact, default_artifact
from localcloud.modelserver import ModelServerProcess, publish_artifact, spawn_model_server, stop_process
from localcloud.ports import local_port
from localcloud.regional import copies
from localcloud.replication import configure_replication
from localcloud.resources import ResourceNames, names
from localcloud.sagemaker import SAGEMAKER, ArtifactAt, provision_endpoints, sagemaker_roles
from localcloud.server import LocalCloud
from localcloud.traffic_kinds import localise_traffic, provision_traffic

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
    # The plan as the local cloud runs it (an ARC plan's endpoints are the local cluster's): what is stored
    # and what the caller gets back in `PlanResources.plan`.
    plan, plan_text = localise_traffic(cloud, plan, plan_text)
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

    # The assets, each by its kind (localcloud/asset_kinds.py): buckets in both regions (versioned,
    # encrypted), feature tables with PITR.
    provision_assets(cloud, plan)

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
        # The registries name it (the kinds that name models: localcloud/asset_kinds.py).
        published = PublishedModel(
            name=art.model_name,
            version=art.version,
            sha256=sha,
            primary_bucket=models.source.bucket,
            primary_key=key,
            secondary_bucket=models.replica.bucket,
            secondary_key=replica_key,
        )
        name_model(cloud, plan, published)
        # The SageMaker endpoints the plan names (localcloud/sagemaker.py), each model naming its region's
        # copy of the artifact; start_model_servers gives their variants a model server.
        provision_endpoints(
            cloud,
            plan,
            ArtifactAt(
                {primary: (models.source.bucket, key), secondary: (models.replica.bucket, replica_key)}
            ),
        )

    # The traffic switch (DNS records...), by the plan's kind of traffic.
    out.zone_id = provision_traffic(cloud, plan)

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
        ("restore", build_restore(plan, lambda fn: functions[n.function(fn)])),
        ("rollback", build_rollback(plan, lambda fn: functions[n.function(fn)])),
    ):
        # a plan with nothing that kind acts on (restore: no S3 asset; rollback: no model registry)
        if definition is None:
            continue
        name = n.state_machine(plan.workload, kind)
        if cloud.retry_cap_s is not None:
            definition = capped_retries(definition, cloud.retry_cap_s)
        body = json.dumps(definition)
        if name in existing:
            sfn.update_state_machine(stateMachineArn=existing[name], definition=body)
            arns[kind] = existing[name]
        else:
            arns[kind] = sfn.create_state_machine(
                name=name, definition=body, roleArn=cloud.resources["role_arn"]
            )["stateMachineArn"]
    return arns


def deployment_file(deployments: Path, workload: str, role: str) -> Path:
    """Where the model server of `workload`'s `role` records its deployment (localcloud.modelserver)."""
    return deployments / f"{workload}-{role}.json"


def start_model_servers(
    cloud: LocalCloud,
    res: PlanResources,
    *,
    starting: Callable[[str], None] | None = None,
    ports: Mapping[str, int] | None = None,
    deployments: Path | None = None,
) -> dict[str, ModelServerProcess]:
    """Spawn one model server per http endpoint of the plan on 127.0.0.1, each loading its region's copy,
    on the port its URL names, and one per role whose model serves a SageMaker endpoint variant (on
    `ports[role]`, else a free port), routed to by the local SageMaker runtime; `starting(role)` is told
    before each one starts. With `deployments` (a folder), each server records what it is deployed with
    in `deployment_file(deployments, workload, role)` and serves that again when it is restarted."""
    servers: dict[str, ModelServerProcess] = {}
    if not res.model:
        return servers
    sagemaker = sagemaker_roles(res.plan)
    try:
        for role in ROLES:
            endpoint = res.plan.endpoint_for(role)  # type: ignore[arg-type]
            port = local_port(getattr(endpoint, "url", "") or "")
            if port is None and role in sagemaker:
                port = (ports or {}).get(role, 0)
            if port is None:
                continue
            if starting is not None:
                starting(role)
            servers[role] = spawn_model_server(
                port,
                res.plan.region_of(role),  # type: ignore[arg-type]
                res.model[f"{role}_bucket"],
                res.model[f"{role}_key"],
                cloud.endpoint_url,
                env={k: v for k, v in cloud.env().items() if k.startswith("AWS_")},
                deployment_file=(
                    deployment_file(deployments, res.plan.workload, role) if deployments is not None else None
                ),
            )
    except Exception:
        for proc in servers.values():
            stop_process(proc)
        raise
    SAGEMAKER.register_plan(res.plan, {role: proc.url for role, proc in servers.items() if role in sagemaker})
    return servers
