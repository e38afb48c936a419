"""The hosted zone of a Route 53 traffic switch, shared by the Route 53 kinds: its ARN, the grants to find and
read it, and its id looked up by name (a plan gives the zone's id or its name)."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.traffic.base import TrafficClients
from chalicelib.models.grants import Grant, arn
from chalicelib.models.plan import Route53FailoverTraffic, Route53WeightedTraffic, WeightedRecords

# WeightedRecords: an arc-routing-control plan's records for gradual failback.
Route53Traffic = Route53WeightedTraffic | Route53FailoverTraffic | WeightedRecords


def normalise(name: str) -> str:
    return name if name.endswith(".") else name + "."


def zone_arn(traffic: Route53Traffic) -> str:
    if traffic.hosted_zone_id:
        return arn("route53", "", f"hostedzone/{traffic.hosted_zone_id.split('/')[-1]}")
    # Only the zone's name is in the plan; the id is looked up at run time. Reads take any zone; the one
    # write (ChangeResourceRecordSets) is pinned by condition keys to the plan's record, type and UPSERT.
    return arn("route53", "", "hostedzone/*")


def zone_grants(traffic: Route53Traffic) -> list[Grant]:
    """Finding the zone by name (when the plan names it so) and reading its records."""
    out = []
    if traffic.hosted_zone_name:
        out.append(
            Grant(
                capability="traffic-find-zone",
                action="route53:ListHostedZonesByName",
                resource="*",  # AWS grants it on every zone or none
                why="find the hosted zone by name",
            )
        )
    out.append(
        Grant(
            capability="traffic-read",
            action="route53:ListResourceRecordSets",
            resource=zone_arn(traffic),
            why="read traffic weights",
        )
    )
    return out


def zone_id(traffic: Route53Traffic, clients: TrafficClients) -> str:
    if traffic.hosted_zone_id:
        return traffic.hosted_zone_id
    name = normalise(traffic.hosted_zone_name or "")
    memo: dict[str, str] = clients.memo.setdefault("route53-zone-ids", {})
    if name not in memo:
        route53: Any = clients.client("route53")
        zones = route53.list_hosted_zones_by_name(DNSName=name, MaxItems="1").get("HostedZones", [])
        match = [z for z in zones if z["Name"] == name]
        if not match:
            raise LookupError(f"hosted zone {name} not found")
        memo[name] = match[0]["Id"].split("/")[-1]
    return memo[name]
