"""`lifeboat watch` (lifeboat_cli/watch.py) rendering captured runs: plain lines for pipes, the live view for
terminals, the verdict line, exit codes, and Ctrl-C."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from lifeboat_cli import watch as cli_watch
from tests.unit.test_watch_view import Captured


class ReplayedWatch:
    """Stands in for services.watch.ExecutionWatch: each read sees `step` more events of a captured run."""

    def __init__(self, name: str, step: int = 7) -> None:
        self.run = Captured(name)
        self.name = self.run.desc["name"]
        self.step = step
        self.seen = 0

    def read(self) -> Any:
        self.seen = min(len(self.run.events), self.seen + self.step)
        return SimpleNamespace(events=self.run.events[: self.seen])

    def view(self, snapshot: Any = None, *, upto: int | None = None) -> Any:
        if upto is not None:
            return self.run.at(upto)
        seen = len((snapshot or self.read()).events)
        return self.run.at(None if seen == len(self.run.events) else seen)


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False, color_system=None), out


def test_a_pipe_gets_one_line_per_change_then_the_verdict_and_exit_0() -> None:
    # Given a completed failback watched through a pipe, 7 new history events per poll
    console, out = plain_console()
    # When it is followed
    code = cli_watch.follow(ReplayedWatch("failback-completed"), console, live=False, sleep=lambda _s: None)
    lines = out.getvalue().splitlines()
    # Then every line starts with a time, no two consecutive lines say the same, and the last is the verdict
    assert code == 0
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines[:-1])
    body = [line[9:] for line in lines[:-1]]
    assert all(a != b for a, b in zip(body, body[1:], strict=False))
    assert re.fullmatch(r"now serving from us-east-1 again, failback took \S+ in 4 steps", lines[-1])
    # And no change between two polls was lost: each step's split appears
    for share in (10, 25, 50, 100):
        assert any(f"us-east-1 {share}%, us-west-2 {100 - share}%" in line for line in lines)


@pytest.mark.parametrize(
    ("name", "code", "verdict"),
    [
        ("failback-rolled-back", 1, "failback rolled back"),
        ("failover-refused", 1, "failover refused: backup unhealthy"),
        ("failover-completed", 0, "now serving from us-west-2, RTO 1.1s of 5m"),
    ],
)
def test_the_exit_code_follows_the_outcome(name: str, code: int, verdict: str) -> None:
    # When a captured run is followed to its end
    console, out = plain_console()
    got = cli_watch.follow(ReplayedWatch(name), console, live=False, sleep=lambda _s: None)
    # Then refused and failed runs exit 1, a run that did its job 0, and the verdict is the last line
    assert got == code
    assert out.getvalue().splitlines()[-1].startswith(verdict)


def test_the_live_view_shows_step_bars_gates_and_the_clock_in_words() -> None:
    # Given a failback at its second step, rendered for a terminal
    _, view = Captured("failback-baking").first(lambda v: v.step == 2 and v.bake_left_seconds is not None)
    console = Console(record=True, width=120, force_terminal=True)
    # When the live view is drawn
    console.print(cli_watch.render(view))
    text = console.export_text()
    # Then it has the phase with the bake left, the step, a bar per region, the gate verdict and the clock
    assert "baking at 25% for 2.0s (" in text and " left)" in text
    assert "step" in text and "2 of 4" in text
    assert re.search(r"us-east-1\s+█{5}·{15}\s+25%", text), text
    assert re.search(r"us-west-2\s+█{15}·{5}\s+75%", text), text
    assert "pass at 10%" in text
    assert "since it started" in text


def test_the_live_view_of_a_failover_shows_the_rto_clock_against_the_objective() -> None:
    # Given a failover that has just been switched and validated
    view = Captured("failover-completed").at()
    console = Console(record=True, width=120, force_terminal=True)
    # When drawn
    console.print(cli_watch.render(view))
    text = console.export_text()
    # Then the clock reads the measured RTO against the 5m objective, and the verdict line ends the view
    assert "measured RTO 1.1s of 5m, 4m59s to spare" in text
    assert text.rstrip().endswith("now serving from us-west-2, RTO 1.1s of 5m")


def test_ctrl_c_stops_watching_and_says_the_execution_continues(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a watch of a running failback
    watch = ReplayedWatch("failback-baking", step=3)
    console, _ = plain_console()

    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    # When the operator presses Ctrl-C while it waits for the next poll
    code = cli_watch.follow(watch, console, live=False, sleep=interrupted)
    # Then no traceback: one line saying the execution carries on and how to follow it again; exit 130
    assert code == 130
    err = capsys.readouterr().err
    assert f"the execution continues; follow it with `lifeboat watch {watch.name}`" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_on_a_terminal_the_view_redraws_in_place_and_stays_on_screen_at_the_end() -> None:
    # Given a terminal console
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    # When a completed failover is followed live
    code = cli_watch.follow(ReplayedWatch("failover-completed"), console, live=True, sleep=lambda _s: None)
    # Then it exits 0 and the last thing on screen is the final view with its verdict
    assert code == 0
    assert out.getvalue().rstrip().endswith("now serving from us-west-2, RTO 1.1s of 5m")


def test_the_cli_s_own_lazily_built_console_can_redraw_in_place() -> None:
    # Given the kind of console the CLI prints with (built on first use, so --help never imports rich)
    from lifeboat_cli.output import lazy_console

    out = io.StringIO()
    console = lazy_console(file=out, width=120, force_terminal=True, color_system=None)
    # When a run is followed live on it (rich's Live enters the console as a context manager)
    code = cli_watch.follow(ReplayedWatch("failover-completed"), console, live=True, sleep=lambda _s: None)
    # Then it works as a rich Console does
    assert code == 0 and out.getvalue().rstrip().endswith("now serving from us-west-2, RTO 1.1s of 5m")
