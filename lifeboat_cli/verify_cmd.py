"""`lifeboat verify WORKLOAD [--json]`: verify every asset's replica now, with progress, and show the report.

Runs the verification in this process (the same shard functions the verification state machine fans out),
against the local cloud or AWS. Exit 1 when an objective is breached or the run could not finish.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from chalicelib.models.durations import format_duration
from chalicelib.models.verification import ShardResult, VerificationReport

OK, BREACHED = 0, 1
COLOURS = {"green": "green", "at-risk": "yellow", "breached": "red", "incomplete": "magenta"}


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 1:
        return f"{seconds:.1f}s"
    from datetime import timedelta

    return format_duration(timedelta(seconds=round(seconds)))


def exit_code(report: VerificationReport) -> int:
    return BREACHED if report.verdict in ("breached", "incomplete") else OK


def run_with_progress(workload: str, d: Any, console: Console, *, workers: int = 4) -> VerificationReport:
    """verify_workload with a rich progress bar: shards done, objects compared, differences so far."""
    from chalicelib.services.verification.on_demand import verify_workload

    counts = {"objects": 0, "differences": 0}
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("shards · {task.fields[objects]} objects · {task.fields[diffs]} differences"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"verifying {workload}", total=None, objects=0, diffs=0)

        def on(event: str, payload: Any) -> None:
            if event == "planned":
                progress.update(task, total=len(payload))
            elif event == "shard":
                result: ShardResult = payload
                counts["objects"] += result.source_objects
                counts["differences"] += result.mismatches + result.extra + result.unverified
                progress.update(task, advance=1, objects=counts["objects"], diffs=counts["differences"])

        return verify_workload(workload, d, progress=on, max_workers=workers)


def render_report(report: VerificationReport, console: Console) -> None:
    colour = COLOURS[report.verdict]
    console.rule(
        f"[bold]Backup verification: {report.workload}[/bold]  [{colour}]{report.verdict.upper()}[/]"
    )
    table = Table(show_edge=False)
    for col in (
        "asset",
        "kind",
        "verdict",
        "measured RPO",
        "objective",
        "checked",
        "missing",
        "different",
        "stale",
        "extra",
        "unverified",
    ):
        table.add_column(col, justify="right" if col not in ("asset", "kind", "verdict") else "left")
    for a in report.assets:
        c = COLOURS[a.verdict]
        table.add_row(
            a.asset,
            a.kind,
            f"[{c}]{a.verdict}[/]",
            fmt_seconds(a.measured_rpo_seconds),
            fmt_seconds(a.objective_seconds),
            str(a.objects_checked),
            str(a.missing),
            str(a.different),
            str(a.stale),
            str(a.extra),
            str(a.unverified),
        )
    console.print(table)
    for problem in report.problems:
        console.print(f"[magenta]run problem:[/] {problem}")
    for a in report.assets:
        for reason in a.incomplete_reasons:
            console.print(f"  [magenta]{a.asset} incomplete:[/] {reason}")
        for f in a.findings:
            mark = {"breach": "[red]✗[/red]", "warning": "[yellow]![/yellow]", "info": "·"}[f.severity]
            console.print(f"  {mark} {a.asset}: {f.message}")
        if a.proofs:
            proven = ", ".join(f"{proof} {count}" for proof, count in sorted(a.proofs.items()))
            console.print(f"  [dim]{a.asset} pairs by proof: {proven}[/dim]")
        for s in a.samples[:5]:
            console.print(f"    {s.kind:>10} {s.key}  [dim]{s.why}[/dim]")
        more = a.mismatches + a.extra + a.unverified - min(len(a.samples), 5)
        if more > 0:
            console.print(f"    [dim]... and {more} more (see the report)[/dim]")
    if report.evidence:
        console.print(f"report: {report.evidence.get('markdown')}  (JSON: {report.evidence.get('json')})")
        if report.evidence.get("differences"):
            console.print(f"every difference (JSON Lines): {report.evidence['differences']}")


@contextlib.contextmanager
def everything_to_stderr() -> Iterator[TextIO]:
    """While a `--json` run works, whatever it prints (log lines, EMF metrics) goes to stderr, so stdout
    carries exactly one JSON document. Yields the real stdout."""
    from chalicelib.observability import logger

    out = sys.stdout
    handler = logger.logger_handler
    previous = handler.setStream(sys.stderr) if isinstance(handler, logging.StreamHandler) else None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield out
    finally:
        if previous is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(previous)


def cmd_verify(args: argparse.Namespace) -> int:
    from chalicelib.services.deps import deps

    as_json = bool(getattr(args, "json", False))
    progress_console = Console(stderr=True, highlight=False)
    if as_json:
        with everything_to_stderr() as stdout:
            report = run_with_progress(args.workload, deps(), progress_console, workers=args.workers)
        stdout.write(json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
        stdout.flush()
        return exit_code(report)
    report = run_with_progress(args.workload, deps(), progress_console, workers=args.workers)
    render_report(report, Console(highlight=False))
    return exit_code(report)
