"""`lifeboat`: the operator CLI. Same verbs as the API, straight to AWS (or to the local cloud).

Exit codes: 0 ok; 1 an objective was breached or an operation was refused/failed; 2 usage or input error;
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lifeboat_cli import cloud as clouds
from lifeboat_cli import drill as drill_cli
from lifeboat_cli import executions as executions_cli
from lifeboat_cli import watch as watch_cli
from lifeboat_cli.cloud import CliError
from lifeboat_cli.output import lazy_console

OK, BREACHED, USAGE = 0, 1, 2
INTERRUPTED = 130  # as shells report a command ended by Ctrl-C
T = TypeVar("T")

console = lazy_console(highlight=False)
err_console = lazy_console(stderr=True, highlight=False)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


# -- plan ------------------------------------------------------------------------------------------------
def cmd_plan_validate(args: argparse.Namespace) -> int:
    from chalicelib.models.durations import format_duration
    from chalicelib.models.planfile import check_plan_files

    results, status = [], OK
    # Checked together: two files declaring one workload is a problem of the second, naming the first.
    for path, checked in zip(args.files, check_plan_files(args.files), strict=True):
        plan = checked.plan
        if plan is None:
            status = USAGE
            results.append({"file": path, "valid": False, "problems": [str(p) for p in checked.problems]})
            if not args.json:
                for problem in checked.problems:
                    err_console.print(f"[red]✗[/red] {problem}")
            continue
        results.append({"file": path, "valid": True, "workload": plan.workload})
        if not args.json:
            rpo, rto = format_duration(plan.rpo), format_duration(plan.rto)
            console.print(
                f"[green]✓[/green] {path}: {plan.workload} ({plan.tier}, RPO {rpo}, RTO {rto}, "
                f"{plan.regions.primary} → {plan.regions.secondary}, {len(plan.assets)} assets)"
            )
    if args.json:
        _print_json(results)
    return status


def cmd_plan_render(args: argparse.Namespace) -> int:
    from chalicelib.models.planfile import load_plan_file
    from chalicelib.workflows.failover import build_failover

    plan = load_plan_file(args.file)

    def arn(fn: str) -> str:
        region = args.region or plan.regions.primary
        return f"arn:aws:lambda:{region}:{args.account}:function:lifeboat-{args.stage}-{fn}"

    from chalicelib.workflows.failback import build_failback

    _print_json({"failover": build_failover(plan, arn), "failback": build_failback(plan, arn)})
    return OK


# -- local -----------------------------------------------------------------------------------------------
def cmd_local(args: argparse.Namespace) -> int:
    if args.action == "up":
        quiet = args.json
        state = clouds.local_up(
            Path(args.plans),
            owner=args.owner,
            on_start=None if quiet else lambda what: console.print(what, soft_wrap=True),
        )
        if args.json:
            _print_json(state)
        else:
            render_local(state)
        return OK
    if args.action == "down":
        stopped = clouds.local_down()
        console.print("local cloud stopped" if stopped else "local cloud was not running")
        return OK
    running = clouds.read_state(clouds.DEFAULT_STATE)
    if args.json:
        _print_json(running or {"ready": False})
    elif running:
        render_local(running)
    else:
        console.print("local cloud is not running")
    return OK if running else BREACHED


def render_local(state: dict[str, Any]) -> None:
    """Where the local cloud and its model servers listen (the ports are chosen when it starts)."""
    console.print(f"local cloud up on {state['endpoint_url']} (pid {state['pid']})", soft_wrap=True)
    for workload, info in state["workloads"].items():
        for role, srv in info["model_servers"].items():
            line = f"  {workload} {role} model server: {srv.get('endpoint') or srv['url']} (pid {srv['pid']})"
            console.print(line, soft_wrap=True)


def cmd_local_kill(args: argparse.Namespace) -> int:
    import os
    import signal

    state = clouds.use_local()
    workloads = state.get("workloads") or {}
    if args.workload not in workloads:
        known = ", ".join(workloads) or "none"
        raise CliError(f"the local cloud runs no model servers for {args.workload!r} (workloads: {known})")
    server = workloads[args.workload]["model_servers"][args.role]
    os.kill(int(server["pid"]), signal.SIGKILL)
    console.print(f"killed the {args.role} model server of {args.workload} (pid {server['pid']})")
    return OK


# -- status ----------------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from chalicelib.services.deps import deps
    from chalicelib.services.status import workload_status

    d = deps()
    if not args.json:  # first, before the probes take their time
        console.print(clouds.describe(getattr(args, "selected_cloud", "aws"), args.stage), soft_wrap=True)
    plans = [d.plans.get(args.workload)] if args.workload else d.plans.all()
    statuses = [workload_status(p, d, probe=not args.no_probe, assessment=True) for p in plans]
    if args.json:
        _print_json([s.model_dump(mode="json") for s in statuses])
    else:
        for s in statuses:
            render_status(s)
    return OK


def render_status(s: Any) -> None:
    from rich.table import Table

    from chalicelib.models.durations import format_seconds

    console.rule(f"[bold]{s.workload}[/bold] ({s.tier})")
    console.print(
        f"objectives: RPO {s.objectives['rpo']}, RTO {s.objectives['rto']}   "
        f"active region: [bold]{s.active_region or 'split/unknown'}[/bold]"
        + (f"   [red]traffic unreadable: {s.traffic_error}[/red]" if s.traffic_error else "")
    )
    table = Table(show_edge=False)
    for col in ("role", "region", "endpoint", "traffic", "smoke test"):
        table.add_column(col)
    for e in s.endpoints:
        smoke = "-" if e.smoke is None else ("[green]pass[/green] " if e.smoke.passed else "[red]FAIL[/red] ")
        if e.smoke is not None:
            smoke += e.smoke.reason
        table.add_row(e.role, e.region, e.endpoint, "-" if e.weight is None else f"{e.weight}%", smoke)
    console.print(table)
    st = s.state
    if st.last_failover_at:
        when = f"{st.last_failover_at:%Y-%m-%d %H:%M:%S}"
        console.print(f"last failover: {when} UTC, measured RTO {format_seconds(st.last_rto_seconds)}")
    if s.assessment:
        console.print(f"last assessment: {s.assessment}", soft_wrap=True)
    for r in s.running:
        console.print(f"running: {r['kind']} {r['name']}")
    lock = s.lock
    if lock is not None:
        console.print(
            f"lock: held by {lock.operation} {lock.holder_name} since {lock.acquired_at:%Y-%m-%d %H:%M:%S}, "
            f"lease until {lock.expires_at:%H:%M:%S} UTC"
        )
        if lock.stale:
            console.print(
                f"  [red]STALE[/red]: {lock.stale_reason}; nothing will release it before the lease ends. "
                f"Free it with: lifeboat unlock {s.workload} --reason TEXT",
                soft_wrap=True,
            )


# -- failover --------------------------------------------------------------------------------------------
def cmd_failover(args: argparse.Namespace) -> int:
    from chalicelib.services import operations
    from chalicelib.services.deps import deps

    d = deps()
    if args.dry_run:
        preview = operations.preview_failover(args.workload, args.mode, d)
        if args.json:
            _print_json(preview.model_dump(mode="json"))
        else:
            console.print(f"dry run: failover of {preview.workload} ({preview.mode}); nothing will change")
            from chalicelib.domain.watch import failover_steps_in_words

            plan = d.plans.get(preview.workload)
            for i, step in enumerate(failover_steps_in_words(plan, preview.steps), 1):
                console.print(f"  {i:2}. {step}")
            before = _traffic(plan, preview.traffic_before) if preview.traffic_before else "unreadable"
            console.print(f"traffic: {before} → {_traffic(plan, preview.traffic_after)}")
            verdict = "passes" if preview.backup_smoke_passed else "[red]FAILS[/red]"
            console.print(f"backup smoke test now: {verdict} ({preview.backup_smoke_reason})")
        return BREACHED if preview.would_refuse else OK
    from pydantic import ValidationError

    from chalicelib.models.api import FailoverBody
    from chalicelib.services import console as uc

    try:
        body = FailoverBody(mode=args.mode, dry_run=False, reason=args.reason, force=args.force)
    except ValidationError as err:
        raise CliError(f"--reason: {err.errors()[0]['msg']}") from None
    with _working(f"asking Lifeboat to fail {args.workload} over (smoke tests, lock, start)", args.json):
        result = _refused_or(lambda: uc.request_failover(args.workload, body, _caller(), d), args.json)
    if result is None:
        return BREACHED
    if isinstance(result, uc.NothingToDo):
        if args.json:
            _print_json(result.model_dump(mode="json"))
        else:
            console.print(f"{result.reason} (--force runs a failover anyway)", soft_wrap=True)
        return OK
    assert isinstance(result, uc.OperationStarted)
    if not args.json:
        console.print(f"started {result.execution['name']}")
    if not args.wait:
        if args.json:
            _print_json(result.model_dump(mode="json"))
        return OK
    return follow(result.execution["arn"], args.json)


def _traffic(plan: Any, weights: dict[str, int]) -> str:
    """Weights by role, as people read them: "us-east-1 100%, us-west-2 0%"."""
    return ", ".join(f"{plan.region_of(role)} {share}%" for role, share in weights.items())


def _refused_or(request: Callable[[], T], as_json: bool) -> T | None:
    """Run an operator request; a refusal (another operation in the way, nothing to act on) prints why and
    is None (exit code 1); a state machine missing from this region is a CliError (exit code 2)."""
    from chalicelib.services.unavailable import FeatureUnavailable
    from chalicelib.services.workload_lock import OperationConflict

    try:
        return request()
    except OperationConflict as err:
        if as_json:
            _print_json({"workload": err.workload, "refused": str(err), "execution": err.execution})
        else:
            err_console.print(f"[red]refused:[/red] {err}", soft_wrap=True)  # commands stay copyable
        return None
    except FeatureUnavailable as err:
        raise CliError(str(err)) from None


def follow(execution_arn: str, as_json: bool, timeout: float = 900.0) -> int:
    """Watch the execution live until it ends (`lifeboat watch`); exit code from its outcome."""
    from chalicelib.services.deps import deps
    from lifeboat_cli.watch import follow as watch_follow
    from lifeboat_cli.watch import open_watch

    return watch_follow(open_watch(execution_arn, deps()), console, as_json=as_json, timeout=timeout)


def _working(what: str, as_json: bool) -> Any:
    """A spinner saying what the CLI waits for (on a terminal): a request can take seconds, never silently."""
    import contextlib

    if as_json or not console.is_terminal:
        return contextlib.nullcontext()
    return console.status(what)


def _caller() -> str:
    try:
        from chalicelib.adapters import aws

        return str(aws.client("sts").get_caller_identity()["Arn"])
    except Exception:
        import getpass

        return f"local:{getpass.getuser()}"


# -- failback --------------------------------------------------------------------------------------------
def cmd_failback(args: argparse.Namespace) -> int:
    from chalicelib.services import console as uc
    from chalicelib.services.deps import deps

    with _working(f"asking Lifeboat to fail {args.workload} back (checks, lock, start)", args.json):
        result = _refused_or(
            lambda: uc.request_failback(args.workload, args.reason, _caller(), deps()), args.json
        )
    if result is None:
        return BREACHED
    name, arn = result.execution["name"], result.execution["arn"]
    if not args.json:
        console.print(f"started {name}")
        controls = "approve|reject|pause|resume|fast-track|abort"
        console.print(f"  control it with: lifeboat {controls} {name}")
    if not args.wait:
        if args.json:
            _print_json(result.model_dump(mode="json"))
        return OK
    return follow(arn, args.json, timeout=args.timeout)


def cmd_unlock(args: argparse.Namespace) -> int:
    from chalicelib.services import console as uc
    from chalicelib.services.deps import deps

    if not args.reason.strip():
        raise CliError("--reason must not be empty: it goes to the ledger with your identity")
    outcome = uc.unlock(args.workload, args.reason.strip(), _caller(), deps())
    if args.json:
        _print_json(outcome.model_dump(mode="json"))
    else:
        console.print(outcome.result, soft_wrap=True)
    return OK


def cmd_failback_control(args: argparse.Namespace) -> int:
    from chalicelib.models.failback import ControlOutcome
    from chalicelib.services import failback_ops as ops
    from chalicelib.services.deps import Deps, deps
    from chalicelib.services.executions import UnknownExecution

    controls: dict[str, Callable[[str, str, Deps, str], ControlOutcome]] = {
        "approve": ops.approve,
        "reject": ops.reject,
        "pause": ops.pause,
        "resume": ops.resume,
        "abort": ops.abort,
        "fast-track": ops.fast_track,
    }
    try:
        outcome = controls[args.command](args.execution, _caller(), deps(), args.reason)
    except UnknownExecution as err:
        err_console.print(f"[red]error:[/red] {err}")
        return USAGE
    except ops.ControlRefused as err:
        if args.json:
            _print_json({"execution": args.execution, "action": args.command, "refused": str(err)})
        else:
            err_console.print(f"[red]refused:[/red] {err}")
        return BREACHED
    if args.json:
        _print_json(outcome.model_dump(mode="json"))
    else:
        console.print(f"{outcome.action}: {outcome.result}")
    return OK


# -- ledger ----------------------------------------------------------------------------------------------
def cmd_ledger(args: argparse.Namespace) -> int:
    from rich.table import Table

    from chalicelib.services.deps import deps

    d = deps()
    d.plans.get(args.workload)  # an unknown workload is a usage error, not an empty ledger
    entries = d.ledger.entries(args.workload, limit=args.limit)
    if args.json:
        _print_json([e.model_dump(mode="json") for e in entries])
        return OK
    from chalicelib.domain.watch import who

    table = Table(show_edge=False)
    for col in ("at (UTC)", "kind", "outcome", "by", "reason"):
        table.add_column(col)
    for e in reversed(entries):
        table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.kind, e.outcome, who(e.actor), e.reason)
    console.print(table)
    return OK


# -- parser ----------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lifeboat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--cloud",
        choices=["auto", "local", "aws"],
        default="auto",
        help="auto: the local cloud when it is up, else AWS (default)",
    )
    p.add_argument("--stage", default="dev", help="deployment stage in .chalice/config.json (AWS)")
    p.add_argument(
        "--region",
        help="the copy of Lifeboat to talk to (default: the home region); with the primary region's APIs "
        "down, use the secondary's",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="validate or render DR plans").add_subparsers(
        dest="action", required=True
    )
    v = plan.add_parser("validate", help="validate plan files")
    v.add_argument("files", nargs="+")
    v.set_defaults(func=cmd_plan_validate, offline=True)
    r = plan.add_parser("render", help="print the state machines generated from a plan")
    r.add_argument("file")
    r.add_argument("--account", default="123456789012")
    r.add_argument("--region", default=None)
    r.set_defaults(func=cmd_plan_render, offline=True)

    local = sub.add_parser("local", help="the embedded local cloud")
    local_sub = local.add_subparsers(dest="action", required=True)
    for action, words in (
        ("up", "start the local cloud and the plans' model servers in the background (shows each step)"),
        ("down", "stop the local cloud and everything it started"),
        ("status", "is the local cloud up, and where do its endpoints and model servers listen"),
    ):
        a = local_sub.add_parser(action, help=words)
        if action == "up":
            a.add_argument("--owner", type=int, metavar="PID", help="stop the local cloud when PID ends")
        a.add_argument("--plans", default="plans", help="folder of plans to load (up)")
        a.set_defaults(func=cmd_local, offline=True)
    k = local_sub.add_parser("kill", help="kill a model server process (simulates a regional outage)")
    k.add_argument("workload")
    k.add_argument("role", choices=["primary", "secondary"])
    k.set_defaults(func=cmd_local_kill, offline=True)

    s = sub.add_parser("status", help="live DR status of workloads")
    s.add_argument("workload", nargs="?")
    s.add_argument("--no-probe", action="store_true", help="do not smoke-test the endpoints")
    s.set_defaults(func=cmd_status)

    f = sub.add_parser("failover", help="fail a workload over to its secondary region")
    f.add_argument("workload")
    f.add_argument("--mode", choices=["graceful", "ungraceful"], default="graceful")
    f.add_argument("--reason", default="operator request")
    f.add_argument("--dry-run", action="store_true", help="show the steps and traffic change; change nothing")
    f.add_argument(
        "--force", action="store_true", help="run even when the workload already serves from its secondary"
    )
    f.add_argument("--wait", dest="wait", action="store_true", default=True, help="watch it live (default)")
    f.add_argument("--no-wait", dest="wait", action="store_false", help="return once started")
    f.set_defaults(func=cmd_failover)

    fb = sub.add_parser("failback", help="return a failed-over workload to its primary region, in steps")
    fb.add_argument("workload")
    fb.add_argument("--reason", default="operator request")
    fb.add_argument("--wait", action="store_true", help="follow the execution until it ends")
    fb.add_argument("--timeout", type=float, default=3600.0, help="how long --wait follows (seconds)")
    fb.set_defaults(func=cmd_failback)
    for action, words in (
        ("approve", "approve a failback waiting for approval"),
        ("reject", "reject a failback waiting for approval (nothing shifts)"),
        ("pause", "pause a failback at its current step"),
        ("resume", "resume a paused failback (or re-evaluate an inconclusive gate)"),
        ("abort", "roll back now: all traffic to the secondary, stop the execution"),
        ("fast-track", "skip the remaining bake and steps; the gates still validate 100%%"),
    ):
        c = sub.add_parser(action, help=words)
        c.add_argument("execution", help="failback execution name or ARN")
        c.add_argument("--reason", default="", help="recorded in the ledger")
        c.set_defaults(func=cmd_failback_control)

    u = sub.add_parser("unlock", help="remove a workload's (stale) failover/failback lock, whoever holds it")
    u.add_argument("workload")
    u.add_argument("--reason", required=True, help="why (recorded in the ledger with your identity)")
    u.set_defaults(func=cmd_unlock)

    led = sub.add_parser("ledger", help="a workload's decisions and operations")
    led.add_argument("workload")
    led.add_argument("--limit", type=int, default=30)
    led.set_defaults(func=cmd_ledger)

    c = sub.add_parser("connect", help="wire a plan's S3 asset into Lifeboat (replication metrics + events)")
    c.add_argument("asset", help="asset name, or workload/asset")
    c.add_argument("--plans", help="read the plans from this folder instead of Lifeboat's plan bucket")
    c.add_argument("--queue-arn", help="Lifeboat's replication queue (default: found by name in its region)")
    c.set_defaults(func=lambda a: __import__("lifeboat_cli.connect", fromlist=["cmd_connect"]).cmd_connect(a))

    ver = sub.add_parser("verify", help="verify a workload's backups now and measure each asset's RPO")
    ver.add_argument("workload")
    ver.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable report")
    ver.add_argument("--workers", type=int, default=4, help="shards checked in parallel (default 4)")
    ver.set_defaults(
        func=lambda a: __import__("lifeboat_cli.verify_cmd", fromlist=["cmd_verify"]).cmd_verify(a)
    )

    from lifeboat_cli import assess_cmd

    assess_cmd.register(sub)  # assess WORKLOAD (issue 21)
    d = sub.add_parser("demo", help="the README demo on the local cloud")
    d.add_argument("--keep-running", action="store_true", help="leave the local cloud up afterwards")
    d.add_argument("--dashboard", action="store_true", help="serve the web dashboard during the demo")
    d.add_argument("--plan", help="the plan to demonstrate (default plans/fraud-scoring.yaml)")
    d.set_defaults(func=lambda a: __import__("lifeboat_cli.demo", fromlist=["run"]).run(a), offline=True)
    executions_cli.register(sub, plan)  # executions, execution ID, plan check (issue 6)
    drill_cli.register(sub)  # drill WORKLOAD | list | show | recover (issue 8)
    __import__("lifeboat_cli.dashboard", fromlist=["register"]).register(sub)  # dashboard (issue 19)
    watch_cli.register(sub)  # watch EXECUTION (issue 18)
    accept_global_flags_anywhere(p)  # keep last: covers every subcommand above
    __import__("lifeboat_cli.restore_cmd", fromlist=["register"]).register(sub)  # restore (issue 17)
    __import__("lifeboat_cli.rollback_cmd", fromlist=["register"]).register(sub)  # rollback (issue 17)
    return p


GLOBAL_FLAGS = ("--cloud", "--stage", "--region", "--json")


def accept_global_flags_anywhere(p: argparse.ArgumentParser) -> None:
    """Let `lifeboat status W --json` mean `lifeboat --json status W`: every subcommand (however registered)
    also takes the global flags it does not define itself, set only when given there."""
    globals_ = [a for a in p._actions if any(o in GLOBAL_FLAGS for o in a.option_strings)]
    seen: set[int] = set()

    def visit(parser_: argparse.ArgumentParser) -> None:
        for action in parser_._actions:
            if not isinstance(action, argparse._SubParsersAction):
                continue
            for child in action.choices.values():
                if id(child) in seen:
                    continue
                seen.add(id(child))
                for flag in globals_:
                    if any(o in child._option_string_actions for o in flag.option_strings):
                        continue  # the subcommand's own (plan render --region, verify --json)
                    kwargs: dict[str, Any] = {
                        "dest": flag.dest,
                        "default": argparse.SUPPRESS,
                        "help": flag.help,
                    }
                    if flag.nargs == 0:
                        kwargs["action"] = "store_true"
                    else:
                        kwargs["choices"] = flag.choices
                    child.add_argument(*flag.option_strings, **kwargs)
                visit(child)

    visit(p)


def main(argv: list[str] | None = None) -> int:
    import os

    from lifeboat_cli.errors import explain

    # The CLI is for people: no EMF metric documents or JSON log lines on their terminal.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    args = parser().parse_args(argv)
    cloud: str | None = None
    try:
        if not getattr(args, "offline", False):
            cloud = clouds.select(args.cloud, args.stage, args.region)
            args.selected_cloud = cloud
        return int(args.func(args))
    except CliError as err:
        from rich.text import Text

        # One plain line, never wrapped: scripts and people grep it.
        err_console.print(Text.assemble(("error:", "red"), f" {err}"), soft_wrap=True)
        return USAGE
    except KeyboardInterrupt:  # Ctrl-C: whatever the command started was stopped on the way out
        err_console.print("interrupted", soft_wrap=True)
        return INTERRUPTED
    except Exception as err:
        known = explain(err, cloud)
        if known is None:
            raise
        code, line = known
        from rich.text import Text

        err_console.print(Text.assemble(("error:", "red"), f" {line}"), soft_wrap=True)
        return code
