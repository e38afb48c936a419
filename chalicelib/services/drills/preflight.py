"""A drill's pre-conditions, FIS-style: nothing is broken unless the subject is clean and healthy now."""

from __future__ import annotations

from functools import partial

from chalicelib.clock import parse_timestamp
from chalicelib.domain import drills as rules
from chalicelib.domain.smoke import SLOW_SMOKE_ATTEMPTS, remeasure_slow
from chalicelib.services.drills.context import DrillContext
from chalicelib.services.drills.control import CONTROL_KEY
from chalicelib.services.drills.errors import DrillRefused
from chalicelib.services.drills.subject import ON_PRIMARY
from chalicelib.services.smoke import run_smoke
from chalicelib.settings import get_settings


def preflight(run: DrillContext) -> None:
    """Raise DrillRefused, saying why, unless the scenario can be injected here and the subject has no
    drill, lock, execution or cooldown in the way, no alarm firing and both sides healthy."""
    plan, d, scenario = run.subject, run.d, run.request.scenario
    reason = run.injector.unsupported(scenario)
    if scenario == "alarm-flapping":
        reason = reason or rules.flapping_precondition(plan.trigger.sustain)
    if scenario == "region-api-outage":
        reason = reason or rules.region_api_outage_precondition(plan, get_settings().region)
    if scenario == "data-corruption":
        reason = reason or rules.data_corruption_precondition(plan, run.writes.asset is not None)
    if reason:
        raise DrillRefused(f"cannot run {scenario} here: {reason}")
    state = d.ledger.get_state(plan.workload)
    control = d.ledger.get_control(plan.workload, CONTROL_KEY)
    if control and control.get("status") == "running":
        lease = parse_timestamp(str(control.get("lease_until")))
        if lease > run.now():
            raise DrillRefused(f"drill {control.get('drill_id')} is already running on {plan.workload}")
        raise DrillRefused(
            f"drill {control.get('drill_id')} on {plan.workload} stopped without cleaning up; "
            f"run `lifeboat drill recover {run.plan.workload}` first"
        )
    weights = d.router.read(plan).weights
    if weights != ON_PRIMARY:
        raise DrillRefused(f"traffic of {plan.workload} is {weights}: a drill starts from all on the primary")
    held = d.locks.current(plan.workload)
    if held is not None:
        raise DrillRefused(f"{held.operation} {held.holder} holds the lock of {plan.workload}")
    for kind in ("failover", "failback"):
        if d.executions.running(plan.workload, kind):
            raise DrillRefused(f"a {kind} of {plan.workload} is running")
    last = state.last_transition_at()
    if last is not None and last + plan.trigger.cooldown > run.now():
        until = last + plan.trigger.cooldown
        raise DrillRefused(
            f"{plan.workload} is in its cooldown until {until:%H:%M:%S} UTC: a failover now would be "
            "suppressed, so the drill would measure nothing"
        )
    readings = d.alarms.read(plan.trigger_alarms_by_region())
    if readings.unreachable:
        raise DrillRefused(
            f"the trigger alarms in {', '.join(readings.unreachable)} cannot be read before anything was "
            "broken"
        )
    firing = [s.name for s in readings.snapshots if s.state == "ALARM"]
    if firing:
        raise DrillRefused(f"trigger alarm(s) already in ALARM before the drill: {', '.join(firing)}")
    for role in ("primary", "secondary"):
        measure = partial(run_smoke, plan, role, d, phase="drill-precondition")  # type: ignore[arg-type]
        verdict = remeasure_slow(measure, SLOW_SMOKE_ATTEMPTS)  # a latency spike is not a refusal
        if not verdict.passed:
            raise DrillRefused(
                f"the {role} fails its smoke tests before anything was broken: {verdict.reason}"
            )
