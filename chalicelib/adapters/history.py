"""Reading Lifeboat's Step Functions executions for people: listings, descriptions, event histories.

Only state machines named with Lifeboat's prefix are ever looked at, so an execution id in a URL can never
be used to read some other application's executions in the account.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import error_code

MAX_HISTORY_EVENTS = 5000  # a failback with many steps stays far below; Step Functions caps at 25,000


class ExecutionHistory:
    sfn = aws.Client("stepfunctions")

    def __init__(self, prefix: str, stepfunctions: Any | None = None) -> None:
        self.prefix = prefix
        self.sfn = stepfunctions

    def owns(self, state_machine_name: str) -> bool:
        return state_machine_name.startswith(f"{self.prefix}-")

    def state_machines(self) -> dict[str, str]:
        """name -> ARN of every Lifeboat state machine."""
        found: dict[str, str] = {}
        for page in self.sfn.get_paginator("list_state_machines").paginate():
            for sm in page["stateMachines"]:
                if self.owns(sm["name"]):
                    found[sm["name"]] = sm["stateMachineArn"]
        return found

    def executions(
        self, state_machine_arn: str, *, status: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Most recent first (the order Step Functions lists them in)."""
        kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "maxResults": min(limit, 100)}
        if status:
            kwargs["statusFilter"] = status
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            page = self.sfn.list_executions(**kwargs)
            out.extend(page.get("executions", []))
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        return out[:limit]

    def describe(self, execution_arn: str) -> dict[str, Any] | None:
        """The execution, or None when it does not exist."""
        try:
            return dict(self.sfn.describe_execution(executionArn=execution_arn))
        except Exception as exc:
            if error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn", "StateMachineDoesNotExist"):
                return None
            raise

    def events(self, execution_arn: str, *, limit: int = MAX_HISTORY_EVENTS) -> list[dict[str, Any]]:
        """The execution's history, oldest first."""
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            page = self.sfn.get_execution_history(**kwargs)
            out.extend(page.get("events", []))
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        return out[:limit]
