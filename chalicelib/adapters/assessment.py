"""Read-only looks at a workload's live resources for the resilience assessment (`domain/assessment.py`).

Every read is guarded: a resource that does not exist is a fact (`exists=False`), anything else that fails
(access denied, throttling, a region that does not answer) is recorded as `Unreadable` with the error, so
the assessment reports it instead of crashing or passing it. IAM: `assess.read` in infra/permissions.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, TypeVar

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import error_code
from chalicelib.domain.assessment import covering_rule
from chalicelib.models.assessment import (
    AlarmFacts,
    AssessmentFacts,
    AssetMeasurement,
    BucketFacts,
    DeploymentFacts,
    DnsFacts,
    RegistryFacts,
    S3AssetFacts,
    TableAssetFacts,
    TableFacts,
    Unreadable,
    VariantFacts,
)
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

T = TypeVar("T")
ClientFor = Callable[[str, str], Any]

LATENCY_WINDOW = timedelta(hours=1)
"""How far back S3's ReplicationLatency metric is read for the RPO estimate."""

_NO_BUCKET = {"NoSuchBucket", "404", "NotFound"}
_NOT_FOUND = {"ResourceNotFoundException", "ValidationException", "NotFound", "404"}


class _Missing(Exception):
    """The resource does not exist (an answer, not a failure)."""


def _describe(exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{error_code(exc) or type(exc).__name__}: {first}"[:300]


def secure_transport_required(policy: dict[str, Any]) -> bool:
    """Does the bucket policy deny every principal's requests made without TLS?"""
    for statement in policy.get("Statement") or []:
        if statement.get("Effect") != "Deny":
            continue
        principal = statement.get("Principal")
        if principal not in ("*", {"AWS": "*"}):
            continue
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else list(actions or [])
        if not {"s3:*", "*"} & set(actions):
            continue
        for operator, keys in (statement.get("Condition") or {}).items():
            if operator not in ("Bool", "BoolIfExists"):
                continue
            value = (keys or {}).get("aws:SecureTransport")
            values = value if isinstance(value, list) else [value]
            if any(str(v).lower() == "false" for v in values):
                return True
    return False


class AssessmentReader:
    """Gathers `AssessmentFacts` for one plan. `client(service, region)`: the factory's by default."""

    def __init__(self, client: ClientFor | None = None) -> None:
        self._client = client or (lambda service, region: aws.client(service, region))

    def gather(self, plan: DRPlan, facts: AssessmentFacts, *, state_machines: list[str]) -> AssessmentFacts:
        """Fill `facts` (history already in it) with what the plan's resources say; never raises for a
        resource: what cannot be read is in `facts.unreadable`."""
        for index, asset in enumerate(plan.assets):
            path = f"assets[{index}]"
            if isinstance(asset, S3Asset):
                facts.s3_assets.append(self._s3_asset(plan, asset, asset.source, asset.replica, path, facts))
            elif isinstance(asset, ModelRegistryAsset):
                if asset.source is not None and asset.replica is not None:
                    facts.s3_assets.append(
                        self._s3_asset(plan, asset, asset.source, asset.replica, path, facts)
                    )
                facts.registries.append(self._registry(plan, asset, path, facts))
            elif isinstance(asset, DynamoDBAsset):
                facts.tables.append(self._tables(plan, asset, path, facts))
        facts.variants += self._variants(plan, facts)
        facts.alarms += self._alarms(plan, facts)
        facts.dns = self._dns(plan, facts)
        facts.deployment = self._deployment(plan, state_machines, facts)
        return facts

    # -- guarded reads -----------------------------------------------------------------------------------
    @staticmethod
    def _read(facts: AssessmentFacts, subject: str, path: str, call: Callable[[], T]) -> T | None:
        try:
            return call()
        except _Missing:
            raise
        except Exception as exc:
            facts.unreadable.append(Unreadable(subject=subject, plan_path=path, error=_describe(exc)))
            return None

    # -- S3 ----------------------------------------------------------------------------------------------
    def _s3_asset(
        self,
        plan: DRPlan,
        asset: S3Asset | ModelRegistryAsset,
        source: S3Location,
        replica: S3Location,
        path: str,
        facts: AssessmentFacts,
    ) -> S3AssetFacts:
        src = self._bucket(source, "source", plan.regions.primary, f"{path}.source", facts)
        rep = self._bucket(replica, "replica", plan.regions.secondary, f"{path}.replica", facts)
        rule = covering_rule(src.replication_rules or [], source.prefix, replica.bucket)
        metrics = ((rule or {}).get("Destination") or {}).get("Metrics") or {}
        if rule is not None and metrics.get("Status") == "Enabled":
            found = self._read(
                facts,
                f"replication latency of {source.bucket} -> {replica.bucket}",
                f"{path}.source",
                partial(
                    self._latency, plan.regions.primary, source.bucket, replica.bucket, rule, facts.read_at
                ),
            )
            if found is not None:
                seconds, at = found
                facts.history.measurements.append(
                    AssetMeasurement(asset=asset.name, seconds=seconds, at=at, source="replication-metrics")
                )
        return S3AssetFacts(
            asset=asset.name,
            kind=asset.kind,
            plan_path=path,
            rpo_seconds=plan.asset_rpo(asset).total_seconds(),
            source=src,
            replica=rep,
        )

    def _bucket(
        self,
        loc: S3Location,
        side: Literal["source", "replica"],
        region: str,
        path: str,
        facts: AssessmentFacts,
    ) -> BucketFacts:
        out = BucketFacts(
            bucket=loc.bucket, prefix=loc.prefix, side=side, expected_region=region, plan_path=path
        )
        s3 = self._client("s3", region)
        name = f"bucket {loc.bucket}"
        try:
            out.region = self._read(facts, f"{name} location", path, lambda: self._location(s3, loc.bucket))
        except _Missing:
            out.exists = False
            return out
        out.exists = True if out.region is not None else None
        out.versioning = self._read(
            facts,
            f"{name} versioning",
            path,
            lambda: s3.get_bucket_versioning(Bucket=loc.bucket).get("Status") or "Off",
        )
        out.encryption = self._read(
            facts, f"{name} encryption", path, lambda: self._encryption(s3, loc.bucket)
        )
        out.secure_transport_required = self._read(
            facts, f"{name} policy", path, lambda: self._secure_transport(s3, loc.bucket)
        )
        if side == "source":
            out.replication_rules = self._read(
                facts, f"{name} replication", path, lambda: self._replication(s3, loc.bucket)
            )
            for rule in out.replication_rules or []:
                dest = str((rule.get("Destination") or {}).get("Bucket", "")).rsplit(":", 1)[-1]
                if rule.get("Status") != "Enabled" or not dest or dest in out.replica_locations:
                    continue
                try:
                    where = self._read(
                        facts, f"bucket {dest} location", path, partial(self._location, s3, dest)
                    )
                except _Missing:
                    continue
                if where is not None:
                    out.replica_locations[dest] = where
        return out

    def _latency(
        self, region: str, source: str, replica: str, rule: dict[str, Any], now: datetime
    ) -> tuple[float, datetime] | None:
        """The newest maximum of S3's ReplicationLatency (replication metrics) in the last hour, if any."""
        dimensions = [
            {"Name": "SourceBucket", "Value": source},
            {"Name": "DestinationBucket", "Value": replica},
            {"Name": "RuleId", "Value": str(rule.get("ID", ""))},
        ]
        resp = self._client("cloudwatch", region).get_metric_statistics(
            Namespace="AWS/S3",
            MetricName="ReplicationLatency",
            Dimensions=dimensions,
            StartTime=now - LATENCY_WINDOW,
            EndTime=now,
            Period=300,
            Statistics=["Maximum"],
        )
        points = sorted(resp.get("Datapoints") or [], key=lambda p: p["Timestamp"])
        if not points:
            return None
        return float(points[-1]["Maximum"]), points[-1]["Timestamp"]

    @staticmethod
    def _location(s3: Any, bucket: str) -> str:
        try:
            resp = s3.get_bucket_location(Bucket=bucket)
        except Exception as exc:
            if error_code(exc) in _NO_BUCKET:
                raise _Missing(bucket) from None
            raise
        # S3 reports us-east-1 as no constraint (and eu-west-1 as EU, historically).
        constraint = resp.get("LocationConstraint")
        return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, constraint)

    @staticmethod
    def _encryption(s3: Any, bucket: str) -> str:
        try:
            resp = s3.get_bucket_encryption(Bucket=bucket)
        except Exception as exc:
            if error_code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
                return "none"
            raise
        rules = (resp.get("ServerSideEncryptionConfiguration") or {}).get("Rules") or []
        default = (rules[0].get("ApplyServerSideEncryptionByDefault") or {}) if rules else {}
        return str(default.get("SSEAlgorithm") or "none")

    @staticmethod
    def _secure_transport(s3: Any, bucket: str) -> bool:
        try:
            text = s3.get_bucket_policy(Bucket=bucket)["Policy"]
        except Exception as exc:
            if error_code(exc) == "NoSuchBucketPolicy":
                return False
            raise
        return secure_transport_required(json.loads(text))

    @staticmethod
    def _replication(s3: Any, bucket: str) -> list[dict[str, Any]]:
        try:
            resp = s3.get_bucket_replication(Bucket=bucket)
        except Exception as exc:
            if error_code(exc) == "ReplicationConfigurationNotFoundError":
                return []
            raise
        return list((resp.get("ReplicationConfiguration") or {}).get("Rules") or [])

    # -- DynamoDB ------------------------------------------------------------------------------------------
    def _tables(
        self, plan: DRPlan, asset: DynamoDBAsset, path: str, facts: AssessmentFacts
    ) -> TableAssetFacts:
        return TableAssetFacts(
            asset=asset.name,
            plan_path=path,
            source=self._table(asset.table, plan.regions.primary, "source", f"{path}.table", facts),
            replica=self._table(
                asset.replica_table_name, plan.regions.secondary, "replica", f"{path}.replica_table", facts
            ),
        )

    def _table(
        self, name: str, region: str, side: Literal["source", "replica"], path: str, facts: AssessmentFacts
    ) -> TableFacts:
        out = TableFacts(table=name, region=region, side=side, plan_path=path)
        ddb = self._client("dynamodb", region)

        def describe() -> dict[str, Any]:
            try:
                return dict(ddb.describe_table(TableName=name)["Table"])
            except Exception as exc:
                if error_code(exc) in _NOT_FOUND:
                    raise _Missing(name) from None
                raise

        try:
            table = self._read(facts, f"table {name} ({region})", path, describe)
        except _Missing:
            out.exists = False
            return out
        if table is None:
            return out
        out.exists = True
        out.replica_regions = sorted(
            str(r["RegionName"]) for r in table.get("Replicas") or [] if r.get("RegionName") != region
        )
        out.pitr = self._read(
            facts,
            f"table {name} ({region}) point-in-time recovery",
            path,
            lambda: str(
                ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
                .get("PointInTimeRecoveryDescription", {})
                .get("PointInTimeRecoveryStatus", "DISABLED")
            ),
        )
        return out

    # -- model registry ----------------------------------------------------------------------------------
    def _registry(
        self, plan: DRPlan, asset: ModelRegistryAsset, path: str, facts: AssessmentFacts
    ) -> RegistryFacts:
        present: dict[str, bool | None] = {}
        for region, loc in ((plan.regions.primary, asset.source), (plan.regions.secondary, asset.replica)):
            if loc is not None:
                present[region] = self._read(
                    facts,
                    f"registry manifests s3://{loc.bucket}/{loc.prefix} ({region})",
                    path,
                    partial(self._has_manifest, region, loc),
                )
            else:
                present[region] = self._read(
                    facts,
                    f"model package group {asset.model_package_group} ({region})",
                    path,
                    partial(self._has_group, region, str(asset.model_package_group)),
                )
        return RegistryFacts(asset=asset.name, plan_path=path, registry=asset.registry, present=present)

    def _has_manifest(self, region: str, loc: S3Location) -> bool:
        s3 = self._client("s3", region)
        try:
            resp = s3.list_objects_v2(Bucket=loc.bucket, Prefix=loc.prefix, MaxKeys=1)
        except Exception as exc:
            if error_code(exc) in _NO_BUCKET:
                return False
            raise
        return bool(resp.get("Contents"))

    def _has_group(self, region: str, group: str) -> bool:
        try:
            self._client("sagemaker", region).describe_model_package_group(ModelPackageGroupName=group)
        except Exception as exc:
            if error_code(exc) in _NOT_FOUND:
                return False
            raise
        return True

    # -- SageMaker variants ------------------------------------------------------------------------------
    def _variants(self, plan: DRPlan, facts: AssessmentFacts) -> list[VariantFacts]:
        wanted: list[tuple[str, str, str | None, str]] = []  # endpoint, region, variant (None: all), path
        for role in ("primary", "secondary"):
            named = plan.endpoint_for(role)  # type: ignore[arg-type]
            if isinstance(named, SageMakerEndpoint):
                region = plan.region_of(role)  # type: ignore[arg-type]
                wanted.append((named.endpoint_name, region, named.variant_name, f"endpoints.{role}"))
        traffic = plan.traffic
        if isinstance(traffic, SageMakerVariantsTraffic):
            for role in ("primary", "secondary"):
                variant = getattr(traffic.variants, role)
                wanted.append((traffic.endpoint_name, traffic.region, variant, f"traffic.variants.{role}"))
        out: list[VariantFacts] = []
        seen: set[tuple[str, str, str]] = set()
        for endpoint, region, variant, path in wanted:
            try:
                found = self._read(
                    facts,
                    f"SageMaker endpoint {endpoint} ({region})",
                    path,
                    partial(self._endpoint_variants, endpoint, region),
                )
            except _Missing:
                found = []
            if found is not None and (not found or (variant and variant not in {v["name"] for v in found})):
                key = (endpoint, region, variant or "*")
                if key not in seen:
                    seen.add(key)
                    out.append(
                        VariantFacts(
                            endpoint=endpoint,
                            region=region,
                            variant=variant or "*",
                            plan_path=path,
                            exists=False,
                        )
                    )
                continue
            for v in found or []:
                key = (endpoint, region, v["name"])
                if (variant is not None and v["name"] != variant) or key in seen:
                    continue
                seen.add(key)
                out.append(
                    VariantFacts(
                        endpoint=endpoint,
                        region=region,
                        variant=v["name"],
                        plan_path=path,
                        instance_count=v["count"],
                        instance_type=v["type"],
                        serverless=v["serverless"],
                    )
                )
        return out

    def _endpoint_variants(self, endpoint: str, region: str) -> list[dict[str, Any]]:
        sm = self._client("sagemaker", region)
        try:
            desc = sm.describe_endpoint(EndpointName=endpoint)
        except Exception as exc:
            # SageMaker answers a missing endpoint with ValidationException "Could not find endpoint ..."
            if error_code(exc) == "ValidationException" and "could not find" in str(exc).lower():
                raise _Missing(endpoint) from None
            raise
        config = sm.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
        configured = {v["VariantName"]: v for v in config.get("ProductionVariants") or []}
        out = []
        for v in desc.get("ProductionVariants") or list(configured.values()):
            name = v["VariantName"]
            conf = configured.get(name, {})
            count = v.get("CurrentInstanceCount", conf.get("InitialInstanceCount"))
            serverless = bool(
                v.get("CurrentServerlessConfig") or conf.get("ServerlessConfig") or v.get("ServerlessConfig")
            )
            out.append(
                {
                    "name": name,
                    "count": None if count is None else int(count),
                    "type": conf.get("InstanceType"),
                    "serverless": serverless,
                }
            )
        return out

    # -- alarms, DNS, Lifeboat itself ------------------------------------------------------------------------
    def _alarms(self, plan: DRPlan, facts: AssessmentFacts) -> list[AlarmFacts]:
        out: list[AlarmFacts] = []
        for region, alarms in plan.trigger_alarms_by_region().items():
            found = self._read(
                facts,
                f"trigger alarms in {region}",
                "trigger.alarms",
                partial(self._metric_alarms, region, alarms),
            )
            by_name = {a["AlarmName"]: a for a in found or []}
            for name in alarms:
                path = f"trigger.alarms[{plan.trigger.alarms.index(name)}]"
                alarm = by_name.get(name)
                if found is None:
                    out.append(AlarmFacts(name=name, region=region, plan_path=path))
                elif alarm is None:
                    out.append(AlarmFacts(name=name, region=region, plan_path=path, exists=False))
                else:
                    out.append(
                        AlarmFacts(
                            name=name,
                            region=region,
                            plan_path=path,
                            exists=True,
                            period_seconds=int(alarm.get("Period") or 0) or None,
                            datapoints_to_alarm=int(
                                alarm.get("DatapointsToAlarm") or alarm.get("EvaluationPeriods") or 0
                            )
                            or None,
                        )
                    )
        return out

    def _metric_alarms(self, region: str, alarms: list[str]) -> list[dict[str, Any]]:
        cloudwatch = self._client("cloudwatch", region)
        resp = cloudwatch.describe_alarms(AlarmNames=alarms, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        return list(resp.get("MetricAlarms", []))

    def _dns(self, plan: DRPlan, facts: AssessmentFacts) -> DnsFacts | None:
        # The Route 53 records the switch moves: the Route 53 kinds' own, an ARC plan's failback records
        # (its failover is the routing controls: no record to read then), none for SageMaker variants.
        traffic = route53_records(plan.traffic)
        if traffic is None:
            return None
        out = DnsFacts(
            record_name=traffic.record_name,
            plan_path="traffic.ttl" if traffic is plan.traffic else "traffic.failback_records.ttl",
            plan_ttl_seconds=int(traffic.ttl.total_seconds()),
        )
        records = self._read(
            facts, f"DNS records {traffic.record_name}", "traffic", lambda: self._records(plan)
        )
        wanted = {traffic.set_identifiers.primary, traffic.set_identifiers.secondary}
        for record in records or []:
            ident = record.get("SetIdentifier")
            if ident in wanted and record.get("TTL") is not None:
                out.live_ttl_seconds[str(ident)] = int(record["TTL"])
        return out

    def _records(self, plan: DRPlan) -> list[dict[str, Any]]:
        traffic = route53_records(plan.traffic)
        if traffic is None:
            return []
        route53 = self._client("route53", plan.regions.primary)
        zone = traffic.hosted_zone_id
        if not zone:
            name = traffic.hosted_zone_name or ""
            name = name if name.endswith(".") else name + "."
            zones = route53.list_hosted_zones_by_name(DNSName=name, MaxItems="1").get("HostedZones", [])
            match = [z for z in zones if z["Name"] == name]
            if not match:
                raise LookupError(f"hosted zone {name} not found")
            zone = match[0]["Id"]
        record = traffic.record_name if traffic.record_name.endswith(".") else traffic.record_name + "."
        resp = route53.list_resource_record_sets(
            HostedZoneId=zone.split("/")[-1], StartRecordName=record, StartRecordType=traffic.record_type
        )
        return [
            r
            for r in resp.get("ResourceRecordSets", [])
            if r.get("Name") == record and r.get("Type") == traffic.record_type
        ]

    def _deployment(self, plan: DRPlan, state_machines: list[str], facts: AssessmentFacts) -> DeploymentFacts:
        region = plan.regions.secondary
        out = DeploymentFacts(region=region, plan_path="regions.secondary", expected=state_machines)

        def listed() -> list[str]:
            sfn = self._client("stepfunctions", region)
            names: list[str] = []
            kwargs: dict[str, Any] = {}
            while True:
                page = sfn.list_state_machines(**kwargs)
                names += [m["name"] for m in page.get("stateMachines", [])]
                if not page.get("nextToken"):
                    return names
                kwargs["nextToken"] = page["nextToken"]

        found = self._read(facts, f"Lifeboat's state machines in {region}", "regions.secondary", listed)
        out.found = None if found is None else [n for n in state_machines if n in found]
        return out
