"""The long-running local cloud behind `lifeboat local up`: moto + Lambda runner + plans + model servers
+ canary and alarm evaluation + scheduled rules, in one process on 127.0.0.1, until SIGTERM.

It writes a state file (ports, pids, the environment a client needs) that `lifeboat local status|down` and
the CLI read; every process it started is stopped when it stops.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from chalicelib.models.planfile import load_plan_file
from localcloud.alarms import AlarmSimulator, Canary, CanaryTarget
from localcloud.drill_faults import DrillFaultController, respawner
from localcloud.modelserver import stop_process
from localcloud.regional import copies, provision_copy
from localcloud.replication import ReplicationSimulator, faults_path
from localcloud.resources import provision_base
from localcloud.schedules import Scheduler
from localcloud.server import LocalCloud
from localcloud.stack import endpoint_metric_name, provision_plan, start_model_servers

log = logging.getLogger("lifeboat.local")

DEFAULT_STATE = Path(".lifeboat") / "local.json"


def write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(path)  # atomic: readers never see half a file


def read_state(path: Path = DEFAULT_STATE) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def run(plans_dir: Path, state_path: Path, *, interval: float, stop: threading.Event) -> int:
    cloud = LocalCloud()
    servers: dict[str, Any] = {}
    simulators: list[AlarmSimulator] = []
    replicator: ReplicationSimulator | None = None
    drill_faults: DrillFaultController | None = None
    scheduler: Scheduler | None = None
    try:
        cloud.start()
        provision_base(cloud, stage=cloud.stage)
        plan_files = sorted(plans_dir.glob("*.y*ml"))
        # Lifeboat's copy in every other region of the plans: it keeps working when the home region's
        # APIs are down (the region-api-outage drill runs from it).
        for region in sorted({load_plan_file(p).regions.secondary for p in plan_files} - {cloud.region}):
            provision_copy(cloud, region)
        replicator = ReplicationSimulator(cloud, faults_file=faults_path(state_path)).reset_faults()
        targets: list[CanaryTarget] = []
        alarm_regions = {cloud.region}
        workloads: dict[str, Any] = {}
        for path in plan_files:
            plan = load_plan_file(path)
            res = provision_plan(cloud, plan, path.read_text(), stage=cloud.stage)
            replicator.watch(plan)
            alarm_regions.update(plan.alarm_region(a) for a in plan.trigger.alarms)
            procs = start_model_servers(cloud, res)
            for role, proc in procs.items():
                servers[f"{plan.workload}/{role}"] = proc
            first_case = plan.smoke_tests.cases[0].payload
            for role in ("primary", "secondary"):
                url = getattr(plan.endpoint_for(role), "url", None)  # type: ignore[arg-type]
                if url:
                    targets.append(
                        CanaryTarget(
                            name=endpoint_metric_name(plan, role),
                            url=url,
                            payload=first_case,
                            timeout_s=plan.smoke_tests.request_timeout.total_seconds(),
                        )
                    )
            workloads[plan.workload] = {
                "plan_file": str(path),
                "state_machines": res.state_machines,
                "copies": res.copies,
                "topic_arn": res.topic_arn,
                "model": res.model,
                "model_servers": {
                    role: {"pid": proc.pid, "port": proc.port, "url": proc.url}
                    for role, proc in procs.items()
                },
            }
        replicator.start()
        # A canary and alarm evaluation in every region where a plan has alarms (trigger.alarm_regions).
        for region in sorted(alarm_regions, key=lambda r: (r != cloud.region, r)):
            simulator = AlarmSimulator(cloud, region=region)
            simulator.attach(Canary(targets, cloud.client("cloudwatch", region)))
            simulators.append(simulator.start(interval_s=interval))
        # Scheduled rules fire as in AWS: failback_auto every minute and verify_scheduled every hour, both
        # counted from now; drill_monthly at 06:00 UTC on the 1st.
        scheduler = Scheduler(cloud).start()
        write_state(
            state_path,
            {
                "ready": True,
                "pid": os.getpid(),
                "endpoint_url": cloud.endpoint_url,
                "port": cloud.port,
                "stage": cloud.stage,
                "env": cloud.env(),
                "started_at": time.time(),
                "workloads": workloads,
                "resources": {k: v for k, v in cloud.resources.items() if isinstance(v, str | dict)},
                "copies": {region: {"env": copy["env"]} for region, copy in copies(cloud).items()},
            },
        )
        log.info("local cloud ready on %s", cloud.endpoint_url)
        # Drills: faults the CLI asks for (drill control file), drills the daemon's own functions run.
        respawn = respawner(cloud, state_path, servers)
        drill_faults = DrillFaultController(state_path, servers, respawn).start()
        stop.wait()
        return 0
    finally:
        if scheduler is not None:
            scheduler.stop()
        if drill_faults is not None:
            drill_faults.stop()
        if replicator is not None:
            replicator.stop()
        for simulator in simulators:
            simulator.stop()
        for proc in servers.values():
            try:
                stop_process(proc)
            except Exception as exc:  # keep stopping the others
                log.warning("could not stop model server %s: %s", proc.pid, exc)
        cloud.stop()
        state_path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.daemon", description=__doc__)
    parser.add_argument("--plans", type=Path, default=Path("plans"), help="folder of DR plan YAML files")
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help="state file to write")
    parser.add_argument("--interval", type=float, default=1.0, help="canary/alarm evaluation interval (s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return run(args.plans, args.state, interval=args.interval, stop=stop)
    except Exception:
        log.exception("local cloud failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
