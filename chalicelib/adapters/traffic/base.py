"""What every traffic kind implements (`TrafficTarget`), and what the kinds share: the read-back state, the
errors the state machines catch and the AWS clients a kind is handed. The checks a kind adds to plan
validation are `chalicelib.models.live_checks.LiveCheck`s, as the asset kinds' are.

A kind is one module of this package (route53_weighted, route53_failover, sagemaker_variants,
arc_routing_control), registered by the plan model's `kind` in `registry.py`. Kinds hold no state: the router
hands them its `TrafficClients`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel, Field

from chalicelib.adapters import aws
from chalicelib.models.grants import Grant
from chalicelib.models.live_checks import LiveCheck


class ShiftRefused(RuntimeError):
    """A shift broke a safety rule (the error name the state machine catches)."""


class TrafficNotConverged(RuntimeError):
    """The read-back does not (yet) show the requested weights; the state machine retries with backoff."""


class TrafficState(BaseModel):
    weights: dict[str, int] = Field(description="Share of traffic per role (primary/secondary), 0..100.")
    active_region: str | None = Field(description="Region taking all traffic, or None while split.")
    detail: dict[str, Any] = Field(default_factory=dict, description="What was read from AWS.")


class Reading(NamedTuple):
    """What a kind read from AWS: the share of traffic per role and what it saw, for humans."""

    weights: dict[str, int]
    detail: dict[str, Any]


class TrafficClients:
    """The AWS clients the kinds call, and what they may remember for the router's lifetime."""

    def __init__(
        self,
        overrides: Mapping[str, Callable[[str | None], Any]] | None = None,
        endpoints: Mapping[str, Callable[[str, str], Any]] | None = None,
    ) -> None:
        # service -> (region -> client): clients a test or the local cloud hands in; the factory otherwise.
        self._overrides = dict(overrides or {})
        # service -> ((region, endpoint url) -> client), for services called at endpoints the plan names.
        self._endpoints = dict(endpoints or {})
        self.memo: dict[str, Any] = {}  # lookups that never change for a plan (a hosted zone's id by name)

    def client(self, service: str, region: str | None = None) -> Any:
        make = self._overrides.get(service)
        # Not cached here: the factory caches, and resetting it (local cloud, tests) must reach us.
        return make(region) if make is not None else aws.client(service, region)

    def client_at(self, service: str, region: str, endpoint_url: str) -> Any:
        """A client of one regional endpoint a plan names (an ARC cluster's), signed for `region`."""
        make = self._endpoints.get(service)
        return (
            make(region, endpoint_url) if make is not None else aws.client_at(service, region, endpoint_url)
        )


TrafficT = TypeVar("TrafficT", contravariant=True)


class TrafficTarget(Protocol[TrafficT]):
    """One kind of traffic switch. `TrafficRouter` calls it after choosing it by the plan's `traffic.kind`;
    the safety rules (`chalicelib.domain.safety`) are the router's, checked before `apply` is called."""

    kind: str  # the plan model's discriminator, e.g. "route53-weighted"

    def describe(self, traffic: TrafficT) -> str:
        """How plan validation names this switch, e.g. "route53-weighted fraud.example.com."."""
        ...

    def read(self, traffic: TrafficT, clients: TrafficClients) -> Reading:
        """The weights AWS shows now; LookupError when the plan's resources cannot be found."""
        ...

    def apply(self, traffic: TrafficT, wanted: Mapping[str, int], clients: TrafficClients) -> dict[str, int]:
        """Move traffic to `wanted` ({primary: w, secondary: w}, already judged safe) in ONE atomic AWS
        call; returns the weights just before. Raises ShiftRefused for what this kind cannot do."""
        ...

    def ready(self, traffic: TrafficT, clients: TrafficClients) -> None:
        """Raise TrafficNotConverged while the switch is still settling (checked before the read-back)."""
        ...

    def live_checks(self, traffic: TrafficT, clients: TrafficClients) -> list[LiveCheck]:
        """Plan validation's checks of the kind's own resources, beyond reading the weights."""
        ...

    def grants(self, traffic: TrafficT) -> list[Grant]:
        """The IAM actions this switch needs, for both permission renderers (plan validation, infra)."""
        ...
