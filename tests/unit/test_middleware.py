"""The powertools middleware: each invocation's log lines carry its own function context, and only its own."""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.middleware import powertools_middleware
from chalicelib.observability import logger

CONTEXT_KEYS = ("function_name", "function_request_id", "cold_start")


@dataclass
class FakeEvent:
    """What the middleware reads from a Chalice event: the Lambda context (None for a bare HTTP request)."""

    context: Any


def _event(function_name: str) -> FakeEvent:
    return FakeEvent(SimpleNamespace(function_name=function_name, aws_request_id=str(uuid.uuid4())))


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The shared Lifeboat logger writes to a buffer; the fixture returns a reader of its JSON lines."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    # (at INFO whatever ran before in this process: the CLI, run in-process by other tests, quiets the
    # functions' logger to WARNING through POWERTOOLS_LOG_LEVEL)
    level = logger.log_level
    logger.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    finally:
        logger.setLevel(level)
        handler.setStream(previous)


def test_concurrent_handlers_of_different_functions_log_their_own_context(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given two functions whose handlers run at the same time in two threads of one process (as in the local
    # cloud), each logging twice while the other is inside its invocation too
    names = [f"lifeboat-test-{uuid.uuid4().hex[:8]}-{suffix}" for suffix in ("a", "b")]
    events = {name: _event(name) for name in names}
    inside = threading.Barrier(2, timeout=10)
    keys_after: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def handler(event: FakeEvent) -> str:
        inside.wait()  # both invocations have set their context
        logger.info("first", caller=event.context.function_name)
        inside.wait()  # both logged once, neither has finished
        logger.info("second", caller=event.context.function_name)
        return str(event.context.function_name)

    def run(name: str) -> None:
        try:
            powertools_middleware(events[name], handler)
            keys_after[name] = dict(logger.thread_safe_get_current_keys())
            logger.info("after", caller=name)
        except BaseException as exc:  # a failure in this thread fails the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in names]

    # When both run
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    # Then every line inside an invocation carries its own function name, request id and cold start
    assert not errors, errors
    lines = log_lines()
    for name in names:
        own = [line for line in lines if line.get("caller") == name and line["message"] != "after"]
        assert [line["message"] for line in own] == ["first", "second"]
        for line in own:
            assert line["function_name"] == name
            assert line["function_request_id"] == events[name].context.aws_request_id
            assert line["cold_start"] is True
    # And after the invocation no key of it remains, on the thread or on the shared logger
    for name in names:
        assert keys_after[name] == {}
        (after,) = [line for line in lines if line.get("caller") == name and line["message"] == "after"]
        assert not set(CONTEXT_KEYS) & set(after)
    assert not set(CONTEXT_KEYS) & set(logger.get_current_keys())


def test_no_key_leaks_into_the_next_invocation_on_the_same_thread(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given an invocation of a function that fails
    name = f"lifeboat-test-{uuid.uuid4().hex[:8]}"

    def failing(event: FakeEvent) -> None:
        logger.info("failing")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        powertools_middleware(_event(name), failing)

    # When the same thread then serves a request without a Lambda context, and the function again
    powertools_middleware(FakeEvent(context=None), lambda event: logger.info("no context"))
    second = _event(name)
    powertools_middleware(second, lambda event: logger.info("warm"))

    # Then the failed invocation's keys were gone for the request, and the second invocation is not cold
    failing_line, no_context, warm = log_lines()
    assert failing_line["function_name"] == name and failing_line["cold_start"] is True
    assert not set(CONTEXT_KEYS) & set(no_context)
    assert warm["function_request_id"] == second.context.aws_request_id
    assert warm["cold_start"] is False
    assert logger.thread_safe_get_current_keys() == {}


def test_cold_start_is_per_function() -> None:
    # Given a function that has run once
    seen: list[bool] = []
    first, other = (f"lifeboat-test-{uuid.uuid4().hex[:8]}-{s}" for s in ("first", "other"))

    def record(event: FakeEvent) -> None:
        seen.append(logger.thread_safe_get_current_keys()["cold_start"])

    # When it runs again, then another function runs for the first time
    for name in (first, first, other):
        powertools_middleware(_event(name), record)

    # Then the other function's first invocation is still a cold start
    assert seen == [True, False, True]
