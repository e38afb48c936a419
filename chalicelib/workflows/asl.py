"""Shared ASL building blocks: Lambda tasks with Retry and Catch, every time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Transient failures worth retrying with backoff: Lambda service hiccups, throttling, and our own
# `TransientError` (raised by adapters after botocore's own bounded retries gave up on 5xx/throttling).
TRANSIENT_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "TransientError",
]

Resolver = Callable[[str], str]
"""Maps a task function name (e.g. "smoke_test") to its Lambda ARN, or a ${Substitution} in CloudFormation."""


def task(
    resolve: Resolver,
    function: str,
    *,
    parameters: Mapping[str, Any],
    result_path: str | None,
    next_state: str | None,
    catch_to: str | None,
    extra_retry: list[dict[str, Any]] | None = None,
    extra_catch: list[dict[str, Any]] | None = None,
    comment: str = "",
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": resolve(function),
        "Parameters": dict(parameters),
        "ResultPath": result_path,
        "Retry": [
            *(extra_retry or []),
            {"ErrorEquals": TRANSIENT_ERRORS, "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 4},
        ],
    }
    if comment:
        state["Comment"] = comment
    catches = list(extra_catch or [])
    if catch_to is not None:
        catches.append({"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": catch_to})
    if catches:
        state["Catch"] = catches
    if next_state is None:
        state["End"] = True
    else:
        state["Next"] = next_state
    return state
