"""RTO and RPO arithmetic, with one definition used everywhere (failover records, drills, status)."""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.models.failover import RpoExposure, RtoMeasurement


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


def blind_rpo_exposure(
    asset: str,
    *,
    replica_newest: datetime | None,
    known_unreplicated: dict[str, datetime],
    objective: timedelta,
    now: datetime,
) -> RpoExposure:
    """RPO exposure of an asset whose source cannot be listed: what the replica and the replication events
    say, since nothing can be diffed.

    The replica holds nothing newer than its newest copy (the recovery point at best), and objects that
    replication events reported missing are holes: the recovery point is before the oldest of them. The
    window of writes that may be lost runs from the earlier of the two to now. The replica's LastModified is
    when a copy landed, a little after its write: the window errs small by the replication lag, and holes
    no event reported cannot be seen.
    """
    oldest_known = min(known_unreplicated.values()) if known_unreplicated else None
    points = [p for p in (replica_newest, oldest_known) if p is not None]
    window = max(0.0, (now - min(points)).total_seconds()) if points else None
    return RpoExposure(
        asset=asset,
        recovery_point=replica_newest,
        window_seconds=window,
        known_unreplicated=len(known_unreplicated),
        oldest_known_unreplicated_at=oldest_known,
        objective_seconds=objective.total_seconds(),
    )
