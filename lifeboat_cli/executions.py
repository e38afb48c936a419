"""CLI verbs matching the console API's read side: `executions`, `execution ID`, `plan check WORKLOAD`.

Same services as the API (chalicelib.services.executions / validate), straight to AWS or the local cloud.
Exit codes as everywhere in the CLI: 0 ok; 1 the execution failed / the plan has errors; 2 usage or input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lifeboat_cli.cloud import CliError
from lifeboat_cli.output import lazy_console

OK, BREACHED, USAGE = 0, 1, 2
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")

console = lazy_console(highlight=False)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _when(value: Any) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def _seconds(value: float | None) -> str:
    from chalicelib.models.durations import format_seconds

    return format_seconds(value)


def cmd_executions(args: argparse.Namespace) -> int:
    from chalicelib.services.deps import deps
    from chalicelib.services.executions import list_executions

    listing = list_executions(deps(), workload=args.workload, status=args.status, limit=args.limit)
    if args.json:
        _print_json(listing.model_dump(mode="json"))
        return OK
    if not listing.executions:
        console.print("no executions")
        return OK
    from rich.table import Table

    table = Table(show_edge=False)
    for col in ("name", "workload", "kind", "status", "started (UTC)", "took"):
        table.add_column(col)
    for e in listing.executions:
        colour = "red" if e.status in FAILED_STATUSES else ("green" if e.status == "SUCCEEDED" else "yellow")
        table.add_row(
            e.name,
            e.workload or "-",
            e.kind or "-",
            f"[{colour}]{e.status}[/{colour}]",
            _when(e.started_at),
            _seconds(e.duration_seconds),
        )
    console.print(table)
    return OK


def cmd_execution(args: argparse.Namespace) -> int:
    from chalicelib.models.api import parse_execution_id
    from chalicelib.services.deps import deps
    from chalicelib.services.executions import UnknownExecution, get_execution

    try:
        detail = get_execution(parse_execution_id(args.id), deps())
    except ValueError as err:
        raise CliError(f"{args.id!r}: {err}") from None
    except UnknownExecution as err:
        raise CliError(str(err)) from None
    status = BREACHED if detail.status in FAILED_STATUSES else OK
    if args.json:
        _print_json(detail.model_dump(mode="json"))
        return status
    console.rule(f"[bold]{detail.name}[/bold]")
    console.print(
        f"{detail.kind or 'execution'} of {detail.workload or '?'}: [bold]{detail.status}[/bold]   "
        f"started {_when(detail.started_at)} UTC, took {_seconds(detail.duration_seconds)}"
    )
    if detail.requested_by:
        console.print(f"requested by {detail.requested_by}: {detail.reason or ''}")
    if detail.error:
        console.print(f"[red]{detail.error}[/red] {detail.cause or ''}")
    from rich.table import Table

    table = Table(show_edge=False)
    for col in ("step", "type", "status", "took", "tries", "note"):
        table.add_column(col)
    for step in detail.steps:
        note = ""
        if step.errors:
            note = f"{step.errors[-1].error}: {step.errors[-1].cause[:60]}"
        elif step.type == "Choice" and step.next:
            note = f"-> {step.next}"
        elif isinstance(step.result, dict) and "reason" in step.result:
            note = str(step.result["reason"])[:80]
        table.add_row(
            step.name,
            step.type,
            step.status,
            _seconds(step.duration_seconds),
            str(step.attempts) if step.attempts else "",
            note,
        )
    console.print(table)
    for e in detail.decisions:
        console.print(f"  [{e.at:%H:%M:%S}] {e.kind}/{e.outcome} by {e.actor}: {e.reason}")
    console.print(f"id for the API: {detail.id}")
    return status


def cmd_plan_check(args: argparse.Namespace) -> int:
    from chalicelib.services.deps import deps
    from chalicelib.services.validate import validate_plan

    report = validate_plan(
        args.workload, deps(), probe_endpoints=not args.no_probe, simulate_iam=not args.no_iam
    )
    if args.json:
        _print_json(report.model_dump(mode="json"))
        return OK if report.valid else BREACHED
    marks = {"error": "[red]✗[/red]", "warning": "[yellow]![/yellow]", "info": "i", "ok": "[green]✓[/green]"}
    for f in report.findings:
        if f.severity == "ok" and not args.verbose:
            continue
        console.print(f"{marks[f.severity]} {f.check}: {f.subject}: {f.message}")
    counts = ", ".join(f"{n} {s}" for s, n in report.counts.items())
    verdict = "[green]valid[/green]" if report.valid else "[red]NOT valid[/red]"
    console.print(f"{report.workload}: {verdict} ({counts})")
    if not report.iam_simulated:
        console.print(f"IAM permissions the plan needs ({len(report.permissions)}; use --json for the list)")
    return OK if report.valid else BREACHED


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100 (got {text!r})") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100 (got {value})")
    return value


def register(sub: Any, plan: Any) -> None:
    """Add the commands to the CLI's subcommand parsers (`sub`: top level, `plan`: under `plan`)."""
    e = sub.add_parser("executions", help="Lifeboat's executions, most recent first")
    e.add_argument("--workload", default=None, help="only this workload's executions")
    e.add_argument(
        "--status", default=None, choices=["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    )
    e.add_argument("--limit", type=_limit, default=20, metavar="1-100")
    e.set_defaults(func=cmd_executions)

    x = sub.add_parser("execution", help="one execution: steps, timings, decisions")
    x.add_argument("id", help="execution name, id (from the API or --json) or ARN")
    x.set_defaults(func=cmd_execution)

    c = plan.add_parser("check", help="validate a stored plan against the live resources (changes nothing)")
    c.add_argument("workload")
    c.add_argument("--no-probe", action="store_true", help="do not send smoke tests to the endpoints")
    c.add_argument("--no-iam", action="store_true", help="do not simulate IAM permissions")
    c.add_argument("-v", "--verbose", action="store_true", help="also list the checks that passed")
    c.set_defaults(func=cmd_plan_check)
