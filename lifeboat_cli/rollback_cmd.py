"""`lifeboat rollback WORKLOAD [--side S] [--to-version V | --latest] [--dry-run]`: an endpoint back to an
approved registry version, gated by the plan's smoke tests (in process).

Without `--to-version` the endpoint gets the approved version registered before the one it serves; `--latest`
redeploys the newest approved version (restore primary before a failback). `--dry-run` shows the current and
the target version and, for SageMaker, the endpoint configs; it changes nothing. A rollback whose smoke tests
fail is reverted (the previous model or endpoint config back) and reported failed. `--wait` is accepted for
symmetry with the API: the CLI always waits for the endpoint (SageMaker updates take minutes). Exit 0 when
rolled back (or planned), 1 when refused or failed, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console

from chalicelib.models.rollback import RollbackReport

OK, FAILED, USAGE = 0, 1, 2


def register(sub: Any) -> None:
    """The `rollback` subcommand (main.py calls this)."""
    r = sub.add_parser(
        "rollback", help="roll an endpoint back to an approved model version (dry-run first; smoke-tested)"
    )
    r.add_argument("workload")
    # `--side`, as `lifeboat restore` has it: the global --region picks the copy of Lifeboat to talk to
    r.add_argument(
        "--side",
        default="primary",
        help="the endpoint: primary (default), secondary, or one of the plan's two region names",
    )
    target = r.add_mutually_exclusive_group()
    target.add_argument("--to-version", help="an approved registry version (default: the previous approved)")
    target.add_argument(
        "--latest", action="store_true", help="the newest approved version (restore primary before failback)"
    )
    r.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    r.add_argument("--wait", action="store_true", help="wait for the endpoint (always, in the CLI)")
    r.add_argument("--reason", help="recorded in the ledger")
    r.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable report")
    r.set_defaults(func=cmd_rollback)


def cmd_rollback(args: argparse.Namespace) -> int:
    from chalicelib.models.rollback import RollbackRequest
    from chalicelib.services.deps import deps
    from chalicelib.services.rollback import role_of, rollback
    from chalicelib.services.workload_lock import OperationConflict
    from lifeboat_cli.restore_cmd import _identity

    err = Console(stderr=True, highlight=False)
    try:
        d = deps()
        request = RollbackRequest(
            workload=args.workload,
            role=role_of(d.plans.get(args.workload), args.side),
            to_version=args.to_version,
            latest=args.latest,
            dry_run=args.dry_run,
            reason=args.reason,
            requested_by=_identity(),
        )
        report = rollback(request, d)
    except OperationConflict as exc:  # refused: the rollback itself, a held workload lock, a running drill
        err.print(f"[red]refused:[/red] {exc}", soft_wrap=True)
        return FAILED
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return USAGE
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    else:
        render(report, Console(highlight=False))
    return OK if report.verdict in ("planned", "rolled-back") else FAILED


def render(report: RollbackReport, console: Console) -> None:
    title = "Rollback plan (dry run)" if report.dry_run else "Rollback"
    colour = {"planned": "cyan", "rolled-back": "green", "failed": "red", "refused": "red"}[report.verdict]
    console.rule(
        f"[bold]{title}: {report.workload} {report.role}[/bold]  [{colour}]{report.verdict.upper()}[/]"
    )
    console.print(
        f"endpoint: {report.endpoint} ({report.region}); registry: {report.registry}", soft_wrap=True
    )
    verb = "would deploy" if report.dry_run else "deployed"
    console.print(
        f"model: {report.from_version or '?'} -> {report.to_version} ({verb}; "
        f"sha256 {(report.from_sha256 or '?')[:12]} -> {(report.to_sha256 or '?')[:12]})",
        soft_wrap=True,
    )
    console.print(f"artifact: {report.to_package or report.to_artifact}", soft_wrap=True)
    if report.config_after:
        console.print(
            f"endpoint config: {report.config_before} -> {report.config_after} (new)", soft_wrap=True
        )
    if report.smoke_passed is not None:
        console.print(f"smoke tests: {'passed' if report.smoke_passed else 'FAILED'} ({report.smoke_reason})")
    if report.reverted:
        console.print(f"[yellow]reverted:[/yellow] {report.endpoint} serves {report.from_version} again")
    if report.error:
        console.print(f"[red]error:[/red] {report.error}", soft_wrap=True)
    if report.evidence:
        console.print(f"report: {report.evidence}")
