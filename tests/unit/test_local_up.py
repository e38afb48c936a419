"""What `lifeboat local up` tells its user: one line per step the daemon takes, then ready or one line saying
why not (the daemon's progress pipe, both ends)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.models.planfile import PlanError, PlanProblem
from lifeboat_cli import cloud as clouds
from localcloud.daemon import Progress, why
from localcloud.modelserver import ModelServerStartError


class Daemon:
    """Stands in for the daemon process the CLI waits on: the exit code it reports when asked."""

    def __init__(self, code: int = 0) -> None:
        self.code = code

    def wait(self, timeout: float | None = None) -> int:
        return self.code


@pytest.fixture
def pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Progress, int]]:
    """The daemon's end (a Progress) and the CLI's end of the progress pipe, in a folder of its own."""
    monkeypatch.chdir(tmp_path)
    read_end, write_end = os.pipe()
    progress = Progress(write_end)
    try:
        yield progress, read_end
    finally:
        progress.close()
        os.close(read_end)


def follow(
    read_end: int, daemon: Daemon | None = None, timeout: float = 5.0, log_start: int = 0
) -> tuple[str, list[str]]:
    heard: list[str] = []
    outcome = clouds._follow(read_end, daemon or Daemon(), timeout, heard.append, log_start)  # type: ignore[arg-type]
    return outcome, heard


def test_each_step_is_heard_in_order_and_ready_ends_the_wait(pipe: tuple[Progress, int]) -> None:
    progress, read_end = pipe
    # Given a daemon that takes three steps and is ready
    for step in ("starting moto server", "starting model server w/primary", "starting the scheduled rules"):
        progress.step(step)
    progress.ready()
    # When the CLI follows it
    outcome, heard = follow(read_end)
    # Then it heard every step, in order, and the daemon is ready
    assert heard == [
        "starting moto server",
        "starting model server w/primary",
        "starting the scheduled rules",
    ]
    assert outcome == "ready"


def test_a_failure_is_one_line_naming_the_step_and_the_reason(pipe: tuple[Progress, int]) -> None:
    progress, read_end = pipe
    # Given a model server that could not start (its error carries the server's whole stderr)
    step = "starting model server fraud-scoring/primary (us-east-1) on http://127.0.0.1:41234/invocations"
    reason = (
        "model server for s3://b/k exited with code 2 before reporting READY: "
        "modelserver: refusing to start: [Errno 98] Address already in use"
    )
    progress.step(step)
    progress.failed(ModelServerStartError(f"{reason}\nits stderr:\nTraceback ...\nOSError: [Errno 98] ..."))
    # When the CLI follows the daemon
    outcome, _ = follow(read_end)
    # Then one line says which step failed and why
    assert outcome == f"{step} failed: {reason}"


def test_a_daemon_that_dies_without_a_word_is_named_with_its_exit_code_and_last_log_line(
    pipe: tuple[Progress, int],
) -> None:
    progress, read_end = pipe
    # Given a daemon that crashed during a step, its traceback in the log
    clouds.LOG.parent.mkdir(parents=True)
    earlier = "2026-01-01 INFO an earlier run's last line\n"
    clouds.LOG.write_text(
        earlier + "Traceback (most recent call last):\n  ...\nRuntimeError: moto would not start\n\n"
    )
    progress.step("starting moto server")
    progress.close()
    # When the CLI follows it
    outcome, _ = follow(read_end, Daemon(code=1), log_start=len(earlier))
    # Then the one line has the exit code, the step and the error from the log
    assert outcome == (
        "the local cloud exited with code 1 while starting moto server: RuntimeError: moto would not start"
    )


def test_a_daemon_that_never_gets_ready_is_given_up_on(pipe: tuple[Progress, int]) -> None:
    progress, read_end = pipe
    # Given a daemon stuck in a step
    progress.step("creating Lifeboat's copy in us-west-2")
    # When the CLI waits for it with a deadline
    outcome, _ = follow(read_end, timeout=0.3)
    # Then it gives up and says where the daemon was
    assert (
        outcome == "the local cloud did not become ready in 0s (still creating Lifeboat's copy in us-west-2)"
    )


def test_a_daemon_whose_waiter_is_gone_keeps_going() -> None:
    # Given a waiter that stopped listening (Ctrl-C on `lifeboat local up`)
    read_end, write_end = os.pipe()
    os.close(read_end)
    progress = Progress(write_end)
    # When the daemon reports its steps
    progress.step("starting moto server")
    progress.ready()
    # Then nothing raises: the daemon is not stopped by a closed pipe


def test_why_is_one_line_a_person_can_act_on() -> None:
    # Given errors as the daemon meets them
    broken_plan = PlanError(
        [
            PlanProblem(source="plans/a.yaml", line=3, field="tier", message="must be critical"),
            PlanProblem(source="plans/a.yaml", line=9, field="rto", message="not a duration"),
        ]
    )
    # Then each is one line: the first plan problem (and how many more), an OS error as it is, a bare
    # Python error with its type
    assert why(broken_plan) == "plans/a.yaml:3 tier: must be critical (and 1 more problems)"
    assert why(OSError(98, "Address already in use")) == "[Errno 98] Address already in use"
    assert why(KeyError("functions")) == "KeyError: 'functions'"
    assert why(RuntimeError("")) == "RuntimeError"


def test_an_earlier_runs_log_is_not_taken_for_this_daemons_last_words(pipe: tuple[Progress, int]) -> None:
    progress, read_end = pipe
    # Given a log holding an earlier run's lines, and a daemon that died before writing any of its own
    clouds.LOG.parent.mkdir(parents=True)
    earlier = "2026-01-01 ERROR an earlier run failed\n"
    clouds.LOG.write_text(earlier)
    progress.close()
    # When the CLI follows it
    outcome, _ = follow(read_end, Daemon(code=-9), log_start=len(earlier))
    # Then the one line does not blame the earlier run
    assert outcome == "the local cloud exited with code -9 while starting the local cloud: nothing in its log"
