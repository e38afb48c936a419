"""Step Functions task functions: parse the task input, call one use case, return its model dump.

Every function of the app is deployed with the whole package, so each handler imports its models and use
case on first call: a cold start pays only for what that one function uses, not for every handler's code.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from chalice import Blueprint

from chalicelib.adapters.errors import TransientError, is_transient

bp = Blueprint(__name__)


def task(fn: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any], Any], Any]:
    """Serialise results and turn throttling/5xx into TransientError, which the state machine retries."""

    @wraps(fn)
    def handler(event: dict[str, Any], context: Any) -> Any:
        try:
            result = fn(event)
        except Exception as exc:
            if is_transient(exc) and not isinstance(exc, TransientError):
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            raise
        return result.model_dump(mode="json") if hasattr(result, "model_dump") else result

    return handler


@bp.lambda_function(name="load_plan")
@task
def load_plan(event: dict[str, Any]) -> Any:
    from chalicelib.models import failover as m
    from chalicelib.services.deps import deps

    return deps().plans.get(m.TaskInput.model_validate({"execution": "-", **event}).workload)


@bp.lambda_function(name="acquire_lock")
@task
def acquire_lock(event: dict[str, Any]) -> Any:
    from chalicelib.models import failover as m
    from chalicelib.services import failover as uc
    from chalicelib.services.deps import deps

    return uc.acquire_lock(m.LockInput.model_validate(event), deps())


@bp.lambda_function(name="release_lock")
@task
def release_lock(event: dict[str, Any]) -> Any:
    from chalicelib.models import failover as m
    from chalicelib.services import failover as uc
    from chalicelib.services.deps import deps

    return uc.release_lock(m.TaskInput.model_validate(event), deps())


@bp.lambda_function(name="recheck_trigger")
@task
def recheck_trigger(event: dict[str, Any]) -> Any:
    from chalicelib.models import failover as m
    from chalicelib.services import failover as uc
    from chalicelib.services.deps import deps

    return uc.recheck_trigger(m.RecheckInput.model_validate(event), deps())


@bp.lambda_function(name="probe_endpoint")
@task
def probe_endpoint(event: dict[str, Any]) -> Any:
    from chalicelib.models import failover as m
    from chalicelib.services import failover as uc
    from chalicelib.services.deps import deps

    return uc.probe_endpoint(m.TargetInput.model_validate(event), deps())


@bp.lambda_function(name="smoke_test")
@task
def smoke_test(event: dict[str, Any]) -> Any:
    from chalicelib.models import failover as m
    from chalicelib.services import failover as uc
    from chalicelib.services.deps import deps

    return uc.smoke_test(m.TargetInput.model_validate(event), deps())


@bp.lambda_function(name="check_replication")
@task
def check_replication(event: dict[str, Any]) -> Any:
    from chalicelib.models import failover as m
    from chalicelib.services import failover as uc
    from chalicelib.services.deps import deps

    return uc.check_replication(m.ReplicationInput.model_validate(event), deps())


@bp.lambda_function(name="shift_traffic")
@task
def shift_traffic(event: dict[str, Any]) -> Any:
    from chalicelib.models import failover as m
    from chalicelib.services import failover as uc
    from chalicelib.services.deps import deps

    return uc.shift_traffic(m.ShiftInput.model_validate(event), deps())


@bp.lambda_function(name="verify_traffic")
@task
def verify_traffic(event: dict[str, Any]) -> Any:
    from chalicelib.models import failover as m
    from chalicelib.services import failover as uc
    from chalicelib.services.deps import deps

    return uc.verify_traffic(m.VerifyInput.model_validate(event), deps())


@bp.lambda_function(name="record_failover")
@task
def record_failover(event: dict[str, Any]) -> Any:
    from chalicelib.models import failover as m
    from chalicelib.services import failover as uc
    from chalicelib.services.deps import deps

    return uc.record_failover(m.ContextInput.model_validate(event), deps())


@bp.lambda_function(name="conclude")
@task
def conclude(event: dict[str, Any]) -> Any:
    from chalicelib.models import failover as m
    from chalicelib.services import failover as uc
    from chalicelib.services.deps import deps

    return uc.conclude(m.ConcludeInput.model_validate(event), deps())
