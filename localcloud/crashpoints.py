"""Test-only crash points: make something happen at a named state of a local-cloud execution, exactly there.

A test names a state machine, one of its states, and what happens there:
- `fail_task`: the Lambda task of that state fails with `InjectedFault`, before its handler runs or after it
  (its work done, its answer lost). It goes through the Lambda runner's fault hook, so Retry and Catch see a
  real function error;
- `hold_after`: the execution stops moving right after the state (its output and next state are set and its
  StateExited event recorded) until the test lets it go, stops it with StopExecution, or times it out: the
  execution then ends TIMED_OUT exactly as moto ends one whose TimeoutSeconds elapsed (`set_timed_out`);
- `on_enter`: run an action in the execution's own thread as the state is entered (a fault that must land at
  that point whatever the machine's load: a server going down, an operator's pause);
- `fast_forward`: every Wait state of a machine elapses at once, and the test's clock (the one Lifeboat's
  tasks read) moves on by what it would have waited, so a run that waits a second between checks sees the
  second pass without anyone sleeping.

Each point fires once, for the first execution of the machine that gets there. It patches moto's
`CommonStateField._eval_body` and `WaitFunction._eval_body` (GUARDED_INTERNALS, checked by
tests/integration/test_moto_guard.py). Nothing here is in the Lambda package; only tests install it.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from localcloud import lambda_runner
from localcloud.lambda_runner import FaultWhen

logger = logging.getLogger(__name__)

GUARDED_INTERNALS: list[tuple[str, str, str]] = [
    (
        "moto.stepfunctions.parser.asl.component.state.state",
        "CommonStateField._eval_body",
        "(self, env: 'Environment') -> 'None'",
    ),
    (
        "moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function",
        "WaitFunction._eval_body",
        "(self, env: moto.stepfunctions.parser.asl.eval.environment.Environment) -> None",
    ),
    (
        "moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function",
        "WaitFunction._get_wait_seconds",
        "(self, env: moto.stepfunctions.parser.asl.eval.environment.Environment) -> int",
    ),
    ("moto.stepfunctions.parser.asl.eval.environment", "Environment.set_timed_out", "(self) -> 'None'"),
    ("moto.stepfunctions.parser.asl.eval.environment", "Environment.is_running", "(self) -> 'bool'"),
]

HOLD_LIMIT_S = 120.0  # a hold nobody ends lets the execution go on by itself (and says so in the log)

Kind = Literal["fail", "hold", "enter"]


class Hold:
    """An execution held right after a state, until `release`, `time_out` or the test's StopExecution."""

    def __init__(self, machine: str, state: str) -> None:
        self.machine, self.state = machine, state
        self.execution: str | None = None
        self._reached = threading.Event()
        self._go = threading.Event()
        self._time_out = False

    def wait(self, timeout: float) -> str:
        """The held execution's ARN, once one got there; AssertionError naming the state after `timeout`."""
        if not self._reached.wait(timeout):
            raise AssertionError(f"no execution of {self.machine} got past {self.state} within {timeout}s")
        assert self.execution is not None
        return self.execution

    @property
    def reached(self) -> bool:
        return self._reached.is_set()

    def release(self) -> None:
        """Let the execution go on (after a StopExecution: it ends ABORTED before its next state)."""
        self._go.set()

    def time_out(self) -> None:
        """End the execution TIMED_OUT here, as moto does when an execution's TimeoutSeconds elapse."""
        self._time_out = True
        self._go.set()

    def _block(self, env: Any, execution: str) -> None:
        self.execution = execution
        self._reached.set()
        if not self._go.wait(HOLD_LIMIT_S):
            logger.warning("hold after %s of %s expired; the execution goes on", self.state, execution)
        if self._time_out:
            env.set_timed_out()


@dataclass(eq=False)
class Point:
    machine: str  # state machine ARN or name
    state: str
    kind: Kind
    when: FaultWhen | None = None
    action: Callable[[str], None] | None = None
    hold: Hold | None = None
    fired: list[str] = field(default_factory=list)  # executions it fired for (for `fail`: the task failed)
    errors: list[str] = field(default_factory=list)  # what an `on_enter` action raised

    def matches(self, machine_arn: str, machine_name: str, state: str) -> bool:
        return self.state == state and self.machine in (machine_arn, machine_name)


@dataclass
class _Registry:
    points: list[Point] = field(default_factory=list)
    # execution ARN -> the fail point its next Lambda invocation hits
    armed: dict[str, Point] = field(default_factory=dict)
    # state machine -> what moves the test's clock on, instead of a Wait's sleep
    fast: dict[str, Callable[[float], None]] = field(default_factory=dict)
    original: Any = None
    original_wait: Any = None


_registry = _Registry()
_lock = threading.Lock()


# ------------------------------------------------------------------------------------------------ arming


def fail_task(machine: str, state: str, when: FaultWhen) -> Point:
    """The Lambda task of `state` fails with InjectedFault `when` ("before"/"after" its handler runs)."""
    return _add(Point(machine, state, "fail", when=when))


def hold_after(machine: str, state: str) -> Hold:
    hold = Hold(machine, state)
    _add(Point(machine, state, "hold", hold=hold))
    return hold


def on_enter(machine: str, state: str, action: Callable[[str], None]) -> Point:
    """Run `action(execution_arn)` in the execution's thread as `state` is entered (before its task runs)."""
    return _add(Point(machine, state, "enter", action=action))


def fast_forward(machine: str, advance: Callable[[float], None]) -> None:
    """Every Wait of `machine` (ARN or name) elapses at once and calls `advance(seconds)` instead: the test's
    clock moves on by what the Wait would have slept. Until `reset`."""
    _check_installed()
    with _lock:
        _registry.fast[machine] = advance


def reset() -> None:
    """Disarm every point, stop fast-forwarding, and let every held execution go on."""
    with _lock:
        points, _registry.points = _registry.points, []
        _registry.armed.clear()
        _registry.fast.clear()
    for point in points:
        if point.hold is not None:
            point.hold.release()


def _check_installed() -> None:
    if _registry.original is None:
        raise RuntimeError("localcloud.crashpoints is not installed")


def _add(point: Point) -> Point:
    _check_installed()
    with _lock:
        _registry.points.append(point)
    return point


def _take(machine_arn: str, machine_name: str, state: str, kinds: tuple[Kind, ...]) -> list[Point]:
    with _lock:
        found = [
            p
            for p in _registry.points
            if p.kind in kinds and not p.fired and p.matches(machine_arn, machine_name, state)
        ]
        for point in found:
            _registry.points.remove(point)
        return found


# ------------------------------------------------------------------------------------------------- hooks


def _patched_eval_body(self: CommonStateField, env: Any) -> None:
    context = env.states.context_object.context_object_data
    execution = context["Execution"]["Id"]
    machine_arn, machine_name = context["StateMachine"]["Id"], context["StateMachine"]["Name"]
    for point in _take(machine_arn, machine_name, self.name, ("enter", "fail")):
        if point.kind == "fail":
            with _lock:
                _registry.armed[execution] = point
            continue
        point.fired.append(execution)
        try:
            assert point.action is not None
            point.action(execution)
        except Exception as exc:  # noqa: BLE001 - reported to the test through `errors`
            logger.exception("on_enter action at %s failed", self.name)
            point.errors.append(f"{type(exc).__name__}: {exc}")
    try:
        _registry.original(self, env)
    finally:
        with _lock:
            _registry.armed.pop(execution, None)  # a state that called no Lambda leaves nothing armed
    if env.is_running():
        for point in _take(machine_arn, machine_name, self.name, ("hold",)):
            point.fired.append(execution)
            assert point.hold is not None
            point.hold._block(env, execution)


def _patched_wait(self: WaitFunction, env: Any) -> None:
    machine = env.states.context_object.context_object_data["StateMachine"]
    with _lock:
        advance = _registry.fast.get(machine["Id"]) or _registry.fast.get(machine["Name"])
    if advance is None:
        _registry.original_wait(self, env)
        return
    seconds = self._get_wait_seconds(env=env)
    if seconds > 0:
        advance(float(seconds))


def _fault_hook(function_name: str, event: Any) -> FaultWhen | None:
    # Every task of Lifeboat's machines passes its execution's ARN as "execution"; the state that armed a
    # fault for that execution is the one calling now (an execution runs one state at a time).
    execution = event.get("execution") if isinstance(event, dict) else None
    if not isinstance(execution, str):
        return None
    with _lock:
        point = _registry.armed.pop(execution, None)
    if point is None:
        return None
    point.fired.append(execution)
    logger.info("injecting a fault %s %s (%s of %s)", point.when, function_name, point.state, execution)
    return point.when


# ----------------------------------------------------------------------------------------------- install


def install() -> None:
    """Patch moto's state evaluation and hook the Lambda runner (idempotent)."""
    with _lock:
        if _registry.original is None:
            _registry.original = CommonStateField.__dict__["_eval_body"]
            _registry.original_wait = WaitFunction.__dict__["_eval_body"]
            CommonStateField._eval_body = _patched_eval_body  # type: ignore[method-assign]
            WaitFunction._eval_body = _patched_wait  # type: ignore[method-assign]
    lambda_runner.set_fault_hook(_fault_hook)


def uninstall() -> None:
    reset()
    lambda_runner.set_fault_hook(None)
    with _lock:
        if _registry.original is not None:
            CommonStateField._eval_body = _registry.original  # type: ignore[method-assign]
            WaitFunction._eval_body = _registry.original_wait  # type: ignore[method-assign]
            _registry.original = _registry.original_wait = None


def original(module: str, qualname: str) -> Any:
    """The moto attribute `module`.`qualname` as moto defines it, even while this module is installed."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if obj is _patched_eval_body and _registry.original is not None:
        return _registry.original
    if obj is _patched_wait and _registry.original_wait is not None:
        return _registry.original_wait
    return obj
