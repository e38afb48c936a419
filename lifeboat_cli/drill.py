"""`lifeboat drill`: run a DR drill and show its evidence.

    lifeboat drill WORKLOAD --scenario region-outage [--live --confirm WORKLOAD] [--reason TEXT]
    lifeboat drill list [--workload W] [--limit N]
    lifeboat drill show DRILL_ID
    lifeboat drill recover WORKLOAD [--force]

Against the local cloud the faults are real (the daemon's model servers are killed or degraded, replication
paused, AWS calls throttled); in an AWS account the drill breaks the plan's drill target, never production
unless --live is given and confirmed. Reports go to the evidence bucket and to ./reports/.
Exit codes: 0 the drill passed; 1 breached, failed, interrupted or refused; 2 usage or input error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from lifeboat_cli.cloud import CliError

OK, BREACHED, USAGE = 0, 1, 2
REPORTS = Path("reports")
VERDICT_COLOURS = {"passed": "green", "breached": "yellow", "failed": "red", "interrupted": "red"}


def _console() -> Any:
    from lifeboat_cli.main import console

    return console


# -- the injector for this process --------------------------------------------------------------------------
def local_injector(plan: Any, state: dict[str, Any]) -> Any:
    """Real faults on the running local cloud: its model-server processes, its control file."""
    from localcloud.drill_faults import ArtifactCopies, ControlFile, DaemonServers, LocalFaults
    from localcloud.state import DEFAULT_STATE

    workload = state["workloads"].get(plan.workload)
    if not workload or not workload.get("model"):
        raise CliError(f"the local cloud runs no model servers for {plan.workload}")
    control = ControlFile(DEFAULT_STATE.with_name("drill-faults.json"), workload=plan.workload)
    servers = DaemonServers(plan.workload, DEFAULT_STATE, control)
    return LocalFaults(plan, servers, ArtifactCopies.from_model(workload["model"]), control)


class Narrator:
    """Prints the drill's own steps, and (through the demo's watcher) alarms, decisions and steps."""

    def __init__(self, plan: Any, d: Any, *, started: float | None = None, on_event: Any = None) -> None:
        from lifeboat_cli.demo import Watcher

        self.watcher = Watcher(plan, d, started or time.monotonic())
        self.on_event = on_event

    def event(self, kind: str, message: str) -> None:
        if kind in ("fault", "restore", "failback", "interrupted", "switch"):
            self.watcher.poll()  # what Lifeboat did until now comes first
        colour = {"fault": "red", "interrupted": "red", "verdict": "bold"}.get(kind, "cyan")
        _console().print(f"{self.watcher.at()} [{colour}]drill {kind}[/{colour}]: {message}")
        if self.on_event is not None:
            self.on_event(kind, message)

    def tick(self) -> None:
        self.watcher.poll()


# -- rendering ----------------------------------------------------------------------------------------------
def _secs(value: float | None) -> str:
    from chalicelib.models.durations import format_seconds

    return format_seconds(value)


def render_record(record: Any) -> None:
    from chalicelib.domain.drill_report import (
        objective_target,
        objectives_words,
        rpo_sentence,
        rto_sentence,
        who,
    )

    console = _console()
    if record.plan_revision:
        console.print(
            f"plan revision {record.plan_revision}; objectives: {objectives_words(record)}; "
            f"run by {who(record.requested_by)}",
            soft_wrap=True,
        )
    from rich.table import Table

    table = Table(title="objectives", show_edge=False)
    for col in ("objective", "target", "measured", "verdict", "margin", "how"):
        table.add_column(col)
    for o in record.objectives:
        colour = {"met": "green", "breached": "red"}.get(o.verdict, "dim")
        table.add_row(
            o.name,
            objective_target(record, o.name, o.objective_seconds),
            _secs(o.measured_seconds),
            f"[{colour}]{o.verdict}[/{colour}]",
            _secs(o.margin_seconds),
            o.note,
        )
    console.print(table)
    if record.rto:
        console.print(rto_sentence(record), soft_wrap=True)
    if record.rpo:
        console.print(rpo_sentence(record), soft_wrap=True)
    colour = VERDICT_COLOURS.get(record.verdict, "bold")
    console.print(f"[bold {colour}]drill {record.verdict.upper()}[/bold {colour}]: {record.verdict_reason}")
    for line in record.leftovers:
        console.print(f"  [red]left behind[/red]: {line}")
    for line in record.cleanup:
        console.print(f"  cleanup: {line}")
    if record.report_paths.get("html"):
        console.print(f"report: {Path(record.report_paths['html']).resolve()}")
    if record.evidence.get("html"):
        console.print(f"evidence: {record.evidence['html']}")


# -- commands ---------------------------------------------------------------------------------------------
def run_drill(
    workload: str,
    scenario: str,
    *,
    live: bool = False,
    confirm: str | None = None,
    reason: str = "DR drill",
    requested_by: str = "operator",
    narrator: Any = None,
    reports: Path = REPORTS,
) -> Any:
    """Run one drill from this process (the CLI, the demo); returns the DrillRecord."""
    from chalicelib.models.drill import DrillRequest
    from chalicelib.services import drills
    from chalicelib.services.deps import deps
    from chalicelib.settings import environment
    from localcloud.state import read_state

    d = deps()
    plan = d.plans.get(workload)
    local = drills.in_local_cloud()
    state = read_state() or {"workloads": {}}
    injector = local_injector(plan, state) if local else None
    request = DrillRequest(
        workload=workload,
        scenario=scenario,  # type: ignore[arg-type]
        live=live,
        confirm=confirm,
        requested_by=requested_by,
        reason=reason,
    )
    # region-api-outage takes the primary's APIs down, this process's copy of Lifeboat included: in the
    # local cloud the drill acts as the copy in the secondary region (in AWS: run the CLI against it).
    survivor = (state.get("copies") or {}).get(plan.regions.secondary) if local else None
    acting_as = survivor["env"] if survivor and scenario == "region-api-outage" else None
    with environment(acting_as) if acting_as else contextlib.nullcontext():
        d = deps()
        runner = drills.DrillRunner(
            request, d, injector, observer=narrator or Narrator(plan, d), reports_dir=reports, local=local
        )
        return runner.run()


def cmd_drill(args: argparse.Namespace) -> int:
    target, rest = args.target, args.rest
    if target == "list":
        return cmd_list(args)
    if target == "show":
        if not rest:
            raise CliError("usage: lifeboat drill show DRILL_ID")
        return cmd_show(args, rest[0])
    if target == "recover":
        if not rest:
            raise CliError("usage: lifeboat drill recover WORKLOAD")
        return cmd_recover(args, rest[0])
    if rest:
        raise CliError(f"unexpected arguments: {' '.join(rest)}")
    return cmd_run(args)


def cmd_run(args: argparse.Namespace) -> int:
    from chalicelib.services import drills
    from chalicelib.services.deps import deps
    from lifeboat_cli.main import _caller, err_console

    plan = deps().plans.get(args.target)
    scenario = args.scenario or plan.drill.scenario
    confirm = args.confirm
    if args.live and confirm is None and not drills.in_local_cloud():
        if not sys.stdin.isatty():
            raise CliError(f"--live breaks production traffic: confirm with --confirm {plan.workload}")
        confirm = input(f"A live drill breaks the production traffic of {plan.workload}. Type its name: ")
    console = _console()
    if not args.json:
        console.rule(f"[bold]DR drill: {scenario} on {plan.workload}[/bold]")
    try:
        record = run_drill(
            plan.workload,
            scenario,
            live=args.live,
            confirm=confirm,
            reason=args.reason or f"{scenario} drill",
            requested_by=_caller(),
            narrator=_Quiet() if args.json else None,
        )
    except drills.DrillRefused as err:
        if args.json:
            sys.stdout.write(json.dumps({"workload": plan.workload, "refused": str(err)}) + "\n")
        else:
            err_console.print(f"[red]drill refused:[/red] {err}")
        return BREACHED
    if args.json:
        sys.stdout.write(record.model_dump_json(indent=2) + "\n")
    else:
        console.rule("[bold]Verdicts[/bold]")
        render_record(record)
    return OK if record.verdict == "passed" else BREACHED


class _Quiet:
    def event(self, kind: str, message: str) -> None:
        return None

    def tick(self) -> None:
        return None


def cmd_list(args: argparse.Namespace) -> int:
    from chalicelib.services import drills
    from chalicelib.services.deps import deps

    found = drills.list_drills(deps(), workload=args.workload, limit=args.limit)
    if args.json:
        sys.stdout.write(json.dumps([s.model_dump(mode="json") for s in found], indent=2) + "\n")
        return OK
    if not found:
        _console().print("no drills yet")
        return OK
    from rich.table import Table

    table = Table(show_edge=False)
    columns = ("drill", "workload", "scenario", "mode", "verdict", "RTO", "RPO", "failback", "started (UTC)")
    for col in columns:
        table.add_column(col)
    for s in found:
        colour = VERDICT_COLOURS.get(s.verdict, "bold")
        table.add_row(
            s.drill_id,
            s.subject if s.subject == s.workload else f"{s.workload} ({s.subject})",
            s.scenario,
            s.mode,
            f"[{colour}]{s.verdict}[/{colour}]",
            _secs(s.rto_seconds),
            _secs(s.rpo_seconds),
            _secs(s.failback_seconds),
            f"{s.started_at:%Y-%m-%d %H:%M:%S}",
        )
    _console().print(table)
    return OK


def cmd_show(args: argparse.Namespace, drill_id: str) -> int:
    from chalicelib.domain.drill_report import render_html, render_markdown
    from chalicelib.services import drills
    from chalicelib.services.deps import deps

    try:
        d = deps()
        record = drills.get_drill(drill_id, d)
    except drills.UnknownDrill as err:
        raise CliError(str(err)) from None
    if args.json:
        sys.stdout.write(record.model_dump_json(indent=2) + "\n")
        return OK
    # The report as stored in the evidence bucket, also written here so a browser can open it.
    evidence = d.drill_evidence
    REPORTS.mkdir(exist_ok=True)
    base = REPORTS / f"{record.workload}-{record.drill_id}"
    page = evidence.report(record.workload, drill_id, "html") or render_html(record)
    base.with_suffix(".html").write_text(page, encoding="utf-8")
    base.with_suffix(".md").write_text(
        evidence.report(record.workload, drill_id, "md") or render_markdown(record), encoding="utf-8"
    )
    record.report_paths = {"html": str(base.with_suffix(".html")), "markdown": str(base.with_suffix(".md"))}
    console = _console()
    console.rule(f"[bold]{record.drill_id}[/bold]: {record.scenario} on {record.subject} ({record.mode})")
    when = f"{record.started_at:%Y-%m-%d %H:%M:%S} UTC"
    console.print(f"started {when} by {record.requested_by}: {record.reason}")
    for fault in record.faults:
        console.print(f"  fault: {fault}")
    render_record(record)
    return OK if record.verdict == "passed" else BREACHED


def cmd_recover(args: argparse.Namespace, workload: str) -> int:
    from chalicelib.services import drills
    from chalicelib.services.deps import deps
    from localcloud.state import read_state

    d = deps()
    plan = d.plans.get(workload)
    injector = local_injector(plan, read_state() or {"workloads": {}}) if drills.in_local_cloud() else None
    try:
        record = drills.recover(workload, d, injector, reports_dir=REPORTS, force=args.force)
    except drills.DrillRefused as err:
        _console().print(f"[red]{err}[/red]")
        return BREACHED
    if record is None:
        _console().print(f"no interrupted drill on {workload}: nothing to recover")
        return OK
    render_record(record)
    return OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "drill",
        help="run a DR drill (or: drill list | drill show ID | drill recover WORKLOAD)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", help="WORKLOAD to drill, or list | show | recover")
    p.add_argument("rest", nargs="*", help="DRILL_ID (show) or WORKLOAD (recover)")
    p.add_argument(
        "--scenario",
        choices=[
            "region-outage",
            "endpoint-degraded",
            "replication-stalled",
            "corrupt-artifact",
            "api-throttling",
            "alarm-flapping",
            "backup-unhealthy",
            "data-corruption",
        ],
        help="the fault to inject (default: the plan's drill.scenario)",
    )
    p.add_argument("--live", action="store_true", help="AWS: break production itself (needs --confirm)")
    p.add_argument("--confirm", help="the workload's name, confirming --live")
    p.add_argument("--reason", help="recorded in the ledger")
    p.add_argument("--workload", help="drill list: only this workload")
    p.add_argument("--limit", type=int, default=20, help="drill list: at most this many")
    p.add_argument("--force", action="store_true", help="drill recover: take over even a live drill")
    p.set_defaults(func=cmd_drill)
