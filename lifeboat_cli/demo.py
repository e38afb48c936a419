"""`make demo`: the README story on the local cloud, narrated.

Start the local cloud and the two model servers, load the example plan, show the protected topology and
its status; then kill the primary model server and let Lifeboat do its job on its own: canary errors ->
alarms -> trigger decision -> failover state machine -> validated traffic switch -> measured RTO, ending
with the secondary region serving predictions.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from chalicelib.models.durations import format_duration as fmt
from lifeboat_cli import cloud as clouds
from lifeboat_cli.main import BREACHED, OK, console, render_status

WORKLOAD = "fraud-scoring"


def show_topology(plan: Any) -> None:
    console.rule(f"[bold]Protected workload: {plan.workload}[/bold]")
    console.print(plan.description or "")
    table = Table(show_edge=False)
    for col in ("", "primary", "secondary"):
        table.add_column(col)
    table.add_row("region", plan.regions.primary, plan.regions.secondary)
    table.add_row("endpoint", plan.endpoints.primary.url, plan.endpoints.secondary.url)
    t = plan.traffic
    table.add_row(f"{t.kind} {t.record_name}", t.set_identifiers.primary, t.set_identifiers.secondary)
    console.print(table)
    trigger = plan.trigger
    console.print(
        f"objectives: RPO {fmt(plan.rpo)}, RTO {fmt(plan.rto)} ({plan.tier}); "
        f"trigger: {trigger.quorum} of {len(trigger.alarms)} alarms for {fmt(trigger.sustain)}, "
        f"confirmation probe {'on' if plan.trigger.confirmation_probe else 'off'}"
    )
    for asset in plan.assets:
        console.print(f"  asset {asset.name} ({asset.kind}), RPO {fmt(plan.asset_rpo(asset))}")


def predict(url: str, payload: dict[str, Any]) -> str:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310 - 127.0.0.1 demo server
            return resp.read().decode()
    except Exception as exc:
        return f"no answer ({type(exc).__name__})"


def watch_failover(plan: Any, d: Any, started: float, timeout: float) -> dict[str, Any] | None:
    """Narrate alarms, decisions and state machine steps until the failover execution ends."""
    from chalicelib.adapters import aws

    cw, sfn = aws.client("cloudwatch"), aws.client("stepfunctions")
    alarm_states: dict[str, str] = {}
    seen_entries: set[str] = set()
    seen_events: set[int] = set()
    execution: str | None = None
    deadline = time.monotonic() + timeout

    def at() -> str:
        return f"[dim]+{time.monotonic() - started:5.1f}s[/dim]"

    def print_steps(arn: str) -> None:
        for ev in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]:
            if ev["id"] not in seen_events:
                seen_events.add(ev["id"])
                if ev.get("stateEnteredEventDetails"):
                    console.print(f"{at()}   step → {ev['stateEnteredEventDetails']['name']}")

    while time.monotonic() < deadline:
        for alarm in cw.describe_alarms(AlarmNames=plan.trigger.alarms)["MetricAlarms"]:
            if alarm_states.get(alarm["AlarmName"]) != alarm["StateValue"]:
                if alarm["AlarmName"] in alarm_states or alarm["StateValue"] != "OK":
                    colour = "red" if alarm["StateValue"] == "ALARM" else "green"
                    console.print(
                        f"{at()} alarm {alarm['AlarmName']} → [{colour}]{alarm['StateValue']}[/{colour}]"
                    )
                alarm_states[alarm["AlarmName"]] = alarm["StateValue"]
        if execution:
            print_steps(execution)
        for entry in reversed(d.ledger.entries(plan.workload, limit=20)):
            if entry.entry_id in seen_entries:
                continue
            seen_entries.add(entry.entry_id)
            console.print(f"{at()} [bold]{entry.kind}[/bold] {entry.outcome}: {entry.reason}")
            if entry.kind == "decision" and entry.outcome == "started" and entry.execution:
                execution = entry.execution
        if execution:
            desc = sfn.describe_execution(executionArn=execution)
            if desc["status"] != "RUNNING":
                # Catch the last steps and the final ledger entry the execution wrote before it ended.
                print_steps(execution)
                for entry in reversed(d.ledger.entries(plan.workload, limit=5)):
                    if entry.entry_id not in seen_entries:
                        seen_entries.add(entry.entry_id)
                        console.print(f"{at()} [bold]{entry.kind}[/bold] {entry.outcome}: {entry.reason}")
                return dict(desc)
        time.sleep(0.5)
    return None


def run(args: argparse.Namespace) -> int:
    from chalicelib.services.deps import deps
    from chalicelib.services.status import workload_status

    console.rule("[bold]Lifeboat demo: local cloud[/bold]")
    state = clouds.local_up(Path("plans"))
    console.print(f"local cloud (moto + Lambda runner) on {state['endpoint_url']}, pid {state['pid']}")
    try:
        clouds.use_local()
        d = deps()
        plan = d.plans.get(WORKLOAD)
        show_topology(plan)
        render_status(workload_status(plan, d))

        console.rule("[bold]Regional outage: the primary model server is killed[/bold]")
        servers = state["workloads"][WORKLOAD]["model_servers"]
        os.kill(int(servers["primary"]["pid"]), signal.SIGKILL)
        started = time.monotonic()
        pid = servers["primary"]["pid"]
        console.print(f"killed pid {pid} ({plan.endpoints.primary.url}) at {datetime.now():%H:%M:%S}")
        console.print("Lifeboat's canary and the alarms notice; nobody touches anything from here on.")
        timeout = (plan.trigger.sustain + plan.failover.replication_wait_timeout).total_seconds() + 120
        result = watch_failover(plan, d, started, timeout)
        if result is None:
            console.print("[red]no failover finished in time[/red]")
            return BREACHED

        console.rule("[bold]After the failover[/bold]")
        status = workload_status(plan, d)
        render_status(status)
        case = plan.smoke_tests.cases[0]
        if status.active_region:
            serving = plan.endpoint_for(plan.role_of(status.active_region))
            console.print(
                f"prediction served by {status.active_region}: {predict(serving.url, case.payload)}"
            )
        ok = result["status"] == "SUCCEEDED" and status.active_region == plan.regions.secondary
        rto = status.state.last_rto_seconds
        if ok and rto is not None:
            verdict = "met" if rto <= plan.rto.total_seconds() else "BREACHED"
            console.print(
                f"[bold]measured RTO {rto:.1f}s against an objective of {plan.rto}: {verdict}[/bold]"
            )
            return OK if verdict == "met" else BREACHED
        console.print(f"[red]failover ended {result['status']}: {result.get('error')}[/red]")
        return BREACHED
    finally:
        if not getattr(args, "keep_running", False):
            clouds.local_down()
            console.print("local cloud stopped (every process it started is gone)")
