"""S3 replication, simulated in the local cloud (moto stores replication rules but never replicates).

`configure_replication` gives a plan's source buckets what a real account has: a replication rule per
asset (with replication metrics and Replication Time Control), an event notification that sends the
`s3:Replication:*` events to the stage's replication queue, and Object Lock with default retention on the
replica buckets.

`ReplicationSimulator` then plays S3: it polls the source buckets of the rules it watches, and copies every
new object version to the replica after a configurable lag (metadata kept, like a replica); a new delete
marker (a deletion without a version id) becomes a delete marker in the replica, as the rules replicate them.
Failures can be injected per key pattern: the object is not copied and S3's `OperationFailedReplication`
notification (the documented message shape, key URL-encoded) goes to the queue, where the real Lambda handler
takes it. A lag over the RTC threshold produces `OperationMissedThreshold`, then
`OperationReplicatedAfterThreshold`.

Faults can also come from a JSON control file (`faults_path(state_file)`), so a CLI process can inject
them into the daemon's simulator:
`{"lag_seconds": 1.0, "failures": [{"pattern": "datasets/*", "reason": "DstKmsKeyNotFound"}]}`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from botocore.exceptions import ClientError

from chalicelib.adapters.s3objects import copy_preserving
from chalicelib.models.plan import DRPlan, DynamoDBAsset, ModelRegistryAsset, S3Asset, S3Location
from localcloud import replication_control
from localcloud.region_outage import log_round_failure

log = logging.getLogger(__name__)

RTC_MINUTES = 15
REPLICATION_EVENTS = [
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:Replication:OperationNotTracked",
]
NOTIFICATION_ID = "lifeboat-replication-events"
DELETE_MARKER = "<delete-marker>"
"""Stands for the ETag of a key whose current version is a delete marker (it has none)."""
LOCK_RETENTION_DAYS = 1


def faults_path(state_file: Path) -> Path:
    """Where the CLI drops replication faults for the daemon's simulator (next to its state file)."""
    return state_file.with_name("replication-faults.json")


def _arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def replicated_locations(plan: DRPlan) -> list[tuple[str, S3Location, S3Location]]:
    """(asset name, source, replica) of everything S3 replicates for a plan."""
    out: list[tuple[str, S3Location, S3Location]] = []
    for asset in plan.assets:
        replicated = isinstance(asset, S3Asset | ModelRegistryAsset) and asset.source and asset.replica
        if replicated:
            assert asset.source is not None and asset.replica is not None  # type: ignore[union-attr]
            out.append((asset.name, asset.source, asset.replica))  # type: ignore[union-attr]
    return out


# -- provisioning -----------------------------------------------------------------------------------------
def configure_replication(cloud: Any, plan: DRPlan, *, role_arn: str, queue_arn: str | None) -> None:
    """Replication rules, replication-event notifications and replica Object Lock for a plan (idempotent).

    Call it while the replica buckets are still empty: S3 (and moto) only accept an Object Lock
    configuration on an existing bucket before it holds objects.
    """
    primary, secondary = plan.regions.primary, plan.regions.secondary
    role_arn = role_arn or f"arn:aws:iam::{cloud.account_id}:role/lifeboat-s3-replication"
    rules: dict[str, list[dict[str, Any]]] = {}
    for name, source, replica in replicated_locations(plan):
        if source.prefix != replica.prefix:
            log.warning(
                "%s: S3 replication keeps keys; prefix %r will land under %r",
                name,
                replica.prefix,
                source.prefix,
            )
        rules.setdefault(source.bucket, []).append(
            {
                "ID": f"lifeboat-{name}"[:255],
                "Priority": len(rules.get(source.bucket, [])) + 1,
                "Status": "Enabled",
                "Filter": {"Prefix": source.prefix},
                # A deletion in the source (a delete marker) reaches the replica too: otherwise every deleted
                # object stays current there, is served after a failover and verification reports it as
                # extra forever. Earlier versions stay in the replica (and Object Lock keeps them).
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "Destination": {
                    "Bucket": _arn(replica.bucket),
                    "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": RTC_MINUTES}},
                    "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": RTC_MINUTES}},
                },
            }
        )
        _lock_replica(cloud.client("s3", secondary), replica.bucket)
    s3 = cloud.client("s3", primary)
    for bucket, bucket_rules in rules.items():
        s3.put_bucket_replication(
            Bucket=bucket, ReplicationConfiguration={"Role": role_arn, "Rules": bucket_rules}
        )
        if queue_arn is None:
            continue
        if queue_arn.split(":")[3] != primary:
            # S3 only notifies queues in the bucket's own region (true in AWS as well).
            log.warning(
                "replication queue %s is not in %s; no notifications for %s", queue_arn, primary, bucket
            )
            continue
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"Id": NOTIFICATION_ID, "QueueArn": queue_arn, "Events": REPLICATION_EVENTS}
                ]
            },
        )


def _lock_replica(s3: Any, bucket: str) -> None:
    with contextlib.suppress(ClientError):
        current = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        if current.get("ObjectLockEnabled") == "Enabled":
            return
    try:
        s3.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": LOCK_RETENTION_DAYS}},
            },
        )
    except ClientError as exc:
        log.warning("cannot enable Object Lock on %s (%s): verification will flag it", bucket, exc)


# -- notifications ----------------------------------------------------------------------------------------
def encode_key(key: str) -> str:
    """Keys in S3 event notifications are form-URL-encoded: spaces become '+', non-ASCII is %-encoded."""
    return quote_plus(key, safe="/")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def notification_record(
    event: str,
    *,
    bucket: str,
    key: str,
    size: int,
    etag: str,
    version_id: str | None,
    region: str,
    account: str,
    destination_bucket: str,
    rule_id: str,
    request_time: datetime,
    event_time: datetime,
    failure_reason: str | None = None,
    threshold_minutes: int | None = None,
    replication_time: datetime | None = None,
    configuration_id: str = NOTIFICATION_ID,
) -> dict[str, Any]:
    """One record shaped like S3's documented `OperationFailedReplication` example (events/s3/)."""
    data: dict[str, Any] = {
        "replicationRuleId": rule_id,
        "destinationBucket": _arn(destination_bucket),
        "s3Operation": "OBJECT_PUT",
        "requestTime": _iso(request_time),
    }
    if failure_reason is not None:
        data["failureReason"] = failure_reason
    if threshold_minutes is not None:
        data["threshold"] = str(threshold_minutes)
    if replication_time is not None:
        data["replicationTime"] = _iso(replication_time)
    return {
        "eventVersion": "2.2",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": _iso(event_time),
        "eventName": event,
        "userIdentity": {"principalId": "s3.amazonaws.com"},
        "requestParameters": {"sourceIPAddress": "s3.amazonaws.com"},
        "responseElements": {
            "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
            "x-amz-id-2": uuid.uuid4().hex,
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": account}, "arn": _arn(bucket)},
            "object": {
                "key": encode_key(key),
                "size": size,
                "eTag": etag,
                "versionId": version_id,
                "sequencer": f"{time.time_ns():018X}",
            },
        },
        "replicationEventData": data,
    }


# -- the simulator ----------------------------------------------------------------------------------------
@dataclass
class Failure:
    pattern: str
    reason: str
    remaining: int | None = None  # None: every matching object

    def matches(self, key: str) -> bool:
        return fnmatch.fnmatchcase(key, self.pattern)


@dataclass
class _Rule:
    asset: str
    rule_id: str
    source: S3Location
    replica: S3Location
    region: str
    replica_region: str


@dataclass
class _Pending:
    rule: _Rule
    key: str
    version_id: str | None
    etag: str
    size: int
    written_at: datetime
    due: datetime
    missed_sent: bool = False
    deleted: bool = False  # a delete marker: replicated as one
    # The latest the object can have been written: S3 listings give LastModified in whole seconds, so an
    # object listed as hh:mm:12 may have been written up to hh:mm:12.999 (and not after it was first seen).
    written_by: datetime | None = None


@dataclass
class ReplicationSimulator:
    """Copies new source objects to their replicas after `lag`, with injectable failures and slowness."""

    cloud: Any
    lag: timedelta = timedelta(seconds=0.5)
    rtc_threshold: timedelta = timedelta(minutes=RTC_MINUTES)
    interval: float = 0.2
    faults_file: Path | None = None
    failures: list[Failure] = field(default_factory=list)
    slow: dict[str, timedelta] = field(default_factory=dict)
    tables: list[tuple[str, str]] = field(default_factory=list)
    _rules: list[_Rule] = field(default_factory=list)
    _seen: dict[tuple[str, str], tuple[str | None, str]] = field(default_factory=dict)
    _queue: list[_Pending] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _faults_mtime: float | None = None
    events_sent: list[dict[str, Any]] = field(default_factory=list)
    copied: list[tuple[str, str]] = field(default_factory=list)

    # -- setup
    def watch(self, plan: DRPlan) -> ReplicationSimulator:
        """Replicate what the plan's rules replicate; objects already there count as replicated."""
        for name, source, replica in replicated_locations(plan):
            rule = _Rule(
                asset=name,
                rule_id=f"lifeboat-{name}",
                source=source,
                replica=replica,
                region=plan.regions.primary,
                replica_region=plan.regions.secondary,
            )
            with self._lock:
                self._rules.append(rule)
                for key, version, etag, *_ in self._list(rule):
                    self._seen[(source.bucket, key)] = (version, etag)
        for asset in plan.assets:
            if isinstance(asset, DynamoDBAsset):
                self.tables.append((plan.regions.primary, asset.table))
                self.tables.append((plan.regions.secondary, asset.replica_table_name))
        return self

    def fail(self, pattern: str, reason: str = "DstKmsKeyNotFound", times: int | None = None) -> Failure:
        """Fail the replication of objects whose key matches `pattern` (fnmatch on the full key)."""
        failure = Failure(pattern=pattern, reason=reason, remaining=times)
        with self._lock:
            self.failures.append(failure)
        return failure

    def delay(self, pattern: str, lag: timedelta) -> None:
        """Replicate objects matching `pattern` after `lag` instead of the default."""
        with self._lock:
            self.slow[pattern] = lag

    def reset_faults(self) -> ReplicationSimulator:
        """Forget faults a previous run left in the control file."""
        if self.faults_file is not None:
            self.faults_file.unlink(missing_ok=True)
        return self

    def clear(self) -> None:
        with self._lock:
            self.failures.clear()
            self.slow.clear()

    # -- lifecycle
    def start(self) -> ReplicationSimulator:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="s3-replication", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        last_pitr = 0.0
        while not self._stop.is_set():
            try:
                self.tick()
                if time.monotonic() - last_pitr > 30:
                    refresh_pitr(self.tables)
                    last_pitr = time.monotonic()
            except Exception as exc:  # keep simulating: one bad poll must not end replication
                log_round_failure(log, "replication simulator tick failed", exc)
            self._stop.wait(self.interval)

    def drain(self, timeout: float = 10.0) -> bool:
        """Tick until nothing is waiting to replicate (tests); True when drained."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.tick()
            with self._lock:
                if not self._queue:
                    return True
            time.sleep(0.05)
        return False

    # -- one poll
    def tick(self, now: datetime | None = None) -> None:
        with self._lock:
            self._read_faults_file()
            for rule in list(self._rules):
                for key, version, etag, size, modified in self._list(rule):
                    deleted = etag == DELETE_MARKER
                    seen = self._seen.get((rule.source.bucket, key))
                    if seen == (version, etag):
                        continue
                    self._seen[(rule.source.bucket, key)] = (version, etag)
                    written = modified
                    seen_at = datetime.now(UTC)
                    written_by = (
                        min(written + timedelta(seconds=1), seen_at) if not written.microsecond else written
                    )
                    lag = next((v for p, v in self.slow.items() if fnmatch.fnmatchcase(key, p)), self.lag)
                    self._queue.append(
                        _Pending(
                            rule,
                            key,
                            version,
                            etag,
                            size,
                            written,
                            seen_at + lag,
                            written_by=written_by,
                            deleted=deleted,
                        )
                    )
            current = now or datetime.now(UTC)
            due = [p for p in self._queue if p.due <= current]
            waiting = [p for p in self._queue if p.due > current]
            for p in waiting:
                if not p.missed_sent and current - p.written_at > self.rtc_threshold:
                    p.missed_sent = True
                    self._notify(p, "Replication:OperationMissedThreshold", threshold=True, now=current)
            # A drill's replication pause (localcloud/replication_control.py) holds back what was written
            # after it began, until it is resumed: whatever may have been written after it, to the second
            # resolution of S3's LastModified (a write just after the pause must never replicate).
            held = [
                p
                for p in due
                if replication_control.paused(p.rule.source.bucket, p.written_by or p.written_at)
            ]
            self._queue = waiting + held
        for p in due:
            if p not in held:
                self._replicate(p, current)

    def _replicate(self, p: _Pending, now: datetime) -> None:
        failure = self._failure_for(p.key)
        if failure is not None:
            self._notify(p, "Replication:OperationFailedReplication", reason=failure.reason, now=now)
            return
        src = p.rule.source
        dest_key = p.rule.replica.prefix + p.key[len(src.prefix) :]
        if p.deleted:
            self._replicate_deletion(p, dest_key)
            return
        try:
            copy_preserving(
                self.cloud.client("s3", p.rule.replica_region),
                src.bucket,
                p.key,
                p.rule.replica.bucket,
                dest_key,
                version_id=p.version_id,
            )
        except ClientError as exc:
            log.warning("replication of %s failed: %s", p.key, exc)
            self._notify(
                p, "Replication:OperationFailedReplication", reason="DstPutObjectNotPermitted", now=now
            )
            return
        self.copied.append((p.rule.replica.bucket, dest_key))
        if p.missed_sent:
            self._notify(
                p, "Replication:OperationReplicatedAfterThreshold", threshold=True, now=now, done=now
            )

    def _replicate_deletion(self, p: _Pending, dest_key: str) -> None:
        """A delete marker in the source becomes one in the replica (no version id: nothing is destroyed)."""
        replica = self.cloud.client("s3", p.rule.replica_region)
        try:
            head = replica.list_object_versions(Bucket=p.rule.replica.bucket, Prefix=dest_key, MaxKeys=1)
            if not any(v["Key"] == dest_key for v in head.get("Versions", [])):
                return  # never replicated: there is nothing to hide
            replica.delete_object(Bucket=p.rule.replica.bucket, Key=dest_key)
        except ClientError as exc:
            log.warning("replication of the deletion of %s failed: %s", p.key, exc)
            return
        self.copied.append((p.rule.replica.bucket, dest_key))

    def _failure_for(self, key: str) -> Failure | None:
        with self._lock:
            for f in self.failures:
                if f.matches(key) and (f.remaining is None or f.remaining > 0):
                    if f.remaining is not None:
                        f.remaining -= 1
                    return f
        return None

    def _list(self, rule: _Rule) -> list[tuple[str, str | None, str, int, datetime]]:
        s3 = self.cloud.client("s3", rule.region)
        out: list[tuple[str, str | None, str, int, datetime]] = []
        kwargs: dict[str, Any] = {"Bucket": rule.source.bucket, "Prefix": rule.source.prefix}
        while True:
            try:
                page = s3.list_object_versions(**kwargs)
            except ClientError:
                return out
            for m in page.get("DeleteMarkers", []):
                if m.get("IsLatest"):
                    modified = m["LastModified"]
                    modified = modified if modified.tzinfo else modified.replace(tzinfo=UTC)
                    vid = m.get("VersionId")
                    out.append((m["Key"], None if vid == "null" else vid, DELETE_MARKER, 0, modified))
            for v in page.get("Versions", []):
                if v.get("IsLatest"):
                    modified = v["LastModified"]
                    modified = modified if modified.tzinfo else modified.replace(tzinfo=UTC)
                    vid = v.get("VersionId")
                    out.append(
                        (
                            v["Key"],
                            None if vid == "null" else vid,
                            v["ETag"].strip('"'),
                            int(v["Size"]),
                            modified,
                        )
                    )
            if not page.get("IsTruncated"):
                return out
            kwargs["KeyMarker"] = page.get("NextKeyMarker")
            kwargs["VersionIdMarker"] = page.get("NextVersionIdMarker")

    def _notify(
        self,
        p: _Pending,
        event: str,
        *,
        now: datetime,
        reason: str | None = None,
        threshold: bool = False,
        done: datetime | None = None,
    ) -> None:
        queue_arn = self._queue_arn(p.rule)
        if queue_arn is None:
            return  # no notification configured on the bucket: S3 would not send one either
        record = notification_record(
            event,
            bucket=p.rule.source.bucket,
            key=p.key,
            size=p.size,
            etag=p.etag,
            version_id=p.version_id,
            region=p.rule.region,
            account=queue_arn.split(":")[4],
            destination_bucket=p.rule.replica.bucket,
            rule_id=p.rule.rule_id,
            request_time=p.written_at,
            event_time=now,
            failure_reason=reason,
            threshold_minutes=int(self.rtc_threshold.total_seconds() // 60) if threshold else None,
            replication_time=done,
        )
        body = json.dumps({"Records": [record]})
        sqs = self.cloud.client("sqs", queue_arn.split(":")[3])
        url = sqs.get_queue_url(QueueName=queue_arn.split(":")[5])["QueueUrl"]
        self.events_sent.append(record)
        # With an event-source mapping, moto runs the Lambda handler inside this call.
        sqs.send_message(QueueUrl=url, MessageBody=body)

    def _queue_arn(self, rule: _Rule) -> str | None:
        s3 = self.cloud.client("s3", rule.region)
        try:
            config = s3.get_bucket_notification_configuration(Bucket=rule.source.bucket)
        except ClientError:
            return None
        for q in config.get("QueueConfigurations", []):
            if any(e in ("s3:Replication:*", *REPLICATION_EVENTS) for e in q.get("Events", [])):
                return str(q["QueueArn"])
        return None

    def _read_faults_file(self) -> None:
        if self.faults_file is None:
            return
        try:
            mtime = self.faults_file.stat().st_mtime
        except FileNotFoundError:
            if self._faults_mtime is not None:
                self._faults_mtime = None
                self.failures.clear()
                self.slow.clear()
            return
        if mtime == self._faults_mtime:
            return
        self._faults_mtime = mtime
        try:
            doc = json.loads(self.faults_file.read_text())
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", self.faults_file, exc)
            return
        self.failures = [
            Failure(f["pattern"], f.get("reason", "DstKmsKeyNotFound"), f.get("times"))
            for f in doc.get("failures", [])
        ]
        self.slow = {s["pattern"]: timedelta(seconds=float(s["lag_seconds"])) for s in doc.get("slow", [])}
        if "lag_seconds" in doc:
            self.lag = timedelta(seconds=float(doc["lag_seconds"]))


def write_faults(path: Path, failures: list[dict[str, Any]] | None = None, **extra: Any) -> None:
    """Hand faults to a running daemon's simulator (an empty list clears them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"failures": failures or [], **extra}))
    tmp.replace(path)


def refresh_pitr(tables: list[tuple[str, str]]) -> None:
    """moto freezes LatestRestorableDateTime when PITR is enabled; AWS keeps it moving (a few minutes
    behind now). Move it in moto's backend, in-process, so a long-running local cloud does not look stale."""
    if not tables:
        return
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends
    except ImportError:
        return
    now = time.time()
    for region, name in tables:
        with contextlib.suppress(Exception):
            table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(name)
            desc = table.continuous_backups["PointInTimeRecoveryDescription"]
            if desc.get("PointInTimeRecoveryStatus") == "ENABLED":
                desc["LatestRestorableDateTime"] = now
