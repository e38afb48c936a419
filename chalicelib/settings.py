"""The one place that reads the process environment, as a validated pydantic model.

Every other module asks `get_settings()`; nothing else touches `os.environ`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SettingsError(RuntimeError):
    """Raised when the environment does not hold a valid configuration."""


class Settings(BaseModel):
    """Lifeboat's runtime configuration, read from environment variables (aliases)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    stage: str = Field("dev", alias="LIFEBOAT_STAGE", description="Deployment stage (dev, prod).")
    region: str = Field(alias="AWS_REGION", description="Region this copy of Lifeboat runs in.")
    endpoint_url: str | None = Field(
        None,
        alias="AWS_ENDPOINT_URL",
        description="Endpoint override for every AWS client (the local cloud); unset in AWS.",
    )
    ledger_table: str = Field(alias="LIFEBOAT_LEDGER_TABLE", description="DynamoDB ledger table.")
    lock_table: str = Field(alias="LIFEBOAT_LOCK_TABLE", description="DynamoDB lease-lock table.")
    idempotency_table: str = Field(
        alias="LIFEBOAT_IDEMPOTENCY_TABLE", description="DynamoDB table for powertools idempotency."
    )
    plan_bucket: str = Field(alias="LIFEBOAT_PLAN_BUCKET", description="S3 bucket holding DR plans.")
    plan_prefix: str = Field("plans/", alias="LIFEBOAT_PLAN_PREFIX", description="Key prefix of plans.")
    evidence_bucket: str = Field(
        alias="LIFEBOAT_EVIDENCE_BUCKET", description="S3 bucket for reports and evidence."
    )
    state_machine_prefix: str = Field(
        "lifeboat",
        alias="LIFEBOAT_STATE_MACHINE_PREFIX",
        description="Name prefix of the generated state machines (<prefix>-<workload>-<kind>).",
    )
    verify_read_budget_bytes: int = Field(
        1024**3,
        ge=0,
        alias="LIFEBOAT_VERIFY_READ_BUDGET_BYTES",
        description="Bytes one verification run may read (both sides) to hash object pairs that no checksum "
        "or ETag can prove equal (e.g. multipart objects without checksums); shared among its object shards.",
    )
    aws_max_attempts: int = Field(
        5, ge=1, le=10, alias="LIFEBOAT_AWS_MAX_ATTEMPTS", description="Bounded botocore retries."
    )
    outbound_allow_loopback: bool = Field(
        False,
        alias="LIFEBOAT_OUTBOUND_ALLOW_LOOPBACK",
        description="Plans' URLs may reach loopback addresses (local cloud model servers), never in AWS.",
    )
    outbound_allowed_hosts: str = Field(
        "",
        alias="LIFEBOAT_OUTBOUND_ALLOWED_HOSTS",
        description="Comma-separated host names (or *.example.com) plans' URLs may reach; empty: any public "
        "host. A listed host may resolve to a private address (an internal load balancer in a VPC).",
    )

    def outbound_hosts(self) -> tuple[str, ...]:
        """The outbound allow-list, one host pattern per entry (empty: no list)."""
        return tuple(h.strip() for h in self.outbound_allowed_hosts.split(",") if h.strip())


_lock = threading.Lock()
_cached: Settings | None = None
_by_overlay: dict[tuple[tuple[str, str], ...], Settings] = {}
_overlay: ContextVar[tuple[tuple[str, str], ...] | None] = ContextVar("lifeboat_environment", default=None)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Validate a mapping of environment variables; the error names every missing variable."""
    try:
        return Settings.model_validate(dict(environ))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            if err["type"] == "missing":
                problems.append(f"environment variable {name} is not set")
            else:
                problems.append(f"environment variable {name}: {err['msg']}")
        raise SettingsError("invalid Lifeboat configuration: " + "; ".join(problems)) from None


def get_settings() -> Settings:
    """The settings of this process, read on first use (never at import)."""
    global _cached
    overlay = _overlay.get()
    with _lock:
        if overlay is not None:
            found = _by_overlay.get(overlay)
            if found is None:
                found = _by_overlay[overlay] = load_settings({**os.environ, **dict(overlay)})
            return found
        if _cached is None:
            _cached = load_settings(os.environ)
        return _cached


def overridden() -> bool:
    """True inside `environment(...)`: the settings are not the process's own."""
    return _overlay.get() is not None


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[Settings]:
    """Read settings from `values` over the process environment, in this context only.

    In Lambda each function is a process with its own environment. The local cloud runs the functions of
    Lifeboat's copies in two regions in one process, at the same time, so a function of the secondary
    copy sees its environment here instead of in `os.environ` (localcloud/lambda_runner.py). A thread
    started inside the context does not inherit it unless started with `contextvars.copy_context().run`.
    """
    token = _overlay.set(tuple(sorted((str(k), str(v)) for k, v in values.items())))
    try:
        yield get_settings()
    finally:
        _overlay.reset(token)


def reset_settings() -> None:
    """Forget the cached settings (the local cloud and tests change the environment)."""
    global _cached
    with _lock:
        _cached = None
        _by_overlay.clear()


REPLICATION_QUEUE_TEMPLATE = "lifeboat-{stage}-replication-events"


def replication_queue_name(environ: Mapping[str, str] | None = None) -> str:
    """The stage's S3 replication-events queue, for Chalice's `on_sqs_message` at decoration time.

    Chalice needs the name when app.py is imported, before any setting is read. `chalice deploy/package
    --stage X` imports the app with that stage's `environment_variables` from .chalice/config.json already
    applied, and every Lambda function has them too, so LIFEBOAT_STAGE is present in both places; the name
    follows the stage the same way the tables and buckets do. No handler needs it at run time.
    """
    env = os.environ if environ is None else environ
    return REPLICATION_QUEUE_TEMPLATE.format(stage=env.get("LIFEBOAT_STAGE") or "dev")
