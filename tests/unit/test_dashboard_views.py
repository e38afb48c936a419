"""The dashboard's overview of one workload: who serves, weights, last smoke verdicts, measured RPO per asset
against its objective, the lock, the cooldown, the latest verification."""

from __future__ import annotations

from datetime import timedelta

from chalicelib.models.ledger import WorkloadState
from chalicelib.models.replication import AssetReplicationState
from chalicelib.services.status import EndpointHealth, WorkloadStatus
from chalicelib.services.workload_lock import HeldLock
from lifeboat_cli.dashboard.views import workload_view
from tests.unit.dashboard_support import T0, plan


def status(weights: dict[str, int], active: str | None, state: WorkloadState, lock: HeldLock | None = None):
    return WorkloadStatus(
        workload="fraud-scoring",
        tier="tier-1",
        objectives={"rpo": "15m", "rto": "5m"},
        active_region=active,
        endpoints=[
            EndpointHealth(
                role="primary", region="us-east-1", endpoint="http://p", weight=weights["primary"]
            ),
            EndpointHealth(
                role="secondary", region="us-west-2", endpoint="http://s", weight=weights["secondary"]
            ),
        ],
        state=state,
        lock=lock,
        at=T0,
    )


def test_a_failed_over_workload_shows_the_secondary_serving_its_smoke_verdicts_and_the_cooldown() -> None:
    # Given a workload that failed over two minutes ago; the primary's last smoke test failed
    state = WorkloadState(
        workload="fraud-scoring",
        active_region="us-west-2",
        last_failover_at=T0 - timedelta(minutes=2),
        last_rto_seconds=41.25,
        last_smoke={
            "primary": {"passed": False, "at": T0.isoformat(), "reason": "0/2 cases passed"},
            "secondary": {"passed": True, "at": T0.isoformat(), "reason": "2/2 cases passed"},
        },
    )
    s = status({"primary": 0, "secondary": 100}, "us-west-2", state)
    # When the overview is built
    view = workload_view(s, plan(), [], None, [], now=T0)
    # Then it says who serves, the weights and the verdicts per endpoint, the cooldown left, the last RTO
    assert view.serving == "us-west-2 (secondary) serves all traffic"
    assert [(e.role, e.weight, e.smoke) for e in view.endpoints] == [
        ("primary", 0, "FAIL"),
        ("secondary", 100, "pass"),
    ]
    assert view.endpoints[0].smoke_reason == "0/2 cases passed" and view.endpoints[0].smoke_at == T0
    cooldown = plan().trigger.cooldown - timedelta(minutes=2)
    assert view.cooldown is not None and view.cooldown.endswith(
        f"({int(cooldown.total_seconds() // 60)}m left)"
    )
    assert view.last_failover is not None and "measured RTO 41.2s" in view.last_failover
    assert view.lock is None and view.verification is None


def test_measured_rpo_per_asset_is_judged_against_each_assets_objective() -> None:
    # Given one asset measured within its objective, one beyond, the others never measured
    p = plan()
    objective = p.asset_rpo("training-data").total_seconds()
    assets = [
        AssetReplicationState(
            workload="fraud-scoring",
            asset="training-data",
            measured_rpo_seconds=objective - 1,
            measured_at=T0,
            measured_by="verification",
        ),
        AssetReplicationState(
            workload="fraud-scoring",
            asset="features",
            measured_rpo_seconds=p.asset_rpo("features").total_seconds() + 1,
        ),
    ]
    s = status({"primary": 100, "secondary": 0}, "us-east-1", WorkloadState(workload="fraud-scoring"))
    # When the overview is built
    view = workload_view(s, p, assets, None, [], now=T0)
    # Then every asset of the plan is listed, in plan order, with its verdict
    verdicts = {a.name: a.verdict for a in view.assets}
    assert [a.name for a in view.assets] == [a.name for a in p.assets]
    assert verdicts == {
        "training-data": "met",
        "model-artifacts": "unknown",
        "fraud-model": "unknown",
        "features": "BREACHED",
    }
    assert view.cooldown is None  # never failed over: no cooldown


def test_a_split_traffic_a_stale_lock_and_a_verification_report_are_said_in_words() -> None:
    # Given traffic split mid-failback, a lock whose holder stopped, and a verification report
    lock = HeldLock(
        workload="fraud-scoring",
        holder="arn:aws:states:us-east-1:123456789012:execution:m:failback-x",
        operation="failback",
        acquired_at=T0,
        expires_at=T0 + timedelta(minutes=30),
        holder_name="failback-x",
        holder_status="ABORTED",
        stale=True,
        stale_reason="its holder is ABORTED",
    )
    s = status({"primary": 25, "secondary": 75}, None, WorkloadState(workload="fraud-scoring"), lock)
    report = {"verdict": "green", "finished_at": "2026-03-01T11:00:00Z", "summary": "4 assets green"}
    # When the overview is built
    view = workload_view(s, plan(), [], report, [], now=T0)
    # Then the split, the stale lock and the report's verdict are shown
    assert view.serving == "split: primary 25%, secondary 75%"
    assert view.lock_stale and view.lock is not None and "STALE: its holder is ABORTED" in view.lock
    assert view.verification == "GREEN at 2026-03-01T11:00:00Z: 4 assets green"
    assert view.verification_verdict == "green"
