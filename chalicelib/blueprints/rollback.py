"""Model rollback handlers: the rollback state machine's tasks:
plan, deploy, settle, smoke, revert, record."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.blueprints.tasks import task

bp = Blueprint(__name__)


@bp.lambda_function(name="rollback_plan")
@task
def rollback_plan(event: dict[str, Any]) -> Any:
    from chalicelib.models.rollback import RollbackRequest
    from chalicelib.services import rollback as uc
    from chalicelib.services.deps import deps

    return uc.task_plan(RollbackRequest.model_validate(event["request"]), str(event["run_id"]), deps())


@bp.lambda_function(name="rollback_deploy")
@task
def rollback_deploy(event: dict[str, Any]) -> Any:
    from chalicelib.models.rollback import RollbackTaskInput
    from chalicelib.services import rollback as uc
    from chalicelib.services.deps import deps

    return uc.task_deploy(RollbackTaskInput.model_validate(event), deps())


@bp.lambda_function(name="rollback_settle")
@task
def rollback_settle(event: dict[str, Any]) -> Any:
    from chalicelib.models.rollback import RollbackTaskInput
    from chalicelib.services import rollback as uc
    from chalicelib.services.deps import deps

    return uc.task_settle(RollbackTaskInput.model_validate(event), deps())


@bp.lambda_function(name="rollback_smoke")
@task
def rollback_smoke(event: dict[str, Any]) -> Any:
    from chalicelib.models.rollback import RollbackTaskInput
    from chalicelib.services import rollback as uc
    from chalicelib.services.deps import deps

    return uc.task_smoke(RollbackTaskInput.model_validate(event), deps())


@bp.lambda_function(name="rollback_revert")
@task
def rollback_revert(event: dict[str, Any]) -> Any:
    from chalicelib.models.rollback import RollbackTaskInput
    from chalicelib.services import rollback as uc
    from chalicelib.services.deps import deps

    return uc.task_revert(RollbackTaskInput.model_validate(event), deps())


@bp.lambda_function(name="rollback_record")
@task
def rollback_record(event: dict[str, Any]) -> Any:
    from chalicelib.models.rollback import RollbackTaskInput
    from chalicelib.services import rollback as uc
    from chalicelib.services.deps import deps

    context = RollbackTaskInput.model_validate(event["context"])
    return uc.task_record(context, event.get("execution"), deps())
