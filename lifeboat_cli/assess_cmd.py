"""`lifeboat assess WORKLOAD [--json] [--fail-on SEVERITY] [--no-store]`: the resilience assessment, now.

Reads the workload's live resources and history in this process (the same service the API and the schedule
run), prints the findings and the estimated RTO/RPO, and stores the report in the evidence bucket.
Exit 0: no finding at or above --fail-on (default warning); 1: some; 2: usage (an unknown workload...).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

OK, FINDINGS = 0, 1
COLOURS = {"error": "red", "warning": "yellow", "info": "cyan"}


def register(sub: Any) -> None:
    """Add `assess` to the CLI's subcommands."""
    a = sub.add_parser(
        "assess", help="find single points of failure and estimate RTO/RPO from live resources"
    )
    a.add_argument("workload")
    a.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable report")
    a.add_argument(
        "--fail-on",
        choices=["error", "warning", "info"],
        default="warning",
        help="exit 1 when a finding is at least this severe (default warning)",
    )
    a.add_argument("--no-store", dest="store", action="store_false", help="do not write the report")
    a.set_defaults(func=cmd_assess)


def exit_code(report: Any, fail_on: str) -> int:
    return FINDINGS if report.at_or_above(fail_on) else OK


def _seconds(value: float | None) -> str:
    from datetime import timedelta

    from chalicelib.models.durations import format_duration

    if value is None:
        return "n/a"
    return ("-" if value < 0 else "") + format_duration(timedelta(seconds=round(abs(value))))


def render(report: Any, console: Any) -> None:
    from rich.table import Table

    worst = next((s for s in ("error", "warning", "info") if report.counts.get(s)), None)
    verdict = f"[{COLOURS[worst]}]{worst.upper()}[/]" if worst else "[green]CLEAN[/]"
    console.rule(f"[bold]Resilience assessment: {report.workload}[/bold]  {verdict}")
    rto = report.rto
    colour = "green" if rto.margin_seconds >= 0 else "red"
    console.print(
        f"estimated RTO [{colour}]{_seconds(rto.estimated_seconds)}[/] of {_seconds(rto.objective_seconds)} "
        f"(margin {_seconds(rto.margin_seconds)}): "
        + ", ".join(f"{c.name} {_seconds(c.seconds)}" for c in rto.components),
        soft_wrap=True,
    )
    table = Table(show_edge=False)
    for col in ("asset", "estimated RPO", "objective", "margin", "basis"):
        table.add_column(col)
    for r in report.rpo:
        table.add_row(
            r.asset,
            _seconds(r.estimated_seconds),
            _seconds(r.objective_seconds),
            _seconds(r.margin_seconds),
            r.basis,
        )
    console.print(table)
    for f in report.findings:
        console.print(f"[{COLOURS[f.severity]}]{f.severity:>7}[/] {f.id}  {f.title}", soft_wrap=True)
        console.print(f"         plan: {f.plan_path}; evidence: {f.evidence}", soft_wrap=True)
        console.print(f"         fix: {f.fix}", soft_wrap=True)
    if not report.findings:
        console.print("[green]no findings[/green]")
    if report.evidence:
        console.print(f"report: {report.evidence.get('markdown')}  (JSON: {report.evidence.get('json')})")


def cmd_assess(args: argparse.Namespace) -> int:
    from rich.console import Console

    from chalicelib.services.assessment import assess_workload
    from chalicelib.services.deps import deps

    report = assess_workload(args.workload, deps(), store=args.store)
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    else:
        render(report, Console(highlight=False))
    return exit_code(report, args.fail_on)
