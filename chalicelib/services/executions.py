"""Lifeboat's executions as operators see them: lists, finding one by name or ARN, and one execution's steps,
timings and decisions (from the Step Functions history and the ledger)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.history import Step, steps_from_history
from chalicelib.models.api import EXECUTION_ARN, ExecutionRef, execution_id
from chalicelib.models.ledger import LedgerEntry
from chalicelib.services.deps import Deps

DECISION_SCAN = 500  # ledger entries read to find an execution's decisions


class UnknownExecution(LookupError):
    """No Lifeboat execution (of that kind, when one is asked for) has that name or ARN."""

    def __init__(self, ref: str, kind: str | None = None) -> None:
        super().__init__(f"no {kind or 'Lifeboat'} execution {ref!r}")


class ExecutionSummary(BaseModel):
    id: str = Field(description="Use this in /executions/{id} URLs: the ARN in unpadded base64url.")
    name: str
    arn: str
    workload: str | None
    kind: str | None = Field(description="failover, failback, ... (from the state machine name).")
    status: str = Field(description="RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED.")
    started_at: datetime | None
    stopped_at: datetime | None = None
    duration_seconds: float | None = Field(None, description="Until now while running.")


class ExecutionList(BaseModel):
    executions: list[ExecutionSummary]


class ExecutionDetail(ExecutionSummary):
    requested_by: str | None = Field(None, description="Who started it: lifeboat or an IAM identity.")
    reason: str | None = None
    mode: str | None = None
    input: Any = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    steps: list[Step] = Field(description="Every state visited, in order, with timings and results.")
    decisions: list[LedgerEntry] = Field(description="Ledger entries about this execution, oldest first.")


def _utc(value: Any) -> datetime | None:
    return value.astimezone(UTC) if isinstance(value, datetime) else None


def _json(raw: Any) -> Any:
    if not isinstance(raw, str):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _workloads(d: Deps) -> list[str]:
    try:
        return [p.workload for p in d.plans.all()]
    except Exception:  # broken plans must not hide executions; names are parsed without them
        return []


def split_machine_name(machine: str, prefix: str, workloads: list[str]) -> tuple[str | None, str | None]:
    """(workload, kind) of `<prefix>-<workload>-<kind>`; workloads longest first so 'a-b' beats 'a'."""
    if not machine.startswith(f"{prefix}-"):
        return None, None
    rest = machine[len(prefix) + 1 :]
    for workload in sorted(workloads, key=len, reverse=True):
        if rest.startswith(f"{workload}-"):
            return workload, rest[len(workload) + 1 :]
    if "-" in rest:
        workload, kind = rest.rsplit("-", 1)
        return workload, kind
    return None, None


def _summary(raw: dict[str, Any], prefix: str, workloads: list[str], now: datetime) -> dict[str, Any]:
    arn = str(raw["executionArn"])
    match = EXECUTION_ARN.match(arn)
    machine = match["machine"] if match else str(raw.get("stateMachineArn", "")).rsplit(":", 1)[-1]
    workload, kind = split_machine_name(machine, prefix, workloads)
    started, stopped = _utc(raw.get("startDate")), _utc(raw.get("stopDate"))
    end = stopped or now
    return {
        "id": execution_id(arn),
        "name": str(raw.get("name") or arn.rsplit(":", 1)[-1]),
        "arn": arn,
        "workload": workload,
        "kind": kind,
        "status": str(raw.get("status", "UNKNOWN")),
        "started_at": started,
        "stopped_at": stopped,
        "duration_seconds": round((end - started).total_seconds(), 3) if started else None,
    }


def list_executions(
    d: Deps, *, workload: str | None = None, status: str | None = None, limit: int = 20
) -> ExecutionList:
    """Most recent first, across the workload's state machines (or every Lifeboat state machine)."""
    if workload is not None:
        d.plans.get(workload)  # unknown workload -> UnknownWorkload (404)
    sfn = d.executions
    workloads = _workloads(d)
    rows: list[dict[str, Any]] = []
    for machine, arn in sfn.state_machines().items():
        owner, _ = split_machine_name(machine, sfn.prefix, workloads)
        if workload is not None and owner != workload:
            continue
        rows += sfn.recent(arn, status=status, limit=limit)
    now = d.clock()
    summaries = [_summary(r, sfn.prefix, workloads, now) for r in rows]
    summaries.sort(key=lambda s: s["started_at"] or datetime.min.replace(tzinfo=UTC), reverse=True)
    return ExecutionList(executions=[ExecutionSummary(**s) for s in summaries[:limit]])


def resolve_execution(ref: ExecutionRef, d: Deps, kind: str | None = None) -> dict[str, Any]:
    """DescribeExecution of the execution `ref` names, provided it belongs to a Lifeboat state machine (of
    `kind`, when given: failback, failover...); UnknownExecution otherwise."""
    sfn = d.executions
    # The plans' workloads tell a machine's kind and order the search by name; an ARN alone needs neither.
    workloads = _workloads(d) if kind is not None or ref.arn is None else []
    kind_machines = {sfn.state_machine_name(w, kind) for w in workloads} if kind else set()

    def of_kind(machine: str) -> bool:
        # By name for the plans' workloads (a long name is cut at 80 characters), by shape for the others.
        if kind is None or machine in kind_machines:
            return True
        return split_machine_name(machine, sfn.prefix, workloads)[1] == kind

    if ref.arn is not None:
        match = EXECUTION_ARN.match(ref.arn)
        if match is None or not sfn.owns(match["machine"]) or not of_kind(match["machine"]):
            raise UnknownExecution(ref.arn, kind)
        found = sfn.find(ref.arn)
        if found is None:
            raise UnknownExecution(ref.arn, kind)
        return found
    # A name: try each Lifeboat state machine, those whose kind-workload the name starts with first.
    machines = {name: arn for name, arn in sfn.state_machines().items() if of_kind(name)}

    def likely(item: tuple[str, str]) -> int:
        workload, machine_kind = split_machine_name(item[0], sfn.prefix, workloads)
        return 0 if workload and ref.name.startswith(f"{machine_kind}-{workload}-") else 1

    for _, machine_arn in sorted(machines.items(), key=likely):
        found = sfn.find(machine_arn.replace(":stateMachine:", ":execution:") + f":{ref.name}")
        if found is not None:
            return found
    raise UnknownExecution(ref.name, kind)


def get_execution(ref: ExecutionRef, d: Deps) -> ExecutionDetail:
    desc = resolve_execution(ref, d)
    sfn = d.executions
    workloads = _workloads(d)
    summary = _summary(desc, sfn.prefix, workloads, d.clock())
    arn = summary["arn"]
    steps = steps_from_history(sfn.events(arn))
    payload = _json(desc.get("input"))
    fields = payload if isinstance(payload, dict) else {}
    decisions: list[LedgerEntry] = []
    if summary["workload"]:
        entries = d.ledger.entries(summary["workload"], limit=DECISION_SCAN)
        decisions = [e for e in reversed(entries) if e.execution == arn]
    return ExecutionDetail(
        **summary,
        requested_by=fields.get("requested_by"),
        reason=fields.get("reason"),
        mode=fields.get("mode"),
        input=payload,
        output=_json(desc.get("output")),
        error=desc.get("error"),
        cause=desc.get("cause"),
        steps=steps,
        decisions=decisions,
    )
