"""Step Functions "Execution Status Change" events in the local cloud.

AWS puts one on the default event bus of the execution's region whenever a Standard workflow's execution
starts or ends (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED); moto puts none. This module makes moto's
Step Functions engine do it, in the documented shape (events/stepfunctions/), so rules on those events —
the janitor's (chalicelib/blueprints/janitor.py) — run in the local cloud as they do in AWS. Delivery to
Lambda targets then goes through localcloud.lambda_runner like every other EventBridge event.

Every status is sent, as in AWS (`install(statuses=...)` narrows it); the rules match what they want (the
janitor's: ABORTED, TIMED_OUT, FAILED). That is cheap because the Lambda runner keeps scheduled rules from
matching events (moto 5.2.5 would match them to every one and run the schedules on each event).

It patches moto internals listed in `GUARDED_INTERNALS`; tests/integration/test_moto_guard.py fails loudly
when one of them changes.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramStopped
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

logger = logging.getLogger(__name__)

SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"
ALL_STATUSES = frozenset({"RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
ENDED = ALL_STATUSES - {"RUNNING"}

# (module, qualified attribute, inspect.signature string) of every moto internal this module relies on.
GUARDED_INTERNALS: list[tuple[str, str, str]] = [
    (
        "moto.stepfunctions.parser.backend.execution",
        "BaseExecutionWorkerCommunication.terminated",
        "(self) -> 'None'",
    ),
    ("moto.stepfunctions.parser.backend.execution", "Execution.start", "(self) -> 'None'"),
    ("moto.stepfunctions.parser.backend.execution_worker", "ExecutionWorker._execution_logic", "(self)"),
    (
        "moto.stepfunctions.parser.asl.eval.environment",
        "Environment.set_error",
        "(self, error: 'ExecutionFailedEventDetails') -> 'None'",
    ),
    (
        "moto.events.models",
        "EventsBackend.put_events",
        "(self, events: 'list[dict[str, Any]]') -> 'list[dict[str, Any]]'",
    ),
]
# Attributes of moto's parser Execution that the event is built from (checked by the guard test too).
EXECUTION_ATTRIBUTES = (
    "self.exec_arn",
    "self.name",
    "self.sm_type",
    "self.account_id",
    "self.region_name",
    "self.state_machine_arn",
    "self.start_date",
    "self.stop_date",
    "self.exec_status",
    "self.input_data",
    "self.output",
)


@dataclass
class _State:
    originals: dict[str, Any] = field(default_factory=dict)
    statuses: frozenset[str] = ALL_STATUSES
    # Recent events put on a bus, for tests that wait on a status change (bounded: nothing grows forever).
    sent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))


_state = _State()
_install_lock = threading.Lock()
_sent = threading.Condition()


def _millis(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _status(execution: Execution) -> str:
    assert execution.exec_status is not None, "moto set no status"  # RUNNING from start(), then how it ended
    return execution.exec_status.value


def status_change_detail(execution: Execution) -> dict[str, Any]:
    """The event's detail, field for field as the AWS documentation shows it (no error/cause)."""
    status = _status(execution)
    succeeded = status == "SUCCEEDED"
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": status,
        "startDate": _millis(execution.start_date),
        "stopDate": None if status == "RUNNING" else _millis(execution.stop_date),
        "input": _json(execution.input_data),
        "inputDetails": {"included": True},
        "output": _json(execution.output) if succeeded else None,
        "outputDetails": {"included": True} if succeeded else None,
    }


def emit(execution: Execution) -> None:
    """Put the status change of `execution` on the default bus of its region (Standard workflows only)."""
    try:
        if getattr(execution.sm_type, "value", execution.sm_type) != "STANDARD":
            return  # Express workflows send no status-change events
        if _status(execution) not in _state.statuses:
            return
        from moto.events.models import events_backends

        detail = status_change_detail(execution)
        at = execution.stop_date if detail["stopDate"] is not None else execution.start_date
        assert at is not None, "moto set no start/stop date"
        backend = events_backends[execution.account_id][execution.region_name]
        answer = backend.put_events(
            [
                {
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Detail": _json(detail),
                    "Resources": [execution.exec_arn],
                    # moto keeps event times as epoch seconds (the Lambda runner renders them ISO-8601)
                    "Time": at.timestamp(),
                }
            ]
        )
        if not answer or "EventId" not in answer[0]:
            logger.error("EventBridge refused the status change of %s: %s", execution.exec_arn, answer)
            return
        with _sent:
            _state.sent.append({"id": answer[0]["EventId"], **detail})
            _sent.notify_all()
    except Exception:  # noqa: BLE001 - an event we failed to send must not break the execution itself
        logger.exception("could not send the status change of %s", getattr(execution, "exec_arn", "?"))


OUTPUT_SOURCE = "self.execution.output = self.execution.exec_worker.env.states.get_input()"
"""How moto's `_reflect_execution_status` takes a succeeded execution's output (the guard test checks it)."""


def _patched_terminated(self: BaseExecutionWorkerCommunication) -> None:
    # moto 5.2.5 marks an execution SUCCEEDED, then sets its output: a DescribeExecution between the two
    # sees a succeeded execution without output, which AWS never shows (a busy machine caught it). The
    # output is set first here; moto then sets the same value again.
    worker = getattr(self.execution, "exec_worker", None)
    env = getattr(worker, "env", None)
    if env is not None and isinstance(env.program_state(), ProgramEnded):
        self.execution.output = env.states.get_input()
    _state.originals.get("terminated", _original_terminated)(self)
    emit(self.execution)


def _patched_start(self: Execution) -> None:
    _state.originals.get("start", _original_start)(self)
    emit(self)


def _patched_execution_logic(self: ExecutionWorker) -> None:
    # moto 5.2.5: a StopExecution landing while a state is half evaluated can make the rest of that state
    # fail inside the engine ("pop from empty list"); the worker thread then dies before `terminated()`, so
    # the execution stays RUNNING for ever and no status change is sent. In AWS a stopped execution always
    # ends ABORTED: end it so here too.
    try:
        _state.originals.get("_execution_logic", _original_execution_logic)(self)
    except Exception:
        env = getattr(self, "env", None)
        if env is None or not isinstance(env.program_state(), ProgramStopped):
            raise
        logger.info("a stopped execution's engine failed mid-state; ending it ABORTED as AWS does")
        self._execution_communication.terminated()


def _patched_set_error(self: Environment, error: Any) -> None:
    # moto 5.2.5: when StopExecution lands while a Task is calling Lambda, the cut-short call fails the
    # state and `set_error` overwrites the stop, so the stopped execution ends FAILED (and the janitor sees
    # FAILED, not ABORTED). In AWS a stopped execution always ends ABORTED: a stop is final here too.
    with self._state_mutex:
        if isinstance(self._program_state, ProgramStopped):
            return
        _state.originals.get("set_error", _original_set_error)(self, error)


_original_terminated = BaseExecutionWorkerCommunication.__dict__["terminated"]
_original_start = Execution.__dict__["start"]
_original_execution_logic = ExecutionWorker.__dict__["_execution_logic"]
_original_set_error = Environment.__dict__["set_error"]


def wait_for(execution_arn: str, status: str, timeout: float = 60.0) -> dict[str, Any]:
    """The detail of the `status` event sent for `execution_arn`; AssertionError after `timeout` seconds."""
    return _wait(execution_arn, {status}, timeout, status)


def wait_for_end(execution_arn: str, timeout: float = 60.0) -> dict[str, Any]:
    """The detail of the event that said `execution_arn` ended (any status but RUNNING)."""
    return _wait(execution_arn, ENDED, timeout, "end")


def ended(execution_arn: str, within: float = 0.0) -> dict[str, Any] | None:
    """Like `wait_for_end`, but None when it has not ended within `within` seconds."""
    try:
        return _wait(execution_arn, ENDED, within, "end")
    except AssertionError:
        return None


def _wait(
    execution_arn: str, statuses: set[str] | frozenset[str], timeout: float, what: str
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with _sent:
        while True:
            for event in _state.sent:
                if event["executionArn"] == execution_arn and event["status"] in statuses:
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no {what} status-change event for {execution_arn} within {timeout}s "
                    f"(is localcloud.sfn_events installed?)"
                )
            _sent.wait(left)


def install(statuses: frozenset[str] = ALL_STATUSES) -> None:
    """Patch moto (idempotent); `statuses`: which status changes are sent."""
    with _install_lock:
        _state.statuses = frozenset(statuses)
        if _state.originals:
            return
        _state.originals["terminated"] = _original_terminated
        _state.originals["start"] = _original_start
        _state.originals["_execution_logic"] = _original_execution_logic
        _state.originals["set_error"] = _original_set_error
        BaseExecutionWorkerCommunication.terminated = _patched_terminated  # type: ignore[method-assign]
        Execution.start = _patched_start  # type: ignore[method-assign]
        ExecutionWorker._execution_logic = _patched_execution_logic  # type: ignore[method-assign]
        Environment.set_error = _patched_set_error  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore moto's own methods (idempotent); forget the events sent."""
    with _install_lock:
        if _state.originals:
            terminated, start = _state.originals.pop("terminated"), _state.originals.pop("start")
            BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]
            Execution.start = start  # type: ignore[method-assign]
            ExecutionWorker._execution_logic = _state.originals.pop("_execution_logic")  # type: ignore[method-assign]
            Environment.set_error = _state.originals.pop("set_error")  # type: ignore[method-assign]
    with _sent:
        _state.sent.clear()


def installed() -> bool:
    return bool(_state.originals)


def original(module: str, qualname: str) -> Any:
    """The moto attribute `module`.`qualname` as moto defines it, even while this module is installed."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return {
        _patched_terminated: _original_terminated,
        _patched_start: _original_start,
        _patched_execution_logic: _original_execution_logic,
        _patched_set_error: _original_set_error,
    }.get(obj, obj)
