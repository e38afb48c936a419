"""What a DR drill is asked to do and what it found: requests, measurements, verdicts and the drill record
kept as evidence (the evidence bucket holds the record; the ledger holds its summary)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.models.plan import DrillScenario

Expectation = Literal["failover", "no-failover", "refuse", "restore"]
"""What Lifeboat must do under a scenario: fail over, leave traffic alone, refuse to fail over, or leave
traffic alone and restore the damaged data to before the damage (data-corruption)."""
Behaviour = Literal["failed-over", "no-failover", "refused", "failover-failed"]
"""What Lifeboat did."""
DrillVerdict = Literal["passed", "breached", "failed", "interrupted"]
"""passed: behaved as expected, every objective met; breached: as expected but an objective was missed;
failed: did not behave as expected (or the runbook failed); interrupted: stopped early, cleaned up."""
DrillMode = Literal["local", "drill-target", "live"]
"""local: the local cloud (a sandbox); drill-target: the plan's drill copy in AWS; live: production."""


class DrillRequest(BaseModel):
    """A request to run a drill (CLI, API, schedule): the event the drill runner receives."""

    model_config = ConfigDict(extra="forbid")

    workload: str = Field(description="Workload whose plan is drilled.")
    scenario: DrillScenario = Field(description="The fault injected.")
    live: bool = Field(False, description="Break production itself (only with confirm == workload).")
    confirm: str | None = Field(None, description="The workload name again, required with live.")
    requested_by: str = Field("lifeboat", description="Operator identity, or lifeboat (schedule).")
    reason: str = Field("DR drill", description="Why (recorded in the ledger).")
    drill_id: str | None = Field(None, description="Id to use (the API hands it out before the drill runs).")


class Write(BaseModel):
    """One timestamped object the drill wrote to the dataset on the primary."""

    key: str
    at: datetime
    etag: str | None = Field(None, description="MD5 of the body written: S3's ETag of this write.")


class RpoMeasurement(BaseModel):
    """Data lost at the switch, from the drill's write log and the replica's listing."""

    asset: str = Field(description="The dataset asset written to.")
    objective_seconds: float = Field(description="The asset's RPO.")
    interval_seconds: float = Field(description="Write interval: the measurement's resolution.")
    writes: int = Field(description="Writes the primary accepted before the switch.")
    missing: int = Field(description="Of those, how many the replica did not have at the switch.")
    switch_at: datetime | None = Field(None, description="When the replica was compared (the switch).")
    newest_write_at: datetime | None = Field(None, description="Newest write the primary accepted.")
    recovery_point_at: datetime | None = Field(
        None, description="Newest write the replica had with every earlier write: what a failover keeps."
    )
    oldest_missing_at: datetime | None = Field(None, description="Oldest write the replica lacked.")
    rpo_seconds: float = Field(description="newest write - recovery point: the window of writes lost.")


class RtoBreakdown(BaseModel):
    """RTO (first ALARM -> switched and validated) and its parts; the parts after the alarm add up to it."""

    fault_at: datetime
    first_alarm_at: datetime
    decided_at: datetime
    switched_at: datetime
    validated_at: datetime
    detection_seconds: float = Field(description="Fault injected -> first ALARM (not part of RTO).")
    decision_seconds: float = Field(description="First ALARM -> decision (sustain window and recheck).")
    automation_seconds: float = Field(description="Decision -> traffic switched.")
    validation_seconds: float = Field(description="Switched -> validated (read-back and smoke tests).")
    rto_seconds: float = Field(description="decision + automation + validation.")


class AssetRestore(BaseModel):
    """One asset restored in place by a data-corruption drill (the restore's own report is evidence too)."""

    asset: str
    run_id: str
    verdict: str = Field(description="restored or failed (the restore's verdict).")
    changes: dict[str, int] = Field(default_factory=dict, description="Keys per change since the point.")
    copies: int = 0
    deletes: int = 0
    failed: int = 0
    duration_seconds: float = 0.0
    evidence: str | None = Field(None, description="The restore report in the evidence bucket.")


class RestoreBreakdown(BaseModel):
    """data-corruption: the damage, its detection, the restore to before it, and the time to restore
    (detected -> restored, redeployed and validated), split into phases that add up to it."""

    damaged_at: datetime = Field(description="The first bad write.")
    detected_at: datetime = Field(description="The first check that saw the damage.")
    decided_at: datetime = Field(description="Judged: a failover would not help; restore.")
    restored_at: datetime = Field(description="Every damaged asset restored in place, every copy verified.")
    redeployed_at: datetime = Field(description="Replicas caught up, model servers reloaded.")
    validated_at: datetime = Field(description="Smoke tests pass in both regions, the lost objects are back.")
    restore_point: datetime = Field(description="TIME the assets were restored to (whole seconds, as S3).")
    detection_seconds: float = Field(description="Damage -> detected (not part of the time to restore).")
    decision_seconds: float = Field(description="Detected -> decided (the damage seen in both regions).")
    restore_seconds: float = Field(description="Decided -> restored (point-in-time restores in place).")
    redeploy_seconds: float = Field(description="Restored -> replicas caught up and model servers reloaded.")
    validation_seconds: float = Field(description="Redeployed -> smoke tests and data checks pass.")
    rto_seconds: float = Field(description="Time to restore: decision + restore + redeploy + validation.")


class ObjectiveResult(BaseModel):
    """One objective's verdict, with its margin (objective - measured; negative when breached)."""

    name: str = Field(description="RTO, RPO, failback.")
    objective_seconds: float | None = Field(None, description="None when the plan sets no bound.")
    measured_seconds: float | None = Field(None, description="None when not measured in this scenario.")
    met: bool | None = Field(None, description="None when not measured or not bounded.")
    margin_seconds: float | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "n/a" if self.measured_seconds is None else "measured"
        return "met" if self.met else "breached"


class Phase(BaseModel):
    """A coloured bar on the timeline."""

    name: str = Field(description="detection, decision, automation, validation, restore, failback, ...")
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())


class Marker(BaseModel):
    """A labelled instant on the timeline."""

    name: str = Field(description="fault, alarm, decision, switch, validated, failback, refused, ...")
    at: datetime
    label: str = ""


class StepTiming(BaseModel):
    """One state of an execution the drill caused, from its Step Functions history."""

    execution: str = Field(description="failover or failback.")
    name: str
    type: str
    entered_at: datetime
    duration_seconds: float | None
    attempts: int = 0
    errors: int = 0


class TrendPoint(BaseModel):
    drill_id: str
    at: datetime
    scenario: str
    verdict: str
    rto_seconds: float | None = None
    rpo_seconds: float | None = None


class DrillSummary(BaseModel):
    """What the ledger keeps of a drill (and GET /drills lists)."""

    drill_id: str
    workload: str
    subject: str = Field(description="The workload actually broken (the plan's drill target, or itself).")
    mode: DrillMode
    scenario: DrillScenario
    verdict: DrillVerdict
    reason: str
    started_at: datetime
    ended_at: datetime | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    failback_seconds: float | None = None
    evidence: dict[str, str] = Field(
        default_factory=dict, description="Evidence bucket keys: record, markdown, html."
    )


class DrillRecord(BaseModel):
    """Everything a drill measured and decided: the evidence the report is rendered from."""

    drill_id: str
    workload: str
    subject: str
    mode: DrillMode
    scenario: DrillScenario
    expectation: Expectation
    requested_by: str
    reason: str
    started_at: datetime
    ended_at: datetime | None = None
    verdict: DrillVerdict = "interrupted"
    verdict_reason: str = ""
    behaviour: Behaviour | None = None
    as_expected: bool | None = None
    faults: list[str] = Field(default_factory=list, description="What was injected, in order.")
    markers: list[Marker] = Field(default_factory=list)
    phases: list[Phase] = Field(default_factory=list)
    rto: RtoBreakdown | None = None
    rpo: RpoMeasurement | None = None
    objectives: list[ObjectiveResult] = Field(default_factory=list)
    failover_execution: str | None = None
    failover_outcome: str | None = None
    failover_reason: str | None = None
    failback_execution: str | None = None
    failback_outcome: str | None = None
    failback_seconds: float | None = None
    detected_by: list[str] = Field(
        default_factory=list, description="data-corruption: what saw the damage (smoke tests, data checks)."
    )
    recovery_action: str | None = Field(
        None, description="data-corruption: what the damage called for (restore, failover, ...)."
    )
    recovery_reason: str | None = None
    restore: RestoreBreakdown | None = None
    restored_assets: list[AssetRestore] = Field(default_factory=list)
    restore_outcome: str | None = Field(
        None, description="data-corruption: restored, or not-detected, not-restored, failed, unvalidated."
    )
    restore_problems: list[str] = Field(
        default_factory=list, description="What was still wrong when the restore's validation gave up."
    )
    steps: list[StepTiming] = Field(default_factory=list)
    decisions: list[dict[str, Any]] = Field(
        default_factory=list, description="Ledger entries written during the drill, oldest first."
    )
    alarms: list[dict[str, Any]] = Field(
        default_factory=list, description="Trigger alarm state changes the drill saw: {alarm, state, at}."
    )
    leftovers: list[str] = Field(
        default_factory=list,
        description="What the scenario left wrong, seen before the cleanup ran (any fails the drill).",
    )
    cleanup: list[str] = Field(default_factory=list, description="What the cleanup restored.")
    trend: list[TrendPoint] = Field(default_factory=list, description="Previous drills, oldest first.")
    plan_revision: str | None = Field(
        None, description="First 12 hex digits of the SHA-256 of the drilled plan, as loaded: its revision."
    )
    plan_rto_seconds: float | None = Field(None, description="The plan's RTO objective.")
    plan_rpo_seconds: float | None = Field(None, description="The plan's RPO objective.")
    asset_rpos: dict[str, float] = Field(
        default_factory=dict, description="Each asset's RPO objective (its own, else the plan's), seconds."
    )
    evidence: dict[str, str] = Field(default_factory=dict)
    report_paths: dict[str, str] = Field(default_factory=dict, description="Local files written (CLI).")

    def summary(self) -> DrillSummary:
        return DrillSummary(
            drill_id=self.drill_id,
            workload=self.workload,
            subject=self.subject,
            mode=self.mode,
            scenario=self.scenario,
            verdict=self.verdict,
            reason=self.verdict_reason,
            started_at=self.started_at,
            ended_at=self.ended_at,
            rto_seconds=(
                self.rto.rto_seconds if self.rto else self.restore.rto_seconds if self.restore else None
            ),
            rpo_seconds=self.rpo.rpo_seconds if self.rpo else None,
            failback_seconds=self.failback_seconds,
            evidence=self.evidence,
        )

    def objective(self, name: str) -> ObjectiveResult | None:
        return next((o for o in self.objectives if o.name == name), None)


# -- the API boundary --------------------------------------------------------------------------------------
class DrillBody(BaseModel):
    """POST /workloads/{workload}/drills (the body is optional)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    scenario: DrillScenario | None = Field(None, description="The fault; default: the plan's drill.scenario.")
    live: bool = Field(
        False, description="Break production itself (AWS). Needs `confirm` set to the workload's name."
    )
    confirm: str | None = Field(None, max_length=64, description="The workload's name, with live.")
    reason: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="Why (recorded in the ledger with your IAM identity).",
    )


class DrillsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workload: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$", description="Only this workload's drills."
    )
    limit: int = Field(20, ge=1, le=100, description="Newest first, at most this many.")


class DrillStarted(BaseModel):
    """A drill was requested: it runs asynchronously; its record appears at GET /drills/{drill_id}."""

    drill_id: str
    workload: str
    subject: str = Field(description="The plan the drill breaks (the drill target, or the workload).")
    mode: DrillMode
    scenario: DrillScenario
    requested_by: str
    status: Literal["requested"] = "requested"


class DrillList(BaseModel):
    drills: list[DrillSummary] = Field(description="Finished drills, newest first.")
