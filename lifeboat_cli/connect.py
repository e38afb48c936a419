"""`lifeboat connect ASSET`: wire a plan's buckets (which Lifeboat's stack does not own) into Lifeboat.

Idempotent: run it again and nothing changes. For an S3 asset (or an s3-manifest model registry) it
- enables replication metrics on the source bucket's rules towards the replica (Metrics, and ReplicationTime
  where a rule already has it), so S3 publishes s3:Replication:* events;
- adds a QueueConfiguration for s3:Replication:* to Lifeboat's replication queue in the source bucket's
  region, keeping every notification the bucket already has;
- checks versioning and default encryption of both buckets and reports what is missing (never changes them:
  those are the data owner's decisions).
DynamoDB assets are checked (replica table, point-in-time recovery), not changed.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from chalicelib.adapters.dynamo import error_code
from chalicelib.models.plan import DRPlan, DynamoDBAsset, ModelRegistryAsset, S3Asset, S3Location

NOTIFICATION_ID = "lifeboat-replication-events"
REPLICATION_EVENTS = "s3:Replication:*"
# The four replication events S3 publishes; a configuration listing all of them is as good as the wildcard.
REPLICATION_EVENT_NAMES = {
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:Replication:OperationNotTracked",
}
METRICS = {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
RTC = {"Status": "Enabled", "Time": {"Minutes": 15}}

Status = Literal["ok", "changed", "missing"]
ClientFor = Callable[[str, str], Any]  # (service, region) -> boto3 client


class ConnectError(LookupError):
    """The asset cannot be connected as asked (unknown, ambiguous): a usage error."""


@dataclass(frozen=True)
class Check:
    subject: str
    check: str
    status: Status
    detail: str


def find_asset(plans: Iterable[DRPlan], ref: str) -> tuple[DRPlan, Any]:
    """`asset` or `workload/asset`; ConnectError when no plan or several plans have it."""
    workload, _, name = ref.rpartition("/")
    found = [(p, a) for p in plans for a in p.assets if a.name == name and workload in ("", p.workload)]
    if not found:
        raise ConnectError(f"no plan has an asset {ref!r}")
    if len(found) > 1:
        options = ", ".join(f"{p.workload}/{a.name}" for p, a in found)
        raise ConnectError(f"several plans have an asset {name!r}: say which ({options})")
    return found[0]


class Connector:
    def __init__(self, client: ClientFor, queue_arn: Callable[[str], str]) -> None:
        """`queue_arn(region)`: the ARN of Lifeboat's replication queue in that region."""
        self._client = client
        self._queue_arn = queue_arn

    def connect(self, plan: DRPlan, asset: Any) -> list[Check]:
        if isinstance(asset, S3Asset):
            return self._s3(plan, asset.source, asset.replica)
        if isinstance(asset, ModelRegistryAsset) and asset.source and asset.replica:
            return self._s3(plan, asset.source, asset.replica)
        if isinstance(asset, DynamoDBAsset):
            return self._dynamodb(plan, asset)
        return [Check(asset.name, "connect", "ok", "nothing to connect: the registry is not in S3")]

    # -- S3 -------------------------------------------------------------------------------------------
    def _s3(self, plan: DRPlan, source: S3Location, replica: S3Location) -> list[Check]:
        primary, secondary = plan.regions.primary, plan.regions.secondary
        out = []
        for loc, region in ((source, primary), (replica, secondary)):
            out += [self._versioning(loc.bucket, region), self._encryption(loc.bucket, region)]
        out.append(self._replication_metrics(source.bucket, replica.bucket, primary))
        out.append(self._notification(source.bucket, primary))
        return out

    def _versioning(self, bucket: str, region: str) -> Check:
        status = self._client("s3", region).get_bucket_versioning(Bucket=bucket).get("Status")
        if status == "Enabled":
            return Check(bucket, "versioning", "ok", "enabled")
        return Check(
            bucket,
            "versioning",
            "missing",
            f"versioning is {status or 'off'}: replication needs it on source and replica "
            f"(aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled)",
        )

    def _encryption(self, bucket: str, region: str) -> Check:
        try:
            rules = self._client("s3", region).get_bucket_encryption(Bucket=bucket)[
                "ServerSideEncryptionConfiguration"
            ]["Rules"]
        except Exception as exc:
            if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            return Check(bucket, "encryption", "missing", "no default encryption configured")
        algorithm = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] if rules else "?"
        return Check(bucket, "encryption", "ok", f"default encryption {algorithm}")

    def _replication_metrics(self, source: str, replica: str, region: str) -> Check:
        s3 = self._client("s3", region)
        try:
            config = s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]
        except Exception as exc:
            if error_code(exc) != "ReplicationConfigurationNotFoundError":
                raise
            return Check(source, "replication-metrics", "missing", f"no replication configured to {replica}")
        target = f"arn:aws:s3:::{replica}"
        rules = [r for r in config.get("Rules", []) if _bucket_arn(r.get("Destination", {})) == target]
        if not rules:
            return Check(
                source, "replication-metrics", "missing", f"no replication rule replicates to {replica}"
            )
        updated = copy.deepcopy(config)
        changed, problems = [], []
        for rule in updated["Rules"]:
            if _bucket_arn(rule.get("Destination", {})) != target:
                continue
            name = rule.get("ID", "?")
            if "Filter" not in rule:
                problems.append(f"rule {name} uses the V1 schema (Prefix); metrics need a V2 rule (Filter)")
                continue
            destination = rule["Destination"]
            if destination.get("Metrics", {}).get("Status") != "Enabled":
                destination["Metrics"] = copy.deepcopy(METRICS)
                changed.append(f"rule {name}: metrics enabled")
            if "ReplicationTime" in destination and destination["ReplicationTime"].get("Status") != "Enabled":
                destination["ReplicationTime"] = copy.deepcopy(RTC)
                changed.append(f"rule {name}: replication time control enabled")
        if changed:
            s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=updated)
        if problems:
            return Check(source, "replication-metrics", "missing", "; ".join(problems + changed))
        if changed:
            return Check(source, "replication-metrics", "changed", "; ".join(changed))
        return Check(source, "replication-metrics", "ok", f"metrics enabled on {len(rules)} rule(s)")

    def _notification(self, bucket: str, region: str) -> Check:
        s3 = self._client("s3", region)
        current = s3.get_bucket_notification_configuration(Bucket=bucket)
        config = {k: v for k, v in current.items() if k != "ResponseMetadata"}
        queue = self._queue_arn(region)
        for entry in config.get("QueueConfigurations", []):
            events = set(entry.get("Events", []))
            if entry.get("QueueArn") == queue and (
                REPLICATION_EVENTS in events or events >= REPLICATION_EVENT_NAMES
            ):
                return Check(bucket, "replication-events", "ok", f"s3:Replication:* already sent to {queue}")
        config.setdefault("QueueConfigurations", []).append(
            {"Id": NOTIFICATION_ID, "QueueArn": queue, "Events": [REPLICATION_EVENTS]}
        )
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
        kept = sum(len(config.get(k, [])) for k in _NOTIFICATION_LISTS) - 1
        return Check(
            bucket,
            "replication-events",
            "changed",
            f"s3:Replication:* now sent to {queue} ({kept} existing notification(s) kept)",
        )

    # -- DynamoDB -------------------------------------------------------------------------------------
    def _dynamodb(self, plan: DRPlan, asset: DynamoDBAsset) -> list[Check]:
        out = []
        for table, region in (
            (asset.table, plan.regions.primary),
            (asset.replica_table_name, plan.regions.secondary),
        ):
            ddb = self._client("dynamodb", region)
            subject = f"{table} ({region})"
            try:
                backups = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
            except Exception as exc:
                if error_code(exc) not in ("TableNotFoundException", "ResourceNotFoundException"):
                    raise
                out.append(Check(subject, "table", "missing", "the table does not exist in this region"))
                continue
            pitr = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
            status: Status = "ok" if pitr == "ENABLED" else "missing"
            out.append(Check(subject, "point-in-time-recovery", status, f"PITR {pitr or 'DISABLED'}"))
        return out


_NOTIFICATION_LISTS = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")


def _bucket_arn(destination: dict[str, Any]) -> str:
    return str(destination.get("Bucket", ""))


def queue_arn_by_name(client: ClientFor, queue_name: str) -> Callable[[str], str]:
    """Lifeboat's replication queue in a region, found by its name (the stack names it)."""

    def lookup(region: str) -> str:
        sqs = client("sqs", region)
        try:
            url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        except Exception as exc:
            raise ConnectError(
                f"Lifeboat's queue {queue_name} is not in {region}: deploy Lifeboat there first "
                "(docs/deploy.md) or pass --queue-arn"
            ) from exc
        return str(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )

    return lookup


def cmd_connect(args: argparse.Namespace) -> int:
    """The CLI verb (lifeboat_cli.main registers it)."""
    from rich.console import Console
    from rich.table import Table

    from chalicelib.adapters import aws
    from chalicelib.adapters.plan_store import DirectoryPlanStore
    from chalicelib.services.deps import deps
    from localcloud.resources import names

    store = DirectoryPlanStore(args.plans) if args.plans else deps().plans
    try:
        plan, asset = find_asset(store.all(), args.asset)
    except ConnectError as err:
        Console(stderr=True).print(f"[red]error:[/red] {err}")
        return 2
    queue = (lambda region: args.queue_arn) if args.queue_arn else None
    connector = Connector(
        aws.client, queue or queue_arn_by_name(aws.client, names(args.stage).replication_queue)
    )
    try:
        checks = connector.connect(plan, asset)
    except ConnectError as err:
        Console(stderr=True).print(f"[red]error:[/red] {err}")
        return 2
    if args.json:
        sys.stdout.write(json.dumps([asdict(c) for c in checks], indent=2) + "\n")
    else:
        table = Table(title=f"{plan.workload}/{asset.name}", show_edge=False)
        for column in ("subject", "check", "status", "detail"):
            table.add_column(column)
        colours = {"ok": "green", "changed": "yellow", "missing": "red"}
        for c in checks:
            table.add_row(
                c.subject, c.check, f"[{colours[c.status]}]{c.status}[/{colours[c.status]}]", c.detail
            )
        Console(highlight=False).print(table)
    return 1 if any(c.status == "missing" for c in checks) else 0
