"""Lifeboat's base resources in the local cloud (tables, buckets, queues, one Lambda per Chalice function).

`names(stage)` is the one place resource names are made; `provision_base` is idempotent.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.models.plan import AuditPolicy

if TYPE_CHECKING:
    from localcloud.server import LocalCloud

logger = logging.getLogger(__name__)

APP_NAME = "lifeboat"
RUNTIME = "python3.12"
FUNCTION_TIMEOUT_SECONDS = 60
DLQ_MAX_RECEIVE_COUNT = 5
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"
API_FUNCTION = "api"
# The evidence bucket's Object Lock default retention (governance mode), as a stack whose plans keep the
# default `audit.evidence_retention` gets it (infra/template.py evidence_lock).
EVIDENCE_RETENTION_DAYS = AuditPolicy.model_fields["evidence_retention"].default.days


@dataclass(frozen=True)
class ResourceNames:
    """Names of every base resource of one stage."""

    stage: str

    @property
    def prefix(self) -> str:
        return f"{APP_NAME}-{self.stage}"

    @property
    def ledger_table(self) -> str:
        return f"{self.prefix}-ledger"

    @property
    def lock_table(self) -> str:
        return f"{self.prefix}-locks"

    @property
    def idempotency_table(self) -> str:
        return f"{self.prefix}-idempotency"

    @property
    def plan_bucket(self) -> str:
        return f"{self.prefix}-plans"

    @property
    def evidence_bucket(self) -> str:
        return f"{self.prefix}-evidence"

    @property
    def replication_queue(self) -> str:
        return f"{self.prefix}-replication-events"

    @property
    def replication_dlq(self) -> str:
        return f"{self.prefix}-replication-events-dlq"

    @property
    def lambda_role(self) -> str:
        return f"{self.prefix}-lambda-role"

    def function(self, chalice_name: str) -> str:
        """Lambda function name of a Chalice function ("api" for the REST API)."""
        return f"{self.prefix}-{chalice_name}"

    def state_machine(self, workload: str, kind: str) -> str:
        """Name of a plan's generated state machine (kind: failover, failback, verify)."""
        return f"{self.prefix}-{workload}-{kind}"[:80]

    @property
    def notifications_inbox(self) -> str:
        """Local-only SQS queue subscribed to every plan topic, so people and tests can read notifications."""
        return f"{self.prefix}-notifications-inbox"

    def event_rule(self, chalice_name: str) -> str:
        """EventBridge rule Chalice creates for an on_cw_event/schedule function."""
        return f"{self.prefix}-{chalice_name}-event"


def names(stage: str = "dev") -> ResourceNames:
    return ResourceNames(stage=stage)


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function of the Chalice app, as `chalice package` would create it."""

    name: str  # Chalice resource name; the Lambda function is names(stage).function(name)
    handler: str  # the Lambda Handler setting
    source: Any  # the Chalice config object (LambdaFunction, CloudWatchEventConfig, SQSEventConfig, ...)


def chalice_functions(chalice_app: Any) -> list[FunctionSpec]:
    """Every Lambda function of a Chalice app: the REST API (if it has routes), pure functions, events."""
    specs: list[FunctionSpec] = []
    if chalice_app.routes:
        specs.append(FunctionSpec(name=API_FUNCTION, handler="app.app", source=None))
    for function in chalice_app.pure_lambda_functions:
        specs.append(FunctionSpec(name=function.name, handler=function.handler_string, source=function))
    for source in chalice_app.event_sources:
        specs.append(FunctionSpec(name=source.name, handler=source.handler_string, source=source))
    return specs


def provision_base(
    cloud: LocalCloud,
    *,
    stage: str = "dev",
    chalice_app: Any = None,
    wire_event_sources: bool = True,
) -> dict[str, Any]:
    """Create (or bring up to date) the base resources of `stage`; returns (and keeps in `cloud.resources`)
    their names and ARNs.

    `chalice_app` defaults to the `app` attribute of the cloud's handler module. With `wire_event_sources`,
    on_cw_event/schedule functions get their EventBridge rule and on_sqs_message functions their event-source
    mapping, as `chalice deploy` would do.
    """
    n = names(stage)
    if chalice_app is None:
        chalice_app = importlib.import_module(cloud.handler_module).app
    result: dict[str, Any] = {
        "stage": stage,
        "ledger_table": n.ledger_table,
        "lock_table": n.lock_table,
        "idempotency_table": n.idempotency_table,
        "plan_bucket": n.plan_bucket,
        "evidence_bucket": n.evidence_bucket,
    }

    dynamodb = cloud.client("dynamodb")
    _ensure_table(dynamodb, n.ledger_table, [("pk", "HASH"), ("sk", "RANGE")])
    # The lock table also holds claims and operator control items (with a TTL): the ledger is append-only.
    _ensure_table(dynamodb, n.lock_table, [("pk", "HASH")], ttl_attribute=IDEMPOTENCY_TTL_ATTRIBUTE)
    _ensure_table(dynamodb, n.idempotency_table, [("id", "HASH")], ttl_attribute=IDEMPOTENCY_TTL_ATTRIBUTE)

    s3 = cloud.client("s3")
    _ensure_bucket(s3, n.plan_bucket, cloud.region)
    _ensure_bucket(s3, n.evidence_bucket, cloud.region, lock_days=EVIDENCE_RETENTION_DAYS)

    sqs = cloud.client("sqs")
    dlq_url, dlq_arn = _ensure_queue(sqs, n.replication_dlq, {})
    queue_url, queue_arn = _ensure_queue(
        sqs,
        n.replication_queue,
        {
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": DLQ_MAX_RECEIVE_COUNT}
            )
        },
    )
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": _s3_send_policy(queue_arn)})
    result.update(queue_url=queue_url, queue_arn=queue_arn, dlq_url=dlq_url, dlq_arn=dlq_arn)

    role_arn = _ensure_role(cloud.client("iam"), n.lambda_role)
    result["role_arn"] = role_arn

    lam = cloud.client("lambda")
    environment = cloud.env(stage)
    functions: dict[str, str] = {}
    rules: dict[str, str] = {}
    mappings: dict[str, str] = {}
    for spec in chalice_functions(chalice_app):
        function_name = n.function(spec.name)
        function_arn = _ensure_function(lam, function_name, spec.handler, role_arn, environment)
        functions[function_name] = function_arn
        if not wire_event_sources or spec.source is None:
            continue
        kind = type(spec.source).__name__
        if kind in ("CloudWatchEventConfig", "ScheduledEventConfig"):
            rule_name = n.event_rule(spec.name)
            rules[rule_name] = _ensure_rule(cloud.client("events"), rule_name, spec.source, function_arn)
        elif kind == "SQSEventConfig":
            mapping = _ensure_sqs_mapping(cloud, lam, spec.source, function_name)
            if mapping:
                mappings[function_name] = mapping
        elif kind != "LambdaFunction":
            logger.warning("event source %s of %s is not wired in the local cloud", kind, spec.name)
    result.update(functions=functions, rules=rules, event_source_mappings=mappings)
    cloud.resources = result
    return result


# ----------------------------------------------------------------------------------------------- helpers


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _ensure_table(
    dynamodb: Any, name: str, keys: list[tuple[str, str]], *, ttl_attribute: str | None = None
) -> None:
    try:
        dynamodb.describe_table(TableName=name)
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": attr, "KeyType": kind} for attr, kind in keys],
            AttributeDefinitions=[{"AttributeName": attr, "AttributeType": "S"} for attr, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    dynamodb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    if ttl_attribute:
        current = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
            )


def _ensure_bucket(s3: Any, name: str, region: str, *, lock_days: int | None = None) -> None:
    """A versioned, encrypted, private bucket; with `lock_days`, Object Lock in governance mode with that
    default retention (S3 enables it at creation only, as moto does)."""
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as exc:
        if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        create: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if lock_days is not None:
            create["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(**create)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if lock_days is not None:
        s3.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": lock_days}},
            },
        )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _ensure_queue(sqs: Any, name: str, attributes: Mapping[str, str]) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    if attributes:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=dict(attributes))
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _s3_send_policy(queue_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowS3ReplicationEvents",
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                }
            ],
        }
    )


def _ensure_role(iam: Any, name: str) -> str:
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as exc:
        if _error_code(exc) != "NoSuchEntity":
            raise
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _placeholder_zip() -> bytes:
    # The code never runs from the zip (the runner imports the handlers in-process), but Lambda wants one.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# served in-process by localcloud.lambda_runner\n")
    return buffer.getvalue()


def _ensure_function(lam: Any, name: str, handler: str, role_arn: str, environment: Mapping[str, str]) -> str:
    settings = {
        "Runtime": RUNTIME,
        "Role": role_arn,
        "Handler": handler,
        "Environment": {"Variables": dict(environment)},
        "Timeout": FUNCTION_TIMEOUT_SECONDS,
    }
    try:
        existing = lam.get_function(FunctionName=name)["Configuration"]
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        return lam.create_function(FunctionName=name, Code={"ZipFile": _placeholder_zip()}, **settings)[
            "FunctionArn"
        ]
    lam.update_function_configuration(FunctionName=name, **settings)
    return existing["FunctionArn"]


def _ensure_rule(events: Any, rule_name: str, source: Any, function_arn: str) -> str:
    if type(source).__name__ == "ScheduledEventConfig":
        expression = source.schedule_expression
        expression = expression if isinstance(expression, str) else expression.to_string()
        rule_arn = events.put_rule(Name=rule_name, ScheduleExpression=expression)["RuleArn"]
    else:
        rule_arn = events.put_rule(Name=rule_name, EventPattern=json.dumps(source.event_pattern))["RuleArn"]
    events.put_targets(Rule=rule_name, Targets=[{"Id": "1", "Arn": function_arn}])
    return rule_arn


def _ensure_sqs_mapping(cloud: LocalCloud, lam: Any, source: Any, function_name: str) -> str | None:
    queue_arn = source.queue_arn
    if queue_arn is None:
        try:
            url = cloud.client("sqs").get_queue_url(QueueName=source.queue)["QueueUrl"]
        except ClientError:
            # `chalice deploy` would fail the same way: the queue is not Chalice's to create.
            logger.warning("queue %s of %s does not exist; not wired", source.queue, function_name)
            return None
        queue_arn = cloud.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
    existing = lam.list_event_source_mappings(FunctionName=function_name, EventSourceArn=queue_arn)
    if existing.get("EventSourceMappings"):
        return existing["EventSourceMappings"][0]["UUID"]
    created = lam.create_event_source_mapping(
        FunctionName=function_name,
        EventSourceArn=queue_arn,
        BatchSize=source.batch_size,
        MaximumBatchingWindowInSeconds=source.maximum_batching_window_in_seconds or 0,
        # As infra/template.py declares it: only the records the handler names return to the queue.
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    return created["UUID"]
