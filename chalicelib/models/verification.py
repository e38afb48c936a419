"""Backup verification: shards of work, their results, and the report that proves (or refutes) each RPO."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["green", "at-risk", "breached", "incomplete"]
"""green: objective met, nothing found; at-risk: objective met but something is wrong (a copy missing, a
backup that can be deleted, content that cannot be verified); breached: measured RPO over the objective or a
hard failure (no versioning, corrupt model, PITR off...); incomplete: the run could not prove anything."""

VERDICT_ORDER: dict[str, int] = {"green": 0, "at-risk": 1, "incomplete": 2, "breached": 3}
Severity = Literal["breach", "warning", "info"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- bucket settings ---------------------------------------------------------------------------------------
T = TypeVar("T")
SettingState = Literal["set", "absent", "unreadable"]


class Setting(BaseModel, Generic[T]):
    """One bucket setting as read: set (with its value), absent (S3 says there is none), or unreadable (the
    read failed: AccessDenied...). A check of an unreadable setting cannot pass and cannot fail."""

    model_config = ConfigDict(extra="ignore")

    state: SettingState
    value: T | None = Field(None, description="The setting, when set.")
    error: str | None = Field(None, description="Why it could not be read, when unreadable.")

    @property
    def readable(self) -> bool:
        return self.state != "unreadable"


class Encryption(_Model):
    algorithm: str = Field(description="SSEAlgorithm of the default rule: AES256, aws:kms, aws:kms:dsse.")
    kms_key: str | None = None


class ObjectLock(_Model):
    enabled: bool
    default_retention: dict[str, Any] | None = None


class BucketSettings(_Model):
    """What verification reads of a bucket's protection, each setting typed by whether it could be read."""

    bucket: str
    versioning: Setting[str] = Field(description="Enabled or Suspended; absent: never enabled.")
    encryption: Setting[Encryption]
    replication: Setting[list[dict[str, Any]]] = Field(description="The replication rules.")
    object_lock: Setting[ObjectLock]

    def errors(self) -> dict[str, str]:
        """Unreadable settings by name, with why."""
        out: dict[str, str] = {}
        for name in ("versioning", "encryption", "replication", "object_lock"):
            setting: Setting[Any] = getattr(self, name)
            if setting.state == "unreadable":
                out[name] = setting.error or "unreadable"
        return out


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
    read_budget_bytes: int = Field(
        0,
        ge=0,
        description="Object shards: bytes this shard may read (both sides) to hash pairs that nothing else "
        "proves equal; its share of the run's budget.",
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
    proof: str | None = Field(None, description="How the difference was established (see PROOFS).")


PROOFS: dict[str, str] = {
    "size": "sizes differ",
    "checksum": "stored full-object checksum (SHA-256, SHA-1, CRC64NVME, CRC32C or CRC32) on both sides",
    "composite-checksum": "stored composite (multipart) checksum, same part layout on both sides",
    "etag-md5": "ETag = MD5 of the bytes on both sides (single-part, unencrypted or SSE-S3)",
    "etag-equal": "identical ETags and sizes (encryption not known from the listing)",
    "multipart-etag": "identical multipart ETags (same part MD5s, same layout)",
    "read-sha256": "both objects read and hashed (SHA-256)",
    "none": "nothing proves the content: same size only (unverified)",
    "inventory-unjudged": "replica changed after the inventory snapshot (not judged)",
}
"""How each compared pair was judged, strongest evidence first; the report counts pairs per proof."""

NOT_COMPARED: dict[str, list[str]] = {
    "s3": [
        "user metadata and content headers",
        "object tags",
        "per-object encryption (SSE type and KMS key)",
        "Object Lock retention and legal hold",
        "storage class",
        "ACLs and ownership",
        "non-current versions' content (only their count, with versioning)",
    ],
}
"""What verification does not compare, per asset kind: said in every report."""


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
    exposure_seconds: float | None = Field(
        None,
        description="Largest exposure of a change not safely in the replica, each measured when the "
        "listing page showing it was read (not when the run ended).",
    )
    proofs: dict[str, int] = Field(default_factory=dict, description="Compared pairs per proof method.")
    read_bytes: int = Field(0, description="Bytes read to hash pairs (both sides).")
    unread_over_budget: int = Field(0, description="Pairs left unverified: the read budget was spent.")
    version_gap_keys: list[str] = Field(
        default_factory=list, description="Keys with a version gap (capped like samples; the count is exact)."
    )
    differences_key: str | None = Field(
        None, description="Evidence key of this shard's complete difference list (JSON Lines), if any."
    )
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
    proofs: dict[str, int] = Field(default_factory=dict, description="Compared pairs per proof method.")
    not_compared: list[str] = Field(
        default_factory=list, description="What this kind of verification does not compare."
    )
    read_bytes: int = 0
    unread_over_budget: int = 0
    version_gap_keys: list[str] = Field(default_factory=list, description="Examples; the count is exact.")
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
        default_factory=dict,
        description="s3:// URIs of report.json, report.md and differences.jsonl (every difference).",
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
