"""Powertools attached to Chalice: Lambda context in every log line, metrics flushed per invocation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.observability import logger, metrics

_cold_start = True


def powertools_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice 'all' middleware: works for HTTP requests and every Lambda event type."""
    global _cold_start
    context = getattr(event, "context", None) or getattr(event, "lambda_context", None)
    if context is not None:
        logger.append_keys(
            function_name=getattr(context, "function_name", None),
            function_request_id=getattr(context, "aws_request_id", None),
            cold_start=_cold_start,
        )
    _cold_start = False
    try:
        return get_response(event)
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()
