"""The CloudFormation merge template of one Lifeboat copy (stage + region), from the app and the plans.

`chalice package --merge-template` deep-merges this into the SAM template Chalice generates: dicts merge,
lists
replace. So this template owns every list it touches (IAM policies, event patterns) and only adds keys to the
resources Chalice makes (functions, their roles and events). Everything is derived:
- functions, roles and events from the Chalice app (`app_functions`), with IAM from infra/permissions.py;
- state machines from `chalicelib/workflows/<kind>.py: build_<kind>(plan, resolve)` for every module that has
  one (failover today, failback/verify as they land), placed in the region each kind activates;
- alarms, topics, queue policies and forwarding rules from the plans.

Topology (docs/deploy.md): one copy per region of the plans. The ledger and locks tables are DynamoDB global
tables created by the copy in the home region; every copy has its own idempotency table, buckets, queues,
topics and functions. A plan's failover machine lives only in its secondary region (the region the failover
activates) and its failback machine only in its primary region, so exactly one copy can run each operation.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from chalice.utils import to_cfn_resource_name

from chalicelib.models.plan import DRPlan, ModelRegistryAsset, S3Asset, route53_records
from infra import permissions
from localcloud.resources import DLQ_MAX_RECEIVE_COUNT, IDEMPOTENCY_TTL_ATTRIBUTE, ResourceNames, names

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
# Alarm-driven handlers -> the operation (state machine kind) they start. Their EventBridge rule only matches
# the alarms of plans whose `kind` machine runs in this region.
ALARM_HANDLERS: dict[str, str] = {"on_alarm": "failover"}
# Functions a CloudWatch alarm invokes directly as its Lambda action -> the operation they start. CloudWatch
# may invoke them only for the trigger alarms that live in this region (an alarm's action runs in its own
# region) of plans whose `kind` machine runs here: the same alarms the EventBridge rule matches here.
ALARM_ACTION_HANDLERS: dict[str, str] = {"on_alarm_action": "failover"}
ALARM_ACTION_PRINCIPAL = "lambda.alarms.cloudwatch.amazonaws.com"
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
# Execution-status handlers -> the state machine kinds they clean up after. Their EventBridge rule only
# matches executions of those kinds' machines in this region.
EXECUTION_HANDLERS: dict[str, tuple[str, ...]] = {"on_execution_end": ("failover", "failback", "rollback")}
# Which role's region runs a state machine kind: the region a failover/failback activates; a verification
# runs next to the replica it proves. Kinds not listed are deployed in both regions of the plan.
PLACEMENT: dict[str, str] = {"failover": "secondary", "failback": "primary", "verify": "secondary"}
# Metric an RPO measurement emits when it breaches the objective (namespace Lifeboat; workload, service).
RPO_BREACH_METRIC = "RPOBreached"
# Metric a scheduled restore test emits when its projected full restore exceeds the RTO, or it failed
# (chalicelib/services/restore_test.BREACH_METRIC).
RESTORE_TEST_BREACH_METRIC = "RestoreTestBreached"
METRIC_NAMESPACE = "Lifeboat"
SERVICE = "lifeboat"
LOG_RETENTION_DAYS = 90
FUNCTION_ERROR_THRESHOLD = 5  # per 5 minutes: tolerates the retried transient errors of one run
EVENT_RETRY = {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600}
# Reserved concurrency of the failover machines' task functions, in the regions that run failovers. A
# regional incident is when the workloads Lifeboat protects (and their autoscaling, retries, batch jobs)
# take every unreserved Lambda execution of the account; the failover must not be throttled then. Small,
# because the reservation is also the ceiling: each failover runs one task at a time and a workload has one
# operation at a time (lease lock), so 5 carries five workloads failing over together plus that region's
# failbacks, which share some of these functions. More machines here than that: one each.
FAILOVER_RESERVED_CONCURRENCY = 5
# Asynchronously invoked functions Lambda must not run a second time after a failure (EventInvokeConfig
# MaximumRetryAttempts 0; a failed invocation goes straight to the dead-letter queue). The drill injects
# faults and fails its subject over for up to 15 minutes: a retry would repeat that unannounced, and a
# drill that failed half-way is recovered from its lease (services/drills.recover), not by running again.
NO_ASYNC_RETRY = frozenset({"drill_run"})
QUEUE_RETENTION_SECONDS = 14 * 24 * 3600
PLAN_PREFIX = "plans/"
# Stages whose roles may change records in any hosted zone (`hostedzone/*`, pinned by condition keys to the
# plan's record, type and UPSERT) when a plan names its zone by name only: the local and test accounts. Any
# other stage needs the zone's id at package time (the plan's hosted_zone_id, or infra.build --hosted-zone).
ZONE_BY_NAME_STAGES = frozenset({"dev"})


class TemplateError(ValueError):
    """The app or the plans cannot be rendered into a template (the message says what to change)."""


def sub(text: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"Fn::Sub": [text, dict(variables)]} if variables else {"Fn::Sub": text}


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def getatt(logical_id: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def cfn_id(*parts: str) -> str:
    return "".join(to_cfn_resource_name(p) for p in parts)


# ------------------------------------------------------------------------------------------ app + workflows
@dataclass(frozen=True)
class Function:
    """One Lambda function of the Chalice app, with the logical ids `chalice package` gives it."""

    name: str  # Chalice function name ("api_handler" for the REST API)
    kind: str  # api, lambda, cw_event, schedule, sqs
    logical_id: str
    role_id: str
    event_id: str | None = None
    pattern: Mapping[str, Any] | None = None
    queue: str | None = None  # SQS queue name or ARN (sqs)

    @property
    def asynchronous(self) -> bool:
        """Invoked asynchronously (EventBridge, a CloudWatch alarm), so failed events need a dead-letter
        queue."""
        return self.kind in ("cw_event", "schedule") or self.name in ALARM_ACTION_HANDLERS


def app_functions(app: Any) -> list[Function]:
    """Every Lambda function Chalice packages for `app`, named as its SAM generator names them."""
    out: list[Function] = []
    if app.routes:
        out.append(Function("api_handler", "api", "APIHandler", cfn_id("api_handler_role")))
    for fn in app.pure_lambda_functions:
        out.append(Function(fn.name, "lambda", cfn_id(fn.name), cfn_id(f"{fn.name}_role")))
    for source in app.event_sources:
        kind = type(source).__name__
        name = source.name
        base = {"name": name, "logical_id": cfn_id(name), "role_id": cfn_id(f"{name}_role")}
        if kind == "CloudWatchEventConfig":
            out.append(
                Function(
                    **base, kind="cw_event", event_id=cfn_id(f"{name}-event"), pattern=source.event_pattern
                )
            )
        elif kind == "ScheduledEventConfig":
            out.append(Function(**base, kind="schedule", event_id=cfn_id(f"{name}-event")))
        elif kind == "SQSEventConfig":
            queue = source.queue_arn or source.queue
            out.append(Function(**base, kind="sqs", event_id=cfn_id(f"{name}-sqs-event-source"), queue=queue))
        else:
            raise TemplateError(f"{name}: {kind} event sources are not supported by infra/template.py yet")
    if getattr(app, "websocket_handlers", None):
        raise TemplateError("websocket handlers are not supported by infra/template.py yet")
    if getattr(app, "builtin_auth_handlers", None):
        raise TemplateError("Lambda authorizers are not supported by infra/template.py yet")
    return out


Builder = Callable[[DRPlan, Callable[[str], str]], Any]


def workflow_builders() -> dict[str, Builder]:
    """kind -> build_<kind>(plan, resolve) of every chalicelib/workflows/<kind>.py that defines one."""
    import chalicelib.workflows as package

    found: dict[str, Builder] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        builder = getattr(module, f"build_{info.name}", None)
        if builder is None:
            # e.g. verify.py: build_verification. The module name is the kind (state machine name suffix).
            own = [
                value
                for name, value in vars(module).items()
                if name.startswith("build_") and callable(value) and value.__module__ == module.__name__
            ]
            builder = own[0] if len(own) == 1 else None
        if callable(builder):
            found[info.name] = builder
    if "failover" not in found:
        raise TemplateError("chalicelib/workflows/failover.py must define build_failover(plan, resolve)")
    return found


def _all_states(definition: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    """Every state of an ASL definition, nested ones (Map item processors, Parallel branches) included."""
    for state in definition.get("States", {}).values():
        yield state
        for nested in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if nested:
                yield from _all_states(nested)


def machine_regions(plan: DRPlan, kind: str, *, everywhere: bool = False) -> tuple[str, ...]:
    role = PLACEMENT.get(kind)
    if role is None or everywhere:
        return (plan.regions.primary, plan.regions.secondary)
    return (plan.region_of(role),)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------- target
@dataclass(frozen=True)
class Target:
    """Which copy of Lifeboat is rendered."""

    stage: str
    region: str
    home_region: str  # the copy that creates the global tables
    regions: tuple[str, ...]  # every region that runs a copy (the global tables' replicas)
    # Hosted zone ids of the zones plans name by name only (zone name -> id), given at package time.
    hosted_zones: Mapping[str, str] = field(default_factory=dict)
    # The local cloud's topology: every copy has every state machine of its plans (localcloud/regional.py),
    # so each function's role is rendered for that (localcloud/iam.py). AWS copies follow PLACEMENT.
    machines_everywhere: bool = False

    def __post_init__(self) -> None:
        if self.region not in self.regions or self.home_region not in self.regions:
            raise TemplateError(
                f"region {self.region} and home region {self.home_region} must be among {list(self.regions)}"
            )

    @property
    def owns_tables(self) -> bool:
        return self.region == self.home_region


def plan_regions(plans: Iterable[DRPlan]) -> tuple[str, ...]:
    return tuple(sorted({r for p in plans for r in (p.regions.primary, p.regions.secondary)}))


def default_home_region(plans: Iterable[DRPlan]) -> str:
    """The primary region of the first plan (by workload): stable as long as that plan is."""
    ordered = sorted(plans, key=lambda p: p.workload)
    if not ordered:
        raise TemplateError("no plans: Lifeboat needs at least one DR plan to know its regions")
    return ordered[0].regions.primary


# ----------------------------------------------------------------------------------------------- renderer
@dataclass
class _Machine:
    workload: str
    kind: str
    name: str
    logical_id: str
    definition: dict[str, Any]
    functions: list[str]


@dataclass
class _Renderer:
    app: Any
    plans: tuple[DRPlan, ...]
    target: Target
    resources: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.n: ResourceNames = names(self.target.stage)
        self.functions = app_functions(self.app)
        self.by_name = {f.name: f for f in self.functions}
        missing = [f.name for f in self.functions if f.name not in permissions.FUNCTIONS]
        if missing:
            raise permissions.MissingPermissions(missing)
        self.hosted_zones = {permissions.zone_key(k): v for k, v in self.target.hosted_zones.items()}
        self.check_zones()

    def check_zones(self) -> None:
        """Outside ZONE_BY_NAME_STAGES every Route 53 plan's zone must be known by id: record changes are then
        granted on that zone alone, not on every zone of the account."""
        if self.target.stage in ZONE_BY_NAME_STAGES:
            return
        records = [(p, route53_records(p.traffic)) for p in self.plans]
        unresolved = sorted(
            {
                f"{p.workload} ({r.hosted_zone_name})"
                for p, r in records
                if r is not None
                and r.hosted_zone_id is None
                and permissions.zone_key(r.hosted_zone_name or "") not in self.hosted_zones
            }
        )
        if unresolved:
            raise TemplateError(
                f"stage {self.target.stage} needs the id of every hosted zone a plan names by name only: "
                + ", ".join(unresolved)
                + ". Set traffic.hosted_zone_id in the plan, or pass --hosted-zone <zone name>=<zone id> to "
                "infra.build (aws route53 list-hosted-zones-by-name --dns-name <zone name> finds it). Only "
                f"{', '.join(sorted(ZONE_BY_NAME_STAGES))} may grant record changes on every zone."
            )

    def machine_regions(self, plan: DRPlan, kind: str) -> tuple[str, ...]:
        return machine_regions(plan, kind, everywhere=self.target.machines_everywhere)

    # -- naming ---------------------------------------------------------------------------------------
    @property
    def events_dlq(self) -> str:
        return f"{self.n.prefix}-events-dlq"

    def function_name(self, fn: Function) -> str:
        return self.n.function(fn.name)

    def role_name(self, fn: Function) -> str:
        name = f"{self.n.prefix}-{self.target.region}-{fn.name}"
        if len(name) > 64:
            raise TemplateError(f"IAM role name {name} is longer than 64 characters: shorten the stage")
        return name

    def bucket_name(self, kind: str) -> dict[str, str]:
        # Bucket names are global: account and region keep the two copies (and other accounts) apart.
        longest = len(f"{self.n.prefix}-{kind}-123456789012-{self.target.region}")
        if longest > 63:
            raise TemplateError(f"bucket name for {kind} would exceed 63 characters: shorten the stage")
        return sub(f"{self.n.prefix}-{kind}-${{AWS::AccountId}}-${{AWS::Region}}")

    # -- tables ---------------------------------------------------------------------------------------
    def table_value(self, logical_id: str, name: str, *, arn: bool) -> Any:
        owned = logical_id in self.resources
        if arn:
            if owned:
                return getatt(logical_id, "Arn")
            return sub(f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{name}")
        return ref(logical_id) if owned else name

    def add_tables(self) -> None:
        t = self.target
        if t.owns_tables:
            for logical_id, name, keys, ttl in (
                # TTL: the ledger's conclusion marks; the lock table's claims and control items (never a
                # ledger entry, which has no such attribute).
                ("LedgerTable", self.n.ledger_table, ("pk", "sk"), IDEMPOTENCY_TTL_ATTRIBUTE),
                ("LockTable", self.n.lock_table, ("pk",), IDEMPOTENCY_TTL_ATTRIBUTE),
            ):
                props: dict[str, Any] = {
                    "TableName": name,
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k in keys],
                    "KeySchema": [
                        {"AttributeName": k, "KeyType": kind}
                        for k, kind in zip(keys, ("HASH", "RANGE")[: len(keys)], strict=True)
                    ],
                    # Global tables replicate through streams (required with more than one replica).
                    "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
                    "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS"},
                    "Replicas": [
                        {
                            "Region": region,
                            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                            "DeletionProtectionEnabled": True,
                        }
                        for region in t.regions
                    ],
                }
                if ttl:
                    props["TimeToLiveSpecification"] = {"Enabled": True, "AttributeName": ttl}
                self.resources[logical_id] = {
                    "Type": "AWS::DynamoDB::GlobalTable",
                    "DeletionPolicy": "Retain",
                    "UpdateReplacePolicy": "Retain",
                    "Properties": props,
                }
        self.resources["IdempotencyTable"] = {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "TableName": self.n.idempotency_table,
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": IDEMPOTENCY_TTL_ATTRIBUTE},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS"},
            },
        }

    # -- key, topics ----------------------------------------------------------------------------------
    def add_key(self) -> None:
        self.resources["LifeboatKey"] = {
            "Type": "AWS::KMS::Key",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "Description": f"Lifeboat {self.target.stage}: SNS topics and the functions' log groups",
                "EnableKeyRotation": True,
                "KeyPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AccountAdministers",
                            "Effect": "Allow",
                            "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                            "Action": "kms:*",
                            "Resource": "*",
                        },
                        {
                            # Lambda log groups of this stage are encrypted with this key.
                            "Sid": "CloudWatchLogsEncryptsLifeboatLogs",
                            "Effect": "Allow",
                            "Principal": {"Service": sub("logs.${AWS::Region}.amazonaws.com")},
                            "Action": [
                                "kms:Encrypt*",
                                "kms:Decrypt*",
                                "kms:ReEncrypt*",
                                "kms:GenerateDataKey*",
                                "kms:Describe*",
                            ],
                            "Resource": "*",
                            "Condition": {
                                "ArnLike": {
                                    "kms:EncryptionContext:aws:logs:arn": sub(
                                        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
                                        f"log-group:/aws/lambda/{self.n.prefix}-*"
                                    )
                                }
                            },
                        },
                        {
                            # CloudWatch alarm actions publish to the encrypted health topic.
                            "Sid": "CloudWatchPublishesAlarms",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            "Resource": "*",
                            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                        },
                    ],
                },
            },
        }
        self.resources["LifeboatKeyAlias"] = {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": f"alias/{self.n.prefix}", "TargetKeyId": ref("LifeboatKey")},
        }

    def add_topics(self) -> None:
        self.topic_arns: list[Any] = []
        self.own_topic_arns: list[Any] = []
        seen: dict[str, str] = {}
        for plan in self.plans:
            topic = plan.notifications.topic
            if topic.startswith("arn:"):
                # A topic the plan owner manages elsewhere: publish to it, do not create it.
                if topic not in self.topic_arns:
                    self.topic_arns.append(topic)
                continue
            if topic in seen:
                continue
            logical_id = cfn_id("topic", topic)
            seen[topic] = logical_id
            self.resources[logical_id] = {
                "Type": "AWS::SNS::Topic",
                "Properties": {
                    "TopicName": topic,
                    "DisplayName": "Lifeboat",
                    "KmsMasterKeyId": ref("LifeboatKey"),
                },
            }
            self.topic_arns.append(ref(logical_id))
            self.own_topic_arns.append(ref(logical_id))
            self.outputs[f"{logical_id}Arn"] = {"Description": f"topic {topic}", "Value": ref(logical_id)}
        self.resources["HealthTopic"] = {
            "Type": "AWS::SNS::Topic",
            "Properties": {
                "TopicName": f"{self.n.prefix}-health",
                "DisplayName": "Lifeboat health",
                "KmsMasterKeyId": ref("LifeboatKey"),
            },
        }
        self.outputs["HealthTopicArn"] = {"Description": "Lifeboat's own alarms", "Value": ref("HealthTopic")}

    # -- buckets --------------------------------------------------------------------------------------
    def add_buckets(self) -> None:
        for logical_id, kind in (("PlanBucket", "plans"), ("EvidenceBucket", "evidence")):
            self.resources[logical_id] = {
                "Type": "AWS::S3::Bucket",
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {
                    "BucketName": self.bucket_name(kind),
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {
                                "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                                "BucketKeyEnabled": True,
                            }
                        ]
                    },
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                    **(self.evidence_lock() if kind == "evidence" else {}),
                },
            }
            self.resources[f"{logical_id}Policy"] = {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": ref(logical_id),
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "DenyInsecureTransport",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": [getatt(logical_id, "Arn"), sub(f"${{{logical_id}.Arn}}/*")],
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    },
                },
            }
            self.outputs[f"{logical_id}Name"] = {"Description": f"{kind} bucket", "Value": ref(logical_id)}

    def evidence_lock(self) -> dict[str, Any]:
        """Verification reports and drill records are evidence: Object Lock in governance mode keeps every
        version for the longest `audit.evidence_retention` of the plans. Governance, not compliance: an
        administrator with s3:BypassGovernanceRetention can still remove a mistake; Lifeboat's roles
        cannot (none has that action or s3:DeleteObjectVersion on this bucket)."""
        days = max(int(p.audit.evidence_retention / timedelta(days=1)) for p in self.plans)
        return {
            "ObjectLockEnabled": True,
            "ObjectLockConfiguration": {
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": days}},
            },
        }

    # -- queues ---------------------------------------------------------------------------------------
    def _queue(self, logical_id: str, name: str, extra: Mapping[str, Any] | None = None) -> None:
        self.resources[logical_id] = {
            "Type": "AWS::SQS::Queue",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "QueueName": name,
                # SSE-SQS: S3 and EventBridge can send to it without a key policy (unlike alias/aws/sqs).
                "SqsManagedSseEnabled": True,
                "MessageRetentionPeriod": QUEUE_RETENTION_SECONDS,
                **(extra or {}),
            },
        }

    def _queue_policy(self, logical_id: str, queue_id: str, statements: list[dict[str, Any]]) -> None:
        tls = {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": getatt(queue_id, "Arn"),
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
        self.resources[logical_id] = {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [ref(queue_id)],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [*statements, tls]},
            },
        }

    def source_buckets_here(self) -> list[str]:
        """Buckets in this region whose replication events Lifeboat listens to (sources live in primary)."""
        found: list[str] = []
        for plan in self.plans:
            if plan.regions.primary != self.target.region:
                continue
            for asset in plan.assets:
                if isinstance(asset, S3Asset) or (isinstance(asset, ModelRegistryAsset) and asset.source):
                    bucket = asset.source.bucket  # type: ignore[union-attr]
                    if bucket not in found:
                        found.append(bucket)
        return found

    def add_queues(self) -> None:
        self._queue("ReplicationDeadLetterQueue", self.n.replication_dlq)
        self._queue(
            "ReplicationQueue",
            self.n.replication_queue,
            {
                "VisibilityTimeout": 6 * 60,
                "RedrivePolicy": {
                    "deadLetterTargetArn": getatt("ReplicationDeadLetterQueue", "Arn"),
                    "maxReceiveCount": DLQ_MAX_RECEIVE_COUNT,
                },
            },
        )
        sources = self.source_buckets_here()
        statements = []
        if sources:
            statements.append(
                {
                    "Sid": "S3ReplicationEvents",
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": getatt("ReplicationQueue", "Arn"),
                    "Condition": {
                        "ArnLike": {
                            "aws:SourceArn": [sub(f"arn:${{AWS::Partition}}:s3:::{b}") for b in sources]
                        },
                        "StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")},
                    },
                }
            )
        self._queue_policy("ReplicationQueuePolicy", "ReplicationQueue", statements)
        self._queue_policy("ReplicationDeadLetterQueuePolicy", "ReplicationDeadLetterQueue", [])
        self._queue("EventsDeadLetterQueue", self.events_dlq)
        self.outputs["ReplicationQueueArn"] = {
            "Description": "lifeboat connect: S3 replication events",
            "Value": getatt("ReplicationQueue", "Arn"),
        }

    def add_events_dlq_policy(self, rule_names: list[str]) -> None:
        statements = []
        if rule_names:
            statements.append(
                {
                    "Sid": "EventBridgeDeadLetters",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": getatt("EventsDeadLetterQueue", "Arn"),
                    "Condition": {
                        "ArnEquals": {
                            "aws:SourceArn": [
                                sub(
                                    f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{r}"
                                )
                                for r in rule_names
                            ]
                        }
                    },
                }
            )
        self._queue_policy("EventsDeadLetterQueuePolicy", "EventsDeadLetterQueue", statements)

    # -- state machines -------------------------------------------------------------------------------
    def render_machines(self) -> list[_Machine]:
        machines: list[_Machine] = []
        for kind, builder in workflow_builders().items():
            for plan in self.plans:
                if self.target.region not in self.machine_regions(plan, kind):
                    continue
                used: list[str] = []

                def resolve(
                    function: str, used: list[str] = used, kind: str = kind, workload: str = plan.workload
                ) -> str:
                    if function not in self.by_name:
                        raise TemplateError(
                            f"the {kind} state machine of {workload} calls {function!r}, "
                            "which is not a function of the Chalice app"
                        )
                    if function not in used:
                        used.append(function)
                    return "${" + self.by_name[function].logical_id + "Arn}"

                definition = builder(plan, resolve)
                if definition is None:
                    continue
                machines.append(
                    _Machine(
                        workload=plan.workload,
                        kind=kind,
                        name=self.n.state_machine(plan.workload, kind),
                        logical_id=cfn_id(plan.workload, kind, "state-machine"),
                        definition=definition,
                        functions=used,
                    )
                )
        return machines

    def integration_statements(self, m: _Machine) -> list[dict[str, Any]]:
        """What a definition needs beyond invoking its tasks, read off the definition itself: a Distributed
        Map starts child executions of its own machine; an S3 ItemReader reads the item list (Lifeboat
        writes it to the evidence bucket)."""
        states = list(_all_states(m.definition))
        out: list[dict[str, Any]] = []
        arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
        if any(
            s.get("Type") == "Map"
            and (s.get("ItemProcessor") or {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
            for s in states
        ):
            out.append(
                {
                    "Sid": "DistributedMapChildren",
                    "Effect": "Allow",
                    "Action": ["states:StartExecution"],
                    "Resource": [sub(f"{arn}:stateMachine:{m.name}")],
                }
            )
            out.append(
                {
                    "Sid": "DistributedMapChildrenControl",
                    "Effect": "Allow",
                    "Action": ["states:DescribeExecution", "states:StopExecution"],
                    "Resource": [sub(f"{arn}:execution:{m.name}/*"), sub(f"{arn}:execution:{m.name}:*")],
                }
            )
        if any(
            str((s.get("ItemReader") or {}).get("Resource", "")).endswith(":s3:getObject") for s in states
        ):
            out.append(
                {
                    "Sid": "ItemReaderFromEvidence",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": [sub("${EvidenceBucket.Arn}/*")],
                }
            )
        return out

    def add_machines(self, machines: list[_Machine]) -> None:
        for m in machines:
            role_id = f"{m.logical_id}Role"
            arns = []
            for fn in m.functions:
                logical = self.by_name[fn].logical_id
                arns += [getatt(logical, "Arn"), sub(f"${{{logical}.Arn}}:*")]
            self.resources[role_id] = {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "states.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                                "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
                            }
                        ],
                    },
                    "Policies": [
                        {
                            "PolicyName": "invoke-tasks",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Sid": "InvokeTasks",
                                        "Effect": "Allow",
                                        "Action": ["lambda:InvokeFunction"],
                                        "Resource": arns,
                                    },
                                    *self.integration_statements(m),
                                ],
                            },
                        }
                    ],
                },
            }
            self.resources[m.logical_id] = {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": m.name,
                    "StateMachineType": "STANDARD",
                    "RoleArn": getatt(role_id, "Arn"),
                    "Definition": m.definition,
                    "DefinitionSubstitutions": {
                        f"{self.by_name[fn].logical_id}Arn": getatt(self.by_name[fn].logical_id, "Arn")
                        for fn in m.functions
                    },
                },
            }
            self.outputs[f"{m.logical_id}Arn"] = {
                "Description": f"{m.kind} state machine of {m.workload}",
                "Value": ref(m.logical_id),
            }

    # -- functions ------------------------------------------------------------------------------------
    def environment(self) -> dict[str, Any]:
        return {
            "LIFEBOAT_STAGE": self.target.stage,
            "LIFEBOAT_LEDGER_TABLE": self.table_value("LedgerTable", self.n.ledger_table, arn=False),
            "LIFEBOAT_LOCK_TABLE": self.table_value("LockTable", self.n.lock_table, arn=False),
            "LIFEBOAT_IDEMPOTENCY_TABLE": ref("IdempotencyTable"),
            "LIFEBOAT_PLAN_BUCKET": ref("PlanBucket"),
            "LIFEBOAT_PLAN_PREFIX": PLAN_PREFIX,
            "LIFEBOAT_EVIDENCE_BUCKET": ref("EvidenceBucket"),
            "LIFEBOAT_STATE_MACHINE_PREFIX": self.n.prefix,
            # Tracing stays PassThrough: active tracing needs xray:PutTraceSegments on "*" (docs/deploy.md).
            "POWERTOOLS_TRACE_DISABLED": "true",
        }

    def scope(self, fn: Function, machines: list[_Machine]) -> permissions.Scope:
        by_kind: dict[str, tuple[str, ...]] = {}
        for m in machines:
            by_kind[m.kind] = (*by_kind.get(m.kind, ()), m.name)
        consumed: tuple[Any, ...] = ()
        if fn.kind == "sqs":
            consumed = (getatt(self.consumed_queue(fn), "Arn"),)
        return permissions.Scope(
            plans=self.plans,
            region=self.target.region,
            ledger_table_arn=self.table_value("LedgerTable", self.n.ledger_table, arn=True),
            lock_table_arn=self.table_value("LockTable", self.n.lock_table, arn=True),
            idempotency_table_arn=getatt("IdempotencyTable", "Arn"),
            plan_bucket_arn=getatt("PlanBucket", "Arn"),
            plan_objects_arn=sub(f"${{PlanBucket.Arn}}/{PLAN_PREFIX}*"),
            plan_prefix=PLAN_PREFIX,
            evidence_bucket_arn=getatt("EvidenceBucket", "Arn"),
            evidence_objects_arn=sub("${EvidenceBucket.Arn}/*"),
            key_arn=getatt("LifeboatKey", "Arn"),
            topic_arns=tuple(self.topic_arns),
            own_topic_arns=tuple(self.own_topic_arns),
            machines=by_kind,
            machine_prefix=self.n.prefix,
            own_role_arn=sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{self.role_name(fn)}"),
            consumed_queue_arns=consumed,
            hosted_zones=self.hosted_zones,
        )

    def consumed_queue(self, fn: Function) -> str:
        """Logical id of the queue this template creates for an SQS-fed function. Its event source mapping
        and its role both name that queue by its Arn attribute (the role by Fn::GetAtt, the mapping by
        ${Queue.Arn}, see add_functions): Lambda checks the role's sqs:ReceiveMessage on the queue when it
        creates the mapping, so the two must be the same queue of the same stage."""
        name = (fn.queue or "").rsplit(":", 1)[-1]
        created = {self.n.replication_queue: "ReplicationQueue"}
        if name not in created:
            raise TemplateError(
                f"{fn.name} consumes the SQS queue {name!r}, which the {self.target.stage} template does not "
                f"create (it creates {', '.join(sorted(created))}): the app was imported for another stage "
                "(infra.build.load_app) or the queue needs adding to infra/template.py add_queues"
            )
        return created[name]

    def alarms_for(self, fn: Function) -> list[tuple[str, str]]:
        """(alarm name, the region it lives in) of the trigger alarms whose operation runs in this region."""
        kind = ALARM_HANDLERS.get(fn.name)
        if kind is None:
            raise TemplateError(
                f"{fn.name} handles CloudWatch alarm state changes but infra/template.py ALARM_HANDLERS does "
                "not say which operation it starts, so its rule cannot be limited to the right alarms"
            )
        found: list[tuple[str, str]] = []
        for plan in self.plans:
            if self.target.region in self.machine_regions(plan, kind):
                found += [
                    (a, plan.alarm_region(a))
                    for a in plan.trigger.alarms
                    if (a, plan.alarm_region(a)) not in found
                ]
        return found

    @staticmethod
    def alarm_filter(alarms: list[tuple[str, str]]) -> dict[str, Any]:
        """What an alarm rule's pattern matches: these alarms of this account, each in its own region (the
        event's `region` is the alarm's, also after forwarding to another region's bus), by ARN in
        `resources` as well as by name, so an alarm of the same name elsewhere never starts anything."""
        return {
            "account": [ref("AWS::AccountId")],
            "region": sorted({region for _, region in alarms}),
            "resources": [
                sub(f"arn:${{AWS::Partition}}:cloudwatch:{region}:${{AWS::AccountId}}:alarm:{name}")
                for name, region in alarms
            ],
            "detail": {"alarmName": list(dict.fromkeys(name for name, _ in alarms))},
        }

    def add_alarm_action_permissions(self, fn: Function) -> None:
        """Let the trigger alarms that live here invoke `fn` as their Lambda action, and no other alarm
        (each permission names one alarm ARN in this account and region: no confused deputy)."""
        kind = ALARM_ACTION_HANDLERS[fn.name]
        alarms: list[str] = []
        for plan in self.plans:
            if self.target.region in machine_regions(plan, kind):
                alarms += [
                    a
                    for a in plan.trigger.alarms
                    if plan.alarm_region(a) == self.target.region and a not in alarms
                ]
        for alarm in alarms:
            # An alarm name may contain "${": Fn::Sub takes it literally written "${!".
            literal = alarm.replace("${", "${!")
            arn = {
                "Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"
                + literal
            }
            digest = hashlib.sha256(alarm.encode()).hexdigest()[:10].upper()
            self.resources[cfn_id(fn.name, "from-alarm") + digest] = {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "FunctionName": getatt(fn.logical_id, "Arn"),
                    "Action": "lambda:InvokeFunction",
                    "Principal": ALARM_ACTION_PRINCIPAL,
                    "SourceAccount": ref("AWS::AccountId"),
                    "SourceArn": arn,
                },
            }
        self.outputs[f"{fn.logical_id}Arn"] = {
            "Description": f"{fn.name}: the Lambda action of a trigger alarm living in this region "
            f"({', '.join(alarms) or 'none here'})",
            "Value": getatt(fn.logical_id, "Arn"),
        }

    def machines_for(self, fn: Function, machines: list[_Machine]) -> list[dict[str, Any]]:
        kinds = EXECUTION_HANDLERS.get(fn.name)
        if kinds is None:
            raise TemplateError(
                f"{fn.name} handles Step Functions execution status changes but infra/template.py "
                "EXECUTION_HANDLERS does not say which state machines it cleans up after"
            )
        return [ref(m.logical_id) for m in machines if m.kind in kinds]

    def reserved_concurrency(self, fn: Function, machines: list[_Machine]) -> int | None:
        """FAILOVER_RESERVED_CONCURRENCY for a task function of a failover machine of this region, or one
        per machine here that calls it when there are more; None for every other function."""
        if not any(m.kind == "failover" and fn.name in m.functions for m in machines):
            return None
        callers = sum(1 for m in machines if fn.name in m.functions)
        return max(FAILOVER_RESERVED_CONCURRENCY, callers)

    def add_functions(self, machines: list[_Machine]) -> list[str]:
        """Overrides of Chalice's functions and roles; returns the EventBridge rule names created."""
        rules: list[str] = []
        env = self.environment()
        for fn in self.functions:
            function_name = self.function_name(fn)
            log_id = f"{fn.logical_id}LogGroup"
            self.resources[log_id] = {
                "Type": "AWS::Logs::LogGroup",
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": {
                    "LogGroupName": f"/aws/lambda/{function_name}",
                    "RetentionInDays": LOG_RETENTION_DAYS,
                    "KmsKeyId": getatt("LifeboatKey", "Arn"),
                },
            }
            statements = [
                {
                    "Sid": "OwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [getatt(log_id, "Arn")],
                },
                *permissions.statements_for(fn.name, self.scope(fn, machines)),
            ]
            props: dict[str, Any] = {"FunctionName": function_name, "Environment": {"Variables": env}}
            reserved = self.reserved_concurrency(fn, machines)
            if reserved:
                props["ReservedConcurrentExecutions"] = reserved
            if fn.name in NO_ASYNC_RETRY:
                if not fn.asynchronous:
                    raise TemplateError(f"{fn.name} is in NO_ASYNC_RETRY but is not invoked asynchronously")
                props["EventInvokeConfig"] = {"MaximumRetryAttempts": 0}
            if fn.asynchronous:
                props["DeadLetterQueue"] = {
                    "Type": "SQS",
                    "TargetArn": getatt("EventsDeadLetterQueue", "Arn"),
                }
                statements.append(
                    {
                        "Sid": "AsyncDeadLetters",
                        "Effect": "Allow",
                        "Action": ["sqs:SendMessage"],
                        "Resource": [getatt("EventsDeadLetterQueue", "Arn")],
                    }
                )
            if fn.kind in ("cw_event", "schedule"):
                rule = self.n.event_rule(fn.name)
                rules.append(rule)
                key = "RuleName" if fn.kind == "cw_event" else "Name"
                event: dict[str, Any] = {
                    key: rule,
                    "DeadLetterConfig": {"Arn": getatt("EventsDeadLetterQueue", "Arn")},
                    "RetryPolicy": dict(EVENT_RETRY),
                }
                if fn.kind == "cw_event" and ALARM_STATE_CHANGE in (fn.pattern or {}).get("detail-type", []):
                    alarms = self.alarms_for(fn)
                    nothing = (f"{self.n.prefix}-no-plan-activates-this-region", self.target.region)
                    # Merged into Chalice's pattern (dicts merge): its source and detail-type stay.
                    event["Pattern"] = self.alarm_filter(alarms or [nothing])
                    event["State"] = "ENABLED" if alarms else "DISABLED"
                elif fn.kind == "cw_event" and EXECUTION_STATUS_CHANGE in (fn.pattern or {}).get(
                    "detail-type", []
                ):
                    arns = self.machines_for(fn, machines)
                    placeholder = sub(
                        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
                        f"{self.n.prefix}-none-runs-here"
                    )
                    # Merged into Chalice's pattern (dicts merge): its status filter stays.
                    event["Pattern"] = {"detail": {"stateMachineArn": arns or [placeholder]}}
                    event["State"] = "ENABLED" if arns else "DISABLED"
                props["Events"] = {fn.event_id: {"Properties": event}}
            if fn.name in ALARM_ACTION_HANDLERS:
                self.add_alarm_action_permissions(fn)
            if fn.kind == "sqs":
                # The handler answers {"batchItemFailures": [...]}: only those records return to the queue,
                # which Lambda honours only with this response type (Chalice cannot declare it).
                # The queue's Arn attribute, as in the role: Chalice names the queue with an Fn::Sub of its
                # name, which a merged Fn::GetAtt would sit beside (dicts merge); ${Queue.Arn} replaces it.
                props["Events"] = {
                    fn.event_id: {
                        "Properties": {
                            "Queue": sub(f"${{{self.consumed_queue(fn)}.Arn}}"),
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                        }
                    }
                }
            self.resources[fn.logical_id] = {"DependsOn": [log_id], "Properties": props}
            self.resources[fn.role_id] = {
                "Properties": {
                    "RoleName": self.role_name(fn),
                    "Policies": [
                        {
                            "PolicyName": f"lifeboat-{fn.name}",
                            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                        }
                    ],
                }
            }
        if any(f.kind == "api" for f in self.functions):
            # Chalice's REST API: API Gateway traces requests itself (no IAM needed, unlike Lambda's).
            self.resources["RestAPI"] = {"Properties": {"TracingEnabled": True}}
        return rules

    # -- cross-region alarm forwarding ----------------------------------------------------------------
    def add_forwarding(self) -> list[str]:
        """Alarms live in a plan's primary region (or where trigger.alarm_regions puts them); the copy in
        the region a failover activates must hear them, so this region forwards the ones living here to
        the default event bus of that region. Alarms in the activated region itself need no forwarding."""
        targets: dict[str, list[tuple[str, str]]] = {}
        for plan in self.plans:
            here = [(a, r) for a in plan.trigger.alarms if (r := plan.alarm_region(a)) == self.target.region]
            if not here:
                continue
            for kind in sorted(set(ALARM_HANDLERS.values())):
                for region in self.machine_regions(plan, kind):
                    if region == self.target.region:
                        continue
                    alarms = targets.setdefault(region, [])
                    alarms += [a for a in here if a not in alarms]
        if not targets:
            return []
        buses = {
            r: sub(f"arn:${{AWS::Partition}}:events:{r}:${{AWS::AccountId}}:event-bus/default")
            for r in targets
        }
        self.resources["ForwardAlarmsRole"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
                        }
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": "forward-alarms",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Sid": "PutToActivatedRegions",
                                    "Effect": "Allow",
                                    "Action": ["events:PutEvents"],
                                    "Resource": [buses[r] for r in sorted(buses)],
                                }
                            ],
                        },
                    }
                ],
            },
        }
        rules = []
        for region in sorted(targets):
            name = f"{self.n.prefix}-alarms-to-{region}"
            rules.append(name)
            self.resources[cfn_id("forward-alarms-to", region)] = {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": name,
                    "Description": f"Plan alarms whose failover runs in {region}: forwarded to Lifeboat",
                    "EventPattern": {
                        "source": ["aws.cloudwatch"],
                        "detail-type": [ALARM_STATE_CHANGE],
                        **self.alarm_filter(targets[region]),
                    },
                    "State": "ENABLED",
                    "Targets": [
                        {
                            "Id": "lifeboat",
                            "Arn": buses[region],
                            "RoleArn": getatt("ForwardAlarmsRole", "Arn"),
                            "DeadLetterConfig": {"Arn": getatt("EventsDeadLetterQueue", "Arn")},
                            "RetryPolicy": dict(EVENT_RETRY),
                        }
                    ],
                },
            }
        return rules

    # -- alarms + dashboard ---------------------------------------------------------------------------
    def _alarm(self, logical_id: str, name: str, description: str, **props: Any) -> None:
        self.resources[logical_id] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": name,
                "AlarmDescription": description,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "EvaluationPeriods": 1,
                "Period": 300,
                "TreatMissingData": "notBreaching",
                "AlarmActions": [ref("HealthTopic")],
                "OKActions": [ref("HealthTopic")],
                **props,
            },
        }

    def add_alarms(self, machines: list[_Machine]) -> None:
        p = self.n.prefix
        for fn in self.functions:
            self._alarm(
                f"{fn.logical_id}ErrorsAlarm",
                f"{p}-{fn.name}-errors",
                f"Lifeboat function {fn.name} keeps failing",
                Namespace="AWS/Lambda",
                MetricName="Errors",
                Dimensions=[{"Name": "FunctionName", "Value": ref(fn.logical_id)}],
                Statistic="Sum",
                Threshold=FUNCTION_ERROR_THRESHOLD,
            )
        for queue, queue_name in (
            ("ReplicationDeadLetterQueue", self.n.replication_dlq),
            ("EventsDeadLetterQueue", self.events_dlq),
        ):
            self._alarm(
                f"{queue}DepthAlarm",
                f"{queue_name}-depth",
                "Messages Lifeboat could not process are waiting in a dead-letter queue",
                Namespace="AWS/SQS",
                MetricName="ApproximateNumberOfMessagesVisible",
                Dimensions=[{"Name": "QueueName", "Value": getatt(queue, "QueueName")}],
                Statistic="Maximum",
                Threshold=1,
            )
        for m in machines:
            self._alarm(
                f"{m.logical_id}FailedAlarm",
                f"{m.name}-failed",
                f"A {m.kind} of {m.workload} failed, was refused or timed out (see the ledger)",
                Metrics=[
                    {
                        "Id": "problems",
                        "Expression": "failed + timedout",
                        "Label": "failed or timed-out executions",
                        "ReturnData": True,
                    },
                    *(
                        {
                            "Id": metric_id,
                            "ReturnData": False,
                            "MetricStat": {
                                "Metric": {
                                    "Namespace": "AWS/States",
                                    "MetricName": metric,
                                    "Dimensions": [{"Name": "StateMachineArn", "Value": ref(m.logical_id)}],
                                },
                                "Period": 300,
                                "Stat": "Sum",
                            },
                        }
                        for metric_id, metric in (
                            ("failed", "ExecutionsFailed"),
                            ("timedout", "ExecutionsTimedOut"),
                        )
                    ),
                ],
                Threshold=1,
            )
            self.resources[f"{m.logical_id}FailedAlarm"]["Properties"].pop("Period")
        for plan in self.plans:
            self._alarm(
                cfn_id(plan.workload, "rpo-breach-alarm"),
                f"{p}-{plan.workload}-rpo-breach",
                f"Measured RPO of {plan.workload} exceeds its objective ({plan.rpo})",
                Namespace=METRIC_NAMESPACE,
                MetricName=RPO_BREACH_METRIC,
                Dimensions=[
                    {"Name": "workload", "Value": plan.workload},
                    {"Name": "service", "Value": SERVICE},
                ],
                Statistic="Sum",
                Threshold=1,
            )
            if any(a.kind == "s3" for a in plan.assets):
                self._alarm(
                    cfn_id(plan.workload, "restore-test-breach-alarm"),
                    f"{p}-{plan.workload}-restore-test-breach",
                    f"A restore test of {plan.workload} failed or projects a restore longer than its RTO "
                    f"({plan.rto})",
                    Namespace=METRIC_NAMESPACE,
                    MetricName=RESTORE_TEST_BREACH_METRIC,
                    Dimensions=[
                        {"Name": "workload", "Value": plan.workload},
                        {"Name": "service", "Value": SERVICE},
                    ],
                    Statistic="Sum",
                    Threshold=1,
                )

    def add_dashboard(self, machines: list[_Machine]) -> None:
        region = "${AWS::Region}"
        variables: dict[str, Any] = {}
        widgets: list[dict[str, Any]] = []

        def widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Sum") -> None:
            widgets.append(
                {
                    "type": "metric",
                    "x": x,
                    "y": y,
                    "width": 12,
                    "height": 6,
                    "properties": {
                        "title": title,
                        "region": region,
                        "stat": stat,
                        "period": 300,
                        "metrics": metrics,
                    },
                }
            )

        widget(
            "Function errors",
            [["AWS/Lambda", "Errors", "FunctionName", self.function_name(f)] for f in self.functions],
            0,
            0,
        )
        executions = []
        for index, m in enumerate(machines):
            variables[f"Machine{index}"] = ref(m.logical_id)
            for metric in ("ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut"):
                executions.append(["AWS/States", metric, "StateMachineArn", f"${{Machine{index}}}"])
        widget("Executions", executions or [["AWS/States", "ExecutionsStarted"]], 12, 0)
        widget(
            "Dead-letter queues",
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name]
                for name in (self.n.replication_dlq, self.events_dlq)
            ],
            0,
            6,
            stat="Maximum",
        )
        lifeboat = []
        for plan in self.plans:
            for metric in ("FailoverRTO", RPO_BREACH_METRIC, "ReplicationPendingObjects", "SmokeTestPassed"):
                lifeboat.append([METRIC_NAMESPACE, metric, "workload", plan.workload, "service", SERVICE])
        widget("Lifeboat (RTO, RPO breaches, replication, smoke tests)", lifeboat, 12, 6, stat="Maximum")
        self.resources["Dashboard"] = {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": sub(f"{self.n.prefix}-${{AWS::Region}}"),
                "DashboardBody": sub(json.dumps({"widgets": widgets}), variables),
            },
        }

    # -- all ------------------------------------------------------------------------------------------
    def render(self) -> dict[str, Any]:
        self.add_tables()
        self.add_key()
        self.add_topics()
        self.add_buckets()
        self.add_queues()
        machines = self.render_machines()
        self.add_machines(machines)
        rules = self.add_functions(machines)
        rules += self.add_forwarding()
        self.add_events_dlq_policy(rules)
        self.add_alarms(machines)
        self.add_dashboard(machines)
        env = self.environment()
        for key in ("LIFEBOAT_LEDGER_TABLE", "LIFEBOAT_LOCK_TABLE", "LIFEBOAT_IDEMPOTENCY_TABLE"):
            self.outputs[cfn_id("env", key.removeprefix("LIFEBOAT_").lower())] = {
                "Description": key,
                "Value": env[key],
            }
        for key in ("LIFEBOAT_PLAN_BUCKET", "LIFEBOAT_EVIDENCE_BUCKET", "LIFEBOAT_STATE_MACHINE_PREFIX"):
            self.outputs[cfn_id("env", key.removeprefix("LIFEBOAT_").lower())] = {
                "Description": key,
                "Value": env[key],
            }
        t = self.target
        return {
            "Description": f"Lifeboat DR autopilot, stage {t.stage}, {t.region} (home {t.home_region})",
            "Metadata": {
                "Lifeboat": {
                    "stage": t.stage,
                    "region": t.region,
                    "home_region": t.home_region,
                    "regions": list(t.regions),
                    "plans": [p.workload for p in self.plans],
                    "state_machines": {
                        m.logical_id: {"workload": m.workload, "kind": m.kind} for m in machines
                    },
                    "functions": {f.logical_id: f.name for f in self.functions},
                }
            },
            "Resources": self.resources,
            "Outputs": self.outputs,
        }


def render(app: Any, plans: Iterable[DRPlan], target: Target) -> dict[str, Any]:
    """The merge template of one copy of Lifeboat (stage + region)."""
    ordered = tuple(sorted(plans, key=lambda p: p.workload))
    if not ordered:
        raise TemplateError("no plans: Lifeboat needs at least one DR plan to know its regions")
    return _Renderer(app=app, plans=ordered, target=target).render()
