"""S3 replication event notifications, parsed from SQS message bodies, and what each failure reason means.

Pure: no I/O. A body is either S3's `s3:TestEvent` (acknowledged), a `{"Records": [...]}` notification whose
records are replication events, an SNS envelope around either, or malformed (reported, never guessed at).
Values S3 never sends are malformed too: a negative or fractional object size, a replication event without
`replicationEventData`, a failed replication without a `failureReason`; acting on them (a re-drive) would
act on a message someone else made up.
Object keys arrive URL-encoded the way HTML forms are (`red flower.jpg` -> `red+flower.jpg`), so they are
decoded with `unquote_plus`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.clock import parse_timestamp
from chalicelib.invariants import present

EventKind = Literal["failed", "missed-threshold", "replicated-after-threshold", "not-tracked"]

EVENT_KINDS: dict[str, EventKind] = {
    "Replication:OperationFailedReplication": "failed",
    "Replication:OperationMissedThreshold": "missed-threshold",
    "Replication:OperationReplicatedAfterThreshold": "replicated-after-threshold",
    "Replication:OperationNotTracked": "not-tracked",
}
"""The replication event types S3 sends (eventName carries no `s3:` prefix; both spellings are accepted)."""


class ReplicationNotice(BaseModel):
    """One replication event record, with the object key decoded."""

    model_config = ConfigDict(frozen=True)

    kind: EventKind
    event_name: str = Field(description="As S3 sent it, e.g. Replication:OperationFailedReplication.")
    event_time: datetime
    region: str | None = None
    bucket: str = Field(description="Source bucket.")
    key: str = Field(description="Object key, URL-decoded.")
    raw_key: str = Field(description="Object key as it appeared in the notification.")
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    rule_id: str | None = None
    destination_bucket: str | None = Field(None, description="Replica bucket name (from the ARN).")
    operation: str | None = Field(None, description="s3Operation, e.g. OBJECT_PUT.")
    request_time: datetime | None = Field(None, description="When the source operation happened.")
    failure_reason: str | None = None
    threshold: str | None = Field(None, description="RTC threshold, as S3 wrote it (format undocumented).")
    replication_time: str | None = Field(None, description="As S3 wrote it (format undocumented).")

    @property
    def identity(self) -> str:
        """What makes two deliveries of this record the same event (SQS delivers at least once)."""
        return "|".join(
            [
                self.event_name,
                self.bucket,
                self.key,
                self.version_id or self.sequencer or "",
                str(self.request_time),
            ]
        )

    @property
    def changed_at(self) -> datetime:
        """When the change that should have replicated was made (requestTime, else the event time)."""
        return self.request_time or self.event_time

    def replicated_at(self) -> datetime | None:
        """When the object reached the replica, for ReplicatedAfterThreshold (if the time parses)."""
        if self.replication_time:
            try:
                return parse_timestamp(self.replication_time)
            except ValueError:
                return None
        return None


class ParsedBody(BaseModel):
    """What one SQS message body turned out to be."""

    kind: Literal["test", "records", "malformed"]
    notices: list[ReplicationNotice] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list, description="Why records (or the body) were rejected.")
    bucket: str | None = Field(None, description="The bucket of a test event.")
    malformed_buckets: list[str] = Field(
        default_factory=list, description="Source buckets named by malformed records (to say whose they are)."
    )


def parse_body(body: str | bytes | None) -> ParsedBody:
    """Parse one SQS message body. Valid records are returned even when others in the body are malformed."""
    if body is None or (isinstance(body, str | bytes) and not body.strip()):
        return ParsedBody(kind="malformed", problems=["empty message body"])
    try:
        doc: Any = json.loads(body)
    except ValueError as exc:
        return ParsedBody(kind="malformed", problems=[f"body is not JSON: {exc}"])
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return parse_body(doc["Message"])  # S3 -> SNS -> SQS without raw message delivery
    if not isinstance(doc, dict):
        return ParsedBody(kind="malformed", problems=[f"body is a JSON {type(doc).__name__}, not an object"])
    if doc.get("Event") == "s3:TestEvent":
        return ParsedBody(kind="test", bucket=doc.get("Bucket"))
    records = doc.get("Records")
    if not isinstance(records, list):
        return ParsedBody(kind="malformed", problems=["no Records list (and not an s3:TestEvent)"])
    if not records:
        return ParsedBody(kind="malformed", problems=["Records is empty"])
    notices: list[ReplicationNotice] = []
    problems: list[str] = []
    buckets: list[str] = []
    for index, record in enumerate(records):
        try:
            notices.append(parse_record(record))
        except ValueError as exc:
            problems.append(f"record {index}: {exc}")
            bucket = _dig(record, "s3", "bucket", "name")
            if isinstance(bucket, str) and bucket and bucket not in buckets:
                buckets.append(bucket[:255])
    return ParsedBody(
        kind="records" if not problems else "malformed",
        notices=notices,
        problems=problems,
        malformed_buckets=buckets,
    )


def _dig(doc: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def decode_key(raw: str) -> str:
    """An S3 notification key as the object's real key ('+' is a space, %XX are UTF-8 bytes)."""
    return unquote_plus(raw, encoding="utf-8", errors="strict")


def parse_record(record: Any) -> ReplicationNotice:
    """One record of a notification; ValueError names what is wrong."""
    if not isinstance(record, dict):
        raise ValueError(f"a record must be an object (got {type(record).__name__})")
    name = record.get("eventName")
    if not isinstance(name, str) or not name:
        raise ValueError("eventName is missing")
    bare = name.removeprefix("s3:")
    if bare not in EVENT_KINDS:
        raise ValueError(f"unknown event name {name!r}; expected one of: {', '.join(EVENT_KINDS)}")
    bucket = _dig(record, "s3", "bucket", "name")
    raw_key = _dig(record, "s3", "object", "key")
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("s3.bucket.name is missing")
    if not isinstance(raw_key, str) or not raw_key:
        raise ValueError("s3.object.key is missing")
    try:
        key = decode_key(raw_key)
    except UnicodeDecodeError as exc:
        raise ValueError(f"s3.object.key {raw_key!r} is not URL-encoded UTF-8: {exc}") from None
    event_time = present(_time(record.get("eventTime"), "eventTime", required=True), "eventTime")
    data = record.get("replicationEventData")
    if not isinstance(data, dict) or not data:
        # S3 describes every replication event there; without it there is nothing to act on.
        raise ValueError("replicationEventData is missing (S3 sends it with every replication event)")
    kind = EVENT_KINDS[bare]
    reason = data.get("failureReason")
    if kind == "failed" and (not isinstance(reason, str) or not reason.strip()):
        raise ValueError("replicationEventData.failureReason is missing (S3 names why a replication failed)")
    destination = data.get("destinationBucket")
    size = _size(_dig(record, "s3", "object", "size"))
    obj = _dig(record, "s3", "object")
    etag, version_id, sequencer = (
        _text(_dig(obj, k), f"s3.object.{k}") for k in ("eTag", "versionId", "sequencer")
    )
    rule_id, operation, _ = (
        _text(data.get(k), f"replicationEventData.{k}")
        for k in ("replicationRuleId", "s3Operation", "destinationBucket")
    )
    return ReplicationNotice(
        kind=kind,
        event_name=bare,
        event_time=event_time,
        region=_text(record.get("awsRegion"), "awsRegion"),
        bucket=bucket,
        key=key,
        raw_key=raw_key,
        size=size,
        etag=etag,
        version_id=version_id,
        sequencer=sequencer,
        rule_id=rule_id,
        destination_bucket=str(destination).rsplit(":", 1)[-1] if destination else None,
        operation=operation,
        request_time=_time(data.get("requestTime"), "replicationEventData.requestTime"),
        failure_reason=reason if isinstance(reason, str) else None,
        threshold=None if data.get("threshold") is None else str(data.get("threshold")),
        replication_time=None if data.get("replicationTime") is None else str(data.get("replicationTime")),
    )


def _text(value: Any, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{field} must be text (got {type(value).__name__})")
    return value


def _size(value: Any) -> int | None:
    """s3.object.size: a whole number of bytes, never negative (S3 leaves it out for some operations)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"s3.object.size must be a whole number of bytes >= 0 (got {str(value)[:40]!r})")
    return value


def _time(value: Any, field: str, *, required: bool = False) -> datetime | None:
    if value is None or value == "":
        if required:
            raise ValueError(f"{field} is missing")
        return None
    try:
        return parse_timestamp(str(value))
    except ValueError:
        raise ValueError(f"{field} is not an ISO-8601 time: {value!r}") from None


# -- failure reasons --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FailureReason:
    """What a replication failureReason means for recovery."""

    code: str
    retry_fixes: bool
    """Would replicating the object again succeed without anyone changing the configuration?"""
    redrive: bool
    """Does Lifeboat copy the object itself (with its own role) to restore the replica now?"""
    action: str
    """What a human has to do."""


def _reason(code: str, retry_fixes: bool, redrive: bool, action: str) -> FailureReason:
    return FailureReason(code=code, retry_fixes=retry_fixes, redrive=redrive, action=action)


FAILURE_REASONS: dict[str, FailureReason] = {
    r.code: r
    for r in (
        # The replication role: S3 cannot act; Lifeboat's own role can still copy this object.
        _reason("AssumeRoleNotPermitted", False, True, "let s3.amazonaws.com assume the replication role"),
        # The destination itself is unusable: a copy would fail, or land without the required lock/key.
        _reason(
            "DstBucketNotFound", False, False, "recreate the replica bucket or fix the rule's destination"
        ),
        _reason("DstBucketInvalidRegion", False, False, "point the rule at a bucket in the intended region"),
        _reason("DstBucketUnversioned", False, False, "enable versioning on the replica bucket"),
        _reason("DstBucketObjectLockConfigMissing", False, False, "enable Object Lock on the replica bucket"),
        _reason("DstKmsKeyNotFound", False, False, "restore or replace the replica's KMS key in the rule"),
        _reason(
            "DstKmsKeyInvalidState", False, False, "enable the replica's KMS key (it is disabled/pending)"
        ),
        # The replication role lacks a destination permission: Lifeboat's copy restores this object.
        *(
            _reason(code, False, True, f"grant the replication role the permission behind {code}")
            for code in (
                "DstMultipartCompleteNotPermitted",
                "DstMultipartInitNotPermitted",
                "DstMultipartPartUploadNotPermitted",
                "DstPutAclNotPermitted",
                "DstPutLegalHoldNotPermitted",
                "DstPutObjectNotPermitted",
                "DstPutRetentionNotPermitted",
                "DstPutTaggingNotPermitted",
            )
        ),
        # Deletes are never re-driven: copying a deletion is how ransomware empties a backup.
        _reason(
            "DstDelObjNotPermitted", False, False, "grant s3:ReplicateDelete if deletes should replicate"
        ),
        _reason("DstObjHardDeleteNotPermitted", False, False, "grant the delete permission if intended"),
        # The role cannot read the source: Lifeboat's own role may.
        *(
            _reason(code, False, True, f"grant the replication role the permission behind {code}")
            for code in (
                "SrcGetAclNotPermitted",
                "SrcGetLegalHoldNotPermitted",
                "SrcGetObjectNotPermitted",
                "SrcGetRetentionNotPermitted",
                "SrcGetTaggingNotPermitted",
                "SrcHeadObjectNotPermitted",
            )
        ),
        _reason("SrcBucketNotFound", False, False, "the source bucket is gone: nothing to replicate"),
        _reason("SrcBucketInvalidRegion", False, False, "fix the source bucket region in the job/rule"),
        _reason(
            "SrcBucketReplicationConfigMissing", False, False, "restore the source bucket's replication rules"
        ),
        _reason("SrcKmsKeyInvalidState", False, False, "enable the source KMS key"),
        _reason(
            "SrcObjectNotEligible", False, False, "the object cannot replicate (e.g. SSE-C); store it anew"
        ),
        _reason("SrcObjectNotFound", False, False, "the object was deleted before it replicated"),
        _reason("SrcKeyNotFound", False, False, "the object was deleted before it replicated"),
        # A replica modification raced a newer version: replicating again converges.
        _reason("DstVersionNotFound", True, True, "none: re-driven"),
    )
}


def failure_reason(code: str | None) -> FailureReason:
    """The meaning of a failureReason; an unknown one is assumed retryable (and re-driven) so that data
    is not left behind because S3 added a code after this table was written."""
    if code and code in FAILURE_REASONS:
        return FAILURE_REASONS[code]
    return FailureReason(
        code=code or "Unknown", retry_fixes=True, redrive=True, action="none known: re-driven; check the logs"
    )


def not_retryable_reasons() -> list[str]:
    """Failure reasons that a retry cannot fix (someone must change the configuration first)."""
    return sorted(code for code, r in FAILURE_REASONS.items() if not r.retry_fixes)


__all__ = [
    "EVENT_KINDS",
    "FAILURE_REASONS",
    "FailureReason",
    "ParsedBody",
    "ReplicationNotice",
    "decode_key",
    "failure_reason",
    "not_retryable_reasons",
    "parse_body",
    "parse_record",
]
