"""Resilience assessment, pure: the facts read about a workload's live resources -> findings and estimates.

Each rule looks at facts (`models/assessment.py`) and the plan, and yields findings with a stable id
(`<rule>:<subject>`), a severity, the plan key it concerns, the evidence and the fix. A fact that could not
be read is a finding of its own: nothing unread passes. The estimated RTO adds up what a failover waits for
(detection, sustain, the automation as measured by drills or else as modelled, DNS, warm-up); the estimated
RPO per asset is its newest measurement (replication events, verification). docs/assess.md lists the rules.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from chalicelib.models.assessment import (
    SEVERITIES,
    AssessmentFacts,
    AssessmentFinding,
    AssessmentReport,
    BucketFacts,
    Component,
    RpoEstimate,
    RtoEstimate,
    S3AssetFacts,
    Severity,
    TableAssetFacts,
    severity_rank,
)
from chalicelib.models.durations import format_duration
from chalicelib.models.plan import DRPlan, SageMakerVariantsTraffic

RTC_THRESHOLD = timedelta(minutes=15)
"""Below this RPO, S3 replication needs Replication Time Control (99.99% of objects within 15 minutes)."""
BENCH_AUTOMATION_SECONDS = 1.0
"""Lifeboat's own failover work (alarm event -> validated switch, no deliberate waits), as bench/failover.py
measures it on the local cloud (its median's target). Used when no drill or failover measured the workload."""
SERVERLESS_WARM_UP_SECONDS = 30.0
"""What a serverless SageMaker variant's cold start may add to the first requests after a switch."""
DRILL_MONTH = timedelta(days=31)
"""A monthly drill schedule is overdue when the last drill is older than this (plus a day of grace)."""
LAST_DRILLS = 5
"""How many of the last drills the measured automation time is the median of."""
TTL_SHARE = 4
"""A DNS TTL above a quarter of the RTO is flagged: clients keep going to the failed region that long."""


def _finding(
    rule: str, subject: str, severity: Severity, title: str, plan_path: str, evidence: str, fix: str
) -> AssessmentFinding:
    return AssessmentFinding(
        id=f"{rule}:{subject}",
        rule=rule,
        severity=severity,
        title=title,
        plan_path=plan_path,
        evidence=evidence,
        fix=fix,
    )


# -- S3 -----------------------------------------------------------------------------------------------------
def covering_rule(rules: Iterable[dict[str, Any]], prefix: str, replica_bucket: str) -> dict[str, Any] | None:
    """The enabled rule replicating every key under `prefix` to `replica_bucket` (a rule whose filter prefix
    is a prefix of it), if any."""
    for rule in rules:
        if rule.get("Status") != "Enabled" or _destination(rule) != replica_bucket:
            continue
        flt = rule.get("Filter") or {}
        rule_prefix = flt.get("Prefix", (flt.get("And") or {}).get("Prefix", rule.get("Prefix", ""))) or ""
        if prefix.startswith(rule_prefix):
            return rule
    return None


def _destination(rule: dict[str, Any]) -> str:
    return str((rule.get("Destination") or {}).get("Bucket", "")).rsplit(":", 1)[-1]


def _bucket_findings(b: BucketFacts, allowed: list[str] | None) -> Iterator[AssessmentFinding]:
    where = f"s3://{b.bucket} ({b.expected_region})"
    if b.exists is False:
        if b.side == "replica":
            yield _finding(
                "asset-no-replica",
                b.bucket,
                "error",
                "the replica bucket does not exist: one region holds the data",
                b.plan_path,
                f"{where}: no such bucket",
                f"create {b.bucket} in {b.expected_region} (versioned, encrypted) and replicate into it",
            )
        else:
            yield _finding(
                "bucket-missing",
                b.bucket,
                "error",
                "the source bucket does not exist",
                b.plan_path,
                f"{where}: no such bucket",
                "correct the plan's bucket name, or create the bucket",
            )
        return
    if b.versioning is not None and b.versioning != "Enabled":
        yield _finding(
            "bucket-unversioned",
            b.bucket,
            "error",
            f"{b.side} bucket is not versioned",
            b.plan_path,
            f"{where}: versioning {'never enabled' if b.versioning == 'Off' else b.versioning}",
            "enable versioning: S3 replication requires it on both buckets, and without it an overwrite "
            "or delete destroys the only copy",
        )
    if b.encryption == "none":
        yield _finding(
            "bucket-unencrypted",
            b.bucket,
            "warning",
            f"{b.side} bucket has no default encryption at rest",
            b.plan_path,
            f"{where}: no default encryption configuration",
            "set default encryption (SSE-KMS with a customer-managed key, or SSE-S3)",
        )
    if b.secure_transport_required is False:
        yield _finding(
            "bucket-insecure-transport",
            b.bucket,
            "warning",
            f"{b.side} bucket accepts requests without TLS",
            b.plan_path,
            f"{where}: no bucket policy statement denies aws:SecureTransport false",
            'add a bucket policy statement: Effect Deny, Principal *, Action s3:*, Condition {"Bool": '
            '{"aws:SecureTransport": "false"}}',
        )
    if b.region is not None and b.region != b.expected_region:
        yield _finding(
            "bucket-wrong-region",
            b.bucket,
            "error",
            f"{b.side} bucket is not in the region the plan says",
            b.plan_path,
            f"s3://{b.bucket} lives in {b.region}, the plan puts it in {b.expected_region}",
            f"name a bucket in {b.expected_region}, or correct the plan's regions",
        )
    if allowed is not None:
        places = [(b.bucket, b.region)] if b.side == "replica" else list(b.replica_locations.items())
        for bucket, region in places:
            if region is not None and region not in allowed:
                yield _finding(
                    "replica-region-not-allowed",
                    bucket,
                    "error",
                    "a copy of the data lives outside the plan's allowed regions",
                    "regions.allowed",
                    f"s3://{bucket} is in {region}; allowed: {', '.join(allowed)}",
                    f"stop replicating into {bucket}, or (if residency allows it) add {region} to "
                    "regions.allowed",
                )


def _s3_asset_findings(a: S3AssetFacts, allowed: list[str] | None) -> Iterator[AssessmentFinding]:
    yield from _bucket_findings(a.source, allowed)
    yield from _bucket_findings(a.replica, allowed)
    rules = a.source.replication_rules
    if rules is None or a.source.exists is False or a.replica.exists is False:
        return  # not read (an unreadable finding says so), or a missing bucket already said it
    to_replica = [r for r in rules if r.get("Status") == "Enabled" and _destination(r) == a.replica.bucket]
    prefix = a.source.prefix
    if not to_replica:
        yield _finding(
            "asset-no-replica",
            a.asset,
            "error",
            "nothing replicates the asset: one region holds it",
            f"{a.plan_path}.replica",
            f"no enabled replication rule on {a.source.bucket} copies to {a.replica.bucket}",
            f"add a replication rule for prefix {prefix!r} to {a.replica.bucket} (lifeboat connect "
            f"{a.asset} prints one)",
        )
        return
    rule = covering_rule(to_replica, prefix, a.replica.bucket)
    if rule is None:
        filters = sorted(
            {str((r.get("Filter") or {}).get("Prefix", r.get("Prefix", ""))) for r in to_replica}
        )
        yield _finding(
            "replication-prefix-not-covered",
            a.asset,
            "error",
            "the replication rules do not cover the asset's prefix",
            f"{a.plan_path}.source.prefix",
            f"rules to {a.replica.bucket} filter on {', '.join(repr(f) for f in filters)}; the asset is "
            f"{prefix!r}",
            f"widen a rule's filter to a prefix of {prefix!r} (or add one for it)",
        )
        return
    rtc = ((rule.get("Destination") or {}).get("ReplicationTime") or {}).get("Status") == "Enabled"
    objective = timedelta(seconds=a.rpo_seconds)
    if not rtc and objective < RTC_THRESHOLD:
        yield _finding(
            "replication-no-rtc",
            a.asset,
            "warning",
            "the asset's RPO is below 15 minutes but replication has no time bound",
            f"{a.plan_path}.rpo",
            f"rule {rule.get('ID', '?')} has no Replication Time Control; RPO {format_duration(objective)}",
            "enable S3 Replication Time Control (and replication metrics) on the rule",
        )


# -- DynamoDB -----------------------------------------------------------------------------------------------
def _table_findings(t: TableAssetFacts, plan: DRPlan) -> Iterator[AssessmentFinding]:
    allowed = plan.regions.allowed
    secondary = plan.regions.secondary
    if t.source.exists is False:
        yield _finding(
            "table-missing",
            f"{t.source.table}@{t.source.region}",
            "error",
            "the table does not exist",
            f"{t.plan_path}.table",
            f"DescribeTable {t.source.table} in {t.source.region}: not found",
            "correct the plan's table name, or create the table",
        )
    replicated = t.replica.exists is True or secondary in t.source.replica_regions
    if t.replica.exists is False and not replicated:
        yield _finding(
            "table-no-replica",
            t.asset,
            "error",
            "the table has no replica in the secondary region",
            f"{t.plan_path}.replica_table",
            f"no table {t.replica.table} in {secondary}, and {t.source.table} lists no replica there",
            f"make {t.source.table} a global table with a replica in {secondary}",
        )
    for side in (t.source, t.replica):
        if side.exists and side.pitr is not None and side.pitr != "ENABLED":
            yield _finding(
                "table-no-pitr",
                f"{side.table}@{side.region}",
                "warning",
                f"the {side.side} table has no point-in-time recovery",
                f"{t.plan_path}.{'table' if side.side == 'source' else 'replica_table'}",
                f"{side.table} ({side.region}): PointInTimeRecoveryStatus {side.pitr}",
                "enable point-in-time recovery: a replica copies corruption and deletes as faithfully as "
                "data",
            )
    if allowed is not None:
        for region in t.source.replica_regions:
            if region not in allowed:
                yield _finding(
                    "replica-region-not-allowed",
                    f"{t.source.table}@{region}",
                    "error",
                    "a copy of the data lives outside the plan's allowed regions",
                    "regions.allowed",
                    f"global table {t.source.table} has a replica in {region}; allowed: {', '.join(allowed)}",
                    f"remove the {region} replica, or (if residency allows it) add {region} to "
                    "regions.allowed",
                )


# -- the rest -----------------------------------------------------------------------------------------------
def _registry_findings(facts: AssessmentFacts) -> Iterator[AssessmentFinding]:
    for r in facts.registries:
        found = [region for region, present in r.present.items() if present]
        absent = [region for region, present in r.present.items() if present is False]
        if not absent:
            continue
        if not found:
            yield _finding(
                "registry-missing",
                r.asset,
                "error",
                "the model registry exists in no region",
                r.plan_path,
                f"{r.registry} registry not found in {', '.join(absent)}",
                "create the registry (and replicate it) before relying on it",
            )
        else:
            yield _finding(
                "registry-single-region",
                r.asset,
                "error",
                "the model registry exists in one region only",
                r.plan_path,
                f"{r.registry} registry found in {', '.join(found)}, absent from {', '.join(absent)}",
                "replicate the registry to the secondary region: after a failover it must still name the "
                "approved model",
            )


def _variant_findings(facts: AssessmentFacts) -> Iterator[AssessmentFinding]:
    for v in facts.variants:
        if not v.exists:
            yield _finding(
                "endpoint-missing",
                f"{v.endpoint}/{v.variant}@{v.region}",
                "error",
                "the SageMaker endpoint (or its variant) the plan names does not exist",
                v.plan_path,
                f"DescribeEndpoint {v.endpoint} in {v.region}: "
                + ("no such endpoint" if v.variant == "*" else f"no variant {v.variant}"),
                "create the endpoint (warm, at least 2 instances) or correct the plan",
            )
            continue
        if v.serverless or v.instance_count is None or v.instance_count >= 2:
            continue
        yield _finding(
            "endpoint-single-instance",
            f"{v.endpoint}/{v.variant}@{v.region}",
            "warning",
            "the endpoint variant runs on one instance, in one Availability Zone",
            v.plan_path,
            f"{v.endpoint} variant {v.variant} ({v.region}): {v.instance_count} x {v.instance_type or '?'}",
            "run at least 2 instances (SageMaker spreads them over Availability Zones), or autoscale with "
            "a minimum of 2",
        )


def _alarm_findings(plan: DRPlan, facts: AssessmentFacts) -> Iterator[AssessmentFinding]:
    trigger = plan.trigger
    if trigger.quorum == 1:
        yield _finding(
            "alarm-quorum-one",
            plan.workload,
            "warning",
            "a single alarm can start a failover",
            "trigger.quorum",
            f"quorum 1 of {len(trigger.alarms)} alarm(s): {', '.join(trigger.alarms)}",
            "require 2 alarms watching different signals (errors, latency, an outside canary), so one "
            "faulty alarm or metric cannot fail the workload over",
        )
    missing = [a for a in facts.alarms if a.exists is False]
    for a in missing:
        yield _finding(
            "alarm-missing",
            f"{a.name}@{a.region}",
            "error",
            "a trigger alarm does not exist",
            a.plan_path,
            f"DescribeAlarms {a.name} in {a.region}: not found",
            "create the alarm, or correct its name (or trigger.alarm_regions)",
        )
    could = len(trigger.alarms) - len(missing)
    if missing and could < trigger.quorum:
        yield _finding(
            "alarm-quorum-unreachable",
            plan.workload,
            "error",
            "fewer alarms exist than the quorum needs: no failover can start on its own",
            "trigger.quorum",
            f"quorum {trigger.quorum}, {could} of the alarms exist",
            "create the missing alarms",
        )


def _dns_findings(plan: DRPlan, facts: AssessmentFacts) -> Iterator[AssessmentFinding]:
    if facts.dns is None:
        return
    ttl = _ttl_seconds(facts)
    rto = plan.rto.total_seconds()
    if ttl * TTL_SHARE <= rto:
        return
    live = ", ".join(f"{k} {v}s" for k, v in sorted(facts.dns.live_ttl_seconds.items())) or "not read"
    yield _finding(
        "dns-ttl-too-long",
        facts.dns.record_name,
        "error" if ttl >= rto else "warning",
        "the DNS TTL is too long for the RTO",
        facts.dns.plan_path,
        f"TTL {ttl}s (plan {facts.dns.plan_ttl_seconds}s; live {live}) against an RTO of "
        f"{format_duration(plan.rto)}: resolvers keep sending clients to the failed region that long",
        f"lower the TTL to at most {int(rto // TTL_SHARE)}s (a quarter of the RTO)",
    )


def _deployment_findings(facts: AssessmentFacts) -> Iterator[AssessmentFinding]:
    dep = facts.deployment
    if dep is None or dep.found is None:
        return
    absent = [name for name in dep.expected if name not in dep.found]
    if absent:
        yield _finding(
            "lifeboat-missing-in-secondary",
            dep.region,
            "error",
            "Lifeboat itself is not deployed in the secondary region",
            dep.plan_path,
            f"state machine(s) {', '.join(absent)} not found in {dep.region}",
            f"deploy Lifeboat's stack in {dep.region} (docs/deploy.md): the failover runs there, so a "
            "regional outage of the primary must not take Lifeboat with it",
        )


def _unreadable_findings(facts: AssessmentFacts) -> Iterator[AssessmentFinding]:
    for u in facts.unreadable:
        yield _finding(
            "unreadable",
            u.subject,
            "warning",
            f"could not read {u.subject}: it is not known to be sound",
            u.plan_path,
            u.error,
            "grant Lifeboat's role the read (infra/permissions.py, assess.read) or fix the resource",
        )


def _drill_findings(plan: DRPlan, facts: AssessmentFacts, now: datetime) -> Iterator[AssessmentFinding]:
    if plan.drill.schedule != "monthly":
        return
    last = facts.history.drills[0].at if facts.history.drills else None
    if last is not None and now - last <= DRILL_MONTH + timedelta(days=1):
        return
    evidence = (
        "no drill recorded" if last is None else f"last drill {last:%Y-%m-%d} ({(now - last).days} days ago)"
    )
    yield _finding(
        "drill-overdue",
        plan.workload,
        "warning",
        "the last drill is older than the plan's drill schedule",
        "drill.schedule",
        f"{evidence}; schedule monthly",
        f"run a drill (lifeboat drill {plan.workload}) and check the monthly drill schedule runs",
    )


# -- estimates ----------------------------------------------------------------------------------------------
def _ttl_seconds(facts: AssessmentFacts) -> int:
    if facts.dns is None:
        return 0
    return max([facts.dns.plan_ttl_seconds, *facts.dns.live_ttl_seconds.values()])


def _detection(plan: DRPlan, facts: AssessmentFacts) -> Component:
    known = sorted(
        a.period_seconds * a.datapoints_to_alarm
        for a in facts.alarms
        if a.exists and a.period_seconds and a.datapoints_to_alarm
    )
    quorum = plan.trigger.quorum
    if len(known) < quorum:
        return Component(
            name="detection",
            seconds=0.0,
            basis="unknown: too few trigger alarms could be read (see findings)",
        )
    return Component(
        name="detection",
        seconds=float(known[quorum - 1]),
        basis=f"the {quorum} fastest trigger alarm(s): period x datapoints to alarm",
    )


def estimate_rto(plan: DRPlan, facts: AssessmentFacts) -> RtoEstimate:
    """Detection + what a failover waits for + DNS + warm-up, against the RTO objective."""
    parts = [_detection(plan, facts)]
    drills = [d.rto_seconds for d in facts.history.drills[:LAST_DRILLS] if d.rto_seconds is not None]
    sustain = plan.trigger.sustain.total_seconds()
    if drills:
        parts.append(
            Component(
                name="decision + automation",
                seconds=float(statistics.median(drills)),
                basis=f"median measured RTO (first alarm -> validated) of the last {len(drills)} drill(s)",
            )
        )
    elif facts.history.last_failover_rto_seconds is not None:
        parts.append(
            Component(
                name="decision + automation",
                seconds=facts.history.last_failover_rto_seconds,
                basis="measured RTO of the last failover",
            )
        )
    else:
        parts.append(Component(name="decision", seconds=sustain, basis="trigger.sustain"))
        if plan.trigger.confirmation_probe:
            parts.append(
                Component(
                    name="confirmation probe",
                    seconds=plan.smoke_tests.request_timeout.total_seconds(),
                    basis="smoke_tests.request_timeout (a failed primary answers nothing)",
                )
            )
        if plan.failover.mode == "graceful":
            parts.append(_replication_wait(plan, facts))
        parts.append(
            Component(
                name="automation",
                seconds=BENCH_AUTOMATION_SECONDS,
                basis="failover benchmark (bench/failover.py); no drill or failover measured this workload",
            )
        )
    if facts.dns is not None:
        parts.append(Component(name="DNS TTL", seconds=float(_ttl_seconds(facts)), basis="record TTL"))
    parts.append(_warm_up(plan, facts))
    total = sum(p.seconds for p in parts)
    objective = plan.rto.total_seconds()
    return RtoEstimate(
        objective_seconds=objective,
        estimated_seconds=total,
        margin_seconds=objective - total,
        components=parts,
    )


def _replication_wait(plan: DRPlan, facts: AssessmentFacts) -> Component:
    bound = plan.failover.replication_wait_timeout.total_seconds()
    lags = [m.seconds for m in _newest(facts).values()]
    if not lags:
        return Component(
            name="replication wait", seconds=bound, basis="failover.replication_wait_timeout (lag unmeasured)"
        )
    return Component(
        name="replication wait",
        seconds=min(bound, max(lags)),
        basis="largest measured replication lag, bounded by failover.replication_wait_timeout",
    )


def _warm_up(plan: DRPlan, facts: AssessmentFacts) -> Component:
    secondary = plan.regions.secondary
    cold = [v for v in facts.variants if v.region == secondary and v.serverless]
    if isinstance(plan.traffic, SageMakerVariantsTraffic):
        cold = [v for v in facts.variants if v.variant == plan.traffic.variants.secondary and v.serverless]
    if cold:
        return Component(
            name="endpoint warm-up",
            seconds=SERVERLESS_WARM_UP_SECONDS,
            basis="the secondary endpoint is serverless: cold starts",
        )
    return Component(name="endpoint warm-up", seconds=0.0, basis="warm standby (provisioned instances)")


def _newest(facts: AssessmentFacts) -> dict[str, Any]:
    newest: dict[str, Any] = {}
    epoch = datetime.min.replace(tzinfo=facts.read_at.tzinfo)
    for m in facts.history.measurements:
        current = newest.get(m.asset)
        if current is None or (m.at or epoch) > (current.at or epoch):
            newest[m.asset] = m
    return newest


def estimate_rpo(plan: DRPlan, facts: AssessmentFacts) -> list[RpoEstimate]:
    """Each asset's newest measured exposure against its objective."""
    newest = _newest(facts)
    out: list[RpoEstimate] = []
    for asset in plan.assets:
        objective = plan.asset_rpo(asset).total_seconds()
        m = newest.get(asset.name)
        if m is None:
            out.append(RpoEstimate(asset=asset.name, objective_seconds=objective, basis="never measured"))
            continue
        when = f" at {m.at:%Y-%m-%d %H:%M} UTC" if m.at else ""
        out.append(
            RpoEstimate(
                asset=asset.name,
                objective_seconds=objective,
                estimated_seconds=m.seconds,
                margin_seconds=objective - m.seconds,
                basis=f"measured by {m.source}{when}",
            )
        )
    return out


def _estimate_findings(plan: DRPlan, rto: RtoEstimate, rpo: list[RpoEstimate]) -> Iterator[AssessmentFinding]:
    if rto.margin_seconds < 0:
        parts = ", ".join(f"{c.name} {c.seconds:.0f}s" for c in rto.components)
        yield _finding(
            "rto-estimate-breach",
            plan.workload,
            "error",
            "the estimated RTO exceeds the objective",
            "objectives.rto",
            f"estimated {rto.estimated_seconds:.0f}s ({parts}) against {rto.objective_seconds:.0f}s",
            "shorten the largest parts: alarm periods or datapoints, the sustain window, the DNS TTL",
        )
    for index, r in enumerate(rpo):
        if r.estimated_seconds is None:
            yield _finding(
                "rpo-unmeasured",
                r.asset,
                "info",
                "the asset's replication lag has never been measured",
                f"assets[{index}]",
                "no replication event or verification has measured it",
                f"run lifeboat verify {plan.workload} (and wire replication events: lifeboat connect)",
            )
        elif r.margin_seconds is not None and r.margin_seconds < 0:
            yield _finding(
                "rpo-estimate-breach",
                r.asset,
                "error",
                "the asset's measured replication lag exceeds its RPO",
                f"assets[{index}].rpo",
                f"{r.estimated_seconds:.0f}s behind ({r.basis}) against {r.objective_seconds:.0f}s",
                "find why replication lags (lifeboat verify shows the objects), or enable Replication Time "
                "Control",
            )


# -- the report ---------------------------------------------------------------------------------------------
def assess(
    plan: DRPlan, facts: AssessmentFacts, *, now: datetime, trigger: str = "on-demand"
) -> AssessmentReport:
    """The findings (most severe first, then by id) and the estimates."""
    allowed = plan.regions.allowed
    found: list[AssessmentFinding] = []
    for a in facts.s3_assets:
        found += _s3_asset_findings(a, allowed)
    for t in facts.tables:
        found += _table_findings(t, plan)
    found += _registry_findings(facts)
    found += _variant_findings(facts)
    found += _alarm_findings(plan, facts)
    found += _dns_findings(plan, facts)
    found += _deployment_findings(facts)
    found += _drill_findings(plan, facts, now)
    found += _unreadable_findings(facts)
    rto, rpo = estimate_rto(plan, facts), estimate_rpo(plan, facts)
    found += _estimate_findings(plan, rto, rpo)
    unique = {f.id: f for f in found}  # one finding per weakness (a bucket shared by two assets)
    ordered = sorted(unique.values(), key=lambda f: (severity_rank(f.severity), f.id))
    return AssessmentReport(
        workload=plan.workload,
        assessed_at=now,
        trigger=trigger,
        counts={s: sum(1 for f in ordered if f.severity == s) for s in SEVERITIES},
        findings=ordered,
        rto=rto,
        rpo=rpo,
        last_drill_at=facts.history.drills[0].at if facts.history.drills else None,
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    return sign + format_duration(timedelta(seconds=round(abs(value))))


def render_markdown(report: AssessmentReport) -> str:
    """The report as Markdown (the evidence bucket keeps it next to the JSON)."""
    lines = [
        f"# Resilience assessment: {report.workload}",
        "",
        f"Assessed {report.assessed_at:%Y-%m-%d %H:%M:%S} UTC ({report.trigger}). "
        + ", ".join(f"{report.counts.get(s, 0)} {s}" for s in SEVERITIES)
        + ".",
        "",
        "## Estimated RTO",
        "",
        f"**{_seconds(report.rto.estimated_seconds)}** against an objective of "
        f"{_seconds(report.rto.objective_seconds)} (margin {_seconds(report.rto.margin_seconds)}).",
        "",
        "| part | time | basis |",
        "|---|---|---|",
        *(f"| {c.name} | {_seconds(c.seconds)} | {c.basis} |" for c in report.rto.components),
        "",
        "## Estimated RPO",
        "",
        "| asset | estimate | objective | margin | basis |",
        "|---|---|---|---|---|",
        *(
            f"| {r.asset} | {_seconds(r.estimated_seconds)} | {_seconds(r.objective_seconds)} | "
            f"{_seconds(r.margin_seconds)} | {r.basis} |"
            for r in report.rpo
        ),
        "",
        "## Findings",
        "",
    ]
    if not report.findings:
        lines.append("None.")
    for f in report.findings:
        lines += [
            f"### {f.severity.upper()} `{f.id}`: {f.title}",
            "",
            f"- plan: `{f.plan_path}`",
            f"- evidence: {f.evidence}",
            f"- fix: {f.fix}",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"
