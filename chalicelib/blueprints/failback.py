"""Failback handlers: the state machine's task functions and the auto-failback schedule.

Handlers import their models and use cases on first call (see chalicelib/blueprints/tasks.py).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Rate

from chalicelib.blueprints.tasks import task

bp = Blueprint(__name__)


@bp.lambda_function(name="failback_readiness")
@task
def failback_readiness(event: dict[str, Any]) -> Any:
    from chalicelib.models.failover import TaskInput
    from chalicelib.services import failback as uc
    from chalicelib.services.deps import deps

    return uc.check_readiness(TaskInput.model_validate(event), deps())


@bp.lambda_function(name="failback_await")
@task
def failback_await(event: dict[str, Any]) -> Any:
    from chalicelib.models import failback as m
    from chalicelib.services import failback as uc
    from chalicelib.services.deps import deps

    return uc.await_operator(m.AwaitInput.model_validate(event), deps())


@bp.lambda_function(name="failback_shift")
@task
def failback_shift(event: dict[str, Any]) -> Any:
    from chalicelib.models import failback as m
    from chalicelib.services import failback as uc
    from chalicelib.services.deps import deps

    return uc.shift_step(m.StepInput.model_validate(event), deps())


@bp.lambda_function(name="failback_bake")
@task
def failback_bake(event: dict[str, Any]) -> Any:
    from chalicelib.models import failback as m
    from chalicelib.services import failback as uc
    from chalicelib.services.deps import deps

    return uc.check_bake(m.BakeInput.model_validate(event), deps())


@bp.lambda_function(name="failback_gates")
@task
def failback_gates(event: dict[str, Any]) -> Any:
    from chalicelib.models import failback as m
    from chalicelib.services import failback as uc
    from chalicelib.services.deps import deps

    return uc.evaluate_step_gates(m.GateInput.model_validate(event), deps())


@bp.lambda_function(name="failback_rollback")
@task
def failback_rollback(event: dict[str, Any]) -> Any:
    from chalicelib.models.failover import ContextInput
    from chalicelib.services import failback as uc
    from chalicelib.services.deps import deps

    return uc.rollback(ContextInput.model_validate(event), deps())


@bp.lambda_function(name="failback_record")
@task
def failback_record(event: dict[str, Any]) -> Any:
    from chalicelib.models.failover import ContextInput
    from chalicelib.services import failback as uc
    from chalicelib.services.deps import deps

    return uc.record_failback(ContextInput.model_validate(event), deps())


@bp.lambda_function(name="failback_conclude")
@task
def failback_conclude(event: dict[str, Any]) -> Any:
    from chalicelib.models import failback as m
    from chalicelib.services import failback as uc
    from chalicelib.services.deps import deps

    return uc.conclude(m.FailbackConcludeInput.model_validate(event), deps())


@bp.schedule(Rate(1, unit=Rate.MINUTES), name="failback_auto")
def failback_auto(event: Any) -> dict[str, Any]:
    from chalicelib.services.deps import deps
    from chalicelib.services.failback_ops import evaluate_auto_failback

    return evaluate_auto_failback(deps()).model_dump(mode="json")
