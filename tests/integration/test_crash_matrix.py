"""Crash-point matrix: every state of the failover and failback machines, broken right there.

For every state of the definitions the plan generates (read from the ASL, so a new state gets its cases
without anyone listing it) the run is broken exactly at that state, in each way that applies:
- raise-before / raise-after (Task states): the state's Lambda function raises, before doing anything or
  after doing its work (the work is done, the answer is lost: a crash or a timeout after the side effect);
- stop: StopExecution right after the state (no Catch runs: the janitor cleans up);
- timeout: the execution times out right after the state. EMULATED: the machines have no execution-wide
  TimeoutSeconds (on purpose, docs/architecture.md "Lock lifecycle") and moto would time one out on the
  wall clock. localcloud.crashpoints ends the execution TIMED_OUT right after the state with moto's own
  `set_timed_out`, which is what moto does when an execution's TimeoutSeconds elapse; the TIMED_OUT status
  change then reaches the janitor through EventBridge as in AWS.

Then, whatever path the run took:
- the lock is free within 60 s (nothing held by the run; a lock another operation held is untouched);
- the ledger's active region equals the read-back traffic (None means the primary; a split is None) and no
  pending execution points at the run;
- traffic never goes nowhere (also sampled right after the state) and never sits 100% on the run's target
  (failover: the secondary, failback: the primary) when that target failed its last smoke test;
- exactly one final notification and one conclusion in the ledger about the run, stating the real outcome:
  the run's own conclusion if it got that far, else the janitor's stopped / timed-out / failed, and both
  naming who serves users as the read-back shows.

Crashes land exactly at their state whatever the machine's load: localcloud.crashpoints holds the execution
right after the state (the test then stops it or times it out) or arms a fault for the state's own Lambda
invocation. Each state is reached by a scenario (ROUTES; by default an operator's run); a scenario that
does not reach its state fails the case. Nothing sleeps: Wait states elapse at once while Lifeboat's clock
(an injected one) moves on by what they would have waited (crashpoints.fast_forward); the one real wait is
the approval timeout scenario's (a Task's TimeoutSeconds, 1 s). One local cloud and stack serve every case;
a case resets only what the previous one changed.

The last test drives three minutes of flapping alarms and then a real outage through an injected clock.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pytest

from chalicelib.clock import Clock, utc_now
from chalicelib.domain.reconcile import serving_region
from chalicelib.models.plan import S3Asset
from chalicelib.models.planfile import load_plan_text
from chalicelib.services import failback_ops as ops
from chalicelib.services.failback import load_control
from chalicelib.services.smoke import last_smoke_passed
from chalicelib.workflows.failback import build_failback
from chalicelib.workflows.failover import build_failover
from localcloud import crashpoints, lambda_runner, sfn_events
from localcloud.alarms import AlarmSimulator, alarm_spec_for
from localcloud.faults import AwsFaults
from localcloud.lambda_runner import FaultWhen
from localcloud.resources import names
from localcloud.server import LocalCloud
from localcloud.stack import endpoint_metric_name
from tests.integration.failback_helpers import (
    DEFAULTS,
    ON_PRIMARY,
    ON_SECONDARY,
    OPERATOR,
    deps,
    ledger,
    locks,
    reconfigure,
    router,
    stop_running,
    wait_for,
)
from tests.integration.stack import Stack, plan_text, running_stack

pytestmark = pytest.mark.timeout(300)

Kind = Literal["failover", "failback"]
Fault = Literal["raise-before", "raise-after", "stop", "timeout"]

# The plan every case runs (on top of failback_helpers.DEFAULTS: no bake, no approval): a short sustain, a
# replication wait of one poll, two failback steps. Scenarios add their own settings.
BASE = {"sustain": "1s", "replication_wait_timeout": "1s", "steps": "[50, 100]"}
ERRORS, LATENCY, CANARY = (
    "fraud-scoring-use1-errors",
    "fraud-scoring-use1-latency",
    "fraud-scoring-use1-canary",
)
FOREIGN = "arn:aws:states:us-east-1:123456789012:execution:someone-else:other-run"
LAGGING_KEY = "datasets/crash-matrix-unreplicated.csv"

CLEANUP_FUNCTIONS = {"acquire_lock", "release_lock", "conclude", "failback_conclude"}
LOCK_FREE_WITHIN_S = 60.0
RUN_WITHIN_S = 60.0  # one run of a scenario, operator answers included
# Notifications that ask a human for something (a parked task token); every other one about a run is final.
WAITING = "waiting_for"


# ------------------------------------------------------------------------------------------ the clock


class TestClock:
    """Lifeboat's clock in this module (deps().clock): the wall clock, unless frozen or moved on."""

    __test__ = False  # not a test class

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen: datetime | None = None
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        with self._lock:
            return self._frozen if self._frozen is not None else utc_now() + self._offset

    def freeze(self, at: datetime) -> None:
        """Time stands still at `at` until moved on (`advance`) or let go (`thaw`, `real`)."""
        with self._lock:
            self._frozen = at

    def thaw(self) -> None:
        """Time goes on with the wall clock from where it stands."""
        with self._lock:
            if self._frozen is not None:
                self._frozen, self._offset = None, self._frozen - utc_now()

    def advance(self, by: timedelta) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += by
            else:
                self._offset += by

    def real(self) -> None:
        with self._lock:
            self._frozen, self._offset = None, timedelta(0)


# ---------------------------------------------------------------------------------------- scenarios


@dataclass
class Run:
    """One case in flight: what the scenario needs to start, steer and judge it."""

    stack: Stack
    clock: TestClock
    kind: Kind
    name: str  # the execution name (operator starts) or the case id (alarm starts are named by the trigger)
    arn: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    cleanups: list[Callable[[], Any]] = field(default_factory=list)

    @property
    def machine(self) -> str:
        return self.stack.resources.state_machines[self.kind]

    @property
    def workload(self) -> str:
        return self.stack.plan.workload


def _noop(_: Run) -> None:
    return None


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: Kind
    start: Callable[[Run], str | None]  # the execution's ARN, or None when the trigger starts it
    plan: tuple[tuple[str, str], ...] = ()  # plan settings on top of BASE
    setup: Callable[[Run], None] = _noop  # the world before the run (faults, alarms, a foreign lock)
    arm: Callable[[Run], None] = _noop  # faults that land at a state (crashpoints.on_enter)
    answer: Callable[[Run, str], None] | None = None  # answers an operator wait of this kind
    alarms: bool = False  # it changes alarm states (reset after it)
    foreign_lock: bool = False  # another operation holds the lock throughout

    def settings(self) -> dict[str, str]:
        return {**DEFAULTS, **BASE, **dict(self.plan)}


def operator_failover(mode: str) -> Callable[[Run], str]:
    def start(run: Run) -> str:
        body = {"workload": run.workload, "mode": mode, "reason": "crash matrix", "requested_by": OPERATOR}
        return str(
            run.stack.sfn.start_execution(stateMachineArn=run.machine, name=run.name, input=json.dumps(body))[
                "executionArn"
            ]
        )

    return start


def alarm_failover(run: Run) -> None:
    """Two of the three trigger alarms went into ALARM seconds ago (sustain window over): the trigger starts
    a failover, named from the quorum (its ARN is read from the trigger's decision)."""
    quorum_since = utc_now() - timedelta(seconds=9)
    run.notes["sustain_until"] = quorum_since + run.stack.plan.trigger.sustain
    sim = AlarmSimulator(run.stack.cloud, warm_up=False)
    sim.set_state(CANARY, "ALARM", "canary failing", now=quorum_since - timedelta(seconds=1))
    sim.set_state(ERRORS, "ALARM", "errors", now=quorum_since)
    lambda_runner.drain()


def operator_failback(run: Run) -> str:
    return ops.start_failback(
        run.workload, "crash matrix", OPERATOR, deps(), name=run.name, claim=True
    ).execution_arn


def direct_failback(**extra: Any) -> Callable[[Run], str]:
    """StartExecution without the operator's lock claim (as the auto schedule and drills start it)."""

    def start(run: Run) -> str:
        body = {"workload": run.workload, "reason": "crash matrix", "requested_by": OPERATOR, "auto": False}
        return str(
            run.stack.sfn.start_execution(
                stateMachineArn=run.machine, name=run.name, input=json.dumps({**body, **extra})
            )["executionArn"]
        )

    return start


def fault(role: str, **faults: Any) -> Callable[[Run], None]:
    def setup(run: Run) -> None:
        run.stack.servers[role].set_faults(**faults)

    return setup


def fault_on_entering(state: str, role: str, **faults: Any) -> Callable[[Run], None]:
    def arm(run: Run) -> None:
        crashpoints.on_enter(run.machine, state, lambda _arn: run.stack.servers[role].set_faults(**faults))

    return arm


def foreign_lock(run: Run) -> None:
    locks(run.stack).acquire(run.workload, FOREIGN, "failback", timedelta(minutes=5))


def lagging_write(run: Run) -> None:
    """A write made before the failover that never reached the replica (replication is not simulated here)."""
    asset = next(a for a in run.stack.plan.assets if isinstance(a, S3Asset) and a.name == "training-data")
    s3 = run.stack.cloud.client("s3")
    s3.put_object(Bucket=asset.source.bucket, Key=LAGGING_KEY, Body=b"written before the failover")
    run.cleanups.append(lambda: s3.delete_object(Bucket=asset.source.bucket, Key=LAGGING_KEY))


def route53_denies_the_first_change(run: Run) -> None:
    """The run's first traffic change fails hard (AccessDenied is not retried): its task raises."""
    faults = AwsFaults()
    faults.add("route53", "ChangeResourceRecordSets", 1, status=403, code="AccessDenied")
    run.cleanups.append(faults.clear)


def early_wake(run: Run) -> None:
    """The sustain wait ends early (some engines round a timestamp down): the first recheck sees half a
    second of the window left and waits again."""
    crashpoints.on_enter(
        run.machine,
        "RecheckQuorum",
        lambda _: run.clock.freeze(run.notes["sustain_until"] - timedelta(seconds=0.5)),
    )
    crashpoints.on_enter(run.machine, "WaitRemainingSustain", lambda _: run.clock.real())


def pause_at_first_bake_check(run: Run) -> None:
    crashpoints.on_enter(
        run.machine, "CheckBake", lambda arn: ops.pause(arn, OPERATOR, deps(), reason="look")
    )


def set_gate(state: str) -> Callable[[Run], None]:
    def setup(run: Run) -> None:
        AlarmSimulator(run.stack.cloud, warm_up=False).set_state(ERRORS, state, f"crash matrix: {state}")
        lambda_runner.drain()

    return setup


def answer_with(action: str) -> Callable[[Run, str], None]:
    def answer(run: Run, kind: str) -> None:
        if action == "approve" and kind == "approval":
            ops.approve(run.arn or "", OPERATOR, deps())
        elif action == "reject" and kind == "approval":
            ops.reject(run.arn or "", OPERATOR, deps(), reason="not now")
        elif action == "resume" and kind in ("pause", "decision"):
            if kind == "decision":  # the metrics are back: the gates can decide
                AlarmSimulator(run.stack.cloud, warm_up=False).set_state(ERRORS, "OK", "data again")
            ops.resume(run.arn or "", OPERATOR, deps())

    return answer


SCENARIOS = [
    # -- failover --
    Scenario("operator", "failover", operator_failover("ungraceful")),
    Scenario("graceful", "failover", operator_failover("graceful")),
    Scenario("lagging", "failover", operator_failover("graceful"), setup=lagging_write),
    Scenario(
        "broken-backup",
        "failover",
        operator_failover("ungraceful"),
        setup=fault("secondary", wrong_answers=True),
    ),
    Scenario("locked", "failover", operator_failover("ungraceful"), setup=foreign_lock, foreign_lock=True),
    Scenario(
        "post-switch-fails",
        "failover",
        operator_failover("ungraceful"),
        arm=fault_on_entering("SmokeTestAfterSwitch", "secondary", wrong_answers=True),
    ),
    Scenario("alarm", "failover", alarm_failover, setup=fault("primary", down=True), alarms=True),
    Scenario("false-alarm", "failover", alarm_failover, alarms=True),
    Scenario(
        "early-wake",
        "failover",
        alarm_failover,
        setup=fault("primary", down=True),
        arm=early_wake,
        alarms=True,
    ),
    # -- failback --
    Scenario("operator", "failback", operator_failback),
    Scenario("drill-bake", "failback", direct_failback(bake_seconds=0)),
    Scenario("baking", "failback", operator_failback, plan=(("bake", "1s"),)),
    Scenario(
        "paused", "failback", operator_failback, arm=pause_at_first_bake_check, answer=answer_with("resume")
    ),
    Scenario(
        "inconclusive",
        "failback",
        operator_failback,
        setup=set_gate("INSUFFICIENT_DATA"),
        answer=answer_with("resume"),
        alarms=True,
    ),
    Scenario("gate-fails", "failback", operator_failback, setup=set_gate("ALARM"), alarms=True),
    Scenario(
        "final-fails",
        "failback",
        operator_failback,
        arm=fault_on_entering("FinalValidation", "primary", wrong_answers=True),
    ),
    Scenario("not-ready", "failback", operator_failback, setup=fault("primary", wrong_answers=True)),
    Scenario("shift-denied", "failback", operator_failback, setup=route53_denies_the_first_change),
    Scenario("locked", "failback", direct_failback(), setup=foreign_lock, foreign_lock=True),
    Scenario(
        "approval",
        "failback",
        operator_failback,
        plan=(("approval_required", "true"),),
        answer=answer_with("approve"),
    ),
    Scenario(
        "rejected",
        "failback",
        operator_failback,
        plan=(("approval_required", "true"),),
        answer=answer_with("reject"),
    ),
    Scenario(
        "approval-times-out",
        "failback",
        operator_failback,
        plan=(("approval_required", "true"), ("approval_timeout", "1s")),
    ),
]
SCENARIO = {(s.kind, s.name): s for s in SCENARIOS}

# Which scenario reaches a state; states not listed are reached by the operator's run. A state listed with
# several scenarios gets its cases in each (a passing and a failing final validation, say).
ROUTES: dict[Kind, dict[str, tuple[str, ...]]] = {
    "failover": {
        "WaitSustain": ("alarm",),
        "RecheckQuorum": ("alarm",),
        "QuorumHeld": ("alarm",),
        "ConfirmOutage": ("alarm",),
        "PrimaryStillHealthy": ("alarm",),
        "Suppress": ("false-alarm",),
        "WaitRemainingSustain": ("early-wake",),
        "RecordLockRefusal": ("locked",),
        "RefuseBackupUnhealthy": ("broken-backup",),
        "CheckReplication": ("graceful",),
        "ReplicationCaughtUp": ("graceful",),
        "WaitForReplication": ("lagging",),
        "SmokeTestAfterSwitch": ("operator", "post-switch-fails"),
        "Conclude": ("post-switch-fails",),
    },
    "failback": {
        "RecordLockRefusal": ("locked",),
        "RefuseNotReady": ("not-ready",),
        "RequestApproval": ("approval",),
        "Approved": ("approval",),
        "ApprovalRejected": ("rejected",),
        "ApprovalTimedOut": ("approval-times-out",),
        "ApplyDrillBake": ("drill-bake",),
        "Bake": ("baking",),
        "Paused": ("paused",),
        "AwaitDecision": ("inconclusive",),
        "Rollback": ("gate-fails",),
        "VerifyRollback": ("gate-fails",),
        "ConcludeRolledBack": ("gate-fails",),
        "FinalValidation": ("operator", "final-fails"),
        "Conclude": ("shift-denied",),
    },
}


# ----------------------------------------------------------------------------------- the cases (ASL)


def _definition(kind: Kind, settings: dict[str, str]) -> dict[str, Any]:
    text = plan_text("http://127.0.0.1:9/invocations", "http://127.0.0.1:9/invocations", **settings)
    plan = load_plan_text(text, "test-plan.yaml")
    build = build_failover if kind == "failover" else build_failback
    return build(plan, lambda fn: f"arn:aws:lambda:us-east-1:123456789012:function:lifeboat-dev-{fn}")


@dataclass(frozen=True)
class StateInfo:
    type: str
    function: str | None  # the Lambda function a Task state calls (Chalice name)


def _states(kind: Kind) -> dict[str, StateInfo]:
    """Every state of the machines the scenarios of `kind` run, in definition order."""
    states: dict[str, StateInfo] = {}
    for scenario in SCENARIOS:
        if scenario.kind == kind:
            for name, state in _definition(kind, scenario.settings())["States"].items():
                resource = (state.get("Parameters") or {}).get("FunctionName") or state.get("Resource", "")
                function = resource.rsplit("lifeboat-dev-", 1)[-1] if state["Type"] == "Task" else None
                states.setdefault(name, StateInfo(state["Type"], function))
    return states


@dataclass(frozen=True)
class Case:
    kind: Kind
    state: str
    fault: Fault
    scenario: str

    @property
    def id(self) -> str:
        return "-".join((self.kind, self.state, self.fault, self.scenario))


def faults_for(info: StateInfo) -> tuple[Fault, ...]:
    """Every state: stopped and timed out right after it. A Task also raises after doing its work (the
    harder case: its effects happened and the machine does not know); the tasks that own the run's cleanup
    (the lock, the conclusion) also raise before doing anything, since then the cleanup never happened.
    (Before its work, any other task fails with the world as the previous task's raise-after leaves it.)"""
    if info.type in ("Succeed", "Fail"):
        return ()  # the execution has ended: there is no "right after" to crash in
    if info.type != "Task":
        return ("stop", "timeout")
    before: tuple[Fault, ...] = ("raise-before",) if info.function in CLEANUP_FUNCTIONS else ()
    return (*before, "raise-after", "stop", "timeout")


def _cases() -> list[Case]:
    cases = []
    for kind in ("failover", "failback"):
        for state, info in _states(kind).items():
            for scenario in ROUTES[kind].get(state, ("operator",)):
                cases += [Case(kind, state, f, scenario) for f in faults_for(info)]
    # Grouped by scenario, so the plan is re-provisioned only when the scenario's settings change.
    order = {(s.kind, s.name): i for i, s in enumerate(SCENARIOS)}
    return sorted(cases, key=lambda c: order[(c.kind, c.scenario)])


CASES = _cases()


# ------------------------------------------------------------------------------------------- fixtures


@dataclass
class World:
    """The module's one local cloud and stack, Lifeboat's clock, adapters the checks reuse, and what the
    previous case left that the next one must undo."""

    stack: Stack
    clock: TestClock
    settings: dict[str, str]
    alarms_dirty: bool = False
    clean: bool = True  # the previous case ended its execution (else: stop whatever still runs)

    def __post_init__(self) -> None:
        self.router = router(self.stack)  # one router: it caches the hosted zone's id
        self.ledger = ledger(self.stack)
        self.locks = locks(self.stack)


@pytest.fixture(scope="module")
def world(local_cloud: LocalCloud) -> Iterator[World]:
    settings = {**DEFAULTS, **BASE}
    with running_stack(local_cloud, **settings) as stack:
        d = deps()
        real_clock: Clock = d.clock
        d.clock = clock = TestClock()
        crashpoints.install()
        try:
            yield World(stack, clock, settings)
        finally:
            crashpoints.uninstall()
            d.clock = real_clock


def reset_alarms(stack: Stack) -> None:
    """Every alarm back to OK without an event (re-putting an alarm resets it in moto): nothing reacts."""
    cw = stack.cloud.client("cloudwatch", stack.plan.regions.primary)
    metric = endpoint_metric_name(stack.plan, "primary")
    for alarm in dict.fromkeys([*stack.plan.trigger.alarms, *stack.plan.failback.gate_alarms]):
        cw.put_metric_alarm(**alarm_spec_for(alarm, metric))


def prepare(world: World, scenario: Scenario) -> None:
    """The world before a case: nothing running, no faults, clean tables, traffic where the kind starts."""
    stack = world.stack
    crashpoints.reset()
    world.clock.real()
    if not world.clean:
        stop_running(stack)
    world.clean = False
    for server in stack.servers.values():
        server.clear_faults()
    settings = scenario.settings()
    if world.settings != settings:
        reconfigure(stack, **settings)
        world.settings = settings
    if world.alarms_dirty:
        reset_alarms(stack)
    world.alarms_dirty = scenario.alarms
    stack.clear_tables()
    if scenario.kind == "failover":
        world.router.shift(stack.plan, ON_PRIMARY, {})
    else:
        world.router.shift(stack.plan, ON_SECONDARY, {})
        world.ledger.update_state(
            stack.plan.workload,
            active_region=stack.plan.regions.secondary,
            last_failover_at=utc_now() - timedelta(hours=1),
        )
    inbox(stack)


# ------------------------------------------------------------------------------------------ the runs


def started_by_trigger(world: World) -> str | None:
    entries = world.ledger.entries(world.stack.plan.workload, kind="decision")
    return next((e.execution for e in entries if e.outcome == "started" and e.execution), None)


def steer(world: World, run: Run, scenario: Scenario, until: Callable[[], bool]) -> None:
    """Answer the run's operator waits until `until()` or the run ends; bounded by RUN_WITHIN_S."""
    deadline = time.monotonic() + RUN_WITHIN_S
    answered: set[str] = set()
    while not until():
        if run.arn is None:
            run.arn = started_by_trigger(world)
            time.sleep(0.01)
        elif sfn_events.ended(run.arn, within=0.01) is not None:
            return
        elif scenario.answer is not None:
            pending = load_control(run.workload, run.arn, deps()).pending
            if pending is not None and pending.token not in answered:
                answered.add(pending.token)
                scenario.answer(run, pending.kind)
        if time.monotonic() > deadline:
            raise AssertionError(f"{run.name}: still running after {RUN_WITHIN_S}s ({scenario.name})")


def run_case(world: World, case: Case) -> tuple[Run, str, dict[str, int]]:
    """Break the run as the case says; returns the run, how its execution ended, and the traffic read
    right after the state (for the never-nowhere invariant)."""
    scenario = SCENARIO[(case.kind, case.scenario)]
    prepare(world, scenario)
    stack = world.stack
    run = Run(stack=stack, clock=world.clock, kind=case.kind, name=f"crash-{case.id}"[:80])
    scenario.setup(run)
    # Waits (a bake, a replication poll, an early wake's re-wait) elapse at once on Lifeboat's clock
    crashpoints.fast_forward(run.machine, lambda seconds: world.clock.advance(timedelta(seconds=seconds)))
    scenario.arm(run)
    point, hold = None, None
    if case.fault in ("raise-before", "raise-after"):
        when: FaultWhen = "before" if case.fault == "raise-before" else "after"
        point = crashpoints.fail_task(run.machine, case.state, when)
    else:
        hold = crashpoints.hold_after(run.machine, case.state)
    try:
        run.arn = scenario.start(run)
        steer(world, run, scenario, until=lambda: hold is not None and hold.reached)
        during = world.router.read(stack.plan).weights
        if hold is not None:
            assert hold.reached, f"{case.scenario} never got past {case.state}: the run ended first"
            run.arn = hold.execution
            if case.fault == "stop":
                stack.sfn.stop_execution(
                    executionArn=run.arn, error="CrashMatrix", cause=f"stopped after {case.state}"
                )
                hold.release()
            else:
                hold.time_out()
        else:
            assert point is not None
            steer(world, run, scenario, until=lambda: False)
            assert point.fired, f"{case.scenario} never ran the task of {case.state}"
            assert run.arn is not None
        # The status change is the janitor's cue, sent as Step Functions sends it; then its run ends.
        status = str(sfn_events.wait_for_end(run.arn, timeout=RUN_WITHIN_S)["status"])
        assert lambda_runner.drain(timeout=RUN_WITHIN_S), "the janitor's run is still going"
        world.clean = True
    finally:
        crashpoints.reset()  # never leave an execution held
        for cleanup in run.cleanups:
            cleanup()
    expected = {"stop": "ABORTED", "timeout": "TIMED_OUT"}.get(case.fault)
    assert expected is None or status == expected, f"ended {status}, expected {expected}"
    return run, status, during


# ----------------------------------------------------------------------------------------- invariants

# What the one final notification's subject says for each recorded conclusion (kind, outcome).
OUTCOME_WORDS = {
    ("failover", "completed"): "failed over to",
    ("failover", "suppressed"): "failover suppressed -",
    ("failover", "refused"): "failover refused -",
    ("failover", "failed"): "FAILOVER FAILED -",
    ("failover", "unvalidated"): "FAILOVER UNVALIDATED -",
    ("failback", "completed"): "failed back to",
    ("failback", "refused"): "failback refused -",
    ("failback", "rolled_back"): "failback ROLLED BACK to",
    ("failback", "aborted"): "failback aborted -",
    ("failback", "failed"): "FAILBACK FAILED -",
}
JANITOR_OUTCOMES = {"ABORTED": "stopped", "TIMED_OUT": "timed-out", "FAILED": "failed"}


@functools.cache
def _inbox_url(cloud: LocalCloud) -> str:
    queue = names(cloud.stage).notifications_inbox
    return str(cloud.client("sqs").get_queue_url(QueueName=queue)["QueueUrl"])


def inbox(stack: Stack) -> list[dict[str, Any]]:
    """Every notification waiting in the inbox queue, removed from it (Stack.inbox, in batches)."""
    sqs, url = stack.cloud.client("sqs"), _inbox_url(stack.cloud)
    out: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out += [json.loads(m["Body"]) for m in messages]
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    return out


def final_notifications(stack: Stack, execution: str) -> list[str]:
    """Subjects of the notifications about `execution` that ask nobody for anything (the final word)."""
    subjects = []
    for message in inbox(stack):
        text = message.get("Message", "")
        at = text.rfind("\n\n{")
        facts = json.loads(text[at + 2 :]) if at >= 0 else {}
        if facts.get("execution") == execution and WAITING not in facts:
            subjects.append(message.get("Subject", ""))
    return subjects


def conclusions(world: World, execution: str, kind: Kind) -> list[Any]:
    non_final = {"step", "waiting-approval", "paused", "awaiting-decision"}
    return [
        e
        for e in world.ledger.entries(world.stack.plan.workload, limit=200, kind=kind)
        if e.execution == execution and e.outcome not in non_final
    ]


def says_who_serves(subject: str, stack: Stack, weights: dict[str, int]) -> bool:
    plan = stack.plan
    active = serving_region(plan, weights)
    if active == plan.regions.secondary and f"failed over to {active}" in subject:
        return True
    if active == plan.regions.primary and f"failed back to {active}" in subject:
        return True
    return subject.endswith(f"{active} serves users" if active else "TRAFFIC SPLIT")


def check_invariants(world: World, run: Run, status: str, during: dict[str, int], foreign: bool) -> None:
    stack, w, arn = run.stack, run.workload, run.arn
    assert arn is not None
    plan = stack.plan

    # The lock: free within 60 s (the janitor's release included); another operation's lock untouched.
    def released() -> tuple[Any] | None:  # (the lock now,) once the run holds it no more
        lock = world.locks.current(w)
        return (lock,) if lock is None or lock.holder != arn else None

    held = wait_for(released, timeout=LOCK_FREE_WITHIN_S, what=f"the lock of {arn} to be released")[0]
    assert (held.holder if held else None) == (FOREIGN if foreign else None), held
    # Traffic: somewhere, all the time.
    weights = world.router.read(plan).weights
    for seen in (during, weights):
        assert sum(seen.values()) > 0, f"zero weight everywhere: {seen}"
    # The ledger follows the read-back traffic; nothing pending points at the ended run.
    state = world.ledger.get_state(w)
    active = serving_region(plan, weights)
    recorded = state.active_region if active is None else (state.active_region or plan.regions.primary)
    assert recorded == active, f"ledger says {state.active_region}, traffic is {weights}"
    assert state.pending_execution != arn
    # Never 100% on the run's target after it failed its last smoke test.
    target = "secondary" if run.kind == "failover" else "primary"
    if last_smoke_passed(plan, deps())[target] is False:
        assert weights[target] < 100, f"100% on the {target}, which failed its last smoke test"
    # One conclusion in the ledger, true to the read-back; the janitor's when the run never concluded.
    concluded = conclusions(world, arn, run.kind)
    assert len(concluded) == 1, [(e.outcome, e.reason) for e in concluded]
    entry = concluded[0]
    assert entry.detail.get("traffic_after") == weights, entry.detail
    by = world.ledger.concluded_by(w, arn)
    if by == "janitor":  # how the run really ended: stopped, timed-out, failed
        assert entry.outcome == JANITOR_OUTCOMES[status], (entry.outcome, status)
        words = f"{run.kind} {entry.outcome.upper()} -"
    else:
        assert by == "execution", by
        words = OUTCOME_WORDS[(run.kind, entry.outcome)]
    # And one final notification saying that conclusion and who serves users.
    finals = final_notifications(stack, arn)
    assert len(finals) == 1, finals
    assert words in finals[0], (finals[0], entry.outcome)
    assert says_who_serves(finals[0], stack, weights), (finals[0], weights)


# ------------------------------------------------------------------------------------------- the matrix


def test_every_state_of_both_machines_has_its_cases() -> None:
    # Given the states of the generated definitions
    for kind in ("failover", "failback"):
        states = _states(kind)  # type: ignore[arg-type]
        covered = {c.state for c in CASES if c.kind == kind}
        # Then every state a run can be in (all but Succeed/Fail) has cases, every route names a real state
        assert covered == {s for s, i in states.items() if i.type not in ("Succeed", "Fail")}
        assert set(ROUTES[kind]) <= set(states), set(ROUTES[kind]) - set(states)  # type: ignore[index]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_run_broken_at_any_state_leaves_a_free_lock_a_true_ledger_and_one_true_notification(
    world: World, case: Case
) -> None:
    # Given the scenario that reaches the state, with the crash armed for exactly that state
    # When the run gets there and breaks as the case says (raise, stop right after, time out right after)
    run, status, during = run_case(world, case)
    # Then the lock is free, the ledger says what traffic says, traffic goes somewhere safe, and people got
    # exactly one final word that states what really happened
    check_invariants(world, run, status, during, SCENARIO[(case.kind, case.scenario)].foreign_lock)


# ---------------------------------------------------------------------------------------------- flapping

FLAPS = 9  # ALARM 15 s, OK 5 s: nine flaps are three minutes
FLAP_ALARM, FLAP_OK = timedelta(seconds=15), timedelta(seconds=5)


def failover_executions(stack: Stack) -> dict[str, str]:
    """ARN -> status of every execution of the failover machine."""
    pages = stack.sfn.get_paginator("list_executions").paginate(
        stateMachineArn=stack.resources.state_machines["failover"]
    )
    return {e["executionArn"]: e["status"] for page in pages for e in page["executions"]}


def entered(stack: Stack, execution: str) -> list[str]:
    history = stack.sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def test_three_minutes_of_a_flapping_alarm_then_a_real_outage_fail_over_exactly_once_within_the_rto(
    world: World,
) -> None:
    """The shipped plan as it is (quorum 2 of 3, sustain 20 s, cooldown 10 m, confirmation probe, RTO 5 m):
    three minutes of a flapping alarm start no failover; the real outage after it fails over once.

    Time, not scaled: the alarm events carry the times of an injected clock, which is Lifeboat's own clock
    too (deps().clock: the trigger's and the recheck's "now", the RTO measurement). It stands ten minutes
    behind the wall clock, so the machine's sustain Wait (a TimestampPath) is over at once in moto's
    wall-clock terms and the sustain window is judged by the recheck on the injected clock alone. During the
    flapping the clock only moves by the test's steps (ALARM 15 s, OK 5 s, nine times: three minutes of
    event time in a few seconds of wall time). When the real outage comes, its failover is held right after
    its sustain Wait while the clock moves on by the window (what that Wait stands for), then the clock runs
    with the wall clock again: the measured RTO is the window plus the automation's real time.
    """
    stack, clock = world.stack, world.clock
    plan_settings = dict(DEFAULTS)
    crashpoints.reset()
    if not world.clean:
        stop_running(stack)
    world.clean = False
    reconfigure(stack, **plan_settings)
    world.settings, world.alarms_dirty = plan_settings, True
    plan = stack.plan
    assert (plan.trigger.quorum, plan.trigger.sustain, plan.rto) == (
        2,
        timedelta(seconds=20),
        timedelta(minutes=5),
    )
    assert plan.trigger.sustain > FLAP_ALARM and timedelta(minutes=3) == FLAPS * (FLAP_ALARM + FLAP_OK)
    reset_alarms(stack)
    stack.clear_tables()
    world.router.shift(plan, ON_PRIMARY, {})
    inbox(stack)
    for server in stack.servers.values():
        server.clear_faults()
    before = set(failover_executions(stack))
    clock.freeze(utc_now() - timedelta(minutes=10))
    sim = AlarmSimulator(stack.cloud, warm_up=False, clock=clock)

    def set_alarm(name: str, state: str) -> None:
        sim.set_state(name, state, f"{name}: {state}")
        lambda_runner.drain()  # the trigger has decided (started, cancelled or ignored) before time moves

    try:
        # Given a primary that really fails on and off (the confirmation probe would agree: only the sustain
        # window stands between the flapping and a failover), with its latency alarm in ALARM throughout
        stack.servers["primary"].set_faults(down=True)
        set_alarm(LATENCY, "ALARM")
        # When its errors alarm toggles for three minutes, each ALARM shorter than the sustain window
        for _ in range(FLAPS):
            set_alarm(ERRORS, "ALARM")
            clock.advance(FLAP_ALARM)
            set_alarm(ERRORS, "OK")
            clock.advance(FLAP_OK)
        set_alarm(LATENCY, "OK")

        def all_ended() -> dict[str, str] | None:
            runs = failover_executions(stack)
            return None if "RUNNING" in runs.values() else runs

        ended = wait_for(all_ended, timeout=RUN_WITHIN_S, what="the flapping's failovers to end")
        flaps = {arn: status for arn, status in ended.items() if arn not in before}
        # Then every quorum started a failover and every flap cancelled it in its sustain window: none took
        # the lock, traffic never moved, nothing failed over
        assert len(flaps) == FLAPS and set(flaps.values()) == {"ABORTED"}, flaps
        assert not any("AcquireLock" in entered(stack, arn) for arn in flaps)
        assert world.router.read(plan).weights == ON_PRIMARY
        assert world.ledger.entries(plan.workload, kind="failover") == []
        decisions = [e.outcome for e in world.ledger.entries(plan.workload, limit=200, kind="decision")]
        assert (decisions.count("started"), decisions.count("cancelled")) == (FLAPS, FLAPS), decisions

        # When the real outage comes: the canary alarm joins, the errors alarm stays in ALARM
        hold = crashpoints.hold_after(stack.resources.state_machines["failover"], "WaitSustain")
        outage_at = clock()
        set_alarm(CANARY, "ALARM")
        clock.advance(timedelta(seconds=1))
        set_alarm(ERRORS, "ALARM")
        # (the sustain window passes while the failover waits it out; then time runs on)
        arn = hold.wait(RUN_WITHIN_S)
        clock.advance(plan.trigger.sustain + timedelta(seconds=1))
        clock.thaw()
        hold.release()
        status = sfn_events.wait_for_end(arn, timeout=RUN_WITHIN_S)["status"]
        assert lambda_runner.drain(timeout=RUN_WITHIN_S)
        # Then exactly one failover ran after the flapping, and it completed: all traffic on the secondary
        after = {a: st for a, st in failover_executions(stack).items() if a not in before and a not in flaps}
        assert after == {arn: "SUCCEEDED"} and status == "SUCCEEDED", after
        assert "FailedOver" in entered(stack, arn)
        assert world.router.read(plan).weights == ON_SECONDARY
        assert [e.outcome for e in world.ledger.entries(plan.workload, kind="failover")] == ["completed"]
        # And within the plan's RTO (measured from the outage's first alarm), the window honoured
        rto = world.ledger.get_state(plan.workload).last_rto_seconds
        assert rto is not None
        assert plan.trigger.sustain.total_seconds() <= rto <= plan.rto.total_seconds(), rto
        assert rto <= (clock() - outage_at).total_seconds()
        assert world.locks.current(plan.workload) is None
        world.clean = True
    finally:
        crashpoints.reset()
        clock.real()
        for server in stack.servers.values():
            server.clear_faults()
