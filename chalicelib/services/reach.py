"""Working through a region whose APIs are down: trigger alarms read region by region, and the RPO exposure
of assets whose source cannot be listed (docs/architecture.md, "When the primary region's APIs are down")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from chalicelib.domain import triggers
from chalicelib.models.alarms import AlarmSnapshot, AlarmStateChange
from chalicelib.models.failover import RpoExposure
from chalicelib.models.plan import DRPlan, S3Asset
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps


@dataclass
class TriggerAlarms:
    """A plan's trigger alarms as far as they could be read."""

    snapshots: dict[str, AlarmSnapshot] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)  # alarms whose state is unknown
    regions_down: dict[str, str] = field(default_factory=dict)  # region -> the error


def read_trigger_alarms(plan: DRPlan, d: Deps, change: AlarmStateChange | None = None) -> TriggerAlarms:
    """Each trigger alarm from its own region's CloudWatch, merged with the event being handled (which is
    newer, and known even when its region can no longer be read)."""
    readings = d.alarms.read(plan.trigger_alarms_by_region())
    snapshots = triggers.merge_snapshots(readings.snapshots, change)
    seen = TriggerAlarms(
        snapshots=snapshots,
        unreachable=[n for n in readings.names_unreachable if n not in snapshots],
        regions_down=dict(readings.unreachable),
    )
    for region, error in seen.regions_down.items():
        logger.warning(
            "alarm region unreachable",
            workload=plan.workload,
            region=region,
            alarms=seen.unreachable,
            error=error,
        )
        emit("AlarmRegionUnreachable", 1, workload=plan.workload, region=region)
    return seen


def replica_exposure(plan: DRPlan, asset: S3Asset, d: Deps, now: datetime) -> RpoExposure:
    """The RPO exposure of `asset` from its replica and what replication events reported missing."""
    # Here, not at the top: the alarm handler imports this module and never needs it (cold start).
    from chalicelib.domain.objectives import blind_rpo_exposure

    newest = None
    for obj in d.buckets.objects(plan.regions.secondary, asset.replica.bucket, asset.replica.prefix):
        if newest is None or obj.last_modified > newest:
            newest = obj.last_modified
    known: dict[str, datetime] = {}
    try:
        known = dict(d.asset_states.get(plan.workload, asset.name).pending)
    except Exception as exc:  # the replica's own listing still bounds the exposure
        logger.warning("asset replication state unavailable", asset=asset.name, error=str(exc))
    return blind_rpo_exposure(
        asset.name, replica_newest=newest, known_unreplicated=known, objective=plan.asset_rpo(asset), now=now
    )
