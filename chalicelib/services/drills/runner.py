"""`DrillRunner`: one drill, start to finish - pre-conditions, claim, the scenario (writes, faults, watching
the automation conclude), measurements, restore, failback, then whatever stopped it the cleanup and the
record. The parts live in their own modules; this is the order they run in."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.adapters.drill_faults import FaultInjector
from chalicelib.adapters.errors import TransientError
from chalicelib.domain import drills as rules
from chalicelib.domain.drill_report import plan_facts
from chalicelib.models.drill import DrillRecord, DrillRequest
from chalicelib.models.durations import format_duration
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.services.drills import corruption
from chalicelib.services.drills.cleanup import cleanup, leftovers
from chalicelib.services.drills.context import DrillContext, DrillObserver, LogObserver
from chalicelib.services.drills.control import DrillLease
from chalicelib.services.drills.dataset import DrillWrites
from chalicelib.services.drills.errors import DrillInterrupted, SimulatedKill
from chalicelib.services.drills.failback import run_failback
from chalicelib.services.drills.faults import Flapping, inject, injector_for
from chalicelib.services.drills.measure import collect_steps, measure_failover, measure_no_switch
from chalicelib.services.drills.preflight import preflight
from chalicelib.services.drills.report import finish
from chalicelib.services.drills.subject import ON_PRIMARY, in_local_cloud, new_drill_id, resolve_subject
from chalicelib.services.drills.watch import Watcher, readable_alarms
from chalicelib.services.smoke import run_smoke

RESTORE_TIMEOUT = timedelta(seconds=90)


class DrillRunner:
    """One drill, start to finish (see the package docstring)."""

    def __init__(
        self,
        request: DrillRequest,
        d: Deps,
        injector: FaultInjector | None = None,
        *,
        observer: DrillObserver | None = None,
        reports_dir: Path | None = None,
        local: bool | None = None,
        poll: float = 0.3,
        sleep: Callable[[float], None] = time.sleep,
        hooks: dict[str, Callable[[], None]] | None = None,
    ) -> None:
        plan = d.plans.get(request.workload)
        self.local = in_local_cloud() if local is None else local
        subject, mode = resolve_subject(plan, request, d, local=self.local)
        injector = injector or injector_for(subject)
        self.reports_dir = reports_dir
        now = d.clock()
        record = DrillRecord(
            drill_id=request.drill_id or new_drill_id(now),
            workload=plan.workload,
            subject=subject.workload,
            mode=mode,
            scenario=request.scenario,
            expectation=rules.scenario(request.scenario).expect,
            requested_by=request.requested_by,
            reason=request.reason,
            started_at=now,
            **plan_facts(subject),
        )
        executions: dict[str, str] = {}  # arn -> kind
        self.drill = DrillContext(
            request=request,
            d=d,
            plan=plan,
            subject=subject,
            mode=mode,
            injector=injector,
            observer=observer or LogObserver(),
            record=record,
            lease=DrillLease(d, subject.workload, record, executions, injector),
            watch=Watcher(d, subject, record, executions),
            writes=DrillWrites(d.drill_dataset, subject, record.drill_id),
            executions=executions,
            poll=poll,
            sleep=sleep,
            hooks=hooks or {},
        )
        self._switched = False

    @property
    def record(self) -> DrillRecord:
        return self.drill.record

    # -- the run ----------------------------------------------------------------------------------------
    def run(self) -> DrillRecord:
        drill = self.drill
        preflight(drill)
        drill.lease.claim()  # from here on the drill owns the subject: whatever happens, it is cleaned up
        interrupted: str | None = None
        pending: BaseException | None = None
        try:
            self.announce()
            self.execute()
            drill.record.leftovers = leftovers(drill)  # judged before the cleanup can hide anything
        except BaseException as exc:
            if isinstance(exc, SimulatedKill):
                raise  # a killed process cleans nothing up; `recover` does it later
            interrupted = (
                f"{type(exc).__name__}: {exc}" if not isinstance(exc, DrillInterrupted) else str(exc)
            )
            if not isinstance(exc, Exception):
                pending = exc  # Ctrl-C: clean up and record first, then let it through
            logger.warning("drill interrupted", drill=drill.record.drill_id, reason=interrupted)
            drill.say("interrupted", f"drill interrupted ({interrupted}); cleaning up")
        finally:
            drill.writes.stop()
        drill.record.cleanup = cleanup(drill, interrupted=interrupted is not None)
        finish(drill, self.reports_dir, interrupted)
        if pending is not None:
            raise pending
        return drill.record

    def announce(self) -> None:
        drill = self.drill
        plan, rec = drill.subject, drill.record
        drill.lease.arm_faults()
        drill.d.ledger.record(
            plan.workload,
            "drill",
            "started",
            f"drill {rec.drill_id} ({rec.scenario}, {rec.mode}): Lifeboat should "
            f"{rules.EXPECTATION_WORDS[rec.expectation]}",
            actor=rec.requested_by,
            detail={"drill_id": rec.drill_id, "scenario": rec.scenario, "mode": rec.mode},
        )
        emit("DrillStarted", 1, workload=plan.workload, scenario=rec.scenario)
        drill.say("start", f"drill {rec.drill_id}: {rec.scenario} on {plan.workload} ({rec.mode})")

    # -- the scenario -------------------------------------------------------------------------------------
    def execute(self) -> None:
        drill = self.drill
        rec = drill.record
        if drill.request.scenario == "data-corruption":
            corruption.run(drill)  # no failover to watch for: a restore, measured in its own way
            return
        drill.writes.start(drill.injector, drill.policy.write_interval, drill.d.clock, drill.say)
        drill.wait(drill.policy.write_interval.total_seconds() * 3)  # a baseline of replicated writes
        fault_at = inject(drill)
        drill.hook("after-fault")
        outcome = self.await_outcome(fault_at)
        drill.hook("after-failover")
        rec.behaviour = rules.behaviour_of(outcome.get("outcome") if outcome else None)
        if outcome:
            rec.failover_execution = outcome.get("execution")
            rec.failover_outcome = outcome.get("outcome")
            rec.failover_reason = outcome.get("reason")
        drill.writes.stop()
        if rec.behaviour == "failed-over" and outcome:
            measure_failover(drill, outcome, fault_at)
        else:
            measure_no_switch(drill, outcome, fault_at)
        restored = drill.injector.restore_all()
        drill.say("restore", "restoring: " + ("; ".join(restored) or "nothing was broken any more"))
        restored_at = self.await_primary_healthy()
        drill.mark("restored", "primary restored and healthy", restored_at)
        if rec.behaviour == "failed-over":
            drill.hook("before-failback")
            run_failback(drill)
        collect_steps(drill)

    def await_outcome(self, fault_at: datetime) -> dict[str, Any] | None:
        """Watch until the automation concluded a failover (or, for no-failover, the window passed)."""
        drill = self.drill
        plan = drill.subject
        sustain = plan.trigger.sustain
        expect = drill.scenario.expect
        if expect == "no-failover":
            window = rules.observation_window(sustain, drill.policy.observe)
            deadline = fault_at + window
        else:
            deadline = fault_at + drill.policy.observe + sustain + plan.failover.replication_wait_timeout
        flapping = Flapping(drill, fault_at, deadline) if drill.request.scenario == "alarm-flapping" else None
        concluded: dict[str, Any] | None = None
        drill.lease.heartbeat("waiting for the automation", force=True)
        while True:
            now = drill.now()
            if flapping is not None:
                flapping.step(now)
            self.note_switch()
            running, done = drill.watch.settle()
            terminal = [c for c in done if c["outcome"] in ("completed", "refused", "failed", "unvalidated")]
            if terminal:
                concluded = terminal[0]
                if expect != "no-failover" and not running:
                    break  # concluded, and its lock released
            elif done and concluded is None:
                concluded = done[-1]  # a suppressed one: keep watching, a real quorum may still form
            if now >= deadline and not running:
                break
            if now >= deadline + timedelta(minutes=5):
                raise DrillInterrupted("stop condition: a failover execution outlived the drill's window")
            drill.tick()
        if flapping is not None:
            flapping.stop()
        self.note_switch()
        if concluded and concluded["outcome"] not in ("completed", "refused", "failed"):
            return None if expect != "no-failover" else concluded
        return concluded

    def note_switch(self) -> None:
        """The first time traffic is seen off the primary: the replica is compared now (RPO at the switch)."""
        if self._switched:
            return
        drill = self.drill
        try:
            weights = drill.d.router.read(drill.subject).weights
        except TransientError as exc:
            # Watching only: a switch that does not answer now (a region outage, a throttle) is read again at
            # the next tick; the automation's own failover is what the drill judges.
            logger.warning("traffic unreadable while watching", drill=drill.record.drill_id, reason=str(exc))
            return
        if weights == ON_PRIMARY:
            return
        self._switched = True
        drill.writes.at_switch()
        drill.say("switch", f"traffic moved: {weights}")

    def await_primary_healthy(self) -> datetime:
        """The primary answers its smoke tests and the trigger alarms are back to OK."""
        drill = self.drill
        plan = drill.subject
        deadline = drill.now() + RESTORE_TIMEOUT
        drill.lease.heartbeat("restoring the primary", force=True)
        while True:
            smoke = run_smoke(plan, "primary", drill.d, phase="drill-restore")
            alarms = [s for s in readable_alarms(plan, drill.d) if s.state == "ALARM"]
            if smoke.passed and not alarms:
                return drill.now()
            if drill.now() > deadline:
                raise DrillInterrupted(
                    "stop condition: the primary was not healthy within "
                    f"{format_duration(RESTORE_TIMEOUT)} of the restore "
                    f"({smoke.reason}; alarms: {', '.join(a.name for a in alarms) or 'none'})"
                )
            drill.tick()
