"""Point-in-time restore: the request (CLI, API, state machine input), where it reads and writes, and its
report. No I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

RESTORE_PREFIX = "lifeboat-restore/"
"""Default target: `<this prefix><asset>/<TIME>/` in the bucket restored from (a new prefix, never the
asset's own keys). The deployed roles may write there and, for in-place restores, to the asset's prefix."""

Side = Literal["primary", "secondary"]
Verdict = Literal["planned", "restored", "failed"]
TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")


def parse_s3_uri(value: str) -> tuple[str, str]:
    """`s3://bucket/prefix/` -> (bucket, prefix); the prefix ends with "/" unless empty."""
    found = _S3_URI.match(value.strip())
    if not found:
        raise ValueError(f"{value!r} is not an s3://bucket/prefix/ URI")
    prefix = found["prefix"] or ""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return found["bucket"], prefix


def stamp(when: datetime) -> str:
    """`20260102T030405Z`: TIME as it appears in default target prefixes and run ids."""
    return f"{when.astimezone(UTC):%Y%m%dT%H%M%SZ}"


class RestoreRequest(BaseModel):
    """What to restore, to when, and where (the API body adds the workload from the path)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workload: str = Field(description="Workload whose plan names the asset.")
    asset: str = Field(min_length=1, max_length=64, description="An S3 asset of the plan.")
    to: AwareDatetime = Field(description="Restore each key as it was at this time (ISO 8601 with offset).")
    side: Side = Field(
        "primary",
        description="Which copy to restore from and (in place) to: the primary's source bucket, or the "
        "secondary's replica (when the primary region is down).",
    )
    target: str | None = Field(
        None,
        description="s3://bucket/prefix/ to restore into; must hold nothing under the prefix. Default: "
        f"{RESTORE_PREFIX}<asset>/<TIME>/ in the bucket restored from.",
    )
    in_place: bool = Field(
        False,
        description="Restore over the asset itself: keys created after TIME are deleted (delete markers). "
        "Needs `confirm` equal to the workload's name.",
    )
    confirm: str | None = Field(None, max_length=64, description="The workload's name, with in_place.")
    dry_run: bool = Field(False, description="List what would change; change nothing.")
    reason: str | None = Field(None, max_length=1000, description="Why (recorded in the ledger).")
    requested_by: str = Field("lifeboat", description="Who asked (an IAM identity, or the scheduler).")

    @field_validator("target")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("s3://") or not TABLE_NAME.match(value)):
            parse_s3_uri(value)  # an S3 asset's target; a table asset's is a table name
        return value


class RestoreBody(BaseModel):
    """POST /workloads/{workload}/restores."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    asset: str = Field(min_length=1, max_length=64, description="An S3 asset of the plan.")
    to: str = Field(
        min_length=10, max_length=40, description="Restore to this time: ISO 8601 with an offset or Z."
    )
    side: Side = Field("primary", description="primary: the source bucket; secondary: the replica.")
    target: str | None = Field(
        None,
        max_length=1100,
        description=f"s3://bucket/prefix/ (empty). Default: {RESTORE_PREFIX}<asset>/<TIME>/ in the same "
        "bucket; the deployed role may write only there or, in place, to the asset itself.",
    )
    in_place: bool = Field(False, description="Restore over the asset itself (needs confirm).")
    confirm: str | None = Field(None, max_length=64, description="The workload's name, with in_place.")
    dry_run: bool = Field(False, description="Only count and list what would change.")
    reason: str | None = Field(None, min_length=1, max_length=1000, description="Why (ledger).")

    @field_validator("to")
    @classmethod
    def _time(cls, value: str) -> str:
        from chalicelib.clock import parse_timestamp

        if not re.search(r"(Z|[+-]\d\d:?\d\d)$", value.strip()):
            raise ValueError("give the time zone: end with Z or an offset such as +00:00")
        parse_timestamp(value)
        return value

    @field_validator("target")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is not None:
            parse_s3_uri(value)
        return value

    def request(self, workload: str, actor: str) -> RestoreRequest:
        from chalicelib.clock import parse_timestamp

        return RestoreRequest(
            workload=workload,
            asset=self.asset,
            to=parse_timestamp(self.to),
            side=self.side,
            target=self.target,
            in_place=self.in_place,
            confirm=self.confirm,
            dry_run=self.dry_run,
            reason=self.reason,
            requested_by=actor,
        )


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)

    region: str
    bucket: str
    prefix: str

    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class RestoreScope(BaseModel):
    """A checked request: where the versions are read, where the restored keys go, and how."""

    model_config = ConfigDict(frozen=True)

    workload: str
    asset: str
    run_id: str = Field(description="Names the run: its evidence report and its execution.")
    to: datetime
    source: Location
    target: Location
    in_place: bool
    dry_run: bool
    requested_by: str = "lifeboat"
    reason: str | None = None
    started_at: datetime


class Progress(BaseModel):
    """A restore's running totals, carried between the state machine's batches (kept small)."""

    done: bool = False
    cursor: str | None = Field(None, description="The last key fully handled (absolute); None: from start.")
    batches: int = 0
    keys: int = 0
    changes: dict[str, int] = Field(default_factory=dict)
    copies: int = 0
    deletes: int = 0
    bytes_copied: int = 0
    verified: dict[str, int] = Field(default_factory=dict, description="Restored objects per check used.")
    failed: int = 0
    failures: list[dict[str, str]] = Field(default_factory=list, description="The first failures.")
    listed: list[dict[str, Any]] = Field(default_factory=list, description="The first changes.")
    listed_truncated: int = 0


class RestoreReport(BaseModel):
    """What a restore did (or, dry run, would do): counts, the changes, every copy's check, timing."""

    workload: str
    asset: str
    run_id: str
    verdict: Verdict
    to: datetime
    in_place: bool
    dry_run: bool
    source: Location
    target: Location
    keys: int = Field(description="Keys seen in the version listing.")
    changes: dict[str, int] = Field(description="Keys per change since TIME (unchanged, reverted, ...).")
    copies: int = Field(description="Objects copied (dry run: that would be).")
    deletes: int = Field(description="Keys deleted in place (delete markers; dry run: that would be).")
    bytes_copied: int
    verified: dict[str, int] = Field(description="Copies whose content was checked, per check.")
    failed: int
    failures: list[dict[str, str]] = Field(default_factory=list)
    listed: list[dict[str, Any]] = Field(default_factory=list, description="Changes, in key order.")
    listed_truncated: int = Field(0, description="Changes left out of `listed`.")
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    requested_by: str
    reason: str | None = None
    error: str | None = None
    evidence: str | None = None


class RestoreTaskInput(BaseModel):
    """The state machine's task input: the request, then the checked scope and the totals so far."""

    model_config = ConfigDict(extra="ignore")

    request: RestoreRequest | None = None
    scope: RestoreScope | None = None
    progress: Progress = Field(default_factory=Progress)
    error: dict[str, Any] | None = None


class TableSample(BaseModel):
    """One restored item compared with the source table as it is now."""

    key: dict[str, Any]
    now: Literal["same", "changed-since", "deleted-since"]


class TableRestoreReport(BaseModel):
    """A DynamoDB point-in-time restore into a new table: waited for, validated, measured."""

    workload: str
    asset: str
    run_id: str
    verdict: Verdict
    to: datetime
    region: str
    source_table: str
    target_table: str
    dry_run: bool
    items: int | None = Field(None, description="Items in the restored table (a full Scan count).")
    source_items_now: int | None = Field(None, description="Items in the source table now, for comparison.")
    key_schema_matches: bool | None = None
    sample: list[TableSample] = Field(
        default_factory=list, description="Restored items against the source now."
    )
    wait_seconds: float | None = Field(None, description="How long the restored table took to become ACTIVE.")
    problems: list[str] = Field(default_factory=list)
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    requested_by: str
    reason: str | None = None
    evidence: str | None = None


class TableSwapReport(BaseModel):
    """The explicit second step: the restored items written over the source table, later items removed."""

    workload: str
    asset: str
    region: str
    source_table: str
    restored_table: str
    written: int
    deleted: int
    requested_by: str


class RestoreTestReport(BaseModel):
    """A scheduled restore test of one S3 asset: a sample restored to scratch, verified, timed, extrapolated
    to the whole asset against the plan's RTO, the scratch deleted."""

    workload: str
    asset: str
    run_id: str
    verdict: Literal["passed", "breached", "failed", "empty"]
    tested_at: datetime
    scratch: Location
    sample_objects: int = Field(description="Objects restored and verified in the sample.")
    sample_bytes: int
    copy_seconds: float = Field(description="Wall time of the sample's copies and checks.")
    objects: int = Field(description="Objects of the asset (at least: see listing_complete).")
    bytes: int
    listing_seconds: float = Field(description="Wall time of listing the asset's versions.")
    listing_complete: bool = Field(
        description="False: the listing was cut at its time budget (a lower bound)."
    )
    projected_seconds: float = Field(description="Projected time to restore the whole asset.")
    rto_seconds: float
    failed: int
    failures: list[dict[str, str]] = Field(default_factory=list)
    scratch_deleted: int = Field(description="Versions removed from the scratch prefix afterwards.")
    evidence: str | None = None
