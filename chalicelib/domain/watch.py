"""A failover or failback execution as an operator watches it: a pure view built from its history.

`watch_view` reads the steps of an execution (`domain.history.steps_from_history`), its plan, its ledger
entries and the time, and says what is happening in words: the phase, step k of n, the share of traffic per
region, the bake time left, the gate verdicts, what waits for a person, the RTO clock against the objective,
and, once it has ended, one verdict line. The state machines' state names never appear in it (an unknown
state reads as "working"). The CLI's `lifeboat watch` renders it; a dashboard can render the same view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from chalicelib.models.durations import format_duration, format_seconds
from chalicelib.models.ledger import LedgerEntry
from chalicelib.models.plan import DRPlan

Kind = Literal["failover", "failback"]
Outcome = Literal["running", "ok", "refused", "breached", "failed"]

# Step Functions statuses that mean the execution is over.
ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")

# What each state of the failover machine is doing, as a person would say it ({secondary}, {primary}: the
# regions). A state not listed reads as "working": a new state never leaks its name.
FAILOVER_PHASES: dict[str, str] = {
    "HasTrigger": "starting",
    "WaitSustain": "waiting out the sustain window (the alarms must hold)",
    "WaitRemainingSustain": "waiting out the sustain window (the alarms must hold)",
    "RecheckQuorum": "re-checking that the alarms still agree",
    "QuorumHeld": "re-checking that the alarms still agree",
    "ConfirmOutage": "confirming the outage: smoke-testing {primary}",
    "PrimaryStillHealthy": "confirming the outage: smoke-testing {primary}",
    "AcquireLock": "taking the workload's lock",
    "SmokeTestBackup": "smoke-testing {secondary} before moving traffic",
    "BackupHealthy": "smoke-testing {secondary} before moving traffic",
    "IsGraceful": "{secondary} passed its smoke tests",
    "CheckReplication": "waiting for replication to {secondary} to catch up",
    "ReplicationCaughtUp": "waiting for replication to {secondary} to catch up",
    "WaitForReplication": "waiting for replication to {secondary} to catch up",
    "ShiftTraffic": "moving all traffic to {secondary}",
    "VerifyTraffic": "reading the traffic weights back",
    "SmokeTestAfterSwitch": "validating {secondary} with smoke tests",
    "SwitchValidated": "validating {secondary} with smoke tests",
    "RecordFailover": "recording the measured RTO",
    "ConcludeCompleted": "recording the outcome and notifying",
    "Conclude": "the run failed: reconciling traffic, recording and notifying",
    "Suppress": "no failover needed: recording why",
    "RefuseBackupUnhealthy": "refusing: {secondary} failed its smoke tests",
    "ReleaseLock": "releasing the workload's lock",
    "Outcome": "finishing",
}
# The failover's stages, in order, for "stage k of n" (the states of each stage).
FAILOVER_STAGES: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "sustain",
        frozenset({"HasTrigger", "WaitSustain", "WaitRemainingSustain", "RecheckQuorum", "QuorumHeld"}),
    ),
    ("confirm", frozenset({"ConfirmOutage", "PrimaryStillHealthy"})),
    ("check backup", frozenset({"AcquireLock", "SmokeTestBackup", "BackupHealthy", "IsGraceful"})),
    ("replication", frozenset({"CheckReplication", "ReplicationCaughtUp", "WaitForReplication"})),
    ("switch", frozenset({"ShiftTraffic", "VerifyTraffic"})),
    ("validate", frozenset({"SmokeTestAfterSwitch", "SwitchValidated"})),
    ("record", frozenset({"RecordFailover", "ConcludeCompleted", "Conclude", "Suppress"})),
)

FAILBACK_PHASES: dict[str, str] = {
    "AcquireLock": "taking the workload's lock",
    "CheckReadiness": "checking {primary} is ready (smoke tests, same model, writes replicated back)",
    "PrimaryReady": "checking {primary} is ready (smoke tests, same model, writes replicated back)",
    "RefuseNotReady": "refusing: {primary} is not ready",
    "RequestApproval": "waiting for approval",
    "Approved": "approval received",
    "ApprovalRejected": "approval rejected: recording",
    "ApprovalTimedOut": "approval timed out: recording",
    "Init": "starting the rollout",
    "DrillBake": "starting the rollout",
    "ApplyDrillBake": "starting the rollout",
    "ShiftStep": "moving traffic to {primary}",
    "VerifyStep": "reading the traffic weights back",
    "CheckBake": "baking",
    "BakeAction": "baking",
    "Bake": "baking",
    "EvaluateGates": "checking the gates (alarms and smoke tests on {primary})",
    "GateVerdict": "checking the gates (alarms and smoke tests on {primary})",
    "FinalValidation": "final validation at 100% on {primary}",
    "FinalVerdict": "final validation at 100% on {primary}",
    "Paused": "paused by an operator",
    "AwaitDecision": "waiting for a decision: a gate was inconclusive",
    "Rollback": "rolling back: all traffic to {secondary}",
    "VerifyRollback": "rolling back: reading the traffic weights back",
    "ConcludeRolledBack": "rolled back: recording and notifying",
    "RecordFailback": "recording the failback's duration",
    "ConcludeCompleted": "recording the outcome and notifying",
    "Conclude": "the run failed: all traffic back to {secondary}, recording and notifying",
    "ReleaseLock": "releasing the workload's lock",
    "Outcome": "finishing",
}
BAKE_STATES = frozenset({"CheckBake", "BakeAction", "Bake"})
WAITS = {"RequestApproval": "approval", "Paused": "pause", "AwaitDecision": "decision"}


class GateView(BaseModel):
    share: int = Field(description="Share of traffic on the primary when the gates were evaluated (percent).")
    final: bool = Field(description="The final validation at 100%.")
    outcome: str = Field(description="pass, fail or inconclusive.")
    reason: str


class PendingView(BaseModel):
    kind: str = Field(description="approval, pause or decision.")
    reason: str
    since: datetime
    expires_at: datetime | None
    commands: list[str] = Field(description="What the operator can run now.")


class WatchView(BaseModel):
    """One moment of an execution, in words. `summary()` is the line non-TTY output prints on a change."""

    workload: str
    kind: Kind
    execution: str = Field(description="The execution's name (what the controls and `lifeboat watch` take).")
    status: str = Field(description="Step Functions status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED.")
    outcome: Outcome
    phase: str = Field(description="What it is doing now, in words.")
    step: int | None = Field(None, description="Step (failback) or stage (failover) now, from 1.")
    steps: int | None = Field(None, description="How many steps or stages there are.")
    stage: str | None = Field(None, description="The failover stage's short name.")
    weights: dict[str, int] | None = Field(None, description="Share of traffic per region, last read back.")
    primary: str | None = Field(None, description="The primary region (where a failback moves traffic).")
    share: int | None = Field(None, description="Failback: the primary's share at this step (percent).")
    countdown: str | None = Field(
        None, description="What the current wait has left, in words (bake, sustain window, a human's wait)."
    )
    bake_left_seconds: float | None = Field(None, description="While baking: seconds until the gates.")
    bake_seconds: float | None = Field(None, description="The bake time per step.")
    gates: list[GateView] = Field(default_factory=list)
    pending: PendingView | None = None
    decisions: list[str] = Field(default_factory=list, description="Who decided what, in words.")
    elapsed_seconds: float = Field(description="Since the clock started (failover: first alarm or request).")
    objective_seconds: float | None = Field(None, description="RTO objective (failover).")
    rto_seconds: float | None = Field(None, description="Measured RTO, once recorded.")
    verdict: str | None = Field(None, description="One line, once the execution has ended.")

    def summary(self) -> str:
        """What changed, in one line (without the ticking clocks, so it only changes when something does)."""
        parts = [self.phase]
        if self.step is not None and self.steps:
            label = "step" if self.kind == "failback" else "stage"
            parts.insert(0, f"{label} {self.step} of {self.steps}")
        if self.weights:
            parts.append(traffic_words(self.weights))
        if self.gates:
            g = self.gates[-1]
            parts.append(f"gates at {g.share}%: {g.outcome}")
        if self.pending is not None:
            parts.append(" or ".join(self.pending.commands))
        return " · ".join(parts)

    def now(self) -> str:
        """What it is doing now with what the current wait has left, or how it ended."""
        if self.verdict:
            return self.verdict
        return self.phase + (f" ({self.countdown})" if self.countdown else "")

    def progress(self) -> str:
        """Step k of n (a failback, with the primary's share), stage k of n (a failover), else ""."""
        if self.kind == "failback" and self.steps:
            if self.step is None:
                return f"step 0 of {self.steps} (no traffic moved yet)"
            share = f" ({self.share}% on {self.primary})" if self.share is not None and self.primary else ""
            return f"step {self.step} of {self.steps}{share}"
        if self.step is not None and self.steps:
            return f"stage {self.step} of {self.steps}" + (f" ({self.stage})" if self.stage else "")
        return ""

    @property
    def within_objective(self) -> bool | None:
        """The RTO (measured, else the clock so far) against the objective; None without an objective."""
        if self.objective_seconds is None:
            return None
        spent = self.rto_seconds if self.rto_seconds is not None else self.elapsed_seconds
        return spent <= self.objective_seconds

    def clock(self) -> str:
        """The RTO clock against the objective (a failover), or the time since it started."""
        spent = self.rto_seconds if self.rto_seconds is not None else self.elapsed_seconds
        if self.objective_seconds is None:
            return f"{format_seconds(spent)} since it started"
        left = self.objective_seconds - spent
        word = "measured RTO" if self.rto_seconds is not None else "RTO clock"
        tail = f", {format_seconds(left)} to spare" if left >= 0 else f", over by {format_seconds(-left)}"
        return f"{word} {format_seconds(spent)} of {format_seconds(self.objective_seconds)}{tail}"


def failover_steps_in_words(plan: DRPlan, states: Sequence[str]) -> list[str]:
    """A failover's path (state names, as a dry run lists them) as the steps a person reads, each once."""
    regions = {"primary": plan.regions.primary, "secondary": plan.regions.secondary}
    out: list[str] = []
    for state in states:
        words = FAILOVER_PHASES.get(state)
        if words is None or words in ("starting", "finishing"):
            continue  # the path's choices and its end say nothing a person needs here
        words = words.format(**regions)
        if not out or out[-1] != words:
            out.append(words)
    return out


def traffic_words(weights: Mapping[str, int]) -> str:
    return ", ".join(f"{region} {share}%" for region, share in weights.items())


def _by_region(plan: DRPlan, weights: Any) -> dict[str, int] | None:
    if not isinstance(weights, Mapping):
        return None
    out: dict[str, int] = {}
    for role in ("primary", "secondary"):
        value = weights.get(role)
        if isinstance(value, int | float):
            out[plan.region_of(role)] = int(value)
    return out or None


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def who(actor: str) -> str:
    """An IAM identity as people say it: the last part of the ARN (alice, operators/bob)."""
    if actor.startswith("arn:"):
        tail = actor.split(":", 5)[-1]
        kind, _, rest = tail.partition("/")
        if kind == "assumed-role" and rest:
            return rest.split("/", 1)[-1] if "/" in rest else rest
        return rest or tail
    return actor


def _decisions(entries: Sequence[LedgerEntry]) -> list[str]:
    words = {
        "failback-approved": "approved",
        "failback-rejected": "rejected",
        "failback-paused": "paused",
        "failback-resumed": "resumed",
        "failback-fast-tracked": "fast-tracked",
        "failback-aborted": "aborted",
        "failback-requested": "requested",
        "failover-requested": "requested",
    }
    out = []
    for e in entries:
        if e.kind != "operator":
            continue
        verb = words.get(e.outcome, e.outcome.replace("-", " "))
        out.append(f"{verb} by {who(e.actor)} at {e.at:%H:%M:%S}" + (f": {e.reason}" if e.reason else ""))
    return out


def watch_view(
    *,
    kind: Kind,
    plan: DRPlan,
    name: str,
    status: str,
    started_at: datetime,
    stopped_at: datetime | None,
    steps: Sequence[Any],
    execution_input: Any,
    entries: Sequence[LedgerEntry] = (),
    now: datetime,
    error: str | None = None,
    traffic: Mapping[str, int] | None = None,
) -> WatchView:
    """The view of one execution. `steps`: `steps_from_history` of its history (oldest first); `entries`:
    the ledger entries about it (oldest first); `now`: the time the view is for; `traffic`: the weights per
    role as last read (shown until the history has weights of its own)."""
    fields = execution_input if isinstance(execution_input, dict) else {}
    regions = {"primary": plan.regions.primary, "secondary": plan.regions.secondary}
    results: dict[str, Any] = {}  # state name -> latest result
    weights = _by_region(plan, traffic)
    current = steps[-1] if steps else None
    for step in steps:
        result = step.result
        if isinstance(result, dict):
            results[step.name] = result
            for key in ("weights", "traffic"):
                found = _by_region(plan, result.get(key))
                if found is not None:
                    weights = found
    ended = status in ENDED
    end = stopped_at if ended and stopped_at else now
    view: dict[str, Any] = {
        "workload": plan.workload,
        "kind": kind,
        "execution": name,
        "status": status,
        "weights": weights,
        "primary": plan.regions.primary,
        "decisions": _decisions(entries),
    }
    if kind == "failover":
        view.update(_failover(plan, fields, steps, results, current, regions, started_at, end))
    else:
        view.update(_failback(plan, name, fields, steps, results, current, regions, started_at, end, now))
    outcome, verdict = _verdict(kind, plan, status, results, view, error) if ended else ("running", None)
    view["outcome"], view["verdict"] = outcome, verdict
    if ended:
        view["phase"] = "ended"
        view["pending"] = None
        view["bake_left_seconds"] = None
        view["countdown"] = None
    return WatchView(**view)


def _phase(table: Mapping[str, str], current: Any, regions: Mapping[str, str]) -> str:
    if current is None:
        return "starting"
    if current.type in ("Succeed", "Fail"):
        return "finishing"
    if current.name in WAITS and current.exited_at is not None:
        return "decision received: carrying on"
    return table.get(current.name, "working").format(**regions)


def _failover(
    plan: DRPlan,
    fields: Mapping[str, Any],
    steps: Sequence[Any],
    results: Mapping[str, Any],
    current: Any,
    regions: Mapping[str, str],
    started_at: datetime,
    end: datetime,
) -> dict[str, Any]:
    trigger = fields.get("trigger") if isinstance(fields.get("trigger"), dict) else None
    sustained = trigger is not None and plan.trigger.sustain > timedelta(0)
    graceful = fields.get("mode", "graceful") == "graceful" and any(a.kind == "s3" for a in plan.assets)
    stages = [
        label
        for label, _ in FAILOVER_STAGES
        if (label != "sustain" or sustained)
        and (label != "confirm" or (trigger is not None and plan.trigger.confirmation_probe))
        and (label != "replication" or graceful)
    ]
    state = current.name if current is not None else None
    phase = _phase(FAILOVER_PHASES, current, regions)
    countdown: str | None = None
    stage = next((label for label, states in FAILOVER_STAGES if state in states and label in stages), None)
    if state in ("WaitSustain", "WaitRemainingSustain") and trigger is not None:
        until = _parse_time(trigger.get("sustain_until"))
        if until is not None:
            countdown = f"{format_seconds(max(0.0, (until - end).total_seconds()))} left"
    if state in FAILOVER_STAGES[3][1] and "CheckReplication" in results:
        pending = results["CheckReplication"].get("pending_objects")
        if pending:
            phase += f" ({pending} object{'s' if pending != 1 else ''} still to copy)"
    # RTO: from the first alarm of the quorum (alarm-started) or the request (operator-started).
    clock_start = _parse_time(trigger.get("first_alarm_at")) if trigger else None
    clock_start = clock_start or started_at
    measured = results.get("RecordFailover", {}).get("rto_seconds")
    return {
        "phase": phase,
        "countdown": countdown,
        "stage": stage,
        "step": stages.index(stage) + 1 if stage in stages else None,
        "steps": len(stages),
        "elapsed_seconds": max(0.0, (end - clock_start).total_seconds()),
        "objective_seconds": plan.rto.total_seconds(),
        "rto_seconds": float(measured) if isinstance(measured, int | float) else None,
    }


def _failback(
    plan: DRPlan,
    name: str,
    fields: Mapping[str, Any],
    steps: Sequence[Any],
    results: Mapping[str, Any],
    current: Any,
    regions: Mapping[str, str],
    started_at: datetime,
    end: datetime,
    now: datetime,
) -> dict[str, Any]:
    policy = plan.failback
    state = current.name if current is not None else None
    phase = _phase(FAILBACK_PHASES, current, regions)
    countdown: str | None = None
    bake_seconds = fields.get("bake_seconds", policy.bake.total_seconds())
    shares = list(policy.steps)
    step_no: int | None = None
    share: int | None = None
    gates: list[GateView] = []
    for step in steps:
        result = step.result
        if not isinstance(result, dict):
            continue
        if step is current and step.name == "ShiftStep":
            phase = f"moved {result.get('primary')}% of traffic to {regions['primary']}"
        if step.name == "ShiftStep" and isinstance(result.get("index"), int):
            step_no, share = result["index"] + 1, int(result.get("primary", 0))
        elif step.name in ("EvaluateGates", "FinalValidation") and "outcome" in result:
            gates.append(
                GateView(
                    share=share or 0,
                    final=step.name == "FinalValidation",
                    outcome=str(result["outcome"]),
                    reason=str(result.get("reason", "")),
                )
            )
    if state == "ShiftStep" and current.result is None and (step_no or 0) < len(shares):
        phase = f"moving {shares[step_no or 0]}% of traffic to {regions['primary']}"
    bake_left: float | None = None
    bake = results.get("CheckBake", {})
    if state in BAKE_STATES:
        phase = f"baking at {share}% for {format_seconds(float(bake_seconds))}"
    if state in BAKE_STATES and step_no is not None and bake.get("step") == step_no - 1:  # this step's bake
        until = _parse_time(bake.get("bake_until"))
        if until is not None:
            bake_left = max(0.0, (until - now).total_seconds())
            countdown = f"{format_seconds(bake_left)} left"
    pending: PendingView | None = None
    if state in WAITS and current is not None and current.exited_at is None:
        wait = WAITS[state]
        reason = {
            "approval": str(results.get("CheckReadiness", {}).get("reason", "")),
            "pause": "an operator paused the failback",
            "decision": gates[-1].reason if gates else "",
        }[wait]
        verbs = ("approve", "reject") if wait == "approval" else ("resume", "abort")
        commands = [f"lifeboat {verb} {name}" for verb in verbs]
        pending = PendingView(
            kind=wait,
            reason=reason,
            since=current.entered_at,
            expires_at=current.entered_at + policy.approval_timeout,
            commands=commands,
        )
        left = (
            format_seconds(max(0.0, (pending.expires_at - now).total_seconds())) if pending.expires_at else ""
        )
        phase = {
            "approval": "waiting for approval",
            "pause": "paused by an operator",
            "decision": "waiting for a decision: a gate was inconclusive",
        }[wait]
        countdown = f"{left} before it " + ("gives up" if wait == "approval" else "rolls back")
    return {
        "phase": phase,
        "countdown": countdown,
        "step": step_no,
        "steps": len(shares),
        "share": share,
        "bake_left_seconds": bake_left,
        "bake_seconds": float(bake_seconds),
        "gates": gates,
        "pending": pending,
        "elapsed_seconds": max(0.0, (end - started_at).total_seconds()),
    }


def _verdict(
    kind: Kind,
    plan: DRPlan,
    status: str,
    results: Mapping[str, Any],
    view: Mapping[str, Any],
    error: str | None,
) -> tuple[Outcome, str]:
    conclusion = next(
        (
            results[name]
            for name in (
                "ConcludeCompleted",
                "ConcludeRolledBack",
                "Conclude",
                "Suppress",
                "RefuseBackupUnhealthy",
                "RefuseNotReady",
                "ApprovalRejected",
                "ApprovalTimedOut",
            )
            if name in results and "status" in results[name]
        ),
        None,
    )
    weights = view.get("weights")
    serving = _serving(weights)
    if conclusion is None:
        words = {"ABORTED": "stopped", "TIMED_OUT": "timed out", "FAILED": "failed"}.get(
            status, status.lower()
        )
        tail = f"; {serving}" if serving else ""
        return "failed", f"{kind} {words} before it concluded ({error or 'no outcome recorded'}){tail}"
    outcome = str(conclusion.get("status"))
    reason = str(conclusion.get("reason", ""))
    region = conclusion.get("active_region")
    if kind == "failover":
        if outcome == "completed" and region:
            rto, objective = view.get("rto_seconds"), view.get("objective_seconds")
            clock = f"RTO {format_seconds(rto)} of {format_duration(plan.rto)}" if rto is not None else ""
            if rto is not None and objective is not None and rto > objective:
                return (
                    "breached",
                    f"now serving from {region}, but RTO {format_seconds(rto)} breached the objective "
                    f"of {format_duration(plan.rto)}",
                )
            return "ok", f"now serving from {region}" + (f", {clock}" if clock else "")
        if outcome == "suppressed":
            return "ok", f"no failover needed: {reason}"
        if outcome == "refused":
            return "refused", _said(reason, "failover refused", "failover refused")
        return "failed", _said(reason, "failover", f"failover {outcome}")
    if outcome == "completed" and region:
        took = view.get("elapsed_seconds")
        count = len(plan.failback.steps)
        return "ok", f"now serving from {region} again, failback took {format_seconds(took)} in {count} steps"
    if outcome == "refused":
        return "refused", _said(reason, "failback refused", "failback refused")
    if outcome == "rolled_back":
        return "failed", _said(reason, "failback rolled back", "failback rolled back")
    return "failed", _said(reason, "failback", f"failback {outcome.replace('_', ' ')}")


def _said(reason: str, start: str, prefix: str) -> str:
    """The conclusion's reason, led by what happened unless it already says so."""
    return reason if reason.startswith(start) else f"{prefix}: {reason}"


def _serving(weights: Mapping[str, int] | None) -> str:
    if not weights:
        return ""
    full = [region for region, share in weights.items() if share == 100]
    return f"{full[0]} serves all traffic" if full else f"traffic split: {traffic_words(weights)}"
