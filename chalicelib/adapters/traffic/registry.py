"""Every traffic kind, keyed by the plan model's `traffic.kind`. A new kind adds its module and one line here
(tests/unit/test_traffic_registry.py fails while a kind of the plan model has none)."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.traffic.arc_routing_control import ArcRoutingControl
from chalicelib.adapters.traffic.base import TrafficTarget
from chalicelib.adapters.traffic.route53_failover import Route53Failover
from chalicelib.adapters.traffic.route53_weighted import Route53Weighted
from chalicelib.adapters.traffic.sagemaker_variants import SageMakerVariants
from chalicelib.models.grants import Grant
from chalicelib.models.plan import Traffic

# Annotated so that mypy checks each kind against the protocol.
_TARGETS: tuple[TrafficTarget[Any], ...] = (
    Route53Weighted(),
    Route53Failover(),
    SageMakerVariants(),
    ArcRoutingControl(),
)
KINDS: dict[str, TrafficTarget[Any]] = {target.kind: target for target in _TARGETS}


def target_for(traffic: Traffic) -> TrafficTarget[Any]:
    """The kind that moves `traffic`."""
    try:
        return KINDS[traffic.kind]
    except KeyError:
        raise LookupError(
            f"no traffic kind {traffic.kind!r} is registered (adapters/traffic/registry.py)"
        ) from None


def grants_for(traffic: Traffic) -> list[Grant]:
    """The IAM actions the plan's traffic switch needs (both permission renderers read these)."""
    return target_for(traffic).grants(traffic)
