"""Moving traffic between regions: Route 53 weighted or failover records, SageMaker variant weights.

The safety rules of `chalicelib.domain.safety` are enforced here, in the only code that can move traffic,
so no caller (state machine, API, CLI) can skip them. Every shift is one atomic AWS call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.adapters import aws
from chalicelib.domain.safety import check_shift
from chalicelib.models.plan import (
    DRPlan,
    Role,
    Route53FailoverTraffic,
    Route53WeightedTraffic,
    SageMakerVariantsTraffic,
)


class ShiftRefused(RuntimeError):
    """A shift broke a safety rule (the error name the state machine catches)."""


class TrafficNotConverged(RuntimeError):
    """The read-back does not (yet) show the requested weights; the state machine retries with backoff."""


class TrafficState(BaseModel):
    weights: dict[str, int] = Field(description="Share of traffic per role (primary/secondary), 0..100.")
    active_region: str | None = Field(description="Region taking all traffic, or None while split.")
    detail: dict[str, Any] = Field(default_factory=dict, description="What was read from AWS.")


def _normalise(name: str) -> str:
    return name if name.endswith(".") else name + "."


class TrafficRouter:
    def __init__(
        self,
        *,
        route53: Any | None = None,
        sagemaker: Callable[[str], Any] | None = None,
    ) -> None:
        self._route53 = route53
        self._sagemaker = sagemaker or (lambda region: aws.client("sagemaker", region))
        self._zone_ids: dict[str, str] = {}

    @property
    def route53(self) -> Any:
        # Not cached here: the factory caches, and resetting it (local cloud, tests) must reach us.
        return self._route53 if self._route53 is not None else aws.client("route53")

    # -- public --------------------------------------------------------------------------------------
    def read(self, plan: DRPlan) -> TrafficState:
        traffic = plan.traffic
        if isinstance(traffic, Route53WeightedTraffic):
            records = self._weighted_records(traffic)
            weights = {role: int(records[role].get("Weight", 0)) for role in ("primary", "secondary")}
            detail = {role: _record_summary(records[role]) for role in records}
        elif isinstance(traffic, Route53FailoverTraffic):
            check = self.route53.get_health_check(HealthCheckId=traffic.health_check_ids.primary)
            inverted = bool(check["HealthCheck"]["HealthCheckConfig"].get("Inverted", False))
            weights = {"primary": 0, "secondary": 100} if inverted else {"primary": 100, "secondary": 0}
            detail = {"primary_health_check_inverted": inverted}
        else:
            weights, detail = self._variant_weights(traffic)
        return TrafficState(weights=weights, active_region=_active(plan, weights), detail=detail)

    def shift(
        self, plan: DRPlan, weights: Mapping[str, int], last_smoke_passed: Mapping[str, bool | None]
    ) -> TrafficState:
        """Apply `weights` ({primary: w, secondary: w}) atomically, after the safety rules allow it."""
        wanted = {"primary": int(weights["primary"]), "secondary": int(weights["secondary"])}
        verdict = check_shift(wanted, last_smoke_passed)
        if not verdict.allowed:
            raise ShiftRefused(verdict.reason)
        traffic = plan.traffic
        if isinstance(traffic, Route53WeightedTraffic):
            before = self._shift_weighted(traffic, wanted)
        elif isinstance(traffic, Route53FailoverTraffic):
            if wanted["primary"] not in (0, 100):
                raise ShiftRefused("route53-failover records move all traffic (0 or 100), never a share")
            before = self.read(plan).weights
            self.route53.update_health_check(
                HealthCheckId=traffic.health_check_ids.primary, Inverted=wanted["primary"] == 0
            )
        else:
            before = self.read(plan).weights
            self._sagemaker(traffic.region).update_endpoint_weights_and_capacities(
                EndpointName=traffic.endpoint_name,
                DesiredWeightsAndCapacities=[
                    {"VariantName": getattr(traffic.variants, role), "DesiredWeight": float(wanted[role])}
                    for role in ("primary", "secondary")
                ],
            )
        return TrafficState(
            weights=wanted,
            active_region=_active(plan, wanted),
            detail={"requested": wanted, "before": before},
        )

    def verify(self, plan: DRPlan, expected: Mapping[str, int]) -> TrafficState:
        """Read back; raise TrafficNotConverged until AWS shows exactly the expected weights."""
        traffic = plan.traffic
        if isinstance(traffic, SageMakerVariantsTraffic):
            status = self._sagemaker(traffic.region).describe_endpoint(EndpointName=traffic.endpoint_name)
            if status.get("EndpointStatus") != "InService":
                state = status.get("EndpointStatus")
                raise TrafficNotConverged(f"endpoint {traffic.endpoint_name} is {state}")
        state = self.read(plan)
        want = {k: int(v) for k, v in expected.items()}
        if state.weights != want:
            raise TrafficNotConverged(f"read back {state.weights}, expected {want}")
        return state

    # -- Route 53 weighted ---------------------------------------------------------------------------
    def zone_id(self, traffic: Route53WeightedTraffic | Route53FailoverTraffic) -> str:
        if traffic.hosted_zone_id:
            return traffic.hosted_zone_id
        name = _normalise(traffic.hosted_zone_name or "")
        if name not in self._zone_ids:
            zones = self.route53.list_hosted_zones_by_name(DNSName=name, MaxItems="1").get("HostedZones", [])
            match = [z for z in zones if z["Name"] == name]
            if not match:
                raise LookupError(f"hosted zone {name} not found")
            self._zone_ids[name] = match[0]["Id"].split("/")[-1]
        return self._zone_ids[name]

    def _weighted_records(self, traffic: Route53WeightedTraffic) -> dict[str, dict[str, Any]]:
        record = _normalise(traffic.record_name)
        ids = {traffic.set_identifiers.primary: "primary", traffic.set_identifiers.secondary: "secondary"}
        found: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {
            "HostedZoneId": self.zone_id(traffic),
            "StartRecordName": record,
            "StartRecordType": traffic.record_type,
        }
        while True:
            page = self.route53.list_resource_record_sets(**kwargs)
            for rrs in page["ResourceRecordSets"]:
                if _normalise(rrs["Name"]) != record or rrs["Type"] != traffic.record_type:
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

    def _shift_weighted(self, traffic: Route53WeightedTraffic, weights: Mapping[str, int]) -> dict[str, int]:
        """Apply the weights; returns the weights the records had just before."""
        records = self._weighted_records(traffic)
        before = {role: int(records[role].get("Weight", 0)) for role in ("primary", "secondary")}
        changes = []
        for role in ("primary", "secondary"):
            rrs = dict(records[role])
            rrs["Weight"] = int(weights[role])
            changes.append({"Action": "UPSERT", "ResourceRecordSet": rrs})
        # One change batch: Route 53 applies it atomically, so traffic is never half-shifted.
        self.route53.change_resource_record_sets(
            HostedZoneId=self.zone_id(traffic),
            ChangeBatch={"Comment": "lifeboat traffic shift", "Changes": changes},
        )
        return before

    # -- SageMaker -----------------------------------------------------------------------------------
    def _variant_weights(self, traffic: SageMakerVariantsTraffic) -> tuple[dict[str, int], dict[str, Any]]:
        desc = self._sagemaker(traffic.region).describe_endpoint(EndpointName=traffic.endpoint_name)
        by_name = {v["VariantName"]: v for v in desc.get("ProductionVariants", [])}
        raw: dict[str, float] = {}
        for role in ("primary", "secondary"):
            variant = by_name.get(getattr(traffic.variants, role))
            if variant is None:
                name = getattr(traffic.variants, role)
                raise LookupError(f"endpoint {traffic.endpoint_name} has no variant {name}")
            raw[role] = float(variant.get("CurrentWeight", variant.get("DesiredWeight", 0.0)))
        total = sum(raw.values())
        weights = {r: (round(100 * w / total) if total else 0) for r, w in raw.items()}
        return weights, {"status": desc.get("EndpointStatus"), "raw_weights": raw}


def _active(plan: DRPlan, weights: Mapping[str, int]) -> str | None:
    serving: list[Role] = [r for r in ("primary", "secondary") if weights.get(r, 0) > 0]  # type: ignore[misc]
    return plan.region_of(serving[0]) if len(serving) == 1 else None


def _record_summary(rrs: Mapping[str, Any]) -> dict[str, Any]:
    values = [r["Value"] for r in rrs.get("ResourceRecords", [])]
    return {"set_identifier": rrs.get("SetIdentifier"), "weight": rrs.get("Weight"), "values": values}
