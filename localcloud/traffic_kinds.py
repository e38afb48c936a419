"""The traffic switch of a plan, created in the local cloud: one provisioner per traffic kind of
`chalicelib.adapters.traffic`, and the kinds it cannot provision yet, each with the reason.

tests/unit/test_traffic_registry.py fails while a registered kind is in neither table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chalicelib.models.plan import ROLES, DRPlan, Route53WeightedTraffic, SageMakerVariantsTraffic
from localcloud.server import LocalCloud

log = logging.getLogger(__name__)

Provisioner = Callable[[LocalCloud, DRPlan], str | None]
"""Creates (idempotently) what the plan's traffic switch needs; returns the hosted zone id, if any."""


def _route53_weighted(cloud: LocalCloud, plan: DRPlan) -> str | None:
    # The zone (lifeboat.internal. unless the plan names one) and the two weighted records, all traffic on
    # the primary; each record points at its region's name.
    traffic = plan.traffic
    assert isinstance(traffic, Route53WeightedTraffic)
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


PROVISIONERS: dict[str, Provisioner] = {
    "route53-weighted": _route53_weighted,
    "sagemaker-variants": _sagemaker_variants,
}

NOT_PROVISIONED: dict[str, str] = {
    "route53-failover": "a plan names its health checks by id, and Route 53 (moto as well) assigns the id "
    "when a health check is created, so the local cloud cannot create the health checks the plan names",
}


def provision_traffic(cloud: LocalCloud, plan: DRPlan) -> str | None:
    """Create the plan's traffic switch when the local cloud can; returns its hosted zone id, if any."""
    kind = plan.traffic.kind
    provision = PROVISIONERS.get(kind)
    if provision is None:
        log.info("traffic of %s not provisioned (%s): %s", plan.workload, kind, NOT_PROVISIONED.get(kind))
        return None
    return provision(cloud, plan)
