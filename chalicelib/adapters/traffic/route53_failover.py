"""route53-failover: a PRIMARY/SECONDARY failover record pair; traffic moves by inverting the primary's health
check (inverted: Route 53 sees the primary unhealthy and answers with the secondary), so all or nothing."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from chalicelib.adapters.dynamo import error_code
from chalicelib.adapters.traffic.base import Reading, ShiftRefused, TrafficClients
from chalicelib.adapters.traffic.route53_zone import zone_grants
from chalicelib.models.grants import Grant, arn
from chalicelib.models.live_checks import LiveCheck, LiveFinding
from chalicelib.models.plan import ROLES, Route53FailoverTraffic


class Route53Failover:
    kind = "route53-failover"

    def describe(self, traffic: Route53FailoverTraffic) -> str:
        return f"{traffic.kind} {traffic.record_name}"

    def read(self, traffic: Route53FailoverTraffic, clients: TrafficClients) -> Reading:
        check = clients.client("route53").get_health_check(HealthCheckId=traffic.health_check_ids.primary)
        inverted = bool(check["HealthCheck"]["HealthCheckConfig"].get("Inverted", False))
        weights = {"primary": 0, "secondary": 100} if inverted else {"primary": 100, "secondary": 0}
        return Reading(weights=weights, detail={"primary_health_check_inverted": inverted})

    def apply(
        self, traffic: Route53FailoverTraffic, wanted: Mapping[str, int], clients: TrafficClients
    ) -> dict[str, int]:
        if wanted["primary"] not in (0, 100):
            raise ShiftRefused("route53-failover records move all traffic (0 or 100), never a share")
        before = self.read(traffic, clients).weights
        clients.client("route53").update_health_check(
            HealthCheckId=traffic.health_check_ids.primary, Inverted=wanted["primary"] == 0
        )
        return before

    def ready(self, traffic: Route53FailoverTraffic, clients: TrafficClients) -> None:
        return None  # the inversion is read back as soon as it is accepted

    def live_checks(self, traffic: Route53FailoverTraffic, clients: TrafficClients) -> list[LiveCheck]:
        out = []
        for role in ROLES:
            check_id = getattr(traffic.health_check_ids, role)
            if check_id:
                subject = f"health check {check_id}"
                out.append(LiveCheck(subject, partial(_exists, clients, subject, check_id, role)))
        return out

    def grants(self, traffic: Route53FailoverTraffic) -> list[Grant]:
        # The zone's grants (finding it by name, listing its records) were given to failover plans from the
        # first release, although read() only reads the primary's health check; dropping them would change
        # the deployed roles, so that is a change of its own.
        out = zone_grants(traffic)
        for check_id in (traffic.health_check_ids.primary, traffic.health_check_ids.secondary):
            if not check_id:
                continue
            check = arn("route53", "", f"healthcheck/{check_id}")
            out += [
                Grant(
                    capability="traffic-shift",
                    action="route53:UpdateHealthCheck",
                    resource=check,
                    why="move traffic by inverting the health check",
                ),
                Grant(
                    capability="inspect",
                    action="route53:GetHealthCheck",
                    resource=check,
                    why="validate the health check exists",
                ),
                Grant(
                    capability="traffic-read",
                    action="route53:GetHealthCheck",
                    resource=check,
                    why="read which region serves (whether the primary's health check is inverted)",
                ),
            ]
        return out


def _exists(clients: TrafficClients, subject: str, check_id: str, role: str) -> list[LiveFinding]:
    try:
        clients.client("route53").get_health_check(HealthCheckId=check_id)
    except Exception as exc:
        if error_code(exc) == "NoSuchHealthCheck":
            return [LiveFinding(subject, "error", f"the {role} health check does not exist")]
        raise
    return [LiveFinding(subject, "ok", f"the {role} health check exists")]
