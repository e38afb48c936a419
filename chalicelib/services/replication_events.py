"""S3 replication events from SQS: record each, update the asset's measured RPO, re-drive failed copies.

A batch is processed record by record (powertools BatchProcessor): a malformed notification or a transient
error fails only its own record, which Lambda returns to the queue (and, after the queue's maxReceiveCount,
to its dead-letter queue), so nothing is lost and one bad message never blocks the others. The answer is
always a batch-item-failures response, never a function error, even when every record failed (powertools
would raise then, and Lambda would retry the batch as a whole). A malformed message is never acted on (no
re-drive) and the ledger says why, once per message, so a message found in the dead-letter queue can be
explained from its message id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.adapters.dynamo import error_code
from chalicelib.adapters.errors import is_transient
from chalicelib.adapters.s3objects import MAX_SINGLE_COPY, NOT_FOUND
from chalicelib.domain.replication_events import ReplicationNotice, failure_reason, parse_body
from chalicelib.invariants import present
from chalicelib.models.plan import DRPlan, ModelRegistryAsset, S3Asset, S3Location
from chalicelib.models.replication import AssetReplicationState, BatchReport, RecordOutcome
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps

_OUTCOME_RANK = {
    "acknowledged": 0,
    "duplicate": 0,
    "unmatched": 1,
    "recorded": 1,
    "redriven": 2,
    "source-gone": 2,
    "not-redriven": 3,
    "redrive-failed": 3,
    "malformed": 4,
    "failed": 5,
}


UNATTRIBUTED = "_replication-queue"
"""Ledger partition of malformed messages that name no protected bucket (not a workload name, so it never
collides with one)."""


class RecordRejected(Exception):
    """A record that must go back to the queue (malformed, or a transient error while handling it)."""


def handle_batch(event: Any, get_deps: Callable[[], Deps]) -> BatchReport:
    """Process an SQS batch: the records to retry, never an exception (see the module docstring)."""
    outcomes: list[RecordOutcome] = []
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        # Lambda's SQS event source never sends this; nothing in it can be retried or explained.
        logger.warning("replication invocation without Records", got=type(event).__name__)
        emit("ReplicationEventMalformed", 1)
        return BatchReport(outcomes=[])

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        outcome = handle_message(record.body, record.message_id, get_deps)
        outcomes.append(outcome)
        logger.info(
            "replication record",
            message_id=outcome.message_id,
            outcome=outcome.outcome,
            reason=outcome.reason,
            workload=outcome.workload,
            asset=outcome.asset,
        )
        if outcome.outcome == "malformed":
            _explain_malformed(outcome, _receive_count(record), get_deps)
        if outcome.outcome in ("malformed", "failed"):
            raise RecordRejected(f"{outcome.outcome}: {outcome.reason}")
        return outcome.model_dump(mode="json")

    # Every record failing is still an answer: each goes back to the queue on its own (and to the
    # dead-letter queue after maxReceiveCount), never the whole batch as a function error.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    try:
        response = process_partial_response(event=event, record_handler=record_handler, processor=processor)
    except Exception as exc:  # a batch powertools cannot read (records without ids): retry what has one
        logger.error("replication batch unreadable", error=f"{type(exc).__name__}: {exc}"[:300])
        ids = [r.get("messageId") for r in records if isinstance(r, dict)]
        return BatchReport(
            outcomes=outcomes, batch_item_failures=[{"itemIdentifier": i} for i in ids if isinstance(i, str)]
        )
    failures = [{"itemIdentifier": str(f["itemIdentifier"])} for f in response.get("batchItemFailures", [])]
    return BatchReport(outcomes=outcomes, batch_item_failures=failures)


def _receive_count(record: SQSRecord) -> int | None:
    try:
        return int(record.attributes.approximate_receive_count)
    except (TypeError, ValueError, KeyError):
        return None


def _explain_malformed(
    outcome: RecordOutcome, receive_count: int | None, get_deps: Callable[[], Deps]
) -> None:
    """Say in the ledger why the message was refused: once per message (it comes back until SQS moves it to
    the dead-letter queue), under the workload whose bucket it names, else under UNATTRIBUTED."""
    try:
        d = get_deps()
        workloads = sorted(
            {outcome.workload} if outcome.workload else _owners(d.plans.all(), outcome.buckets)
        )
        for workload in workloads or [UNATTRIBUTED]:
            if not d.ledger.claim(workload, f"malformed#{outcome.message_id}", ttl_days=14):
                continue
            d.ledger.record(
                workload,
                "replication",
                "malformed",
                f"SQS message {outcome.message_id} is not a usable replication event ({outcome.reason}); "
                "nothing was re-driven for it. It returns to the queue and, after the queue's "
                "maxReceiveCount, moves to the replication dead-letter queue.",
                detail={
                    "message_id": outcome.message_id,
                    "receive_count": receive_count,
                    "problems": outcome.reason[:2000],
                    "buckets": outcome.buckets,
                },
            )
    except Exception as exc:  # the record fails anyway; a ledger hiccup must not turn into a function error
        logger.warning("could not record a malformed replication message", error=str(exc)[:300])


def _owners(plans: list[DRPlan], buckets: list[str]) -> set[str]:
    return {
        plan.workload
        for plan in plans
        for asset in plan.assets
        if isinstance(asset, S3Asset | ModelRegistryAsset) and asset.source and asset.source.bucket in buckets
    }


def handle_message(body: str | None, message_id: str, get_deps: Callable[[], Deps]) -> RecordOutcome:
    """One SQS message body: a test event, replication event records, or something malformed."""
    parsed = parse_body(body)
    if parsed.kind == "test":
        emit("ReplicationTestEvent", 1)
        return RecordOutcome(
            message_id=message_id, outcome="acknowledged", reason=f"s3:TestEvent from {parsed.bucket}"
        )
    events: list[dict[str, Any]] = []
    worst = "acknowledged"
    workload = asset = None
    for notice in parsed.notices:
        d = get_deps()
        try:
            done = handle_notice(notice, d)
        except Exception as exc:
            if not is_transient(exc):
                logger.exception("replication event failed", key=notice.key, bucket=notice.bucket)
            done = {"outcome": "failed", "reason": f"{type(exc).__name__}: {exc}", "key": notice.key}
        events.append(done)
        workload = done.get("workload", workload)
        asset = done.get("asset", asset)
        if _OUTCOME_RANK[done["outcome"]] > _OUTCOME_RANK[worst]:
            worst = done["outcome"]
    if parsed.problems:
        emit("ReplicationEventMalformed", 1)
        # The valid records were handled (and are idempotent); the message returns for a human to see.
        return RecordOutcome(
            message_id=message_id,
            outcome="malformed",
            reason="; ".join(parsed.problems),
            workload=workload,
            asset=asset,
            events=events,
            buckets=parsed.malformed_buckets,
        )
    reason = "; ".join(f"{e.get('key')}: {e['outcome']} ({e.get('reason', '')})" for e in events)
    return RecordOutcome(
        message_id=message_id,
        outcome=worst,  # type: ignore[arg-type]
        reason=reason,
        workload=workload,
        asset=asset,
        events=events,
    )


def find_asset(
    plans: list[DRPlan], bucket: str, key: str
) -> tuple[DRPlan, S3Asset | ModelRegistryAsset] | None:
    """The plan and asset whose source location holds s3://bucket/key (the longest prefix wins)."""
    best: tuple[int, DRPlan, S3Asset | ModelRegistryAsset] | None = None
    for plan in plans:
        for asset in plan.assets:
            if not isinstance(asset, S3Asset | ModelRegistryAsset) or asset.source is None:
                continue
            longer = best is None or len(asset.source.prefix) > best[0]
            if asset.source.bucket == bucket and key.startswith(asset.source.prefix) and longer:
                best = (len(asset.source.prefix), plan, asset)
    return None if best is None else (best[1], best[2])


def handle_notice(notice: ReplicationNotice, d: Deps) -> dict[str, Any]:
    """One replication event: ledger, asset state (measured RPO), metric, and for failures a re-drive."""
    found = find_asset(d.plans.all(), notice.bucket, notice.key)
    if found is None:
        emit("ReplicationEventUnmatched", 1)
        return {
            "outcome": "unmatched",
            "key": notice.key,
            "reason": f"no plan protects s3://{notice.bucket}/{notice.key}",
        }
    plan, asset = found
    claim = "s3event#" + hashlib.sha256(notice.identity.encode()).hexdigest()[:32]
    if not d.ledger.claim(plan.workload, claim):
        return {
            "outcome": "duplicate",
            "key": notice.key,
            "workload": plan.workload,
            "asset": asset.name,
            "reason": "already processed",
        }
    try:
        done = _act(plan, asset, notice, d)
    except Exception:
        d.ledger.release_claim(plan.workload, claim)  # let the retry do it again
        raise
    done.update(workload=plan.workload, asset=asset.name, key=notice.key)
    return done


def _act(
    plan: DRPlan, asset: S3Asset | ModelRegistryAsset, notice: ReplicationNotice, d: Deps
) -> dict[str, Any]:
    now = d.clock()
    source = present(asset.source, f"the source location of {asset.name}")
    replica = present(asset.replica, f"the replica location of {asset.name}")
    detail: dict[str, Any] = {
        "asset": asset.name,
        "event": notice.event_name,
        "bucket": notice.bucket,
        "key": notice.key,
        "version_id": notice.version_id,
        "rule": notice.rule_id,
        "destination": notice.destination_bucket,
        "operation": notice.operation,
        "request_time": notice.request_time,
    }
    pending_since: datetime | None = None
    clear = False
    outcome = "recorded"
    if notice.kind == "failed":
        meaning = failure_reason(notice.failure_reason)
        detail.update(failure_reason=meaning.code, retry_fixes=meaning.retry_fixes, action=meaning.action)
        outcome, why = _redrive(plan, source, replica, notice, meaning.redrive, d)
        detail["redrive"] = why
        if outcome == "redriven":
            clear = True
        elif outcome != "source-gone":
            pending_since = notice.changed_at
        fix = "a retry can fix it" if meaning.retry_fixes else "a retry CANNOT fix it: " + meaning.action
        reason = f"replication of {notice.key} failed ({meaning.code}; {fix}); {why}"
        if not meaning.retry_fixes:
            _alert_once(plan, asset.name, meaning.code, reason, detail, d, now)
    elif notice.kind == "missed-threshold":
        pending_since = notice.changed_at
        reason = (
            f"{notice.key} missed the replication threshold ({notice.threshold or '15'} min); still pending"
        )
    elif notice.kind == "replicated-after-threshold":
        clear = True
        arrived = notice.replicated_at() or notice.event_time
        lag = (arrived - notice.changed_at).total_seconds()
        detail["lag_seconds"] = lag
        reason = f"{notice.key} replicated after the threshold, {lag:.0f}s after it was written"
    else:
        reason = (
            f"{notice.key} is no longer tracked by replication metrics; "
            "Lifeboat's verification still checks it"
        )

    def change(state: AssetReplicationState) -> None:
        state.objective_seconds = plan.asset_rpo(asset).total_seconds()
        if pending_since is not None:
            state.add_pending(notice.key, pending_since)
        if clear:
            state.pending.pop(notice.key, None)
        oldest = state.oldest_pending()
        state.measured_rpo_seconds = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        state.measured_at = now
        state.measured_by = "replication-event"
        state.last_event = {
            "kind": notice.kind,
            "key": notice.key,
            "at": notice.event_time.isoformat(),
            "outcome": outcome,
        }
        state.count(notice.kind)
        if outcome == "redriven":
            state.count("redriven")
        if notice.kind == "failed":
            code = str(detail["failure_reason"])
            seen = state.failures.get(code, {})
            state.failures[code] = {
                "count": int(seen.get("count", 0)) + 1,
                "last_at": now.isoformat(),
                "last_key": notice.key,
                "retry_fixes": detail["retry_fixes"],
                "action": detail["action"],
                "redrive": outcome,
            }

    state = d.asset_states.update(plan.workload, asset.name, change)
    detail["measured_rpo_seconds"] = state.measured_rpo_seconds
    detail["objective_seconds"] = state.objective_seconds
    d.ledger.record(plan.workload, "replication", f"{notice.kind}:{outcome}", reason, detail=detail, at=now)
    dims = {"workload": plan.workload, "asset": asset.name}
    emit("ReplicationEvent", 1, event=notice.kind, **dims)
    emit("ReplicationExposure", state.measured_rpo_seconds or 0.0, "Seconds", **dims)
    if outcome == "redriven":
        emit("ReplicationRedriven", 1, **dims)
    return {"outcome": outcome, "reason": reason, "measured_rpo_seconds": state.measured_rpo_seconds}


def _redrive(
    plan: DRPlan, source: S3Location, replica: S3Location, notice: ReplicationNotice, allowed: bool, d: Deps
) -> tuple[str, str]:
    """Copy the failed object version to the replica ourselves (S3 never retries a failed replication)."""
    if not allowed:
        return "not-redriven", "not re-driven: copying cannot fix this (or must not: see the action)"
    if notice.operation not in (None, "OBJECT_PUT"):
        return (
            "not-redriven",
            f"not re-driven: {notice.operation} is not a write (deletes are never re-driven)",
        )
    try:
        head = d.buckets.head(plan.regions.primary, notice.bucket, notice.key, notice.version_id)
    except Exception as exc:
        if error_code(exc) in NOT_FOUND or error_code(exc) == "400":
            return "source-gone", "the source object (version) no longer exists: nothing to re-drive"
        raise
    if int(head.get("ContentLength", 0)) > MAX_SINGLE_COPY:
        return "not-redriven", "larger than 5 GiB: re-drive it with S3 Batch Replication"
    destination_key = replica.prefix + notice.key[len(source.prefix) :]
    try:
        copied = d.buckets.copy(
            plan.regions.secondary,
            notice.bucket,
            notice.key,
            replica.bucket,
            destination_key,
            version_id=notice.version_id,
        )
    except Exception as exc:
        if is_transient(exc):
            raise
        return "redrive-failed", f"re-drive failed for good: {error_code(exc) or type(exc).__name__}: {exc}"
    return (
        "redriven",
        f"re-driven: copied to s3://{replica.bucket}/{destination_key} (version {copied['version_id']})",
    )


def _alert_once(
    plan: DRPlan, asset: str, code: str, reason: str, detail: dict[str, Any], d: Deps, now: datetime
) -> None:
    """Tell humans about a failure only they can fix: once per asset, reason and hour, not per object."""
    if not d.ledger.claim(plan.workload, f"alert#{asset}#{code}#{now:%Y%m%d%H}", ttl_days=2):
        return
    try:
        d.notifier.publish(
            plan, f"[Lifeboat] {plan.workload}: replication of {asset} failing ({code})", reason, detail
        )
    except Exception as exc:  # the alert failing must not fail the record (it would be retried forever)
        logger.error("replication alert failed", workload=plan.workload, error=str(exc))
