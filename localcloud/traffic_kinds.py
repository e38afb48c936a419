"""The traffic switch of a plan, created in the local cloud: one provisioner per traffic kind of
`chalicelib.adapters.traffic`, and the kinds it cannot provision yet, each with the reason.

A kind whose switch the local cloud serves itself (arc-routing-control: the ARC cluster of
localcloud/arc.py) also has a `LOCALISERS` entry: the plan as the local cloud runs it, pointed at what it
serves (the cluster's endpoints on the ports they got), before the plan is stored.

tests/unit/test_traffic_registry.py fails while a registered kind is in neither table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chalicelib.models.plan import (
    ROLES,
    ArcRoutingControlTraffic,
    ClusterEndpoint,
    DRPlan,
    Route53WeightedTraffic,
    SageMakerVariantsTraffic,
    WeightedRecords,
)
from chalicelib.models.planfile import load_plan_text, plan_to_yaml
from localcloud import arc
from localcloud.server import LocalCloud

log = logging.getLogger(__name__)

Provisioner = Callable[[LocalCloud, DRPlan], str | None]
"""Creates (idempotently) what the plan's traffic switch needs; returns the hosted zone id, if any."""


def _route53_weighted(cloud: LocalCloud, plan: DRPlan) -> str | None:
    traffic = plan.traffic
    assert isinstance(traffic, Route53WeightedTraffic)
    return _weighted_records(cloud, plan, traffic)


def _weighted_records(
    cloud: LocalCloud, plan: DRPlan, traffic: Route53WeightedTraffic | WeightedRecords
) -> str:
    # The zone (lifeboat.internal. unless the plan names one) and the two weighted records, all traffic on
    # the primary; each record points at its region's name.
    r53 = cloud.client("route53")
    zone_name = traffic.hosted_zone_name or "lifeboat.internal."
    zones = r53.list_hosted_zones_by_name(DNSName=zone_name).get("HostedZones", [])
    match = [z for z in zones if z["Name"] == zone_name]
    if match:
        zone_id = str(match[0]["Id"].split("/")[-1])
    else:
        created = r53.create_hosted_zone(Name=zone_name, CallerReference=f"lifeboat-{zone_name}")
        zone_id = str(created["HostedZone"]["Id"].split("/")[-1])
    changes = []
    for role, weight in zip(ROLES, (100, 0), strict=True):
        region = plan.region_of(role)
        changes.append(
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": traffic.record_name,
                    "Type": traffic.record_type,
                    "SetIdentifier": getattr(traffic.set_identifiers, role),
                    "Weight": weight,
                    "TTL": int(traffic.ttl.total_seconds()),
                    "ResourceRecords": [{"Value": f"{region}.{traffic.record_name}"}],
                },
            }
        )
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return zone_id


def _sagemaker_variants(cloud: LocalCloud, plan: DRPlan) -> str | None:
    # The endpoint and its two variants are created with the plan's other SageMaker endpoints
    # (localcloud/sagemaker.py, once the model artifact is published); here all traffic goes to the primary's.
    traffic = plan.traffic
    assert isinstance(traffic, SageMakerVariantsTraffic)
    sm = cloud.client("sagemaker", traffic.region)
    try:
        sm.describe_endpoint(EndpointName=traffic.endpoint_name)
    except sm.exceptions.ClientError as exc:
        raise ValueError(
            f"endpoint {traffic.endpoint_name} ({traffic.region}) of {plan.workload} was not created: the "
            "local cloud creates SageMaker endpoints from the plan's model-artifacts asset (none here)"
        ) from exc
    sm.update_endpoint_weights_and_capacities(
        EndpointName=traffic.endpoint_name,
        DesiredWeightsAndCapacities=[
            {"VariantName": getattr(traffic.variants, role), "DesiredWeight": weight}
            for role, weight in zip(ROLES, (100.0, 0.0), strict=True)
        ],
    )
    return None


def _arc_routing_control(cloud: LocalCloud, plan: DRPlan) -> str | None:
    # The plan's two routing controls in the local cloud's cluster of that ARN, all traffic on the primary,
    # and the safety rule every ARC setup should have: at least one region On (both Off fails open). The
    # weighted records of a gradual failback, when the plan names them, as route53-weighted has them.
    traffic = plan.traffic
    assert isinstance(traffic, ArcRoutingControlTraffic)
    cluster = arc.cluster_for(cloud, traffic.cluster_arn)
    controls = traffic.routing_controls
    for role, state in zip(ROLES, (arc.ON, arc.OFF), strict=True):
        cluster.routing_control(getattr(controls, role), name=f"{plan.workload}-{plan.region_of(role)}")
        cluster.set_state(getattr(controls, role), state)
    cluster.assertion_rule(
        f"{plan.workload}-one-region-serves", [controls.primary, controls.secondary], threshold=1
    )
    if traffic.failback_records is not None:
        return _weighted_records(cloud, plan, traffic.failback_records)
    return None


def _arc_endpoints(cloud: LocalCloud, plan: DRPlan, text: str) -> tuple[DRPlan, str]:
    # The local cluster stands in for the plan's (as moto does for the rest): the plan names its endpoints.
    traffic = plan.traffic
    assert isinstance(traffic, ArcRoutingControlTraffic)
    cluster = arc.cluster_for(cloud, traffic.cluster_arn)
    endpoints = [ClusterEndpoint(region=e["Region"], url=e["Endpoint"]) for e in cluster.endpoints()]
    if [(e.region, e.url) for e in traffic.cluster_endpoints] == [(e.region, e.url) for e in endpoints]:
        return plan, text
    moved = plan.model_copy(update={"traffic": traffic.model_copy(update={"cluster_endpoints": endpoints})})
    source = text.splitlines()[0] if text.startswith("# ") else f"# {plan.workload}"
    localised = f"{source}\n# ARC cluster endpoints: the local cloud's\n" + plan_to_yaml(moved)
    return load_plan_text(localised, f"{plan.workload} (local cloud)"), localised


PROVISIONERS: dict[str, Provisioner] = {
    "route53-weighted": _route53_weighted,
    "sagemaker-variants": _sagemaker_variants,
    "arc-routing-control": _arc_routing_control,
}

Localiser = Callable[[LocalCloud, DRPlan, str], tuple[DRPlan, str]]
"""The plan (and its YAML text) pointed at what the local cloud serves for its traffic kind."""

LOCALISERS: dict[str, Localiser] = {
    "arc-routing-control": _arc_endpoints,
}

NOT_PROVISIONED: dict[str, str] = {
    "route53-failover": "a plan names its health checks by id, and Route 53 (moto as well) assigns the id "
    "when a health check is created, so the local cloud cannot create the health checks the plan names",
}


def localise_traffic(cloud: LocalCloud, plan: DRPlan, text: str) -> tuple[DRPlan, str]:
    """The plan as the local cloud runs it (unchanged unless its traffic kind has a localiser)."""
    localise = LOCALISERS.get(plan.traffic.kind)
    return localise(cloud, plan, text) if localise is not None else (plan, text)


def provision_traffic(cloud: LocalCloud, plan: DRPlan) -> str | None:
    """Create the plan's traffic switch when the local cloud can; returns its hosted zone id, if any."""
    kind = plan.traffic.kind
    provision = PROVISIONERS.get(kind)
    if provision is None:
        log.info("traffic of %s not provisioned (%s): %s", plan.workload, kind, NOT_PROVISIONED.get(kind))
        return None
    return provision(cloud, plan)
