"""DR drill arithmetic and verdicts as pure functions: the scenarios, RTO split into its phases, RPO from the
drill's write log, objective verdicts with margins, the drill's overall verdict, the timeline and the trend.

One definition each, used by the runner, the report, the CLI and the API:

- RTO = first ALARM of the triggering quorum -> traffic switched and validated (ARC's "actual recovery
  time"), = decision (first ALARM -> decision) + automation (decision -> switched) + validation (switched ->
  validated). Detection (fault injected -> first ALARM) comes before the RTO clock starts.
- RPO = the window of writes lost at the switch: newest write the primary accepted - the recovery point,
  the newest write the replica held together with every earlier one. Zero when the replica had everything.
- data-corruption (nothing to fail over to): time to restore = detected -> restored, redeployed and
  validated (decision + restore + redeploy + validation), judged against the RTO; RPO = the window of writes
  the restore to before the damage undid (the same arithmetic, against what the restored dataset holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.history import Step
from chalicelib.models.drill import (
    Behaviour,
    DrillRecord,
    DrillVerdict,
    Expectation,
    Marker,
    ObjectiveResult,
    Phase,
    RestoreBreakdown,
    RpoMeasurement,
    RtoBreakdown,
    StepTiming,
    TrendPoint,
    Write,
)
from chalicelib.models.plan import DRPlan


@dataclass(frozen=True)
class Scenario:
    """A fault and what Lifeboat must do about it."""

    name: str
    expect: Expectation
    summary: str
    kills_primary: bool = True


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "region-outage",
            "failover",
            "the primary region's model server is killed (writes to that region stop)",
        ),
        Scenario(
            "region-api-outage",
            "failover",
            "the primary region's model server is killed and every AWS API of the primary region goes "
            "down with it (CloudWatch, EventBridge, S3, DynamoDB, Lambda, Step Functions): detection, "
            "decision and failover run from the secondary region",
        ),
        Scenario(
            "endpoint-degraded",
            "failover",
            "the primary model server answers slower than the canary's timeout and with wrong scores",
            kills_primary=False,
        ),
        Scenario(
            "replication-stalled",
            "failover",
            "replication is paused while writes continue, then the primary region fails: the replica is "
            "behind by the gap",
        ),
        Scenario(
            "corrupt-artifact",
            "refuse",
            "the replica's model artifact differs from the primary's (the secondary reloads it), then the "
            "primary region fails",
        ),
        Scenario(
            "api-throttling",
            "failover",
            "a share of Lifeboat's own AWS calls is throttled, then the primary region fails",
        ),
        Scenario(
            "alarm-flapping",
            "no-failover",
            "the primary fails and recovers faster than the sustain window, again and again",
            kills_primary=False,
        ),
        Scenario(
            "backup-unhealthy",
            "refuse",
            "the secondary serves wrong predictions, then the primary region fails",
        ),
        Scenario(
            "data-corruption",
            "restore",
            "a bad write and a deletion in the dataset, and a bad model artefact, which replication carries "
            "to the secondary region (both model servers load the bad model): nothing is left to fail over "
            "to, the damaged assets must be restored to before the damage",
            kills_primary=False,
        ),
    )
}

EXPECTATION_WORDS = {
    "failover": "fail over to the secondary",
    "no-failover": "leave traffic on the primary (no failover)",
    "refuse": "refuse to fail over (the backup is not fit to serve)",
    "restore": "leave traffic where it is (the damage is in both regions: a failover would not help) and "
    "restore the damaged assets to before the damage",
}


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; expected one of: {', '.join(SCENARIOS)}") from None


def flap_period(sustain: timedelta) -> timedelta:
    """How long each half of an alarm-flapping cycle lasts: long enough for the trigger alarms to fire
    (two 2-second periods in breach), short enough that the quorum never holds for the sustain window."""
    return min(timedelta(seconds=8), max(timedelta(seconds=6), sustain * 0.4))


def flapping_precondition(sustain: timedelta) -> str | None:
    """Why alarm-flapping cannot test this plan (None when it can): alarms stay in ALARM for up to about
    one outage half-cycle, so a shorter sustain window would rightly fail over."""
    needed = flap_period(sustain) + timedelta(seconds=2)
    if sustain < needed:
        return (
            f"the sustain window ({sustain.total_seconds():g}s) is shorter than an alarm burst of a flapping "
            f"endpoint (~{flap_period(sustain).total_seconds():g}s): give trigger.sustain at least "
            f"{needed.total_seconds():g}s to drill flapping"
        )
    return None


def region_api_outage_precondition(plan: DRPlan, running_in: str) -> str | None:
    """Why region-api-outage cannot test this plan from this copy of Lifeboat (None when it can).

    The drill takes the primary region's APIs down, Lifeboat's copy there included: it has to be run from the
    copy in the secondary region, and something there has to see the outage (an alarm on the primary
    endpoint living in the secondary region). Without the confirmation probe the full quorum stands, so the
    secondary region's alarms alone must be able to meet it (`triggers.needed_alarms`).
    """
    primary, secondary = plan.regions.primary, plan.regions.secondary
    if running_in == primary:
        return (
            f"it takes {primary}'s APIs down, including this copy of Lifeboat ({running_in}): run it from "
            f"the copy in {secondary}"
        )
    outside = [a for a in plan.trigger.alarms if plan.alarm_region(a) != primary]
    if not outside:
        return (
            f"every trigger alarm lives in {primary}, so nothing could see the outage: add an alarm in "
            f"{secondary} on the primary endpoint (trigger.alarm_regions)"
        )
    if not plan.trigger.confirmation_probe and len(outside) < plan.trigger.quorum:
        return (
            f"without the confirmation probe the full quorum ({plan.trigger.quorum}) stands, and only "
            f"{len(outside)} trigger alarm(s) live outside {primary}"
        )
    return None


def data_corruption_precondition(plan: DRPlan, has_dataset: bool) -> str | None:
    """Why data-corruption cannot test this plan (None when it can): it needs an S3 dataset to damage and the
    model artefacts the endpoints serve, both restored from their object versions."""
    return plan.data_corruption_gap() or (
        None if has_dataset else "the plan has no S3 dataset for the drill to write to and damage"
    )


def observation_window(sustain: timedelta, observe: timedelta) -> timedelta:
    """How long a no-failover scenario is watched: two sustain windows and a flap, or `observe`/4."""
    return max(2 * sustain + flap_period(sustain), observe / 4)


# -- RTO -------------------------------------------------------------------------------------------------
def _seconds(a: datetime, b: datetime) -> float:
    return round((b - a).total_seconds(), 3)


def rto_breakdown(
    *,
    fault_at: datetime,
    first_alarm_at: datetime,
    decided_at: datetime,
    switched_at: datetime,
    validated_at: datetime,
) -> RtoBreakdown:
    """Split the recovery into its phases. The instants are clamped into order (clocks of different
    processes can disagree by milliseconds) so every phase is >= 0 and the three RTO parts add up to it."""
    decided_at = max(decided_at, first_alarm_at)
    switched_at = max(switched_at, decided_at)
    validated_at = max(validated_at, switched_at)
    decision = _seconds(first_alarm_at, decided_at)
    automation = _seconds(decided_at, switched_at)
    validation = _seconds(switched_at, validated_at)
    return RtoBreakdown(
        fault_at=fault_at,
        first_alarm_at=first_alarm_at,
        decided_at=decided_at,
        switched_at=switched_at,
        validated_at=validated_at,
        detection_seconds=max(0.0, _seconds(fault_at, first_alarm_at)),
        decision_seconds=decision,
        automation_seconds=automation,
        validation_seconds=validation,
        rto_seconds=round(decision + automation + validation, 3),
    )


# -- RPO -------------------------------------------------------------------------------------------------
def measure_rpo(
    asset: str,
    objective: timedelta,
    interval: timedelta,
    writes: Sequence[Write],
    replica_keys: Iterable[str],
    switch_at: datetime | None,
) -> RpoMeasurement:
    """RPO at the switch from the write log: writes after the switch are not counted (they were never at
    risk). The recovery point is the newest write held by the replica with every earlier write, because a
    replica holding a later write but missing an earlier one cannot be restored to that later point."""
    held = set(replica_keys)
    considered = sorted(
        (w for w in writes if switch_at is None or w.at <= switch_at), key=lambda w: (w.at, w.key)
    )
    recovery: datetime | None = None
    oldest_missing: datetime | None = None
    missing = 0
    for write in considered:
        if write.key in held:
            if oldest_missing is None:
                recovery = write.at
        else:
            missing += 1
            if oldest_missing is None:
                oldest_missing = write.at
    newest = considered[-1].at if considered else None
    if newest is None or oldest_missing is None:
        rpo = 0.0
    else:
        # Nothing replicated at all: the sides last agreed one interval before the first write.
        point = recovery if recovery is not None else considered[0].at - interval
        rpo = _seconds(point, newest)
    return RpoMeasurement(
        asset=asset,
        objective_seconds=objective.total_seconds(),
        interval_seconds=interval.total_seconds(),
        writes=len(considered),
        missing=missing,
        switch_at=switch_at,
        newest_write_at=newest,
        recovery_point_at=recovery,
        oldest_missing_at=oldest_missing,
        rpo_seconds=max(0.0, rpo),
    )


def measure_restore_rpo(
    asset: str,
    objective: timedelta,
    interval: timedelta,
    writes: Sequence[Write],
    kept_keys: Iterable[str],
    restore_started_at: datetime,
) -> RpoMeasurement:
    """Data lost to a point-in-time restore, from the write log: the writes accepted before the restore
    began, against the keys that hold their write's content after it. The writes made after the restore
    point are undone by an in-place restore (and the damaged ones it must bring back count as lost if it
    did not): the recovery point is the newest write kept together with every earlier one, the RPO the
    window from there to the newest write. The same arithmetic as the RPO at a switch (`measure_rpo`)."""
    return measure_rpo(asset, objective, interval, writes, kept_keys, restore_started_at)


def restore_breakdown(
    *,
    damaged_at: datetime,
    detected_at: datetime,
    decided_at: datetime,
    restored_at: datetime,
    redeployed_at: datetime,
    validated_at: datetime,
    restore_point: datetime,
) -> RestoreBreakdown:
    """The time to restore (detected -> validated) split into decision, restore, redeploy and validation;
    detection (damage -> detected) comes before it. Instants are clamped into order, as for the RTO."""
    detected_at = max(detected_at, damaged_at)
    decided_at = max(decided_at, detected_at)
    restored_at = max(restored_at, decided_at)
    redeployed_at = max(redeployed_at, restored_at)
    validated_at = max(validated_at, redeployed_at)
    decision = _seconds(detected_at, decided_at)
    restore = _seconds(decided_at, restored_at)
    redeploy = _seconds(restored_at, redeployed_at)
    validation = _seconds(redeployed_at, validated_at)
    return RestoreBreakdown(
        damaged_at=damaged_at,
        detected_at=detected_at,
        decided_at=decided_at,
        restored_at=restored_at,
        redeployed_at=redeployed_at,
        validated_at=validated_at,
        restore_point=restore_point,
        detection_seconds=_seconds(damaged_at, detected_at),
        decision_seconds=decision,
        restore_seconds=restore,
        redeploy_seconds=redeploy,
        validation_seconds=validation,
        rto_seconds=round(decision + restore + redeploy + validation, 3),
    )


def restore_timeline(r: RestoreBreakdown) -> list[Phase]:
    """Phase bars of a restore: detection, decision, restore, redeploy, validation."""
    return [
        Phase(name="detection", start=r.damaged_at, end=r.detected_at),
        Phase(name="decision", start=r.detected_at, end=r.decided_at),
        Phase(name="restore", start=r.decided_at, end=r.restored_at),
        Phase(name="redeploy", start=r.restored_at, end=r.redeployed_at),
        Phase(name="validation", start=r.redeployed_at, end=r.validated_at),
    ]


def restore_markers(r: RestoreBreakdown) -> list[Marker]:
    return [
        Marker(name="detected", at=r.detected_at, label="damage detected"),
        Marker(name="decision", at=r.decided_at, label="restore decided (no failover)"),
        Marker(name="restored", at=r.restored_at, label=f"restored to {r.restore_point:%H:%M:%S} UTC"),
        Marker(name="validated", at=r.validated_at, label="validated"),
    ]


# -- objectives and verdicts -----------------------------------------------------------------------------
def objective(name: str, bound: timedelta | None, measured: float | None, note: str = "") -> ObjectiveResult:
    if measured is None:
        return ObjectiveResult(name=name, note=note or "not measured in this scenario")
    if bound is None:
        return ObjectiveResult(name=name, measured_seconds=round(measured, 3), note=note)
    target = bound.total_seconds()
    return ObjectiveResult(
        name=name,
        objective_seconds=target,
        measured_seconds=round(measured, 3),
        met=measured <= target,
        margin_seconds=round(target - measured, 3),
        note=note,
    )


def behaviour_of(failover_outcome: str | None) -> Behaviour:
    """What Lifeboat did, from the failover's concluded outcome (None: no failover ever started)."""
    return {
        "completed": "failed-over",
        "refused": "refused",
        "failed": "failover-failed",
        "unvalidated": "failover-failed",  # traffic moved, then the run failed before validating it
    }.get(failover_outcome or "", "no-failover")  # type: ignore[return-value]


def drill_verdict(
    expect: Expectation,
    behaviour: Behaviour | None,
    objectives: Sequence[ObjectiveResult],
    *,
    failback_outcome: str | None = None,
    restore_outcome: str | None = None,
    interrupted: str | None = None,
    leftovers: Sequence[str] = (),
) -> tuple[DrillVerdict, bool | None, str]:
    """(verdict, behaved as expected?, why).

    `leftovers` is what the drill found wrong once the scenario was over and before its cleanup touched
    anything (a lock outliving its execution, a ledger that disagrees with traffic): the cleanup would hide
    it, and the next real outage would meet it, so any leftover fails the drill.
    """
    if interrupted is not None:
        return "interrupted", None, f"interrupted: {interrupted}"
    # A restore scenario moves no traffic: a failover refused (the backup fails its smoke tests) is as good
    # as none started.
    wanted = {
        "failover": ("failed-over",),
        "no-failover": ("no-failover",),
        "refuse": ("refused",),
        "restore": ("no-failover", "refused"),
    }[expect]
    if behaviour not in wanted:
        wanted_words = EXPECTATION_WORDS[expect]
        return "failed", False, f"expected Lifeboat to {wanted_words}, but it did {_did(behaviour)}"
    if leftovers:
        left = "; ".join(leftovers)
        return "failed", True, f"Lifeboat did {_did(behaviour)}, as expected, but left: {left}"
    if expect == "failover" and failback_outcome != "completed":
        ended = failback_outcome or "never"
        return "failed", True, f"failed over as expected, but the failback ended {ended}"
    if expect == "restore" and restore_outcome != "restored":
        why = RESTORE_FAILURES.get(restore_outcome or "", f"the restore ended {restore_outcome}")
        return "failed", True, f"Lifeboat did {_did(behaviour)}, as expected, but {why}"
    breached = [o for o in objectives if o.met is False]
    done = f"Lifeboat did {_did(behaviour)}, as expected"
    if breached:
        words = ", ".join(f"{o.name} by {-(o.margin_seconds or 0):.1f}s" for o in breached)
        return "breached", True, f"{done}; objective breached: {words}"
    met = [o.name for o in objectives if o.met]
    return "passed", True, done + (f"; {' and '.join(met)} met" if met else "")


RESTORE_FAILURES = {
    "": "the restore never ran",
    "not-detected": "the damage was never detected",
    "not-restored": "the damage was not judged to be in both regions, so nothing was restored",
    "failed": "the restore failed",
    "unvalidated": "after the restore the smoke tests or the data checks still failed",
}


def residue(
    *,
    lock_holder: str | None,
    holder_status: str | None,
    recorded_region: str | None,
    serving_region: str | None,
    primary: str,
) -> list[str]:
    """What a finished scenario left that it must not have: a lock whose holder no longer runs, a ledger
    whose active region is not where traffic is (no active region recorded means the primary)."""
    found = []
    if lock_holder is not None and holder_status != "RUNNING":
        name = lock_holder.rsplit(":", 1)[-1]
        status = (holder_status or "unknown").lower()
        found.append(f"the workload lock still held by {name}, which is {status}")
    if serving_region is None:
        found.append("traffic split between the regions")
    elif (recorded_region or primary) != serving_region:
        found.append(f"the ledger says {recorded_region or primary} is active while {serving_region} serves")
    return found


def _did(behaviour: Behaviour | None) -> str:
    return {
        "failed-over": "fail over",
        "no-failover": "not fail over",
        "refused": "refuse to fail over",
        "failover-failed": "start a failover that failed",
        None: "nothing measurable",
    }[behaviour]


# -- timeline ----------------------------------------------------------------------------------------------
def recovery_timeline(
    rto: RtoBreakdown | None,
    *,
    started_at: datetime,
    restored_at: datetime | None = None,
    failback: tuple[datetime, datetime] | None = None,
) -> list[Phase]:
    """Phase bars in order: detection, decision, automation, validation, restore, failback."""
    phases: list[Phase] = []
    if rto is not None:
        phases += [
            Phase(name="detection", start=rto.fault_at, end=rto.first_alarm_at),
            Phase(name="decision", start=rto.first_alarm_at, end=rto.decided_at),
            Phase(name="automation", start=rto.decided_at, end=rto.switched_at),
            Phase(name="validation", start=rto.switched_at, end=rto.validated_at),
        ]
        if restored_at is not None:
            restored = max(restored_at, rto.validated_at)
            phases.append(Phase(name="restore", start=rto.validated_at, end=restored))
    if failback is not None:
        start, end = failback
        phases.append(Phase(name="failback", start=start, end=max(end, start)))
    return [p for p in phases if p.end >= p.start >= started_at - timedelta(minutes=1)]


def rto_markers(rto: RtoBreakdown) -> list[Marker]:
    return [
        Marker(name="fault", at=rto.fault_at, label="fault injected"),
        Marker(name="alarm", at=rto.first_alarm_at, label="first ALARM"),
        Marker(name="decision", at=rto.decided_at, label="decision"),
        Marker(name="switch", at=rto.switched_at, label="traffic switched"),
        Marker(name="validated", at=rto.validated_at, label="validated"),
    ]


def step_timings(kind: str, steps: Sequence[Step]) -> list[StepTiming]:
    return [
        StepTiming(
            execution=kind,
            name=s.name,
            type=s.type,
            entered_at=s.entered_at,
            duration_seconds=s.duration_seconds,
            attempts=s.attempts,
            errors=len(s.errors),
        )
        for s in steps
    ]


def first_alarm_transitions(transitions: Sequence[Mapping[str, Any]], since: datetime) -> datetime | None:
    """Earliest ALARM the drill saw among the trigger alarms after `since` (a fallback RTO start)."""
    stamps = [t["at"] for t in transitions if t.get("state") == "ALARM" and t["at"] >= since]
    return min(stamps) if stamps else None


# -- trend -------------------------------------------------------------------------------------------------
def trend_points(records: Iterable[DrillRecord | Mapping[str, Any]], limit: int = 12) -> list[TrendPoint]:
    """Previous drills (records or ledger summaries), oldest first, at most `limit`."""
    points: list[TrendPoint] = []
    for raw in records:
        data = raw.summary().model_dump() if isinstance(raw, DrillRecord) else dict(raw)
        if not data.get("drill_id") or not data.get("started_at"):
            continue
        points.append(
            TrendPoint(
                drill_id=str(data["drill_id"]),
                at=data["started_at"],
                scenario=str(data.get("scenario", "")),
                verdict=str(data.get("verdict", "")),
                rto_seconds=data.get("rto_seconds"),
                rpo_seconds=data.get("rpo_seconds"),
            )
        )
    points.sort(key=lambda p: p.at)
    return points[-limit:]
