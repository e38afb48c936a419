"""Fails loudly when a moto internal the local cloud's Lambda runner relies on changes (moto is pinned)."""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import version

import pytest

from localcloud import (
    crashpoints,
    lambda_runner,
    s3_replication_rules,
    sagemaker,
    sfn_events,
    sfn_programs,
    sqs_batches,
)

PINNED_MOTO = "5.2.5"
SFN_LAMBDA_UTILS = "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils"
SFN_LAMBDA_TASK = "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda"
SFN_LAMBDA_SERVICE = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda"
)

HOW_TO_FIX = (
    "localcloud/lambda_runner.py patches moto internals; re-read the moto source named here, adapt the "
    "runner, then update GUARDED_INTERNALS / this test."
)
SFN_EXECUTION = "moto.stepfunctions.parser.backend.execution"
HOW_TO_FIX_PROGRAMS = (
    "localcloud/sfn_programs.py caches moto's parsed state machine programs; re-read "
    "ExecutionWorker._get_evaluation_entrypoint, adapt the cache (or drop it), then update this test."
)
WAIT_FUNCTION = "moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function"
HOW_TO_FIX_CRASHPOINTS = (
    "localcloud/crashpoints.py (test-only) patches moto's state evaluation; re-read the moto source named "
    "here, adapt it, then update its GUARDED_INTERNALS / this test."
)
HOW_TO_FIX_EVENTS = (
    "localcloud/sfn_events.py patches moto's Step Functions engine; re-read the moto source named here, "
    "adapt it, then update its GUARDED_INTERNALS / this test."
)


def test_moto_is_the_pinned_version() -> None:
    # Given the moto version requirements-demo.txt pins
    # When we read the installed one
    installed = version("moto")

    # Then they are the same (the runner was written against this version's internals)
    assert installed == PINNED_MOTO, (
        f"moto {installed} is installed but the local cloud was verified against {PINNED_MOTO}. {HOW_TO_FIX}"
    )


@pytest.mark.parametrize(
    ("module", "qualname", "expected"),
    lambda_runner.GUARDED_INTERNALS,
    ids=[f"{m}:{q}" for m, q, _ in lambda_runner.GUARDED_INTERNALS],
)
def test_guarded_moto_internal_is_unchanged(module: str, qualname: str, expected: str) -> None:
    # Given an internal the runner relies on
    # When we look it up as moto defines it (not our replacement)
    try:
        target = lambda_runner.original(module, qualname)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"moto no longer has {module}.{qualname} ({exc}). {HOW_TO_FIX}")

    # Then its signature is the one the runner was written against
    actual = str(inspect.signature(target))
    assert actual == expected, (
        f"the signature of {module}.{qualname} changed:\n"
        f"  expected {expected}\n  actual   {actual}\n{HOW_TO_FIX}"
    )


def _source(module: str, qualname: str) -> str:
    obj: object = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return inspect.getsource(obj)  # type: ignore[arg-type]


def test_step_functions_still_call_lambda_through_the_invoke_api() -> None:
    # Given the SFN engine's Lambda helpers
    # When we read how they call Lambda and read its errors
    integration = _source(SFN_LAMBDA_UTILS, "_invoke_lambda_function")
    legacy = _source(SFN_LAMBDA_UTILS, "exec_lambda_function")
    raising = _source(SFN_LAMBDA_UTILS, "execute_lambda_function_integration")
    task_error = _source(SFN_LAMBDA_TASK, "StateTaskLambda._from_error")
    service_error = _source(SFN_LAMBDA_SERVICE, "StateTaskServiceLambda._from_error")

    # Then they still go through lambda_client.invoke (so our runner sees every call), fail on FunctionError,
    # and take the error name from the payload's errorType (so Catch on an exception class name works)
    assert "lambda_client.invoke(" in integration and "lambda_client.invoke(" in legacy, (
        f"moto's Step Functions engine no longer calls Lambda via lambda_client.invoke. {HOW_TO_FIX}"
    )
    # (and gets that client from its module's boto_client_for, which the runner replaces with a cache)
    assert "= boto_client_for(" in integration and "= boto_client_for(" in legacy, HOW_TO_FIX
    assert "FunctionError" in raising, f"SFN no longer checks FunctionError on Lambda results. {HOW_TO_FIX}"
    for source in (task_error, service_error):
        assert '["errorType"]' in source, (
            f"SFN no longer names Lambda errors after the payload's errorType; Catch/Retry on exception "
            f"class names would break. {HOW_TO_FIX}"
        )


def test_lambda_invoke_still_flags_errors_and_sqs_mappings_still_invoke() -> None:
    # Given moto's Lambda invoke path and SQS's event-source-mapping delivery
    invoke = _source("moto.awslambda.models", "LambdaFunction.invoke")
    send_sqs = _source("moto.awslambda.models", "LambdaBackend._send_sqs_message")
    sqs_models = inspect.getsource(importlib.import_module("moto.sqs.models"))

    # Then errors from _invoke_lambda become x-amz-function-error and SQS still goes through invoke()
    assert "self._invoke_lambda(" in invoke and "x-amz-function-error" in invoke, (
        f"LambdaFunction.invoke no longer delegates to _invoke_lambda / flags errors. {HOW_TO_FIX}"
    )
    assert "self.invoke(" in send_sqs, f"SQS event-source mappings no longer call invoke(). {HOW_TO_FIX}"
    assert ".send_sqs_batch(" in sqs_models, (
        f"SQS no longer delivers to Lambda via send_sqs_batch. {HOW_TO_FIX}"
    )


def test_eventbridge_still_lacks_lambda_targets_and_uses_the_attributes_we_read() -> None:
    # Given moto's Rule.send_to_targets and Rule.__init__
    send = _source("moto.events.models", "Rule.send_to_targets")
    init = _source("moto.events.models", "Rule.__init__")

    # Then moto still does not deliver to Lambda (else our wrapper would deliver twice) and the rule still
    # keeps the attributes the wrapper reads
    assert '"lambda"' not in send and "'lambda'" not in send, (
        f"moto's EventBridge now delivers to Lambda targets itself: drop the wrapper. {HOW_TO_FIX}"
    )
    for attribute in ("self.event_pattern", "self.scheduled_expression", "self.targets", "self.state"):
        assert attribute in init, f"moto's Rule no longer has {attribute}. {HOW_TO_FIX}"


def test_lambda_function_keeps_the_attributes_the_runner_reads() -> None:
    # Given LambdaFunction.__init__
    init = _source("moto.awslambda.models", "LambdaFunction.__init__")

    # Then every attribute the runner builds its context and environment from is still set there
    for attribute in (
        "self.function_name",
        "self.handler",
        "self.environment_vars",
        "self.memory_size",
        "self.timeout",
        "self.logs_group_name",
        "self.logs_backend",
        "self.version",
        "self.function_arn",
    ):
        assert attribute in init, f"moto's LambdaFunction no longer sets {attribute}. {HOW_TO_FIX}"


def test_step_functions_execution_switch_is_still_read_from_default_user_config() -> None:
    # Given moto's config and the SFN response backend selector
    from moto.core.config import default_user_config

    selector = _source("moto.stepfunctions.responses", "get_backend")

    # Then execution is still switched by default_user_config["stepfunctions"]["execute_state_machine"]
    assert "execute_state_machine" in default_user_config.get("stepfunctions", {}), HOW_TO_FIX
    assert "execute_state_machine" in selector, (
        f"moto's Step Functions no longer reads execute_state_machine. {HOW_TO_FIX}"
    )


@pytest.mark.parametrize(
    ("module", "qualname", "expected"),
    sfn_events.GUARDED_INTERNALS,
    ids=[f"{m}:{q}" for m, q, _ in sfn_events.GUARDED_INTERNALS],
)
def test_guarded_step_functions_event_internal_is_unchanged(
    module: str, qualname: str, expected: str
) -> None:
    # Given an internal the status-change emitter relies on
    # When we look it up as moto defines it (not our replacement)
    try:
        target = sfn_events.original(module, qualname)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"moto no longer has {module}.{qualname} ({exc}). {HOW_TO_FIX_EVENTS}")

    # Then its signature is the one the emitter was written against
    actual = str(inspect.signature(target))
    assert actual == expected, (
        f"the signature of {module}.{qualname} changed:\n"
        f"  expected {expected}\n  actual   {actual}\n{HOW_TO_FIX_EVENTS}"
    )


def test_step_functions_still_send_no_status_events_and_keep_what_the_emitter_reads() -> None:
    # Given moto's parser executions, their worker and the backend that stops them
    execution_module = inspect.getsource(importlib.import_module(SFN_EXECUTION))
    worker = _source(f"{SFN_EXECUTION}_worker", "ExecutionWorker._execution_logic")
    init = _source(SFN_EXECUTION, "Execution.__init__")
    reflect = _source(SFN_EXECUTION, "BaseExecutionWorkerCommunication._reflect_execution_status")

    # Then moto still sends nothing to EventBridge itself (else every event would arrive twice), the worker
    # still reports the end of every program through terminated(), which sets status and stop date first,
    # and an execution still has every attribute the event is built from
    assert not any("events" in n.split(".") for n in _imports(execution_module)), (
        f"moto's Step Functions executions now talk to EventBridge: drop localcloud/sfn_events.py. "
        f"{HOW_TO_FIX_EVENTS}"
    )
    assert "self._execution_communication.terminated()" in worker, HOW_TO_FIX_EVENTS
    for attribute in ("self.execution.stop_date", "self.execution.exec_status"):
        assert attribute in reflect, HOW_TO_FIX_EVENTS
    # and a succeeded execution's output still comes from where the emitter sets it first
    assert sfn_events.OUTPUT_SOURCE in reflect, HOW_TO_FIX_EVENTS
    for attribute in sfn_events.EXECUTION_ATTRIBUTES:
        assert attribute in init, f"moto's parser Execution no longer sets {attribute}. {HOW_TO_FIX_EVENTS}"


@pytest.mark.parametrize(
    ("module", "qualname", "expected"),
    crashpoints.GUARDED_INTERNALS,
    ids=[f"{m}:{q}" for m, q, _ in crashpoints.GUARDED_INTERNALS],
)
def test_guarded_crash_point_internal_is_unchanged(module: str, qualname: str, expected: str) -> None:
    # Given an internal the test-only crash points rely on
    # When we look it up as moto defines it (not our replacement)
    try:
        target = crashpoints.original(module, qualname)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"moto no longer has {module}.{qualname} ({exc}). {HOW_TO_FIX_CRASHPOINTS}")

    # Then its signature is the one the crash points were written against
    actual = str(inspect.signature(target))
    assert actual == expected, (
        f"the signature of {module}.{qualname} changed:\n"
        f"  expected {expected}\n  actual   {actual}\n{HOW_TO_FIX_CRASHPOINTS}"
    )


def test_a_state_still_records_its_exit_last_and_waits_and_timeouts_work_as_crashpoints_expect() -> None:
    # Given moto's state evaluation and its program's timeout
    body = _source("moto.stepfunctions.parser.asl.component.state.state", "CommonStateField._eval_body")
    program = _source("moto.stepfunctions.parser.asl.component.program.program", "Program.eval")

    # Then a state still sets its next state and records StateExited as the last thing it does (a hold after
    # it is "right after the state"), and an execution's TimeoutSeconds still end it with set_timed_out()
    # (what crashpoints' time_out emulates)
    exited, next_set = body.rfind("state_exited_event_type"), body.rfind("self._set_next(env)")
    assert exited > next_set > 0, HOW_TO_FIX_CRASHPOINTS
    assert "env.set_timed_out()" in program, HOW_TO_FIX_CRASHPOINTS
    # And a Wait still only sleeps what _get_wait_seconds says (fast_forward replaces the sleep, not the sum)
    wait = _source(WAIT_FUNCTION, "WaitFunction._eval_body")
    assert "self._get_wait_seconds(" in wait and "self._wait_interval(" in wait, HOW_TO_FIX_CRASHPOINTS


@pytest.mark.parametrize(
    ("module", "qualname", "expected"),
    sfn_programs.GUARDED_INTERNALS,
    ids=[f"{m}:{q}" for m, q, _ in sfn_programs.GUARDED_INTERNALS],
)
def test_guarded_program_cache_internal_is_unchanged(module: str, qualname: str, expected: str) -> None:
    # Given the internal the program cache replaces / When we look it up as moto defines it
    target = sfn_programs.original(module, qualname)
    source = inspect.getsource(target)
    # Then its signature is unchanged and it still only parses the machine's definition (nothing else the
    # cache would skip)
    assert str(inspect.signature(target)) == expected, HOW_TO_FIX_PROGRAMS
    assert "AmazonStateLanguageParser.parse(" in source and "state_machine_details.definition" in source, (
        HOW_TO_FIX_PROGRAMS
    )
    assert len([line for line in source.splitlines() if line.strip()]) <= 4, HOW_TO_FIX_PROGRAMS


def _imports(source: str) -> list[str]:
    import ast

    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


HOW_TO_FIX_SQS = (
    "localcloud/sqs_batches.py replaces moto's SQS-to-Lambda batch delivery; re-read the moto source named "
    "here, adapt it, then update its GUARDED_INTERNALS / this test."
)


@pytest.mark.parametrize(
    ("module", "qualname", "expected"),
    sqs_batches.GUARDED_INTERNALS,
    ids=[f"{m}:{q}" for m, q, _ in sqs_batches.GUARDED_INTERNALS],
)
def test_guarded_sqs_batch_internal_is_unchanged(module: str, qualname: str, expected: str) -> None:
    # Given an internal the batch delivery relies on / When we look it up as moto defines it
    target = sqs_batches.original(module, qualname)
    # Then its signature is unchanged
    assert str(inspect.signature(target)) == expected, HOW_TO_FIX_SQS


def test_moto_still_deletes_the_batch_it_hands_over_and_only_that() -> None:
    # Given moto's queue delivery to a mapped function (what sqs_batches relies on: the batch list it passes
    # to send_sqs_batch is the list it deletes after a success, and a failure makes the batch visible again)
    source = _source("moto.sqs.models", "Queue.add_message")
    # Then that is still how it works
    assert "send_sqs_batch(" in source and "for m in messages:" in source, HOW_TO_FIX_SQS
    assert "delete_message(" in source and "change_message_visibility(" in source, HOW_TO_FIX_SQS
    # And moto itself still ignores partial batch failures (otherwise drop localcloud/sqs_batches.py)
    moto_batch = inspect.getsource(
        sqs_batches.original("moto.awslambda.models", "LambdaBackend._send_sqs_message")
    )
    assert "batchItemFailures" not in moto_batch, (
        "moto honours batchItemFailures now: drop localcloud/sqs_batches.py"
    )


HOW_TO_FIX_REPLICATION_RULES = (
    "localcloud/s3_replication_rules.py replaces moto's GetBucketReplication answer; re-read the moto source "
    "named here (does it still make up DeleteMarkerReplication and Filter?), adapt or drop the patch, then "
    "update its GUARDED_INTERNALS / this test."
)


@pytest.mark.parametrize(
    ("module", "qualname", "expected"),
    s3_replication_rules.GUARDED_INTERNALS,
    ids=[f"{m}:{q}" for m, q, _ in s3_replication_rules.GUARDED_INTERNALS],
)
def test_guarded_replication_rules_internal_is_unchanged(module: str, qualname: str, expected: str) -> None:
    # Given the internal the local cloud's replication-rule answer replaces or reads / When looked up in moto
    obj: object = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    target = (
        s3_replication_rules._original if obj is s3_replication_rules._patched_get_bucket_replication else obj
    )
    # Then its signature is unchanged
    assert str(inspect.signature(target)) == expected, HOW_TO_FIX_REPLICATION_RULES  # type: ignore[arg-type]
    # And moto's own answer still makes the two fields up (or the patch is no longer needed)
    if qualname == "S3Response.get_bucket_replication":
        source = inspect.getsource(target)  # type: ignore[arg-type]
        assert '"DeleteMarkerReplication": {"Status": "Disabled"}' in source, HOW_TO_FIX_REPLICATION_RULES


HOW_TO_FIX_SAGEMAKER = (
    "localcloud/sagemaker.py replaces moto's canned InvokeEndpoint with routing to model servers; re-read "
    "the moto source named here, adapt it, then update its GUARDED_INTERNALS / this test."
)


@pytest.mark.parametrize(
    ("module", "qualname", "expected"),
    sagemaker.GUARDED_INTERNALS,
    ids=[f"{m}:{q}" for m, q, _ in sagemaker.GUARDED_INTERNALS],
)
def test_guarded_sagemaker_runtime_internal_is_unchanged(module: str, qualname: str, expected: str) -> None:
    # Given the InvokeEndpoint response the local SageMaker replaces / When we look it up as moto defines it
    target = sagemaker.original(module, qualname)
    # Then its signature is unchanged
    assert str(inspect.signature(target)) == expected, HOW_TO_FIX_SAGEMAKER


def test_moto_sagemaker_still_keeps_the_endpoint_attributes_the_runtime_reads() -> None:
    # Given moto's endpoint model and the runtime's URL paths
    init = _source("moto.sagemaker.models", "FakeEndpoint.__init__")
    paths = importlib.import_module("moto.sagemakerruntime.urls").url_paths
    # Then the endpoint still keeps its status and variants (with their weights), and InvokeEndpoint is still
    # served on /endpoints/<name>/invocations (the local runtime reads the endpoint name from that path)
    for attribute in ("self.endpoint_status", "self.production_variants"):
        assert attribute in init, HOW_TO_FIX_SAGEMAKER
    assert "{0}/endpoints/(?P<name>[^/]+)/invocations$" in paths, HOW_TO_FIX_SAGEMAKER
