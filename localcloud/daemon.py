"""The long-running local cloud behind `lifeboat local up`: moto + Lambda runner + plans + model servers
+ canary and alarm evaluation + scheduled rules, in one process on 127.0.0.1, until SIGTERM (or until the
process given with --owner ends).

It writes a state file (ports, pids, model server URLs, the environment a client needs) that `lifeboat local
status|down` and the CLI read; every process it started is stopped when it stops. While starting it reports
one line per step (what it starts) on --progress-fd, then `ready` or `failed <why>` (lifeboat_cli/cloud.py).

Model servers listen on free ports chosen at start (localcloud/ports.py): the plan it stores names them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from chalicelib.models.plan import ROLES, DRPlan, Role
from chalicelib.models.planfile import PlanError, load_plan_files
from localcloud.alarms import AlarmSimulator, Canary, CanaryTarget
from localcloud.drill_faults import DrillFaultController, respawner
from localcloud.modelserver import ModelServerStartError, stop_process
from localcloud.ports import PortReservation, local_roles, local_url, on_ports
from localcloud.processes import watch_owner
from localcloud.regional import copies, provision_copy
from localcloud.replication import ReplicationSimulator, faults_path
from localcloud.resources import provision_base
from localcloud.sagemaker import sagemaker_roles, variant_backends
from localcloud.schedules import Scheduler
from localcloud.server import LocalCloud
from localcloud.stack import deployment_file, endpoint_metric_name, provision_plan, start_model_servers
from localcloud.state import DEFAULT_STATE, read_state, write_state  # noqa: F401 (read_state: importers)

# Not under "lifeboat": that is the functions' JSON logger (powertools), which would swallow these lines.
log = logging.getLogger("localcloud.daemon")  # not __name__: run as __main__


def why(exc: BaseException) -> str:
    """What went wrong, in one line a person can act on (the log file has the traceback)."""
    if isinstance(exc, PlanError) and exc.problems:
        more = len(exc.problems) - 1
        return str(exc.problems[0]) + (f" (and {more} more problems)" if more else "")
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    explained = (OSError, ModelServerStartError, ValueError)  # their messages say what failed (PlanError too)
    if isinstance(exc, explained) or type(exc).__module__ != "builtins":
        return lines[0]
    return f"{type(exc).__name__}: {lines[0]}"


class Interrupted(Exception):
    """The daemon was told to stop before it was up."""


class Progress:
    """Tells whoever waits for the daemon (`lifeboat local up`) what it is doing, then how that ended: one
    line each, `step <what it starts>`, then `ready` or `failed <why>`, on a pipe the waiter passed."""

    def __init__(self, fd: int | None = None) -> None:
        self._out = os.fdopen(fd, "w", encoding="utf-8", buffering=1) if fd is not None else None

    def step(self, what: str) -> None:
        log.info("%s", what)
        self._send(f"step {what}")

    def ready(self) -> None:
        self._send("ready")
        self.close()

    def failed(self, exc: BaseException) -> None:
        self._send(f"failed {why(exc)}")
        self.close()

    def close(self) -> None:
        out, self._out = self._out, None
        if out is not None:
            with contextlib.suppress(OSError):
                out.close()

    def _send(self, line: str) -> None:
        if self._out is None:
            return
        try:
            self._out.write(" ".join(line.split()) + "\n")
        except OSError:  # the waiter is gone (Ctrl-C): keep starting, nobody is listening
            self.close()


def deployments_dir(state_path: Path) -> Path:
    """The model servers' deployment records, next to the state file."""
    return state_path.with_name(f"{state_path.stem}.deployments")


def _model_server(
    starting: Callable[[str], None], plan: DRPlan, reserved: dict[Role, PortReservation], role: Role
) -> None:
    url = local_url(plan, role) or f"http://127.0.0.1:{reserved[role].port} ({endpoint_label(plan, role)})"
    starting(f"starting model server {plan.workload}/{role} ({plan.region_of(role)}) on {url}")
    _hold_while_asked()
    reserved[role].hand_over()


def endpoint_label(plan: DRPlan, role: Role) -> str | None:
    """How the plan names a role's endpoint: its URL (http), or the SageMaker endpoint and variant the local
    cloud's SageMaker routes to the role's model server."""
    url = local_url(plan, role)
    if url is not None:
        return url
    served = [b for b in variant_backends(plan) if b.role == role]
    if not served:
        return None
    return ", ".join(f"SageMaker {b.endpoint}/{b.variant} ({b.region})" for b in served)


HOLD_FILE_VARIABLE = "LIFEBOAT_LOCAL_HOLD_FILE"
HOLD_LIMIT_S = 120.0
_STOPPING = threading.Event()  # set by a stop signal or the owner's end: a held start gives way at once


def _hold_while_asked() -> None:
    """For tests of an interrupted start: while the file named by $LIFEBOAT_LOCAL_HOLD_FILE exists, wait
    here (at most HOLD_LIMIT_S), so a test can interrupt `local up` at a known step whatever the load."""
    hold = os.environ.get(HOLD_FILE_VARIABLE)
    if not hold:
        return
    deadline = time.monotonic() + HOLD_LIMIT_S
    while Path(hold).exists() and time.monotonic() < deadline and not _STOPPING.is_set():
        time.sleep(0.05)


def run(
    plans_dir: Path,
    state_path: Path,
    *,
    interval: float,
    stop: threading.Event,
    progress: Progress | None = None,
) -> int:
    progress = progress or Progress()

    def starting(step: str) -> None:
        if stop.is_set():  # SIGTERM or the owner gone while starting: stop now, not once all is up
            raise Interrupted("stopped while starting")
        progress.step(step)

    cloud = LocalCloud()
    servers: dict[str, Any] = {}
    ports: list[PortReservation] = []
    simulators: list[AlarmSimulator] = []
    replicator: ReplicationSimulator | None = None
    drill_faults: DrillFaultController | None = None
    scheduler: Scheduler | None = None
    try:
        plan_files = sorted(plans_dir.glob("*.y*ml"))
        starting(f"reading the plans in {plans_dir}/: {', '.join(p.name for p in plan_files) or 'none'}")
        sources = load_plan_files(
            plan_files
        )  # a broken plan (or a workload twice) fails before anything runs
        starting("starting moto server (the local AWS APIs) and the Lambda runner")
        cloud.start()
        starting(f"creating Lifeboat's functions, queues and buckets in {cloud.region}")
        provision_base(cloud, stage=cloud.stage)
        # Lifeboat's copy in every other region of the plans: it keeps working when the home region's
        # APIs are down (the region-api-outage drill runs from it).
        for region in sorted({p.regions.secondary for p in sources} - {cloud.region}):
            starting(f"creating Lifeboat's copy in {region}")
            provision_copy(cloud, region)
        replicator = ReplicationSimulator(cloud, faults_file=faults_path(state_path)).reset_faults()
        # What each model server was last deployed with (a model rollback's /admin/model), for its restarts;
        # the objects they name lived in this run's S3 only, so a new local cloud starts without them.
        deployments = deployments_dir(state_path)
        shutil.rmtree(deployments, ignore_errors=True)
        targets: list[CanaryTarget] = []
        alarm_regions = {cloud.region}
        workloads: dict[str, Any] = {}
        for path, source in zip(plan_files, sources, strict=True):
            # Free ports for the plan's local endpoints, held for the daemon's life: the plan it stores
            # names them, and a drill restarts a killed model server on the same one.
            # A SageMaker endpoint's variants are served by their role's model server: a free port each too.
            http_roles, sagemaker = local_roles(source), sagemaker_roles(source)
            reserved = {role: PortReservation() for role in ROLES if role in {*http_roles, *sagemaker}}
            ports.extend(reserved.values())
            plan, text = on_ports(source, {role: reserved[role].port for role in http_roles}, str(path))
            starting(f"creating what {plan.workload} needs: buckets, tables, alarms, DNS, state machines")
            res = provision_plan(cloud, plan, text, stage=cloud.stage)
            replicator.watch(plan)
            alarm_regions.update(plan.alarm_region(a) for a in plan.trigger.alarms)
            procs = start_model_servers(
                cloud,
                res,
                starting=partial(_model_server, starting, plan, reserved),
                ports={role: reserved[role].port for role in sagemaker},
                deployments=deployments,
            )
            for role, proc in procs.items():
                servers[f"{plan.workload}/{role}"] = proc
            first_case = plan.smoke_tests.cases[0].payload
            for role in ROLES:
                # The canary probes an http endpoint, or the model server behind a SageMaker endpoint's
                # variants (what CloudWatch's per-variant invocation metrics see of the container).
                url = getattr(plan.endpoint_for(role), "url", None)
                if url is None and role in procs and role in sagemaker:
                    url = procs[role].url + "/invocations"
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
                    role: {
                        "pid": proc.pid,
                        "port": proc.port,
                        "url": proc.url,  # the server itself: /ping, /admin/faults
                        "endpoint": endpoint_label(plan, role),  # type: ignore[arg-type]  # as the plan names it
                        "region": plan.region_of(role),  # type: ignore[arg-type]
                        # what a restart serves: the last deployment (localcloud.modelserver)
                        "deployment_file": str(deployment_file(deployments, plan.workload, role)),
                    }
                    for role, proc in procs.items()
                },
            }
        replicator.start()
        # A canary and alarm evaluation in every region where a plan has alarms (trigger.alarm_regions).
        for region in sorted(alarm_regions, key=lambda r: (r != cloud.region, r)):
            starting(f"starting the canary and alarm evaluation in {region}")
            simulator = AlarmSimulator(cloud, region=region)
            simulator.attach(Canary(targets, cloud.client("cloudwatch", region)))
            simulators.append(simulator.start(interval_s=interval))
        # Scheduled rules fire as in AWS: failback_auto every minute and verify_scheduled every hour, both
        # counted from now; drill_monthly at 06:00 UTC on the 1st.
        starting("starting the scheduled rules (failback_auto, verify_scheduled, drill_monthly)")
        scheduler = Scheduler(cloud).start()
        write_state(
            state_path,
            {
                "ready": True,
                "pid": os.getpid(),
                "pgid": os.getpgid(0),
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
        # Drills: faults the CLI asks for (drill control file), drills the daemon's own functions run.
        respawn = respawner(cloud, state_path, servers)
        drill_faults = DrillFaultController(state_path, servers, respawn).start()
        log.info("local cloud ready on %s", cloud.endpoint_url)
        progress.ready()
        # A bounded wait in a loop, not stop.wait(): Python runs a signal's handler only in the main thread,
        # between bytecodes. A SIGTERM the kernel hands to another thread (the moto server's, a canary's)
        # would leave a main thread blocked in one unbounded lock wait deaf to it, until `local down` gave up
        # and killed the daemon without its cleanup.
        while not stop.wait(0.5):
            pass
        return 0
    except Interrupted as exc:
        progress.failed(exc)
        return 0
    except BaseException as exc:
        progress.failed(exc)
        raise
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
        for reservation in ports:
            reservation.close()
        state_path.unlink(missing_ok=True)
        shutil.rmtree(deployments_dir(state_path), ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.daemon", description=__doc__)
    parser.add_argument("--plans", type=Path, default=Path("plans"), help="folder of DR plan YAML files")
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help="state file to write")
    parser.add_argument("--interval", type=float, default=1.0, help="canary/alarm evaluation interval (s)")
    parser.add_argument(
        "--owner", type=int, metavar="PID", help="stop when this process ends (a test, `lifeboat demo`)"
    )
    parser.add_argument(
        "--progress-fd", type=int, metavar="FD", help="write what is starting, then ready/failed, to this fd"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    progress = Progress(args.progress_fd)

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping", signum)
        _STOPPING.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.owner:

        def owner_gone() -> None:
            log.warning("owner process %s ended: stopping", args.owner)
            _STOPPING.set()
            stop.set()

        watch_owner(args.owner, owner_gone)
    try:
        return run(args.plans, args.state, interval=args.interval, stop=stop, progress=progress)
    except Exception:
        log.exception("local cloud failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
