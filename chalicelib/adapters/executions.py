"""Starting and inspecting Lifeboat's Step Functions executions, idempotently."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import error_code


class ExecutionConflict(RuntimeError):
    """An execution with that name exists with a different input."""


class TokenExpired(RuntimeError):
    """A task token was completed, timed out, or its execution ended."""


class Executions:
    sfn = aws.Client("stepfunctions")

    def __init__(self, prefix: str, stepfunctions: Any | None = None) -> None:
        self.prefix = prefix
        self.sfn = stepfunctions
        self._arns: dict[str, str] = {}

    def state_machine_name(self, workload: str, kind: str) -> str:
        return f"{self.prefix}-{workload}-{kind}"[:80]

    def state_machine_arn(self, workload: str, kind: str) -> str:
        name = self.state_machine_name(workload, kind)
        if name not in self._arns:
            paginator = self.sfn.get_paginator("list_state_machines")
            for page in paginator.paginate():
                for sm in page["stateMachines"]:
                    self._arns[sm["name"]] = sm["stateMachineArn"]
        if name not in self._arns:
            raise LookupError(f"state machine {name} is not deployed")
        return self._arns[name]

    def execution_arn(self, workload: str, kind: str, name: str) -> str:
        """The ARN of the execution called `name`, known before StartExecution (claims are taken for it)."""
        return self.state_machine_arn(workload, kind).replace(":stateMachine:", ":execution:") + f":{name}"

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

    def describe(self, execution_arn: str) -> dict[str, Any]:
        return dict(self.sfn.describe_execution(executionArn=execution_arn))

    def running(self, workload: str, kind: str) -> list[dict[str, Any]]:
        arn = self.state_machine_arn(workload, kind)
        resp = self.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING", maxResults=50)
        return list(resp.get("executions", []))

    def send_task_success(self, token: str, output: dict[str, Any]) -> None:
        """Complete a waitForTaskToken task; TokenExpired when the wait is already over."""
        try:
            self.sfn.send_task_success(taskToken=token, output=json.dumps(output, default=str))
        except Exception as exc:
            if error_code(exc) in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
                code = error_code(exc)
                raise TokenExpired(f"the execution no longer waits on that token ({code})") from None
            raise
