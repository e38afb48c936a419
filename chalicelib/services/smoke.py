"""Running a plan's golden cases against one of its endpoints and keeping the verdict."""

from __future__ import annotations

from chalicelib.domain.smoke import SmokeVerdict, verdict
from chalicelib.models.plan import DRPlan, Role
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps


def run_smoke(
    plan: DRPlan, role: Role, d: Deps, *, phase: str = "check", record: bool = True
) -> SmokeVerdict:
    endpoint = plan.endpoint_for(role)
    region = plan.region_of(role)
    timeout = plan.smoke_tests.request_timeout.total_seconds()
    invocations = [
        d.endpoints.invoke(endpoint, region, case.name, case.payload, timeout)
        for case in plan.smoke_tests.cases
    ]
    result = verdict(plan.smoke_tests, invocations, target=role, region=region, at=d.clock())
    logger.info(
        "smoke test",
        workload=plan.workload,
        target=role,
        region=region,
        phase=phase,
        passed=result.passed,
        reason=result.reason,
    )
    emit("SmokeTestPassed", 1 if result.passed else 0, workload=plan.workload, target=role)
    emit(
        "SmokeTestP95Latency",
        max(result.p95_latency_ms, 0),
        "Milliseconds",
        workload=plan.workload,
        target=role,
    )
    if record:
        entry = {
            "passed": result.passed,
            "at": result.at.isoformat(),
            "reason": result.reason,
            "phase": phase,
        }
        d.ledger.update_state(plan.workload, mutate=lambda st: {"last_smoke": {**st.last_smoke, role: entry}})
    return result


def last_smoke_passed(plan: DRPlan, d: Deps) -> dict[str, bool | None]:
    state = d.ledger.get_state(plan.workload)
    return {role: (state.last_smoke.get(role) or {}).get("passed") for role in ("primary", "secondary")}
