"""A Route 53 ARC cluster in the local cloud (moto has none): five regional endpoints on 127.0.0.1 speaking
the route53-recovery-cluster API, so Lifeboat's real boto3 client is what sets and reads the controls.

- **The API**: botocore's model of route53-recovery-cluster (JSON 1.0, `X-Amz-Target:
  ToggleCustomerAPI.<op>`): GetRoutingControlState, ListRoutingControls, UpdateRoutingControlState,
  UpdateRoutingControlStates, with the modelled errors (ValidationException, ResourceNotFoundException,
  ConflictException...). A request must be SigV4-signed for the endpoint's own region and this service, as
  AWS requires of a regional endpoint.
- **Safety rules**: assertion and gating rules (`chalicelib.domain.arc_rules`), judged on the final state
  of each update call, all entries at once; a refusal is a ConflictException naming the rule (its ARN in
  `resourceId`, its name in the message) and changes nothing. `SafetyRulesToOverride` skips the rules it
  names (the break-glass override).
- **Faults**: any subset of the endpoints down (`take_down`): a request to one is read and its connection
  closed without an answer, what a client sees of an unreachable endpoint. An endpoint is also down while
  its region's APIs are (`localcloud/region_outage.py`): the cluster's us-east-1 endpoint lives in us-east-1.
- **In process** (unit tests, no socket): `in_process_client` hands a real boto3 client whose requests this
  cluster answers directly (botocore's `before-send`).

One cluster per cluster ARN and local cloud (`cluster_for`); they stop with it (`stop_clusters`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from chalicelib.domain import arc_rules
from chalicelib.domain.arc_rules import OFF, ON, SafetyRule

__all__ = ["OFF", "ON", "ArcCluster", "ArcError", "cluster_for", "in_process_client", "stop_clusters"]
from localcloud.region_outage import REGION_OUTAGE, RegionOutage, credential_scope

log = logging.getLogger(__name__)

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2")
"""Where an ARC cluster's five endpoints are."""
SERVICE = "route53-recovery-cluster"
TARGET_PREFIX = "ToggleCustomerAPI."
HOST = "127.0.0.1"


class ArcError(Exception):
    """An error the cluster answers with, in the service's JSON error shape."""

    def __init__(self, code: str, status: int, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.code, self.status, self.message, self.fields = code, status, message, fields

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message, **self.fields}


@dataclass
class RoutingControl:
    arn: str
    name: str
    state: str = OFF

    @property
    def panel_arn(self) -> str:
        return self.arn.split("/routingcontrol/", 1)[0]


@dataclass
class Call:
    """One request an endpoint received, for tests and drills: where, what, and how it ended."""

    region: str
    operation: str
    outcome: str  # "ok", an error code, or "down"


@dataclass
class ArcCluster:
    """One cluster: its routing controls, safety rules and endpoints (module doc)."""

    arn: str
    regions: tuple[str, ...] = REGIONS
    outages: RegionOutage | None = field(default_factory=lambda: REGION_OUTAGE)
    calls: list[Call] = field(default_factory=list)
    _controls: dict[str, RoutingControl] = field(default_factory=dict)
    _rules: list[SafetyRule] = field(default_factory=list)
    _down: set[str] = field(default_factory=set)
    _health_checks: dict[str, list[str]] = field(default_factory=dict)
    _servers: dict[str, ThreadingHTTPServer] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- what exists in the account -------------------------------------------------------------------
    def routing_control(self, arn: str, state: str = OFF, name: str | None = None) -> RoutingControl:
        """Create the control (idempotently; an existing one keeps its state)."""
        with self._lock:
            found = self._controls.get(arn)
            if found is None:
                found = self._controls[arn] = RoutingControl(arn, name or arn.rsplit("/", 1)[-1], state)
            return found

    def assertion_rule(
        self,
        name: str,
        controls: Iterable[str],
        *,
        type: str = "ATLEAST",
        threshold: int = 1,
        inverted: bool = False,
    ) -> SafetyRule:
        return self._rule(name, "ASSERTION", tuple(controls), type, threshold, inverted, ())

    def gating_rule(
        self,
        name: str,
        gating: Iterable[str],
        targets: Iterable[str],
        *,
        type: str = "AND",
        threshold: int = 1,
        inverted: bool = False,
    ) -> SafetyRule:
        return self._rule(name, "GATING", tuple(gating), type, threshold, inverted, tuple(targets))

    def _rule(self, name: str, kind: Any, controls: tuple[str, ...], *config: Any) -> SafetyRule:
        rule_type, threshold, inverted, targets = config
        with self._lock:
            for existing in self._rules:
                if existing.name == name:
                    return existing
            unknown = [c for c in (*controls, *targets) if c not in self._controls]
            if unknown:
                raise ValueError(f"safety rule {name}: no routing control {', '.join(unknown)}")
            panel = self._controls[controls[0]].panel_arn
            rule = SafetyRule(
                arn=f"{panel}/safetyrule/{name}",
                name=name,
                kind=kind,
                controls=controls,
                type=rule_type,
                threshold=threshold,
                inverted=inverted,
                targets=targets,
            )
            self._rules.append(rule)
            return rule

    def associate_health_check(self, control: str, health_check_id: str) -> None:
        """A Route 53 health check of type RECOVERY_CONTROL driven by `control`."""
        with self._lock:
            self._control(control)
            self._health_checks.setdefault(control, []).append(health_check_id)

    def remove_rule(self, name: str) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r.name != name]

    def rules(self) -> list[SafetyRule]:
        with self._lock:
            return list(self._rules)

    def state(self, arn: str) -> str:
        with self._lock:
            return self._controls[arn].state

    def set_state(self, arn: str, state: str) -> None:
        """Set a control as an operator with the override would (no safety rule judged): test setup."""
        with self._lock:
            self._controls[arn].state = state

    # -- faults ------------------------------------------------------------------------------------------
    def take_down(self, *regions: str) -> None:
        unknown = set(regions) - set(self.regions)
        if unknown:
            raise ValueError(f"the cluster has no endpoint in {', '.join(sorted(unknown))}")
        with self._lock:
            self._down.update(regions)
        log.warning("ARC cluster endpoints down: %s", ", ".join(sorted(self._down)))

    def bring_up(self, *regions: str) -> None:
        """Bring `regions` (every endpoint when none is named) back."""
        with self._lock:
            self._down -= set(regions) if regions else set(self._down)

    def is_down(self, region: str) -> bool:
        with self._lock:
            if region in self._down:
                return True
        return self.outages is not None and any(o.region == region for o in self.outages.active())

    # -- the API -----------------------------------------------------------------------------------------
    def handle(self, region: str, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Answer one API call received at `region`'s endpoint; ArcError for the modelled errors."""
        try:
            answer = self._answer(operation, body)
        except ArcError as exc:
            self._record(region, operation, exc.code)
            raise
        self._record(region, operation, "ok")
        return answer

    def _record(self, region: str, operation: str, outcome: str) -> None:
        with self._lock:
            self.calls.append(Call(region, operation, outcome))

    def _answer(self, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            if operation == "GetRoutingControlState":
                control = self._control(_required(body, "RoutingControlArn"))
                return {
                    "RoutingControlArn": control.arn,
                    "RoutingControlState": control.state,
                    "RoutingControlName": control.name,
                }
            if operation == "ListRoutingControls":
                return self._list(body)
            if operation == "UpdateRoutingControlState":
                entry = {
                    "RoutingControlArn": _required(body, "RoutingControlArn"),
                    "RoutingControlState": _required(body, "RoutingControlState"),
                }
                self._update([entry], body.get("SafetyRulesToOverride") or [])
                return {}
            if operation == "UpdateRoutingControlStates":
                entries = body.get("UpdateRoutingControlStateEntries")
                if not isinstance(entries, list) or not entries:
                    raise _invalid("UpdateRoutingControlStateEntries", "must list at least one entry")
                self._update(entries, body.get("SafetyRulesToOverride") or [])
                return {}
        raise ArcError(
            "ValidationException", 400, f"unknown operation {operation}", reason="unknownOperation"
        )

    def _control(self, arn: str) -> RoutingControl:
        found = self._controls.get(arn)
        if found is None:
            raise ArcError(
                "ResourceNotFoundException",
                404,
                f"Routing control {arn} not found",
                resourceId=arn,
                resourceType="RoutingControl",
            )
        return found

    def _list(self, body: Mapping[str, Any]) -> dict[str, Any]:
        panel = body.get("ControlPanelArn")
        controls = [c for c in self._controls.values() if panel in (None, c.panel_arn)]
        start = int(body.get("NextToken") or 0)
        size = int(body.get("MaxResults") or 500)
        page = controls[start : start + size]
        out: dict[str, Any] = {
            "RoutingControls": [
                {
                    "ControlPanelArn": c.panel_arn,
                    "RoutingControlArn": c.arn,
                    "RoutingControlName": c.name,
                    "RoutingControlState": c.state,
                }
                for c in page
            ]
        }
        if start + size < len(controls):
            out["NextToken"] = str(start + size)
        return out

    def _update(self, entries: list[Any], overrides: list[Any]) -> None:
        updates: dict[str, str] = {}
        for index, entry in enumerate(entries):
            arn = _required(entry, "RoutingControlArn")
            state = _required(entry, "RoutingControlState")
            if state not in (ON, OFF):
                raise _invalid(f"UpdateRoutingControlStateEntries.{index}.RoutingControlState", "On or Off")
            self._control(arn)
            updates[arn] = state
        current = {arn: c.state for arn, c in self._controls.items()}
        judged = [r for r in self._rules if r.arn not in set(overrides)]
        broken = arc_rules.broken_rule(judged, current, updates)
        if broken is not None:
            raise ArcError(
                "ConflictException",
                409,
                f"Cannot update the routing control states: the result would violate safety rule "
                f"{broken.name} ({broken.describe()})",
                resourceId=broken.arn,
                resourceType="SafetyRule",
            )
        for arn, state in updates.items():
            self._controls[arn].state = state
        log.info(
            "ARC cluster %s: %s",
            self.arn,
            ", ".join(f"{a.rsplit('/', 1)[-1]} {s}" for a, s in updates.items()),
        )

    # -- the recovery control configuration API (control plane, read-only here) ---------------------------
    def describe(self, resource: str, arn: str, listing: str | None) -> dict[str, Any]:
        """route53-recovery-control-config's answer about `arn` (a cluster, control panel or routing control),
        or its `listing` (safetyrules, associatedRoute53HealthChecks); ArcError when it has none."""
        with self._lock:
            if resource == "cluster" and arn == self.arn and listing is None:
                return {
                    "Cluster": {
                        "ClusterArn": self.arn,
                        "Name": self.arn.rsplit("/", 1)[-1],
                        "Status": "DEPLOYED",
                        "ClusterEndpoints": self.endpoints(),
                    }
                }
            panels = {c.panel_arn for c in self._controls.values()}
            if resource == "controlpanel" and arn in panels:
                if listing == "safetyrules":
                    return {
                        "SafetyRules": [_rule_body(r) for r in self._rules if r.arn.startswith(arn + "/")]
                    }
                if listing is None:
                    controls = [c for c in self._controls.values() if c.panel_arn == arn]
                    return {
                        "ControlPanel": {
                            "ClusterArn": self.arn,
                            "ControlPanelArn": arn,
                            "Name": arn.rsplit("/", 1)[-1],
                            "Status": "DEPLOYED",
                            "DefaultControlPanel": False,
                            "RoutingControlCount": len(controls),
                        }
                    }
            if resource == "routingcontrol" and arn in self._controls:
                if listing == "associatedRoute53HealthChecks":
                    return {"HealthCheckIds": list(self._health_checks.get(arn, []))}
                if listing is None:
                    control = self._controls[arn]
                    return {
                        "RoutingControl": {
                            "ControlPanelArn": control.panel_arn,
                            "Name": control.name,
                            "RoutingControlArn": arn,
                            "Status": "DEPLOYED",
                        }
                    }
        raise ArcError("ResourceNotFoundException", 404, f"{resource} {arn} not found")

    # -- the HTTP endpoints --------------------------------------------------------------------------------
    def respond(self, region: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        """The status and JSON body an endpoint answers a request with (HTTP and in-process alike)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        scope = credential_scope(lowered.get("authorization"))
        if scope is None or scope.region != region or scope.service != SERVICE:
            error = ArcError(
                "InvalidSignatureException",
                403,
                f"Credential should be scoped to a valid region ({region}) and service ({SERVICE}), not "
                f"{scope.region + '/' + scope.service if scope else 'unsigned'}",
            )
            self._record(region, "?", error.code)
            return error.status, json.dumps(error.body()).encode()
        target = lowered.get("x-amz-target", "")
        if not target.startswith(TARGET_PREFIX):
            error = ArcError("UnknownOperationException", 400, f"unknown target {target!r}")
            return error.status, json.dumps(error.body()).encode()
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            error = ArcError("SerializationException", 400, "the body is not a JSON object")
            return error.status, json.dumps(error.body()).encode()
        try:
            answer = self.handle(region, target[len(TARGET_PREFIX) :], parsed)
        except ArcError as exc:
            return exc.status, json.dumps(exc.body()).encode()
        return 200, json.dumps(answer).encode()

    def start(self) -> ArcCluster:
        """One endpoint per region on a free port of 127.0.0.1 (idempotent)."""
        with self._lock:
            for region in self.regions:
                if region not in self._servers:
                    server = ThreadingHTTPServer((HOST, 0), _handler(self, region))
                    server.daemon_threads = True
                    threading.Thread(target=server.serve_forever, name=f"arc-{region}", daemon=True).start()
                    self._servers[region] = server
        return self

    def stop(self) -> None:
        with self._lock:
            servers, self._servers = dict(self._servers), {}
        for server in servers.values():
            server.shutdown()
            server.server_close()

    def endpoints(self) -> list[dict[str, str]]:
        """The endpoints as DescribeCluster lists them ({"Region", "Endpoint"}), in the cluster's order."""
        with self._lock:
            return [
                {"Region": region, "Endpoint": f"http://{HOST}:{self._servers[region].server_address[1]}/"}
                for region in self.regions
                if region in self._servers
            ]


def _rule_body(rule: SafetyRule) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ControlPanelArn": rule.arn.split("/safetyrule/", 1)[0],
        "Name": rule.name,
        "RuleConfig": {"Type": rule.type, "Threshold": rule.threshold, "Inverted": rule.inverted},
        "SafetyRuleArn": rule.arn,
        "Status": "DEPLOYED",
        "WaitPeriodMs": 5000,
    }
    if rule.kind == "ASSERTION":
        body["AssertedControls"] = list(rule.controls)
    else:
        body["GatingControls"], body["TargetControls"] = list(rule.controls), list(rule.targets)
    return {rule.kind: body}


def _required(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _invalid(name, "is required")
    return value


def _invalid(name: str, message: str) -> ArcError:
    return ArcError(
        "ValidationException",
        400,
        f"{name}: {message}",
        reason="fieldValidationFailed",
        fields=[{"name": name, "message": message}],
    )


def _handler(cluster: ArcCluster, region: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if cluster.is_down(region):
                cluster._record(region, self.headers.get("X-Amz-Target", "?").split(".")[-1], "down")
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)  # no answer: what an unreachable endpoint gives
                return
            status, answer = cluster.respond(region, dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(answer)))
            if status != 200:
                self.send_header("x-amzn-ErrorType", json.loads(answer)["__type"])
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            return None

    return Handler


# -- the configuration API, in front of moto ----------------------------------------------------------------
CONFIG_SERVICE = "route53-recovery-control-config"
_CONFIG_PATH = re.compile(
    r"^/(?P<resource>cluster|controlpanel|routingcontrol)/(?P<arn>[^/?]+)(?:/(?P<listing>[^/?]+))?"
)


class ConfigMiddleware:
    """WSGI middleware in front of moto answering route53-recovery-control-config's reads (plan validation's
    DescribeCluster, DescribeControlPanel, DescribeRoutingControl, ListSafetyRules,
    ListAssociatedRoute53HealthChecks) from the owner's clusters; every other request goes to moto."""

    def __init__(self, app: Any, owner: object) -> None:
        self.app, self.owner = app, owner

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        scope = credential_scope(environ.get("HTTP_AUTHORIZATION"), str(environ.get("QUERY_STRING", "")))
        if scope is None or scope.service != CONFIG_SERVICE:
            return self.app(environ, start_response)
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", ""))
        found = _CONFIG_PATH.match(raw.split("?", 1)[0])
        status, body = 404, ArcError("ResourceNotFoundException", 404, f"no such resource: {raw}").body()
        if found is not None:
            arn = unquote(found["arn"])
            for cluster in clusters_of(self.owner).values():
                try:
                    status, body = 200, cluster.describe(found["resource"], arn, found["listing"])
                    break
                except ArcError as exc:
                    status, body = exc.status, exc.body()
        payload = json.dumps(body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        if status != 200:
            headers.append(("x-amzn-ErrorType", str(body["__type"])))
        start_response(f"{status} {'OK' if status == 200 else 'Error'}", headers)
        return [payload]


def install_config(server: Any, owner: object) -> None:
    """Wrap a started ThreadedMotoServer's WSGI application (as localcloud/region_outage.py does)."""
    wsgi = server._server
    if wsgi is None or not hasattr(wsgi, "app"):
        raise RuntimeError("the moto server is not started, or moto changed how it keeps its WSGI server")
    if not isinstance(wsgi.app, ConfigMiddleware):
        wsgi.app = ConfigMiddleware(wsgi.app, owner)


# -- one cluster per ARN and local cloud ---------------------------------------------------------------------
_CLUSTERS: dict[int, dict[str, ArcCluster]] = {}
_CLUSTERS_LOCK = threading.Lock()


def cluster_for(owner: object, arn: str) -> ArcCluster:
    """The started cluster `arn` of `owner` (a LocalCloud), created on first use."""
    with _CLUSTERS_LOCK:
        clusters = _CLUSTERS.setdefault(id(owner), {})
        found = clusters.get(arn)
        if found is None:
            found = clusters[arn] = ArcCluster(arn).start()
        return found


def clusters_of(owner: object) -> dict[str, ArcCluster]:
    with _CLUSTERS_LOCK:
        return dict(_CLUSTERS.get(id(owner), {}))


def stop_clusters(owner: object) -> None:
    """Stop `owner`'s clusters (LocalCloud.stop): nothing outlives its cloud."""
    with _CLUSTERS_LOCK:
        clusters = _CLUSTERS.pop(id(owner), {})
    for cluster in clusters.values():
        cluster.stop()


# -- in process: a real boto3 client answered by the cluster, no socket -----------------------------------
class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def in_process_client(cluster: ArcCluster, region: str, url: str | None = None) -> Any:
    """A route53-recovery-cluster client of `region`'s endpoint whose requests `cluster` answers in this
    process; a down endpoint raises botocore's EndpointConnectionError, as an unreachable one does."""
    import boto3
    from botocore.awsrequest import AWSResponse
    from botocore.config import Config
    from botocore.exceptions import EndpointConnectionError

    endpoint = url or f"https://{region}.arc.invalid/v1"
    client = boto3.session.Session().client(
        SERVICE,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )

    def send(request: Any, **_: Any) -> AWSResponse:
        target = request.headers.get("X-Amz-Target", b"?")
        target = target.decode() if isinstance(target, bytes) else str(target)
        if cluster.is_down(region):
            cluster._record(region, target.split(".")[-1], "down")
            raise EndpointConnectionError(endpoint_url=endpoint)
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        status, answer = cluster.respond(region, headers, body)
        response_headers = {"Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(endpoint, status, response_headers, _Body(answer))

    client.meta.events.register("before-send", send)
    return client
