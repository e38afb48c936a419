"""HTTP plumbing for the console API: parsing requests into models, the caller's IAM identity, and turning
every error into a 4xx/5xx with one JSON shape (`ErrorBody`). No business rules here.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from chalice import Blueprint, IAMAuthorizer, Response
from pydantic import BaseModel, ValidationError

from chalicelib.adapters.errors import is_transient
from chalicelib.models.durations import describe_value
from chalicelib.observability import emit, logger

if TYPE_CHECKING:
    from chalicelib.models.api import ExecutionRef, Problem


def api() -> Any:
    """chalicelib.models.api, imported on first use: importing the app must not build the API's models."""
    from chalicelib.models import api as models

    return models


def _plan_rules() -> Any:
    from chalicelib.models import plan

    return plan


@functools.cache
def _workload_pattern() -> re.Pattern[str]:
    return re.compile(_plan_rules().WORKLOAD_PATTERN)


M = TypeVar("M", bound=BaseModel)
Location = Literal["body", "query", "path", "plan"]

IAM = IAMAuthorizer()
"""Every route but GET /health: API Gateway verifies the SigV4 signature before Lambda runs."""

JSON_HEADERS: dict[str, str | list[str]] = {"Content-Type": "application/json", "Cache-Control": "no-store"}
RETRY_AFTER_SECONDS = "5"


class ApiError(Exception):
    """An error answer: status, machine code, message and the fields at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: Iterable[Problem] = (),
        *,
        execution: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = api().ErrorBody(code=code, message=message, problems=list(problems), execution=execution)
        self.headers: dict[str, str | list[str]] = dict(headers or {})

    def response(self) -> Response:
        return Response(
            body=self.body.model_dump(mode="json", exclude_none=True),
            status_code=self.status,
            headers={**JSON_HEADERS, **self.headers},
        )


def bad_request(message: str, problems: Iterable[Problem] = ()) -> ApiError:
    return ApiError(400, "BadRequest", message, problems)


# -- route metadata (the OpenAPI document is built from it) ---------------------------------------------
# Models are named "module:Class" so that importing the app (every function's cold start) does not import
# the API's request and response models; they are resolved when the OpenAPI document is built.
ModelRef = type[BaseModel] | str
Answer = ModelRef | tuple[ModelRef, ...] | None
"""A status's body: one model, one of several (a tuple), or none."""


def resolve_model(ref: ModelRef) -> type[BaseModel]:
    if not isinstance(ref, str):
        return ref
    module, _, name = ref.partition(":")
    model = getattr(importlib.import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{ref} is not a pydantic model")
    return model


@dataclass(frozen=True)
class RouteDoc:
    path: str
    method: str
    tag: str
    body: ModelRef | None = None
    body_required: bool = True
    query: ModelRef | None = None
    responses: dict[int, Answer] = field(default_factory=dict)
    errors: tuple[int, ...] = ()

    def resolved(self) -> RouteDoc:
        """The same route with every model reference imported."""
        return RouteDoc(
            path=self.path,
            method=self.method,
            tag=self.tag,
            body=resolve_model(self.body) if self.body is not None else None,
            body_required=self.body_required,
            query=resolve_model(self.query) if self.query is not None else None,
            responses={k: _resolve_answer(v) for k, v in self.responses.items()},
            errors=self.errors,
        )


def _resolve_answer(answer: Answer) -> Answer:
    if isinstance(answer, tuple):
        return tuple(resolve_model(m) for m in answer)
    return resolve_model(answer) if answer is not None else None


ROUTES: dict[tuple[str, str], RouteDoc] = {}


def route(
    bp: Blueprint,
    path: str,
    method: str,
    *,
    tag: str,
    responses: dict[int, Answer],
    body: ModelRef | None = None,
    body_required: bool = True,
    query: ModelRef | None = None,
    errors: tuple[int, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an IAM-authorised route whose errors all become `ErrorBody` answers."""
    standard = [403, 503]
    if body is not None:
        standard += [400, 413, 415]
    if query is not None or "{" in path:
        standard += [400]
    doc = RouteDoc(
        path=path,
        method=method,
        tag=tag,
        body=body,
        body_required=body_required,
        query=query,
        responses=responses,
        errors=tuple(sorted({*standard, *errors})),
    )

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        ROUTES[(path, method)] = doc
        handler = answer_errors(view, bp, require_identity=True)
        return bp.route(path, methods=[method], authorizer=IAM)(handler)

    return register


# -- errors ---------------------------------------------------------------------------------------------
def _error_for(exc: Exception, workload_in: Location = "path") -> ApiError | None:
    # Imported here, not at module level: the REST API's error mapping must not make every other function's
    # cold start pay for the use cases that define these exceptions.
    from chalicelib.adapters.executions import ExecutionConflict
    from chalicelib.adapters.ledger import StateConflict
    from chalicelib.adapters.locks import LockHeld
    from chalicelib.adapters.plan_store import BrokenPlans, UnknownWorkload
    from chalicelib.services import failback_ops
    from chalicelib.services.console import OperationConflict
    from chalicelib.services.executions import UnknownExecution
    from chalicelib.services.unavailable import FeatureUnavailable

    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, UnknownWorkload):
        return ApiError(
            404,
            "NotFound",
            str(exc),
            [api().Problem(field="workload", location=workload_in, problem=str(exc))],
        )
    if isinstance(exc, UnknownExecution):
        return ApiError(
            404, "NotFound", str(exc), [api().Problem(field="id", location="path", problem=str(exc))]
        )
    if isinstance(exc, OperationConflict):
        links = api().execution_links(exc.execution) if exc.execution else None
        return ApiError(409, "Conflict", str(exc), execution=links)
    if isinstance(exc, LockHeld):
        links = api().execution_links(exc.info.holder) if exc.info.holder.startswith("arn:") else None
        return ApiError(409, "Conflict", str(exc), execution=links)
    if isinstance(exc, failback_ops.ControlRefused | ExecutionConflict):
        return ApiError(409, "Conflict", str(exc))
    if isinstance(exc, FeatureUnavailable):
        return ApiError(501, "NotImplemented", str(exc))
    if isinstance(exc, BrokenPlans):
        # Not the caller's fault: a stored plan is invalid. Say which, so an operator can fix it.
        problems = [
            api().Problem(field=p.field or "plan", location="plan", problem=str(p)) for p in exc.problems
        ]
        return ApiError(500, "PlanStoreInvalid", "some stored DR plans are invalid", problems)
    if isinstance(exc, StateConflict) or is_transient(exc):
        return ApiError(
            503,
            "ServiceUnavailable",
            f"AWS is throttling or failing, try again: {type(exc).__name__}",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    return None


def answer_errors(view: Callable[..., Any], bp: Blueprint, *, require_identity: bool) -> Callable[..., Any]:
    @wraps(view)
    def handler(**kwargs: Any) -> Any:
        try:
            if require_identity:
                caller(bp)
            return view(**kwargs)
        except Exception as exc:
            error = _error_for(exc, "path" if "workload" in kwargs else "query")
            if error is None:
                raise  # a bug: Chalice logs it and answers 500 (normalised by `error_shape`)
            level = logger.warning if error.status >= 500 else logger.info
            level("request refused", status=error.status, code=error.body.code, reason=error.body.message)
            emit("ApiRefused", 1, status=str(error.status))
            return error.response()

    return handler


def error_shape(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware: Chalice's own errors (415, 405, unhandled 500) get the API's error shape too."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        response.body = (
            api()
            .ErrorBody(code=str(body["Code"]), message=str(body["Message"]))
            .model_dump(mode="json", exclude_none=True)
        )
    for key, value in JSON_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


# -- identity -------------------------------------------------------------------------------------------
def caller(bp: Blueprint) -> str:
    """The IAM identity API Gateway verified (userArn, else caller); 403 when there is none.

    In AWS the IAM authorizer guarantees one; refusing without it keeps a misconfigured gateway (or
    `chalice local`, which does not check SigV4) from ever running an anonymous request.
    """
    context = getattr(bp.current_request, "context", None) or {}
    identity = context.get("identity") or {}
    who = identity.get("userArn") or identity.get("caller")
    if not isinstance(who, str) or not who.strip():
        raise ApiError(403, "Forbidden", "no verified IAM identity on the request (sign it with SigV4)")
    return who.strip()[:512]


# -- parsing --------------------------------------------------------------------------------------------
def _message(error: Any, model: type[BaseModel]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    got = describe_value(error.get("input"))
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown field (expected one of: {', '.join(model.model_fields)})"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", ""))) or [str(ctx.get("expected"))]
        return f"expected one of: {', '.join(choices)} (got {got})"
    if kind in ("string_type", "bool_type", "int_type", "float_type", "bool_parsing", "int_parsing"):
        wanted = {"string": "a string", "bool": "true or false", "int": "a whole number", "float": "a number"}
        return f"expected {wanted[kind.split('_')[0]]} (got {got})"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        return f"does not match {ctx.get('pattern')} (got {got})"
    if kind == _plan_rules().RULE_ERROR:
        return str(error["msg"])
    msg = str(error["msg"])
    return msg[:1].lower() + msg[1:]


def problems_of(exc: ValidationError, model: type[BaseModel], location: Location) -> list[Problem]:
    out: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == _plan_rules().RULE_ERROR:
            loc += tuple((error.get("ctx") or {}).get("at", ()))
        name = ".".join(str(p) for p in loc) or location
        problem = api().Problem(field=name, location=location, problem=_message(error, model))
        if problem not in out:
            out.append(problem)
    return out


def parse_body(bp: Blueprint, model: type[M], *, required: bool = True) -> M:
    request = bp.current_request
    try:
        raw = request.raw_body
    except (UnicodeError, ValueError):  # undecodable text or base64
        raise bad_request("the body is not UTF-8 JSON", [_body_problem("not UTF-8 JSON")]) from None
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if len(raw) > api().MAX_BODY_BYTES:
        raise ApiError(
            413,
            "PayloadTooLarge",
            f"the body is {len(raw)} bytes; at most {api().MAX_BODY_BYTES} are accepted",
            [_body_problem(f"larger than {api().MAX_BODY_BYTES} bytes")],
        )
    if not raw.strip():
        if required:
            raise bad_request("a JSON object body is required", [_body_problem("missing")])
        data: Any = {}
    else:
        from chalicelib.models import strict_json

        try:
            data = strict_json.loads(raw)
        except strict_json.DuplicateKey as exc:
            # Last-one-wins would let `"dry_run": true, ..., "dry_run": false` run for real.
            problem = api().Problem(field=exc.key, location="body", problem="given more than once")
            raise bad_request(f"the body names {exc.key!r} more than once", [problem]) from None
        except strict_json.NotJson as exc:
            raise bad_request(
                f"the body is not valid JSON: {exc}", [_body_problem("not valid JSON")]
            ) from None
    if not isinstance(data, dict):
        what = describe_value(data)
        raise bad_request(
            f"the body must be a JSON object (got {what})",
            [_body_problem(f"expected a JSON object (got {what})")],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = problems_of(exc, model, "body")
        raise bad_request(_summary(problems), problems) from None


def parse_query(bp: Blueprint, model: type[M]) -> M:
    params = bp.current_request.query_params
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    if params is not None:
        for key in params:
            values = params.getlist(key)
            if len(values) > 1:
                problems.append(api().Problem(field=key, location="query", problem="given more than once"))
            data[key] = values[-1]
    if problems:
        raise bad_request(_summary(problems), problems)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = problems_of(exc, model, "query")
        raise bad_request(_summary(problems), problems) from None


def workload_param(value: str) -> str:
    if not isinstance(value, str) or not _workload_pattern().match(value):
        problem = api().Problem(
            field="workload",
            location="path",
            problem=f"expected 3-40 lowercase letters, digits and hyphens (got {describe_value(value)})",
        )
        raise bad_request(_summary([problem]), [problem])
    return value


def execution_param(value: str) -> ExecutionRef:
    try:
        return api().parse_execution_id(value)
    except ValueError as exc:
        problem = api().Problem(field="id", location="path", problem=str(exc))
        raise bad_request(_summary([problem]), [problem]) from None


def _body_problem(text: str) -> Problem:
    return api().Problem(field="body", location="body", problem=text)


def _summary(problems: list[Problem]) -> str:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{first.location} {first.field}: {first.problem}{more}"


# -- answers --------------------------------------------------------------------------------------------
def reply(model: BaseModel, status: int = 200) -> Response:
    return Response(body=model.model_dump(mode="json"), status_code=status, headers=dict(JSON_HEADERS))
