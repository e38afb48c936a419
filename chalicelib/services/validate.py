"""Validate a stored DR plan against the live resources it names: a dry check that changes nothing.

Each check yields findings with a severity: `error` means a failover (or failback) would fail or could not
start, `warning` means something is degraded or could not be checked, `info` is context, `ok` a pass.
A check that cannot run (access denied, throttled) becomes a finding too, never an exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from functools import partial

from pydantic import BaseModel, Field

from chalicelib.adapters import outbound
from chalicelib.adapters.assets import asset_grants, checker_for
from chalicelib.adapters.dynamo import error_code
from chalicelib.adapters.resources import ResourceReader, role_arn_of
from chalicelib.adapters.traffic import grants_for
from chalicelib.domain.permissions import LifeboatResources, Permission, required_permissions
from chalicelib.models.alarms import AlarmSnapshot
from chalicelib.models.live_checks import LiveCheck, Severity
from chalicelib.models.plan import (
    ROLES,
    DRPlan,
    HttpEndpoint,
    Role,
    SageMakerEndpoint,
)
from chalicelib.services.deps import Deps
from chalicelib.services.smoke import run_smoke

SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info", "ok")


class Finding(BaseModel):
    check: str = Field(description="endpoint, traffic, asset, alarm, notifications, state-machine, iam.")
    subject: str = Field(description="What was looked at, e.g. 'bucket fraud-data-use1 (us-east-1)'.")
    severity: Severity
    message: str


class ValidationReport(BaseModel):
    workload: str
    valid: bool = Field(description="No finding of severity error.")
    counts: dict[str, int] = Field(description="Findings per severity.")
    findings: list[Finding] = Field(description="Errors first, then warnings, info, passes.")
    permissions: list[Permission] = Field(description="IAM permissions Lifeboat's role needs for this plan.")
    iam_simulated: bool = Field(description="True when IAM SimulatePrincipalPolicy judged `permissions`.")
    principal: str | None = Field(None, description="The role the permissions were simulated for.")
    checked_at: datetime


def _failure(exc: Exception) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{error_code(exc) or type(exc).__name__}: {first_line}"[:300]


class _Findings:
    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(self, check: str, subject: str, severity: Severity, message: str) -> None:
        self.items.append(Finding(check=check, subject=subject, severity=severity, message=message))

    def guard(self, check: str, subject: str, fn: Callable[[], None]) -> None:
        """Run one check; if it cannot run, say so instead of failing the whole validation."""
        try:
            fn()
        except Exception as exc:
            self.add(check, subject, "warning", f"could not check: {_failure(exc)}")


# -- checks ---------------------------------------------------------------------------------------------
# Each check adds findings; `_Findings.guard` turns a check that cannot run into a warning.
def _sagemaker_endpoint(
    reader: ResourceReader,
    out: _Findings,
    endpoint: SageMakerEndpoint,
    region: str,
    subject: str,
    bad: Severity,
) -> None:
    desc = reader.sagemaker_endpoint(endpoint.endpoint_name, region)
    if desc is None:
        out.add("endpoint", subject, bad, f"SageMaker endpoint {endpoint.endpoint_name} does not exist")
    elif desc.get("EndpointStatus") != "InService":
        out.add("endpoint", subject, bad, f"endpoint is {desc.get('EndpointStatus')}, not InService")
    else:
        out.add("endpoint", subject, "ok", f"SageMaker endpoint {endpoint.endpoint_name} is InService")


def _smoke(plan: DRPlan, d: Deps, out: _Findings, role: Role, subject: str) -> None:
    verdict = run_smoke(plan, role, d, phase="validate", record=False)
    if verdict.passed:
        out.add("endpoint", subject, "ok", f"answers its smoke tests: {verdict.reason}")
    elif role == "secondary":
        out.add(
            "endpoint",
            subject,
            "error",
            f"fails its smoke tests, failover would be refused: {verdict.reason}",
        )
    else:
        out.add(
            "endpoint", subject, "warning", f"fails its smoke tests (alarms should fire): {verdict.reason}"
        )


def _outbound(url: str, out: _Findings, subject: str) -> None:
    # Judged without sending anything (the smoke test, when asked for, is the probe).
    try:
        outbound.check(url)
    except outbound.OutboundRefused as exc:
        # Every request to it would be refused: the smoke tests, the confirmation probe, status probes.
        out.add("endpoint", subject, "error", f"Lifeboat may not send requests to {url}: {exc}")


def _endpoints(plan: DRPlan, d: Deps, reader: ResourceReader, out: _Findings, probe: bool) -> None:
    for role in ROLES:
        endpoint = plan.endpoint_for(role)
        region = plan.region_of(role)
        subject = f"{role} endpoint ({region})"
        # A broken secondary stops a failover; a broken primary is what failover is for.
        bad: Severity = "error" if role == "secondary" else "warning"
        if isinstance(endpoint, HttpEndpoint):
            out.guard("endpoint", subject, partial(_outbound, endpoint.url, out, subject))
        if isinstance(endpoint, SageMakerEndpoint):
            out.guard(
                "endpoint", subject, partial(_sagemaker_endpoint, reader, out, endpoint, region, subject, bad)
            )
        if probe:
            out.guard("endpoint", subject, partial(_smoke, plan, d, out, role, subject))


def _read_traffic(plan: DRPlan, d: Deps, out: _Findings, subject: str) -> None:
    try:
        state = d.router.read(plan)
    except LookupError as exc:
        out.add("traffic", subject, "error", f"traffic cannot be read or moved: {exc}")
        return
    if state.active_region is None:
        out.add("traffic", subject, "warning", f"traffic is split {state.weights} (a failback in progress?)")
    else:
        out.add("traffic", subject, "ok", f"found; all traffic on {state.active_region} {state.weights}")


def _live(out: _Findings, check_name: str, check: LiveCheck) -> None:
    for finding in check.run():
        out.add(check_name, finding.subject, finding.severity, finding.message)


def _traffic(plan: DRPlan, d: Deps, out: _Findings) -> None:
    # The weights must read back; beyond that, each kind checks its own resources (adapters/traffic/).
    subject = d.router.describe(plan)
    out.guard("traffic", subject, partial(_read_traffic, plan, d, out, subject))
    for check in d.router.live_checks(plan):
        out.guard("traffic", check.subject, partial(_live, out, "traffic", check))


def _assets(plan: DRPlan, reader: ResourceReader, out: _Findings) -> None:
    for asset in plan.assets:
        for check in checker_for(asset).live_checks(plan, asset, reader):
            out.guard("asset", check.subject, partial(_live, out, "asset", check))


def _alarm_check(plan: DRPlan, d: Deps, out: _Findings) -> None:
    names = list(dict.fromkeys([*plan.trigger.alarms, *plan.failback.gate_alarms]))
    by_region = plan.trigger_alarms_by_region()  # each trigger alarm where it lives; gates in the primary
    by_region.setdefault(plan.regions.primary, [])
    by_region[plan.regions.primary] += [g for g in plan.failback.gate_alarms if g not in plan.trigger.alarms]
    found: dict[str, AlarmSnapshot] = {}
    for region, wanted in by_region.items():
        found.update({s.name: s for s in d.alarms.snapshots(wanted, region)})
    for name in names:
        if name in found:
            out.add("alarm", name, "ok", f"exists ({found[name].state})")
        elif name in plan.trigger.alarms:
            region = plan.alarm_region(name)
            out.add("alarm", name, "error", f"trigger alarm missing in {region}: it can never fire")
        else:
            out.add("alarm", name, "warning", "failback gate alarm missing: that gate can never close")


def _topic(plan: DRPlan, d: Deps, reader: ResourceReader, out: _Findings) -> None:
    arn = d.notifier.topic_arn(plan)
    if reader.topic_exists(arn):
        out.add("notifications", arn, "ok", "topic exists")
    else:
        out.add("notifications", arn, "warning", "topic missing: nobody would hear about a failover")


def _state_machine(plan: DRPlan, d: Deps, out: _Findings, kind: str, severity: Severity) -> None:
    name = d.executions.state_machine_name(plan.workload, kind)
    try:
        d.executions.state_machine_arn(plan.workload, kind)
    except LookupError:
        out.add("state-machine", name, severity, f"the {kind} state machine is not deployed")
        return
    out.add("state-machine", name, "ok", "deployed")


def _lifeboat_resources(d: Deps, account: str, region: str) -> LifeboatResources:
    return LifeboatResources(
        account=account,
        region=region,
        ledger_table=d.ledger.table_name,
        lock_table=d.locks.table_name,
        plan_bucket=str(getattr(d.plans, "bucket", "lifeboat-plans")),
        state_machine_prefix=d.executions.prefix,
    )


def _iam(
    reader: ResourceReader, principal: str | None, permissions: list[Permission], out: _Findings
) -> bool:
    """Simulate `permissions` for Lifeboat's role; False when IAM simulation is not available."""
    if principal is None:
        out.add("iam", "permissions", "info", "caller identity unknown: check the permissions listed")
        return False
    by_resource: dict[str, list[Permission]] = {}
    for perm in permissions:
        by_resource.setdefault(perm.resource, []).append(perm)
    denied = 0
    try:
        for resource, perms in by_resource.items():
            decisions = reader.simulate(principal, sorted({p.action for p in perms}), [resource])
            for perm in perms:
                decision = decisions.get(perm.action, "implicitDeny")
                if decision != "allowed":
                    denied += 1
                    out.add(
                        "iam",
                        f"{perm.action} on {perm.resource}",
                        "error",
                        f"{decision} for {principal}; needed to {perm.why}",
                    )
    except Exception as exc:
        out.add(
            "iam",
            principal,
            "info",
            f"IAM simulation unavailable ({_failure(exc)}); check the {len(permissions)} permissions listed",
        )
        return False
    if not denied:
        out.add("iam", principal, "ok", f"all {len(permissions)} permissions the plan needs are allowed")
    return True


# -- the use case ---------------------------------------------------------------------------------------
def validate_plan(
    workload: str, d: Deps, *, probe_endpoints: bool = True, simulate_iam: bool = True
) -> ValidationReport:
    plan = d.plans.get(workload)
    reader = d.resources
    out = _Findings()
    principal: str | None = None
    account: str | None = None
    try:
        caller = reader.caller()
        account, principal = caller["account"], role_arn_of(caller["arn"])
    except Exception as exc:
        out.add("iam", "caller", "warning", f"could not read Lifeboat's own identity: {_failure(exc)}")

    _endpoints(plan, d, reader, out, probe_endpoints)
    _traffic(plan, d, out)
    _assets(plan, reader, out)
    out.guard("alarm", "alarms", partial(_alarm_check, plan, d, out))
    out.guard("notifications", plan.notifications.topic, partial(_topic, plan, d, reader, out))
    out.guard("state-machine", "failover", partial(_state_machine, plan, d, out, "failover", "error"))
    out.guard("state-machine", "failback", partial(_state_machine, plan, d, out, "failback", "warning"))

    region = plan.regions.primary
    with contextlib.suppress(Exception):  # only used to name resources in the permission list
        region = d.notifier.sns.meta.region_name
    lifeboat = _lifeboat_resources(d, account or "<account>", region)
    grants = [*grants_for(plan.traffic), *asset_grants(plan)]
    permissions = required_permissions(plan, lifeboat, grants=grants)
    simulated = _iam(reader, principal, permissions, out) if simulate_iam else False
    if not simulate_iam:
        out.add(
            "iam", "permissions", "info", f"not simulated (simulate_iam false): {len(permissions)} listed"
        )

    findings = sorted(out.items, key=lambda f: SEVERITIES.index(f.severity))
    counts: dict[str, int] = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    return ValidationReport(
        workload=plan.workload,
        valid=counts["error"] == 0,
        counts=counts,
        findings=findings,
        permissions=permissions,
        iam_simulated=simulated,
        principal=principal,
        checked_at=d.clock(),
    )
