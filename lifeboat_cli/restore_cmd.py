"""`lifeboat restore WORKLOAD ASSET --to TIME`: point-in-time restore of an S3 asset's prefix (in process).

`--dry-run` lists exactly what would change and changes nothing. An S3 asset's keys are restored into a new
prefix of the same bucket (lifeboat-restore/<asset>/<TIME>/) by default; `--target s3://bucket/prefix/` picks
another empty place; `--in-place --yes` restores over the asset itself. A DynamoDB asset's table is restored
into a new table (`--target NAME`, default <table>-restored-<TIME>), waited for and validated; `--swap
RESTORED --yes` then puts that table's items into use. Exit 0 when restored (or planned), 1 when refused or
when anything was not restored, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from chalicelib.models.restore import RestoreReport

OK, FAILED, USAGE = 0, 1, 2


def register(sub: Any) -> None:
    """The `restore` subcommand (main.py calls this)."""
    r = sub.add_parser("restore", help="restore an S3 asset's prefix to a point in time (dry-run first)")
    r.add_argument("workload")
    r.add_argument("asset", help="an S3 or DynamoDB asset of the workload's plan")
    r.add_argument("--to", help="ISO 8601 time, e.g. 2026-01-02T03:04:05Z (no zone: UTC)")
    r.add_argument(
        "--swap", metavar="TABLE", help="DynamoDB: write a restored table over the asset's (--yes)"
    )
    r.add_argument("--dry-run", action="store_true", help="list what would change; change nothing")
    r.add_argument("--target", help="s3://bucket/prefix/ (empty) or, for a table, a new table name")
    r.add_argument("--in-place", action="store_true", help="restore over the asset itself (needs --yes)")
    r.add_argument("--yes", action="store_true", help="confirm an in-place restore or a swap")
    r.add_argument("--side", choices=["primary", "secondary"], default="primary", help="bucket to restore")
    r.add_argument("--workers", type=int, default=16, help="copies in parallel (default 16)")
    r.add_argument("--limit", type=int, default=1000, help="changes listed (default 1000; counts are exact)")
    r.add_argument("--reason", help="recorded in the ledger")
    r.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable report")
    r.set_defaults(func=cmd_restore)


def cmd_restore(args: argparse.Namespace) -> int:
    from chalicelib.clock import parse_timestamp
    from chalicelib.models.restore import RestoreRequest
    from chalicelib.services.deps import deps
    from chalicelib.services.restore import RestoreRefused, restore

    err = Console(stderr=True, highlight=False)
    if args.swap:
        return _swap(args, err)
    if not args.to:
        err.print("[red]error:[/red] --to TIME is required (or --swap TABLE)")
        return USAGE
    if args.in_place and not args.yes:
        err.print(f"[red]error:[/red] an in-place restore rewrites {args.asset}: add --yes to confirm")
        return USAGE
    try:
        request = RestoreRequest(
            workload=args.workload,
            asset=args.asset,
            to=parse_timestamp(args.to),
            side=args.side,
            target=args.target,
            in_place=args.in_place,
            confirm=args.workload if args.yes else None,
            dry_run=args.dry_run,
            reason=args.reason,
            requested_by=_identity(),
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return USAGE
    counts = {"planned": 0, "applied": 0}

    def on_key(event: str, _: Any) -> None:
        counts[event] += 1
        if counts[event] % 1000 == 0:
            err.print(f"  {counts['planned']} keys decided, {counts['applied']} restored", highlight=False)

    try:
        d = deps()
        if d.plans.get(args.workload).asset(args.asset).kind == "dynamodb":
            from chalicelib.services.restore_table import restore_table

            return _show_table(restore_table(request, d), args)
        report = restore(request, d, workers=args.workers, list_limit=max(0, args.limit), on_key=on_key)
    except RestoreRefused as exc:
        err.print(f"[red]refused:[/red] {exc}", soft_wrap=True)
        return FAILED
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    else:
        render(report, Console(highlight=False))
    return OK if report.verdict in ("planned", "restored") else FAILED


def _identity() -> str:
    try:
        from chalicelib.adapters import aws

        return str(aws.client("sts").get_caller_identity()["Arn"])
    except Exception:
        return "cli"


def render(report: RestoreReport, console: Console) -> None:
    mode = "in place" if report.in_place else f"into {report.target.uri()}"
    title = "Restore plan (dry run)" if report.dry_run else "Restore"
    colour = {"planned": "cyan", "restored": "green", "failed": "red"}[report.verdict]
    console.rule(
        f"[bold]{title}: {report.workload}/{report.asset}[/bold]  [{colour}]{report.verdict.upper()}[/]"
    )
    console.print(f"{report.source.uri()} as it was at {report.to.isoformat()}, {mode}", soft_wrap=True)
    verb = "would " if report.dry_run else ""
    console.print(
        f"{report.keys} keys: {verb}copy {report.copies} ({report.bytes_copied} bytes), "
        f"{verb}delete {report.deletes}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(report.changes.items()) if v)
    )
    if not report.dry_run:
        checks = ", ".join(f"{v} by {k}" for k, v in sorted(report.verified.items())) or "none"
        console.print(f"verified: {checks}; failed: {report.failed}")
    if report.listed:
        table = Table(show_edge=False)
        for col in ("operation", "change", "key", "version"):
            table.add_column(col)
        for line in report.listed:
            table.add_row(
                str(line["operation"]), str(line["change"]), str(line["key"]), str(line["version_id"] or "")
            )
        console.print(table)
    if report.listed_truncated:
        console.print(f"[dim]... and {report.listed_truncated} more changes (raise --limit, or --json)[/dim]")
    for failure in report.failures:
        console.print(f"[red]✗[/red] {failure['key']}: {failure['error']}", soft_wrap=True)
    if report.error:
        console.print(f"[red]error:[/red] {report.error}", soft_wrap=True)
    if report.evidence:
        console.print(f"report: {report.evidence}")


def _swap(args: argparse.Namespace, err: Console) -> int:
    from chalicelib.services.deps import deps
    from chalicelib.services.restore import RestoreRefused
    from chalicelib.services.restore_table import swap_table

    if not args.yes:
        err.print(f"[red]error:[/red] a swap rewrites {args.asset}'s table: add --yes to confirm")
        return USAGE
    try:
        done = swap_table(
            args.workload, args.asset, args.swap, confirm=args.workload, actor=_identity(), d=deps()
        )
    except RestoreRefused as exc:
        err.print(f"[red]refused:[/red] {exc}", soft_wrap=True)
        return FAILED
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(done.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    else:
        Console(highlight=False).print(
            f"{done.source_table} now holds {done.restored_table}'s items: {done.written} written, "
            f"{done.deleted} written after the restore time deleted"
        )
    return OK


def _show_table(report: Any, args: argparse.Namespace) -> int:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
        return OK if report.verdict in ("planned", "restored") else FAILED
    console = Console(highlight=False)
    colour = {"planned": "cyan", "restored": "green", "failed": "red"}[report.verdict]
    console.rule(
        f"[bold]Table restore: {report.workload}/{report.asset}[/bold]  [{colour}]{report.verdict.upper()}[/]"
    )
    verb = "would restore" if report.dry_run else "restored"
    console.print(
        f"{report.source_table} ({report.region}) as it was at {report.to.isoformat()}: {verb} into "
        f"{report.target_table}",
        soft_wrap=True,
    )
    if not report.dry_run:
        console.print(
            f"ACTIVE after {report.wait_seconds}s; {report.items} items "
            f"(source now: {report.source_items_now}); "
            f"key schema {'matches' if report.key_schema_matches else 'DIFFERS'}"
        )
        states = {
            s: sum(1 for x in report.sample if x.now == s) for s in ("same", "changed-since", "deleted-since")
        }
        console.print("sample against the source now: " + ", ".join(f"{v} {k}" for k, v in states.items()))
        console.print(
            f"put it into use: lifeboat restore {report.workload} {report.asset} "
            f"--swap {report.target_table} --yes"
        )
    for problem in report.problems:
        console.print(f"[red]✗[/red] {problem}", soft_wrap=True)
    if report.evidence:
        console.print(f"report: {report.evidence}")
    return OK if report.verdict in ("planned", "restored") else FAILED
