"""Least-privilege IAM for each Lambda function, derived from what its service code calls and from the plans.

Two tables, one place:
- CAPABILITIES: what one adapter operation needs (IAM actions), scoped to Lifeboat's own resources or to the
  resources the configured plans name. Each entry says which adapter call it stands for.
- FUNCTIONS: which capabilities each Chalice function uses (read off its service function; see the comment).

A function missing from FUNCTIONS fails the build (`MissingPermissions`): a new function must say what it
calls before it can be deployed, rather than deploy with too much or nothing. Rules the generated template
must keep (tests/infra/test_template.py): no "Action": "*", no "*" resource on a mutating action, every
statement scoped to a plan's or the stack's resources where AWS allows it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.adapters.assets import asset_grants
from chalicelib.adapters.traffic import grants_for
from chalicelib.models.grants import Capability, Grant
from chalicelib.models.plan import (
    DRPlan,
    DynamoDBAsset,
    ModelRegistryAsset,
    S3Asset,
    S3Location,
    SageMakerEndpoint,
    SageMakerVariantsTraffic,
    route53_records,
)

Statement = dict[str, Any]
ARN = "arn:${AWS::Partition}"
ACCOUNT = "${AWS::AccountId}"

# Actions AWS only accepts on "*" (no resource-level permissions). All of them are reads.
UNSCOPABLE_READS = frozenset(
    {
        "route53:ListHostedZonesByName",
        "states:ListStateMachines",
        "sagemaker:ListModelPackages",
        "dynamodb:ListBackups",
        "cloudwatch:GetMetricStatistics",
    }
)


# Writes AWS only accepts on "*". states:SendTask*: the task token is the capability (only a holder of the
# token a waiting execution handed out can answer it), the Service Authorization Reference lists no resource
# type for them.
UNSCOPABLE_WRITES = frozenset({"states:SendTaskSuccess"})
UNSCOPABLE = UNSCOPABLE_READS | UNSCOPABLE_WRITES


class MissingPermissions(LookupError):
    """Functions of the app that infra/permissions.py does not describe yet."""

    def __init__(self, functions: Iterable[str]) -> None:
        self.functions = sorted(functions)
        super().__init__(
            "no IAM permissions are declared for the Chalice function(s) "
            + ", ".join(self.functions)
            + ": add each to FUNCTIONS in infra/permissions.py with the capabilities its service code uses"
        )


@dataclass(frozen=True)
class Scope:
    """The resources a statement may name, as CloudFormation values (strings, Ref, GetAtt, Fn::Sub)."""

    plans: tuple[DRPlan, ...]
    region: str
    ledger_table_arn: Any
    lock_table_arn: Any
    idempotency_table_arn: Any
    plan_bucket_arn: Any
    plan_objects_arn: Any
    plan_prefix: str
    evidence_bucket_arn: Any
    evidence_objects_arn: Any
    key_arn: Any
    topic_arns: tuple[Any, ...]
    own_topic_arns: tuple[Any, ...]
    # kind (failover, failback, ...) -> names of this region's state machines of that kind
    machines: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    machine_prefix: str = "lifeboat"
    own_role_arn: Any = None
    consumed_queue_arns: tuple[Any, ...] = ()
    # hosted zone name (lower case, no trailing dot) -> id, for plans naming their zone by name only
    # (given at package time: infra.build --hosted-zone); a name missing here is granted as hostedzone/*,
    # which infra/template.py allows in the dev stage only.
    hosted_zones: Mapping[str, str] = field(default_factory=dict)


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _resource(template: str) -> Any:
    """A grant's resource as a CloudFormation value ("*" stays as it is)."""
    return template if template == "*" else _sub(template)


def _stmt(sid: str, actions: Iterable[str], resources: Iterable[Any], condition: Any = None) -> Statement:
    resources = list(resources)
    out: Statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)), "Resource": resources}
    if condition:
        out["Condition"] = condition
    return out


def _state_machine_arn(name: str) -> dict[str, str]:
    return _sub(f"{ARN}:states:${{AWS::Region}}:{ACCOUNT}:stateMachine:{name}")


def _executions_arn(name: str) -> dict[str, str]:
    return _sub(f"{ARN}:states:${{AWS::Region}}:{ACCOUNT}:execution:{name}:*")


def _sagemaker_endpoint(region: str, name: str) -> dict[str, str]:
    # SageMaker ARNs carry the endpoint name in lower case.
    return _sub(f"{ARN}:sagemaker:{region}:{ACCOUNT}:endpoint/{name.lower()}")


def _list_bucket(sid: str, prefixes_by_bucket: Mapping[str, set[str]]) -> list[Statement]:
    """s3:ListBucket per bucket (ARN template), limited to the prefixes named ("" lifts the limit)."""
    out = []
    for index, (bucket, prefixes) in enumerate(sorted(prefixes_by_bucket.items())):
        condition = None
        if "" not in prefixes:
            condition = {"StringLike": {"s3:prefix": sorted(f"{p}*" for p in prefixes)}}
        out.append(_stmt(f"{sid}{index}", ["s3:ListBucket"], [_sub(bucket)], condition))
    return out


# -- what the plans' kinds declare ----------------------------------------------------------------------
def _kind_grants(s: Scope, capability: Capability) -> list[Grant]:
    """The grants of one capability the plans' assets declare (chalicelib.adapters.assets), plan by plan."""
    return [g for plan in s.plans for g in asset_grants(plan, capability)]


def _listed(grants: Iterable[Grant]) -> dict[str, set[str]]:
    """The s3:ListBucket grants per bucket (ARN template): the key prefixes they allow ("": every key)."""
    found: dict[str, set[str]] = {}
    for g in grants:
        if g.action != "s3:ListBucket":
            continue
        patterns = ["*"] if g.condition is None else g.condition.get("StringLike", {}).get("s3:prefix")
        if not patterns or any(not p.endswith("*") for p in patterns) or len(g.condition or {}) > 1:
            raise ValueError(
                f"s3:ListBucket on {g.resource}: only a StringLike s3:prefix 'prefix*' condition "
                f"can be merged per bucket (got {g.condition})"
            )
        found.setdefault(g.resource, set()).update(p.removesuffix("*") for p in patterns)
    return found


def _kind_statements(prefix: str, grants: list[Grant]) -> list[Statement]:
    """Statements from kind grants: s3:ListBucket merged per bucket (`<prefix>List<n>`), then one per grant
    `sid` (`<prefix><sid>`: each of its actions on each of its resources), in the order first met."""
    out = _list_bucket(f"{prefix}List", _listed(grants))
    groups: dict[str, list[Grant]] = {}
    for g in grants:
        if g.action == "s3:ListBucket":
            continue
        if g.sid is None:
            raise ValueError(
                f"the {g.capability} grant of {g.action} on {g.resource} names no statement (sid)"
            )
        groups.setdefault(g.sid, []).append(g)
    for sid, members in groups.items():
        conditions = {repr(g.condition) for g in members}
        if len(conditions) > 1:
            raise ValueError(
                f"grants of statement {prefix}{sid} differ in their conditions: {sorted(conditions)}"
            )
        resources = _unique([_resource(g.resource) for g in members])
        out.append(_stmt(f"{prefix}{sid}", [g.action for g in members], resources, members[0].condition))
    return out


# -- capabilities ---------------------------------------------------------------------------------------
def _plans_read(s: Scope) -> list[Statement]:
    # S3PlanStore.all/get: ListObjectsV2 under the plan prefix, GetObject of each plan file.
    return [
        _stmt(
            "PlansList",
            ["s3:ListBucket"],
            [s.plan_bucket_arn],
            {"StringLike": {"s3:prefix": [f"{s.plan_prefix}*"]}},
        ),
        _stmt("PlansRead", ["s3:GetObject"], [s.plan_objects_arn]),
    ]


def _plans_write(s: Scope) -> list[Statement]:
    # S3PlanStore.put: PutObject of <prefix><workload>.yaml (validated before it is stored).
    return [_stmt("PlansWrite", ["s3:PutObject"], [s.plan_objects_arn])]


def _ledger_read(s: Scope) -> list[Statement]:
    # Ledger.get_state/concluded_by (GetItem) and Ledger.entries, AssetStateStore.all (Query on the
    # workload's partition).
    return [_stmt("LedgerRead", ["dynamodb:GetItem", "dynamodb:Query"], [s.ledger_table_arn])]


def _ledger_write(s: Scope) -> list[Statement]:
    # Ledger.record (conditional PutItem: entries are never replaced), update_state/mark_concluded and
    # AssetStateStore.update (conditional PutItem). The ledger is the audit trail: no role may delete from it,
    # so there is no DeleteItem (nor UpdateItem, BatchWriteItem) here; what Lifeboat deletes (claims, control
    # items) lives in the lock table.
    return [_stmt("LedgerWrite", ["dynamodb:PutItem"], [s.ledger_table_arn])]


# Partition keys of the lock table's items (adapters/locks.py, adapters/ledger.py CLAIM_PREFIX and
# CONTROL_PREFIX): each statement on the lock table names the kind of item it may touch.
LOCK_KEYS = "lock#*"
CLAIM_KEYS = "claim#*"
CONTROL_KEYS = "control#*"


def _leading_keys(pattern: str) -> dict[str, Any]:
    return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [pattern]}}


def _locks_read(s: Scope) -> list[Statement]:
    # LockTable.current: consistent GetItem.
    return [_stmt("LocksRead", ["dynamodb:GetItem"], [s.lock_table_arn], _leading_keys(LOCK_KEYS))]


def _locks_write(s: Scope) -> list[Statement]:
    # LockTable.acquire (conditional PutItem, then GetItem of the holder), release (conditional DeleteItem).
    actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
    return [_stmt("LocksWrite", actions, [s.lock_table_arn], _leading_keys(LOCK_KEYS))]


def _claims(s: Scope) -> list[Statement]:
    # Ledger.claim (conditional PutItem) and release_claim (DeleteItem), in the lock table.
    actions = ["dynamodb:PutItem", "dynamodb:DeleteItem"]
    return [_stmt("Claims", actions, [s.lock_table_arn], _leading_keys(CLAIM_KEYS))]


def _control_read(s: Scope) -> list[Statement]:
    # Ledger.get_control (consistent GetItem), in the lock table.
    return [_stmt("ControlRead", ["dynamodb:GetItem"], [s.lock_table_arn], _leading_keys(CONTROL_KEYS))]


def _control_write(s: Scope) -> list[Statement]:
    # Ledger.get_control/update_control (GetItem, conditional PutItem) and delete_control (DeleteItem).
    actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
    return [_stmt("ControlWrite", actions, [s.lock_table_arn], _leading_keys(CONTROL_KEYS))]


def _idempotency(s: Scope) -> list[Statement]:
    # powertools DynamoDBPersistenceLayer: put_item (conditional), get_item, update_item, delete_item.
    actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    return [_stmt("Idempotency", actions, [s.idempotency_table_arn])]


def _alarms_read(s: Scope) -> list[Statement]:
    # AlarmReader: DescribeAlarms of the plans' trigger alarms, each in its own region (the primary unless
    # trigger.alarm_regions says otherwise), and of the gate alarms, in the primary region.
    arns = []
    for plan in s.plans:
        for alarm in dict.fromkeys([*plan.trigger.alarms, *plan.failback.gate_alarms]):
            region = plan.alarm_region(alarm) if alarm in plan.trigger.alarms else plan.regions.primary
            arns.append(_sub(f"{ARN}:cloudwatch:{region}:{ACCOUNT}:alarm:{alarm}"))
    return [_stmt("AlarmsRead", ["cloudwatch:DescribeAlarms"], arns)] if arns else []


def _sagemaker_endpoints(s: Scope) -> list[dict[str, str]]:
    arns = []
    for plan in s.plans:
        for role in ("primary", "secondary"):
            endpoint = plan.endpoint_for(role)  # type: ignore[arg-type]
            if isinstance(endpoint, SageMakerEndpoint):
                arns.append(_sagemaker_endpoint(plan.region_of(role), endpoint.endpoint_name))  # type: ignore[arg-type]
    return arns


def _endpoints_invoke(s: Scope) -> list[Statement]:
    # EndpointClient.invoke: InvokeEndpoint for SageMaker endpoints; plain HTTP endpoints need no IAM.
    arns = _sagemaker_endpoints(s)
    return [_stmt("EndpointsInvoke", ["sagemaker:InvokeEndpoint"], arns)] if arns else []


def _models_identify(s: Scope) -> list[Statement]:
    # ModelInspector.identify (SageMaker endpoints only): DescribeEndpoint -> DescribeEndpointConfig ->
    # DescribeModel, then HeadObject of the model data in the plan's model-artifacts buckets (the
    # "model-identify" grants of the asset kinds).
    arns = _sagemaker_endpoints(s)
    if not arns:
        return []
    regions = sorted({r for p in s.plans for r in (p.regions.primary, p.regions.secondary)})
    configs = [_sub(f"{ARN}:sagemaker:{r}:{ACCOUNT}:endpoint-config/*") for r in regions]
    models = [_sub(f"{ARN}:sagemaker:{r}:{ACCOUNT}:model/*") for r in regions]
    out = [
        _stmt("ModelsDescribeEndpoint", ["sagemaker:DescribeEndpoint"], arns),
        _stmt(
            "ModelsDescribe",
            ["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
            configs + models,
        ),
    ]
    # The artifacts themselves: what the asset kinds declare (S3 assets of role model-artifacts).
    return out + _kind_statements("Models", _kind_grants(s, "model-identify"))


# -- traffic: what each plan's traffic kind declares it needs (`grants()` of its module in
# chalicelib/adapters/traffic/), so a new kind needs no change here.
# Statement ids of the actions of the first kinds, kept so that a policy reads the same from release to
# release; an action of a later kind gets the capability's prefix and its own name.
_TRAFFIC_SIDS: dict[Capability, tuple[str, dict[str, str]]] = {
    "traffic-find-zone": ("TrafficFind", {"route53:ListHostedZonesByName": "TrafficFindZone"}),
    "traffic-read": (
        "TrafficRead",
        {
            "route53:ListResourceRecordSets": "TrafficReadRecords",
            "route53:GetHealthCheck": "TrafficReadHealthChecks",
            "sagemaker:DescribeEndpoint": "TrafficReadVariants",
        },
    ),
    "inspect": ("InspectTraffic", {"route53:GetHealthCheck": "InspectHealthChecks"}),
}


def zone_key(name: str) -> str:
    """A hosted zone name as Scope.hosted_zones keys it."""
    return name.rstrip(".").lower()


def _traffic_grants(plan: DRPlan, s: Scope) -> list[Grant]:
    """The plan's traffic grants, with a zone the plan names by name only pinned to the id given at package
    time (`--hosted-zone NAME=ID`, required outside dev: infra/template.py). In dev, without an id, the
    kind's grants keep `hostedzone/*`: reads take any zone, and the one write (ChangeResourceRecordSets) is
    pinned by condition keys to the plan's record, type and UPSERT."""
    grants = grants_for(plan.traffic)
    records = route53_records(plan.traffic)
    zone_id = s.hosted_zones.get(zone_key(records.hosted_zone_name or "")) if records is not None else None
    if not zone_id:
        return grants
    pinned = f"hostedzone/{zone_id.split('/')[-1]}"
    return [
        g.model_copy(update={"resource": g.resource.removesuffix("hostedzone/*") + pinned})
        if g.resource.endswith(":hostedzone/*")
        else g
        for g in grants
    ]


def _by_action(grants: Iterable[Grant]) -> list[tuple[Grant, list[Any]]]:
    """One entry per action and condition: the first grant, and every resource once, in order."""
    groups: dict[tuple[str, str], tuple[Grant, list[Any]]] = {}
    for grant in grants:
        key = (grant.action, json.dumps(grant.condition, sort_keys=True))
        resources = groups.setdefault(key, (grant, []))[1]
        resource = grant.resource if grant.resource == "*" else _sub(grant.resource)
        if resource not in resources:
            resources.append(resource)
    return list(groups.values())


def _sid_words(action: str) -> str:
    """A statement id's words for an action: route53-recovery-cluster:GetRoutingControlState ->
    Route53RecoveryClusterGetRoutingControlState."""
    service, _, name = action.partition(":")
    return re.sub(r"[^A-Za-z0-9]", "", "".join(p.capitalize() for p in service.split("-")) + name)


def _traffic_statements(s: Scope, capability: Capability) -> list[Statement]:
    """The plans' traffic grants of `capability`, one statement per action (and condition)."""
    prefix, named = _TRAFFIC_SIDS[capability]
    grants = [g for plan in s.plans for g in _traffic_grants(plan, s) if g.capability == capability]
    out: list[Statement] = []
    seen: dict[str, int] = {}
    for grant, resources in _by_action(grants):
        sid = named.get(grant.action) or prefix + _sid_words(grant.action)
        seen[sid] = seen.get(sid, 0) + 1
        if seen[sid] > 1:  # the same action again, under another condition
            sid = f"{sid}{seen[sid]}"
        out.append(_stmt(sid, [grant.action], resources, grant.condition))
    order = list(named.values())
    return sorted(out, key=lambda st: order.index(st["Sid"]) if st["Sid"] in order else len(order))


def _traffic_read(s: Scope) -> list[Statement]:
    # TrafficRouter.read/verify: the kind's reads (Route 53 records or health checks, SageMaker variants),
    # and the hosted zone looked up by name when a plan names it so.
    return _traffic_statements(s, "traffic-find-zone") + _traffic_statements(s, "traffic-read")


def _traffic_shift(s: Scope) -> list[Statement]:
    # TrafficRouter.shift: the one atomic call of each plan's kind (a Route 53 change batch UPSERTing the two
    # weighted records, UpdateHealthCheck of failover records, UpdateEndpointWeightsAndCapacities), one
    # statement per plan so that each keeps its own conditions.
    out: list[Statement] = []
    for index, plan in enumerate(s.plans):
        shift = [g for g in _traffic_grants(plan, s) if g.capability == "traffic-shift"]
        for part, (grant, resources) in enumerate(_by_action(shift)):
            sid = f"TrafficShift{index}" + (f"Part{part + 1}" if part else "")
            out.append(_stmt(sid, [grant.action], resources, grant.condition))
    return out


def _replication_list(s: Scope) -> list[Statement]:
    # check_replication / failback readiness: ListObjectsV2 of each S3 asset's source and replica prefix
    # (the "asset-list" grants of the asset kinds).
    return _kind_statements("Replication", _kind_grants(s, "asset-list"))


def _notify(s: Scope) -> list[Statement]:
    # Notifier.publish: Publish to the plans' topics (sts:GetCallerIdentity needs no permission). Topics this
    # stack creates are encrypted with Lifeboat's key, which SNS uses on the publisher's behalf.
    out = [_stmt("Notify", ["sns:Publish"], list(s.topic_arns))] if s.topic_arns else []
    if s.own_topic_arns:
        out.append(
            _stmt(
                "NotifyEncrypt",
                ["kms:GenerateDataKey*", "kms:Decrypt"],
                [s.key_arn],
                {"StringEquals": {"kms:ViaService": {"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"}}},
            )
        )
    return out


def _machines(s: Scope, kind: str) -> tuple[str, ...]:
    if kind == "*":
        return tuple(name for names in s.machines.values() for name in names)
    return s.machines.get(kind, ())


def _states_start(s: Scope, kind: str) -> list[Statement]:
    # Executions.start: ListStateMachines (find by name), then StartExecution (idempotent by name).
    out = [_stmt(f"StatesFind{_camel(kind)}", ["states:ListStateMachines"], ["*"])]
    machines = _machines(s, kind)
    if machines:
        arns = [_state_machine_arn(m) for m in machines]
        out.append(_stmt(f"StatesStart{_camel(kind)}", ["states:StartExecution"], arns))
    return out


def _states_stop(s: Scope, kind: str) -> list[Statement]:
    # Executions.stop (cancel a pending failover, abort a failback) after Executions.describe.
    machines = _machines(s, kind)
    if not machines:
        return []
    arns = [_executions_arn(m) for m in machines]
    return [_stmt(f"StatesStop{_camel(kind)}", ["states:StopExecution", "states:DescribeExecution"], arns)]


def _states_callback(s: Scope, kind: str) -> list[Statement]:
    # Executions.send_task_success: completes a waitForTaskToken task of that kind's state machines. AWS
    # authorizes SendTaskSuccess on "*" only (UNSCOPABLE_WRITES): granted when such machines run here.
    if not _machines(s, kind):
        return []
    return [_stmt(f"StatesCallback{_camel(kind)}", ["states:SendTaskSuccess"], ["*"])]


def _states_read(s: Scope) -> list[Statement]:
    # Executions (finding machines, listing, describing, histories): Lifeboat's machines only (prefix).
    prefix = s.machine_prefix
    return [
        _stmt("StatesFind", ["states:ListStateMachines"], ["*"]),
        _stmt("StatesListExecutions", ["states:ListExecutions"], [_state_machine_arn(f"{prefix}-*")]),
        _stmt(
            "StatesReadExecutions",
            ["states:DescribeExecution", "states:GetExecutionHistory"],
            [_executions_arn(f"{prefix}-*")],
        ),
    ]


def _resources_inspect(s: Scope) -> list[Statement]:
    # ResourceReader (plan validation): what the asset kinds' checks read (their "inspect" grants: bucket
    # versioning and replication, manifest listings, tables, model package groups), the traffic kinds' own
    # resources (health checks...), SageMaker endpoints, topics, and a simulation of the caller's own role.
    out = _kind_statements("Inspect", _kind_grants(s, "inspect"))
    out += _traffic_statements(s, "inspect")
    endpoints = _sagemaker_endpoints(s)
    if endpoints:
        out.append(_stmt("InspectEndpoints", ["sagemaker:DescribeEndpoint"], endpoints))
    if s.topic_arns:
        out.append(_stmt("InspectTopics", ["sns:GetTopicAttributes"], list(s.topic_arns)))
    if s.own_role_arn is not None:
        out.append(_stmt("InspectOwnRole", ["iam:SimulatePrincipalPolicy"], [s.own_role_arn]))
    return out


def _assess_read(s: Scope) -> list[Statement]:
    # AssessmentReader.gather (services/assessment.py): read-only looks at what each plan names. Buckets of
    # every S3 location (location, versioning, default encryption, policy; replication rules on the source
    # side), the registry manifests' listings, tables (and their point-in-time recovery), model package
    # groups, SageMaker endpoints and their configs, the trigger alarms, the DNS records (the traffic kind's
    # own reads) and Lifeboat's state machines in the secondary region (ListStateMachines: "*" only).
    buckets: list[str] = []
    sources: list[str] = []
    manifests: dict[str, set[str]] = {}
    tables: list[str] = []
    groups: list[str] = []
    for plan in s.plans:
        for asset in plan.assets:
            src, rep = getattr(asset, "source", None), getattr(asset, "replica", None)
            if isinstance(src, S3Location) and isinstance(rep, S3Location):
                buckets += [f"{ARN}:s3:::{src.bucket}", f"{ARN}:s3:::{rep.bucket}"]
                sources.append(f"{ARN}:s3:::{src.bucket}")
                if isinstance(asset, ModelRegistryAsset):
                    for loc in (src, rep):
                        manifests.setdefault(f"{ARN}:s3:::{loc.bucket}", set()).add(loc.prefix)
            if isinstance(asset, DynamoDBAsset):
                for region, table in (
                    (plan.regions.primary, asset.table),
                    (plan.regions.secondary, asset.replica_table_name),
                ):
                    tables.append(f"{ARN}:dynamodb:{region}:{ACCOUNT}:table/{table}")
            if isinstance(asset, ModelRegistryAsset) and asset.model_package_group:
                for region in (plan.regions.primary, plan.regions.secondary):
                    group = asset.model_package_group.lower()
                    groups.append(f"{ARN}:sagemaker:{region}:{ACCOUNT}:model-package-group/{group}")
    out: list[Statement] = []
    bucket_reads = [
        "s3:GetBucketLocation",
        "s3:GetBucketVersioning",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketPolicy",
    ]
    if buckets:
        out.append(_stmt("AssessBuckets", bucket_reads, [_sub(b) for b in _unique(buckets)]))
        out.append(
            _stmt(
                "AssessReplication", ["s3:GetReplicationConfiguration"], [_sub(b) for b in _unique(sources)]
            )
        )
    out += _list_bucket("AssessManifests", manifests)
    if tables:
        actions = ["dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups"]
        out.append(_stmt("AssessTables", actions, [_sub(t) for t in _unique(tables)]))
    if groups:
        out.append(
            _stmt("AssessModelGroups", ["sagemaker:DescribeModelPackageGroup"], [_sub(g) for g in groups])
        )
    endpoints = _sagemaker_endpoints(s)
    for plan in s.plans:
        if isinstance(plan.traffic, SageMakerVariantsTraffic):
            endpoints.append(_sagemaker_endpoint(plan.traffic.region, plan.traffic.endpoint_name))
    if endpoints:
        regions = sorted({r for p in s.plans for r in (p.regions.primary, p.regions.secondary)})
        configs = [_sub(f"{ARN}:sagemaker:{r}:{ACCOUNT}:endpoint-config/*") for r in regions]
        out.append(_stmt("AssessEndpoints", ["sagemaker:DescribeEndpoint"], _unique(endpoints)))
        out.append(_stmt("AssessEndpointConfigs", ["sagemaker:DescribeEndpointConfig"], configs))
    out += _alarms_read(s) + _traffic_read(s)
    out.append(_stmt("AssessStateMachines", ["states:ListStateMachines"], ["*"]))
    # S3 replication metrics (ReplicationLatency) of the assets' rules: CloudWatch has no resource types
    if buckets:
        out.append(_stmt("AssessReplicationMetrics", ["cloudwatch:GetMetricStatistics"], ["*"]))
    return out


def _evidence_write(s: Scope) -> list[Statement]:
    # Reports and evidence (verification runs): PutObject/GetObject in the evidence bucket.
    return [_stmt("EvidenceWrite", ["s3:PutObject", "s3:GetObject"], [s.evidence_objects_arn])]


def _evidence_list(s: Scope) -> list[Statement]:
    # verification.task_finalize -> EvidenceStore.iter_json: ListObjectsV2 of the run's shard results under
    # verification/<workload>/<run>/shards/; EvidenceStore.get_json of a report that may not exist yet
    # (problems.json): S3 answers 404 only to a caller allowed s3:ListBucket on the bucket, 403 AccessDenied
    # to anyone else, and a prefix condition does not hold there (the read has no s3:prefix). So the grant
    # covers the whole evidence bucket (Lifeboat's own reports).
    return [_stmt("EvidenceList", ["s3:ListBucket"], [s.evidence_bucket_arn])]


def _evidence_read(s: Scope) -> list[Statement]:
    # GET /drills/{drill_id}: GetObject of a drill record in the evidence bucket.
    return [_stmt("EvidenceRead", ["s3:GetObject"], [s.evidence_objects_arn])]


def _events_put(s: Scope) -> list[Statement]:
    # DrillRequests.publish: drill requests (source lifeboat.drills) on the default event bus.
    bus = _sub(f"{ARN}:events:${{AWS::Region}}:{ACCOUNT}:event-bus/default")
    return [
        _stmt(
            "DrillRequests",
            ["events:PutEvents"],
            [bus],
            {"StringEquals": {"events:source": "lifeboat.drills"}},
        )
    ]


DRILL_PREFIX = "lifeboat-drill/"  # services.drills.WRITE_PREFIX


def _drill_writes(s: Scope) -> list[Statement]:
    # DrillRunner: timestamped objects under <asset prefix>lifeboat-drill/ (written on the source, compared
    # with the replica, deleted from both afterwards); nothing else of an asset is ever written or deleted.
    # The prefixes the asset kinds list for replication (asset-list), each with the drill's sub-prefix.
    # drills._purge_prefix removes every version and delete marker under that prefix (ListObjectVersions,
    # DeleteObjects with version ids), so a versioned bucket does not grow by each drill's writes.
    prefixes: dict[str, set[str]] = {}
    for bucket, found in _listed(_kind_grants(s, "asset-list")).items():
        prefixes[bucket] = {f"{p}{DRILL_PREFIX}" for p in found}
    objects = [_sub(f"{b}/{p}*") for b, ps in sorted(prefixes.items()) for p in sorted(ps)]
    if not objects:
        return []
    out = [_stmt("DrillWrites", ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"], objects)]
    for index, (bucket, found) in enumerate(sorted(prefixes.items())):
        condition = {"StringLike": {"s3:prefix": sorted(f"{p}*" for p in found)}}
        actions = ["s3:ListBucket", "s3:ListBucketVersions"]
        out.append(_stmt(f"DrillList{index}", actions, [_sub(bucket)], condition))
    return out


RESTORE_PREFIX = "lifeboat-restore/"  # chalicelib.models.restore.RESTORE_PREFIX


def _assets_restore(s: Scope) -> list[Statement]:
    # services.restore (resolve, run_batches -> adapters/restore_s3.ObjectRestorer) on each S3 asset's
    # source and replica (a restore reads and writes the side it is asked for): GetBucketVersioning,
    # ListObjectVersions of the asset's prefix, ListObjectsV2 of the target (it must be empty), HeadObject
    # or GetObject of a version (its checksum, or its bytes when no checksum proves the copy), CopyObject from
    # it (GetObjectVersion and its tags). Copies go to <bucket>/lifeboat-restore/<asset>/... or, in place,
    # over the asset (PutObject and its tags; DeleteObject: keys created after the restore time get delete
    # markers, no version is ever deleted). Any other target needs the operator's own credentials (the CLI).
    buckets: dict[str, set[str]] = {}
    reads: list[Any] = []
    writes: list[Any] = []
    for plan in s.plans:
        for asset in plan.assets:
            if not isinstance(asset, S3Asset):
                continue
            for loc in (asset.source, asset.replica):
                bucket = f"{ARN}:s3:::{loc.bucket}"
                restored = f"{RESTORE_PREFIX}{asset.name}/"
                buckets.setdefault(bucket, set()).update({loc.prefix, restored})
                reads += [_sub(f"{bucket}/{loc.prefix}*"), _sub(f"{bucket}/{restored}*")]
                writes += [_sub(f"{bucket}/{loc.prefix}*"), _sub(f"{bucket}/{restored}*")]
    if not buckets:
        return []
    out = [
        _stmt("RestoreBuckets", ["s3:GetBucketVersioning"], [_sub(b) for b in sorted(buckets)]),
        _stmt(
            "RestoreRead",
            ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging"],
            _unique(reads),
        ),
        _stmt("RestoreWrite", ["s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"], _unique(writes)),
    ]
    for index, (bucket, prefixes) in enumerate(sorted(buckets.items())):
        condition = (
            None if "" in prefixes else {"StringLike": {"s3:prefix": sorted(f"{p}*" for p in prefixes)}}
        )
        out.append(
            _stmt(
                f"RestoreList{index}", ["s3:ListBucket", "s3:ListBucketVersions"], [_sub(bucket)], condition
            )
        )
    return out


def _restore_test_cleanup(s: Scope) -> list[Statement]:
    # restore_test.run_restore_test -> ObjectRestorer.purge: every version of the test's scratch prefix
    # (lifeboat-restore/<asset>/test-<time>/) removed (ListObjectVersions is in assets.restore; DeleteObjects
    # with version ids). Only there: no role may delete a version of an asset's own data.
    scratch = [
        _sub(f"{ARN}:s3:::{asset.source.bucket}/{RESTORE_PREFIX}{asset.name}/test-*")
        for plan in s.plans
        for asset in plan.assets
        if isinstance(asset, S3Asset)
    ]
    if not scratch:
        return []
    return [_stmt("RestoreTestCleanup", ["s3:DeleteObject", "s3:DeleteObjectVersion"], _unique(scratch))]


def _rollback_plans(s: Scope) -> list[tuple[DRPlan, ModelRegistryAsset]]:
    return [
        (plan, asset) for plan in s.plans for asset in plan.assets if isinstance(asset, ModelRegistryAsset)
    ]


def _models_rollback_read(s: Scope) -> list[Statement]:
    # services.rollback.resolve: ModelDeployer.current (SageMaker endpoints: DescribeEndpoint ->
    # DescribeEndpointConfig -> DescribeModel; an http endpoint's GET /ping needs no IAM) and
    # ModelRegistry.versions in the endpoint's region: an S3 registry's manifests (ListObjectsV2 of the
    # manifest prefix, GetObject of each), a SageMaker registry's packages (ListModelPackages, "*" only;
    # DescribeModelPackage of the group's packages).
    manifests: dict[str, set[str]] = {}
    objects: list[Any] = []
    packages: list[Any] = []
    for plan, asset in _rollback_plans(s):
        for loc in (asset.source, asset.replica):
            if loc is not None:
                manifests.setdefault(f"{ARN}:s3:::{loc.bucket}", set()).add(loc.prefix)
                objects.append(_sub(f"{ARN}:s3:::{loc.bucket}/{loc.prefix}*"))
        if asset.model_package_group:
            group = asset.model_package_group.lower()
            for region in (plan.regions.primary, plan.regions.secondary):
                packages.append(_sub(f"{ARN}:sagemaker:{region}:{ACCOUNT}:model-package/{group}/*"))
    out = _list_bucket("RollbackManifestsList", manifests)
    if objects:
        out.append(_stmt("RollbackManifests", ["s3:GetObject"], _unique(objects)))
    if packages:
        out.append(_stmt("RollbackPackagesList", ["sagemaker:ListModelPackages"], ["*"]))
        out.append(_stmt("RollbackPackages", ["sagemaker:DescribeModelPackage"], _unique(packages)))
    endpoints = _rollback_endpoints(s)
    if endpoints:
        regions = sorted({r for p, _ in _rollback_plans(s) for r in (p.regions.primary, p.regions.secondary)})
        out.append(_stmt("RollbackEndpoints", ["sagemaker:DescribeEndpoint"], endpoints))
        out.append(
            _stmt(
                "RollbackEndpointConfigs",
                ["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
                [
                    _sub(f"{ARN}:sagemaker:{r}:{ACCOUNT}:{kind}/*")
                    for r in regions
                    for kind in ("endpoint-config", "model")
                ],
            )
        )
    return out


def _rollback_endpoints(s: Scope) -> list[Any]:
    arns = []
    for plan, _ in _rollback_plans(s):
        for role in ("primary", "secondary"):
            endpoint = plan.endpoint_for(role)  # type: ignore[arg-type]
            if isinstance(endpoint, SageMakerEndpoint):
                arns.append(_sagemaker_endpoint(plan.region_of(role), endpoint.endpoint_name))  # type: ignore[arg-type]
    return _unique(arns)


def _models_rollback_deploy(s: Scope) -> list[Statement]:
    # services.rollback.deploy/revert on SageMaker endpoints (ModelDeployer.deploy_sagemaker/switch_config):
    # CreateModel (named <endpoint>-v<version>-<time>, from the version's model package or model data, with
    # the execution role the endpoint's current model has: iam:PassRole to SageMaker only),
    # CreateEndpointConfig (the current config with that model), UpdateEndpoint of the plans' endpoints to
    # it or back. Names start with the endpoint's. Nothing is deleted. http endpoints are deployed
    # through their model server's own /admin/model (no IAM).
    models: list[Any] = []
    configs: list[Any] = []
    endpoints: list[Any] = []
    for plan, _ in _rollback_plans(s):
        for role in ("primary", "secondary"):
            endpoint = plan.endpoint_for(role)  # type: ignore[arg-type]
            if not isinstance(endpoint, SageMakerEndpoint):
                continue
            region, name = plan.region_of(role), endpoint.endpoint_name.lower()  # type: ignore[arg-type]
            models.append(_sub(f"{ARN}:sagemaker:{region}:{ACCOUNT}:model/{name}-v*"))
            configs.append(_sub(f"{ARN}:sagemaker:{region}:{ACCOUNT}:endpoint-config/{name}*"))
            endpoints.append(_sagemaker_endpoint(region, endpoint.endpoint_name))
    if not endpoints:
        return []
    out = [
        _stmt("RollbackCreateModel", ["sagemaker:CreateModel"], _unique(models)),
        _stmt("RollbackCreateConfig", ["sagemaker:CreateEndpointConfig"], _unique(configs)),
        _stmt("RollbackUpdateEndpoint", ["sagemaker:UpdateEndpoint"], _unique(endpoints) + _unique(configs)),
    ]
    out.append(
        _stmt(
            "RollbackPassRole",
            ["iam:PassRole"],
            [_sub(f"{ARN}:iam::{ACCOUNT}:role/*")],
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
    )
    return out


def _assets_verify(s: Scope) -> list[Statement]:
    # services.verification (plan_shards, run_shard -> the asset kinds' checkers): their "asset-verify"
    # grants, e.g. bucket versioning and replication rules, listings and version listings, object heads and
    # manifests of both sides, the SageMaker registry's packages, the DynamoDB tables and backups.
    return _kind_statements("Verify", _kind_grants(s, "asset-verify"))


def _replication_redrive(s: Scope) -> list[Statement]:
    # services.replication_events: HeadObject of the failed source version, then CopyObject into the replica
    # (metadata and tags copied): the asset kinds' "asset-redrive" grants.
    return _kind_statements("Redrive", _kind_grants(s, "asset-redrive"))


def _key_locations(s: Scope, use: str) -> dict[tuple[str, ...], list[str]]:
    """KMS actions -> the customer-managed keys (S3Location.kms_key) of the asset locations `use` reads or
    writes through S3 (infra/permissions.py FUNCTIONS: asset.keys:<use>)."""
    decrypt, encrypt = ("kms:Decrypt",), ("kms:GenerateDataKey",)
    found: dict[tuple[str, ...], list[str]] = {}
    for plan in s.plans:
        for asset in plan.assets:
            # Any kind's S3 locations (S3 assets, a registry's manifests): what S3 reads or writes for it.
            source, replica, inventory = (
                loc if isinstance(loc, S3Location) else None
                for loc in (getattr(asset, f, None) for f in ("source", "replica", "inventory"))
            )
            if source is None and replica is None:
                continue
            if use == "verify":  # manifests, inventories, artifacts read on both sides (GetObject)
                wanted = [(decrypt, loc) for loc in (source, replica, inventory)]
            elif use == "redrive":  # CopyObject reads the source version and writes the replica
                wanted = [(decrypt, source), (encrypt, replica)]
            elif use == "restore" and asset.kind == "s3":  # CopyObject within the side restored
                wanted = [(decrypt, source), (encrypt, source), (decrypt, replica), (encrypt, replica)]
            elif use == "drill" and asset.kind == "s3":  # PutObject of the drill's writes (S3 assets)
                wanted = [(encrypt, source)]
            else:
                wanted = []
            for actions, loc in wanted:
                if loc is not None and loc.kms_key:
                    keys = found.setdefault(actions, [])
                    keys += [loc.kms_key] if loc.kms_key not in keys else []
    return found


def _asset_keys(s: Scope, use: str) -> list[Statement]:
    # Assets whose buckets encrypt with a customer-managed KMS key: S3 calls KMS with the caller's
    # permissions, so the role needs the key, and only through S3 in the key's (= the bucket's) region.
    out: list[Statement] = []
    for actions, keys in sorted(_key_locations(s, use).items()):
        by_region: dict[str, list[str]] = {}
        for key in keys:
            by_region.setdefault(key.split(":")[3], []).append(key)
        for region, region_keys in sorted(by_region.items()):
            via = {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}
            sid = f"AssetKeys{_camel(use)}{len(out)}"
            out.append(_stmt(sid, actions, sorted(region_keys), via))
    return out


def _queue_consume(s: Scope) -> list[Statement]:
    # Chalice on_sqs_message functions: the Lambda event-source mapping polls with the function's role.
    if not s.consumed_queue_arns:
        return []
    actions = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
    ]
    return [_stmt("QueueConsume", actions, list(s.consumed_queue_arns))]


def _camel(kind: str) -> str:
    return "All" if kind == "*" else "".join(part.capitalize() for part in kind.split("-"))


def _unique(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


CAPABILITIES: dict[str, Callable[..., list[Statement]]] = {
    "plans.read": _plans_read,
    "plans.write": _plans_write,
    "ledger.read": _ledger_read,
    "ledger.write": _ledger_write,
    "locks.read": _locks_read,
    "locks.write": _locks_write,
    "claims": _claims,
    "control.read": _control_read,
    "control.write": _control_write,
    "idempotency": _idempotency,
    "alarms.read": _alarms_read,
    "endpoints.invoke": _endpoints_invoke,
    "models.identify": _models_identify,
    "traffic.read": _traffic_read,
    "traffic.shift": _traffic_shift,
    "replication.list": _replication_list,
    "notify": _notify,
    "states.read": _states_read,
    "states.start": _states_start,  # states.start:<kind>
    "states.stop": _states_stop,  # states.stop:<kind>
    "states.callback": _states_callback,  # states.callback:<kind>
    "resources.inspect": _resources_inspect,
    "evidence.write": _evidence_write,
    "assets.verify": _assets_verify,
    "assets.restore": _assets_restore,
    "restore.test_cleanup": _restore_test_cleanup,
    "replication.redrive": _replication_redrive,
    "asset.keys": _asset_keys,  # asset.keys:<verify|redrive|drill|restore>
    "queue.consume": _queue_consume,
    "evidence.read": _evidence_read,
    "evidence.list": _evidence_list,
    "events.put": _events_put,
    "drill.writes": _drill_writes,
    "assess.read": _assess_read,
    "models.rollback": _models_rollback_read,
    "models.deploy": _models_rollback_deploy,
}

_SMOKE = ("endpoints.invoke", "ledger.read", "ledger.write")  # services.smoke.run_smoke (records the verdict)
_SHIFT = ("traffic.read", "traffic.shift", "ledger.read")  # router.shift after last_smoke_passed
_ALARM_HANDLER = (
    "plans.read",
    "idempotency",
    "alarms.read",
    "ledger.read",
    "ledger.write",
    "claims",  # one claim per quorum (Ledger.claim/release_claim)
    "states.start:failover",
    "states.stop:failover",
)

# Chalice function name -> capabilities (service function it calls, in the comment).
FUNCTIONS: dict[str, tuple[str, ...]] = {
    # tasks.load_plan -> PlanStore.get
    "load_plan": ("plans.read",),
    # failover.acquire_lock -> plans.get + LockTable.acquire, then Ledger state (a decided failover is no
    # longer pending)
    "acquire_lock": ("plans.read", "locks.write", "ledger.read", "ledger.write"),
    # failover.release_lock -> LockTable.release
    "release_lock": ("locks.write",),
    # failover.recheck_trigger -> AlarmReader.snapshots + Ledger.get_state
    "recheck_trigger": ("plans.read", "alarms.read", "ledger.read"),
    # failover.probe_endpoint / smoke_test -> run_smoke (endpoints + ledger state)
    "probe_endpoint": ("plans.read", *_SMOKE),
    "smoke_test": ("plans.read", *_SMOKE),
    # failover.check_replication -> iter_objects on each S3 asset's source and replica, lease renewal; a
    # source it cannot list (the primary's APIs down): replica_exposure reads what replication events
    # recorded (asset#<name> in the ledger) and Ledger.record writes the rpo-exposed entry
    "check_replication": ("plans.read", "replication.list", "locks.write", "ledger.read", "ledger.write"),
    # failover.shift_traffic -> lease renewal (LockTable.acquire), TrafficRouter.read + shift
    "shift_traffic": ("plans.read", "locks.write", *_SHIFT),
    # failover.verify_traffic -> TrafficRouter.verify
    "verify_traffic": ("plans.read", "traffic.read"),
    # failover.record_failover -> Ledger.update_state
    "record_failover": ("plans.read", "ledger.read", "ledger.write"),
    # failover.conclude -> LockTable.current (only the holder reconciles), reconcile (router read/shift),
    # read-back into Ledger.update_state, Ledger.record/mark_concluded, Notifier.publish
    "conclude": ("plans.read", "locks.read", "ledger.read", "ledger.write", *_SHIFT, "notify"),
    # trigger.on_alarm_event -> idempotency, AlarmReader, Ledger (claim/record/state), start/stop failover
    "on_alarm": _ALARM_HANDLER,
    # trigger.on_alarm_action -> the same policy as on_alarm, for an alarm's Lambda action payload
    "on_alarm_action": _ALARM_HANDLER,
    # failback.check_readiness -> run_smoke, ModelInspector.identify, router.read, replication listings
    "failback_readiness": ("plans.read", *_SMOKE, "models.identify", "traffic.read", "replication.list"),
    # failback.await_operator -> lease renewal, Ledger control record, send_task_success, Notifier.publish
    "failback_await": (
        "plans.read",
        "locks.write",
        "ledger.read",
        "ledger.write",
        "control.write",
        "states.callback:failback",
        "notify",
    ),
    # failback.shift_step -> Ledger.get_control, lease renewal (LockTable.acquire), router.shift, record
    "failback_shift": ("plans.read", "control.read", "locks.write", "ledger.write", *_SHIFT),
    # failback.check_bake -> Ledger.get_control, lease renewal
    "failback_bake": ("plans.read", "control.read", "locks.write"),
    # failback.evaluate_step_gates -> AlarmReader.snapshots + run_smoke
    "failback_gates": ("plans.read", "alarms.read", *_SMOKE),
    # failback.rollback -> router.shift
    "failback_rollback": ("plans.read", *_SHIFT),
    # failback.record_failback -> Ledger.entries/update_state
    "failback_record": ("plans.read", "ledger.read", "ledger.write"),
    # failback.conclude -> LockTable.current, reconcile (router), read-back into the state, Ledger.record/
    # mark_concluded/delete_control, Notifier.publish
    "failback_conclude": (
        "plans.read",
        "locks.read",
        "ledger.read",
        "ledger.write",
        "control.write",
        *_SHIFT,
        "notify",
    ),
    # janitor.tidy_up (EventBridge: Step Functions execution ended) -> Ledger.concluded_by/mark_concluded,
    # LockTable.current/release (conditional on the holder), TrafficRouter.read into the state, Ledger.record,
    # Notifier.publish. It moves traffic in one case only: a run that still held the lock left all of it on
    # a target that failed its last smoke test (janitor._retreat -> router.shift, safety rules apply).
    "on_execution_end": (
        "plans.read",
        "ledger.read",
        "ledger.write",
        "control.write",  # the ended failback's flags and task tokens (Ledger.delete_control)
        "locks.write",
        *_SHIFT,
        "notify",
    ),
    # failback_ops.evaluate_auto_failback (schedule) -> run_smoke, locks.current, Ledger (the primary's
    # healthy window: a control item), start failback
    "failback_auto": ("plans.read", *_SMOKE, "locks.read", "control.write", "states.start:failback"),
    # verification.task_plan_run -> plan_shards (versioning, listings) + EvidenceStore.put_json
    "verify_plan": ("plans.read", "assets.verify", "asset.keys:verify", "evidence.write"),
    # verification.task_run_shard -> one shard (bucket settings: bucket_protection) + EvidenceStore.put_json
    "verify_shard": (
        "plans.read",
        "assets.verify",
        "asset.keys:verify",
        "evidence.write",
    ),
    # verification.task_finalize -> EvidenceStore get/put, the shard results (iter_json), Ledger.record,
    # Notifier.publish (alert)
    "verify_finalize": (
        "plans.read",
        "evidence.write",
        "evidence.list",
        "ledger.read",
        "ledger.write",
        "notify",
    ),
    # verification.start_scheduled (schedule) -> Executions.start(verify) per plan
    "verify_scheduled": ("plans.read", "states.start:verify"),
    # replication_events.handle_batch (SQS) -> Ledger claims/records, re-drive copy, Notifier.publish
    "on_replication_event": (
        "plans.read",
        "ledger.read",
        "ledger.write",
        "claims",
        "replication.redrive",
        "asset.keys:redrive",
        "notify",
    ),
    # drills.run_requested (EventBridge: lifeboat.drills) -> DrillRunner.run: pre-conditions (router, locks,
    # executions, alarms, smoke), the dataset writes, faults through the drill target's HTTP fault API,
    # failback start, a data-corruption drill's in-place restores, cleanup (stop/release/reconcile),
    # histories, evidence, ledger.
    "drill_run": (
        "plans.read",
        "ledger.read",
        "ledger.write",
        "control.write",  # the drill's own lease on its subject (control#<workload>#drill)
        "locks.read",
        "locks.write",
        "alarms.read",
        "endpoints.invoke",
        *_SHIFT,
        "replication.list",
        "drill.writes",
        "asset.keys:drill",
        # data-corruption (local cloud only: an account's drill target cannot take it) restores the damaged
        # assets in place, as restore_batch does, and compares their keys on both sides
        "assets.restore",
        "asset.keys:restore",
        "states.read",
        "states.start:failback",
        "states.stop:failover",
        "states.stop:failback",
        "evidence.write",
    ),
    # assessment.assess_scheduled (schedule) -> per plan: the ledger's drills and state, asset states
    # (Ledger/AssetStateStore queries), the last verification report and the reports written
    # (EvidenceStore get_json of a report that may not exist: 404 needs ListBucket), AssessmentReader.gather
    "assess_scheduled": ("plans.read", "ledger.read", "evidence.write", "evidence.list", "assess.read"),
    # restore.task_plan -> resolve: the plan, GetBucketVersioning, the target's listing (must be empty)
    "restore_plan": ("plans.read", "assets.restore"),
    # restore.task_batch -> run_batches: ListObjectVersions, CopyObject (+ HeadObject/GetObject to verify),
    # DeleteObject in place
    "restore_batch": ("assets.restore", "asset.keys:restore"),
    # restore.task_record -> publish: EvidenceStore.put_json, Ledger.record (metrics are log lines)
    "restore_record": ("evidence.write", "ledger.write"),
    # restore_test.run_scheduled (schedule) -> per S3 asset: a sample restored to scratch (as restore_batch),
    # the scratch purged, EvidenceStore.put_json, Ledger.record
    "restore_test_scheduled": (
        "plans.read",
        "assets.restore",
        "asset.keys:restore",
        "restore.test_cleanup",
        "evidence.write",
        "ledger.write",
    ),
    # rollback.task_plan -> resolve: the plan, what the endpoint serves, the registry's versions
    "rollback_plan": ("plans.read", "models.rollback"),
    # rollback.task_deploy -> deploy: CreateModel, CreateEndpointConfig, UpdateEndpoint (SageMaker), then a
    # first DescribeEndpoint (settle); every rollback step renews the workload lock (LockTable.acquire)
    "rollback_deploy": ("plans.read", "models.rollback", "models.deploy", "locks.write"),
    # rollback.task_settle -> settle: DescribeEndpoint
    "rollback_settle": ("plans.read", "models.rollback", "locks.write"),
    # rollback.task_smoke -> run_smoke (endpoints, the verdict in the ledger state)
    "rollback_smoke": ("plans.read", *_SMOKE, "locks.write"),
    # rollback.task_revert -> revert: UpdateEndpoint back (SageMaker); an http endpoint's artifact from the
    # registry, then DescribeEndpoint (settle)
    "rollback_revert": ("plans.read", "models.rollback", "models.deploy", "locks.write"),
    # rollback.task_record -> publish (EvidenceStore.put_json, Ledger.record) after reverting a failed run
    # that deployed and was not reverted yet (as rollback_revert)
    "rollback_record": ("plans.read", "models.rollback", "models.deploy", "evidence.write", "ledger.write"),
    # drills.schedule_monthly (schedule) -> request_drill per plan: resolve the target, put the request
    "drill_monthly": ("plans.read", "ledger.write", "events.put"),
    # The REST API (console, executions, failover/failback operations and controls, plan validation).
    "api_handler": (
        "plans.read",
        "ledger.read",
        "ledger.write",
        "control.write",  # failback approvals, pause/resume/fast-track/abort flags
        "locks.read",
        "locks.write",  # failback_ops.abort releases the lock of the aborted run
        "endpoints.invoke",  # status probes and dry runs (run_smoke, record=False)
        *_SHIFT,  # failback_ops.abort reconciles traffic
        "alarms.read",  # validate_plan
        "notify",  # failback_ops.abort notifies
        "states.read",
        "states.start:*",
        "states.stop:*",
        "states.callback:failback",  # approve/reject/resume/fast-track a failback
        "resources.inspect",  # validate_plan
        "events.put",  # POST /workloads/{workload}/drills hands the drill to drill_run
        "evidence.read",  # GET /drills/{drill_id}
        # POST /workloads/{workload}/assess (services/assessment.py, as assess_scheduled) and the last
        # assessment's summary in status (a report that may not exist yet: ListBucket for its 404)
        "assess.read",
        "evidence.write",
        "evidence.list",
    ),
}


def statements_for(function: str, scope: Scope) -> list[Statement]:
    """Every statement `function` needs, deduplicated by Sid (first wins)."""
    if function not in FUNCTIONS:
        raise MissingPermissions([function])
    out: dict[str, Statement] = {}
    capabilities = list(FUNCTIONS[function])
    if scope.consumed_queue_arns:
        capabilities.append("queue.consume")
    for capability in capabilities:
        name, _, arg = capability.partition(":")
        builder = CAPABILITIES[name]
        for statement in builder(scope, arg) if arg else builder(scope):
            out.setdefault(statement["Sid"], statement)
    return list(out.values())
