"""What the dashboard's overview shows of one workload, from what the CLI's `status` reads: active region,
weights, the last smoke verdicts, measured RPO per asset against its objective, the lock, the cooldown, the
latest verification. Pure: everything read comes in, the time too."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.clock import parse_timestamp
from chalicelib.models.durations import format_duration
from chalicelib.models.plan import DRPlan
from chalicelib.models.replication import AssetReplicationState
from chalicelib.services.status import WorkloadStatus
from lifeboat_cli.dashboard.steps import ExecutionView


class EndpointRow(BaseModel):
    role: str
    region: str
    endpoint: str
    weight: int | None
    smoke: str = Field(description="pass, FAIL or '-' (never tested).")
    smoke_reason: str = ""
    smoke_at: datetime | None = None


class AssetRow(BaseModel):
    name: str
    kind: str
    objective: str = Field(description="The asset's RPO objective, as a duration.")
    measured: str = Field(description="Measured RPO, as a duration, or '-' when never measured.")
    measured_at: datetime | None
    measured_by: str | None
    verdict: str = Field(description="met, BREACHED or unknown.")


class WorkloadView(BaseModel):
    workload: str
    tier: str
    rpo: str
    rto: str
    active_region: str | None
    serving: str = Field(description="Who serves users, in words.")
    traffic_error: str | None
    endpoints: list[EndpointRow]
    assets: list[AssetRow]
    lock: str | None = Field(description="Who holds the workload's lock, in words.")
    lock_stale: bool
    cooldown: str | None = Field(description="'until 12:04:05 UTC (3m left)' while a cooldown runs.")
    last_failover: str | None
    last_failback: str | None
    verification: str | None = Field(description="The latest verification run, in words.")
    verification_verdict: str | None
    running: list[ExecutionView]


def workload_view(
    status: WorkloadStatus,
    plan: DRPlan,
    assets: list[AssetReplicationState],
    verification: dict[str, Any] | None,
    running: list[ExecutionView],
    *,
    now: datetime,
) -> WorkloadView:
    """`status` as `lifeboat status --no-probe` reads it, the assets' replication states, the latest
    verification report (its JSON, None when there is none) and the running executions' views."""
    st = status.state
    measured = {a.asset: a for a in assets}
    lock = status.lock
    lock_words = None
    if lock is not None:
        lock_words = (
            f"held by {lock.operation} {lock.holder_name} since {lock.acquired_at:%H:%M:%S}, "
            f"lease until {lock.expires_at:%H:%M:%S} UTC"
        )
        if lock.stale:
            lock_words += f"; STALE: {lock.stale_reason}"
    return WorkloadView(
        workload=status.workload,
        tier=status.tier,
        rpo=status.objectives["rpo"],
        rto=status.objectives["rto"],
        active_region=status.active_region,
        serving=_serving(status),
        traffic_error=status.traffic_error,
        endpoints=[_endpoint(e, st.last_smoke.get(e.role)) for e in status.endpoints],
        assets=[_asset(plan, a.name, a.kind, measured.get(a.name)) for a in plan.assets],
        lock=lock_words,
        lock_stale=bool(lock and lock.stale),
        cooldown=_cooldown(plan, st.last_transition_at(), now),
        last_failover=(
            f"{st.last_failover_at:%Y-%m-%d %H:%M:%S} UTC, measured RTO {st.last_rto_seconds:.1f}s"
            if st.last_failover_at and st.last_rto_seconds is not None
            else None
        ),
        last_failback=(
            f"{st.last_failback_at:%Y-%m-%d %H:%M:%S} UTC, took {st.last_failback_seconds:.1f}s"
            if st.last_failback_at and st.last_failback_seconds is not None
            else None
        ),
        verification=_verification(verification),
        verification_verdict=str(verification.get("verdict")) if verification else None,
        running=running,
    )


def format_duration_s(seconds: float) -> str:
    """Whole seconds, spelled like plan durations: 75.4 -> "1m15s"."""
    return format_duration(timedelta(seconds=int(max(0.0, seconds))))


def _serving(status: WorkloadStatus) -> str:
    if status.traffic_error:
        return "traffic unreadable"
    weights = {e.role: e.weight for e in status.endpoints if e.weight is not None}
    if status.active_region:
        role = next((e.role for e in status.endpoints if e.region == status.active_region), "?")
        return f"{status.active_region} ({role}) serves all traffic"
    if weights:
        return "split: " + ", ".join(f"{role} {share}%" for role, share in weights.items())
    return "unknown"


def _endpoint(e: Any, smoke: dict[str, Any] | None) -> EndpointRow:
    at = None
    if smoke and smoke.get("at"):
        try:
            at = parse_timestamp(str(smoke["at"]))
        except ValueError:
            at = None
    return EndpointRow(
        role=e.role,
        region=e.region,
        endpoint=e.endpoint,
        weight=e.weight,
        smoke="-" if not smoke else ("pass" if smoke.get("passed") else "FAIL"),
        smoke_reason=str((smoke or {}).get("reason", "")),
        smoke_at=at,
    )


def _asset(plan: DRPlan, name: str, kind: str, state: AssetReplicationState | None) -> AssetRow:
    objective = plan.asset_rpo(name)
    seconds = state.measured_rpo_seconds if state else None
    if seconds is None:
        verdict, shown = "unknown", "-"
    else:
        verdict = "met" if seconds <= objective.total_seconds() else "BREACHED"
        shown = format_duration_s(seconds)
    return AssetRow(
        name=name,
        kind=kind,
        objective=format_duration(objective),
        measured=shown,
        measured_at=state.measured_at if state else None,
        measured_by=state.measured_by if state else None,
        verdict=verdict,
    )


def _cooldown(plan: DRPlan, last: datetime | None, now: datetime) -> str | None:
    if last is None:
        return None
    until = last + plan.trigger.cooldown
    if until <= now:
        return None
    left = until - now
    return f"until {until:%H:%M:%S} UTC ({format_duration_s(left / timedelta(seconds=1))} left)"


def _verification(report: dict[str, Any] | None) -> str | None:
    if not report:
        return None
    when = report.get("finished_at") or report.get("started_at") or "?"
    return f"{str(report.get('verdict', '?')).upper()} at {when}: {report.get('summary', '')}".strip()
