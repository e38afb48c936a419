"""`make demo`: the README story on the local cloud, narrated.

Start the local cloud and the two model servers (on free ports), load the example plan (`--plan`: any plan
the local cloud can run, e.g. plans/fraud-scoring-sagemaker.yaml, whose SageMaker endpoints the local cloud
serves), show the protected topology and its status; then run the region-outage DR drill: the primary model
server is killed and Lifeboat does its job on its own (canary errors -> alarms -> trigger decision ->
failover state machine -> validated traffic switch), the primary is restored and traffic returns to it step
by step; the drill measures every phase and prints the verdicts (RTO, RPO, failback) and the path of its
HTML report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

from rich.table import Table

from chalicelib.models.durations import format_duration as fmt
from chalicelib.models.durations import format_seconds
from chalicelib.models.plan import HttpEndpoint, SageMakerEndpoint
from lifeboat_cli import cloud as clouds
from lifeboat_cli import drill as drill_cli
from lifeboat_cli.main import BREACHED, OK, console, render_local, render_status
from lifeboat_cli.verify_demo import demo_verification

DEFAULT_PLAN = Path("plans") / "fraud-scoring.yaml"
DEMO_PLANS = Path(".lifeboat") / "demo-plans"


def demo_plans(plan_file: Path, folder: Path = DEMO_PLANS) -> tuple[Path, str]:
    """A plans folder holding only `plan_file` (what the demo's local cloud loads), and its workload.
    Raises CliError naming the file when it cannot be read or is not a valid plan."""
    from chalicelib.models.planfile import PlanError, load_plan_file

    try:
        workload = load_plan_file(plan_file).workload
    except (OSError, PlanError) as exc:
        raise clouds.CliError(f"cannot run the demo on {plan_file}: {exc}") from exc
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copyfile(plan_file, folder / plan_file.name)
    return folder, workload


def endpoint_name(endpoint: Any) -> str:
    if isinstance(endpoint, SageMakerEndpoint):
        return f"SageMaker {endpoint.endpoint_name}" + (
            f"/{endpoint.variant_name}" if endpoint.variant_name else ""
        )
    return str(endpoint.url)


def show_topology(plan: Any) -> None:
    console.rule(f"[bold]Protected workload: {plan.workload}[/bold]")
    console.print(plan.description or "")
    table = Table(show_edge=False)
    for col in ("", "primary", "secondary"):
        table.add_column(col)
    table.add_row("region", plan.regions.primary, plan.regions.secondary)
    table.add_row("endpoint", endpoint_name(plan.endpoints.primary), endpoint_name(plan.endpoints.secondary))
    t = plan.traffic
    if hasattr(t, "set_identifiers"):
        table.add_row(f"{t.kind} {t.record_name}", t.set_identifiers.primary, t.set_identifiers.secondary)
    else:
        table.add_row(f"{t.kind} {t.endpoint_name} ({t.region})", t.variants.primary, t.variants.secondary)
    console.print(table)
    trigger = plan.trigger
    console.print(
        f"objectives: RPO {fmt(plan.rpo)}, RTO {fmt(plan.rto)} ({plan.tier}); "
        f"trigger: {trigger.quorum} of {len(trigger.alarms)} alarms for {fmt(trigger.sustain)}, "
        f"confirmation probe {'on' if plan.trigger.confirmation_probe else 'off'}"
    )
    for asset in plan.assets:
        console.print(f"  asset {asset.name} ({asset.kind}), RPO {fmt(plan.asset_rpo(asset))}")


def predict_on(endpoint: Any, region: str, payload: dict[str, Any]) -> str:
    """What the endpoint answers: POSTed to an http endpoint, InvokeEndpoint for a SageMaker one."""
    if isinstance(endpoint, HttpEndpoint):
        return predict(str(endpoint.url), payload)
    from chalicelib.adapters.endpoints import EndpointClient

    call = EndpointClient().invoke(endpoint, region, "demo", payload, 2.0)
    return json.dumps(call.body) if call.error is None else f"no answer ({call.error})"


def predict(url: str, payload: dict[str, Any]) -> str:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310 - 127.0.0.1 demo server
            return resp.read().decode()
    except Exception as exc:
        return f"no answer ({type(exc).__name__})"


class Watcher:
    """Narrates what Lifeboat does from now on, one poll at a time: alarm changes, ledger entries (decisions,
    failover, failback steps) and, in words, the failover executions they name (never older entries: the
    narration starts when the watcher does)."""

    def __init__(self, plan: Any, d: Any, started: float, *, cloudwatch: Any = None) -> None:
        from chalicelib.adapters import aws

        self.plan, self.d, self.started = plan, d, started
        self.cw = cloudwatch or aws.client("cloudwatch")
        self.since = d.clock()
        self.alarm_states: dict[str, str] = {}
        self.seen_entries: set[str] = set()
        self.failovers: list[Any] = []  # lifeboat_cli.watch.ChangeLines of each failover started

    def at(self) -> str:
        return f"[dim]+{time.monotonic() - self.started:5.1f}s[/dim]"

    def poll(self) -> None:
        for alarm in self.cw.describe_alarms(AlarmNames=self.plan.trigger.alarms)["MetricAlarms"]:
            name, value = alarm["AlarmName"], alarm["StateValue"]
            if self.alarm_states.get(name) != value:
                if name in self.alarm_states or value != "OK":
                    colour = "red" if value == "ALARM" else "green"
                    console.print(f"{self.at()} alarm {name} → [{colour}]{value}[/{colour}]")
                self.alarm_states[name] = value
        for lines in self.failovers:
            self.print_steps(lines)
        for entry in reversed(self.d.ledger.entries(self.plan.workload, limit=20)):
            if entry.entry_id in self.seen_entries or entry.at < self.since:
                continue  # said already, or from before the drill
            self.seen_entries.add(entry.entry_id)
            if entry.kind == "drill":
                continue  # the drill narrates itself
            if entry.kind == "failback" and entry.outcome == "step":
                share = int(entry.detail.get("primary", 0))
                bar = "█" * (share // 10) + "·" * (10 - share // 10)
                console.print(f"{self.at()} [bold]failback step[/bold] [{bar}] {entry.reason}")
                continue
            console.print(f"{self.at()} [bold]{entry.kind}[/bold] {entry.outcome}: {entry.reason}")
            if entry.kind == "decision" and entry.outcome == "started" and entry.execution:
                lines = self.follow(entry.execution)
                if lines is not None:
                    self.failovers.append(lines)
                    self.print_steps(lines)

    def follow(self, arn: str) -> Any:
        """The failover's changes in words (lifeboat watch's), or None when it cannot be read."""
        from chalicelib.models.api import ExecutionRef
        from chalicelib.services.watch import ExecutionWatch
        from lifeboat_cli.watch import ChangeLines

        try:
            return ChangeLines(ExecutionWatch(ExecutionRef(arn=arn, name=arn.rsplit(":", 1)[-1]), self.d))
        except Exception:  # narration never stops a drill: the ledger lines still tell the story
            return None

    def print_steps(self, lines: Any) -> None:
        try:
            changes = lines.poll()
        except Exception:  # a region whose APIs are down: try again at the next poll
            return
        for _at, line in changes:
            console.print(f"{self.at()}   failover: {line}", soft_wrap=True)


def run(args: argparse.Namespace) -> int:
    from chalicelib.services.deps import deps
    from chalicelib.services.status import workload_status

    console.rule("[bold]Lifeboat demo: local cloud[/bold]")
    keep = getattr(args, "keep_running", False)
    plans, workload = demo_plans(Path(getattr(args, "plan", None) or DEFAULT_PLAN))
    state = clouds.local_up(
        plans,
        # Unless asked to keep it, the local cloud ends with the demo, even a demo killed mid-way.
        owner=None if keep else os.getpid(),
        on_start=lambda what: console.print(what, soft_wrap=True),
    )
    render_local(state)
    dashboard = None
    try:
        if workload not in state.get("workloads", {}):
            raise clouds.CliError(
                f"the local cloud already running here does not run {workload} "
                "(stop it with `lifeboat local down`, then run the demo again)"
            )
        clouds.use_local()
        if getattr(args, "dashboard", False):
            from lifeboat_cli import dashboard as web

            dashboard = web.start()
            console.print(f"[bold]dashboard: {dashboard.url}[/bold] (watch the story there)", soft_wrap=True)
        d = deps()
        plan = d.plans.get(workload)
        show_topology(plan)
        render_status(workload_status(plan, d))

        # Backups first: prove every asset is in the other region, then break two things and catch both.
        backups = demo_verification(console, state, workload=workload)
        caught = backups["before"] == "green" and backups["broken"] != "green" and backups["after"] == "green"
        if not caught:
            console.print(f"[red]verification did not behave as expected: {backups}[/red]")

        console.rule("[bold]DR drill region-outage: the primary model server is killed[/bold]")
        console.print(
            "The drill writes a timestamped object to the training data every "
            f"{fmt(plan.drill.write_interval)}, kills the primary model server (SIGKILL) and from then on "
            "only watches and measures: Lifeboat's canary, alarms and state machines do the rest."
        )
        started = time.monotonic()

        def on_event(kind: str, message: str) -> None:
            if kind == "measured":  # the switch is validated: show where traffic is and who answers
                console.rule("[bold]After the failover[/bold]")
                status = workload_status(plan, d)
                render_status(status)
                if status.active_region:
                    serving = plan.endpoint_for(plan.role_of(status.active_region))
                    answer = predict_on(serving, status.active_region, plan.smoke_tests.cases[0].payload)
                    console.print(f"prediction served by {status.active_region}: {answer}")
                console.rule("[bold]Restore the primary, then fail back gradually[/bold]")

        narrator = drill_cli.Narrator(plan, d, started=started, on_event=on_event)
        record = drill_cli.run_drill(
            workload, "region-outage", reason="make demo", requested_by="demo", narrator=narrator
        )

        console.rule("[bold]After the failback[/bold]")
        render_status(workload_status(plan, d))
        console.rule("[bold]Verdicts[/bold]")
        drill_cli.render_record(record)
        rto = record.objective("RTO")
        if rto is not None and rto.measured_seconds is not None:
            verdict = "met" if rto.met else "BREACHED"
            console.print(
                f"[bold]measured RTO {format_seconds(rto.measured_seconds)} against an objective of "
                f"{fmt(plan.rto)}: {verdict}[/bold]"
            )
        return OK if record.verdict == "passed" and caught else BREACHED
    finally:
        if dashboard is not None:
            dashboard.stop()
        if not keep:
            clouds.local_down()
            console.print("local cloud stopped (every process it started is gone)")
