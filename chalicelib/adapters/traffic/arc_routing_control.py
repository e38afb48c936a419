"""arc-routing-control: Route 53 ARC routing controls, set on the cluster's data plane.

Each region's record carries a health check driven by that region's routing control (On: traffic flows there).
A failover is ONE `UpdateRoutingControlStates` call setting both controls, so the cluster judges its safety
rules on the final state; it is sent to the cluster's regional endpoints in random order until one answers
(what AWS recommends: any endpoint can take it, and none is in Route 53's us-east-1 control plane). The
read-back is `GetRoutingControlState` from any endpoint. A safety rule refusing the update is a
`ShiftRefused` naming the rule, never retried: the next endpoint would refuse it the same way.

Gradual failback (both controls On, weighted records splitting traffic) is the one use of Route 53's control
plane, and only when the plan names `failback_records`: by then the primary region is back.

Plan validation (`live_checks`) reads the cluster's configuration (route53-recovery-control-config, homed in
us-west-2): the cluster and its endpoints, each control and its control panel, the safety rules judged on
the two states Lifeboat sets, and the health checks each control drives.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from chalicelib.adapters.dynamo import error_code
from chalicelib.adapters.errors import TransientError
from chalicelib.adapters.traffic.base import Reading, ShiftRefused, TrafficClients
from chalicelib.adapters.traffic.route53_weighted import (
    records_of,
    set_weights,
    weighted_grants,
    weights_of,
)
from chalicelib.domain import arc_rules
from chalicelib.models.grants import PARTITION, Grant
from chalicelib.models.live_checks import LiveCheck, LiveFinding
from chalicelib.models.plan import ROLES, ArcRoutingControlTraffic, Role

CLUSTER = "route53-recovery-cluster"
CONFIG = "route53-recovery-control-config"
CONFIG_REGION = "us-west-2"  # the recovery control configuration API lives there only
ON, OFF = arc_rules.ON, arc_rules.OFF
# What makes the next endpoint worth trying: this one did not answer, or answered that it cannot serve now.
NEXT_ENDPOINT_CODES = frozenset(
    {"EndpointTemporarilyUnavailableException", "InternalServerException", "ThrottlingException"}
)

T = TypeVar("T")


class ArcRoutingControl:
    kind = "arc-routing-control"

    def describe(self, traffic: ArcRoutingControlTraffic) -> str:
        return f"{traffic.kind} {traffic.cluster_arn} ({len(traffic.cluster_endpoints)} endpoints)"

    def read(self, traffic: ArcRoutingControlTraffic, clients: TrafficClients) -> Reading:
        states = _states(traffic, clients)
        detail: dict[str, Any] = {"routing_controls": states}
        on = [role for role in ROLES if states[role] == ON]
        weights: dict[str, int]
        if len(on) == 1:
            weights = {role: 100 if role == on[0] else 0 for role in ROLES}
        elif not on:
            # Route 53 answers with every record when all are unhealthy (fails open): nobody is chosen.
            weights = {role: 0 for role in ROLES}
            detail["warning"] = "both routing controls are Off"
        elif traffic.failback_records is not None:
            records = records_of(traffic.failback_records, clients)
            raw = weights_of(records)
            total = sum(raw.values())
            weights = {role: round(100 * raw[role] / total) if total else 0 for role in ROLES}
            detail["failback_records"] = raw
        else:
            # A failover record pair: the PRIMARY record answers while its health check is healthy.
            weights = {"primary": 100, "secondary": 0}
        return Reading(weights=weights, detail=detail)

    def apply(
        self, traffic: ArcRoutingControlTraffic, wanted: Mapping[str, int], clients: TrafficClients
    ) -> dict[str, int]:
        before = self.read(traffic, clients).weights
        whole = {role: wanted[role] == 100 for role in ROLES}
        if any(whole.values()):
            # All traffic to one region: the data plane only, both controls in one call.
            _update(traffic, clients, {role: ON if whole[role] else OFF for role in ROLES})
            return before
        if traffic.failback_records is None:
            raise ShiftRefused(
                f"arc-routing-control moves all traffic (0 or 100) unless the plan names "
                f"traffic.failback_records; {wanted} is a share"
            )
        # A share: the weighted records carry it while both controls are On. Only one of the two calls moves
        # traffic: the weights change while one control is Off (no effect yet) and the controls then turn
        # both On, or, both On already, the change batch is the move.
        set_weights(traffic.failback_records, wanted, clients)
        if _states(traffic, clients) != {role: ON for role in ROLES}:
            _update(traffic, clients, {role: ON for role in ROLES})
        return before

    def ready(self, traffic: ArcRoutingControlTraffic, clients: TrafficClients) -> None:
        return None  # the cluster answers an update's new state as soon as it accepted it

    def live_checks(self, traffic: ArcRoutingControlTraffic, clients: TrafficClients) -> list[LiveCheck]:
        out = [LiveCheck(f"ARC cluster {traffic.cluster_arn}", partial(_check_cluster, traffic, clients))]
        for role in ROLES:
            control = getattr(traffic.routing_controls, role)
            out.append(
                LiveCheck(f"routing control {control}", partial(_check_control, traffic, clients, role))
            )
        out.append(
            LiveCheck(
                f"safety rules of {traffic.kind} {traffic.cluster_arn}",
                partial(_check_rules, traffic, clients),
            )
        )
        return out

    def grants(self, traffic: ArcRoutingControlTraffic) -> list[Grant]:
        controls = [_template(getattr(traffic.routing_controls, role)) for role in ROLES]
        panels = list(dict.fromkeys(_template(_panel_of(arn)) for arn in _controls(traffic)))
        out: list[Grant] = []
        for control in controls:
            out += [
                Grant(
                    capability="traffic-read",
                    action=f"{CLUSTER}:GetRoutingControlState",
                    resource=control,
                    why="read which region the routing controls let traffic reach (any cluster endpoint)",
                ),
                Grant(
                    capability="traffic-shift",
                    action=f"{CLUSTER}:UpdateRoutingControlStates",
                    resource=control,
                    why="move traffic: both routing controls in one call on the cluster's data plane",
                    # Lifeboat never overrides a safety rule: a refusal is reported, not bypassed.
                    condition={"BoolIfExists": {f"{CLUSTER}:AllowSafetyRulesOverrides": "false"}},
                ),
                Grant(
                    capability="inspect",
                    action=f"{CONFIG}:DescribeRoutingControl",
                    resource=control,
                    why="validate the routing control exists and belongs to the plan's cluster",
                ),
                Grant(
                    capability="inspect",
                    action=f"{CONFIG}:ListAssociatedRoute53HealthChecks",
                    resource=control,
                    why="validate the health checks the routing control drives",
                ),
            ]
        out.append(
            Grant(
                capability="inspect",
                action=f"{CONFIG}:DescribeCluster",
                resource=_template(traffic.cluster_arn),
                why="validate the cluster is deployed and its endpoints are the plan's",
            )
        )
        for panel in panels:
            out += [
                Grant(
                    capability="inspect",
                    action=f"{CONFIG}:DescribeControlPanel",
                    resource=panel,
                    why="validate the routing controls' control panel is on the plan's cluster",
                ),
                Grant(
                    capability="inspect",
                    action=f"{CONFIG}:ListSafetyRules",
                    resource=panel,
                    why="judge the control panel's safety rules on the states a failover sets",
                ),
            ]
        if traffic.failback_records is not None:
            out += weighted_grants(traffic.failback_records)
        return out


# -- the cluster's data plane -----------------------------------------------------------------------------
def _controls(traffic: ArcRoutingControlTraffic) -> list[str]:
    return [getattr(traffic.routing_controls, role) for role in ROLES]


def _on_any_endpoint(
    traffic: ArcRoutingControlTraffic, clients: TrafficClients, call: Callable[[Any], T], what: str
) -> T:
    """`call(client)` at the cluster's endpoints in random order until one answers; TransientError (the
    state machine retries) when none does. Other errors propagate: another endpoint would give the same."""
    failures: list[str] = []
    for endpoint in random.sample(traffic.cluster_endpoints, len(traffic.cluster_endpoints)):
        client = clients.client_at(CLUSTER, endpoint.region, endpoint.url)
        try:
            return call(client)
        except Exception as exc:
            if not _next_endpoint(exc):
                raise
            failures.append(f"{endpoint.region} ({error_code(exc) or type(exc).__name__})")
    raise TransientError(
        f"{what}: no endpoint of ARC cluster {traffic.cluster_arn} answered: {', '.join(failures)}"
    )


def _next_endpoint(exc: Exception) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True  # refused, timed out, closed: the endpoint (or its region) is down
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return error_code(exc) in NEXT_ENDPOINT_CODES or status >= 500


def _states(traffic: ArcRoutingControlTraffic, clients: TrafficClients) -> dict[Role, str]:
    def get(control: str, client: Any) -> str:
        try:
            return str(client.get_routing_control_state(RoutingControlArn=control)["RoutingControlState"])
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise LookupError(f"routing control {control} not found in the cluster") from exc
            raise

    def read(role: Role) -> str:
        control = partial(get, getattr(traffic.routing_controls, role))
        return _on_any_endpoint(traffic, clients, control, f"read the {role} routing control")

    # Two controls, two calls: an update (one call, both controls) landing between them would show a state
    # that never was (both On while a failover turns the primary Off and the secondary On). The first control
    # is read again after the second; a pair is returned only when it did not change meanwhile.
    for _ in range(_SNAPSHOT_ATTEMPTS):
        first = read(ROLES[0])
        states = {ROLES[0]: first, ROLES[1]: read(ROLES[1])}
        if read(ROLES[0]) == first:
            return states
    raise TransientError(
        f"the routing controls of {traffic.cluster_arn} kept changing while they were read "
        f"({_SNAPSHOT_ATTEMPTS} attempts)"
    )


_SNAPSHOT_ATTEMPTS = 5


def _update(traffic: ArcRoutingControlTraffic, clients: TrafficClients, states: Mapping[Role, str]) -> None:
    entries = [
        {"RoutingControlArn": getattr(traffic.routing_controls, role), "RoutingControlState": states[role]}
        for role in ROLES
    ]

    def update(client: Any) -> None:
        try:
            client.update_routing_control_states(UpdateRoutingControlStateEntries=entries)
        except Exception as exc:
            if error_code(exc) == "ConflictException":
                raise ShiftRefused(_refusal(exc, states)) from exc
            raise

    wanted = ", ".join(f"{role} {states[role]}" for role in ROLES)
    _on_any_endpoint(traffic, clients, update, f"set the routing controls ({wanted})")


def _refusal(exc: Exception, states: Mapping[Role, str]) -> str:
    error: Mapping[str, Any] = getattr(exc, "response", {}).get("Error", {})
    body: Mapping[str, Any] = getattr(exc, "response", {})
    rule = body.get("resourceId") or error.get("resourceId") or "unnamed"
    message = error.get("Message") or str(exc)
    wanted = ", ".join(f"{role} {states[role]}" for role in ROLES)
    return (
        f"the ARC cluster refused the routing control update ({wanted}): safety rule {rule}: {message}; "
        "Lifeboat never overrides a safety rule (an operator may, with the cluster's break-glass override)"
    )


# -- plan validation ---------------------------------------------------------------------------------------
def _config(clients: TrafficClients) -> Any:
    return clients.client(CONFIG, CONFIG_REGION)


def _check_cluster(traffic: ArcRoutingControlTraffic, clients: TrafficClients) -> list[LiveFinding]:
    subject = f"ARC cluster {traffic.cluster_arn}"
    try:
        cluster = _config(clients).describe_cluster(ClusterArn=traffic.cluster_arn)["Cluster"]
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return [LiveFinding(subject, "error", "the cluster does not exist")]
        raise
    out: list[LiveFinding] = []
    status = cluster.get("Status")
    if status != "DEPLOYED":
        out.append(LiveFinding(subject, "error", f"the cluster is {status}, not DEPLOYED"))
    live = {
        (e.get("Region"), str(e.get("Endpoint", "")).rstrip("/")) for e in cluster.get("ClusterEndpoints", [])
    }
    planned = {(e.region, e.url.rstrip("/")) for e in traffic.cluster_endpoints}
    unknown = sorted(planned - live)
    if unknown:
        named = ", ".join(f"{region} {url}" for region, url in unknown)
        out.append(LiveFinding(subject, "error", f"not endpoints of the cluster: {named}"))
    left_out = sorted(live - planned)
    if left_out:
        named = ", ".join(f"{region} {url}" for region, url in left_out)
        out.append(
            LiveFinding(subject, "warning", f"endpoints the plan leaves out (fewer to fall back on): {named}")
        )
    if not out:
        out.append(LiveFinding(subject, "ok", f"deployed; the plan names all {len(live)} of its endpoints"))
    return out


def _check_control(
    traffic: ArcRoutingControlTraffic, clients: TrafficClients, role: Role
) -> list[LiveFinding]:
    control = getattr(traffic.routing_controls, role)
    subject = f"routing control {control}"
    config = _config(clients)
    try:
        found = config.describe_routing_control(RoutingControlArn=control)["RoutingControl"]
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return [LiveFinding(subject, "error", f"the {role} routing control does not exist")]
        raise
    out: list[LiveFinding] = []
    panel = config.describe_control_panel(ControlPanelArn=found["ControlPanelArn"])["ControlPanel"]
    if panel.get("ClusterArn") != traffic.cluster_arn:
        out.append(
            LiveFinding(
                subject,
                "error",
                f"its control panel {panel.get('Name')} is on cluster {panel.get('ClusterArn')}, not the "
                "plan's: the plan's endpoints cannot set it",
            )
        )
    if found.get("Status") != "DEPLOYED":
        out.append(LiveFinding(subject, "error", f"the {role} routing control is {found.get('Status')}"))
    expected = getattr(traffic.health_check_ids, role, None) if traffic.health_check_ids else None
    if expected:
        driven = config.list_associated_route53_health_checks(RoutingControlArn=control).get(
            "HealthCheckIds", []
        )
        if expected not in driven:
            out.append(
                LiveFinding(
                    subject,
                    "error",
                    f"health check {expected} is not driven by the {role} routing control (it drives "
                    f"{', '.join(driven) or 'none'}): its record would not follow the control",
                )
            )
    if not out:
        out.append(
            LiveFinding(subject, "ok", f"the {role} routing control ({found.get('Name')}) is deployed")
        )
    return out


def _check_rules(traffic: ArcRoutingControlTraffic, clients: TrafficClients) -> list[LiveFinding]:
    subject = f"safety rules of {traffic.kind} {traffic.cluster_arn}"
    config = _config(clients)
    rules: list[arc_rules.SafetyRule] = []
    for panel in dict.fromkeys(_panel_of(arn) for arn in _controls(traffic)):
        token: str | None = None
        while True:
            page = config.list_safety_rules(ControlPanelArn=panel, **({"NextToken": token} if token else {}))
            rules += [arc_rules.SafetyRule.from_api(item) for item in page.get("SafetyRules", [])]
            token = page.get("NextToken")
            if not token:
                break
    controls = _controls(traffic)
    judged = arc_rules.rules_about(rules, controls)
    out: list[LiveFinding] = []
    outside = [r for r in judged if set(r.controls) - set(controls)]
    for rule in outside:
        out.append(
            LiveFinding(
                subject,
                "warning",
                f"{rule.describe()} also depends on controls outside this plan: whether it allows a "
                "failover depends on their states then",
            )
        )
    for role in ROLES:
        serving = {arn: (ON if arn == getattr(traffic.routing_controls, role) else OFF) for arn in controls}
        broken = arc_rules.broken_rule([r for r in judged if r not in outside], serving, serving)
        if broken is not None:
            out.append(
                LiveFinding(
                    subject,
                    "error",
                    f"{broken.describe()} refuses all traffic on the {role} ({serving[controls[0]]}/"
                    f"{serving[controls[1]]}): the cluster would refuse that shift",
                )
            )
    guarded = any(
        r.kind == "ASSERTION"
        and set(controls) <= set(r.controls)
        and not arc_rules.holds(r, {arn: OFF for arn in controls})
        for r in judged
        if r not in outside
    )
    if not guarded:
        out.append(
            LiveFinding(
                subject,
                "warning",
                "no assertion rule keeps at least one of the two routing controls On (e.g. ATLEAST 1): an "
                "operator's mistake could turn both Off and Route 53 would fail open",
            )
        )
    if not any(f.severity == "error" for f in out):
        names = ", ".join(r.name for r in judged) or "none"
        out.append(
            LiveFinding(subject, "ok", f"both failover states pass the rules about the controls ({names})")
        )
    return out


def _panel_of(control_arn: str) -> str:
    return control_arn.split("/routingcontrol/", 1)[0]


def _template(arn: str) -> str:
    """A plan's ARC ARN as a grant's template: the partition left to the deployment."""
    _, _, rest = arn.split(":", 2)
    return f"arn:{PARTITION}:{rest}"
