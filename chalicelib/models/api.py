"""The console API's boundary: request bodies and query strings, execution ids in URLs, error bodies.

Bodies are strict (`extra="forbid"`, no type coercion) because an operator's typo in a failover request
("ungracefull", "dry-run": "yes") must be refused with the field named, never guessed at.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from chalicelib.models.failover import Mode
from chalicelib.models.ledger import EntryKind
from chalicelib.models.plan import WORKLOAD_PATTERN, rule_error

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]

MAX_BODY_BYTES = 16 * 1024
"""Every request body Lifeboat accepts is a handful of fields; anything bigger is refused with 413."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FailoverBody(_Body):
    """POST /workloads/{workload}/failover."""

    mode: Mode | None = Field(
        None,
        description="graceful waits (bounded) for replication; ungraceful does not. "
        "Default: the plan's failover.mode.",
    )
    dry_run: bool = Field(
        False, description="true: return the exact steps and traffic change, change nothing."
    )
    reason: Reason | None = Field(
        None, description="Why (recorded in the ledger with your IAM identity). Required unless dry_run."
    )
    force: bool = Field(
        False,
        description="true: run even when the workload already serves from its secondary (the ledger and "
        "the live traffic agree); otherwise that answers 200 with nothing done.",
    )

    @model_validator(mode="after")
    def _reason_for_real_runs(self) -> FailoverBody:
        if not self.dry_run and self.reason is None:
            raise rule_error("required for a real failover (only a dry run may leave it out)", "reason")
        return self


class FailbackBody(_Body):
    """POST /workloads/{workload}/failback."""

    reason: Reason = Field(description="Why (recorded in the ledger with your IAM identity).")


class UnlockBody(_Body):
    """POST /workloads/{workload}/unlock."""

    reason: Reason = Field(
        description="Why the lock must go, e.g. the holder was stopped by hand (recorded in the ledger with "
        "your IAM identity)."
    )


class ExecutionActionBody(_Body):
    """POST /executions/{id}/approve|reject|pause|resume|abort|fast-track."""

    reason: Reason | None = Field(None, description="Why (recorded in the ledger with your IAM identity).")


class VerifyBody(_Body):
    """POST /workloads/{workload}/verify."""

    reason: Reason | None = Field(None, description="Why (recorded in the ledger with your IAM identity).")


class ValidateBody(_Body):
    """POST /plans/{workload}/validate (the body is optional)."""

    probe_endpoints: bool = Field(
        True, description="Send the plan's smoke cases to both endpoints (read-only predictions)."
    )
    simulate_iam: bool = Field(
        True, description="Ask IAM (SimulatePrincipalPolicy) whether Lifeboat's role has what the plan needs."
    )


class _Query(BaseModel):
    # Query strings are text: "true" and "20" must convert, so these are not strict; unknown keys still fail.
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusQuery(_Query):
    probe: bool = Field(False, description="Also smoke-test both endpoints now (default: last results only).")


class ExecutionsQuery(_Query):
    workload: Annotated[str, StringConstraints(pattern=WORKLOAD_PATTERN)] | None = Field(
        None, description="Only this workload's executions."
    )
    status: ExecutionStatus | None = Field(None, description="Only executions in this status.")
    limit: int = Field(20, ge=1, le=100, description="Most recent first, at most this many.")


class LedgerQuery(_Query):
    limit: int = Field(50, ge=1, le=500, description="Newest first, at most this many entries.")
    kind: EntryKind | None = Field(None, description="Only entries of this kind.")


# -- errors -------------------------------------------------------------------------------------------
class Problem(BaseModel):
    field: str = Field(
        description="The field at fault: a body field (mode), query parameter or path parameter."
    )
    location: Literal["body", "query", "path", "plan"] = Field(description="Where that field is.")
    problem: str = Field(description="What is wrong with it.")


class ErrorBody(BaseModel):
    """Every 4xx/5xx the API itself produces has this shape."""

    code: str = Field(description="Machine-readable: BadRequest, NotFound, Conflict, Forbidden, ...")
    message: str = Field(description="Human-readable summary.")
    problems: list[Problem] = Field(default_factory=list, description="One entry per bad field.")
    execution: dict[str, str] | None = Field(
        None, description="409 only: the running execution in the way (id, arn, name)."
    )


# -- execution ids ------------------------------------------------------------------------------------
EXECUTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:(?P<machine>[A-Za-z0-9_.-]{1,80}):"
    r"(?P<name>[A-Za-z0-9_.-]{1,80})$"
)
EXECUTION_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
MAX_EXECUTION_ID = 400


class ExecutionRef(BaseModel):
    """An execution as named in a URL: by ARN (exact) or by name (looked up among Lifeboat's machines)."""

    model_config = ConfigDict(frozen=True)

    arn: str | None = None
    name: str


def execution_id(arn: str) -> str:
    """The URL-safe id of an execution: its ARN in unpadded base64url (no ':' to escape anywhere)."""
    return base64.urlsafe_b64encode(arn.encode()).decode().rstrip("=")


def parse_execution_id(raw: str) -> ExecutionRef:
    """Read an execution id from a URL: base64url ARN, a plain ARN, or an execution name.

    ValueError (with a message for the caller) when it is none of those.
    """
    if not isinstance(raw, str) or not raw or len(raw) > MAX_EXECUTION_ID:
        raise ValueError(f"expected an execution name or id of 1-{MAX_EXECUTION_ID} characters")
    text = raw.strip()
    if ":" in text:  # a plain ARN (the gateway has already decoded %3A)
        match = EXECUTION_ARN.match(text)
        if not match:
            raise ValueError("not a Step Functions execution ARN")
        return ExecutionRef(arn=text, name=match["name"])
    decoded = _b64_arn(text)
    if decoded is not None:
        return decoded
    if EXECUTION_NAME.match(text):
        return ExecutionRef(name=text)
    raise ValueError(
        "expected an execution name (letters, digits, '-', '_', '.') or the id returned by the API"
    )


def _b64_arn(text: str) -> ExecutionRef | None:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        return None
    try:
        value = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    match = EXECUTION_ARN.match(value)
    return ExecutionRef(arn=value, name=match["name"]) if match else None


def execution_links(arn: str) -> dict[str, Any]:
    """How an execution is referred to in responses: id (for URLs), ARN and name."""
    match = EXECUTION_ARN.match(arn)
    return {"id": execution_id(arn), "arn": arn, "name": match["name"] if match else arn.rsplit(":", 1)[-1]}
