"""Backup verification: shards of work, their results, and the report that proves (or refutes) each RPO."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["green", "at-risk", "breached", "incomplete"]
"""green: objective met, nothing found; at-risk: objective met but something is wrong (a copy missing, a
backup that can be deleted, content that cannot be verified); breached: measured RPO over the objective or a
hard failure (no versioning, corrupt model, PITR off...); incomplete: the run could not prove anything."""

VERDICT_ORDER: dict[str, int] = {"green": 0, "at-risk": 1, "incomplete": 2, "breached": 3}
Severity = Literal["breach", "warning", "info"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class InventorySource(_Model):
    """One S3 Inventory data file standing in for the source listing of a key range."""

    bucket: str = Field(description="Bucket holding the inventory files.")
    key: str = Field(description="Key of the (gzipped CSV) data file.")
    columns: list[str] = Field(description="Column names from the manifest's fileSchema.")
    snapshot_at: datetime = Field(description="When S3 took the inventory (manifest creationTimestamp).")


class Shard(_Model):
    """One unit of verification work: part of an S3 asset's keys, a bucket's settings, a registry, a table.

    The object shards of an asset partition its keys exactly: one shard lists the objects directly under
    the asset prefix (`top_level`), the others list whole "directories" (`prefixes`); with an inventory,
    each data file covers the key range [start, end).
    """

    index: int = Field(description="Position in the run (results are stored under it).")
    asset: str = Field(description="Asset name in the plan.")
    kind: str = Field(
        description="What to check: one of the shard kinds of the asset's kind (its checker's `checks` in "
        "chalicelib.adapters.assets, e.g. s3-objects, s3-config, model-registry, dynamodb)."
    )
    top_level: bool = Field(
        False,
        description="Listing shards: only the objects directly under the prefix (Delimiter '/'); inventory "
        "shards: the replica also has such objects, list them too.",
    )
    prefixes: list[str] = Field(
        default_factory=list, description="Relative sub-prefixes ('dir/') listed in full, in key order."
    )
    versions: bool = Field(False, description="List versions (both buckets versioned): version counts.")
    start: str | None = Field(None, description="Inventory shards: first relative key (inclusive).")
    end: str | None = Field(None, description="Inventory shards: relative key ending the range (exclusive).")
    inventory: InventorySource | None = Field(
        None, description="Read the source side from this inventory file (None with a range: no source rows)."
    )


class Finding(_Model):
    """Something a check found about an asset's configuration or content."""

    severity: Severity = Field(
        description="breach: objective not met; warning: at risk; info: for the record."
    )
    code: str = Field(description="Stable identifier, e.g. replica-not-locked, pitr-disabled.")
    message: str = Field(description="What is wrong and what to do, for a human.")


class ObjectSample(_Model):
    """One object-level difference, kept as an example in the report (the counts are exact)."""

    kind: str
    key: str
    why: str
    source_last_modified: datetime | None = None
    replica_last_modified: datetime | None = None
    source_size: int | None = None
    replica_size: int | None = None


class ShardResult(_Model):
    """What one shard found. Counts are exact; samples are capped."""

    shard: Shard
    status: Literal["complete", "incomplete"] = "complete"
    reason: str | None = Field(None, description="Why the shard could not finish.")
    mode: str = Field("listing", description="listing, versions, inventory, config, registry or table.")
    source_objects: int = 0
    replica_objects: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    stale: int = 0
    unverified: int = 0
    unjudged: int = Field(0, description="Replica objects changed after the inventory snapshot (not judged).")
    source_versions: int | None = None
    replica_versions: int | None = None
    version_gaps: int | None = Field(
        None, description="Keys whose replica holds fewer versions than the source."
    )
    oldest_unreplicated_at: datetime | None = Field(
        None, description="Last-modified time of the oldest change not safely in the replica."
    )
    oldest_unreplicated_key: str | None = None
    first_key: str | None = None
    last_key: str | None = None
    snapshot_at: datetime | None = None
    samples: list[ObjectSample] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def mismatches(self) -> int:
        return self.missing + self.different + self.stale


class AssetVerification(_Model):
    """The verdict on one asset: measured RPO exposure against its objective, and why."""

    asset: str
    kind: str
    role: str | None = None
    verdict: Verdict
    objective_seconds: float
    measured_rpo_seconds: float | None = Field(
        None, description="Age of the oldest change not safely in the replica; None when not measurable."
    )
    oldest_unreplicated_at: datetime | None = None
    oldest_unreplicated_key: str | None = None
    mode: str = "listing"
    objects_checked: int = 0
    source_objects: int = 0
    replica_objects: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    stale: int = 0
    unverified: int = 0
    unjudged: int = 0
    source_versions: int | None = None
    replica_versions: int | None = None
    version_gaps: int | None = None
    snapshot_at: datetime | None = None
    shards: int = 0
    incomplete_reasons: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    samples: list[ObjectSample] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def mismatches(self) -> int:
        return self.missing + self.different + self.stale


class VerificationReport(_Model):
    """One verification run of one workload: every asset, its verdict, and the evidence location."""

    workload: str
    run_id: str
    trigger: str = Field("operator", description="operator, schedule, or the execution that ran it.")
    execution: str | None = None
    started_at: datetime
    finished_at: datetime
    verdict: Verdict
    summary: str
    assets: list[AssetVerification]
    problems: list[str] = Field(
        default_factory=list, description="Run-level failures (e.g. planning failed)."
    )
    evidence: dict[str, str] = Field(
        default_factory=dict, description="s3:// URIs of report.json, report.md."
    )


# -- Step Functions task inputs
class PlanRunInput(_Model):
    workload: str
    execution: str = "-"
    run_id: str
    started: datetime | None = None
    input: dict[str, Any] = Field(default_factory=dict, description="The execution input (trigger, ...).")


class ShardInput(_Model):
    workload: str
    run_id: str
    shard: Shard


class FinalizeInput(_Model):
    workload: str
    execution: str = "-"
    run_id: str
    started: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict, description="The execution state (run, error).")


class ShardsLocation(_Model):
    """Where the shard list of a run is stored (read by the Distributed Map's ItemReader)."""

    bucket: str
    key: str
    count: int


class PlannedRun(_Model):
    workload: str
    run_id: str
    trigger: str
    started_at: datetime
    shards: ShardsLocation
