"""Point-in-time restore of a DynamoDB asset (a feature table, metadata): RestoreTableToPointInTime into a
new table, wait until it is ACTIVE, validate it (key schema, item count, a sample of items against the source
as it is now), report. Putting it into use is a separate, explicit step (`swap_table`).

`lifeboat restore W TABLE-ASSET --to TIME` runs it in this process with the operator's credentials (a table
restore waits minutes to hours in AWS: longer than a Lambda function may run).
"""

from __future__ import annotations

import uuid
from itertools import islice
from typing import Any

from chalicelib.models.plan import DynamoDBAsset
from chalicelib.models.restore import (
    TABLE_NAME,
    RestoreRequest,
    TableRestoreReport,
    TableSample,
    TableSwapReport,
    stamp,
)
from chalicelib.observability import emit
from chalicelib.services.deps import Deps
from chalicelib.services.restore import EVIDENCE_PREFIX, RestoreRefused

SAMPLE_SIZE = 20
WAIT_TIMEOUT_SECONDS = 4 * 3600.0  # AWS restores large tables for hours; the wait is bounded all the same


def _asset(request_workload: str, asset_name: str, d: Deps) -> tuple[Any, DynamoDBAsset]:
    plan = d.plans.get(request_workload)
    asset = next((a for a in plan.assets if a.name == asset_name), None)
    if not isinstance(asset, DynamoDBAsset):
        raise RestoreRefused(request_workload, f"{asset_name} is not a DynamoDB asset of {request_workload}")
    return plan, asset


def restore_table(
    request: RestoreRequest, d: Deps, *, sample_size: int = SAMPLE_SIZE, timeout: float = WAIT_TIMEOUT_SECONDS
) -> TableRestoreReport:
    """Restore the asset's table (the side asked for) as it was at `request.to` into a new table."""
    w = request.workload
    plan, asset = _asset(w, request.asset, d)
    if request.in_place:
        raise RestoreRefused(w, "a table is restored into a new table; put it into use with --swap")
    region = plan.region_of(request.side)
    source = asset.table if request.side == "primary" else (asset.replica_table or asset.table)
    target = request.target or f"{source}-restored-{stamp(request.to)}"
    if not TABLE_NAME.match(target):
        raise RestoreRefused(w, f"{target!r} is not a DynamoDB table name")
    started = d.clock()
    window = d.tables.window(region, source)
    if window is None:
        raise RestoreRefused(w, f"point-in-time recovery is off for {source} ({region}): nothing to restore")
    earliest, latest = window
    if not earliest <= request.to <= latest:
        raise RestoreRefused(
            w,
            f"{source} can be restored to {earliest.isoformat()} .. {latest.isoformat()}, "
            f"not {request.to.isoformat()}",
        )
    if d.tables.exists(region, target):
        raise RestoreRefused(w, f"table {target} exists: pick a new name (--target)")
    report = TableRestoreReport(
        workload=w,
        asset=asset.name,
        run_id=f"{asset.name}-{stamp(request.to)}-{uuid.uuid4().hex[:6]}",
        verdict="planned",
        to=request.to,
        region=region,
        source_table=source,
        target_table=target,
        dry_run=request.dry_run,
        started_at=started,
        finished_at=started,
        duration_seconds=0.0,
        requested_by=request.requested_by,
        reason=request.reason,
    )
    if request.dry_run:
        return report
    d.tables.start(region, source, target, request.to)
    try:
        report.wait_seconds = round(d.tables.wait_active(region, target, timeout=timeout), 3)
        validate(report, d, sample_size=sample_size)
    except Exception as exc:
        report.problems.append(f"{type(exc).__name__}: {exc}")
    report.verdict = "failed" if report.problems else "restored"
    report.finished_at = d.clock()
    report.duration_seconds = round((report.finished_at - started).total_seconds(), 3)
    return publish_table(report, d)


def validate(report: TableRestoreReport, d: Deps, *, sample_size: int) -> None:
    """Key schema, item count, and a sample of restored items compared with the source now."""
    region, source, target = report.region, report.source_table, report.target_table
    keys = d.tables.key_names(region, target)
    report.key_schema_matches = keys == d.tables.key_names(region, source)
    if not report.key_schema_matches:
        report.problems.append(f"{target} is keyed by {keys}, {source} is not")
    report.items = d.tables.count(region, target)
    report.source_items_now = d.tables.count(region, source)
    for item in islice(d.tables.items(region, target), sample_size):
        key = {k: item[k] for k in keys if k in item}
        if len(key) != len(keys):
            report.problems.append(f"a restored item lacks its key attributes {keys}")
            continue
        now = d.tables.get(region, source, key)
        state = "deleted-since" if now is None else ("same" if now == item else "changed-since")
        report.sample.append(TableSample(key=key, now=state))  # type: ignore[arg-type]


def publish_table(report: TableRestoreReport, d: Deps) -> TableRestoreReport:
    key = f"{EVIDENCE_PREFIX}{report.workload}/{report.run_id}.json"
    report = report.model_copy(update={"evidence": d.evidence.uri(key)})
    d.evidence.put_json(key, report.model_dump(mode="json"))
    what = f"{report.source_table} restored to {report.to.isoformat()} as {report.target_table}"
    if report.verdict == "failed":
        what = f"{report.source_table} restore to {report.to.isoformat()} failed: " + "; ".join(
            report.problems
        )
    detail = {
        "asset": report.asset,
        "to": report.to.isoformat(),
        "target_table": report.target_table,
        "items": report.items,
        "wait_seconds": report.wait_seconds,
        "evidence": report.evidence,
    }
    d.ledger.record(
        report.workload, "restore", report.verdict, what, actor=report.requested_by, detail=detail
    )
    emit("RestoreDurationSeconds", report.duration_seconds, "Seconds", workload=report.workload)
    return report


def swap_table(
    workload: str, asset_name: str, restored: str, *, confirm: str | None, actor: str, d: Deps
) -> TableSwapReport:
    """Put a restored table's content into use: every restored item written over the source table, and the
    source's items that the restored table does not hold (written after the restore time) deleted. The
    application keeps its table name; the restored table stays for comparison (delete it yourself)."""
    plan, asset = _asset(workload, asset_name, d)
    if confirm != workload:
        raise RestoreRefused(workload, f"a swap rewrites {asset.table}: confirm with the name {workload!r}")
    region = plan.regions.primary
    if not d.tables.exists(region, restored):
        raise RestoreRefused(workload, f"there is no table {restored} in {region}")
    keys = d.tables.key_names(region, restored)
    if keys != d.tables.key_names(region, asset.table):
        raise RestoreRefused(workload, f"{restored} is not keyed like {asset.table}")
    written = 0
    batch: list[dict[str, Any]] = []
    for item in d.tables.items(region, restored):
        batch.append(item)
        if len(batch) == 100:
            d.tables.put_all(region, asset.table, batch)
            written, batch = written + len(batch), []
    d.tables.put_all(region, asset.table, batch)
    written += len(batch)
    doomed = [
        key
        for item in d.tables.items(region, asset.table)
        for key in [{k: item[k] for k in keys}]
        if d.tables.get(region, restored, key) is None
    ]
    d.tables.delete_all(region, asset.table, doomed)
    d.ledger.record(
        workload,
        "restore",
        "swapped",
        f"{asset.table} now holds {restored}'s items ({written} written, {len(doomed)} later items deleted)",
        actor=actor,
        detail={"asset": asset.name, "restored_table": restored, "written": written, "deleted": len(doomed)},
    )
    return TableSwapReport(
        workload=workload,
        asset=asset.name,
        region=region,
        source_table=asset.table,
        restored_table=restored,
        written=written,
        deleted=len(doomed),
        requested_by=actor,
    )
