"""The adapters a use case needs, built once per process from settings, on first use (never at import).

Every adapter is a typed field of `Deps`: the ones nearly every function calls are built with it, the others
when first read. A test hands a use case its fakes by building `Deps` with them or assigning a field
(`d.evidence = FakeEvidence()`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from chalicelib.adapters import aws
from chalicelib.adapters.alarms import AlarmReader
from chalicelib.adapters.endpoints import EndpointClient
from chalicelib.adapters.executions import Executions
from chalicelib.adapters.ledger import Ledger
from chalicelib.adapters.locks import LockTable
from chalicelib.adapters.model_identity import ModelInspector
from chalicelib.adapters.notify import Notifier
from chalicelib.adapters.plan_store import PlanStore, S3PlanStore
from chalicelib.adapters.traffic import TrafficRouter
from chalicelib.clock import Clock, utc_now
from chalicelib.settings import Settings, get_settings, overridden

if TYPE_CHECKING:
    from chalicelib.adapters.assessment import AssessmentReader
    from chalicelib.adapters.asset_state import AssetStateStore
    from chalicelib.adapters.buckets import Buckets
    from chalicelib.adapters.drill_dataset import DrillDataset
    from chalicelib.adapters.drill_evidence import DrillEvidence
    from chalicelib.adapters.drill_requests import DrillRequests
    from chalicelib.adapters.evidence import EvidenceStore
    from chalicelib.adapters.idempotency import IdempotentEvents
    from chalicelib.adapters.model_rollback import ModelDeployer, ModelRegistry
    from chalicelib.adapters.resources import ResourceReader
    from chalicelib.adapters.restore_dynamodb import TableRestorer
    from chalicelib.adapters.restore_s3 import ObjectRestorer


@dataclass
class Deps:
    plans: PlanStore
    ledger: Ledger
    locks: LockTable
    router: TrafficRouter
    endpoints: EndpointClient
    notifier: Notifier
    alarms: AlarmReader
    executions: Executions
    clock: Clock = utc_now
    models: ModelInspector = field(default_factory=ModelInspector)
    # What the fields below name their tables and buckets from: the settings `build` was given (in the local
    # cloud, a copy's own: a field read later outside `settings.environment` still names the copy's bucket).
    # None (a test's Deps): the current settings when the field is first read.
    settings: Settings | None = None

    def _settings(self) -> Settings:
        return self.settings if self.settings is not None else get_settings()

    # Built on first use, their modules imported then (a function's cold start pays only for what it uses);
    # each asks the client factory for its clients. Tests assign their own (`d.buckets = fake`).
    @cached_property
    def assessment(self) -> AssessmentReader:
        from chalicelib.adapters.assessment import AssessmentReader

        return AssessmentReader()

    @cached_property
    def asset_states(self) -> AssetStateStore:
        from chalicelib.adapters.asset_state import AssetStateStore

        return AssetStateStore(self._settings().ledger_table)

    @cached_property
    def buckets(self) -> Buckets:
        from chalicelib.adapters.buckets import Buckets

        return Buckets()

    @cached_property
    def drill_dataset(self) -> DrillDataset:
        from chalicelib.adapters.drill_dataset import DrillDataset

        return DrillDataset()

    @cached_property
    def drill_evidence(self) -> DrillEvidence:
        from chalicelib.adapters.drill_evidence import DrillEvidence

        return DrillEvidence(self._settings().evidence_bucket)

    @cached_property
    def drill_requests(self) -> DrillRequests:
        from chalicelib.adapters.drill_requests import DrillRequests

        return DrillRequests()

    @cached_property
    def evidence(self) -> EvidenceStore:
        from chalicelib.adapters.evidence import EvidenceStore

        return EvidenceStore(self._settings().evidence_bucket)

    @cached_property
    def idempotency(self) -> IdempotentEvents:
        from chalicelib.adapters.idempotency import IdempotentEvents

        return IdempotentEvents()

    @cached_property
    def resources(self) -> ResourceReader:
        from chalicelib.adapters.resources import ResourceReader

        return ResourceReader()

    @cached_property
    def restorer(self) -> ObjectRestorer:
        from chalicelib.adapters.restore_s3 import ObjectRestorer

        return ObjectRestorer()

    @cached_property
    def tables(self) -> TableRestorer:
        from chalicelib.adapters.restore_dynamodb import TableRestorer

        return TableRestorer()

    @cached_property
    def registry(self) -> ModelRegistry:
        from chalicelib.adapters.model_rollback import ModelRegistry

        return ModelRegistry()

    @cached_property
    def deployer(self) -> ModelDeployer:
        from chalicelib.adapters.model_rollback import ModelDeployer

        return ModelDeployer()


_deps: Deps | None = None
_by_settings: dict[Settings, Deps] = {}  # copies of Lifeboat other than the process's own (local cloud)
_lock = threading.Lock()


def build(s: Settings | None = None) -> Deps:
    s = s or get_settings()
    return Deps(
        plans=S3PlanStore(s.plan_bucket, s.plan_prefix),
        ledger=Ledger(s.ledger_table, control_table=s.lock_table),
        locks=LockTable(s.lock_table),
        router=TrafficRouter(),
        endpoints=EndpointClient(),
        notifier=Notifier(),
        alarms=AlarmReader(),
        executions=Executions(s.state_machine_prefix),
        settings=s,
    )


def deps() -> Deps:
    """The adapters of the current settings: one set per process in Lambda, one per copy of Lifeboat in the
    local cloud (settings.environment)."""
    global _deps
    if overridden():
        s = get_settings()
        with _lock:
            found = _by_settings.get(s)
            if found is None:
                found = _by_settings[s] = build(s)
            return found
    with _lock:
        if _deps is None:
            _deps = build()
        return _deps


def reset() -> None:
    """Forget built adapters (the local cloud and tests change the environment between runs)."""
    global _deps
    with _lock:
        _deps = None
        _by_settings.clear()
    aws.reset()
