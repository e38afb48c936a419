"""Restore handlers: the restore state machine's tasks (plan the run, one batch of keys, record it) and the
daily restore test."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Rate

from chalicelib.blueprints.tasks import task

bp = Blueprint(__name__)


@bp.lambda_function(name="restore_plan")
@task
def restore_plan(event: dict[str, Any]) -> Any:
    from chalicelib.models.restore import RestoreRequest
    from chalicelib.services import restore as uc
    from chalicelib.services.deps import deps

    return uc.task_plan(RestoreRequest.model_validate(event["request"]), str(event["run_id"]), deps())


@bp.lambda_function(name="restore_batch")
@task
def restore_batch(event: dict[str, Any]) -> Any:
    from chalicelib.models.restore import RestoreTaskInput
    from chalicelib.services import restore as uc
    from chalicelib.services.deps import deps

    return uc.task_batch(RestoreTaskInput.model_validate(event), deps())


@bp.lambda_function(name="restore_record")
@task
def restore_record(event: dict[str, Any]) -> Any:
    from chalicelib.models.restore import RestoreTaskInput
    from chalicelib.services import restore as uc
    from chalicelib.services.deps import deps

    context = RestoreTaskInput.model_validate(event["context"])
    return uc.task_record(context, event.get("execution"), deps())


@bp.schedule(Rate(1, unit=Rate.DAYS), name="restore_test_scheduled")
def restore_test_scheduled(event: Any) -> dict[str, Any]:
    from chalicelib.services import restore_test as uc
    from chalicelib.services.deps import deps

    return uc.run_scheduled(deps())
