"""Resilience assessment: the facts read about a workload's live resources, and the report judged from them.

The facts are what the adapter (`adapters/assessment.py`) could read, each with the plan path it comes from;
anything it could not read is recorded as `Unreadable` (the domain turns it into a finding, never a pass).
The report (`domain/assessment.py`) holds the findings, each with a stable id, and the estimated RTO/RPO.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
"""Most severe first. error: the workload cannot meet an objective or survive a regional event as it is;
warning: a single point of failure or a weakness that makes one likely; info: context worth knowing."""


def severity_rank(severity: str) -> int:
    """0 for error, 1 for warning, 2 for info (lower is more severe)."""
    return SEVERITIES.index(severity)  # type: ignore[arg-type]


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Unreadable(_Facts):
    """A resource (or one of its settings) the assessment could not read: the reason, never a guess."""

    subject: str = Field(description="What could not be read, e.g. 'bucket fraud-data-use1 encryption'.")
    plan_path: str = Field(description="The plan key it comes from, e.g. assets[0].source.")
    error: str = Field(description="The error code and message.")


class BucketFacts(_Facts):
    """One S3 location of an asset, as S3 reports it. None: not read (see `unreadable`)."""

    bucket: str
    prefix: str = ""
    side: Literal["source", "replica"]
    expected_region: str = Field(description="The region the plan puts the bucket in.")
    plan_path: str
    exists: bool | None = None
    region: str | None = Field(None, description="The bucket's live location.")
    versioning: str | None = Field(None, description="Enabled, Suspended or Off (never enabled).")
    encryption: str | None = Field(
        None, description="Default encryption algorithm (AES256, aws:kms...), or none."
    )
    secure_transport_required: bool | None = Field(
        None, description="The bucket policy denies requests without TLS (aws:SecureTransport false)."
    )
    replication_rules: list[dict[str, Any]] | None = Field(
        None, description="Replication rules (read on the source side only)."
    )
    replica_locations: dict[str, str] = Field(
        default_factory=dict,
        description="Destination bucket of each enabled replication rule -> its live region (source only).",
    )


class S3AssetFacts(_Facts):
    """An asset S3 replicates (an s3 asset, or a registry's manifests)."""

    asset: str
    kind: str
    plan_path: str
    rpo_seconds: float = Field(description="The RPO the asset is held to.")
    source: BucketFacts
    replica: BucketFacts


class TableFacts(_Facts):
    table: str
    region: str
    side: Literal["source", "replica"]
    plan_path: str
    exists: bool | None = None
    pitr: str | None = Field(None, description="ENABLED, DISABLED, or None when not read.")
    replica_regions: list[str] = Field(
        default_factory=list, description="Regions of the global table's replicas (DescribeTable Replicas)."
    )


class TableAssetFacts(_Facts):
    asset: str
    plan_path: str
    source: TableFacts
    replica: TableFacts


class RegistryFacts(_Facts):
    """Where a model registry exists: the approved-version manifests, or the SageMaker model package group."""

    asset: str
    plan_path: str
    registry: str
    present: dict[str, bool | None] = Field(
        description="Region -> True (found), False (absent), None (not read)."
    )


class VariantFacts(_Facts):
    """A production variant of a SageMaker endpoint the plan names (an endpoint, or the traffic switch)."""

    endpoint: str
    region: str
    variant: str
    plan_path: str
    exists: bool = Field(
        True, description="False: the endpoint, or the variant the plan names, is not there."
    )
    instance_count: int | None = Field(None, description="Instances behind it (current, else configured).")
    instance_type: str | None = None
    serverless: bool = Field(False, description="Serverless variants are spread over AZs by SageMaker.")


class AlarmFacts(_Facts):
    name: str
    region: str
    plan_path: str
    exists: bool | None = None
    period_seconds: int | None = None
    datapoints_to_alarm: int | None = Field(None, description="M of the M-out-of-N evaluation.")


class DnsFacts(_Facts):
    record_name: str
    plan_path: str
    plan_ttl_seconds: int
    live_ttl_seconds: dict[str, int] = Field(
        default_factory=dict, description="Set identifier -> TTL of the live record."
    )


class DeploymentFacts(_Facts):
    """Lifeboat's own copy in a region: the state machines it runs for this workload there."""

    region: str
    plan_path: str
    expected: list[str] = Field(description="State machine names that must exist there.")
    found: list[str] | None = Field(None, description="Those found; None when not read.")


class DrillRun(_Facts):
    at: datetime
    verdict: str
    rto_seconds: float | None = None


class AssetMeasurement(_Facts):
    """An asset's measured RPO exposure, from replication events or the last verification."""

    asset: str
    seconds: float
    at: datetime | None = None
    source: str = Field(description="replication-events or verification.")


class HistoryFacts(_Facts):
    drills: list[DrillRun] = Field(default_factory=list, description="The last drills, newest first.")
    last_failover_rto_seconds: float | None = None
    measurements: list[AssetMeasurement] = Field(default_factory=list)
    last_verification_at: datetime | None = None
    last_verification_verdict: str | None = None


class AssessmentFacts(_Facts):
    """Everything read about one workload's live resources and history."""

    workload: str
    read_at: datetime
    s3_assets: list[S3AssetFacts] = Field(default_factory=list)
    tables: list[TableAssetFacts] = Field(default_factory=list)
    registries: list[RegistryFacts] = Field(default_factory=list)
    variants: list[VariantFacts] = Field(default_factory=list)
    alarms: list[AlarmFacts] = Field(default_factory=list)
    dns: DnsFacts | None = None
    deployment: DeploymentFacts | None = None
    history: HistoryFacts = Field(default_factory=HistoryFacts)
    unreadable: list[Unreadable] = Field(default_factory=list)


# -- the report ---------------------------------------------------------------------------------------------
class AssessmentFinding(BaseModel):
    id: str = Field(
        description="Stable id: the rule and its subject, e.g. bucket-unversioned:fraud-data-usw2. The same "
        "weakness has the same id from run to run (suppress, track, diff)."
    )
    rule: str = Field(description="The rule that found it, e.g. bucket-unversioned.")
    severity: Severity
    title: str
    plan_path: str = Field(description="The plan key it concerns, e.g. assets[0].replica.")
    evidence: str = Field(description="What was read that shows it.")
    fix: str = Field(description="What to change.")


class Component(BaseModel):
    name: str
    seconds: float
    basis: str = Field(description="Where the figure comes from.")


class RtoEstimate(BaseModel):
    objective_seconds: float
    estimated_seconds: float
    margin_seconds: float = Field(description="objective - estimate; negative: the estimate breaches it.")
    components: list[Component]


class RpoEstimate(BaseModel):
    asset: str
    objective_seconds: float
    estimated_seconds: float | None = Field(None, description="None when never measured.")
    margin_seconds: float | None = None
    basis: str


class AssessmentReport(BaseModel):
    workload: str
    assessed_at: datetime
    trigger: str = Field("on-demand", description="on-demand (CLI, API) or schedule.")
    counts: dict[str, int] = Field(description="Findings per severity.")
    findings: list[AssessmentFinding] = Field(description="Most severe first.")
    rto: RtoEstimate
    rpo: list[RpoEstimate]
    last_drill_at: datetime | None = None
    evidence: dict[str, str] = Field(default_factory=dict, description="json and markdown URIs.")

    def summary(self) -> str:
        """One line: what `lifeboat status` shows."""
        parts = [f"{self.counts.get(s, 0)} {s}" for s in SEVERITIES]
        rto = f"RTO est. {self.rto.estimated_seconds:.0f}s of {self.rto.objective_seconds:.0f}s"
        return f"{', '.join(parts)}; {rto} (assessed {self.assessed_at:%Y-%m-%d %H:%M} UTC)"

    def at_or_above(self, severity: Severity) -> int:
        """How many findings are at least as severe as `severity`."""
        return sum(1 for f in self.findings if severity_rank(f.severity) <= severity_rank(severity))


class AssessBody(BaseModel):
    """POST /workloads/{workload}/assess (the body is optional)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    store: bool = Field(True, description="Write the report to the evidence bucket (and status).")
