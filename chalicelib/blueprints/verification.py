"""Verification handlers: the verification state machine's tasks and the verification schedule."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Rate

from chalicelib.blueprints.tasks import task

bp = Blueprint(__name__)


@bp.lambda_function(name="verify_plan")
@task
def verify_plan(event: dict[str, Any]) -> Any:
    from chalicelib.models import verification as m
    from chalicelib.services.deps import deps
    from chalicelib.services.verification import tasks as uc

    return uc.task_plan_run(m.PlanRunInput.model_validate(event), deps())


@bp.lambda_function(name="verify_shard")
@task
def verify_shard(event: dict[str, Any]) -> Any:
    from chalicelib.models import verification as m
    from chalicelib.services.deps import deps
    from chalicelib.services.verification import tasks as uc

    return uc.task_run_shard(m.ShardInput.model_validate(event), deps())


@bp.lambda_function(name="verify_finalize")
@task
def verify_finalize(event: dict[str, Any]) -> Any:
    from chalicelib.models import verification as m
    from chalicelib.services.deps import deps
    from chalicelib.services.verification import tasks as uc

    return uc.task_finalize(m.FinalizeInput.model_validate(event), deps())


@bp.schedule(Rate(1, unit=Rate.HOURS), name="verify_scheduled")
def verify_scheduled(event: Any) -> dict[str, Any]:
    from chalicelib.services.deps import deps
    from chalicelib.services.verification import tasks as uc

    return uc.start_scheduled(deps())
