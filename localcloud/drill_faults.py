"""Real faults for DR drills in the local cloud: processes killed, responses delayed or wrong, replication
paused (the replication simulator honours `replication_control`), a replica artifact swapped (or a bad model
deployed to both regions), a share of Lifeboat's AWS calls throttled. Never deployed.

`LocalFaults` is the drill's `FaultInjector`. What it does to a model server depends on who owns it:
- `ThreadServers`: in-process `ModelServer`s (integration tests): killing one closes its socket, restoring it
  starts a new server on the same port from the same S3 copy of the artifact.
- `DaemonServers`: the daemon's model-server processes, driven from the CLI: killed with SIGKILL by pid,
  brought back by the daemon (it owns them) when the drill control file says they should be up.
- `OwnedServers`: the daemon's own view of its processes (the Lambda path: API- or schedule-started drills).

Faults that must act inside the daemon (throttling the Lambda handlers' AWS calls, pausing replication for
the replication simulator, restarting model servers) travel through the drill control file
(`.lifeboat/drill-faults.json`), which the daemon's `DrillFaultController` applies every 0.25s. The file
carries a lease: when the drill stops renewing it (its process died), the controller restores everything
and runs `chalicelib.services.drills.recover`, which puts traffic back and records the drill interrupted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from chalicelib.adapters import aws
from chalicelib.adapters.drill_faults import ReplicaCopy, admin_url, call_faults
from chalicelib.models.plan import ROLES, DRPlan, HttpEndpoint, Role
from chalicelib.models.urls import OutboundPolicy
from localcloud import replication_control
from localcloud.faults import _operation_from, _response, _Rule
from localcloud.lambda_runner import outside_invocation
from localcloud.model import ModelArtifact
from localcloud.modelserver import ModelServer, load_artifact_from_s3, publish_artifact
from localcloud.region_outage import GLOBAL_SERVICES, REGION_OUTAGE
from localcloud.sagemaker import variant_backends
from localcloud.stack import local_port

log = logging.getLogger("lifeboat.drills")

CONTROL_FILE = Path(".lifeboat") / "drill-faults.json"
THROTTLED_SERVICES = ("dynamodb", "route53", "cloudwatch", "stepfunctions", "sns")
READY_TIMEOUT = 30.0

MODEL_SERVERS = OutboundPolicy(allow_loopback=True)
"""The local model servers' fault API is on 127.0.0.1, whatever the settings of the process calling it."""


# -- AWS throttling ------------------------------------------------------------------------------------------
class ShareThrottle:
    """Throttle a share of the calls Lifeboat's client factory makes in this process, with the error
    response AWS sends. Deterministic per thread (every k-th call of each thread, like the model server's
    error_rate), so one call's retries never meet two throttles in a row: what a healthy client with
    retries must absorb, and does, unless something is wrong with its retry handling."""

    _HANDLER_ID = "lifeboat-drill-throttle"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._share = Fraction(0)
        self._local = threading.local()
        self._generation = 0
        self.throttled = 0
        self._hooked: list[Any] = []

    @property
    def share(self) -> float:
        return float(self._share)

    def set(self, share: float, region: str | None = None) -> None:
        with self._lock:
            self._share = Fraction(share).limit_denominator(1000)
            self._generation += 1
        if share > 0:
            self._hook(region)
        else:
            self.clear()

    def _hook(self, region: str | None) -> None:
        clients = [
            aws.client(service, region, fail_fast=fail_fast)
            for service in THROTTLED_SERVICES
            for fail_fast in (False, True)  # fail-fast clients read alarms region by region
        ]
        for client in clients:
            if any(c is client for c in self._hooked):
                continue
            protocol = client.meta.service_model.protocol

            def hook(request: Any, _protocol: str = protocol, **kwargs: Any) -> Any:
                if not self._next():
                    return None
                return throttling_response(request.url, _protocol, kwargs.get("event_name", ""))

            client.meta.events.register("before-send", hook, unique_id=self._HANDLER_ID)
            self._hooked.append(client)

    def _next(self) -> bool:
        with self._lock:
            share, generation = self._share, self._generation
        if not share:
            return False
        local = self._local
        if getattr(local, "generation", None) != generation:
            local.generation, local.calls = generation, 0
        local.calls += 1
        hit = math.floor(local.calls * share) > math.floor((local.calls - 1) * share)
        if hit:
            with self._lock:
                self.throttled += 1
        return hit

    def clear(self) -> None:
        with self._lock:
            self._share = Fraction(0)
            hooked, self._hooked = self._hooked, []
        for client in hooked:
            client.meta.events.unregister("before-send", unique_id=self._HANDLER_ID)


def throttling_response(url: str, protocol: str, event_name: str) -> Any:
    """What AWS answers a throttled call, in the call's wire format. botocore picks JSON for services that
    also offer CBOR (CloudWatch), so anything not XML-based is answered as JSON."""
    wire = protocol if protocol in ("json", "rest-json", "query", "rest-xml", "ec2") else "json"
    rule = _Rule(
        operation=_operation_from(event_name),
        remaining=0,
        status=400,
        code="Throttling",
        message="Rate exceeded",
    )
    return _response(url, wire, rule)


THROTTLE = ShareThrottle()
"""This process's throttle (the daemon's, or a test's in-process cloud)."""


# -- model servers -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArtifactCopies:
    """Where each role's model server loads its artifact from (PlanResources.model / the daemon state)."""

    buckets: dict[str, str]
    keys: dict[str, str]
    sha256: str

    @classmethod
    def from_model(cls, model: dict[str, str]) -> ArtifactCopies:
        return cls(
            buckets={r: model[f"{r}_bucket"] for r in ROLES},
            keys={r: model[f"{r}_key"] for r in ROLES},
            sha256=model["sha256"],
        )


class ServerControl(Protocol):
    def kill(self, role: Role) -> str: ...

    def start(self, role: Role) -> str: ...

    def alive(self, role: Role) -> bool: ...

    def url(self, role: Role) -> str:
        """The role's model server (its /ping, /invocations, /admin/faults), whatever the plan's endpoint is:
        an http endpoint names it, a SageMaker endpoint's variants are routed to it."""


def _url(plan: DRPlan, role: Role) -> str:
    endpoint = plan.endpoint_for(role)
    return endpoint.url if isinstance(endpoint, HttpEndpoint) else ""


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_ping(url: str, timeout: float = READY_TIMEOUT) -> None:
    ping = url.rsplit("/invocations", 1)[0] + "/ping"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(ping, timeout=1) as resp:  # noqa: S310 - 127.0.0.1
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{ping} did not answer within {timeout:g}s")


class ThreadServers:
    """In-process model servers (tests). `servers` is shared with the caller and kept current."""

    def __init__(self, plan: DRPlan, servers: dict[str, ModelServer], copies: ArtifactCopies) -> None:
        self.plan = plan
        self.servers = servers
        self.copies = copies
        self.ports = {role: int(local_port(_url(plan, role)) or servers[role].port) for role in ROLES}

    def kill(self, role: Role) -> str:
        server = self.servers[role]
        if server.running:
            server.stop()
        return f"{role} model server on port {self.ports[role]} killed (its socket is closed)"

    def start(self, role: Role) -> str:
        if self.alive(role):
            self.servers[role].stop()
        region = self.plan.region_of(role)
        old = self.servers[role]
        # Served again: what it was last deployed with (a rollback's /admin/model), else the plan's copy.
        bucket, key = self.copies.buckets[role], self.copies.keys[role]
        if old.artifact_uri:
            bucket, _, key = old.artifact_uri.removeprefix("s3://").partition("/")
        artifact = load_artifact_from_s3(aws.client("s3", region), bucket, key)
        uri = f"s3://{bucket}/{key}"
        self.servers[role] = ModelServer(
            artifact,
            region=region,
            port=self.ports[role],
            artifact_uri=uri,
            deployment_file=old.deployment_file,
        ).start()
        return f"{role} model server restarted on port {self.ports[role]} ({artifact.version})"

    def alive(self, role: Role) -> bool:
        return self.servers[role].running

    def url(self, role: Role) -> str:
        return f"http://127.0.0.1:{self.ports[role]}"


class DaemonServers:
    """The daemon's model-server processes, seen from another process (the CLI) through the state file."""

    def __init__(self, workload: str, state_path: Path, control: ControlFile) -> None:
        self.workload = workload
        self.state_path = state_path
        self.control = control

    def _server(self, role: Role) -> dict[str, Any]:
        state = json.loads(self.state_path.read_text())
        return dict(state["workloads"][self.workload]["model_servers"][role])

    def kill(self, role: Role) -> str:
        server = self._server(role)
        self.control.update(servers={role: "down"})
        with contextlib.suppress(ProcessLookupError):  # already dead is dead enough
            os.kill(int(server["pid"]), signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _port_open(int(server["port"])) and time.monotonic() < deadline:
            time.sleep(0.05)
        return f"{role} model server killed (SIGKILL pid {server['pid']}, {server['url']})"

    def start(self, role: Role) -> str:
        before = self._server(role)
        self.control.update(servers={role: "up"})
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            server = self._server(role)
            if server["pid"] != before["pid"] or self.alive(role):
                try:
                    _wait_ping(server["url"] + "/invocations", timeout=max(0.5, deadline - time.monotonic()))
                    return f"{role} model server restarted by the local cloud (pid {server['pid']})"
                except TimeoutError:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"the local cloud did not restart the {role} model server of {self.workload}")

    def alive(self, role: Role) -> bool:
        server = self._server(role)
        try:
            os.kill(int(server["pid"]), 0)
        except ProcessLookupError:
            return False
        return _port_open(int(server["port"]))

    def url(self, role: Role) -> str:
        return str(self._server(role)["url"])


class OwnedServers:
    """The daemon's own processes: killed and respawned directly (API- and schedule-started drills)."""

    def __init__(self, workload: str, procs: dict[str, Any], respawn: Callable[[str, Role], Any]) -> None:
        self.workload = workload
        self.procs = procs  # the daemon's dict: "<workload>/<role>" -> ModelServerProcess
        self.respawn = respawn

    def kill(self, role: Role) -> str:
        proc = self.procs[f"{self.workload}/{role}"]
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        return f"{role} model server killed (SIGKILL pid {proc.pid})"

    def start(self, role: Role) -> str:
        proc = self.respawn(self.workload, role)
        return f"{role} model server restarted (pid {proc.pid})"

    def alive(self, role: Role) -> bool:
        proc = self.procs.get(f"{self.workload}/{role}")
        return proc is not None and proc.poll() is None

    def url(self, role: Role) -> str:
        return str(self.procs[f"{self.workload}/{role}"].url)


# -- controls that act inside the process running Lifeboat's handlers ----------------------------------------
class Controls(Protocol):
    def throttle(self, share: float) -> None: ...

    def region_outage(self, region: str | None) -> None:
        """Take `region`'s AWS APIs down (localcloud/region_outage.py); None brings every region back."""

    def pause_replication(self, since: datetime | None) -> None:
        """Pause replication of what is written from `since` on; None resumes."""

    def heartbeat(self, drill_id: str, until: datetime) -> None: ...

    def clear(self) -> None: ...


class InProcessControls:
    """The handlers run in this process (tests, the daemon itself).

    `global_services`: a region outage of us-east-1 takes Route 53's and IAM's control planes down too (they
    live there): what a plan whose traffic switch calls Route 53's control plane cannot survive."""

    def __init__(self, *, global_services: bool = False) -> None:
        self.global_services = global_services

    def throttle(self, share: float) -> None:
        THROTTLE.set(share)

    def region_outage(self, region: str | None) -> None:
        if region is None:
            REGION_OUTAGE.end()
        else:
            homes = set(GLOBAL_SERVICES.values())
            REGION_OUTAGE.begin(region, global_services=self.global_services and region in homes)

    def pause_replication(self, since: datetime | None) -> None:
        if since is not None:
            replication_control.pause(since=since)
        else:
            replication_control.resume()

    def heartbeat(self, drill_id: str, until: datetime) -> None:
        return None

    def clear(self) -> None:
        REGION_OUTAGE.end()
        THROTTLE.clear()
        replication_control.resume()


@dataclass
class ControlFile:
    """The drill's desired faults, for the daemon to apply (see the module docstring)."""

    path: Path = CONTROL_FILE
    workload: str = ""
    state: dict[str, Any] = field(default_factory=dict)

    def update(self, **changes: Any) -> None:
        current = read_control(self.path) or {"workload": self.workload, "servers": {}}
        if "servers" in changes:
            current["servers"] = {**current.get("servers", {}), **changes.pop("servers")}
        current.update(changes)
        current.setdefault("expires_at", time.time() + 60)
        _write_json(self.path, current)

    # Controls
    def throttle(self, share: float) -> None:
        self.update(throttle_share=share)

    def region_outage(self, region: str | None) -> None:
        self.update(region_outage=region)

    def pause_replication(self, since: datetime | None) -> None:
        self.update(replication_paused_since=since.isoformat() if since else None)

    def heartbeat(self, drill_id: str, until: datetime) -> None:
        self.update(drill_id=drill_id, expires_at=until.timestamp())

    def clear(self) -> None:
        self.update(
            throttle_share=0,
            replication_paused_since=None,
            region_outage=None,
            servers={r: "up" for r in ROLES},
        )

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def read_control(path: Path = CONTROL_FILE) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)


# -- the injector --------------------------------------------------------------------------------------------
class LocalFaults:
    """The drill's `FaultInjector` in the local cloud: every fault is real."""

    name = "local cloud"

    def __init__(
        self, plan: DRPlan, servers: ServerControl, copies: ArtifactCopies, controls: Controls
    ) -> None:
        self.plan = plan
        self.servers = servers
        self.copies = copies
        self.controls = controls
        self._originals: dict[str, bytes] = {}
        self._region_down: str | None = None

    def unsupported(self, scenario: str) -> str | None:
        served = {b.role for b in variant_backends(self.plan)}
        missing = [
            r for r in ROLES if not isinstance(self.plan.endpoint_for(r), HttpEndpoint) and r not in served
        ]
        if missing:
            return f"the {' and '.join(missing)} endpoint(s) are not local model servers"
        return None

    def _admin(self, role: Role) -> str:
        # An http endpoint's own fault API; a SageMaker endpoint's is its variant's model server's (the
        # local SageMaker routes InvokeEndpoint there, so its faults are the endpoint's).
        endpoint = self.plan.endpoint_for(role)
        if isinstance(endpoint, HttpEndpoint):
            return admin_url(endpoint.url)
        return self.servers.url(role) + "/admin/faults"

    # FaultInjector
    def kill(self, role: Role) -> str:
        return self.servers.kill(role)

    def restore(self, role: Role) -> str:
        with outside_invocation():  # the local cloud's doing, also when a drill runs in drill_run
            return self.servers.start(role)

    def degrade(self, role: Role, **faults: Any) -> str:
        current = call_faults(self._admin(role), "POST", faults, policy=MODEL_SERVERS)
        return f"{role} model server faults: {', '.join(f'{k}={v}' for k, v in faults.items())}" + (
            "" if current else ""
        )

    def heal(self, role: Role) -> str:
        try:
            call_faults(self._admin(role), "DELETE", policy=MODEL_SERVERS)
        except OSError as exc:
            return f"{role} model server unreachable ({exc})"
        return f"{role} model server faults cleared"

    def corrupt_artifact(self, role: Role) -> str:
        with outside_invocation():  # the local cloud's doing (a drill target's fault API in AWS)
            return self._corrupt_artifact(role)

    def _corrupt_artifact(self, role: Role) -> str:
        region = self.plan.region_of(role)
        s3 = aws.client("s3", region)
        bucket, key = self.copies.buckets[role], self.copies.keys[role]
        original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        self._originals.setdefault(role, original)
        good = ModelArtifact.from_json_bytes(original)
        # A different model under the same name: inverted weights, so every score is wrong.
        bad = good.model_copy(
            update={
                "version": f"{good.version}-replica-drift",
                "weights": [-w for w in good.weights],
                "bias": -good.bias,
            }
        )
        sha = publish_artifact(s3, bucket, key, bad)
        self.servers.start(role)
        return (
            f"{role} replica artifact s3://{bucket}/{key} replaced by a different model "
            f"(sha256 {self.copies.sha256[:12]} -> {sha[:12]}); the {role} model server reloaded it"
        )

    def corrupt_model(self) -> str:
        with outside_invocation():  # the local cloud's doing: a bad deployment, not Lifeboat's calls
            return self._corrupt_model()

    def _corrupt_model(self) -> str:
        for role in ROLES:  # what restore_all puts back if the drill's own restore does not
            s3 = aws.client("s3", self.plan.region_of(role))
            body = s3.get_object(Bucket=self.copies.buckets[role], Key=self.copies.keys[role])["Body"].read()
            self._originals.setdefault(role, body)
        good = ModelArtifact.from_json_bytes(self._originals["primary"])
        # A bad model under the same name (inverted weights: every score is wrong), written to the primary
        # like any deployment; replication carries it to the replica.
        bad = good.model_copy(
            update={
                "version": f"{good.version}-bad-deploy",
                "weights": [-w for w in good.weights],
                "bias": -good.bias,
            }
        )
        bucket, key = self.copies.buckets["primary"], self.copies.keys["primary"]
        sha = publish_artifact(aws.client("s3", self.plan.regions.primary), bucket, key, bad)
        replica = (self.copies.buckets["secondary"], self.copies.keys["secondary"])
        _wait_artifact(self.plan.regions.secondary, *replica, sha)
        for role in ROLES:
            self.servers.kill(role)
            self.servers.start(role)
        return (
            f"model artefact s3://{bucket}/{key} overwritten by a bad model (sha256 "
            f"{self.copies.sha256[:12]} -> {sha[:12]}), replicated to s3://{replica[0]}/{replica[1]}; "
            "both model servers reloaded it"
        )

    def redeploy(self, role: Role) -> str:
        with outside_invocation():
            self.servers.kill(role)  # a daemon's server still up would not reload otherwise
            return self.servers.start(role)

    def throttle(self, share: float) -> str:
        self.controls.throttle(share)
        return f"{share:.0%} of Lifeboat's {', '.join(THROTTLED_SERVICES)} calls throttled (Rate exceeded)"

    def take_region_down(self, region: str) -> str:
        self.controls.region_outage(region)
        self._region_down = region
        global_too = any(o.region == region and o.global_services for o in REGION_OUTAGE.active())
        return (
            f"every AWS API of {region} down (CloudWatch, EventBridge, S3, DynamoDB, Lambda, Step Functions"
            + (", and the Route 53 and IAM control planes homed there" if global_too else "")
            + ": connections dropped)"
        )

    def pause_replication(self) -> str:
        self.controls.pause_replication(datetime.now(UTC))
        return "S3 replication paused (writes continue on the primary, nothing written from now replicates)"

    def resume_replication(self) -> str:
        self.controls.pause_replication(None)
        return "S3 replication resumed"

    def start_replication(self, copies: list[ReplicaCopy]) -> None:
        return None  # the local cloud's replication simulator replicates the plan's buckets

    def heartbeat(self, drill_id: str, until: datetime) -> None:
        self.controls.heartbeat(drill_id, until)

    def restore_all(self) -> list[str]:
        with outside_invocation():  # the local cloud's doing (a drill target's fault API in AWS)
            return self._restore_all()

    def _restore_all(self) -> list[str]:
        done: list[str] = []
        # First: the artifacts and model servers below are read from S3 in their regions.
        if self._region_down is not None or REGION_OUTAGE.active():
            done.append(f"{self._region_down or 'every region'}'s APIs back")
            self._region_down = None
        self.controls.region_outage(None)
        if isinstance(self.controls, ControlFile):
            _wait_region_back(self.plan)
        for role in ROLES:
            region = self.plan.region_of(role)
            s3 = aws.client("s3", region)
            bucket, key = self.copies.buckets[role], self.copies.keys[role]
            head = s3.head_object(Bucket=bucket, Key=key)
            if (head.get("Metadata") or {}).get("sha256") != self.copies.sha256:
                body = self._originals.get(role) or self._good_copy(role)
                publish_artifact(s3, bucket, key, ModelArtifact.from_json_bytes(body))
                done.append(f"{role} artifact restored")
                self.servers.kill(role)  # a daemon's server still up would not reload it otherwise
                done.append(self.servers.start(role))
            elif not self.servers.alive(role):
                done.append(self.servers.start(role))
            try:
                current = call_faults(self._admin(role), "GET", policy=MODEL_SERVERS)
                if isinstance(current, dict) and any(current.values()):
                    done.append(self.heal(role))
            except OSError as exc:
                done.append(f"{role} fault API unreachable: {exc}")
        if THROTTLE.share or replication_control.paused("*"):
            done.append("throttling cleared, replication resumed")
        self.controls.clear()
        return done

    def _good_copy(self, role: Role) -> bytes:
        """The good artefact: the other region's copy, or (both damaged, e.g. a recovering data-corruption
        drill's) the newest version of either copy that carries the good SHA-256."""
        other: Role = "secondary" if role == "primary" else "primary"
        for side in (other, role):
            s3 = aws.client("s3", self.plan.region_of(side))
            bucket, key = self.copies.buckets[side], self.copies.keys[side]
            listing = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
            for version in sorted(listing, key=lambda v: v["LastModified"], reverse=True):
                if version["Key"] != key:
                    continue
                got = s3.get_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
                if (got.get("Metadata") or {}).get("sha256") == self.copies.sha256:
                    return bytes(got["Body"].read())
        raise RuntimeError(f"no copy of the {role} model artefact carries sha256 {self.copies.sha256[:12]}")

    def close(self) -> None:
        remove = getattr(self.controls, "remove", None)
        if remove is not None:
            remove()  # the daemon stops applying drill faults


# -- the daemon side --------------------------------------------------------------------------------------
class DrillFaultController:
    """Inside the daemon: apply the drill control file, and act as the drills' dead-man switch."""

    def __init__(
        self,
        state_path: Path,
        procs: dict[str, Any],
        respawn: Callable[[str, Role], Any],
        *,
        control_path: Path | None = None,
        interval: float = 0.25,
    ) -> None:
        self.state_path = state_path
        self.control_path = control_path or state_path.with_name(CONTROL_FILE.name)
        self.procs = procs
        self.respawn = respawn
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._applied: dict[str, Any] = {}
        self._unregister: Callable[[], None] | None = None

    def injector(self, plan: DRPlan) -> LocalFaults | None:
        """Injector for drills the daemon runs itself (API, schedule): it owns the processes."""
        state = json.loads(self.state_path.read_text())
        workload = state["workloads"].get(plan.workload)
        if not workload or not workload.get("model"):
            return None
        servers = OwnedServers(plan.workload, self.procs, self.respawn)
        return LocalFaults(plan, servers, ArtifactCopies.from_model(workload["model"]), InProcessControls())

    def start(self) -> DrillFaultController:
        from chalicelib.services.drills import register_injector

        self._unregister = register_injector(self.injector)
        self._thread = threading.Thread(target=self._run, name="drill-faults", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._unregister is not None:
            self._unregister()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.apply(read_control(self.control_path))
            except Exception:  # noqa: BLE001 - a bad round must not end the switch
                log.exception("drill fault controller round failed")

    def apply(self, wanted: dict[str, Any] | None) -> None:
        if wanted is None:
            if self._applied:
                InProcessControls().clear()
                self._applied = {}
            return
        if float(wanted.get("expires_at", 0)) < time.time():
            self.expire(wanted)
            return
        share = float(wanted.get("throttle_share") or 0)
        if share != self._applied.get("throttle_share"):
            THROTTLE.set(share)
        region = wanted.get("region_outage")
        if region != self._applied.get("region_outage"):
            InProcessControls().region_outage(region)
        since = wanted.get("replication_paused_since")
        if since != self._applied.get("replication_paused_since"):
            InProcessControls().pause_replication(datetime.fromisoformat(since) if since else None)
        workload = str(wanted.get("workload", ""))
        for role, desired in (wanted.get("servers") or {}).items():
            proc = self.procs.get(f"{workload}/{role}")
            if desired == "up" and proc is not None and proc.poll() is not None:
                self.respawn(workload, role)
        self._applied = {"throttle_share": share, "replication_paused_since": since, "region_outage": region}

    def expire(self, wanted: dict[str, Any]) -> None:
        """The drill stopped renewing its lease: undo its faults, then let Lifeboat clean up after it."""
        log.warning("drill %s lease lapsed: restoring and recovering", wanted.get("drill_id"))
        InProcessControls().clear()
        self._applied = {}
        workload = str(wanted.get("workload", ""))
        Path(self.control_path).unlink(missing_ok=True)
        try:
            from chalicelib.services.deps import deps
            from chalicelib.services.drills import recover

            plan = deps().plans.get(workload)  # as the local cloud runs it: model servers on their ports
            injector = self.injector(plan)
            record = recover(workload, deps(), injector, reports_dir=Path("reports"))
            if record is not None:
                log.warning("drill %s recorded as interrupted: %s", record.drill_id, record.cleanup)
        except Exception:  # noqa: BLE001 - the next `lifeboat drill` refuses and asks for `recover`
            log.exception("could not recover drill of %s", workload)


def respawner(cloud: Any, state_path: Path, procs: dict[str, Any]) -> Callable[[str, Role], Any]:
    """Restart one of the daemon's model servers (same port, same S3 copy) and record its new pid."""
    from localcloud.modelserver import spawn_model_server, stop_process

    lock = threading.Lock()

    def respawn(workload: str, role: Role) -> Any:
        with lock:
            state = json.loads(state_path.read_text())
            info = state["workloads"][workload]
            server = info["model_servers"][role]
            old = procs.get(f"{workload}/{role}")
            if old is not None and old.poll() is None:
                stop_process(old)
            proc = spawn_model_server(
                int(server["port"]),
                server["region"],
                info["model"][f"{role}_bucket"],
                info["model"][f"{role}_key"],
                cloud.endpoint_url,
                env={k: v for k, v in cloud.env().items() if k.startswith("AWS_")},
                deployment_file=server.get("deployment_file"),  # serves its last deployment again
            )
            procs[f"{workload}/{role}"] = proc
            server["pid"] = proc.pid
            _write_json(state_path, state)
            log.info("model server %s/%s restarted, pid %s", workload, role, proc.pid)
            return proc

    return respawn


def _wait_region_back(plan: DRPlan, timeout: float = 5.0) -> None:
    """The daemon applies the control file every 0.25s: wait until the primary region answers again."""
    s3 = aws.client("s3", plan.regions.primary, fail_fast=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            s3.list_buckets()
            return
        except Exception:  # noqa: BLE001 - still down; the deadline decides
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{plan.regions.primary}'s APIs did not come back within {timeout:g}s"
                ) from None
            time.sleep(0.1)


def _wait_artifact(region: str, bucket: str, key: str, sha256: str, timeout: float = READY_TIMEOUT) -> None:
    """Replication copies in real time: wait until the copy in `region` carries `sha256`."""
    s3 = aws.client("s3", region)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (s3.head_object(Bucket=bucket, Key=key).get("Metadata") or {}).get("sha256") == sha256:
                return
        except Exception:  # noqa: BLE001 - not there yet; the deadline decides
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"s3://{bucket}/{key} did not carry {sha256[:12]} within {timeout:g}s")
        time.sleep(0.1)


def utc_now() -> datetime:
    return datetime.now(UTC)
