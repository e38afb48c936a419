"""Powertools attached to Chalice: Lambda context in every log line, metrics flushed per invocation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from chalicelib.observability import logger, metrics

# Functions that already ran in this process. In Lambda a process serves one function, so this holds at
# most one name; the local cloud runs every function in one process, and each has its own cold start.
_started: set[str | None] = set()
_started_lock = threading.Lock()


def _cold_start(function_name: str | None) -> bool:
    with _started_lock:
        cold = function_name not in _started
        _started.add(function_name)
    return cold


def powertools_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice 'all' middleware: works for HTTP requests and every Lambda event type."""
    context = getattr(event, "context", None) or getattr(event, "lambda_context", None)
    if context is not None:
        function_name = getattr(context, "function_name", None)
        # Thread-local keys: the local cloud runs handlers of different functions concurrently in threads
        # of one process, and keys on the shared formatter would put one function's name on another's lines.
        logger.thread_safe_append_keys(
            function_name=function_name,
            function_request_id=getattr(context, "aws_request_id", None),
            cold_start=_cold_start(function_name),
        )
    try:
        return get_response(event)
    finally:
        # Cleared whatever happened, so a later invocation on this thread starts without these keys.
        logger.thread_safe_clear_keys()
        if metrics.metric_set:
            metrics.flush_metrics()
