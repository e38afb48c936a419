"""Scheduled restore tests, like AWS Backup restore testing: for every S3 asset of every plan, restore a
sample (its first keys as they are now) into a scratch prefix, verify each copy, time it, list the whole
asset, extrapolate the time a full restore would take against the plan's RTO, delete the scratch, and
publish the evidence, a ledger entry and metrics (the deployed `<workload>-restore-test-breach` alarm
watches `RestoreTestBreached`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.domain.restore import RestoreTally, plan_restore, projected_seconds, restore_test_verdict
from chalicelib.models.plan import DRPlan, S3Asset
from chalicelib.models.restore import RESTORE_PREFIX, Location, RestoreTestReport, stamp
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps

SAMPLE_OBJECTS = 100
LISTING_BUDGET_SECONDS = 30.0  # the schedule's function has 60 s; a longer listing gives a lower bound
TEST_EVIDENCE_PREFIX = "restore-tests/"
BREACH_METRIC = "RestoreTestBreached"  # infra/template.py RESTORE_TEST_BREACH_METRIC

Monotonic = Callable[[], float]


def scratch_prefix(asset: str, when: datetime) -> str:
    """Where a restore test restores to: under Lifeboat's restore prefix, the only place it may purge."""
    return f"{RESTORE_PREFIX}{asset}/test-{stamp(when)}/"


def run_restore_test(
    plan: DRPlan,
    asset: S3Asset,
    d: Deps,
    *,
    sample: int = SAMPLE_OBJECTS,
    listing_budget: float = LISTING_BUDGET_SECONDS,
    monotonic: Monotonic = time.monotonic,
) -> RestoreTestReport:
    now = d.clock()
    source = Location(region=plan.regions.primary, bucket=asset.source.bucket, prefix=asset.source.prefix)
    scratch = Location(region=source.region, bucket=source.bucket, prefix=scratch_prefix(asset.name, now))
    plans = plan_restore(d.restorer.versions(source), now, in_place=False)
    below = RESTORE_PREFIX[len(source.prefix) :] if RESTORE_PREFIX.startswith(source.prefix) else None
    wanted = (kp for kp in plans if kp.operation == "copy" and not (below and kp.key.startswith(below)))

    # The sample: the first keys, restored and verified as a real restore does them.
    started = monotonic()
    chunk = [kp for _, kp in zip(range(sample), wanted, strict=False)]
    tally, verified = RestoreTally(limit=0), 0
    failures: list[dict[str, str]] = []
    for kp in chunk:
        tally.add(kp)

    def on_applied(applied: Any) -> None:
        nonlocal verified
        if applied.error is None:
            verified += 1
        elif len(failures) < 20:
            failures.append({"key": applied.key, "error": applied.error})

    try:
        d.restorer.apply(source, scratch, chunk, on_applied=on_applied)
        copy_seconds = monotonic() - started
        # The rest of the asset, listed only (its size is what the sample is scaled to).
        listing_started, complete = monotonic(), True
        for kp in wanted:
            tally.add(kp)
            if monotonic() - listing_started > listing_budget:
                complete = False
                break
        listing_seconds = monotonic() - listing_started
    finally:
        deleted = d.restorer.purge(scratch)
    failed = len(chunk) - verified
    sample_bytes = sum(kp.version.size for kp in chunk if kp.version)
    projected = projected_seconds(
        listing_seconds=listing_seconds,
        copy_seconds=copy_seconds,
        sample_objects=len(chunk),
        sample_bytes=sample_bytes,
        objects=tally.copies,
        size=tally.bytes_copied,
    )
    rto = plan.rto.total_seconds()
    report = RestoreTestReport(
        workload=plan.workload,
        asset=asset.name,
        run_id=f"{asset.name}-{stamp(now)}",
        verdict=restore_test_verdict(
            failed=failed, sample_objects=len(chunk), projected=projected, rto_seconds=rto
        ),
        tested_at=now,
        scratch=scratch,
        sample_objects=len(chunk),
        sample_bytes=sample_bytes,
        copy_seconds=round(copy_seconds, 3),
        objects=tally.copies,
        bytes=tally.bytes_copied,
        listing_seconds=round(listing_seconds, 3),
        listing_complete=complete,
        projected_seconds=round(projected, 3),
        rto_seconds=rto,
        failed=failed,
        failures=failures,
        scratch_deleted=deleted,
    )
    return publish_test(report, d)


def publish_test(report: RestoreTestReport, d: Deps) -> RestoreTestReport:
    key = f"{TEST_EVIDENCE_PREFIX}{report.workload}/{report.run_id}.json"
    report = report.model_copy(update={"evidence": d.evidence.uri(key)})
    d.evidence.put_json(key, report.model_dump(mode="json"))
    bound = "" if report.listing_complete else "at least "
    what = (
        f"restore test of {report.asset}: {report.sample_objects} objects restored and verified in "
        f"{report.copy_seconds:.1f}s; a full restore of {bound}{report.objects} objects would take about "
        f"{bound}{report.projected_seconds:.0f}s (RTO {report.rto_seconds:.0f}s)"
    )
    d.ledger.record(
        report.workload,
        "restore",
        f"test-{report.verdict}",
        what,
        detail={
            "asset": report.asset,
            "evidence": report.evidence,
            "projected_seconds": report.projected_seconds,
        },
    )
    emit("RestoreTestProjectedSeconds", report.projected_seconds, "Seconds", workload=report.workload)
    emit(BREACH_METRIC, 1 if report.verdict in ("breached", "failed") else 0, workload=report.workload)
    logger.info("restore tested", workload=report.workload, asset=report.asset, verdict=report.verdict)
    return report


def run_scheduled(d: Deps) -> dict[str, Any]:
    """The schedule: every S3 asset of every plan tested; one asset's failure does not stop the others."""
    results: dict[str, Any] = {}
    for plan in d.plans.all():
        for asset in plan.assets:
            if not isinstance(asset, S3Asset):
                continue
            name = f"{plan.workload}/{asset.name}"
            try:
                results[name] = run_restore_test(plan, asset, d).verdict
            except Exception as exc:
                logger.warning("restore test failed to run", asset=name, error=str(exc))
                emit(BREACH_METRIC, 1, workload=plan.workload)
                results[name] = f"error: {type(exc).__name__}"
    return results
