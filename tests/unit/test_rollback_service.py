"""Model rollback's steps in one process (services/rollback.py) on fakes: a SageMaker endpoint that takes a
while to update is waited for as it asks (injected sleep), and failed smoke tests put the old config back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.domain.smoke import Invocation
from chalicelib.models.ledger import WorkloadState
from chalicelib.models.planfile import load_plan_text
from chalicelib.models.rollback import Deployed, RegistryVersion, RollbackRequest
from chalicelib.services.rollback import RollbackRefused, rollback
from chalicelib.services.workload_lock import OperationConflict
from tests.unit.fakes import FakeLedger, FakeLocks

PLAN = load_plan_text(
    (Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring-sagemaker.yaml").read_text(), "plan.yaml"
)
W = PLAN.workload
NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
PKG = "arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud-scorer/{}"
VERSIONS = [
    RegistryVersion(version="1.0.0", approved=True, status="Approved", order=1, package=PKG.format(1)),
    RegistryVersion(version="1.1.0", approved=True, status="Approved", order=2, package=PKG.format(2)),
]


@dataclass
class SlowEndpoint:
    """A SageMaker endpoint on package 2 that stays Updating for `updates` looks after each UpdateEndpoint."""

    updates: int = 2
    config: str = "cfg-1-1-0"
    wanted: str | None = None
    left: int = 0
    calls: list[str] = field(default_factory=list)

    def current(self, endpoint: Any, region: str, timeout_s: float = 5.0) -> Deployed:
        return Deployed(package=PKG.format(2), endpoint_config=self.config, model_name="m-1-1-0")

    def deploy_sagemaker(self, endpoint: Any, region: str, current: Deployed, **names: Any) -> None:
        self.calls.append(f"deploy {names['config_name']} from {names['package_arn']}")
        self._update(names["config_name"])

    def switch_config(self, endpoint: Any, region: str, config: str) -> None:
        self.calls.append(f"switch {config}")
        self._update(config)

    def _update(self, config: str) -> None:
        self.wanted, self.left = config, self.updates

    def endpoint_state(self, endpoint: Any, region: str) -> tuple[str, str, str | None]:
        if self.left > 0:
            self.left -= 1
            return "Updating", self.config, None
        self.config = self.wanted or self.config
        return "InService", self.config, None


class Evidence:
    def __init__(self) -> None:
        self.written: dict[str, Any] = {}

    def uri(self, key: str) -> str:
        return f"s3://evidence/{key}"

    def put_json(self, key: str, body: Any) -> None:
        self.written[key] = body


def deps(endpoint: SlowEndpoint, *, scores: float) -> Any:
    def invoke(ep: Any, region: str, case: str, payload: Any, timeout: float) -> Invocation:
        return Invocation(case=case, status=200, latency_ms=5.0, body={"score": scores, "label": "legit"})

    return SimpleNamespace(
        plans=SimpleNamespace(get=lambda w: PLAN),
        ledger=FakeLedger(WorkloadState(workload=W)),
        locks=FakeLocks(now=NOW),
        executions=SimpleNamespace(describe=lambda arn: {"status": "RUNNING"}),
        evidence=Evidence(),
        deployer=endpoint,
        registry=SimpleNamespace(versions=lambda plan, asset, region: VERSIONS),
        endpoints=SimpleNamespace(invoke=invoke),
        clock=lambda: NOW,
    )


def test_failed_smoke_tests_put_the_previous_config_back_after_waiting_for_each_update() -> None:
    # Given an endpoint on 1.1.0 that takes two looks to update, and a model whose answers fail the tests
    endpoint = SlowEndpoint()
    d = deps(endpoint, scores=0.5)
    slept: list[float] = []
    # When it is rolled back to the previous approved version
    report = rollback(RollbackRequest(workload=W), d, sleep=slept.append)
    # Then 1.0.0's package went in service (waited 5 s, then 10 s), failed its smoke tests, and the old
    # config is back (waited for the same way); the run is reported failed and reverted
    assert endpoint.calls[0].startswith("deploy fraud-scorer-v1-0-0-20261202T110000 from ")
    assert endpoint.calls[1:] == ["switch cfg-1-1-0"] and endpoint.config == "cfg-1-1-0"
    assert slept == [5, 10, 5, 10]
    assert (report.verdict, report.reverted, report.smoke_passed) == ("failed", True, False)
    assert (report.from_version, report.to_version) == ("1.1.0", "1.0.0")
    assert d.ledger.outcomes[-1][:2] == ("rollback", "failed")
    assert list(d.evidence.written) == [f"rollback/{W}/{report.run_id}.json"]
    # And it held the workload lock all along, renewed for each wait, and released it at the end
    holder = f"cli:{report.run_id}"
    assert {h for h, _ in d.locks.leases} == {holder} and d.locks.released == [holder]
    assert max(lease for _, lease in d.locks.leases) == timedelta(minutes=15, seconds=10)
    assert d.locks.held is None


def test_a_dry_run_names_the_configs_and_changes_nothing() -> None:
    endpoint = SlowEndpoint()
    d = deps(endpoint, scores=0.5)
    report = rollback(RollbackRequest(workload=W, dry_run=True), d, sleep=pytest.fail)
    assert (report.verdict, report.config_before, report.config_after) == (
        "planned",
        "cfg-1-1-0",
        "fraud-scorer-v1-0-0-20261202T110000",
    )
    assert endpoint.calls == [] and d.ledger.recorded == [] and d.evidence.written == {}
    assert d.locks.leases == []  # a dry run takes no lock


def test_a_refusal_changes_nothing_and_says_why() -> None:
    endpoint = SlowEndpoint()
    d = deps(endpoint, scores=0.5)
    with pytest.raises(RollbackRefused, match="1.1.0 is already deployed"):
        rollback(RollbackRequest(workload=W, latest=True), d)
    assert endpoint.calls == []
    assert d.locks.held is None and len(d.locks.released) == 1  # taken, then given back


def test_a_rollback_is_refused_while_another_operation_holds_the_lock_naming_it() -> None:
    # Given a failover holding the workload's lock
    endpoint = SlowEndpoint()
    d = deps(endpoint, scores=0.9)
    failover = "arn:aws:states:us-east-1:123456789012:execution:lifeboat-dev-fraud-scoring-failover:fo-1"
    d.locks.acquire(W, failover, "failover", timedelta(minutes=15))
    # When a rollback is asked for
    with pytest.raises(OperationConflict) as refused:
        rollback(RollbackRequest(workload=W), d, sleep=pytest.fail)
    # Then it names the failover, changes nothing, and leaves its lock alone
    assert "locked by a running failover (fo-1)" in str(refused.value)
    assert refused.value.execution == failover
    assert endpoint.calls == [] and d.locks.held is not None and d.locks.held.holder == failover


def test_a_rollback_is_refused_while_a_drill_runs_between_its_failover_and_failback() -> None:
    endpoint = SlowEndpoint()
    d = deps(endpoint, scores=0.9)
    d.ledger.controls["drill"] = {
        "drill_id": "drill-1",
        "status": "running",
        "phase": "failback",
        "lease_until": (NOW + timedelta(seconds=30)).isoformat(),
    }
    with pytest.raises(OperationConflict, match="drill drill-1 is running"):
        rollback(RollbackRequest(workload=W), d, sleep=pytest.fail)
    assert endpoint.calls == [] and d.locks.leases == []
