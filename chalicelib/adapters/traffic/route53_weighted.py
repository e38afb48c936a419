"""route53-weighted: two weighted records sharing one name; a shift rewrites both weights in one change batch,
so failback can move traffic back in steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.adapters.traffic.base import Reading, TrafficClients
from chalicelib.adapters.traffic.route53_zone import normalise, zone_arn, zone_grants, zone_id
from chalicelib.models.grants import Grant
from chalicelib.models.live_checks import LiveCheck
from chalicelib.models.plan import ROLES, Route53WeightedTraffic, WeightedRecords


class Route53Weighted:
    kind = "route53-weighted"

    def describe(self, traffic: Route53WeightedTraffic) -> str:
        return f"{traffic.kind} {traffic.record_name}"

    def read(self, traffic: Route53WeightedTraffic, clients: TrafficClients) -> Reading:
        records = records_of(traffic, clients)
        return Reading(
            weights=weights_of(records),
            detail={role: _summary(records[role]) for role in records},
        )

    def apply(
        self, traffic: Route53WeightedTraffic, wanted: Mapping[str, int], clients: TrafficClients
    ) -> dict[str, int]:
        # One change batch: Route 53 applies it atomically, so traffic is never half-shifted.
        return set_weights(traffic, wanted, clients)

    def ready(self, traffic: Route53WeightedTraffic, clients: TrafficClients) -> None:
        return None  # a change batch is read back as soon as it is accepted

    def live_checks(self, traffic: Route53WeightedTraffic, clients: TrafficClients) -> list[LiveCheck]:
        return []  # reading the weights finds the zone and both records

    def grants(self, traffic: Route53WeightedTraffic) -> list[Grant]:
        return weighted_grants(traffic)


def weighted_grants(traffic: Route53WeightedTraffic | WeightedRecords) -> list[Grant]:
    """Finding and reading the two weighted records, and the one change batch that rewrites their weights."""
    record = traffic.record_name.rstrip(".").lower()
    return [
        *zone_grants(traffic),
        Grant(
            capability="traffic-shift",
            action="route53:ChangeResourceRecordSets",
            resource=zone_arn(traffic),
            why="shift traffic (one atomic change batch)",
            # Pinned to the plan's record, type and UPSERT: the zone may be any when known by name only.
            condition={
                "ForAllValues:StringEquals": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": [record],
                    "route53:ChangeResourceRecordSetsRecordTypes": [traffic.record_type],
                    "route53:ChangeResourceRecordSetsActions": ["UPSERT"],
                }
            },
        ),
    ]


def set_weights(
    traffic: Route53WeightedTraffic | WeightedRecords, wanted: Mapping[str, int], clients: TrafficClients
) -> dict[str, int]:
    """Rewrite both records' weights in one change batch (atomic in Route 53); the weights before."""
    records = records_of(traffic, clients)
    changes = []
    for role in ROLES:
        rrs = dict(records[role])
        rrs["Weight"] = int(wanted[role])
        changes.append({"Action": "UPSERT", "ResourceRecordSet": rrs})
    clients.client("route53").change_resource_record_sets(
        HostedZoneId=zone_id(traffic, clients),
        ChangeBatch={"Comment": "lifeboat traffic shift", "Changes": changes},
    )
    return weights_of(records)


def weights_of(records: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    return {role: int(records[role].get("Weight", 0)) for role in ROLES}


def records_of(
    traffic: Route53WeightedTraffic | WeightedRecords, clients: TrafficClients
) -> dict[str, dict[str, Any]]:
    """The plan's two weighted records, by role; LookupError when either is missing."""
    record = normalise(traffic.record_name)
    ids = {traffic.set_identifiers.primary: "primary", traffic.set_identifiers.secondary: "secondary"}
    found: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {
        "HostedZoneId": zone_id(traffic, clients),
        "StartRecordName": record,
        "StartRecordType": traffic.record_type,
    }
    route53 = clients.client("route53")
    while True:
        page = route53.list_resource_record_sets(**kwargs)
        for rrs in page["ResourceRecordSets"]:
            if normalise(rrs["Name"]) != record or rrs["Type"] != traffic.record_type:
                continue
            role = ids.get(rrs.get("SetIdentifier", ""))
            if role:
                found[role] = rrs
        if len(found) == 2 or not page.get("IsTruncated"):
            break
        kwargs.update(
            StartRecordName=page["NextRecordName"],
            StartRecordType=page["NextRecordType"],
        )
        if page.get("NextRecordIdentifier"):
            kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
    missing = {"primary", "secondary"} - found.keys()
    if missing:
        raise LookupError(
            f"weighted record {record} {traffic.record_type} has no set identifier for {sorted(missing)}"
        )
    return found


def _summary(rrs: Mapping[str, Any]) -> dict[str, Any]:
    values = [r["Value"] for r in rrs.get("ResourceRecords", [])]
    return {"set_identifier": rrs.get("SetIdentifier"), "weight": rrs.get("Weight"), "values": values}
