"""The local cloud's Lambda runtime: moto's Lambda functions run the real Chalice handlers in-process.

moto's stock Lambda needs Docker (absent here) and its "simple" mode runs no code, and moto's EventBridge does
not deliver to Lambda targets. This is the only module that patches moto; `GUARDED_INTERNALS` lists every moto
internal it relies on and tests/integration/test_moto_guard.py fails loudly when one of them changes.

Paths into the runner:
- Lambda Invoke API, Step Functions Task states (the bare function ARN and `arn:aws:states:::lambda:invoke`;
  moto's SFN engine calls the Invoke API over HTTP on localhost:MOTO_PORT) and SQS event-source mappings
  (moto's SendMessage calls `LambdaBackend.send_sqs_batch` -> `LambdaFunction.invoke` synchronously) all
  end in `LambdaFunction._invoke_lambda`, which is replaced.
- EventBridge rules: `Rule.send_to_targets` is wrapped; Lambda targets are invoked asynchronously (a daemon
  thread, like EventBridge's asynchronous invocation), every other target goes to moto's own method.
  A rule with a ScheduleExpression and no EventPattern matches no event (moto matches it to every event).
- Schedules: moto never fires a rule on its schedule; localcloud/schedules.py decides when one is due and
  hands the "Scheduled Event" to `send_scheduled`, which delivers it to the rule's targets the same way.

moto's Step Functions engine builds a new boto3 client for every Lambda task it runs (a few milliseconds
each); the runner gives it one client per region and server port instead (clients are thread-safe).

`current_invocation()` names the function whose handler runs on this thread (localcloud/iam.py checks its AWS
calls against that function's role). Threads a handler starts (a thread pool listing shards, a writer) run
with the function's identity too, as they would inside its Lambda sandbox.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import logging
import os
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from moto.awslambda.models import LambdaFunction
from moto.events.models import Rule

logger = logging.getLogger(__name__)

# Chalice writes "app.<python function name>" into the Handler of every function declared on the app object
# (and "app.app" for the REST API); blueprint functions carry their blueprint module instead.
APP_MODULE = "app"

SFN_LAMBDA_UTILS = "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils"

# (module, qualified attribute, inspect.signature string) of every moto internal this module relies on.
GUARDED_INTERNALS: list[tuple[str, str, str]] = [
    (
        "moto.awslambda.models",
        "LambdaFunction._invoke_lambda",
        "(self, event: 'str | None' = None) -> 'tuple[str, bool, str]'",
    ),
    (
        "moto.awslambda.models",
        "LambdaFunction.invoke",
        "(self, body: 'str', request_headers: 'Any', response_headers: 'Any') -> 'str | bytes'",
    ),
    ("moto.awslambda.models", "LambdaFunction.save_logs", "(self, output: 'str') -> 'None'"),
    (
        "moto.awslambda.models",
        "LambdaBackend.get_function",
        "(self, function_name_or_arn: 'str', qualifier: 'str | None' = None) -> 'LambdaFunction'",
    ),
    (
        "moto.awslambda.models",
        "LambdaBackend.send_sqs_batch",
        "(self, function_arn: 'str', messages: 'Any', queue_arn: 'str') -> 'bool'",
    ),
    (
        "moto.awslambda.models",
        "LambdaBackend._send_sqs_message",
        "(self, function_arn: 'str', message: 'Any', queue_arn: 'str') -> 'bool'",
    ),
    ("moto.awslambda.utils", "get_backend", "(account_id: str, region: str) -> 'LambdaBackend'"),
    (
        "moto.events.models",
        "Rule.send_to_targets",
        "(self, original_event: 'EventMessageType', transform_input: 'bool' = True) -> 'None'",
    ),
    ("moto.events.models", "EventPattern.matches_event", "(self, event: 'EventMessageType') -> 'bool'"),
    ("moto.events.models", "EventPattern.get_pattern", "(self) -> 'dict[str, Any]'"),
    ("moto.events.models", "EventPattern.load", "(raw_pattern: 'str | None') -> 'EventPattern'"),
    (
        "moto.events.models",
        "EventsBackend.describe_rule",
        "(self, name: 'str', event_bus_arn: 'str | None') -> 'Rule'",
    ),
    (
        "moto.events.utils",
        "EventTemplateParser.parse",
        "(input_template: str, input_paths_map: dict[str, typing.Any], "
        "event: moto.events.utils.EventMessageType) -> dict[str, typing.Any]",
    ),
    ("moto.logs.models", "LogsBackend.ensure_log_group", "(self, log_group_name: str) -> None"),
    (
        "moto.moto_server.threaded_moto_server",
        "ThreadedMotoServer.__init__",
        "(self, ip_address: str = '0.0.0.0', port: int = 5000, verbose: bool = True)",
    ),
    (
        "moto.moto_server.threaded_moto_server",
        "ThreadedMotoServer.get_host_and_port",
        "(self) -> tuple[str, int]",
    ),
    ("moto.moto_server.threaded_moto_server", "ThreadedMotoServer.stop", "(self) -> None"),
    (
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
        "execute_lambda_function_integration",
        "(env: moto.stepfunctions.parser.asl.eval.environment.Environment, parameters: dict, region: str, "
        "state_credentials: moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials."
        "StateCredentials) -> None",
    ),
    (
        "moto.stepfunctions.parser.asl.utils.boto_client",
        "boto_client_for",
        "(region: str, service: str, state_credentials: Any = None) -> botocore.client.BaseClient",
    ),
    (
        SFN_LAMBDA_UTILS,
        "boto_client_for",
        "(region: str, service: str, state_credentials: Any = None) -> botocore.client.BaseClient",
    ),
]


@dataclass
class LambdaContext:
    """The `context` argument of a Lambda handler (the attributes powertools and Chalice read)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float = field(repr=False)
    client_context: Any = None
    identity: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Invocation:
    """The Lambda function whose handler runs on a thread."""

    function_name: str
    region: str
    function_arn: str


FaultWhen = Literal["before", "after"]
FaultHook = Callable[[str, Any], "FaultWhen | None"]


class InjectedFault(RuntimeError):
    """A handler failure injected by a test (the Step Functions error name is this class's name)."""


@dataclass
class _State:
    handler_module: str = APP_MODULE
    home_region: str | None = None  # functions elsewhere get their environment per invocation
    originals: dict[str, Any] = field(default_factory=dict)
    # Values os.environ held before the runner first overwrote a key, restored by uninstall().
    environ_before: dict[str, str | None] = field(default_factory=dict)
    pending: set[threading.Thread] = field(default_factory=set)
    # Test seam (localcloud.crashpoints): may make one invocation fail, see set_fault_hook.
    fault_hook: FaultHook | None = None
    # Lambda clients of the Step Functions engine, by (region, service, MOTO_PORT).
    sfn_clients: dict[tuple[str, str, str | None], Any] = field(default_factory=dict)


_state = _State()
_current = threading.local()
# Threads started while a handler runs, and whose invocation they belong to.
_inherited: weakref.WeakKeyDictionary[threading.Thread, Invocation] = weakref.WeakKeyDictionary()
_inherited_lock = threading.Lock()
_install_lock = threading.Lock()
_clients_lock = threading.Lock()
_environ_lock = threading.Lock()
_pending_lock = threading.Lock()


# --------------------------------------------------------------------------------------------- the runner


def invoke(function: LambdaFunction, event: Any) -> tuple[str, bool, str]:
    """Run `function`'s handler on `event`; returns (JSON payload, errored, log text) like moto's runner."""
    request_id = str(uuid.uuid4())
    stream = f"{datetime.now(UTC):%Y/%m/%d}/[{function.version}]{request_id.replace('-', '')}"
    context = LambdaContext(
        function_name=function.function_name,
        function_version=str(function.version),
        invoked_function_arn=function.function_arn,
        memory_limit_in_mb=int(function.memory_size),
        aws_request_id=request_id,
        log_group_name=function.logs_group_name,
        log_stream_name=stream,
        deadline=time.monotonic() + float(function.timeout),
    )
    started = time.monotonic()
    errored = True
    try:
        handler = _resolve_handler(function.handler or "")
    except ImportError as exc:
        payload = _error_payload(exc, "Runtime.ImportModuleError", request_id)
    except AttributeError as exc:
        payload = _error_payload(exc, "Runtime.HandlerNotFound", request_id)
    else:
        decoded = _decode_event(event)
        hook = _state.fault_hook
        fault = hook(function.function_name, decoded) if hook is not None else None
        try:
            if fault == "before":
                raise InjectedFault(f"{function.function_name} failed before doing anything (injected)")
            with _function_environment(function), _running_as(function):
                result = handler(decoded, context)
            if fault == "after":
                raise InjectedFault(f"{function.function_name} did its work, then failed (injected)")
        except Exception as exc:  # noqa: BLE001 - the Lambda runtime turns every handler error into a payload
            payload = _error_payload(exc, type(exc).__name__, request_id)
        else:
            try:
                payload = json.dumps(result)
                errored = False
            except (TypeError, ValueError) as exc:
                payload = _error_payload(exc, "Runtime.MarshalError", request_id)
    duration_ms = (time.monotonic() - started) * 1000
    lines = [f"START RequestId: {request_id} Version: {function.version}"]
    if errored:
        lines.append(payload)
    lines.append(f"END RequestId: {request_id}")
    lines.append(f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms")
    logs = "\n".join(lines)
    _save_logs(function, logs)
    return payload, errored, logs


def current_invocation() -> Invocation | None:
    """The function whose handler runs on this thread (or started it), None outside any invocation."""
    found = getattr(_current, "invocation", None)
    if found is not None:
        return found
    with _inherited_lock:
        return _inherited.get(threading.current_thread())


@contextlib.contextmanager
def outside_invocation() -> Iterator[None]:
    """The local cloud's own work done on a handler's thread (a drill's in-process fault injector): not the
    function's calls, so not checked against its role."""
    before = getattr(_current, "invocation", None)
    thread = threading.current_thread()
    with _inherited_lock:
        inherited = _inherited.pop(thread, None)
    _current.invocation = None
    try:
        yield
    finally:
        _current.invocation = before
        if inherited is not None:
            with _inherited_lock:
                _inherited[thread] = inherited


@contextlib.contextmanager
def running_as(invocation: Invocation) -> Iterator[None]:
    """This thread runs `invocation`'s handler (tests calling a handler in-process, as API Gateway would)."""
    before = getattr(_current, "invocation", None)
    _current.invocation = invocation
    try:
        yield
    finally:
        _current.invocation = before


def _running_as(function: LambdaFunction) -> contextlib.AbstractContextManager[None]:
    return running_as(Invocation(function.function_name, function.region, function.function_arn))


def _patched_thread_start(self: threading.Thread) -> None:
    invocation = current_invocation()
    if invocation is not None:
        with _inherited_lock:
            _inherited[self] = invocation
    start = _state.originals.get("thread_start") or _THREAD_START
    start(self)


_THREAD_START = threading.Thread.start


def _sfn_client(region: str, service: str, state_credentials: Any = None) -> Any:
    # moto's boto_client_for ignores the credentials and builds the same client for the same server each time.
    key = (region, service, os.environ.get("MOTO_PORT"))
    with _clients_lock:
        client = _state.sfn_clients.get(key)
        if client is None:
            build = _state.originals.get("boto_client_for") or original(SFN_LAMBDA_UTILS, "boto_client_for")
            client = _state.sfn_clients[key] = build(region, service, state_credentials)
        return client


def fault_hook() -> FaultHook | None:
    """The hook set_fault_hook installed (a test that adds its own chains to it and puts it back)."""
    return _state.fault_hook


def set_fault_hook(hook: FaultHook | None) -> None:
    """Test seam: `hook(function_name, event)` is asked before each invocation whether it fails with
    InjectedFault "before" its handler runs, "after" it (its work done, its answer lost), or not (None)."""
    _state.fault_hook = hook


def _patched_invoke_lambda(self: LambdaFunction, event: str | None = None) -> tuple[str, bool, str]:
    return invoke(self, event)


def _decode_event(event: Any) -> Any:
    # moto's LambdaFunction.invoke hands over the parsed JSON body, or the string "{}" for an empty body.
    if event is None or event == "{}":
        return {}
    return event


def _resolve_handler(handler_setting: str) -> Callable[[Any, Any], Any]:
    module_name, _, attribute = handler_setting.rpartition(".")
    if not module_name or not attribute:
        raise AttributeError(f"Bad handler '{handler_setting}': expected <module>.<attribute>")
    # The app module is always imported first: blueprint handlers only get their middleware (powertools)
    # once the app registered the blueprint.
    app_module = importlib.import_module(_state.handler_module)
    module = app_module if module_name == APP_MODULE else importlib.import_module(module_name)
    handler = getattr(module, attribute, None)
    if handler is None or not callable(handler):
        raise AttributeError(f"Handler '{attribute}' missing on module '{module.__name__}'")
    return handler


def _error_payload(exc: BaseException, error_type: str, request_id: str) -> str:
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": error_type,
            "requestId": request_id,
            # Like the Lambda runtime, the trace starts in user code, not in the runner.
            "stackTrace": traceback.format_list(
                [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__]
            ),
        }
    )


@contextlib.contextmanager
def _function_environment(function: LambdaFunction) -> Iterator[None]:
    """The function's environment while its handler runs.

    Functions of the home region (the local cloud's own region) share one set of variables, applied to
    `os.environ` once. A copy of the app deployed in another region (localcloud/regional.py) differs in
    AWS_REGION and its buckets, and runs at the same time as the home copy: its variables are given to
    Lifeboat's settings for this invocation only (`chalicelib.settings.environment`), never to `os.environ`.
    """
    variables = {k: str(v) for k, v in (function.environment_vars or {}).items()}
    home = _state.home_region
    if home is None or function.region == home:
        _apply_environment(variables)
        yield
        return
    try:
        from chalicelib.settings import environment
    except ImportError:  # a handler module that does not use Lifeboat's settings
        _apply_environment(variables)
        yield
        return
    with environment({**variables, "AWS_REGION": function.region}):
        yield


def _apply_environment(variables: Mapping[str, Any]) -> None:
    # All functions of the app share one set of variables, so after the first call nothing changes and the
    # cached clients/settings survive. The lock only covers the comparison and the update, never the handler.
    with _environ_lock:
        changed = {k: str(v) for k, v in variables.items() if os.environ.get(k) != str(v)}
        if not changed:
            return
        for key, value in changed.items():
            _state.environ_before.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        _reset_clients()


def _restore_environment() -> None:
    with _environ_lock:
        for key, value in _state.environ_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        changed = bool(_state.environ_before)
        _state.environ_before.clear()
        if changed:
            _reset_clients()


def _reset_clients() -> None:
    try:
        from chalicelib.adapters import aws
    except ImportError:  # a handler module that does not use Lifeboat's client factory
        return
    aws.reset()


def _save_logs(function: LambdaFunction, text: str) -> None:
    try:
        function.logs_backend.ensure_log_group(function.logs_group_name)
        function.save_logs(text)
    except Exception:  # noqa: BLE001 - logs are a convenience; the invocation result matters
        logger.exception("could not store Lambda logs for %s", function.function_name)


# ---------------------------------------------------------------------------------------------- EventBridge


def _is_lambda_arn(arn: str) -> bool:
    parts = arn.split(":", 6)
    return len(parts) >= 7 and parts[2] == "lambda" and parts[5] == "function"


def _matches_events(rule: Rule) -> bool:
    """Can `rule` match an event at all? A rule with only a ScheduleExpression runs on its schedule and never
    on an event (AWS PutRule); moto loads its missing pattern as an empty one, which matches every event."""
    return not (rule.scheduled_expression and not rule.event_pattern.get_pattern())


def _patched_send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    # Before anything else, so neither our Lambda targets nor moto's own targets see the event.
    if not _matches_events(self):
        return
    lambda_targets = [t for t in self.targets if _is_lambda_arn(t["Arn"])]
    other_targets = [t for t in self.targets if not _is_lambda_arn(t["Arn"])]
    if lambda_targets and self.state != "DISABLED" and self.event_pattern.matches_event(original_event):
        for target in lambda_targets:
            payload = target_input(target, original_event, transform_input=transform_input)
            _start_async(target["Arn"], payload)
    if other_targets or not lambda_targets:
        # .get(): a concurrent uninstall() may already have put moto's method back on the class.
        original = _state.originals.get("send_to_targets", Rule.send_to_targets)
        if lambda_targets:
            # A shallow copy keeps the shared rule untouched while moto's method sees only its own targets.
            shadow = copy.copy(self)
            shadow.targets = other_targets
            original(shadow, original_event, transform_input)
        else:
            original(self, original_event, transform_input)


def send_scheduled(rule_arn: str, event: Mapping[str, Any]) -> int:
    """Deliver a "Scheduled Event" to the targets of the rule `rule_arn`, as EventBridge does when the rule's
    schedule comes due: Lambda targets asynchronously through the runner (with their Input / InputPath /
    InputTransformer), every other target through moto's own delivery. Returns how many targets it went to:
    0 when the rule is gone or disabled."""
    from moto.events.exceptions import ResourceNotFoundException
    from moto.events.models import EventPattern, events_backends

    _, _, _, region, account, resource = rule_arn.split(":", 5)
    bus, _, name = resource.removeprefix("rule/").rpartition("/")
    try:
        rule = events_backends[account][region].describe_rule(name, bus or None)
    except ResourceNotFoundException:
        return 0
    if rule.state == "DISABLED":
        return 0
    lambda_targets = [t for t in rule.targets if _is_lambda_arn(t["Arn"])]
    other_targets = [t for t in rule.targets if not _is_lambda_arn(t["Arn"])]
    stored = _moto_event(event)
    for target in lambda_targets:
        _start_async(target["Arn"], target_input(target, stored))
    if other_targets:
        # A schedule fires whatever the rule's pattern says (a rule may have both) and moto's method filters
        # on it, so moto gets a copy of the rule without one.
        shadow = copy.copy(rule)
        shadow.targets = other_targets
        shadow.event_pattern = EventPattern.load(None)
        original = _state.originals.get("send_to_targets", Rule.send_to_targets)
        original(shadow, stored)
    return len(lambda_targets) + len(other_targets)


def _moto_event(event: Mapping[str, Any]) -> dict[str, Any]:
    # The form PutEvents stores and both deliveries read (target_input and moto's method render `time` back
    # to ISO-8601): `time` in epoch seconds and an `ingestion-time`, here the scheduled time as well.
    at = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    return {**event, "time": at, "ingestion-time": at}


def target_input(target: Mapping[str, Any], event: Mapping[str, Any], *, transform_input: bool = True) -> Any:
    """What EventBridge hands a target: the event envelope or its Input / InputPath / InputTransformer."""
    envelope = {k: v for k, v in event.items() if k != "ingestion-time"}
    envelope["time"] = _iso_time(envelope.get("time"))
    if not transform_input:
        return envelope
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        matches = parse(target["InputPath"]).find(envelope)
        return matches[0].value if matches else None
    transformer = target.get("InputTransformer")
    if transformer:
        from moto.events.utils import EventMessageType, EventTemplateParser

        # The event moto stored at PutEvents is the envelope its TypedDict describes.
        message = cast(EventMessageType, {**event, "time": envelope["time"]})
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=message,
        )
    return envelope


def _iso_time(value: Any) -> Any:
    # moto stores the event time as epoch seconds; EventBridge delivers ISO-8601 UTC without fractions.
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _start_async(function_arn: str, payload: Any) -> None:
    thread = threading.Thread(
        target=_invoke_async, args=(function_arn, payload), name=f"eventbridge->{function_arn}", daemon=True
    )
    with _pending_lock:
        _state.pending.add(thread)
    thread.start()


def _invoke_async(function_arn: str, payload: Any) -> None:
    try:
        from moto.awslambda.utils import get_backend

        _, _, _, region, account, _ = function_arn.split(":", 5)
        function = get_backend(account, region).get_function(function_arn)
        result, errored, _ = invoke(function, payload)
        if errored:
            logger.error("EventBridge target %s failed: %s", function_arn, result)
    except Exception:  # noqa: BLE001 - EventBridge only counts failed invocations; nothing propagates
        logger.exception("EventBridge could not invoke %s", function_arn)
    finally:
        with _pending_lock:
            _state.pending.discard(threading.current_thread())


def drain(timeout: float = 60.0) -> bool:
    """Wait for asynchronous (EventBridge) invocations in flight; True when none is left."""
    deadline = time.monotonic() + timeout
    while True:
        with _pending_lock:
            pending = list(_state.pending)
        if not pending:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        first = pending[0]
        if first.ident is None:  # registered, not started yet (_start_async adds before it starts)
            time.sleep(min(0.01, remaining))
            continue
        first.join(remaining)


# ------------------------------------------------------------------------------------------------- install


def install(handler_module: str = APP_MODULE, home_region: str | None = None) -> None:
    """Patch moto (idempotent); Handlers "app.<name>" resolve in `handler_module` (tests use their own).
    Functions outside `home_region` get their environment per invocation (`_function_environment`)."""
    with _install_lock:
        _state.handler_module = handler_module
        _state.home_region = home_region
        if _state.originals:
            return
        sfn_lambda: Any = importlib.import_module(SFN_LAMBDA_UTILS)  # a module attribute is replaced below
        _state.originals["_invoke_lambda"] = LambdaFunction.__dict__["_invoke_lambda"]
        _state.originals["send_to_targets"] = Rule.__dict__["send_to_targets"]
        _state.originals["boto_client_for"] = sfn_lambda.boto_client_for
        LambdaFunction._invoke_lambda = _patched_invoke_lambda  # type: ignore[method-assign]
        Rule.send_to_targets = _patched_send_to_targets  # type: ignore[method-assign]
        sfn_lambda.boto_client_for = _sfn_client
        _state.originals["thread_start"] = threading.Thread.__dict__["start"]
        threading.Thread.start = _patched_thread_start  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore moto's own methods and the environment variables the runner changed (idempotent)."""
    with _install_lock:
        if _state.originals:
            LambdaFunction._invoke_lambda = _state.originals.pop("_invoke_lambda")  # type: ignore[method-assign]
            Rule.send_to_targets = _state.originals.pop("send_to_targets")  # type: ignore[method-assign]
            sfn_lambda: Any = importlib.import_module(SFN_LAMBDA_UTILS)
            sfn_lambda.boto_client_for = _state.originals.pop("boto_client_for")
            threading.Thread.start = _state.originals.pop("thread_start")  # type: ignore[method-assign]
            _state.originals.clear()
        with _clients_lock:
            _state.sfn_clients.clear()
        _state.handler_module = APP_MODULE
        _state.home_region = None
        _state.fault_hook = None
    _restore_environment()


def installed() -> bool:
    return bool(_state.originals)


def original(module: str, qualname: str) -> Any:
    """The moto attribute `module`.`qualname` as moto defines it, even while the runner is installed."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    replacements = {
        _patched_invoke_lambda: "_invoke_lambda",
        _patched_send_to_targets: "send_to_targets",
        _sfn_client: "boto_client_for",
        _patched_thread_start: "thread_start",
    }
    key = replacements.get(obj)
    return _state.originals.get(key, obj) if key else obj
