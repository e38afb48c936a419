"""The resilience assessment's schedule: every plan's workload assessed, reports stored, metrics emitted."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Rate

bp = Blueprint(__name__)


@bp.schedule(Rate(6, unit=Rate.HOURS), name="assess_scheduled")
def assess_scheduled(event: Any) -> dict[str, Any]:
    from chalicelib.services.assessment import assess_scheduled as run
    from chalicelib.services.deps import deps

    return run(deps())
