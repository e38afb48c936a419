"""Failback decisions as pure functions: is the primary ready, what do the gates say, how long to bake, and
may failback start on its own. Time always comes in as an argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from chalicelib.domain.listings import Difference
from chalicelib.domain.smoke import SmokeVerdict
from chalicelib.domain.triggers import execution_name
from chalicelib.models.alarms import AlarmSnapshot
from chalicelib.models.durations import format_duration
from chalicelib.models.ledger import WorkloadState
from chalicelib.models.plan import DRPlan, FailbackPolicy

GateOutcome = Literal["pass", "fail", "inconclusive"]

# A gate fails outright when at least this share of the smoke probes got no answer (the primary looks down);
# fewer timeouts are inconclusive: not enough evidence either way, so a human decides instead of Lifeboat.
TIMEOUT_FAILURE_SHARE = 0.5

# Bake pacing. A Step Functions Wait cannot be interrupted, so a bake is cut into chunks with a control check
# (pause, fast-track) between them. Chunks are at most MAX_BAKE_CHUNK long so controls act within a minute,
# at least a tenth of the bake so short bakes stay responsive, and never so many per execution that the
# history approaches its 25,000-event limit: MAX_BAKE_CHECKS checks cost ~9,000 events at most.
MIN_BAKE_CHUNK = timedelta(seconds=1)
MAX_BAKE_CHUNK = timedelta(seconds=60)
CHECKS_PER_BAKE = 10
MAX_BAKE_CHECKS = 1000
EVENTS_PER_BAKE_CHECK = 9  # Wait (2) + Lambda task (5) + Choice (2)
EVENTS_PER_STEP = 26  # shift, verify, first bake check, gates (5 each) + three Choices (2 each)
EVENTS_FIXED = 80  # lock, readiness, approval, init, record, conclude, release, outcome
HISTORY_LIMIT = 25_000


# -- readiness ---------------------------------------------------------------------------------------------
class Check(BaseModel):
    passed: bool
    reason: str


class ModelIdentity(BaseModel):
    """What an endpoint says it serves. Fields it does not report stay None."""

    role: str = Field(description="primary or secondary.")
    region: str
    version: str | None = Field(None, description="Model version (model_version, model package version).")
    sha256: str | None = Field(None, description="Artifact checksum (model_sha256, S3 object metadata).")
    artifact: str | None = Field(
        None,
        description="Region-neutral artifact name: model data key without its (regional) bucket, or the "
        "model package group/version.",
    )
    source: str = Field("", description="Where it was read: ping, prediction, endpoint-config.")
    error: str | None = Field(None, description="Why it could not be read.")

    def describe(self) -> str:
        parts = [
            f"version {self.version}" if self.version else "",
            f"artifact {self.artifact}" if self.artifact else "",
        ]
        if self.sha256:
            parts.append(f"sha256 {self.sha256[:12]}")
        return ", ".join(p for p in parts if p) or "nothing identifiable"


def compare_models(primary: ModelIdentity, secondary: ModelIdentity) -> Check:
    """The primary must serve exactly what the secondary serves: every identifier both report must match."""
    for side in (primary, secondary):
        if side.error:
            return Check(
                passed=False, reason=f"cannot tell what the {side.role} ({side.region}) serves: {side.error}"
            )
    compared = []
    for field in ("sha256", "version", "artifact"):
        a, b = getattr(primary, field), getattr(secondary, field)
        if a is None or b is None:
            continue
        compared.append(field)
        if a != b:
            return Check(
                passed=False,
                reason=f"model mismatch: the primary ({primary.region}) serves {primary.describe()}, "
                f"the secondary ({secondary.region}) serves {secondary.describe()}",
            )
    if not compared:
        return Check(
            passed=False,
            reason=f"cannot compare models: the primary reports {primary.describe()}, "
            f"the secondary {secondary.describe()}",
        )
    return Check(passed=True, reason=f"both serve {primary.describe()} (compared {', '.join(compared)})")


class ReplicationBack(BaseModel):
    """Reverse replication of one S3 asset: writes made on the secondary while it served."""

    asset: str
    passed: bool
    pending: int = Field(description="Objects on the secondary not (yet) on the primary.")
    lagging: int = Field(description="Pending objects older than the asset's RPO.")
    oldest_pending_at: datetime | None = None
    reason: str


def replication_back(
    asset: str, diffs: Iterable[Difference], rpo: timedelta, now: datetime
) -> ReplicationBack:
    """`diffs` compare the secondary copy (as source) with the primary copy (as replica).

    A write is pending when the primary lacks it or holds an older version; it is lagging (a failed check)
    when it is older than the RPO, since replication should have carried it back by then.
    """
    pending = lagging = 0
    oldest: datetime | None = None
    cutoff = now - rpo
    for diff in diffs:
        if diff.source is None:
            continue  # only on the primary: not a write made on the secondary
        if (
            diff.kind == "different"
            and diff.replica
            and diff.source.last_modified <= diff.replica.last_modified
        ):
            continue  # the primary holds the newer copy
        pending += 1
        written = diff.source.last_modified
        if written < cutoff:
            lagging += 1
        if oldest is None or written < oldest:
            oldest = written
    if lagging:
        reason = (
            f"{asset}: {lagging} writes made on the secondary are older than the {format_duration(rpo)} RPO "
        )
        reason += "and not replicated back"
    elif pending:
        reason = (
            f"{asset}: {pending} recent writes still replicating back, within the {format_duration(rpo)} RPO"
        )
    else:
        reason = f"{asset}: the primary holds every write made on the secondary"
    return ReplicationBack(
        asset=asset,
        passed=lagging == 0,
        pending=pending,
        lagging=lagging,
        oldest_pending_at=oldest,
        reason=reason,
    )


# -- gates ---------------------------------------------------------------------------------------------------
def _is_timeout(reason: str) -> bool:
    text = reason.lower()
    return text.startswith("no answer") and ("timed out" in text or "timeout" in text)


def smoke_gate(verdict: SmokeVerdict) -> tuple[GateOutcome, str]:
    """A wrong answer or an HTTP error fails; a few timeouts (below the failure share) are inconclusive."""
    if verdict.passed:
        return "pass", f"smoke tests pass on the primary: {verdict.reason}"
    failed = [c for c in verdict.cases if not c.passed]
    timeouts = [c for c in failed if _is_timeout(c.reason)]
    definite = [c for c in failed if not _is_timeout(c.reason)]
    if definite or not failed:
        # Wrong predictions, errors, or every answer right but too slow: all are real regressions.
        return "fail", f"smoke tests fail on the primary: {verdict.reason}"
    total = max(1, len(verdict.cases))
    threshold = max(1, math.ceil(total * TIMEOUT_FAILURE_SHARE))
    if len(timeouts) >= threshold:
        return "fail", f"{len(timeouts)} of {total} smoke probes timed out on the primary (looks down)"
    return (
        "inconclusive",
        f"{len(timeouts)} of {total} smoke probes timed out on the primary, below the failure threshold of "
        f"{threshold}: not enough evidence to go on or to roll back",
    )


class GateVerdict(BaseModel):
    outcome: GateOutcome = Field(description="pass: next step; fail: roll back; inconclusive: ask a human.")
    reason: str
    alarms: dict[str, str] = Field(
        description="Gate alarm -> state (MISSING when CloudWatch has no such alarm)."
    )
    smoke: str = Field(description="Smoke-test outcome on the primary.")
    smoke_reason: str


def evaluate_gates(
    gate_alarms: Sequence[str], snapshots: Mapping[str, AlarmSnapshot], smoke: SmokeVerdict
) -> GateVerdict:
    """Fail on any gate alarm in ALARM or a failing smoke test; inconclusive on missing data; else pass."""
    states: dict[str, str] = {
        name: (snapshots[name].state if name in snapshots else "MISSING") for name in gate_alarms
    }
    smoke_outcome, smoke_reason = smoke_gate(smoke)
    firing = [n for n, s in states.items() if s == "ALARM"]
    unknown = [f"{n} is {s}" for n, s in states.items() if s in ("INSUFFICIENT_DATA", "MISSING")]

    def verdict(outcome: GateOutcome, reason: str) -> GateVerdict:
        return GateVerdict(
            outcome=outcome, reason=reason, alarms=states, smoke=smoke_outcome, smoke_reason=smoke_reason
        )

    if firing:
        return verdict("fail", f"gate alarm in ALARM: {', '.join(firing)}")
    if smoke_outcome == "fail":
        return verdict("fail", smoke_reason)
    if unknown or smoke_outcome == "inconclusive":
        why = [*unknown, *([smoke_reason] if smoke_outcome == "inconclusive" else [])]
        return verdict("inconclusive", "inconclusive gate: " + "; ".join(why))
    alarms = f"{len(states)} gate alarms OK" if states else "no gate alarms configured"
    return verdict("pass", f"{alarms}; {smoke_reason}")


# -- steps and bake ------------------------------------------------------------------------------------------
def step_weights(primary_share: int) -> dict[str, int]:
    return {"primary": primary_share, "secondary": 100 - primary_share}


def pick_step(steps: Sequence[int], next_index: int, *, fast_track: bool) -> int:
    """Index of the step to apply: the next one, or straight to 100% when an operator fast-tracked."""
    if not steps:
        raise ValueError("a failback needs at least one step")
    if fast_track:
        return len(steps) - 1
    return min(max(next_index, 0), len(steps) - 1)


def bake_chunk_seconds(policy: FailbackPolicy) -> int:
    """Longest single Wait of a bake (see the pacing constants above)."""
    bake = policy.bake.total_seconds()
    if bake <= 0:
        return int(MIN_BAKE_CHUNK.total_seconds())
    chunk = min(MAX_BAKE_CHUNK.total_seconds(), max(MIN_BAKE_CHUNK.total_seconds(), bake / CHECKS_PER_BAKE))
    total = bake * len(policy.steps)
    chunk = max(chunk, total / MAX_BAKE_CHECKS)
    return max(1, math.ceil(chunk))


def bake_checks(policy: FailbackPolicy) -> int:
    """How many bake checks an uninterrupted execution makes (one per chunk, plus one per step)."""
    chunk = bake_chunk_seconds(policy)
    per_step = math.ceil(policy.bake.total_seconds() / chunk) + 1
    return per_step * len(policy.steps)


def history_estimate(policy: FailbackPolicy) -> int:
    """Upper bound of the history events of an execution that is not paused (pauses add ~8 each)."""
    return EVENTS_FIXED + EVENTS_PER_STEP * len(policy.steps) + EVENTS_PER_BAKE_CHECK * bake_checks(policy)


class BakeDecision(BaseModel):
    action: Literal["wait", "evaluate", "pause"]
    wait_seconds: int
    reason: str


def next_bake(
    now: datetime, bake_until: datetime, chunk_seconds: int, *, fast_track: bool, pause_requested: bool
) -> BakeDecision:
    """Between two chunks of a bake: pause if asked, stop baking when over or fast-tracked, else wait more."""
    if pause_requested:
        return BakeDecision(action="pause", wait_seconds=0, reason="an operator paused the failback")
    if fast_track:
        return BakeDecision(action="evaluate", wait_seconds=0, reason="fast-tracked: remaining bake skipped")
    left = (bake_until - now).total_seconds()
    if left <= 0:
        return BakeDecision(action="evaluate", wait_seconds=0, reason="bake complete")
    wait = max(1, min(chunk_seconds, math.ceil(left)))
    return BakeDecision(action="wait", wait_seconds=wait, reason=f"baking, {left:.0f}s left")


# -- auto failback -------------------------------------------------------------------------------------------
class AutoFailbackDecision(BaseModel):
    start: bool
    reason: str
    execution_name: str | None = Field(
        None, description="Deterministic name: one execution per healthy streak."
    )


def should_auto_failback(
    plan: DRPlan, state: WorkloadState, primary_healthy_since: datetime | None, now: datetime
) -> AutoFailbackDecision:
    """Start failback by itself only when the plan allows it, the workload is failed over, the cooldown is
    over and the primary has passed its smoke tests continuously for the healthy window."""
    policy = plan.failback
    if not policy.auto:
        return AutoFailbackDecision(start=False, reason="auto failback is off in the plan")
    if state.active_region != plan.regions.secondary:
        return AutoFailbackDecision(
            start=False, reason=f"not failed over ({state.active_region or 'unknown'} serves)"
        )
    last = state.last_transition_at()
    if last is not None and now < last + plan.trigger.cooldown:
        until = last + plan.trigger.cooldown
        return AutoFailbackDecision(start=False, reason=f"in cooldown until {until.isoformat()}")
    if primary_healthy_since is None:
        return AutoFailbackDecision(start=False, reason="the primary is not passing its smoke tests")
    healthy_for = now - primary_healthy_since
    if healthy_for < policy.healthy_window:
        return AutoFailbackDecision(
            start=False,
            reason=f"primary healthy for {format_duration(max(healthy_for, timedelta(0)))} of the "
            f"{format_duration(policy.healthy_window)} window",
        )
    return AutoFailbackDecision(
        start=True,
        reason=f"primary healthy since {primary_healthy_since.isoformat()} "
        f"(window {format_duration(policy.healthy_window)}), cooldown over",
        execution_name=execution_name("failback", plan.workload, primary_healthy_since),
    )
