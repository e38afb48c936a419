"""Lifeboat's Step Functions executions: starting them idempotently, stopping them, completing their task
tokens, and reading them for people (listings, descriptions, event histories).

Only state machines named with Lifeboat's prefix are ever looked at, so an execution id in a URL can never
be used to read some other application's executions in the account.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import error_code

MAX_HISTORY_EVENTS = 5000  # a failback with many steps stays far below; Step Functions caps at 25,000
_NO_SUCH_EXECUTION = (
    "ExecutionDoesNotExist",
    "InvalidArn",
    "StateMachineDoesNotExist",
    "ValidationException",
)


class ExecutionConflict(RuntimeError):
    """An execution with that name exists with a different input."""


class TokenExpired(RuntimeError):
    """A task token was completed, timed out, or its execution ended."""


class Executions:
    """One Step Functions adapter for the whole application: the state machines named `<prefix>-...`."""

    sfn = aws.Client("stepfunctions")

    def __init__(self, prefix: str, stepfunctions: Any | None = None) -> None:
        self.prefix = prefix
        self.sfn = stepfunctions
        self._arns: dict[str, str] = {}

    # -- Lifeboat's state machines -------------------------------------------------------------------------
    def state_machine_name(self, workload: str, kind: str) -> str:
        return f"{self.prefix}-{workload}-{kind}"[:80]

    def owns(self, state_machine_name: str) -> bool:
        return state_machine_name.startswith(f"{self.prefix}-")

    def state_machines(self) -> dict[str, str]:
        """name -> ARN of every Lifeboat state machine (listed now)."""
        found: dict[str, str] = {}
        for page in self.sfn.get_paginator("list_state_machines").paginate():
            for sm in page["stateMachines"]:
                if self.owns(sm["name"]):
                    found[sm["name"]] = sm["stateMachineArn"]
        return found

    def state_machine_arn(self, workload: str, kind: str) -> str:
        """The ARN of the workload's `kind` machine (remembered: deployed machines keep their ARN)."""
        name = self.state_machine_name(workload, kind)
        if name not in self._arns:
            self._arns.update(self.state_machines())
        if name not in self._arns:
            raise LookupError(f"state machine {name} is not deployed")
        return self._arns[name]

    def execution_arn(self, workload: str, kind: str, name: str) -> str:
        """The ARN of the execution called `name`, known before StartExecution (claims are taken for it)."""
        return self.state_machine_arn(workload, kind).replace(":stateMachine:", ":execution:") + f":{name}"

    # -- running them ---------------------------------------------------------------------------------------
    def start(self, workload: str, kind: str, name: str, payload: dict[str, Any]) -> tuple[str, bool]:
        """Start (or find) the execution called `name`; returns (arn, started_now)."""
        arn = self.state_machine_arn(workload, kind)
        body = json.dumps(payload, sort_keys=True, default=str)
        try:
            resp = self.sfn.start_execution(stateMachineArn=arn, name=name, input=body)
        except Exception as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
            return self.execution_arn(workload, kind, name), False
        return str(resp["executionArn"]), True

    def stop(self, execution_arn: str, cause: str) -> bool:
        try:
            self.sfn.stop_execution(executionArn=execution_arn, error="Cancelled", cause=cause[:32768])
        except Exception as exc:
            if error_code(exc) in ("ExecutionDoesNotExist", "ValidationException"):
                return False
            raise
        return True

    def send_task_success(self, token: str, output: dict[str, Any]) -> None:
        """Complete a waitForTaskToken task; TokenExpired when the wait is already over."""
        try:
            self.sfn.send_task_success(taskToken=token, output=json.dumps(output, default=str))
        except Exception as exc:
            if error_code(exc) in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
                code = error_code(exc)
                raise TokenExpired(f"the execution no longer waits on that token ({code})") from None
            raise

    # -- reading them ---------------------------------------------------------------------------------------
    def describe(self, execution_arn: str) -> dict[str, Any]:
        """DescribeExecution of an execution known to exist (its absence raises, as botocore does)."""
        return dict(self.sfn.describe_execution(executionArn=execution_arn))

    def find(self, execution_arn: str) -> dict[str, Any] | None:
        """DescribeExecution, or None when there is no such execution (or the ARN names none)."""
        try:
            return self.describe(execution_arn)
        except Exception as exc:
            if error_code(exc) in _NO_SUCH_EXECUTION:
                return None
            raise

    def running(self, workload: str, kind: str) -> list[dict[str, Any]]:
        arn = self.state_machine_arn(workload, kind)
        resp = self.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING", maxResults=50)
        return list(resp.get("executions", []))

    def recent(
        self, state_machine_arn: str, *, status: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """A state machine's executions, most recent first (the order Step Functions lists them in)."""
        kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "maxResults": min(limit, 100)}
        if status:
            kwargs["statusFilter"] = status
        return _paged(self.sfn.list_executions, "executions", limit, kwargs)

    def events(self, execution_arn: str, *, limit: int = MAX_HISTORY_EVENTS) -> list[dict[str, Any]]:
        """The execution's history, oldest first."""
        kwargs = {"executionArn": execution_arn, "maxResults": 1000}
        return _paged(self.sfn.get_execution_history, "events", limit, kwargs)


def _paged(call: Callable[..., Any], key: str, limit: int, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """The first `limit` items (under `key`) of a listing Step Functions pages with nextToken."""
    out: list[dict[str, Any]] = []
    while len(out) < limit:
        page = call(**kwargs)
        out.extend(page.get(key, []))
        if not page.get("nextToken"):
            break
        kwargs = {**kwargs, "nextToken": page["nextToken"]}
    return out[:limit]
