"""The DR plan: one workload's objectives, regions, traffic switch, smoke tests, assets and policies.

A plan is written as YAML (see `planfile` and docs/plans.md) and is the single input every Lifeboat decision
and state machine is derived from, so the model refuses anything ambiguous rather than guessing.
"""

from __future__ import annotations

import difflib
from datetime import timedelta
from typing import Annotated, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chalicelib.models.aws_regions import ALL_REGIONS
from chalicelib.models.durations import Duration, format_duration
from chalicelib.models.urls import url_problem

Role = Literal["primary", "secondary"]
ROLES: tuple[Role, Role] = ("primary", "secondary")
Tier = Literal["critical", "standard", "batch"]

RULE_ERROR = "lifeboat_rule"
"""Error type of the cross-field rules below; its context `at` is the path of the offending field, relative
to the model that raised it, so the plan loader can point at the right line instead of the enclosing block."""


def rule_error(message: str, *at: str | int) -> PydanticCustomError:
    return PydanticCustomError(RULE_ERROR, message, {"at": at})


# -- constrained strings
# Each pattern has a hint so that a mismatch reads "expected a DNS name such as fraud.example.com." and not a
# regular expression.
PATTERN_HINTS: dict[str, str] = {}


def _pattern(pattern: str, hint: str, max_length: int | None = None) -> object:
    PATTERN_HINTS[pattern] = hint
    return StringConstraints(pattern=pattern, max_length=max_length)


WORKLOAD_PATTERN = r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$"

WorkloadName = Annotated[
    str,
    _pattern(
        WORKLOAD_PATTERN,
        "3-40 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen "
        "(e.g. fraud-scoring)",
    ),
]


def region_problem(name: str) -> str | None:
    """None when botocore lists `name` as a region (models/aws_regions.py); else what is wrong, with the
    closest names: a plan naming `us-wset-2` would otherwise fail only when a failover first calls it."""
    if name in ALL_REGIONS:
        return None
    wanted = name.strip().lower()
    if wanted in ALL_REGIONS:
        return f"unknown AWS region {name!r}; did you mean {wanted}? (region names are lower case)"
    close = difflib.get_close_matches(wanted, sorted(ALL_REGIONS), n=3, cutoff=0.6)
    hint = "; AWS region names look like us-east-1"
    if close:
        hint = (
            f"; did you mean {close[0]}?"
            if len(close) == 1
            else f"; did you mean {', '.join(close[:-1])} or {close[-1]}?"
        )
    return f"unknown AWS region {name!r}{hint}"


def _region(name: str) -> str:
    problem = region_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


Region = Annotated[str, StringConstraints(max_length=32), AfterValidator(_region)]
AssetName = Annotated[
    str,
    _pattern(
        r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$",
        "up to 64 lowercase letters, digits and hyphens, not starting or ending with a hyphen",
    ),
]
CaseName = Annotated[
    str,
    _pattern(
        r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        "up to 64 letters, digits, '-', '_' or '.', starting with a letter or digit",
    ),
]
BucketName = Annotated[
    str,
    _pattern(
        r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "an S3 bucket name (3-63 lowercase letters, digits, . and -)"
    ),
]
SageMakerName = Annotated[
    str,
    _pattern(
        r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
        "a SageMaker name (up to 63 letters, digits and hyphens, starting with a letter or digit)",
    ),
]
TableName = Annotated[
    str, _pattern(r"^[a-zA-Z0-9_.-]{3,255}$", "a DynamoDB table name (3-255 letters, digits, _ . and -)")
]
DnsName = Annotated[
    str,
    _pattern(
        r"^(\*\.)?([A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+\.?$",
        "a DNS name such as fraud.example.com.",
        max_length=255,
    ),
]
HostedZoneId = Annotated[
    str,
    _pattern(r"^(/hostedzone/)?[A-Z0-9]{1,32}$", "a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ"),
]


def _requestable(url: str) -> str:
    # Rules that hold wherever Lifeboat runs (no credentials, never the metadata service...); what depends on
    # the deployment (loopback, private addresses, the allow-list, what a name resolves to) is checked by
    # plan validation and before every request (adapters/outbound.py).
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return url


HttpUrl = Annotated[
    str, _pattern(r"^https?://\S+$", "an http:// or https:// URL"), AfterValidator(_requestable)
]
KMS_KEY_PATTERN = (
    r"^arn:aws[a-z-]*:kms:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:key/"
    r"(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
KmsKeyArn = Annotated[
    str,
    _pattern(
        KMS_KEY_PATTERN,
        "a KMS key ARN such as arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab "
        "(an alias does not work: IAM grants name keys)",
    ),
]
TopicName = Annotated[
    str,
    _pattern(
        r"^(arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:)?[A-Za-z0-9_-]{1,256}(\.fifo)?$",
        "an SNS topic name or arn:aws:sns:<region>:<account>:<name> ARN",
    ),
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=128)]
AlarmName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
DotPath = Annotated[
    str,
    _pattern(r"^[^.\s]+(\.[^.\s]+)*$", "a dot path into the JSON response such as predictions.0.score"),
]


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


def _whole_seconds(value: timedelta) -> timedelta:
    if value % timedelta(seconds=1):
        raise ValueError(f"must be a whole number of seconds (got {format_duration(value)})")
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
Seconds = Annotated[Duration, AfterValidator(_whole_seconds)]


def _unique(values: list[str], what: str, field: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise rule_error(f"{what} {value!r} is listed more than once", field, index)
        seen.add(value)


class _Model(BaseModel):
    # Frozen because a plan is read once and shared by every decision; extra="forbid" because a typo in a DR
    # plan ("quorom") must fail loudly, not silently fall back to a default at 3 a.m.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# -- objectives and regions
class TierObjectives(NamedTuple):
    rpo: timedelta
    rto: timedelta


TIER_OBJECTIVES: dict[str, TierObjectives] = {
    "critical": TierObjectives(rpo=timedelta(minutes=1), rto=timedelta(minutes=5)),
    "standard": TierObjectives(rpo=timedelta(minutes=15), rto=timedelta(hours=1)),
    "batch": TierObjectives(rpo=timedelta(hours=24), rto=timedelta(hours=24)),
}
"""Default recovery objectives per tier, used for every objective the plan leaves out."""


class Objectives(_Model):
    """Recovery objectives; each one left out takes the tier's default."""

    rpo: Duration | None = Field(
        default=None,
        description="Recovery point objective: the most data loss tolerated. Default from the tier.",
    )
    rto: PositiveDuration | None = Field(
        default=None,
        description="Recovery time objective: the longest outage tolerated. Default from the tier.",
    )


class Regions(_Model):
    """The two AWS regions the workload runs in."""

    primary: Region = Field(description="Region serving traffic in normal operation, e.g. us-east-1.")
    secondary: Region = Field(description="Region failed over to, e.g. us-west-2.")
    allowed: list[Region] | None = Field(
        default=None,
        description="Data residency: the only regions the workload's data may live in (its replicas "
        "included); must list the primary and secondary. `lifeboat assess` flags any replica elsewhere. "
        "Left out: no residency rule.",
    )

    @model_validator(mode="after")
    def _distinct(self) -> Regions:
        if self.primary == self.secondary:
            raise rule_error(
                f"must differ from the primary region (both are {self.primary}); a DR plan needs two regions",
                "secondary",
            )
        if self.allowed is not None:
            _unique(self.allowed, "region", "allowed")
            for role, region in (("primary", self.primary), ("secondary", self.secondary)):
                if region not in self.allowed:
                    raise rule_error(
                        f"must include the {role} region {region}: the workload's data lives there "
                        f"(got {', '.join(self.allowed) or 'none'})",
                        "allowed",
                    )
        return self


# -- endpoints
class HttpEndpoint(_Model):
    """An inference endpoint reached over plain HTTP(S), e.g. a container behind a load balancer."""

    kind: Literal["http"] = Field(description="Discriminator: http.")
    url: HttpUrl = Field(description="URL that accepts a POSTed JSON payload and returns a JSON prediction.")


class SageMakerEndpoint(_Model):
    """A SageMaker real-time endpoint, invoked with InvokeEndpoint in its region."""

    kind: Literal["sagemaker"] = Field(description="Discriminator: sagemaker.")
    endpoint_name: SageMakerName = Field(description="SageMaker endpoint name.")
    variant_name: SageMakerName | None = Field(
        default=None, description="Production variant to target (TargetVariant); all variants when left out."
    )


Endpoint = Annotated[HttpEndpoint | SageMakerEndpoint, Field(discriminator="kind")]


class Endpoints(_Model):
    """The inference endpoint in each region."""

    primary: Endpoint = Field(description="Endpoint in the primary region.")
    secondary: Endpoint = Field(description="Endpoint in the secondary region.")


# -- traffic
class SetIdentifiers(_Model):
    """Route 53 set identifiers of the two records that share the record name."""

    primary: ShortText = Field(description="Set identifier of the record pointing at the primary region.")
    secondary: ShortText = Field(description="Set identifier of the record pointing at the secondary region.")

    @model_validator(mode="after")
    def _distinct(self) -> SetIdentifiers:
        if self.primary == self.secondary:
            raise rule_error(
                f"must differ from the primary set identifier (both are {self.primary!r})", "secondary"
            )
        return self


class HealthCheckIds(_Model):
    """Route 53 health checks attached to the failover records."""

    primary: ShortText = Field(
        description="Health check of the primary record (required by Route 53 failover)."
    )
    secondary: ShortText | None = Field(
        default=None, description="Health check of the secondary record (optional)."
    )


class _Route53Traffic(_Model):
    hosted_zone_id: HostedZoneId | None = Field(
        default=None, description="Hosted zone id. Give exactly one of hosted_zone_id or hosted_zone_name."
    )
    hosted_zone_name: DnsName | None = Field(
        default=None, description="Hosted zone name, e.g. example.com. (looked up at run time)."
    )
    record_name: DnsName = Field(description="Name of the record clients resolve, e.g. fraud.example.com.")
    record_type: Literal["CNAME", "A", "AAAA"] = Field(default="CNAME", description="Record type.")
    set_identifiers: SetIdentifiers = Field(description="Set identifier of each region's record.")
    ttl: Seconds = Field(
        default=timedelta(seconds=60), description="Record TTL in whole seconds; clients cache this long."
    )

    @model_validator(mode="after")
    def _one_zone(self) -> _Route53Traffic:
        if self.hosted_zone_id is not None and self.hosted_zone_name is not None:
            raise rule_error("give either hosted_zone_id or hosted_zone_name, not both", "hosted_zone_name")
        if self.hosted_zone_id is None and self.hosted_zone_name is None:
            raise rule_error("one of hosted_zone_id or hosted_zone_name is required")
        return self


class Route53WeightedTraffic(_Route53Traffic):
    """Two weighted records; failover and failback move the weights (failback in steps)."""

    kind: Literal["route53-weighted"] = Field(description="Discriminator: route53-weighted.")


class Route53FailoverTraffic(_Route53Traffic):
    """A Route 53 failover record pair (PRIMARY / SECONDARY), each guarded by a health check."""

    kind: Literal["route53-failover"] = Field(description="Discriminator: route53-failover.")
    health_check_ids: HealthCheckIds = Field(description="Health checks of the failover records.")


class VariantNames(_Model):
    """The production variant that stands for each region on a single SageMaker endpoint."""

    primary: SageMakerName = Field(description="Variant carrying traffic in normal operation.")
    secondary: SageMakerName = Field(description="Variant traffic moves to on failover.")

    @model_validator(mode="after")
    def _distinct(self) -> VariantNames:
        if self.primary == self.secondary:
            raise rule_error(f"must differ from the primary variant (both are {self.primary!r})", "secondary")
        return self


class SageMakerVariantsTraffic(_Model):
    """Traffic moved between production variants of one SageMaker endpoint (by updating variant weights)."""

    kind: Literal["sagemaker-variants"] = Field(description="Discriminator: sagemaker-variants.")
    endpoint_name: SageMakerName = Field(
        description="The SageMaker endpoint whose variant weights are moved."
    )
    region: Region = Field(
        description="Region of that endpoint; must be the plan's primary or secondary region."
    )
    variants: VariantNames = Field(description="Variant name of each role.")


# Route 53 ARC (route53-recovery-control) ARNs carry no region: the cluster is global, its endpoints regional.
ARC_CLUSTER_PATTERN = r"^arn:aws[a-z-]*:route53-recovery-control::\d{12}:cluster/[A-Za-z0-9_-]{1,64}$"
ARC_CONTROL_PATTERN = (
    r"^arn:aws[a-z-]*:route53-recovery-control::\d{12}:controlpanel/[A-Za-z0-9_-]{1,64}"
    r"/routingcontrol/[A-Za-z0-9_-]{1,64}$"
)
ArcClusterArn = Annotated[
    str,
    _pattern(
        ARC_CLUSTER_PATTERN,
        "a Route 53 ARC cluster ARN such as arn:aws:route53-recovery-control::123456789012:cluster/<id>",
    ),
]
ArcControlArn = Annotated[
    str,
    _pattern(
        ARC_CONTROL_PATTERN,
        "a Route 53 ARC routing control ARN such as "
        "arn:aws:route53-recovery-control::123456789012:controlpanel/<id>/routingcontrol/<id>",
    ),
]


class ClusterEndpoint(_Model):
    """One regional endpoint of a Route 53 ARC cluster (what DescribeCluster lists as ClusterEndpoints)."""

    region: Region = Field(description="Region of the endpoint; requests to it are signed for this region.")
    url: HttpUrl = Field(
        description="The endpoint's URL, e.g. https://host-aaaaaa.us-east-1.example.aws/v1 (from "
        "`aws route53-recovery-control-config describe-cluster`)."
    )


class RoutingControlArns(_Model):
    """The routing control that lets traffic reach each region (On: traffic flows there)."""

    primary: ArcControlArn = Field(description="Routing control of the primary region's record.")
    secondary: ArcControlArn = Field(description="Routing control of the secondary region's record.")

    @model_validator(mode="after")
    def _distinct(self) -> RoutingControlArns:
        if self.primary == self.secondary:
            raise rule_error("must differ from the primary routing control (both are the same)", "secondary")
        return self


class WeightedRecords(_Route53Traffic):
    """Weighted records (each with the routing control's health check) that split traffic while both
    controls are On: what gradual failback moves, through Route 53's control plane."""


class ArcRoutingControlTraffic(_Model):
    """Route 53 ARC routing controls: failover sets the two controls' states on the cluster's data plane
    (any of its regional endpoints), which works while Route 53's control plane is down."""

    kind: Literal["arc-routing-control"] = Field(description="Discriminator: arc-routing-control.")
    cluster_arn: ArcClusterArn = Field(description="The ARC cluster whose endpoints set the controls.")
    cluster_endpoints: list[ClusterEndpoint] = Field(
        min_length=1,
        description="The cluster's regional endpoints (a cluster has five), tried in random order until one "
        "answers. Written in the plan, not looked up at failover time: DescribeCluster is a control-plane "
        "call (us-west-2). `lifeboat plan check` compares them with the cluster.",
    )
    routing_controls: RoutingControlArns = Field(description="The routing control of each region.")
    health_check_ids: HealthCheckIds | None = Field(
        default=None,
        description="The Route 53 health checks the controls drive (type RECOVERY_CONTROL), attached to the "
        "records clients resolve; `lifeboat plan check` checks that each is associated with its control.",
    )
    failback_records: WeightedRecords | None = Field(
        default=None,
        description="Weighted records that split traffic while both controls are On; required for a "
        "failback in steps (failback.steps other than [100]).",
    )

    @model_validator(mode="after")
    def _endpoints(self) -> ArcRoutingControlTraffic:
        _unique([e.url for e in self.cluster_endpoints], "endpoint url", "cluster_endpoints")
        return self


Traffic = Annotated[
    Route53WeightedTraffic | Route53FailoverTraffic | SageMakerVariantsTraffic | ArcRoutingControlTraffic,
    Field(discriminator="kind"),
]


def route53_records(traffic: Traffic) -> _Route53Traffic | None:
    """The Route 53 records (and their hosted zone) a traffic switch changes, if it changes any: the switch's
    own for the Route 53 kinds, an arc-routing-control plan's failback records."""
    if isinstance(traffic, _Route53Traffic):
        return traffic
    if isinstance(traffic, ArcRoutingControlTraffic):
        return traffic.failback_records
    return None


# -- smoke tests
class Expectation(_Model):
    """What one field of the prediction must be: a number within a tolerance, or an exact value."""

    field: DotPath = Field(description="Dot path into the JSON response, e.g. score or predictions.0.score.")
    value: float | None = Field(default=None, strict=True, description="Expected number (with `tolerance`).")
    tolerance: float = Field(
        default=0.0, ge=0, strict=True, description="Allowed absolute difference from `value` (default 0)."
    )
    equals: JsonValue = Field(
        default=None, description="Expected exact value: any JSON scalar, list or object."
    )

    @model_validator(mode="after")
    def _one_expectation(self) -> Expectation:
        # `equals: null` is a legitimate expectation ("the field is null"), so "neither" is judged by which
        # keys were given; "both" by values, so that a full model_dump (value: 0.9, equals: null) validates.
        given = self.model_fields_set
        if self.value is not None and self.equals is not None:
            raise rule_error("give either value (with tolerance) or equals, not both", "equals")
        if self.value is None and "equals" not in given:
            if "value" in given:
                raise rule_error("must be a number (or leave it out and use equals)", "value")
            raise rule_error("one of value (a number, with tolerance) or equals (an exact value) is required")
        if self.value is None and self.tolerance:
            raise rule_error("tolerance only applies to value, not to equals", "tolerance")
        return self

    @property
    def is_numeric(self) -> bool:
        """True for value-within-tolerance expectations, False for exact `equals` ones."""
        return self.value is not None


class SmokeCase(_Model):
    """One request sent to an endpoint and what its response must contain."""

    name: CaseName = Field(description="Name of the case, unique within the plan (appears in reports).")
    payload: dict[str, JsonValue] = Field(description="JSON object sent as the request body.")
    expect: Expectation = Field(description="What the response must contain.")


class SmokeTests(_Model):
    """Requests that prove an endpoint serves correct predictions fast enough before traffic moves to it."""

    request_timeout: PositiveDuration = Field(
        default=timedelta(seconds=5), description="Timeout of each request."
    )
    latency_budget_p95_ms: int = Field(
        gt=0, strict=True, description="Highest acceptable p95 latency, in ms."
    )
    min_success_ratio: float = Field(
        default=1.0,
        gt=0,
        le=1,
        strict=True,
        description="Share of cases that must pass (0 < ratio <= 1, default 1).",
    )
    cases: list[SmokeCase] = Field(min_length=1, description="The cases; at least one.")

    @model_validator(mode="after")
    def _unique_names(self) -> SmokeTests:
        seen: set[str] = set()
        for index, case in enumerate(self.cases):
            if case.name in seen:
                raise rule_error(
                    f"smoke case name {case.name!r} is used more than once", "cases", index, "name"
                )
            seen.add(case.name)
        return self


# -- assets
class S3Location(_Model):
    """A bucket and key prefix."""

    bucket: BucketName = Field(description="Bucket name.")
    prefix: str = Field(
        default="", max_length=1024, description="Key prefix, e.g. datasets/ (default: whole bucket)."
    )
    kms_key: KmsKeyArn | None = Field(
        default=None,
        description="The customer-managed KMS key the bucket encrypts these objects with (SSE-KMS), so "
        "Lifeboat's roles may use it through S3; leave out for SSE-S3 or the AWS managed aws/s3 key.",
    )

    @property
    def kms_region(self) -> str | None:
        return self.kms_key.split(":")[3] if self.kms_key else None


class _AssetBase(_Model):
    name: AssetName = Field(description="Name of the asset, unique within the plan.")
    rpo: Duration | None = Field(default=None, description="RPO of this asset; the plan's RPO when left out.")


class S3Asset(_AssetBase):
    """Objects replicated from a bucket in the primary region to one in the secondary region."""

    kind: Literal["s3"] = Field(description="Discriminator: s3.")
    source: S3Location = Field(description="Where the objects live in the primary region.")
    replica: S3Location = Field(description="Where they are replicated to in the secondary region.")
    role: Literal["dataset", "model-artifacts", "other"] = Field(
        default="other", description="What the objects are to the model (reports group assets by it)."
    )
    inventory: S3Location | None = Field(
        default=None,
        description="Where S3 Inventory writes manifests of the source bucket (for replication audits).",
    )
    may_be_empty: bool = Field(
        default=False,
        strict=True,
        description="The source prefix may legitimately hold no objects. Otherwise verification reports an "
        "empty source as a breach (a mistyped prefix would verify nothing and look green).",
    )

    @model_validator(mode="after")
    def _two_buckets(self) -> S3Asset:
        if self.source.bucket == self.replica.bucket:
            raise rule_error(
                f"replica bucket must differ from the source bucket (both are {self.source.bucket})",
                "replica",
                "bucket",
            )
        return self


class ModelRegistryAsset(_AssetBase):
    """The registry of model versions, which must name the same approved version in both regions."""

    kind: Literal["model-registry"] = Field(description="Discriminator: model-registry.")
    registry: Literal["s3-manifest", "sagemaker"] = Field(
        description="s3-manifest: a manifest object in S3; sagemaker: a SageMaker model package group."
    )
    source: S3Location | None = Field(
        default=None, description="Manifest location in the primary region (s3-manifest)."
    )
    replica: S3Location | None = Field(
        default=None, description="Manifest location in the secondary region (s3-manifest)."
    )
    model_package_group: SageMakerName | None = Field(
        default=None, description="Model package group name (sagemaker registry)."
    )

    @model_validator(mode="after")
    def _fits_registry(self) -> ModelRegistryAsset:
        if self.registry == "s3-manifest":
            for name in ("source", "replica"):
                if getattr(self, name) is None:
                    raise rule_error(f"{name} is required when registry is s3-manifest", name)
            if self.model_package_group is not None:
                raise rule_error("only applies when registry is sagemaker", "model_package_group")
        else:
            if self.model_package_group is None:
                raise rule_error(
                    "model_package_group is required when registry is sagemaker", "model_package_group"
                )
            for name in ("source", "replica"):
                if getattr(self, name) is not None:
                    raise rule_error("only applies when registry is s3-manifest", name)
        return self


class DynamoDBAsset(_AssetBase):
    """A DynamoDB global table (e.g. an online feature store) with a replica in the secondary region."""

    kind: Literal["dynamodb"] = Field(description="Discriminator: dynamodb.")
    table: TableName = Field(description="Table name in the primary region.")
    replica_table: TableName | None = Field(
        default=None,
        description="Table name in the secondary region; the same name (global table) when left out.",
    )

    @property
    def replica_table_name(self) -> str:
        return self.replica_table or self.table


Asset = Annotated[S3Asset | ModelRegistryAsset | DynamoDBAsset, Field(discriminator="kind")]


# -- policies
class TriggerPolicy(_Model):
    """When alarms start a failover: M of N named alarms, held for a sustain window, outside a cooldown."""

    alarms: list[AlarmName] = Field(min_length=1, description="CloudWatch alarm names watched; at least one.")
    quorum: int = Field(
        default=1, ge=1, strict=True, description="How many of the alarms must be in ALARM (default 1)."
    )
    sustain: Duration = Field(
        default=timedelta(0), description="How long the quorum must hold before failing over (default 0s)."
    )
    cooldown: Duration = Field(
        default=timedelta(minutes=15),
        description="No new failover for this long after a failover or failback.",
    )
    confirmation_probe: bool = Field(
        default=True,
        strict=True,
        description="Smoke-test the primary before failing over; a passing probe cancels.",
    )
    alarm_regions: dict[AlarmName, Region] = Field(
        default_factory=dict,
        description="Region of each alarm that does not live in the primary region, e.g. a canary in the "
        "secondary region probing the primary endpoint (alarm name -> region; the primary or secondary "
        "region). Alarms left out live in the primary region.",
    )

    @model_validator(mode="after")
    def _quorum_fits(self) -> TriggerPolicy:
        _unique(self.alarms, "alarm", "alarms")
        for name in self.alarm_regions:
            if name not in self.alarms:
                raise rule_error(
                    f"{name!r} is not one of the trigger alarms ({', '.join(self.alarms)})",
                    "alarm_regions",
                    name,
                )
        if self.quorum > len(self.alarms):
            raise rule_error(
                f"quorum {self.quorum} is more than the {len(self.alarms)} alarm(s) listed; "
                f"it must be between 1 and {len(self.alarms)}",
                "quorum",
            )
        return self


class FailoverPolicy(_Model):
    """How a failover treats data that has not replicated yet."""

    mode: Literal["graceful", "ungraceful"] = Field(
        default="graceful",
        description="graceful: wait for replication to catch up (bounded); ungraceful: move traffic at once.",
    )
    replication_wait_timeout: Duration = Field(
        default=timedelta(minutes=5),
        description="Longest a graceful failover waits for replication (default 5m).",
    )


Percent = Annotated[int, Field(ge=1, le=100, strict=True)]


class FailbackPolicy(_Model):
    """How traffic returns to the primary region: in steps, each baked and gated on alarms."""

    steps: list[Percent] = Field(
        default_factory=lambda: [10, 25, 50, 100],
        min_length=1,
        description="Share of traffic (percent) on the primary after each step; increasing, ending at 100.",
    )
    bake: Duration = Field(
        default=timedelta(minutes=5), description="Wait after each step before the next one."
    )
    gate_alarms: list[AlarmName] = Field(
        default_factory=list, description="Alarms that must stay OK through each bake; any ALARM rolls back."
    )
    approval_required: bool = Field(
        default=True, strict=True, description="A human approves before failback starts."
    )
    approval_timeout: PositiveDuration = Field(
        default=timedelta(hours=1), description="How long to wait for that approval before giving up."
    )
    auto: bool = Field(
        default=False, strict=True, description="Start failback by itself once the primary is healthy."
    )
    healthy_window: Duration = Field(
        default=timedelta(minutes=30),
        description="How long the primary must be healthy before failback may start.",
    )

    @model_validator(mode="after")
    def _steps(self) -> FailbackPolicy:
        for index in range(1, len(self.steps)):
            if self.steps[index] <= self.steps[index - 1]:
                raise rule_error(
                    f"steps must increase strictly (got {self.steps[index - 1]} then {self.steps[index]})",
                    "steps",
                    index,
                )
        if self.steps[-1] != 100:
            raise rule_error(
                f"the last step must be 100 so all traffic returns to the primary (got {self.steps[-1]})",
                "steps",
                len(self.steps) - 1,
            )
        _unique(self.gate_alarms, "gate alarm", "gate_alarms")
        return self


class Notifications(_Model):
    """Where Lifeboat tells humans what it did."""

    topic: TopicName = Field(description="SNS topic name (in Lifeboat's region) or full topic ARN.")

    def topic_arn(self, region: str, account_id: str) -> str:
        """The topic ARN, given the region and account Lifeboat runs in (a full ARN is returned unchanged)."""
        if self.topic.startswith("arn:"):
            return self.topic
        return f"arn:aws:sns:{region}:{account_id}:{self.topic}"


# -- drills
DrillScenario = Literal[
    "region-outage",
    "region-api-outage",
    "endpoint-degraded",
    "replication-stalled",
    "corrupt-artifact",
    "api-throttling",
    "alarm-flapping",
    "backup-unhealthy",
    "data-corruption",
]
DRILL_SCENARIOS: tuple[str, ...] = (
    "region-outage",
    "region-api-outage",
    "endpoint-degraded",
    "replication-stalled",
    "corrupt-artifact",
    "api-throttling",
    "alarm-flapping",
    "backup-unhealthy",
    "data-corruption",
)


class DrillPolicy(_Model):
    """How DR drills of this workload run (docs/drills.md). Every key is optional."""

    target: WorkloadName | None = Field(
        default=None,
        description="Plan of the drill copy of this workload (own record, endpoints, alarms) that drills "
        "break in an AWS account; without it only --live drills run there. The local cloud needs none.",
    )
    scenario: DrillScenario = Field(
        default="region-outage", description="Scenario of scheduled drills and of API requests naming none."
    )
    schedule: Literal["never", "monthly"] = Field(
        default="never", description="monthly: the drill schedule runs this plan's drill (on its target)."
    )
    write_interval: PositiveDuration = Field(
        default=timedelta(seconds=1),
        description="How often the drill writes a timestamped object to the dataset (RPO evidence).",
    )
    replication_gap: PositiveDuration = Field(
        default=timedelta(seconds=30),
        description="replication-stalled: how long replication is paused before the region fails.",
    )
    failback_bake: Duration | None = Field(
        default=None, description="Bake of each failback step during a drill; the plan's bake when left out."
    )
    observe: PositiveDuration = Field(
        default=timedelta(minutes=2),
        description="Longest wait for the automation to react (and how long no-failover scenarios are "
        "watched at least: twice the sustain window).",
    )
    throttle_share: float = Field(
        default=0.3, gt=0, lt=1, strict=True, description="api-throttling: share of AWS calls throttled."
    )
    timeout: PositiveDuration = Field(
        default=timedelta(minutes=15),
        description="Stop condition: a drill running longer is interrupted and cleaned up.",
    )


def _whole_days(value: timedelta) -> timedelta:
    if value % timedelta(days=1) or not timedelta(days=1) <= value <= timedelta(days=MAX_RETENTION_DAYS):
        raise ValueError(
            f"must be whole days from 1d to {MAX_RETENTION_DAYS}d (got {format_duration(value)})"
        )
    return value


MAX_RETENTION_DAYS = 36500  # S3 Object Lock's longest default retention


class AuditPolicy(_Model):
    """How long the evidence Lifeboat writes about this workload stays unalterable."""

    evidence_retention: Annotated[Duration, AfterValidator(_whole_days)] = Field(
        default=timedelta(days=365),
        description="Object Lock (governance mode) default retention of the evidence bucket, which holds "
        "verification reports and drill records; the bucket keeps the longest of its plans' retentions.",
    )


# -- the plan
class DRPlan(_Model):
    """A disaster-recovery plan for one ML inference workload."""

    version: Literal[1] = Field(description="Plan schema version; must be 1.")
    workload: WorkloadName = Field(description="Workload name, used in resource and execution names.")
    description: str | None = Field(default=None, max_length=1024, description="Free text for humans.")
    tier: Tier = Field(description="critical, standard or batch; sets the default objectives.")
    objectives: Objectives = Field(default_factory=Objectives, description="RPO and RTO (tier defaults).")
    regions: Regions = Field(description="Primary and secondary region.")
    endpoints: Endpoints = Field(description="The inference endpoint in each region.")
    traffic: Traffic = Field(description="How traffic is switched between the regions.")
    smoke_tests: SmokeTests = Field(description="Requests that prove an endpoint is fit to take traffic.")
    assets: list[Asset] = Field(default_factory=list, description="Replicated data the model depends on.")
    trigger: TriggerPolicy = Field(description="Which alarms start a failover.")
    failover: FailoverPolicy = Field(default_factory=FailoverPolicy, description="How failover treats data.")
    failback: FailbackPolicy = Field(default_factory=FailbackPolicy, description="How traffic returns.")
    notifications: Notifications = Field(description="Where to tell humans.")
    drill: DrillPolicy = Field(default_factory=DrillPolicy, description="How DR drills run (optional).")
    audit: AuditPolicy = Field(
        default_factory=AuditPolicy, description="How long evidence is kept (optional)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> DRPlan:
        names: set[str] = set()
        for index, asset in enumerate(self.assets):
            if asset.name in names:
                raise rule_error(f"asset name {asset.name!r} is used more than once", "assets", index, "name")
            names.add(asset.name)
        if isinstance(self.traffic, SageMakerVariantsTraffic) and self.traffic.region not in (
            self.regions.primary,
            self.regions.secondary,
        ):
            raise rule_error(
                f"must be the plan's primary ({self.regions.primary}) or secondary "
                f"({self.regions.secondary}) region (got {self.traffic.region})",
                "traffic",
                "region",
            )
        for alarm, region in self.trigger.alarm_regions.items():
            if region not in (self.regions.primary, self.regions.secondary):
                raise rule_error(
                    f"must be the plan's primary ({self.regions.primary}) or secondary "
                    f"({self.regions.secondary}) region (got {region})",
                    "trigger",
                    "alarm_regions",
                    alarm,
                )
        for index, asset in enumerate(self.assets):
            sides: tuple[tuple[str, Role], ...] = (("source", "primary"), ("replica", "secondary"))
            for side, role in sides:
                location = getattr(asset, side, None)
                if location is not None and location.kms_key and location.kms_region != self.region_of(role):
                    raise rule_error(
                        f"must be a key in the {role} region {self.region_of(role)}, where the {side} bucket "
                        f"is (got {location.kms_region}): S3 only uses keys of its own region",
                        "assets",
                        index,
                        side,
                        "kms_key",
                    )
        if (
            isinstance(self.traffic, ArcRoutingControlTraffic)
            and self.traffic.failback_records is None
            and self.failback.steps != [100]
        ):
            raise rule_error(
                f"must be [100] with traffic kind arc-routing-control and no traffic.failback_records (got "
                f"{self.failback.steps}): routing controls move all traffic at once; name weighted records "
                "in traffic.failback_records to fail back in steps",
                "failback",
                "steps",
            )
        if self.drill.target == self.workload:
            raise rule_error(
                "must name another plan (a drill copy of the workload), not this one", "drill", "target"
            )
        if self.drill.scenario == "data-corruption" and (gap := self.data_corruption_gap()):
            raise rule_error(f"cannot be data-corruption: {gap}", "drill", "scenario")
        return self

    def data_corruption_gap(self) -> str | None:
        """Why the data-corruption drill cannot run on this plan (None when it can): it damages the dataset
        and the model artefacts, both S3 assets restored in place from their version history."""
        s3 = [a for a in self.assets if isinstance(a, S3Asset)]
        if not s3:
            return (
                "the plan has no S3 asset: the drill damages an S3 dataset and the model artefacts, then "
                "restores them from their object versions"
            )
        if not any(a.role == "model-artifacts" for a in s3):
            return (
                "no S3 asset has role model-artifacts: the drill overwrites the model artefact the endpoints "
                "serve (replicated to both regions) and restores it from its object versions"
            )
        return None

    @property
    def rpo(self) -> timedelta:
        """The effective recovery point objective (the plan's, else the tier's)."""
        return self.objectives.rpo if self.objectives.rpo is not None else TIER_OBJECTIVES[self.tier].rpo

    @property
    def rto(self) -> timedelta:
        """The effective recovery time objective (the plan's, else the tier's)."""
        return self.objectives.rto if self.objectives.rto is not None else TIER_OBJECTIVES[self.tier].rto

    def region_of(self, role: Role) -> str:
        """The region that plays `role`."""
        if role not in ROLES:
            raise ValueError(f"role must be primary or secondary (got {role!r})")
        return self.regions.primary if role == "primary" else self.regions.secondary

    def role_of(self, region: str) -> Role:
        """The role `region` plays in this plan; ValueError for a region the plan does not use."""
        if region == self.regions.primary:
            return "primary"
        if region == self.regions.secondary:
            return "secondary"
        raise ValueError(
            f"{region} is not a region of {self.workload} "
            f"(primary {self.regions.primary}, secondary {self.regions.secondary})"
        )

    def alarm_region(self, alarm: str) -> str:
        """The region a trigger alarm lives in (the primary unless `trigger.alarm_regions` says otherwise)."""
        return self.trigger.alarm_regions.get(alarm, self.regions.primary)

    def trigger_alarms_by_region(self) -> dict[str, list[str]]:
        """The trigger alarms grouped by the region they live in, primary first, in the plan's order."""
        grouped: dict[str, list[str]] = {self.regions.primary: []}
        for alarm in self.trigger.alarms:
            grouped.setdefault(self.alarm_region(alarm), []).append(alarm)
        return {region: names for region, names in grouped.items() if names}

    def endpoint_for(self, role: Role) -> HttpEndpoint | SageMakerEndpoint:
        """The inference endpoint that plays `role`."""
        if role not in ROLES:
            raise ValueError(f"role must be primary or secondary (got {role!r})")
        return self.endpoints.primary if role == "primary" else self.endpoints.secondary

    def asset(self, name: str) -> S3Asset | ModelRegistryAsset | DynamoDBAsset:
        """The asset called `name`; KeyError when the plan has none."""
        for asset in self.assets:
            if asset.name == name:
                return asset
        raise KeyError(f"{self.workload} has no asset named {name!r}")

    def asset_rpo(self, asset: S3Asset | ModelRegistryAsset | DynamoDBAsset | str) -> timedelta:
        """The RPO an asset is held to: its own override, else the plan's effective RPO."""
        found = self.asset(asset) if isinstance(asset, str) else asset
        return found.rpo if found.rpo is not None else self.rpo


def other_role(role: Role) -> Role:
    """The role on the other side of a failover."""
    return "secondary" if role == "primary" else "primary"
