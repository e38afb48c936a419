"""The scenario's faults: which injector breaks things (the local cloud plugs its own in), what each scenario
breaks and in which order, and the flapping primary of `alarm-flapping`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from chalicelib.adapters.drill_faults import FaultInjector, HttpFaults
from chalicelib.domain import drills as rules
from chalicelib.models.durations import format_duration
from chalicelib.models.plan import DRPlan
from chalicelib.services.drills.context import DrillContext

DEGRADED_FAULTS = {"latency_ms": 2500, "wrong_answers": True}
"""endpoint-degraded: slower than any canary or smoke-test timeout under 2.5s, and wrong when it answers."""
UNHEALTHY_BACKUP_FAULTS = {"wrong_answers": True}

InjectorFactory = Callable[[DRPlan], "FaultInjector | None"]
_factories: list[InjectorFactory] = []


def register_injector(factory: InjectorFactory) -> Callable[[], None]:
    """The local cloud plugs its real fault injector in here (the daemon, tests); returns an unregister."""
    _factories.insert(0, factory)

    def unregister() -> None:
        if factory in _factories:
            _factories.remove(factory)

    return unregister


def injector_for(plan: DRPlan) -> FaultInjector:
    for factory in _factories:
        found = factory(plan)
        if found is not None:
            return found
    return HttpFaults(plan)


def inject(run: DrillContext) -> datetime:
    """The scenario's faults, in order; returns when the outage itself began."""
    inj, rec, name = run.injector, run.record, run.request.scenario

    def did(words: str) -> None:
        rec.faults.append(words)
        run.say("fault", words)

    if name == "api-throttling":
        did(inj.throttle(run.policy.throttle_share))
    if name == "corrupt-artifact":
        did(inj.corrupt_artifact("secondary"))
    if name == "backup-unhealthy":
        did(inj.degrade("secondary", **UNHEALTHY_BACKUP_FAULTS))
    if name == "replication-stalled":
        did(inj.pause_replication())
        # marked once the pause holds: no write after the marker can reach the replica
        run.mark("paused", "replication paused")
        run.wait(run.policy.replication_gap.total_seconds())
    if name == "endpoint-degraded":
        did(inj.degrade("primary", **DEGRADED_FAULTS))
        return run.mark("fault", "primary degraded")
    if name == "alarm-flapping":
        did(
            "the primary fails and recovers every "
            f"{rules.flap_period(run.subject.trigger.sustain).total_seconds():g}s (shorter than the "
            f"{format_duration(run.subject.trigger.sustain)} sustain window)"
        )
        return run.mark("fault", "flapping starts")
    # Every other scenario ends with the primary region failing: its model server dies and the
    # application's writes to that region stop.
    run.writes.stop()
    if name == "region-api-outage":
        did(inj.take_region_down(run.subject.regions.primary))
        did(inj.kill("primary"))
        return run.mark("fault", "primary region down (APIs and endpoint)")
    did(inj.kill("primary"))
    return run.mark("fault", "primary killed")


class Flapping:
    """alarm-flapping: the primary goes down and comes back every half period (shorter than the sustain
    window), from the fault until one half period before the end of the observation window."""

    def __init__(self, run: DrillContext, fault_at: datetime, until: datetime) -> None:
        self.run = run
        self.fault_at = fault_at
        self.until = until
        self.half = rules.flap_period(run.subject.trigger.sustain).total_seconds()
        self.down: bool | None = None

    def step(self, now: datetime) -> None:
        want_down = (
            now < self.until - timedelta(seconds=self.half)
            and int((now - self.fault_at).total_seconds() // self.half) % 2 == 0
        )
        if want_down != self.down:
            self.down = want_down
            self.run.injector.degrade("primary", down=want_down)
            self.run.mark("fault" if want_down else "heal", "primary down" if want_down else "primary up")

    def stop(self) -> None:
        self.run.injector.heal("primary")
