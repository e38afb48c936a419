"""Drill handlers: the drill function (requests arrive as EventBridge events) and the monthly schedule."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Cron

from chalicelib.adapters.drill_requests import PATTERN
from chalicelib.models.drill import DrillRequest
from chalicelib.services import drills as uc
from chalicelib.services.deps import deps

bp = Blueprint(__name__)


@bp.on_cw_event(PATTERN, name="drill_run")
def drill_run(event: Any) -> dict[str, Any]:
    request = DrillRequest.model_validate(event.detail)
    return uc.run_requested(request, deps())


@bp.schedule(Cron(0, 6, 1, "*", "?", "*"), name="drill_monthly")
def drill_monthly(event: Any) -> dict[str, Any]:
    """06:00 UTC on the first of every month: plans with `drill.schedule: monthly` drill their target."""
    return uc.schedule_monthly(deps())
