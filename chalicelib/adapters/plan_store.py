"""Where DR plans live: an S3 bucket in AWS, a folder of YAML files locally. Same interface for both."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from chalicelib.adapters import aws
from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import PlanError, load_plan_text, load_plans

PLAN_SUFFIXES = (".yaml", ".yml")


class UnknownWorkload(LookupError):
    """No plan exists for the requested workload."""

    def __init__(self, workload: str) -> None:
        self.workload = workload
        super().__init__(f"no DR plan for workload {workload!r}")


class PlanStore(Protocol):
    def all(self) -> list[DRPlan]: ...

    def get(self, workload: str) -> DRPlan: ...


class BrokenPlans(PlanError):
    """Raised by `all()` when some plan files are invalid: one bad file must not hide the others' errors."""


def _collect(named_texts: list[tuple[str, str]]) -> list[DRPlan]:
    """Every stored plan; BrokenPlans naming every problem (two plans of one workload included)."""
    try:
        return load_plans(named_texts)
    except PlanError as err:
        raise BrokenPlans(err.problems) from None


class S3PlanStore:
    """Plans as YAML objects under a prefix; cached briefly because warm Lambdas read them on every event."""

    s3 = aws.Client("s3")

    def __init__(
        self,
        bucket: str,
        prefix: str = "plans/",
        s3: Any | None = None,
        *,
        ttl_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.s3 = s3
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._cache: tuple[float, list[DRPlan]] | None = None
        self._lock = threading.Lock()

    def all(self) -> list[DRPlan]:
        with self._lock:
            now = self._monotonic()
            if self._cache is not None and now - self._cache[0] < self._ttl:
                return self._cache[1]
            texts = []
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            ):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if key.endswith(PLAN_SUFFIXES):
                        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                        texts.append((f"s3://{self.bucket}/{key}", body.decode("utf-8")))
            plans = _collect(texts)
            self._cache = (now, plans)
            return plans

    def get(self, workload: str) -> DRPlan:
        for plan in self.all():
            if plan.workload == workload:
                return plan
        raise UnknownWorkload(workload)

    def put(self, plan_text: str, *, source: str = "<upload>") -> DRPlan:
        """Validate, then store as <prefix><workload>.yaml (never stores an invalid plan)."""
        plan = load_plan_text(plan_text, source)
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"{self.prefix}{plan.workload}.yaml",
            Body=plan_text.encode("utf-8"),
            ContentType="application/yaml",
            ServerSideEncryption="AES256",
        )
        with self._lock:
            self._cache = None
        return plan


class DirectoryPlanStore:
    """Plans as YAML files in a local folder (the CLI and the local cloud)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def all(self) -> list[DRPlan]:
        files = sorted(p for p in self.directory.iterdir() if p.suffix in PLAN_SUFFIXES)
        return _collect([(str(p), p.read_text(encoding="utf-8")) for p in files])

    def get(self, workload: str) -> DRPlan:
        for plan in self.all():
            if plan.workload == workload:
                return plan
        raise UnknownWorkload(workload)
