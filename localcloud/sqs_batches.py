"""The local cloud's SQS event-source mappings deliver batches the way Lambda does, partial failures included.

moto invokes a queue's function once per message, always says `ApproximateReceiveCount: "1"`, ignores the
`batchItemFailures` a handler answers and, when the invocation did not error, deletes every message of the
batch. So a record the handler returned to the queue was lost, and only a function error (the whole batch
back to the queue) kept a message. In AWS, with `FunctionResponseTypes: ["ReportBatchItemFailures"]` on the
mapping (infra/template.py declares it, localcloud/resources.py too), Lambda deletes only the records not
named as failures; the others become visible again and, once received `maxReceiveCount` times, SQS moves
them to the queue's dead-letter queue.

This patches moto's `LambdaBackend.send_sqs_batch` (`GUARDED_INTERNALS`, checked by
tests/integration/test_moto_guard.py): one invocation per batch, each record with its real receive count,
and the messages a partial-failure answer names taken out of the batch moto then deletes and made visible
again. moto delivers a message when it is sent; a message returned to the queue is received again only by
whoever polls the queue next (moto moves it to the dead-letter queue on that receive once its count reached
the redrive policy's maxReceiveCount), where Lambda would poll on its own.
"""

from __future__ import annotations

import importlib
import json
import threading
from typing import Any

from moto.awslambda.models import LambdaBackend

GUARDED_INTERNALS: list[tuple[str, str, str]] = [
    (
        "moto.awslambda.models",
        "LambdaBackend.send_sqs_batch",
        "(self, function_arn: 'str', messages: 'Any', queue_arn: 'str') -> 'bool'",
    ),
    ("moto.sqs.models", "Queue.add_message", "(self, message: moto.sqs.models.Message) -> None"),
]
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"

_original = LambdaBackend.__dict__["send_sqs_batch"]
_install_lock = threading.Lock()
_installed = False


def _record(message: Any, queue_arn: str, region: str) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": str(message.sender_id),
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if queue_arn.endswith(".fifo"):
        attributes.update(MessageGroupId=message.group_id, MessageDeduplicationId=message.deduplication_id)
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _reports_item_failures(backend: LambdaBackend, function_arn: str, queue_arn: str) -> bool:
    for mapping in backend._event_source_mappings.values():
        if mapping.event_source_arn == queue_arn and mapping.function_arn == function_arn:
            return REPORT_BATCH_ITEM_FAILURES in (mapping.function_response_types or [])
    return False


def _failed_ids(payload: Any) -> set[str] | None:
    """The messageIds a partial-batch answer names; None when the answer is not one (all succeeded)."""
    try:
        answer = json.loads(payload) if isinstance(payload, str | bytes) else payload
    except ValueError:
        return None
    failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
    if not isinstance(failures, list):
        return None
    return {str(f.get("itemIdentifier")) for f in failures if isinstance(f, dict)}


def _patched_send_sqs_batch(self: LambdaBackend, function_arn: str, messages: Any, queue_arn: str) -> bool:
    if not messages:
        return True
    event = {"Records": [_record(m, queue_arn, self.region_name) for m in messages]}
    response_headers: dict[str, Any] = {}
    payload = self.invoke(
        function_name=function_arn,
        qualifier=None,
        body=json.dumps(event),
        headers={},
        response_headers=response_headers,
    )
    if "x-amz-function-error" in response_headers:
        return False  # moto makes every message of the batch visible again
    failed = _failed_ids(payload) if _reports_item_failures(self, function_arn, queue_arn) else None
    if not failed:
        return True  # moto deletes the batch
    from moto.sqs.models import sqs_backends

    sqs = sqs_backends[self.account_id][self.region_name]
    queue_name = queue_arn.rsplit(":", 1)[-1]
    for message in [m for m in messages if m.id in failed]:
        messages.remove(message)  # the caller deletes what is left in the batch: the successes
        sqs.change_message_visibility(queue_name, message.receipt_handle, 0)
    return True


def install() -> None:
    """Patch moto (idempotent)."""
    global _installed
    with _install_lock:
        if not _installed:
            LambdaBackend.send_sqs_batch = _patched_send_sqs_batch  # type: ignore[method-assign]
            _installed = True


def uninstall() -> None:
    """Restore moto's own method (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            LambdaBackend.send_sqs_batch = _original  # type: ignore[method-assign]
            _installed = False


def installed() -> bool:
    return _installed


def original(module: str, qualname: str) -> Any:
    """The moto attribute `module`.`qualname` as moto defines it, even while this module is installed."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return _original if obj is _patched_send_sqs_batch else obj
