"""RTO and RPO arithmetic, with one definition used everywhere (failover records, drills, status)."""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.models.failover import RtoMeasurement


def measure_rto(
    started_at: datetime, decided_at: datetime, validated_at: datetime, objective: timedelta
) -> RtoMeasurement:
    rto = (validated_at - started_at).total_seconds()
    target = objective.total_seconds()
    return RtoMeasurement(
        started_at=started_at,
        decided_at=decided_at,
        validated_at=validated_at,
        rto_seconds=rto,
        decision_seconds=max(0.0, (decided_at - started_at).total_seconds()),
        automation_seconds=max(0.0, (validated_at - decided_at).total_seconds()),
        objective_seconds=target,
        met=rto <= target,
        margin_seconds=target - rto,
    )


def rpo_exposure(oldest_unreplicated: datetime | None, now: datetime) -> timedelta:
    """Age of the oldest change not yet safely in the replica (zero when fully replicated)."""
    if oldest_unreplicated is None:
        return timedelta(0)
    return max(timedelta(0), now - oldest_unreplicated)
