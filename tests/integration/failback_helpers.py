"""Failback test helpers: re-plan a stack, put it in the failed-over state, watch a failback execution."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from chalicelib.adapters.ledger import Ledger
from chalicelib.adapters.locks import LockTable
from chalicelib.adapters.traffic import TrafficRouter
from chalicelib.models.planfile import load_plan_text
from chalicelib.services import deps as deps_module
from chalicelib.services.deps import Deps
from localcloud import lambda_runner
from localcloud.alarms import AlarmSimulator
from localcloud.resources import names
from localcloud.stack import provision_plan
from tests.integration.stack import Stack, plan_text

T = TypeVar("T")

OPERATOR = "arn:aws:iam::123456789012:user/alice"
ON_SECONDARY = {"primary": 0, "secondary": 100}
ON_PRIMARY = {"primary": 100, "secondary": 0}

# What every failback test starts from, unless it says otherwise: no bake, no approval.
DEFAULTS = {"bake": "0s", "approval_required": "false", "approval_timeout": "30s"}


def deps() -> Deps:
    return deps_module.deps()


def ledger(stack: Stack) -> Ledger:
    return Ledger(names(stack.cloud.stage).ledger_table, stack.cloud.client("dynamodb"))


def locks(stack: Stack) -> LockTable:
    return LockTable(names(stack.cloud.stage).lock_table, stack.cloud.client("dynamodb"))


def router(stack: Stack) -> TrafficRouter:
    return TrafficRouter(route53=stack.cloud.client("route53"))


def reconfigure(stack: Stack, *, primary_url: str | None = None, **replacements: str) -> Stack:
    """Re-provision the stack's plan with other settings (and state machines generated from them)."""
    text = plan_text(
        primary_url or stack.servers["primary"].url + "/invocations",
        stack.servers["secondary"].url + "/invocations",
        **{**DEFAULTS, **replacements},
    )
    plan = load_plan_text(text, "test-plan.yaml")
    artifact = stack.servers["secondary"].artifact
    stack.resources = provision_plan(stack.cloud, plan, text, stage=stack.cloud.stage, artifact=artifact)
    stack.plan = plan
    # The Lambda functions run in this process: storing the plan through their store drops its cache.
    deps_module.deps().plans.put(text, source="test-plan.yaml")  # type: ignore[attr-defined]
    return stack


def stop_running(stack: Stack, *, timeout: float = 120.0) -> None:
    """Stop every failover and failback execution and wait until none is RUNNING any more.

    StopExecution only flags the run: moto reports it ABORTED once the task in flight has returned, so a
    test that went on at once could find it still running (and a drill would refuse to start).
    """
    arns = [stack.resources.state_machines[kind] for kind in ("failover", "failback")]

    def running() -> list[str]:
        return [
            e["executionArn"]
            for arn in arns
            for e in stack.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
        ]

    for execution in running():
        stack.sfn.stop_execution(executionArn=execution, cause="stopped by the test's cleanup")
    wait_for(lambda: not running(), timeout=timeout, what="every failover/failback execution to stop")
    lambda_runner.drain(timeout=timeout)


def set_alarm(stack: Stack, name: str, state: str) -> None:
    """Script a gate alarm like CloudWatch would change it, and let its EventBridge event be handled."""
    AlarmSimulator(stack.cloud, warm_up=False).set_state(name, state, f"scripted by the test: {state}")
    lambda_runner.drain()


def failed_over(stack: Stack, **replacements: str) -> Stack:
    """The stack after a completed failover: all traffic on the secondary, state recorded an hour ago."""
    stop_running(stack)
    for server in stack.servers.values():
        server.clear_faults()
    reconfigure(stack, **replacements)
    stack.clear_tables()
    for alarm in stack.plan.failback.gate_alarms:
        set_alarm(stack, alarm, "OK")
    router(stack).shift(stack.plan, ON_SECONDARY, {})
    ledger(stack).update_state(
        stack.plan.workload,
        active_region=stack.plan.regions.secondary,
        last_failover_at=datetime.now(UTC) - timedelta(hours=1),
    )
    stack.inbox()
    return stack


class Ended(Exception):
    """The execution a wait follows ended: what the wait expects can no longer happen."""


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout: float = 60.0,
    what: str = "condition",
    progress: Callable[[], object] | None = None,
) -> T:
    """Poll `predicate` until it is true; fail naming `what` after `timeout` seconds without it.

    With `progress` (e.g. an execution's history length, see execution_progress) the timeout counts from its
    last change: a busy machine that keeps making progress is waited for, a stalled run fails; `progress`
    raising Ended fails at once (after one more look at the predicate).
    """
    deadline = time.monotonic() + timeout
    seen = progress() if progress is not None else None
    while True:
        value = predicate()
        if value:
            return value
        if progress is not None:
            try:
                now = progress()
            except Ended as exc:
                if value := predicate():
                    return value
                raise AssertionError(f"{exc} while waiting for {what}") from None
            if now != seen:
                seen, deadline = now, time.monotonic() + timeout
        if time.monotonic() > deadline:
            still = " without progress" if progress is not None else ""
            raise AssertionError(f"timed out after {timeout}s{still} waiting for {what}")
        time.sleep(0.05)


def execution_progress(sfn: Any, execution: str) -> Callable[[], int]:
    """An execution's progress: its history length while it runs; raises Ended when it has ended."""

    def progress() -> int:
        desc = sfn.describe_execution(executionArn=execution)
        if desc["status"] != "RUNNING":
            raise Ended(f"the execution ended {desc['status']} ({desc.get('error')}: {desc.get('cause')})")
        return len(sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"])

    return progress


def wait_for_share(stack: Stack, primary: int, execution: str, timeout: float = 60.0) -> None:
    """Wait until `primary`% of traffic is on the primary, while `execution` runs and makes progress."""
    wait_for(
        lambda: stack.weights()["primary"] == primary,
        timeout=timeout,
        what=f"{primary}% on the primary",
        progress=execution_progress(stack.sfn, execution),
    )


def wait_until_waiting(execution: str, kind: str, timeout: float = 60.0) -> Any:
    from chalicelib.services.failback_ops import describe_failback

    return wait_for(
        lambda: (view := describe_failback(execution, deps())).waiting_for == kind and view,
        timeout=timeout,
        what=f"the execution to wait for {kind}",
        progress=execution_progress(deps().executions.sfn, execution),
    )


@contextmanager
def before_gates(share: int, action: Callable[[], None]) -> Iterator[threading.Event]:
    """Run `action` once, just before a failback evaluates its gates at `share`% on the primary.

    A test's fault then lands in that step whatever the bake's wall time and the machine's load (waiting to
    see the share and acting after it races the bake). The returned event is set once `action` ran.
    """
    ran = threading.Event()
    before = lambda_runner.fault_hook()

    def hook(function_name: str, event: Any) -> Any:
        step = event.get("step") if isinstance(event, dict) else None
        if (
            not ran.is_set()
            and function_name.endswith("failback_gates")
            and event.get("phase") == "gate"
            and isinstance(step, dict)
            and step.get("primary") == share
        ):
            action()
            ran.set()
        return before(function_name, event) if before is not None else None

    lambda_runner.set_fault_hook(hook)
    try:
        yield ran
    finally:
        lambda_runner.set_fault_hook(before)


def failback_entries(stack: Stack, execution: str) -> list[Any]:
    """Failback ledger entries of one execution, oldest first."""
    entries = ledger(stack).entries(stack.plan.workload, limit=200, kind="failback")
    return [e for e in reversed(entries) if e.execution == execution]


def subjects(stack: Stack) -> list[str]:
    return [m.get("Subject", "") for m in stack.inbox()]


def wait_for_subject(stack: Stack, text: str, timeout: float = 60.0) -> str:
    """The first notification whose subject contains `text` (notifications are published asynchronously)."""
    seen: list[str] = []

    def found() -> str | None:
        seen.extend(subjects(stack))
        return next((s for s in seen if text in s), None)

    return wait_for(found, timeout=timeout, what=f"a notification about {text!r}")
