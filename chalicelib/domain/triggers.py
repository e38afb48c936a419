"""Trigger policy: should an alarm state change start a failover? Never on a false positive.

Quorum (M of N named alarms in ALARM) must hold for the sustain window; a cooldown follows every failover
and failback; OK / INSUFFICIENT_DATA only ever cancel a pending decision. The failover state machine waits
out the sustain window itself and calls `recheck` before it acts, so a flapping alarm cannot get through.
An alarm whose state change a mute rule muted (its actions are silenced by AWS) never counts toward the
quorum: Lifeboat is one of those actions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from chalicelib.invariants import present
from chalicelib.models.alarms import AlarmSnapshot, AlarmStateChange
from chalicelib.models.ledger import WorkloadState
from chalicelib.models.plan import DRPlan, TriggerPolicy

Action = Literal["start", "suppress", "mute", "cancel", "ignore"]


class QuorumStatus(BaseModel):
    met: bool = Field(description="At least `needed` named alarms are in ALARM now.")
    in_alarm: list[str] = Field(description="Named alarms currently in ALARM, earliest first.")
    needed: int = Field(
        description="Alarms in ALARM needed: the plan's quorum, or fewer when some could not be read "
        "(`quorum_status`)."
    )
    of: int = Field(description="How many alarms the plan names.")
    first_alarm_at: datetime | None = Field(None, description="Earliest ALARM among the quorum (RTO start).")
    quorum_since: datetime | None = Field(
        None, description="When the quorum became true: the time the M-th alarm entered ALARM."
    )
    unreachable: list[str] = Field(
        default_factory=list,
        description="Named alarms whose region's CloudWatch could not be reached: state unknown.",
    )
    muted: list[str] = Field(
        default_factory=list,
        description="Named alarms in ALARM whose state change a mute rule muted: not counted.",
    )

    def describe(self) -> str:
        names = ", ".join(self.in_alarm) or "none"
        muted = f"; muted (not counted): {', '.join(self.muted)}" if self.muted else ""
        if not self.unreachable:
            return f"{len(self.in_alarm)} of {self.of} alarms in ALARM (quorum {self.needed}): {names}{muted}"
        readable = self.of - len(self.unreachable)
        return (
            f"{len(self.in_alarm)} of {readable} readable alarms in ALARM (quorum {self.needed}): {names}; "
            f"unreadable (region unreachable): {', '.join(self.unreachable)}{muted}"
        )


class TriggerDecision(BaseModel):
    """What to do about one alarm state change for one workload, and why."""

    workload: str = Field(description="The workload whose plan names the alarm.")
    alarm: str = Field(description="The alarm whose change was evaluated.")
    action: Action = Field(
        description="start a failover, suppress, mute (the alarm is muted and the quorum does not hold "
        "without it), cancel a pending one, or ignore."
    )
    reason: str = Field(description="Why, in words an operator understands.")
    quorum: QuorumStatus = Field(description="The quorum as evaluated.")
    sustain_until: datetime | None = Field(None, description="When the sustain window ends (start only).")
    execution_name: str | None = Field(None, description="Deterministic execution name (start only).")


def needed_alarms(policy: TriggerPolicy, unreachable: Collection[str] = ()) -> int:
    """How many of the plan's alarms must be in ALARM when `unreachable` ones cannot be read.

    An alarm in a region whose APIs are down is unknown: never evidence of health, never on its own
    evidence of an outage. The quorum is then judged on the alarms that can be read, and lowered to how
    many there are when that is fewer than the plan's quorum (M of N becomes min(M, readable)), so an
    outage that takes the primary's CloudWatch down with its endpoint does not leave Lifeboat blind and
    idle. Lowering the quorum gives up a second witness; the confirmation probe (an independent smoke test
    of the primary from the failover's region) is that witness then, so a plan without the probe keeps
    its full quorum. With no readable alarm the quorum cannot be met (0 is returned as "impossible").
    """
    missing = {name for name in unreachable if name in policy.alarms}
    readable = len(policy.alarms) - len(missing)
    if not missing:
        return policy.quorum
    if readable == 0:
        return 0
    if not policy.confirmation_probe:
        return policy.quorum
    return min(policy.quorum, readable)


def quorum_status(
    policy: TriggerPolicy, alarms: Mapping[str, AlarmSnapshot], unreachable: Collection[str] = ()
) -> QuorumStatus:
    """M of N named alarms in ALARM; with alarms that could not be read, the rule of `needed_alarms`. A muted
    alarm in ALARM is listed in `muted` and not counted."""
    missing = [name for name in policy.alarms if name in set(unreachable) and name not in alarms]
    alarming = [
        snap
        for name, snap in alarms.items()
        if name in policy.alarms and name not in missing and snap.state == "ALARM"
    ]
    firing = sorted((s for s in alarming if s.muted_by is None), key=lambda s: (s.since, s.name))
    needed = needed_alarms(policy, missing)
    met = needed > 0 and len(firing) >= needed
    return QuorumStatus(
        met=met,
        in_alarm=[s.name for s in firing],
        needed=needed or policy.quorum,
        of=len(policy.alarms),
        first_alarm_at=firing[0].since if met else None,
        quorum_since=firing[needed - 1].since if met else None,
        unreachable=missing,
        muted=sorted(s.name for s in alarming if s.muted_by is not None),
    )


def merge_snapshots(
    current: Iterable[AlarmSnapshot], change: AlarmStateChange | None
) -> dict[str, AlarmSnapshot]:
    """Alarm states read from CloudWatch, overridden by the event when the event is newer (and then muted
    when the event says a mute rule muted that state change: DescribeAlarms does not say)."""
    merged = {s.name: s for s in current}
    if change is not None:
        d = change.detail
        seen = merged.get(d.alarm_name)
        if seen is None or d.state.timestamp >= seen.since:
            mute = d.mute
            merged[d.alarm_name] = AlarmSnapshot(
                name=d.alarm_name,
                state=d.state.value,
                since=d.state.timestamp,
                muted_by=mute.muted_by if mute is not None else None,
            )
    return merged


_NAME_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def execution_name(kind: str, workload: str, anchor: datetime) -> str:
    """Deterministic, valid Step Functions name: the same quorum always maps to the same execution."""
    stamp = anchor.strftime("%Y%m%dT%H%M%S") + f"{anchor.microsecond // 1000:03d}"
    return _NAME_SAFE.sub("-", f"{kind}-{workload}-{stamp}")[:80]


def _cooldown_until(plan: DRPlan, state: WorkloadState) -> datetime | None:
    last = state.last_transition_at()
    return last + plan.trigger.cooldown if last is not None else None


def evaluate(
    change: AlarmStateChange,
    plan: DRPlan,
    alarms: Mapping[str, AlarmSnapshot],
    state: WorkloadState,
    now: datetime,
    *,
    unreachable: Collection[str] = (),
) -> TriggerDecision:
    """Decide what one alarm state change means for one workload's plan (`unreachable`: alarms whose
    region could not be read; see `needed_alarms`)."""
    alarm = change.detail.alarm_name
    status = quorum_status(plan.trigger, alarms, unreachable)

    def decide(
        action: Action, reason: str, *, sustain_until: datetime | None = None, name: str | None = None
    ) -> TriggerDecision:
        return TriggerDecision(
            workload=plan.workload,
            alarm=alarm,
            action=action,
            reason=reason,
            quorum=status,
            sustain_until=sustain_until,
            execution_name=name,
        )

    if alarm not in plan.trigger.alarms:
        return decide("ignore", f"alarm {alarm} is not a trigger alarm of {plan.workload}")

    if change.detail.state.value != "ALARM":
        if state.pending_execution and not status.met:
            return decide(
                "cancel",
                f"{alarm} went {change.detail.state.value}; quorum no longer holds ({status.describe()}), "
                "pending failover cancelled",
            )
        return decide("ignore", f"{alarm} went {change.detail.state.value}; nothing pending to cancel")

    if state.active_region == plan.regions.secondary:
        return decide("suppress", f"already failed over: {plan.regions.secondary} is serving")

    until = _cooldown_until(plan, state)
    if until is not None and now < until:
        return decide("suppress", f"in cooldown until {until.isoformat()} after the last failover/failback")

    mute = change.detail.mute
    if mute is not None and not status.met:
        return decide(
            "mute",
            f"{alarm} is {mute.describe()}: a muted alarm never counts toward the quorum "
            f"({status.describe()})",
        )

    if not status.met:
        return decide("suppress", f"quorum not met: {status.describe()}")

    since = present(status.quorum_since, "the time a met quorum formed")
    sustain_until = since + plan.trigger.sustain
    return decide(
        "start",
        f"quorum met: {status.describe()}; sustain window ends {sustain_until.isoformat()}",
        sustain_until=sustain_until,
        name=execution_name("failover", plan.workload, since),
    )


class Recheck(BaseModel):
    proceed: bool = Field(description="True when the quorum held through the whole sustain window.")
    wait_more: bool = Field(
        False, description="The wait ended before the window did: wait again, then recheck."
    )
    retry_after_seconds: int = Field(0, description="How long to wait again (whole seconds, at least 1).")
    reason: str = Field(description="Why (not).")
    quorum: QuorumStatus


def recheck(
    plan: DRPlan,
    alarms: Mapping[str, AlarmSnapshot],
    state: WorkloadState,
    now: datetime,
    *,
    sustain: timedelta | None = None,
    expected_since: datetime | None = None,
    sustain_until: datetime | None = None,
    unreachable: Collection[str] = (),
) -> Recheck:
    """After the sustain wait: does the quorum still hold, continuously, for the whole window?

    A flapping alarm re-enters ALARM with a fresh timestamp, which moves `quorum_since` forward, so a
    quorum that broke even briefly during the window fails this check. With `expected_since` (the quorum
    the trigger saw) the comparison is exact; without it, the quorum must be at least `sustain` old.
    A wait that ended early (some engines round timestamps down) asks to wait again instead of guessing.
    Alarms in a region that cannot be read (`unreachable`) count as `needed_alarms` says: the recheck uses
    what it can reach.
    """
    status = quorum_status(plan.trigger, alarms, unreachable)
    window = plan.trigger.sustain if sustain is None else sustain
    if sustain_until is not None and now < sustain_until:
        left = (sustain_until - now).total_seconds()
        return Recheck(
            proceed=False,
            wait_more=True,
            retry_after_seconds=max(1, math.ceil(left)),
            reason=f"sustain window not over ({left:.1f}s left)",
            quorum=status,
        )
    if state.active_region == plan.regions.secondary:
        return Recheck(proceed=False, reason="already failed over", quorum=status)
    until = _cooldown_until(plan, state)
    if until is not None and now < until:
        return Recheck(proceed=False, reason=f"in cooldown until {until.isoformat()}", quorum=status)
    if not status.met:
        return Recheck(proceed=False, reason=f"quorum no longer holds: {status.describe()}", quorum=status)
    since = present(status.quorum_since, "the time a met quorum formed")
    reformed = since > expected_since if expected_since is not None else now - since < window
    if reformed:
        held = (now - since).total_seconds()
        return Recheck(
            proceed=False,
            reason=f"quorum broke and re-formed during the {window.total_seconds():.0f}s sustain window "
            f"(the current quorum is only {held:.1f}s old)",
            quorum=status,
        )
    return Recheck(
        proceed=True, reason=f"quorum held for the sustain window: {status.describe()}", quorum=status
    )
