"""Shared ASL building blocks: Lambda tasks with Retry and Catch, every time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Transient failures worth retrying with backoff: the Lambda service errors AWS recommends retrying (the
# invoke timing out on Step Functions' side included), throttling, and our own `TransientError` (raised by
# adapters after botocore's own bounded retries gave up on 5xx/throttling).
TRANSIENT_ERRORS = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "TransientError",
]

# 1, 2, 4, 8, 16 s, then 16 s each: eight retries ride out a minute or so of throttling or a Lambda service
# blip (at most 79 s of waiting per task, half that on average with full jitter). FULL jitter spreads the
# retries of the tasks that failed together (a regional event hits every running execution at once);
# MaxDelaySeconds keeps a task's retries inside the lease's step budget (domain/leases.py).
TRANSIENT_RETRY: dict[str, Any] = {
    "ErrorEquals": TRANSIENT_ERRORS,
    "IntervalSeconds": 1,
    "BackoffRate": 2.0,
    "MaxAttempts": 8,
    "MaxDelaySeconds": 16,
    "JitterStrategy": "FULL",
}

# Bound of one attempt of a Lambda task: the functions' own timeout (.chalice/config.json lambda_timeout,
# 60 s) plus room for Lambda to queue and start it. State machines that hold the workload lock have no
# execution-wide timeout (it would skip their release path); their tasks are bounded by this instead.
TASK_TIMEOUT_SECONDS = 120


def capped_retries(definition: Mapping[str, Any], seconds: int) -> dict[str, Any]:
    """`definition` with every retrier's waits capped at `seconds` (IntervalSeconds and MaxDelaySeconds, in
    nested Map/Parallel states too); what is retried, how often, the backoff rate and the jitter stay.

    For engines that really sleep through a retrier's waits (moto's, in the local cloud's tests): the runs
    take the same paths in seconds instead of minutes. Deployed definitions never go through this.
    """
    if seconds < 1:
        raise ValueError(f"a retrier waits at least 1 s (IntervalSeconds), got {seconds}")

    def cap(node: Any) -> Any:
        if isinstance(node, Mapping):
            out = {key: cap(value) for key, value in node.items()}
            if isinstance(out.get("Retry"), list):
                out["Retry"] = [
                    {
                        **retrier,
                        "IntervalSeconds": min(int(retrier.get("IntervalSeconds", 1)), seconds),
                        "MaxDelaySeconds": min(int(retrier.get("MaxDelaySeconds", seconds)), seconds),
                    }
                    for retrier in out["Retry"]
                ]
            return out
        if isinstance(node, list):
            return [cap(item) for item in node]
        return node

    return dict(cap(definition))


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
        "Retry": [*(extra_retry or []), {**TRANSIENT_RETRY, "ErrorEquals": list(TRANSIENT_ERRORS)}],
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


class StateBuilder:
    """Collects a state machine's states; every task shares the same common parameters."""

    def __init__(self, resolve: Resolver, common: Mapping[str, Any]) -> None:
        self.resolve = resolve
        self.common = dict(common)
        self.states: dict[str, Any] = {}

    def task(
        self, name: str, function: str, params: dict[str, Any], result: str | None, nxt: str | None, **kw: Any
    ) -> None:
        """A Lambda task bounded by TASK_TIMEOUT_SECONDS; anything not retried (a timeout included) goes
        to "Conclude" unless `catch_to` says otherwise."""
        state = task(
            self.resolve,
            function,
            parameters={**self.common, **params},
            result_path=result,
            next_state=nxt,
            catch_to=kw.pop("catch_to", "Conclude"),
            **kw,
        )
        state["TimeoutSeconds"] = TASK_TIMEOUT_SECONDS
        self.states[name] = state

    def lock(self, operation: str, conclude: str, next_state: str, comment: str) -> None:
        """AcquireLock, and the refusal path when another operation holds it (its lock is never released)."""
        self.task(
            "AcquireLock",
            "acquire_lock",
            {"operation": operation},
            "$.lock",
            next_state,
            catch_to=None,
            extra_catch=[
                {"ErrorEquals": ["LockHeld"], "ResultPath": "$.error", "Next": "RecordLockRefusal"},
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordLockRefusal"},
            ],
            comment=comment,
        )
        self.task(
            "RecordLockRefusal",
            conclude,
            {"outcome": "refused", "context.$": "$"},
            "$.final",
            "LockRefused",
            catch_to=None,
        )
        self.states["LockRefused"] = {
            "Type": "Fail",
            "Error": "LockHeld",
            "Cause": "another operation holds the lock",
        }
