"""S3 replication events, delivered through the stage's SQS queue, handled in batches."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.settings import replication_queue_name

bp = Blueprint(__name__)

# Partial batch responses need ReportBatchItemFailures on the event source mapping, which Chalice 1.34
# cannot declare: the merge template adds it (infra/template.py, docs/verification.md).
BATCH_SIZE = 10


@bp.on_sqs_message(
    queue=replication_queue_name(),
    batch_size=BATCH_SIZE,
    maximum_batching_window_in_seconds=5,
    name="on_replication_event",
)
def on_replication_event(event: Any) -> dict[str, Any]:
    from chalicelib.services.deps import deps
    from chalicelib.services.replication_events import handle_batch

    report = handle_batch(event.to_dict(), deps)
    return {"batchItemFailures": report.batch_item_failures}
