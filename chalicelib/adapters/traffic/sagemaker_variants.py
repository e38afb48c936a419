"""sagemaker-variants: two production variants of one SageMaker endpoint; a shift updates both variant weights
in one call. The endpoint goes Updating while it applies them, so the read-back waits for InService."""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.adapters.traffic.base import Reading, TrafficClients, TrafficNotConverged
from chalicelib.models.grants import Grant, arn
from chalicelib.models.live_checks import LiveCheck
from chalicelib.models.plan import ROLES, SageMakerVariantsTraffic


class SageMakerVariants:
    kind = "sagemaker-variants"

    def describe(self, traffic: SageMakerVariantsTraffic) -> str:
        return f"{traffic.kind} {traffic.endpoint_name} ({traffic.region})"

    def read(self, traffic: SageMakerVariantsTraffic, clients: TrafficClients) -> Reading:
        sagemaker = clients.client("sagemaker", traffic.region)
        desc = sagemaker.describe_endpoint(EndpointName=traffic.endpoint_name)
        by_name = {v["VariantName"]: v for v in desc.get("ProductionVariants", [])}
        raw: dict[str, float] = {}
        for role in ROLES:
            name = getattr(traffic.variants, role)
            variant = by_name.get(name)
            if variant is None:
                raise LookupError(f"endpoint {traffic.endpoint_name} has no variant {name}")
            raw[role] = float(variant.get("CurrentWeight", variant.get("DesiredWeight", 0.0)))
        total = sum(raw.values())
        weights = {r: (round(100 * w / total) if total else 0) for r, w in raw.items()}
        return Reading(weights=weights, detail={"status": desc.get("EndpointStatus"), "raw_weights": raw})

    def apply(
        self, traffic: SageMakerVariantsTraffic, wanted: Mapping[str, int], clients: TrafficClients
    ) -> dict[str, int]:
        before = self.read(traffic, clients).weights
        clients.client("sagemaker", traffic.region).update_endpoint_weights_and_capacities(
            EndpointName=traffic.endpoint_name,
            DesiredWeightsAndCapacities=[
                {"VariantName": getattr(traffic.variants, role), "DesiredWeight": float(wanted[role])}
                for role in ROLES
            ],
        )
        return before

    def ready(self, traffic: SageMakerVariantsTraffic, clients: TrafficClients) -> None:
        desc = clients.client("sagemaker", traffic.region).describe_endpoint(
            EndpointName=traffic.endpoint_name
        )
        status = desc.get("EndpointStatus")
        if status != "InService":
            raise TrafficNotConverged(f"endpoint {traffic.endpoint_name} is {status}")

    def live_checks(self, traffic: SageMakerVariantsTraffic, clients: TrafficClients) -> list[LiveCheck]:
        return []  # reading the weights finds the endpoint and both variants

    def grants(self, traffic: SageMakerVariantsTraffic) -> list[Grant]:
        # SageMaker ARNs carry the endpoint name in lower case.
        endpoint = arn("sagemaker", traffic.region, f"endpoint/{traffic.endpoint_name.lower()}")
        return [
            Grant(
                capability="traffic-read",
                action="sagemaker:DescribeEndpoint",
                resource=endpoint,
                why="read variant weights",
            ),
            Grant(
                capability="traffic-shift",
                action="sagemaker:UpdateEndpointWeightsAndCapacities",
                resource=endpoint,
                why="shift traffic between variants",
            ),
        ]
