"""`lifeboat watch EXECUTION`: one live view of a failover or failback, also what every `--wait` shows.

On a terminal the view redraws in place (rich Live): the phase in words, step k of n, traffic per region,
the bake countdown, gate verdicts, what waits for a person, the RTO clock against the objective. Otherwise
(a pipe, a CI log) one plain line per change. Both end with one verdict line. Exit code: 0 when the
execution did what it was asked, 1 when it was refused, breached its objective or failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lifeboat_cli.cloud import CliError

if TYPE_CHECKING:  # imported when used: `lifeboat --help` does not pay for rich or the models
    from rich.console import Console, Group
    from rich.text import Text

    from chalicelib.domain.watch import WatchView

OK, BREACHED, USAGE = 0, 1, 2
INTERRUPTED = 130
POLL_SECONDS = 0.5
OUTCOME_COLOURS = {"ok": "green", "refused": "yellow", "breached": "red", "failed": "red", "running": "cyan"}


def _bar(share: int, width: int = 20) -> str:
    filled = round(share / 100 * width)
    return "█" * filled + "·" * (width - filled)


def render(view: WatchView) -> Group:
    """The live view: a heading, then one row per fact that applies (nothing for what does not)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    title = Text.assemble((f"{view.kind} of {view.workload}", "bold"), f"  {view.execution}", style="")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", justify="right")
    table.add_column()
    now = view.phase + (f" ({view.countdown})" if view.countdown else "")
    table.add_row("now", Text(now, style="bold"))
    if view.step is not None and view.steps:
        label = "step" if view.kind == "failback" else "stage"
        table.add_row(label, f"{view.step} of {view.steps}" + (f" ({view.stage})" if view.stage else ""))
    for region, share in (view.weights or {}).items():
        table.add_row(region, f"{_bar(share)} {share:3d}%")
    for gate in view.gates[-4:]:
        colour = {"pass": "green", "fail": "red"}.get(gate.outcome, "yellow")
        where = "final at 100%" if gate.final else f"at {gate.share}%"
        table.add_row("gates", Text.assemble((gate.outcome, colour), f" {where}: {gate.reason}"))
    if view.pending is not None:
        table.add_row(view.pending.kind, Text(view.pending.reason or "-", style="yellow"))
        table.add_row("run", "  or  ".join(view.pending.commands))
    for decision in view.decisions[-3:]:
        table.add_row("decided", decision)
    table.add_row("clock", view.clock())
    parts: list[Any] = [title, table]
    if view.verdict:
        parts.append(verdict_line(view))
    return Group(*parts)


def verdict_line(view: WatchView) -> Text:
    from rich.text import Text

    colour = OUTCOME_COLOURS.get(view.outcome, "bold")
    return Text(view.verdict or "", style=f"bold {colour}")


# History events after which the view may read differently (the others only say a task started).
CHANGES = ("StateEntered", "StateExited", "Succeeded", "Failed", "TimedOut", "Submitted")
REPLAY_LIMIT = 300  # events: attaching to a longer history shows where it stands, not all it did


def exit_code(view: WatchView) -> int:
    return OK if view.outcome == "ok" else BREACHED


def follow(
    watch: Any,
    console: Console,
    *,
    as_json: bool = False,
    timeout: float = 900.0,
    poll: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    live: bool | None = None,
) -> int:
    """Show `watch` (a services.watch.ExecutionWatch) until its execution ends or `timeout` passes.

    `live`: redraw in place (default: when the console is a terminal and output is not JSON).
    """
    from rich.console import Console
    from rich.live import Live

    from chalicelib.models.durations import format_seconds

    live = (console.is_terminal and not as_json) if live is None else live
    deadline = time.monotonic() + timeout
    try:
        if live:
            view = watch.view()
            with Live(render(view), console=console, refresh_per_second=4, transient=True) as screen:
                while view.outcome == "running" and time.monotonic() < deadline:
                    sleep(poll)
                    view = watch.view()
                    screen.update(render(view))
            console.print(render(view))
        else:
            view = _plain(watch, console, as_json=as_json, deadline=deadline, poll=poll, sleep=sleep)
    except KeyboardInterrupt:
        Console(stderr=True, highlight=False).print(
            f"stopped watching: the execution continues; follow it with `lifeboat watch {watch.name}`",
            soft_wrap=True,
        )
        return INTERRUPTED
    if as_json:
        sys.stdout.write(json.dumps(view.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    if view.outcome == "running":
        if not as_json:
            console.print(
                f"still running after {format_seconds(timeout)}: the execution continues; follow it "
                f"with `lifeboat watch {watch.name}`",
                soft_wrap=True,
            )
        return BREACHED
    return exit_code(view)


class ChangeLines:
    """The lines a watcher prints for one execution: on each `poll()`, one per change in its new history
    events (replayed, so that no change between two polls goes unsaid), with when it happened."""

    def __init__(self, watch: Any) -> None:
        self.watch = watch
        self.seen = 0
        self.last = ""
        self.view: WatchView | None = None

    def poll(self) -> list[tuple[datetime, str]]:
        snap = self.watch.read()
        events = snap.events
        if self.seen == 0 and len(events) > REPLAY_LIMIT:
            self.seen = len(events) - 1  # attached late: from where it stands
        out = []
        for index in range(self.seen + 1, len(events) + 1):
            if not str(events[index - 1].get("type", "")).endswith(CHANGES):
                continue
            line = self.watch.view(snap, upto=index).summary()
            if line != self.last:
                out.append((events[index - 1].get("timestamp") or datetime.now(UTC), line))
                self.last = line
        self.seen = len(events)
        self.view = self.watch.view(snap)
        return out


def _plain(
    watch: Any,
    console: Console,
    *,
    as_json: bool,
    deadline: float,
    poll: float,
    sleep: Callable[[float], None],
) -> WatchView:
    """One line per change, then the verdict line. Returns the last view."""
    lines = ChangeLines(watch)
    while True:
        for at, line in lines.poll():
            if not as_json:
                console.print(f"{at:%H:%M:%S} {line}", soft_wrap=True, markup=False)
        view = lines.view
        assert view is not None
        if view.outcome != "running" or time.monotonic() >= deadline:
            break
        sleep(poll)
    if not as_json and view.verdict:
        console.print(verdict_line(view), soft_wrap=True)
    return view


def open_watch(ref_text: str, d: Any) -> Any:
    """The ExecutionWatch of a name, id or ARN; CliError (exit 2) when there is no such execution to watch."""
    from chalicelib.models.api import parse_execution_id
    from chalicelib.services.executions import UnknownExecution
    from chalicelib.services.watch import ExecutionWatch, NotWatchable

    try:
        return ExecutionWatch(parse_execution_id(ref_text), d)
    except ValueError as err:
        raise CliError(f"{ref_text!r}: {err}") from None
    except (UnknownExecution, NotWatchable) as err:
        raise CliError(str(err)) from None


def cmd_watch(args: argparse.Namespace) -> int:
    from chalicelib.services.deps import deps
    from lifeboat_cli.main import console

    watch = open_watch(args.execution, deps())
    return follow(watch, console, as_json=args.json, timeout=args.timeout)


def register(sub: Any) -> None:
    w = sub.add_parser(
        "watch",
        help="follow a failover or failback live until it ends (what every --wait shows)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    w.add_argument("execution", help="execution name, id (from the API or --json) or ARN")
    w.add_argument("--timeout", type=float, default=3600.0, help="stop watching after this many seconds")
    w.set_defaults(func=cmd_watch)
