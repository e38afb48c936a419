"""Model rollback: the request (CLI, API, state machine input), the registry versions and the deployed model
it is decided from, the checked scope, and the report. No I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["primary", "secondary"]
Verdict = Literal["planned", "rolled-back", "failed", "refused"]


class RegistryVersion(BaseModel):
    """One version of a model in a registry: an S3 manifest's entry or a SageMaker model package."""

    model_config = ConfigDict(frozen=True)

    version: str = Field(description="The model version (manifest `version`, package `model_version`).")
    approved: bool = Field(description="Deployable (S3 manifest) or Approved (SageMaker).")
    status: str = Field(description="deployable / not deployable, or the package's ModelApprovalStatus.")
    order: int = Field(description="Registration order in its registry (older first).")
    artifact: str | None = Field(None, description="s3://bucket/key of the model data.")
    sha256: str | None = Field(None, description="The artifact's registered SHA-256 (lower-case hex).")
    package: str | None = Field(None, description="SageMaker: the model package ARN.")
    model: str | None = Field(None, description="S3 manifest: the manifest (model) it belongs to.")


class Deployed(BaseModel):
    """What an endpoint serves now, read from the endpoint itself."""

    model_config = ConfigDict(frozen=True)

    version: str | None = None
    sha256: str | None = None
    artifact: str | None = Field(None, description="s3://bucket/key the endpoint loaded, when it says.")
    package: str | None = Field(None, description="SageMaker: the model package its model was created from.")
    endpoint_config: str | None = Field(None, description="SageMaker: the endpoint's current config.")
    model_name: str | None = Field(None, description="SageMaker: the model the rolled-back variant serves.")
    error: str | None = Field(None, description="Why the endpoint could not say what it serves.")


class RollbackRequest(BaseModel):
    """Which endpoint to roll back, and to what (the API body adds the workload from the path)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workload: str
    role: Role = Field("primary", description="The endpoint: the primary's or the secondary's.")
    to_version: str | None = Field(
        None,
        max_length=128,
        description="Deploy this approved version (default: the one before the deployed one).",
    )
    latest: bool = Field(
        False,
        description="Deploy the newest approved version (restore primary before a failback: redeploy "
        "the approved version).",
    )
    dry_run: bool = Field(False, description="Show what would change; change nothing.")
    reason: str | None = Field(None, max_length=1000, description="Why (recorded in the ledger).")
    requested_by: str = Field("lifeboat", description="Who asked (an IAM identity).")


class RollbackBody(BaseModel):
    """POST /workloads/{workload}/rollback."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    region: str = Field(
        "primary",
        min_length=1,
        max_length=32,
        description="primary, secondary, or one of the plan's two region names.",
    )
    to_version: str | None = Field(None, min_length=1, max_length=128, description="An approved version.")
    latest: bool = Field(False, description="The newest approved version (restore primary).")
    dry_run: bool = Field(False, description="Show what would change; change nothing.")
    reason: str | None = Field(None, min_length=1, max_length=1000, description="Why (ledger).")


class RollbackScope(BaseModel):
    """A checked rollback: the endpoint, what it serves, the version it gets, and how."""

    model_config = ConfigDict(frozen=True)

    workload: str
    run_id: str
    role: Role
    region: str
    endpoint: str = Field(description="The endpoint: its URL or SageMaker name (and variant).")
    registry: str = Field(description="s3-manifest or sagemaker, and where (for reports).")
    current: Deployed
    current_version: str | None = Field(None, description="The registry version the endpoint serves.")
    target: RegistryVersion
    config_before: str | None = Field(None, description="SageMaker: the endpoint config now.")
    config_after: str | None = Field(None, description="SageMaker: the endpoint config the rollback creates.")
    model_after: str | None = Field(None, description="SageMaker: the model the rollback creates.")
    dry_run: bool
    requested_by: str = "lifeboat"
    reason: str | None = None
    started_at: datetime


class RollbackProgress(BaseModel):
    """Where a rollback is: carried between the state machine's tasks."""

    phase: Literal["deploy", "smoke", "revert", "done"] = "deploy"
    settled: bool = False
    wait_seconds: int = Field(0, description="How long to wait before looking at the endpoint again.")
    polls: int = 0
    deployed: bool = False
    smoke_passed: bool | None = None
    smoke_reason: str | None = None
    reverted: bool = False
    error: str | None = None


class RollbackReport(BaseModel):
    """What a rollback did (or, dry run, would do)."""

    workload: str
    run_id: str
    verdict: Verdict
    role: Role
    region: str
    endpoint: str
    registry: str
    dry_run: bool
    from_version: str | None
    to_version: str | None
    from_sha256: str | None = None
    to_sha256: str | None = None
    to_artifact: str | None = None
    to_package: str | None = None
    config_before: str | None = None
    config_after: str | None = None
    smoke_passed: bool | None = None
    smoke_reason: str | None = None
    reverted: bool = Field(False, description="The smoke tests failed and the previous model was restored.")
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    requested_by: str
    reason: str | None = None
    error: str | None = None
    evidence: str | None = None


class RollbackTaskInput(BaseModel):
    """The state machine's task input: the request, then the scope and the progress."""

    model_config = ConfigDict(extra="ignore")

    request: RollbackRequest | None = None
    scope: RollbackScope | None = None
    progress: RollbackProgress = Field(default_factory=RollbackProgress)
    error: dict[str, Any] | None = None
    execution: str | None = Field(
        None, description="The execution's ARN: it holds the workload lock, renewed by each step."
    )
