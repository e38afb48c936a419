"""Moving traffic between regions, whatever the plan's kind of traffic switch.

The safety rules of `chalicelib.domain.safety` are enforced here, in `TrafficRouter.shift`, before the kind is
asked to move anything: it is the only code that can move traffic, so no caller (state machine, API, CLI) can
skip them. Every shift is one atomic AWS call, made by the kind (`registry.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from chalicelib.adapters.errors import TransientError, unreachable
from chalicelib.adapters.traffic.base import (
    ShiftRefused,
    TrafficClients,
    TrafficNotConverged,
    TrafficState,
)
from chalicelib.adapters.traffic.registry import target_for
from chalicelib.domain.safety import check_shift
from chalicelib.models.live_checks import LiveCheck
from chalicelib.models.plan import ROLES, DRPlan


class TrafficRouter:
    def __init__(
        self,
        *,
        route53: Any | None = None,
        sagemaker: Callable[[str], Any] | None = None,
        arc_cluster: Callable[[str, str], Any] | None = None,
    ) -> None:
        overrides: dict[str, Callable[[str | None], Any]] = {}
        if route53 is not None:
            overrides["route53"] = lambda _region: route53  # global: one client whatever the region
        if sagemaker is not None:
            overrides["sagemaker"] = lambda region: sagemaker(region or "")
        # Route 53 ARC: (region, endpoint url) -> a route53-recovery-cluster client of that endpoint.
        endpoints = {"route53-recovery-cluster": arc_cluster} if arc_cluster is not None else {}
        self._clients = TrafficClients(overrides, endpoints)

    def read(self, plan: DRPlan) -> TrafficState:
        with self._named(plan):
            weights, detail = target_for(plan.traffic).read(plan.traffic, self._clients)
        return TrafficState(weights=weights, active_region=_active(plan, weights), detail=detail)

    def shift(
        self, plan: DRPlan, weights: Mapping[str, int], last_smoke_passed: Mapping[str, bool | None]
    ) -> TrafficState:
        """Apply `weights` ({primary: w, secondary: w}) atomically, after the safety rules allow it."""
        wanted = {"primary": int(weights["primary"]), "secondary": int(weights["secondary"])}
        verdict = check_shift(wanted, last_smoke_passed)
        if not verdict.allowed:
            raise ShiftRefused(verdict.reason)
        with self._named(plan):
            before = target_for(plan.traffic).apply(plan.traffic, wanted, self._clients)
        return TrafficState(
            weights=wanted,
            active_region=_active(plan, wanted),
            detail={"requested": wanted, "before": before},
        )

    def verify(self, plan: DRPlan, expected: Mapping[str, int]) -> TrafficState:
        """Read back; raise TrafficNotConverged until AWS shows exactly the expected weights."""
        with self._named(plan):
            target_for(plan.traffic).ready(plan.traffic, self._clients)
        state = self.read(plan)
        want = {k: int(v) for k, v in expected.items()}
        if state.weights != want:
            raise TrafficNotConverged(f"read back {state.weights}, expected {want}")
        return state

    def describe(self, plan: DRPlan) -> str:
        """How plan validation names the plan's traffic switch."""
        return target_for(plan.traffic).describe(plan.traffic)

    def live_checks(self, plan: DRPlan) -> list[LiveCheck]:
        """Plan validation's checks of the switch's own resources, beyond reading the weights."""
        return target_for(plan.traffic).live_checks(plan.traffic, self._clients)

    @contextmanager
    def _named(self, plan: DRPlan) -> Iterator[None]:
        # A switch that does not answer is transient (the state machine retries), and says which switch it
        # was: "route53-weighted fraud.example.com. unreachable" tells an operator which plane was down.
        try:
            yield
        except TransientError:
            raise
        except Exception as exc:
            if unreachable(exc):
                raise TransientError(
                    f"{self.describe(plan)} unreachable: {type(exc).__name__}: {exc}"
                ) from exc
            raise


def _active(plan: DRPlan, weights: Mapping[str, int]) -> str | None:
    serving = [role for role in ROLES if weights.get(role, 0) > 0]
    return plan.region_of(serving[0]) if len(serving) == 1 else None
