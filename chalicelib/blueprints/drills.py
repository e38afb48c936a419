"""Drill handlers: the drill function (requests arrive as EventBridge events) and the monthly schedule.

Handlers import their models and use cases on first call (see chalicelib/blueprints/tasks.py).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Cron

from chalicelib.models.drill_event import PATTERN

bp = Blueprint(__name__)


@bp.on_cw_event(PATTERN, name="drill_run")
def drill_run(event: Any) -> dict[str, Any]:
    from chalicelib.models.drill import DrillRequest
    from chalicelib.services import drills as uc
    from chalicelib.services.deps import deps

    request = DrillRequest.model_validate(event.detail)
    return uc.run_requested(request, deps())


@bp.schedule(Cron(0, 6, 1, "*", "?", "*"), name="drill_monthly")
def drill_monthly(event: Any) -> dict[str, Any]:
    """06:00 UTC on the first of every month: plans with `drill.schedule: monthly` drill their target."""
    from chalicelib.services import drills as uc
    from chalicelib.services.deps import deps

    return uc.schedule_monthly(deps())
