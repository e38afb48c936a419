"""Moving traffic between regions: one module per kind of traffic switch (Route 53 weighted or failover
records, SageMaker variant weights) behind `TrafficTarget`, and `TrafficRouter`, which every caller uses.

Adding a kind: docs/architecture.md, "Adding a traffic kind".
"""

from chalicelib.adapters.traffic.base import (
    Reading,
    ShiftRefused,
    TrafficClients,
    TrafficNotConverged,
    TrafficState,
    TrafficTarget,
)
from chalicelib.adapters.traffic.registry import KINDS, grants_for, target_for
from chalicelib.adapters.traffic.router import TrafficRouter

__all__ = [
    "KINDS",
    "Reading",
    "ShiftRefused",
    "TrafficClients",
    "TrafficNotConverged",
    "TrafficRouter",
    "TrafficState",
    "TrafficTarget",
    "grants_for",
    "target_for",
]
