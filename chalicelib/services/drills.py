"""DR drills: inject a fault on purpose, let Lifeboat run the whole runbook on its own (detect, switch
traffic, validate the backup, restore the primary, fail back gradually), measure it, and keep the evidence.

`DrillRunner.run` is the use case. Like an AWS FIS experiment it has pre-conditions (a clean, healthy
subject), actions (the scenario's faults), and stop conditions (the drill's timeout, an operator's Ctrl-C,
any error, or its lease lapsing because the process died); whatever stops it, the cleanup restores the
faults and a clean traffic state and the drill is recorded as `interrupted` with what was restored.

Where a drill runs: in the local cloud, against the plan itself (the local cloud is a sandbox); in an AWS
account, against the plan's drill target (`drill.target`, a drill copy of the workload), or - only with
`live` and the workload's name as confirmation - against production.
"""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from chalicelib.adapters import aws
from chalicelib.adapters.drill_evidence import DrillEvidence
from chalicelib.adapters.drill_faults import FaultInjector, FaultUnsupported, HttpFaults, ReplicaCopy
from chalicelib.adapters.drill_requests import DrillRequests
from chalicelib.adapters.history import ExecutionHistory
from chalicelib.adapters.plan_store import UnknownWorkload
from chalicelib.clock import parse_timestamp
from chalicelib.domain import drills as rules
from chalicelib.domain.drill_report import headline, render_html, render_markdown
from chalicelib.domain.history import steps_from_history
from chalicelib.domain.reconcile import serving_region
from chalicelib.models.alarms import AlarmSnapshot
from chalicelib.models.drill import (
    DrillBody,
    DrillMode,
    DrillRecord,
    DrillRequest,
    DrillStarted,
    DrillSummary,
    Marker,
    Phase,
    Write,
)
from chalicelib.models.durations import format_duration
from chalicelib.models.ledger import LedgerEntry
from chalicelib.models.plan import DRPlan, S3Asset
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.services.smoke import last_smoke_passed, run_smoke
from chalicelib.settings import get_settings

ON_PRIMARY = {"primary": 100, "secondary": 0}
ON_SECONDARY = {"primary": 0, "secondary": 100}
CONTROL_KEY = "drill"
LEASE = timedelta(seconds=45)
HEARTBEAT_EVERY = timedelta(seconds=3)
WRITE_PREFIX = "lifeboat-drill/"
DEGRADED_FAULTS = {"latency_ms": 2500, "wrong_answers": True}
"""endpoint-degraded: slower than any canary or smoke-test timeout under 2.5s, and wrong when it answers."""
UNHEALTHY_BACKUP_FAULTS = {"wrong_answers": True}
RESTORE_TIMEOUT = timedelta(seconds=90)
# How long Lifeboat may take to tidy up by itself after a scenario (the janitor that releases the lock of a
# stopped execution runs on its status-change event) before a leftover counts against it.
LEFTOVER_GRACE = timedelta(seconds=60)


class DrillRefused(RuntimeError):
    """The drill did not start: a pre-condition failed (nothing was broken)."""


class DrillInterrupted(RuntimeError):
    """A stop condition ended the drill early."""


class DrillObserver(Protocol):
    """Narration: the CLI and the demo print these; the Lambda handler logs them."""

    def event(self, kind: str, message: str) -> None: ...

    def tick(self) -> None: ...


class LogObserver:
    def event(self, kind: str, message: str) -> None:
        logger.info("drill", kind=kind, text=message)

    def tick(self) -> None:
        return None


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


def in_local_cloud() -> bool:
    """The local cloud sets an endpoint override; AWS never does (settings say so)."""
    return get_settings().endpoint_url is not None


def readable_alarms(plan: DRPlan, d: Deps) -> list[AlarmSnapshot]:
    """The trigger alarms, each read in its own region (a region that cannot be reached is left out)."""
    return d.alarms.read(plan.trigger_alarms_by_region()).snapshots


def new_drill_id(now: datetime) -> str:
    return f"drill-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:4]}"


def resolve_subject(plan: DRPlan, request: DrillRequest, d: Deps, *, local: bool) -> tuple[DRPlan, DrillMode]:
    """Which plan the drill breaks: never production traffic in an account unless live and confirmed."""
    if local:
        return plan, "local"
    if request.live:
        if request.confirm != plan.workload:
            raise DrillRefused(
                f"a live drill breaks the production traffic of {plan.workload}: confirm with the workload "
                f"name (--confirm {plan.workload}); nothing was started"
            )
        return plan, "live"
    if plan.drill.target is None:
        raise DrillRefused(
            f"{plan.workload} names no drill target (drill.target in its plan), so a drill in this account "
            f"would break production: add a drill copy of the workload, or run --live --confirm "
            f"{plan.workload}; nothing was started"
        )
    try:
        target = d.plans.get(plan.drill.target)
    except UnknownWorkload:
        raise DrillRefused(
            f"drill target {plan.drill.target!r} of {plan.workload} is not a deployed plan"
        ) from None
    shared = _shared_production(plan, target)
    if shared:
        raise DrillRefused(f"drill target {target.workload} shares {shared} with production; refusing")
    return target, "drill-target"


def _shared_production(plan: DRPlan, target: DRPlan) -> str | None:
    if getattr(plan.traffic, "record_name", None) and getattr(plan.traffic, "record_name", None) == getattr(
        target.traffic, "record_name", None
    ):
        return f"the traffic record {plan.traffic.record_name}"  # type: ignore[union-attr]
    if set(plan.trigger.alarms) & set(target.trigger.alarms):
        return "trigger alarms"
    for role in ("primary", "secondary"):
        if plan.endpoint_for(role) == target.endpoint_for(role):  # type: ignore[arg-type]
            return f"the {role} endpoint"
    return None


def dataset_copy(plan: DRPlan, drill_id: str) -> tuple[S3Asset, ReplicaCopy] | None:
    """Where the drill writes its timestamped objects: the plan's dataset asset (else its first S3 asset)."""
    s3 = [a for a in plan.assets if isinstance(a, S3Asset)]
    chosen = next((a for a in s3 if a.role == "dataset"), s3[0] if s3 else None)
    if chosen is None:
        return None
    folder = f"{WRITE_PREFIX}{drill_id}/"
    return chosen, ReplicaCopy(
        source_bucket=chosen.source.bucket,
        source_prefix=chosen.source.prefix + folder,
        source_region=plan.regions.primary,
        replica_bucket=chosen.replica.bucket,
        replica_prefix=chosen.replica.prefix + folder,
        replica_region=plan.regions.secondary,
    )


class _Writer:
    """Writes {seq, at} objects to the primary's dataset every interval until stopped (or the region dies)."""

    def __init__(self, copy: ReplicaCopy, interval: timedelta, clock: Callable[[], datetime]) -> None:
        self.copy = copy
        self.interval = interval.total_seconds()
        self.clock = clock
        self.writes: list[Write] = []
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # The drill's settings (a copy of Lifeboat acting for another region) go with the thread.
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._run,), name="drill-writer", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        s3 = aws.client("s3", self.copy.source_region)
        seq = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            seq += 1
            key = f"{seq:06d}.json"
            at = self.clock()
            try:
                s3.put_object(
                    Bucket=self.copy.source_bucket,
                    Key=self.copy.source_prefix + key,
                    Body=f'{{"seq": {seq}, "at": "{at.isoformat()}"}}'.encode(),
                    ContentType="application/json",
                )
                with self._lock:
                    self.writes.append(Write(key=key, at=at))
            except Exception as exc:  # a write that failed was never accepted: not in the log
                self.errors += 1
                logger.warning("drill write failed", key=key, error=str(exc))
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def snapshot(self) -> list[Write]:
        with self._lock:
            return list(self.writes)


def _relative_keys(prefix: str, region: str, bucket: str) -> set[str]:
    s3 = aws.client("s3", region)
    keys: set[str] = set()
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        page = s3.list_objects_v2(**kwargs)
        keys.update(obj["Key"][len(prefix) :] for obj in page.get("Contents", []))
        if not page.get("IsTruncated"):
            return keys
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


def _purge_prefix(bucket: str, prefix: str, region: str) -> tuple[int, int]:
    """Delete every version and delete marker under the drill's own prefix; returns (objects, versions that
    Object Lock retains). A plain delete in a versioned bucket only stacks a marker on each object, so the
    bucket, and every later listing of it, would grow by each drill's writes for ever. Versions under Object
    Lock retention cannot be deleted (that is the point of the lock): they are hidden behind a marker."""
    s3 = aws.client("s3", region)
    doomed: list[dict[str, str]] = []
    keys: set[str] = set()
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        page = s3.list_object_versions(**kwargs)
        for v in page.get("Versions", []):
            keys.add(v["Key"])
            doomed.append({"Key": v["Key"], "VersionId": v["VersionId"]})
        doomed += [{"Key": m["Key"], "VersionId": m["VersionId"]} for m in page.get("DeleteMarkers", [])]
        if not page.get("IsTruncated"):
            break
        kwargs["KeyMarker"] = page.get("NextKeyMarker")
        kwargs["VersionIdMarker"] = page.get("NextVersionIdMarker")
    retained: set[str] = set()
    for i in range(0, len(doomed), 1000):
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[i : i + 1000], "Quiet": True})
        errors = answer.get("Errors", [])
        retained.update(e["Key"] for e in errors if e.get("Code") == "AccessDenied")
        failed = [e for e in errors if e.get("Code") != "AccessDenied"]
        if failed:  # what stays visible is named in the cleanup line (remove_writes); the cleanup goes on
            logger.warning("drill objects not deleted", bucket=bucket, prefix=prefix, errors=failed[:10])
    hidden = sorted(k for k in retained if k in keys)
    for i in range(0, len(hidden), 1000):
        s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in hidden[i : i + 1000]], "Quiet": True}
        )
    return len(keys), len(hidden)


def remove_writes(copy: ReplicaCopy, *, settle: float = 10.0) -> str:
    """Delete the drill's objects from both regions, once replication (resumed) stopped copying them, so no
    late copy lands in the replica after the delete; a copy that was in flight (a re-driven failure) is
    deleted on the next pass."""
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        source = _relative_keys(copy.source_prefix, copy.source_region, copy.source_bucket)
        if source <= _relative_keys(copy.replica_prefix, copy.replica_region, copy.replica_bucket):
            break
        time.sleep(0.3)
    places = (
        (copy.source_bucket, copy.source_prefix, copy.source_region),
        (copy.replica_bucket, copy.replica_prefix, copy.replica_region),
    )
    removed, retained = 0, 0
    deadline = time.monotonic() + settle
    while True:
        for place in places:
            objects, locked = _purge_prefix(*place)
            removed, retained = max(removed, objects), max(retained, locked)
        visible = [_relative_keys(prefix, region, bucket) for bucket, prefix, region in places]
        if not any(visible) or time.monotonic() > deadline:
            break
        time.sleep(0.3)  # a copy landed behind the delete: one more pass
    note = f" ({retained} versions kept by Object Lock, behind delete markers)" if retained else ""
    left = f"; still visible: {sorted(set().union(*visible))}" if any(visible) else ""
    return f"removed the drill's {removed} dataset objects from both regions{note}{left}"


def _entry_dict(entry: LedgerEntry) -> dict[str, Any]:
    error = entry.detail.get("error") if isinstance(entry.detail.get("error"), dict) else {}
    return {
        "at": entry.at,
        "kind": entry.kind,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "actor": entry.actor,
        "execution": entry.execution,
        "error": (error or {}).get("Error"),
    }


class DrillRunner:
    """One drill, start to finish (see the module docstring)."""

    def __init__(
        self,
        request: DrillRequest,
        d: Deps,
        injector: FaultInjector | None = None,
        *,
        evidence: DrillEvidence | None = None,
        observer: DrillObserver | None = None,
        reports_dir: Path | None = None,
        local: bool | None = None,
        poll: float = 0.3,
        sleep: Callable[[float], None] = time.sleep,
        hooks: dict[str, Callable[[], None]] | None = None,
    ) -> None:
        self.request = request
        self.d = d
        self.plan = d.plans.get(request.workload)
        self.local = in_local_cloud() if local is None else local
        self.subject, self.mode = resolve_subject(self.plan, request, d, local=self.local)
        self.injector = injector or injector_for(self.subject)
        self.evidence = evidence or DrillEvidence(get_settings().evidence_bucket)
        self.observer: DrillObserver = observer or LogObserver()
        self.reports_dir = reports_dir
        self.poll = poll
        self.sleep = sleep
        # Test seams: called when the drill reaches a named point (e.g. "after-failover").
        self.hooks = hooks or {}
        self.scenario = rules.scenario(request.scenario)
        policy = self.plan.drill
        now = d.clock()
        self.record = DrillRecord(
            drill_id=request.drill_id or new_drill_id(now),
            workload=self.plan.workload,
            subject=self.subject.workload,
            mode=self.mode,
            scenario=request.scenario,
            expectation=self.scenario.expect,
            requested_by=request.requested_by,
            reason=request.reason,
            started_at=now,
        )
        self.policy = policy
        self._writer: _Writer | None = None
        self._copy = dataset_copy(self.subject, self.record.drill_id)
        self._seen_entries: set[str] = set()
        self._executions: dict[str, str] = {}  # arn -> kind
        self._alarm_states: dict[str, tuple[str, datetime]] = {}
        self._last_heartbeat: datetime | None = None
        self._replica_at_switch: set[str] | None = None
        self._switch_seen_at: datetime | None = None
        self._primary_down_for_writes = False
        self._phase = "starting"

    # -- narration and time ----------------------------------------------------------------------------
    def say(self, kind: str, message: str) -> None:
        self.observer.event(kind, message)

    def now(self) -> datetime:
        return self.d.clock()

    def mark(self, name: str, label: str, at: datetime | None = None) -> datetime:
        at = at or self.now()
        self.record.markers.append(Marker(name=name, at=at, label=label))
        return at

    def hook(self, point: str) -> None:
        if point in self.hooks:
            self.hooks[point]()

    # -- the run ----------------------------------------------------------------------------------------
    def run(self) -> DrillRecord:
        self.preflight()
        self.claim()  # from here on the drill owns the subject: whatever happens, it is cleaned up
        interrupted: str | None = None
        pending: BaseException | None = None
        try:
            self.announce()
            self.execute()
            self.record.leftovers = self.inspect()  # judged before the cleanup can hide anything
        except BaseException as exc:
            if isinstance(exc, SimulatedKill):
                raise  # a killed process cleans nothing up; `recover` does it later
            interrupted = (
                f"{type(exc).__name__}: {exc}" if not isinstance(exc, DrillInterrupted) else str(exc)
            )
            if not isinstance(exc, Exception):
                pending = exc  # Ctrl-C: clean up and record first, then let it through
            logger.warning("drill interrupted", drill=self.record.drill_id, reason=interrupted)
            self.say("interrupted", f"drill interrupted ({interrupted}); cleaning up")
        finally:
            self.stop_writer()
        self.record.cleanup = self.cleanup(interrupted=interrupted is not None)
        self.finish(interrupted)
        if pending is not None:
            raise pending
        return self.record

    def preflight(self) -> None:
        """FIS-style pre-conditions: nothing is broken unless the subject is clean and healthy now."""
        plan, d = self.subject, self.d
        reason = self.injector.unsupported(self.request.scenario)
        if self.request.scenario == "alarm-flapping":
            reason = reason or rules.flapping_precondition(plan.trigger.sustain)
        if self.request.scenario == "region-api-outage":
            reason = reason or rules.region_api_outage_precondition(plan, get_settings().region)
        if reason:
            raise DrillRefused(f"cannot run {self.request.scenario} here: {reason}")
        state = d.ledger.get_state(plan.workload)
        control = d.ledger.get_control(plan.workload, CONTROL_KEY)
        if control and control.get("status") == "running":
            lease = parse_timestamp(str(control.get("lease_until")))
            if lease > self.now():
                raise DrillRefused(f"drill {control.get('drill_id')} is already running on {plan.workload}")
            raise DrillRefused(
                f"drill {control.get('drill_id')} on {plan.workload} stopped without cleaning up; "
                f"run `lifeboat drill recover {self.plan.workload}` first"
            )
        weights = d.router.read(plan).weights
        if weights != ON_PRIMARY:
            raise DrillRefused(
                f"traffic of {plan.workload} is {weights}: a drill starts from all on the primary"
            )
        held = d.locks.current(plan.workload)
        if held is not None:
            raise DrillRefused(f"{held.operation} {held.holder} holds the lock of {plan.workload}")
        for kind in ("failover", "failback"):
            if d.executions.running(plan.workload, kind):
                raise DrillRefused(f"a {kind} of {plan.workload} is running")
        last = state.last_transition_at()
        if last is not None and last + plan.trigger.cooldown > self.now():
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
            verdict = run_smoke(plan, role, d, phase="drill-precondition")  # type: ignore[arg-type]
            if not verdict.passed:
                raise DrillRefused(
                    f"the {role} fails its smoke tests before anything was broken: {verdict.reason}"
                )

    def claim(self) -> None:
        plan, d = self.subject, self.d
        now = self.now()

        def claim(current: dict[str, Any] | None) -> dict[str, Any]:
            if current and current.get("status") == "running":
                raise DrillRefused(f"drill {current.get('drill_id')} is already running on {plan.workload}")
            return self._control(now, "running", "starting")

        d.ledger.update_control(plan.workload, CONTROL_KEY, claim)
        self._last_heartbeat = now

    def announce(self) -> None:
        plan, d, rec = self.subject, self.d, self.record
        self.injector.heartbeat(rec.drill_id, self.now() + LEASE)
        d.ledger.record(
            plan.workload,
            "drill",
            "started",
            f"drill {rec.drill_id} ({rec.scenario}, {rec.mode}): Lifeboat should "
            f"{rules.EXPECTATION_WORDS[rec.expectation]}",
            actor=rec.requested_by,
            detail={"drill_id": rec.drill_id, "scenario": rec.scenario, "mode": rec.mode},
        )
        emit("DrillStarted", 1, workload=plan.workload, scenario=rec.scenario)
        self.say("start", f"drill {rec.drill_id}: {rec.scenario} on {plan.workload} ({rec.mode})")

    def _control(self, now: datetime, status: str, phase: str) -> dict[str, Any]:
        rec = self.record
        return {
            "drill_id": rec.drill_id,
            "workload": rec.workload,
            "subject": rec.subject,
            "scenario": rec.scenario,
            "mode": rec.mode,
            "requested_by": rec.requested_by,
            "reason": rec.reason,
            "started_at": rec.started_at.isoformat(),
            "status": status,
            "phase": phase,
            "heartbeat_at": now.isoformat(),
            "lease_until": (now + LEASE).isoformat(),
            "executions": dict(self._executions),
            "faults": list(rec.faults),
        }

    def heartbeat(self, phase: str | None = None, *, force: bool = False) -> None:
        now = self.now()
        if not force and self._last_heartbeat and now - self._last_heartbeat < HEARTBEAT_EVERY:
            return
        self._last_heartbeat = now
        rec = self.record
        self._phase = phase or self._phase

        def renew(current: dict[str, Any] | None) -> dict[str, Any]:
            if not current or current.get("drill_id") != rec.drill_id or current.get("status") != "running":
                raise DrillInterrupted(
                    "stop condition: another process took the drill over (its lease lapsed)"
                )
            return self._control(now, "running", self._phase)

        self.d.ledger.update_control(self.subject.workload, CONTROL_KEY, renew)
        self.injector.heartbeat(rec.drill_id, now + LEASE)

    def tick(self, sleep: float | None = None) -> None:
        """One poll: stop conditions, heartbeat, alarms, ledger, narration, then sleep."""
        if self.now() - self.record.started_at > self.policy.timeout:
            raise DrillInterrupted(
                "stop condition: the drill ran longer than its timeout "
                f"({format_duration(self.policy.timeout)})"
            )
        self.heartbeat()
        self.watch_alarms()
        self.collect_entries()
        self.observer.tick()
        self.sleep(self.poll if sleep is None else sleep)

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self.tick(sleep=min(self.poll, remaining))

    def watch_alarms(self) -> None:
        plan = self.subject
        try:
            snaps = readable_alarms(plan, self.d)  # a region that cannot be read is skipped
        except Exception as exc:  # a missed look is fine; the trigger reads alarms on its own
            logger.warning("drill could not read alarms", error=str(exc))
            return
        for snap in snaps:
            before = self._alarm_states.get(snap.name)
            if before is None or before[0] != snap.state or before[1] != snap.since:
                if before is not None or snap.state != "OK":
                    self.record.alarms.append({"alarm": snap.name, "state": snap.state, "at": snap.since})
                self._alarm_states[snap.name] = (snap.state, snap.since)

    def collect_entries(self) -> list[LedgerEntry]:
        fresh = []
        for entry in reversed(self.d.ledger.entries(self.subject.workload, limit=40)):
            if entry.entry_id in self._seen_entries or entry.at < self.record.started_at:
                continue
            self._seen_entries.add(entry.entry_id)
            fresh.append(entry)
            self.record.decisions.append(_entry_dict(entry))
            if entry.kind == "decision" and entry.outcome == "started" and entry.execution:
                self._executions.setdefault(entry.execution, "failover")
        return fresh

    # -- the scenario -------------------------------------------------------------------------------------
    def execute(self) -> None:
        plan, rec = self.subject, self.record
        self.start_writer()
        self.wait(self.policy.write_interval.total_seconds() * 3)  # a baseline of replicated writes
        fault_at = self.inject()
        self.hook("after-fault")
        outcome = self.await_outcome(fault_at)
        self.hook("after-failover")
        rec.behaviour = rules.behaviour_of(outcome.get("outcome") if outcome else None)
        if outcome:
            rec.failover_execution = outcome.get("execution")
            rec.failover_outcome = outcome.get("outcome")
            rec.failover_reason = outcome.get("reason")
        self.stop_writer()
        if rec.behaviour == "failed-over" and outcome:
            self.measure_failover(outcome, fault_at)
        else:
            self.measure_no_switch(outcome, fault_at)
        restored = self.injector.restore_all()
        self.say("restore", "restoring: " + ("; ".join(restored) or "nothing was broken any more"))
        restored_at = self.await_primary_healthy()
        self.mark("restored", "primary restored and healthy", restored_at)
        if rec.behaviour == "failed-over":
            self.hook("before-failback")
            self.run_failback(restored_at)
        self.collect_steps()
        del plan

    def inject(self) -> datetime:
        """The scenario's faults, in order; returns when the outage itself began."""
        inj, rec, name = self.injector, self.record, self.request.scenario

        def did(words: str) -> None:
            rec.faults.append(words)
            self.say("fault", words)

        if name == "api-throttling":
            did(inj.throttle(self.policy.throttle_share))
        if name == "corrupt-artifact":
            did(inj.corrupt_artifact("secondary"))
        if name == "backup-unhealthy":
            did(inj.degrade("secondary", **UNHEALTHY_BACKUP_FAULTS))
        if name == "replication-stalled":
            did(inj.pause_replication())
            # marked once the pause holds: no write after the marker can reach the replica
            self.mark("paused", "replication paused")
            self.wait(self.policy.replication_gap.total_seconds())
        if name == "endpoint-degraded":
            did(inj.degrade("primary", **DEGRADED_FAULTS))
            return self.mark("fault", "primary degraded")
        if name == "alarm-flapping":
            did(
                "the primary fails and recovers every "
                f"{rules.flap_period(self.subject.trigger.sustain).total_seconds():g}s (shorter than the "
                f"{format_duration(self.subject.trigger.sustain)} sustain window)"
            )
            return self.mark("fault", "flapping starts")
        # Every other scenario ends with the primary region failing: its model server dies and the
        # application's writes to that region stop.
        self._primary_down_for_writes = True
        if self._writer is not None:
            self._writer.stop()
        if name == "region-api-outage":
            did(inj.take_region_down(self.subject.regions.primary))
            did(inj.kill("primary"))
            return self.mark("fault", "primary region down (APIs and endpoint)")
        did(inj.kill("primary"))
        return self.mark("fault", "primary killed")

    def await_outcome(self, fault_at: datetime) -> dict[str, Any] | None:
        """Watch until the automation concluded a failover (or, for no-failover, the window passed)."""
        plan = self.subject
        sustain = plan.trigger.sustain
        expect = self.scenario.expect
        if expect == "no-failover":
            window = rules.observation_window(sustain, self.policy.observe)
            deadline = fault_at + window
        else:
            deadline = fault_at + self.policy.observe + sustain + plan.failover.replication_wait_timeout
        flapping = self.request.scenario == "alarm-flapping"
        half = rules.flap_period(sustain).total_seconds()
        flap_down: bool | None = None
        concluded: dict[str, Any] | None = None
        self.heartbeat("waiting for the automation", force=True)
        while True:
            now = self.now()
            if flapping:
                want_down = (
                    now < deadline - timedelta(seconds=half)
                    and int((now - fault_at).total_seconds() // half) % 2 == 0
                )
                if want_down != flap_down:
                    flap_down = want_down
                    self.injector.degrade("primary", down=want_down)
                    self.mark("fault" if want_down else "heal", "primary down" if want_down else "primary up")
            self.note_switch()
            done = self.concluded_failovers()
            terminal = [c for c in done if c["outcome"] in ("completed", "refused", "failed", "unvalidated")]
            if terminal:
                concluded = terminal[0]
                if expect != "no-failover" and not self.running_failovers():
                    break  # concluded, and its lock released
            elif done and concluded is None:
                concluded = done[-1]  # a suppressed one: keep watching, a real quorum may still form
            if now >= deadline and not self.running_failovers():
                break
            if now >= deadline + timedelta(minutes=5):
                raise DrillInterrupted("stop condition: a failover execution outlived the drill's window")
            self.tick()
        if flapping:
            self.injector.heal("primary")
        self.note_switch()
        if concluded and concluded["outcome"] not in ("completed", "refused", "failed"):
            return None if expect != "no-failover" else concluded
        return concluded

    def running_failovers(self) -> list[str]:
        return [
            arn
            for arn, kind in self._executions.items()
            if kind == "failover" and self.d.executions.describe(arn)["status"] == "RUNNING"
        ]

    def concluded_failovers(self) -> list[dict[str, Any]]:
        """Failover executions the drill caused that concluded, with their ledger outcome, oldest first."""
        out = []
        for decision in self.record.decisions:
            if decision["kind"] != "failover" or decision.get("execution") not in self._executions:
                continue
            if decision.get("error") == "LockHeld":
                continue  # a second quorum's execution found the first one running: not a verdict
            out.append(
                {
                    "execution": decision["execution"],
                    "outcome": decision["outcome"],
                    "reason": decision["reason"],
                    "at": decision["at"],
                }
            )
        return out

    def note_switch(self) -> None:
        """The first time traffic is seen off the primary: the replica is compared now (RPO at the switch)."""
        if self._switch_seen_at is not None:
            return
        weights = self.d.router.read(self.subject).weights
        if weights == ON_PRIMARY:
            return
        self._switch_seen_at = self.now()
        self.stop_writer()
        if self._copy is not None:
            _, copy = self._copy
            self._replica_at_switch = _relative_keys(
                copy.replica_prefix, copy.replica_region, copy.replica_bucket
            )
        self.say("switch", f"traffic moved: {weights}")

    # -- measurements -------------------------------------------------------------------------------------
    def failover_entry(self, execution: str) -> LedgerEntry | None:
        for entry in self.d.ledger.entries(self.subject.workload, limit=100, kind="failover"):
            if entry.execution == execution:
                return entry
        return None

    def measure_failover(self, outcome: dict[str, Any], fault_at: datetime) -> None:
        plan, rec = self.subject, self.record
        entry = self.failover_entry(outcome["execution"])
        detail = entry.detail if entry else {}
        rto = detail.get("outcome") or {}
        shift = (detail.get("shift") or {}).get("detail") or {}
        validated = parse_timestamp(rto["validated_at"]) if rto.get("validated_at") else outcome["at"]
        first_alarm = parse_timestamp(rto["started_at"]) if rto.get("started_at") else fault_at
        decided = parse_timestamp(rto["decided_at"]) if rto.get("decided_at") else first_alarm
        switched = parse_timestamp(shift["at"]) if shift.get("at") else validated
        rec.rto = rules.rto_breakdown(
            fault_at=fault_at,
            first_alarm_at=first_alarm,
            decided_at=decided,
            switched_at=switched,
            validated_at=validated,
        )
        rec.markers.extend(m for m in rules.rto_markers(rec.rto) if m.name != "fault")
        rec.objectives.append(
            rules.objective("RTO", plan.rto, rec.rto.rto_seconds, "first ALARM -> validated")
        )
        if self._copy is not None:
            asset, copy = self._copy
            replica = self._replica_at_switch
            if replica is None:
                replica = _relative_keys(copy.replica_prefix, copy.replica_region, copy.replica_bucket)
            rec.rpo = rules.measure_rpo(
                asset.name,
                plan.asset_rpo(asset),
                self.policy.write_interval,
                self._writer.snapshot() if self._writer else [],
                replica,
                switched,
            )
            rec.objectives.append(
                rules.objective("RPO", plan.asset_rpo(asset), rec.rpo.rpo_seconds, f"writes to {asset.name}")
            )
        else:
            rec.objectives.append(
                rules.objective("RPO", plan.rpo, None, "the plan has no S3 dataset to write to")
            )
        self.say(
            "measured",
            f"RTO {rec.rto.rto_seconds:.1f}s (objective {plan.rto.total_seconds():.0f}s)"
            + (f", RPO {rec.rpo.rpo_seconds:.1f}s" if rec.rpo else ""),
        )

    def measure_no_switch(self, outcome: dict[str, Any] | None, fault_at: datetime) -> None:
        rec = self.record
        entry = self.failover_entry(outcome["execution"]) if outcome and outcome.get("execution") else None
        detail = entry.detail if entry else {}
        trigger = detail.get("trigger") or {}
        recheck = detail.get("recheck") or {}
        end = outcome["at"] if outcome else self.now()
        first = parse_timestamp(trigger["first_alarm_at"]) if trigger.get("first_alarm_at") else None
        first = first or rules.first_alarm_transitions(rec.alarms, fault_at)
        if rec.expectation == "no-failover":
            rec.phases.append(Phase(name="fault", start=fault_at, end=end if outcome else self.now()))
        elif first is not None:
            decided = parse_timestamp(recheck["at"]) if recheck.get("at") else first
            rec.phases += [
                Phase(name="detection", start=fault_at, end=max(first, fault_at)),
                Phase(name="decision", start=first, end=max(decided, first)),
                Phase(name="backup check", start=max(decided, first), end=max(end, decided, first)),
            ]
            self.mark("alarm", "first ALARM", first)
            self.mark("decision", "decision", max(decided, first))
        for decision in rec.decisions:
            if decision["kind"] in ("decision", "failover") and decision["outcome"] in (
                "suppressed",
                "cancelled",
            ):
                self.mark("suppressed", f"{decision['kind']} {decision['outcome']}", decision["at"])
        if outcome and outcome.get("outcome") == "refused":
            self.mark("refused", "failover refused", outcome["at"])
        rec.objectives.append(rules.objective("RTO", self.subject.rto, None, "no switch in this scenario"))

    def await_primary_healthy(self) -> datetime:
        """The primary answers its smoke tests and the trigger alarms are back to OK."""
        plan = self.subject
        deadline = self.now() + RESTORE_TIMEOUT
        self.heartbeat("restoring the primary", force=True)
        while True:
            smoke = run_smoke(plan, "primary", self.d, phase="drill-restore")
            alarms = [s for s in readable_alarms(plan, self.d) if s.state == "ALARM"]
            if smoke.passed and not alarms:
                return self.now()
            if self.now() > deadline:
                raise DrillInterrupted(
                    "stop condition: the primary was not healthy within "
                    f"{format_duration(RESTORE_TIMEOUT)} of the restore "
                    f"({smoke.reason}; alarms: {', '.join(a.name for a in alarms) or 'none'})"
                )
            self.tick()

    def run_failback(self, restored_at: datetime) -> None:
        plan, rec, d = self.subject, self.record, self.d
        bake = self.policy.failback_bake if self.policy.failback_bake is not None else plan.failback.bake
        payload: dict[str, Any] = {
            "workload": plan.workload,
            "reason": f"drill {rec.drill_id}: fail back after {rec.scenario}",
            "requested_by": rec.requested_by,
            "auto": False,
            "bake_seconds": int(bake.total_seconds()),
        }
        name = f"failback-{plan.workload}-{rec.drill_id}"[:80]
        arn, _ = d.executions.start(plan.workload, "failback", name, payload)
        self._executions[arn] = "failback"
        rec.failback_execution = arn
        d.ledger.record(
            plan.workload,
            "drill",
            "failback-requested",
            payload["reason"],
            actor=rec.requested_by,
            execution=arn,
        )
        self.say(
            "failback",
            f"gradual failback started ({' -> '.join(f'{s}%' for s in plan.failback.steps)}, "
            f"bake {format_duration(bake)} per step)",
        )
        started = self.now()
        self.heartbeat("failing back", force=True)
        while True:
            desc = d.executions.describe(arn)
            if desc["status"] != "RUNNING":
                break
            self.tick()
        self.collect_entries()
        entries = [
            e for e in d.ledger.entries(plan.workload, limit=100, kind="failback") if e.execution == arn
        ]
        final = next((e for e in entries if e.outcome != "step"), None)
        rec.failback_outcome = final.outcome if final else desc["status"].lower()
        measured = (final.detail.get("outcome") or {}) if final else {}
        ended = desc.get("stopDate") or self.now()
        start = desc.get("startDate") or started
        rec.failback_seconds = float(measured.get("duration_seconds") or (ended - start).total_seconds())
        rec.phases.extend(
            rules.recovery_timeline(
                None,
                started_at=rec.started_at,
                failback=(start, start + timedelta(seconds=rec.failback_seconds)),
            )
        )
        self.mark(
            "failback", f"failback {rec.failback_outcome}", start + timedelta(seconds=rec.failback_seconds)
        )
        rec.objectives.append(
            rules.objective(
                "failback",
                None,
                rec.failback_seconds,
                f"steps {plan.failback.steps}, bake {format_duration(bake)}",
            )
        )
        self.say("failback", f"failback {rec.failback_outcome} in {rec.failback_seconds:.1f}s")
        del restored_at

    def inspect(self) -> list[str]:
        """What the scenario left behind, before any cleanup: a lock outliving its execution, a ledger that
        disagrees with traffic. Lifeboat gets LEFTOVER_GRACE to tidy up by itself (the janitor runs on the
        execution's status-change event, asynchronously), then whatever is still there is a finding."""
        plan, d = self.subject, self.d
        deadline = self.now() + LEFTOVER_GRACE
        self.heartbeat("checking what the scenario left", force=True)
        while True:
            lock = d.locks.current(plan.workload)
            status = None
            if lock is not None:
                try:
                    status = d.executions.describe(lock.holder)["status"]
                except Exception as exc:  # not an execution we can read: it is not running either
                    logger.warning("lock holder not readable", holder=lock.holder, error=str(exc))
            serving = serving_region(plan, d.router.read(plan).weights)
            found = rules.residue(
                lock_holder=lock.holder if lock else None,
                holder_status=status,
                recorded_region=d.ledger.get_state(plan.workload).active_region,
                serving_region=serving,
                primary=plan.regions.primary,
            )
            if not found or self.now() >= deadline:
                return found
            self.tick()

    def collect_steps(self) -> None:
        history = ExecutionHistory(self.d.executions.prefix)
        for arn, kind in self._executions.items():
            if arn not in (self.record.failover_execution, self.record.failback_execution):
                continue
            try:
                steps = steps_from_history(history.events(arn))
            except Exception as exc:  # the history is evidence, not a reason to fail the drill
                logger.warning("drill could not read history", execution=arn, error=str(exc))
                continue
            self.record.steps.extend(rules.step_timings(kind, steps))

    # -- writes and replication -------------------------------------------------------------------------
    def start_writer(self) -> None:
        if self._copy is None:
            return
        _, copy = self._copy
        self.injector.start_replication([copy])
        self._writer = _Writer(copy, self.policy.write_interval, self.d.clock)
        self._writer.start()
        self.say(
            "writes",
            f"writing to s3://{copy.source_bucket}/{copy.source_prefix} every "
            f"{format_duration(self.policy.write_interval)}",
        )

    def stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.stop()

    # -- cleanup and the record ---------------------------------------------------------------------------
    def cleanup(self, *, interrupted: bool) -> list[str]:
        done = [f"faults: {w}" for w in self.injector.restore_all()]
        done += clean_subject(
            self.subject, self.d, self._executions, since=self.record.started_at, interrupted=interrupted
        )
        if self._copy is not None:
            done.append(remove_writes(self._copy[1]))
        self.injector.close()
        return done

    def finish(self, interrupted: str | None) -> None:
        rec, plan = self.record, self.subject
        rec.ended_at = self.now()
        if rec.rto is not None:
            rec.phases = [
                *rules.recovery_timeline(
                    rec.rto,
                    started_at=rec.started_at,
                    restored_at=next((m.at for m in rec.markers if m.name == "restored"), None),
                ),
                *[p for p in rec.phases if p.name == "failback"],
            ]
        paused = next((m.at for m in rec.markers if m.name == "paused"), None)
        if paused is not None:  # replication-stalled: how long the replica fell behind before the switch
            until = rec.rto.switched_at if rec.rto else rec.ended_at
            rec.phases.insert(0, Phase(name="replication paused", start=paused, end=max(until, paused)))
        rec.verdict, rec.as_expected, rec.verdict_reason = rules.drill_verdict(
            rec.expectation,
            rec.behaviour,
            rec.objectives,
            failback_outcome=rec.failback_outcome,
            interrupted=interrupted,
            leftovers=rec.leftovers,
        )
        if interrupted:
            self.mark("interrupted", "drill interrupted")
        rec.decisions.sort(key=lambda e: e["at"])
        finish_record(rec, self.d, self.evidence, self.reports_dir)
        emit(f"Drill{rec.verdict.capitalize()}", 1, workload=plan.workload, scenario=rec.scenario)
        self.say("verdict", headline(rec))


class SimulatedKill(BaseException):
    """Test seam: behave like a SIGKILL at this point (no cleanup, no record; `recover` must do it)."""


def clean_subject(
    plan: DRPlan, d: Deps, executions: dict[str, str], *, since: datetime, interrupted: bool
) -> list[str]:
    """Leave the subject clean: no drill execution running or holding the lock, traffic all on one side
    (the primary once it is healthy again), the workload state saying where traffic is."""
    done: list[str] = []
    known = dict(executions)
    for kind in ("failover", "failback"):
        try:
            for run in d.executions.running(plan.workload, kind):
                if run["startDate"] >= since - timedelta(seconds=5):
                    known.setdefault(run["executionArn"], kind)
        except LookupError:
            continue
    for arn, kind in known.items():
        if d.executions.describe(arn)["status"] == "RUNNING":
            # The cleanup concludes it (lock, traffic, state below): the janitor leaves it be.
            d.ledger.mark_concluded(plan.workload, arn, "drill")
            d.executions.stop(arn, "stopped by the drill's cleanup")
            done.append(f"stopped the {kind} execution {arn.rsplit(':', 1)[-1]}")
        if d.locks.release(plan.workload, arn):
            done.append(f"released the lock held by {arn.rsplit(':', 1)[-1]}")
    weights = d.router.read(plan).weights
    if weights != ON_PRIMARY:
        primary = run_smoke(plan, "primary", d, phase="drill-cleanup")
        target = ON_PRIMARY if primary.passed else ON_SECONDARY
        if weights != target:
            d.router.shift(plan, target, last_smoke_passed(plan, d))
            for _ in range(10):
                if d.router.read(plan).weights == target:
                    break
                time.sleep(0.5)
            side = "primary" if target == ON_PRIMARY else "secondary (the primary is not healthy yet)"
            done.append(f"traffic was {weights}: all of it moved back to the {side}")
        weights = d.router.read(plan).weights
    active = plan.regions.primary if weights == ON_PRIMARY else plan.regions.secondary
    state = d.ledger.get_state(plan.workload)
    if state.active_region != active or state.pending_execution:
        d.ledger.update_state(plan.workload, current=state, active_region=active, pending_execution=None)
        if interrupted:
            done.append(f"workload state set to {active} active")
    done.append(f"traffic is clean: {weights}")
    return done


def finish_record(record: DrillRecord, d: Deps, evidence: DrillEvidence, reports_dir: Path | None) -> None:
    """Trend, reports, evidence bucket, local files, the ledger summary, and the control record's release."""
    try:
        previous = [
            e.detail
            for e in d.ledger.entries(record.workload, limit=200, kind="drill")
            if e.outcome in ("passed", "breached", "failed", "interrupted")
            and e.detail.get("drill_id") != record.drill_id
        ]
        record.trend = rules.trend_points([*previous, record.summary().model_dump(mode="json")])
    except Exception as exc:  # the trend is a picture; the verdict stands without it
        logger.warning("drill trend unavailable", error=str(exc))
    record.evidence = evidence.urls(record)
    markdown, page = render_markdown(record), render_html(record)
    try:
        evidence.put(record, markdown=markdown, html=page)
    except Exception as exc:
        logger.error("drill evidence not stored", error=str(exc))
        record.cleanup.append(f"evidence bucket unavailable: {type(exc).__name__}: {exc}")
    if reports_dir is not None:
        reports_dir.mkdir(parents=True, exist_ok=True)
        base = reports_dir / f"{record.workload}-{record.drill_id}"
        base.with_suffix(".md").write_text(markdown, encoding="utf-8")
        base.with_suffix(".html").write_text(page, encoding="utf-8")
        record.report_paths = {
            "markdown": str(base.with_suffix(".md")),
            "html": str(base.with_suffix(".html")),
        }
    d.ledger.record(
        record.subject,
        "drill",
        record.verdict,
        f"drill {record.drill_id} ({record.scenario}): {record.verdict_reason}",
        actor=record.requested_by,
        detail=record.summary().model_dump(mode="json"),
    )
    if record.subject != record.workload:
        d.ledger.record(
            record.workload,
            "drill",
            record.verdict,
            f"drill {record.drill_id} on {record.subject}: {record.verdict_reason}",
            actor=record.requested_by,
            detail=record.summary().model_dump(mode="json"),
        )
    d.ledger.delete_control(record.subject, CONTROL_KEY)


# -- recovery of a drill whose process died ------------------------------------------------------------------
def recover(
    workload: str,
    d: Deps,
    injector: FaultInjector | None = None,
    *,
    evidence: DrillEvidence | None = None,
    reports_dir: Path | None = None,
    force: bool = False,
) -> DrillRecord | None:
    """A drill whose lease lapsed (its process died): restore, clean up, record it as interrupted.

    None when no drill is left behind. `force` takes over even a live lease (an operator's decision).
    """
    plan = d.plans.get(workload)
    now = d.clock()
    taken: dict[str, Any] = {}

    def take(current: dict[str, Any] | None) -> dict[str, Any]:
        taken.clear()
        if not current or current.get("status") != "running":
            return current or {"status": "idle"}
        if not force and parse_timestamp(str(current["lease_until"])) > now:
            raise DrillRefused(
                f"drill {current.get('drill_id')} is alive (lease until {current['lease_until']}); "
                "use --force to take it over"
            )
        taken.update(current)
        return {**current, "status": "recovering", "heartbeat_at": now.isoformat()}

    d.ledger.update_control(plan.workload, CONTROL_KEY, take)
    if not taken:
        d.ledger.delete_control(plan.workload, CONTROL_KEY)
        return None
    injector = injector or injector_for(plan)
    evidence = evidence or DrillEvidence(get_settings().evidence_bucket)
    started = parse_timestamp(taken["started_at"])
    record = DrillRecord(
        drill_id=taken["drill_id"],
        workload=taken.get("workload", workload),
        subject=plan.workload,
        mode=taken.get("mode", "local"),
        scenario=taken["scenario"],
        expectation=rules.scenario(taken["scenario"]).expect,
        requested_by=taken.get("requested_by", "lifeboat"),
        reason=taken.get("reason", "DR drill"),
        started_at=started,
        faults=list(taken.get("faults", [])),
    )
    cleanup = [f"faults: {w}" for w in injector.restore_all()]
    cleanup += clean_subject(plan, d, dict(taken.get("executions") or {}), since=started, interrupted=True)
    copy = dataset_copy(plan, record.drill_id)
    if copy is not None:
        cleanup.append(remove_writes(copy[1]))
    injector.close()
    record.cleanup = cleanup
    record.ended_at = d.clock()
    for entry in reversed(d.ledger.entries(plan.workload, limit=100)):
        if entry.at >= started and entry.kind != "drill":
            record.decisions.append(_entry_dict(entry))
    record.verdict, record.as_expected, record.verdict_reason = rules.drill_verdict(
        record.expectation,
        None,
        [],
        interrupted=f"its process stopped during phase {taken.get('phase', '?')} (lease lapsed "
        f"{taken.get('lease_until')}); recovered and cleaned up",
    )
    record.markers.append(Marker(name="interrupted", at=record.ended_at, label="recovered"))
    finish_record(record, d, evidence, reports_dir)
    emit("DrillInterrupted", 1, workload=plan.workload, scenario=record.scenario)
    return record


# -- reading past drills -------------------------------------------------------------------------------------
def list_drills(d: Deps, *, workload: str | None = None, limit: int = 20) -> list[DrillSummary]:
    """Finished drills, newest first, from the ledger (one query per workload)."""
    workloads = [workload] if workload else [p.workload for p in d.plans.all()]
    if workload:
        d.plans.get(workload)
    seen: dict[str, DrillSummary] = {}
    for w in workloads:
        for entry in d.ledger.entries(w, limit=max(limit * 3, 50), kind="drill"):
            if entry.outcome not in ("passed", "breached", "failed", "interrupted"):
                continue
            try:
                summary = DrillSummary.model_validate(entry.detail)
            except Exception:  # an entry from an older format: skip rather than fail the listing
                continue
            if summary.workload == w:
                seen.setdefault(summary.drill_id, summary)
    return sorted(seen.values(), key=lambda s: s.started_at, reverse=True)[:limit]


class UnknownDrill(LookupError):
    def __init__(self, drill_id: str) -> None:
        super().__init__(f"no drill {drill_id!r}")


def get_drill(drill_id: str, d: Deps, evidence: DrillEvidence | None = None) -> DrillRecord:
    evidence = evidence or DrillEvidence(get_settings().evidence_bucket)
    for summary in list_drills(d, limit=500):
        if summary.drill_id == drill_id:
            found = evidence.get(summary.workload, drill_id)
            if found is not None:
                return found
    raise UnknownDrill(drill_id)


# -- requests (API, schedule) and the drill function ------------------------------------------------------
def _requests(d: Deps) -> DrillRequests:
    found = d.extras.get("drill_requests")
    return found if isinstance(found, DrillRequests) else DrillRequests()


def request_drill(
    workload: str, body: DrillBody, actor: str, d: Deps, *, local: bool | None = None
) -> DrillStarted:
    """Check what can be checked now (plan, subject, confirmation), then hand the drill to the drill
    function through EventBridge; the drill's own pre-conditions run there, and a refusal is recorded."""
    plan = d.plans.get(workload)
    scenario = body.scenario or plan.drill.scenario
    request = DrillRequest(
        workload=plan.workload,
        scenario=scenario,
        live=body.live,
        confirm=body.confirm,
        requested_by=actor,
        reason=body.reason or f"{scenario} drill requested by {actor}",
        drill_id=new_drill_id(d.clock()),
    )
    subject, mode = resolve_subject(plan, request, d, local=in_local_cloud() if local is None else local)
    _requests(d).publish(request)
    d.ledger.record(
        subject.workload,
        "drill",
        "requested",
        f"drill {request.drill_id} ({scenario}, {mode}) requested: {request.reason}",
        actor=actor,
        detail={"drill_id": request.drill_id, "scenario": scenario, "mode": mode},
    )
    assert request.drill_id is not None
    return DrillStarted(
        drill_id=request.drill_id,
        workload=plan.workload,
        subject=subject.workload,
        mode=mode,
        scenario=scenario,
        requested_by=actor,
    )


def run_requested(request: DrillRequest, d: Deps) -> dict[str, Any]:
    """The drill function: run a requested drill to the end (a refusal is recorded, not raised)."""
    try:
        record = DrillRunner(request, d).run()
    except DrillRefused as exc:
        plan = d.plans.get(request.workload)
        d.ledger.record(
            plan.workload,
            "drill",
            "refused",
            f"drill {request.drill_id} ({request.scenario}) refused: {exc}",
            actor=request.requested_by,
            detail={"drill_id": request.drill_id, "scenario": request.scenario},
        )
        logger.warning("drill refused", workload=plan.workload, reason=str(exc))
        return {"drill_id": request.drill_id, "refused": str(exc)}
    return record.summary().model_dump(mode="json")


def schedule_monthly(d: Deps, *, local: bool | None = None) -> dict[str, Any]:
    """The monthly schedule: request the drill of every plan that asks for one (on its drill target)."""
    started: dict[str, Any] = {}
    for plan in d.plans.all():
        if plan.drill.schedule != "monthly":
            continue
        try:
            started[plan.workload] = request_drill(
                plan.workload,
                DrillBody(scenario=None, live=False, confirm=None, reason="monthly scheduled drill"),
                "lifeboat (schedule)",
                d,
                local=local,
            ).model_dump(mode="json")
        except DrillRefused as exc:  # e.g. no drill target in an account: say so, keep going
            started[plan.workload] = {"refused": str(exc)}
            d.ledger.record(plan.workload, "drill", "refused", f"scheduled drill refused: {exc}")
    return {"drills": started}


def run_drill(
    request: DrillRequest,
    d: Deps,
    injector: FaultInjector | None = None,
    **kwargs: Any,
) -> DrillRecord:
    """Convenience: build a runner and run it."""
    return DrillRunner(request, d, injector, **kwargs).run()


__all__ = [
    "DrillInterrupted",
    "DrillRefused",
    "DrillRunner",
    "FaultUnsupported",
    "SimulatedKill",
    "UnknownDrill",
    "clean_subject",
    "get_drill",
    "injector_for",
    "list_drills",
    "recover",
    "register_injector",
    "request_drill",
    "run_drill",
    "run_requested",
    "schedule_monthly",
]
