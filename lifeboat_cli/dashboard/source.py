"""Where the dashboard's pages come from: the same services the CLI and the API call, with the operator's own
credentials (this process's), and the operator's controls recorded under their identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel, Field

from chalicelib.models.drill import DrillSummary
from chalicelib.models.failback import ControlOutcome
from chalicelib.models.ledger import LedgerEntry
from chalicelib.services.deps import Deps
from chalicelib.services.executions import ExecutionSummary
from lifeboat_cli.dashboard.steps import CONTROLS, ExecutionView, execution_view
from lifeboat_cli.dashboard.views import WorkloadView, workload_view


class Overview(BaseModel):
    workloads: list[WorkloadView]
    recent: list[ExecutionSummary] = Field(description="Recent executions, most recent first.")
    drills: list[DrillSummary] = Field(description="Finished drills, newest first.")
    problems: list[str] = Field(default_factory=list, description="What could not be read, and why.")


class ExecutionPage(BaseModel):
    view: ExecutionView
    decisions: list[LedgerEntry] = Field(description="Ledger entries about this execution, oldest first.")


class Source(Protocol):
    """What the web app needs; `ServiceSource` reads AWS (or the local cloud), tests hand in a fake."""

    identity: str

    def overview(self) -> Overview: ...

    def execution(self, ref: str) -> ExecutionPage: ...

    def control(self, ref: str, action: str, reason: str) -> ControlOutcome: ...

    def ledger(self, workload: str, limit: int) -> list[LedgerEntry]: ...

    def verification(self, workload: str) -> dict[str, Any] | None: ...

    def drill_report(self, drill_id: str) -> str: ...


class UnknownItem(LookupError):
    """No such execution, workload or drill (the page answers 404)."""


class Refused(RuntimeError):
    """The control does not apply now (the page shows why)."""


class ServiceSource:
    """The dashboard's reads and controls through chalicelib's services (`deps` as the CLI builds it)."""

    def __init__(self, deps: Callable[[], Deps], identity: str, *, recent: int = 15) -> None:
        self._deps = deps
        self.identity = identity
        self._recent = recent

    def overview(self) -> Overview:
        from chalicelib.adapters.evidence import latest_key
        from chalicelib.services.drills import list_drills
        from chalicelib.services.executions import list_executions
        from chalicelib.services.status import workload_status

        d = self._deps()
        problems: list[str] = []
        workloads = []
        for plan in d.plans.all():
            status = workload_status(plan, d, probe=False, recent=0)
            running = []
            for r in status.running:
                try:
                    running.append(self._page(r["arn"], d).view)
                except LookupError as exc:  # it ended and went away between the two reads
                    problems.append(f"{r['name']}: {exc}")
            try:
                report = d.evidence.get_json(latest_key(plan.workload))
            except Exception as exc:  # a missing evidence bucket must not hide the rest
                problems.append(f"verification report of {plan.workload}: {type(exc).__name__}: {exc}")
                report = None
            assets = d.asset_states.all(plan.workload)
            workloads.append(
                workload_view(
                    status, plan, assets, report if isinstance(report, dict) else None, running, now=d.clock()
                )
            )
        recent = list_executions(d, limit=self._recent).executions
        try:
            drills = list_drills(d, limit=10)
        except Exception as exc:
            problems.append(f"drills: {type(exc).__name__}: {exc}")
            drills = []
        return Overview(workloads=workloads, recent=recent, drills=drills, problems=problems)

    def execution(self, ref: str) -> ExecutionPage:
        return self._page(ref, self._deps())

    def _page(self, ref: str, d: Deps) -> ExecutionPage:
        from chalicelib.adapters.plan_store import UnknownWorkload
        from chalicelib.models.api import parse_execution_id
        from chalicelib.services.executions import UnknownExecution, get_execution
        from chalicelib.services.failback_ops import describe_failback

        try:
            detail = get_execution(parse_execution_id(ref), d)
        except (ValueError, UnknownExecution) as exc:
            raise UnknownItem(str(exc)) from None
        plan = None
        if detail.workload:
            try:
                plan = d.plans.get(detail.workload)
            except UnknownWorkload:
                plan = None
        control = None
        if detail.kind == "failback" and detail.status == "RUNNING":
            try:
                control = describe_failback(detail.arn, d)
            except UnknownExecution:
                control = None
        view = execution_view(detail, plan, now=d.clock(), control=control)
        return ExecutionPage(view=view, decisions=detail.decisions)

    def control(self, ref: str, action: str, reason: str) -> ControlOutcome:
        from chalicelib.models.api import parse_execution_id
        from chalicelib.services import failback_ops as ops
        from chalicelib.services.executions import UnknownExecution

        controls: dict[str, Callable[[str, str, Deps, str], ControlOutcome]] = {
            "approve": ops.approve,
            "reject": ops.reject,
            "pause": ops.pause,
            "resume": ops.resume,
            "abort": ops.abort,
            "fast-track": ops.fast_track,
        }
        if action not in CONTROLS:
            raise UnknownItem(f"no control {action!r}")
        try:
            parsed = parse_execution_id(ref)
        except ValueError as exc:
            raise UnknownItem(str(exc)) from None
        try:
            return controls[action](parsed.arn or parsed.name, self.identity, self._deps(), reason)
        except UnknownExecution as exc:
            raise UnknownItem(str(exc)) from None
        except ops.ControlRefused as exc:
            raise Refused(str(exc)) from None

    def ledger(self, workload: str, limit: int) -> list[LedgerEntry]:
        d = self._deps()
        self._workload(workload, d)
        return d.ledger.entries(workload, limit=limit)

    def verification(self, workload: str) -> dict[str, Any] | None:
        from chalicelib.adapters.evidence import latest_key

        d = self._deps()
        self._workload(workload, d)
        report = d.evidence.get_json(latest_key(workload))
        return report if isinstance(report, dict) else None

    def drill_report(self, drill_id: str) -> str:
        from chalicelib.domain.drill_report import render_html
        from chalicelib.services.drills import UnknownDrill, get_drill

        d = self._deps()
        try:
            record = get_drill(drill_id, d)
        except UnknownDrill as exc:
            raise UnknownItem(str(exc)) from None
        return d.drill_evidence.report(record.workload, drill_id, "html") or render_html(record)

    @staticmethod
    def _workload(workload: str, d: Deps) -> None:
        from chalicelib.adapters.plan_store import UnknownWorkload

        try:
            d.plans.get(workload)
        except UnknownWorkload as exc:
            raise UnknownItem(str(exc)) from None
