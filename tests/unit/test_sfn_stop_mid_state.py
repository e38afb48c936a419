"""A stopped execution always ends ABORTED in the local cloud, even when moto's engine fails mid-state
or the state it was in fails after the stop."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from moto.stepfunctions.parser.asl.eval.program_state import ProgramRunning, ProgramStopped

from localcloud import sfn_events


class Worker(SimpleNamespace):
    """What the wrapper touches of moto's ExecutionWorker: its environment and its communication."""


def worker(state: Any) -> tuple[Worker, list[str]]:
    ended: list[str] = []
    comm = SimpleNamespace(terminated=lambda: ended.append("terminated"))
    return Worker(env=SimpleNamespace(program_state=lambda: state), _execution_communication=comm), ended


def engine_fails_mid_state(self: Any) -> None:
    raise IndexError("pop from empty list")  # what moto 5.2.5 raised when a stop landed mid-state


def test_a_stopped_execution_whose_engine_fails_mid_state_still_terminates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an execution that was stopped, and an engine that then fails inside the state it was in
    monkeypatch.setitem(sfn_events._state.originals, "_execution_logic", engine_fails_mid_state)
    stopped, ended = worker(ProgramStopped(stop_date=datetime.now(UTC), error=None, cause=None))
    # When its worker thread runs to the end
    sfn_events._patched_execution_logic(stopped)  # type: ignore[arg-type]
    # Then the execution is terminated (moto reflects ABORTED and the status change is sent), as in AWS
    assert ended == ["terminated"]


def test_an_engine_failure_in_a_running_execution_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a running (not stopped) execution whose engine fails
    monkeypatch.setitem(sfn_events._state.originals, "_execution_logic", engine_fails_mid_state)
    running, ended = worker(ProgramRunning())
    # Then the failure propagates as before: only a stop is completed on the engine's behalf
    with pytest.raises(IndexError):
        sfn_events._patched_execution_logic(running)  # type: ignore[arg-type]
    assert ended == []


class Env(SimpleNamespace):
    """What the wrapper touches of moto's Environment: its program state and the mutex guarding it."""


def env(state: Any) -> Env:
    import threading

    return Env(_state_mutex=threading.RLock(), _program_state=state)


def record_error(self: Any, error: Any) -> None:
    self._program_state = ("error", error)  # stands for moto's set_error: the program ends FAILED


def test_a_state_failing_after_the_stop_does_not_turn_the_stop_into_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an execution stopped while a Task was calling Lambda
    monkeypatch.setitem(sfn_events._state.originals, "set_error", record_error)
    stopped = ProgramStopped(stop_date=datetime.now(UTC), error="Manual", cause="stopped from the console")
    e = env(stopped)
    # When the cut-short call then fails the state ("pop from empty list" in moto 5.2.5)
    sfn_events._patched_set_error(e, {"error": "Exception", "cause": "pop from empty list"})  # type: ignore[arg-type]
    # Then the program stays stopped: the execution ends ABORTED, as a stopped execution does in AWS
    assert e._program_state is stopped


def test_a_running_execution_still_fails_on_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a running (not stopped) execution
    monkeypatch.setitem(sfn_events._state.originals, "set_error", record_error)
    e = env(ProgramRunning())
    # When a state fails without a Catch
    sfn_events._patched_set_error(e, {"error": "States.TaskFailed"})  # type: ignore[arg-type]
    # Then the error is recorded as before: the execution ends FAILED
    assert e._program_state == ("error", {"error": "States.TaskFailed"})


class Watched:
    """A moto parser Execution as `_reflect_execution_status` writes it: what it held when its status was
    set is remembered, as a DescribeExecution at that instant would have seen it."""

    def __init__(self, worker: Any) -> None:
        self.exec_worker = worker
        self.sm_type = "EXPRESS"  # no status-change event to send from this unit test
        self.output: Any = None
        self.stop_date: Any = None
        self.error = self.cause = None
        self.seen_with_status: list[tuple[Any, Any]] = []

    @property
    def exec_status(self) -> Any:
        return self.seen_with_status[-1][0] if self.seen_with_status else None

    @exec_status.setter
    def exec_status(self, value: Any) -> None:
        self.seen_with_status.append((value, self.output))


def test_a_succeeded_execution_never_shows_without_its_output() -> None:
    # Given an execution whose program ended with an output
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    states = SimpleNamespace(get_input=lambda: {"report": "done"})
    ended = SimpleNamespace(env=SimpleNamespace(program_state=ProgramEnded, states=states))
    execution = Watched(ended)
    # When moto reflects its end through the local cloud's terminated()
    sfn_events._patched_terminated(BaseExecutionWorkerCommunication(execution))  # type: ignore[arg-type]
    # Then at the instant it became SUCCEEDED its output was already there (moto set it after the status)
    assert [(str(status), output) for status, output in execution.seen_with_status] == [
        ("ExecutionStatus.SUCCEEDED", {"report": "done"})
    ]
