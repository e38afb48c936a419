"""S3 assets, pure: how their keys are split into shards, and what bucket settings and replication rules mean.

The listings, bucket settings and inventory files come from `chalicelib.adapters.assets.s3`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.listings import ObjectInfo
from chalicelib.domain.verification import key_ranges, prefix_end, relative_range
from chalicelib.models.durations import format_duration
from chalicelib.models.live_checks import LiveFinding
from chalicelib.models.plan import S3Asset
from chalicelib.models.verification import BucketSettings, Finding, InventorySource, Shard, ShardResult

MAX_SHARDS_PER_ASSET = 256
RTC_THRESHOLD = timedelta(minutes=15)
"""Objectives tighter than this want S3 Replication Time Control (a bound on replication lag)."""


# -- shards -----------------------------------------------------------------------------------------------
def directory_shards(
    directories: Iterable[str],
    *,
    loose: bool,
    versions: bool,
    max_shards: int = MAX_SHARDS_PER_ASSET,
) -> list[dict[str, Any]]:
    """Object shards from the "directories" under the asset prefix (either side's), at most `max_shards`.

    The objects directly under the prefix get their own shard when either side has any (`loose`); the
    directories are split into groups of consecutive ones, each group listed in full by one shard.
    """
    dirs = sorted(set(directories))
    groups = max(1, max_shards - 1)
    per = max(1, -(-len(dirs) // groups))
    out: list[dict[str, Any]] = [{"top_level": True, "versions": versions}] if loose else []
    for i in range(0, len(dirs), per):
        out.append({"prefixes": dirs[i : i + per], "versions": versions})
    return out


def inventory_shards(
    firsts: Iterable[tuple[str, str]],
    *,
    bucket: str,
    columns: list[str],
    snapshot_at: datetime,
    source_prefix: str,
    replica_directories: list[str],
    replica_loose: bool,
) -> list[dict[str, Any]]:
    """One shard per inventory data file, each owning the key range from its first key to the next file's.

    `firsts` are (first key, data file key) of the inventory's files. A leading range with no file catches
    replica objects that sort before every inventoried key. The replica side of a range is listed per
    "directory" (Prefix=dir/) plus the top-level objects, merged in key order: a listing scoped to a prefix
    is what S3 serves best (and what moto can serve at all).
    """
    ordered = sorted(firsts)
    files = dict(ordered)
    out: list[dict[str, Any]] = []
    for start, end in key_ranges([k for k, _ in ordered], len(ordered) + 1):
        overlaps, rel_start, rel_end = relative_range(source_prefix, start, end)
        if not overlaps:
            continue
        # The range before the first inventoried key has no file: its source side is empty, and it
        # catches replica objects that sort before everything the inventory lists.
        source = InventorySource(
            bucket=bucket,
            key=files[start] if start is not None else "",
            columns=columns,
            snapshot_at=snapshot_at,
        )
        out.append(
            {
                "start": rel_start,
                "end": rel_end,
                "inventory": source,
                "prefixes": [d for d in replica_directories if overlaps_range(d, rel_start, rel_end)],
                "top_level": replica_loose,
            }
        )
    return out


def overlaps_range(directory: str, start: str | None, end: str | None) -> bool:
    """Can keys under `directory` fall in [start, end)?"""
    upper = prefix_end(directory)
    return (end is None or directory < end) and (start is None or upper is None or upper > start)


def within_range(rows: Iterable[ObjectInfo], shard: Shard, result: ShardResult) -> Iterator[ObjectInfo]:
    """Inventory rows must fall in the shard's range; rows outside it mean the files overlap (the shard is
    then incomplete: some keys were not compared)."""
    outside = 0
    for row in rows:
        if (shard.start is not None and row.key < shard.start) or (
            shard.end is not None and row.key >= shard.end
        ):
            outside += 1
            continue
        yield row
    if outside:
        result.status = "incomplete"
        result.reason = (
            f"{outside} inventory row(s) fall outside this file's key range: the inventory files overlap "
            "or are not sorted, so some keys were not compared; verify without inventory"
        )


# -- bucket settings --------------------------------------------------------------------------------------
def bucket_findings(
    asset: S3Asset, src: BucketSettings, rep: BucketSettings, objective: timedelta
) -> list[Finding]:
    """What the source and replica bucket settings (`s3objects.bucket_protection`) mean for the asset's
    recoverability. Each check looks only at settings it could read: an unreadable one (reported by the
    caller as incomplete) never hides what the others prove."""
    out: list[Finding] = []
    for side, b in (("source", src), ("replica", rep)):
        if b.versioning.readable and b.versioning.value != "Enabled":
            out.append(
                Finding(
                    severity="breach",
                    code=f"{side}-unversioned",
                    message=f"versioning is {b.versioning.value or 'off'} on {side} bucket {b.bucket}: "
                    "S3 replication needs it on both buckets, and without it an overwrite destroys "
                    "the old copy",
                )
            )
        if b.encryption.state == "absent":
            out.append(
                Finding(
                    severity="warning",
                    code=f"{side}-unencrypted",
                    message=f"{side} bucket {b.bucket} has no default encryption (use SSE-KMS or SSE-S3)",
                )
            )
    src_enc, rep_enc = src.encryption.value, rep.encryption.value
    weaker = src_enc is not None and rep_enc is not None and rep_enc.algorithm == "AES256"
    if weaker and src_enc is not None and src_enc.algorithm.startswith("aws:kms"):
        out.append(
            Finding(
                severity="warning",
                code="replica-weaker-encryption",
                message=f"the source uses SSE-KMS but replica {rep.bucket} only SSE-S3",
            )
        )
    if src.replication.readable:
        out += _rule_findings(asset, src.replication.value or [], objective)
    lock = rep.object_lock
    if lock.readable:
        if lock.value is None or not lock.value.enabled:
            out.append(
                Finding(
                    severity="warning",
                    code="replica-not-locked",
                    message=f"replica bucket {rep.bucket} has no Object Lock: anyone (or any ransomware) "
                    "allowed to delete can erase every version of the backup",
                )
            )
        elif not lock.value.default_retention:
            out.append(
                Finding(
                    severity="warning",
                    code="replica-lock-without-retention",
                    message=f"replica bucket {rep.bucket} has Object Lock but no default retention: new "
                    "replicas are not protected from deletion",
                )
            )
    return out


def _rule_findings(asset: S3Asset, rules: list[dict[str, Any]], objective: timedelta) -> list[Finding]:
    rule = replication_rule(rules, asset)
    if rule is None:
        return [
            Finding(
                severity="breach",
                code="no-replication-rule",
                message="no enabled replication rule copies "
                f"s3://{asset.source.bucket}/{asset.source.prefix} to {asset.replica.bucket}: "
                "new objects will not reach the replica",
            )
        ]
    out: list[Finding] = []
    dest = rule.get("Destination") or {}
    if (rule.get("DeleteMarkerReplication") or {}).get("Status") != "Enabled":
        out.append(
            Finding(
                severity="warning",
                code="deletions-not-replicated",
                message=f"replication rule {rule.get('ID', '?')} does not replicate delete markers: every "
                "object deleted in the source stays current in the replica (reported as extra), and a "
                "failover serves it; enable DeleteMarkerReplication (earlier versions stay in the replica)",
            )
        )
    if (dest.get("Metrics") or {}).get("Status") != "Enabled":
        out.append(
            Finding(
                severity="warning",
                code="no-replication-metrics",
                message=f"replication rule {rule.get('ID', '?')} has no replication metrics: S3 "
                "sends no replication failure events, so Lifeboat only sees failures at the next "
                "verification",
            )
        )
    rtc = (dest.get("ReplicationTime") or {}).get("Status") == "Enabled"
    if not rtc and objective < RTC_THRESHOLD:
        out.append(
            Finding(
                severity="warning",
                code="no-replication-time-control",
                message=f"the RPO objective is {objective} but rule {rule.get('ID', '?')} has no S3 "
                "Replication Time Control: replication has no time bound",
            )
        )
    return out


def replication_rule(rules: list[dict[str, Any]], asset: S3Asset) -> dict[str, Any] | None:
    """The enabled rule that copies the asset's prefix to its replica bucket, if any."""
    for rule in rules:
        if rule.get("Status") != "Enabled":
            continue
        dest = str((rule.get("Destination") or {}).get("Bucket", ""))
        if dest.rsplit(":", 1)[-1] != asset.replica.bucket:
            continue
        flt = rule.get("Filter") or {}
        prefix = flt.get("Prefix", (flt.get("And") or {}).get("Prefix", rule.get("Prefix", ""))) or ""
        if asset.source.prefix.startswith(prefix):
            return rule
    return None


# -- plan validation --------------------------------------------------------------------------------------
def versioning_finding(bucket: str, region: str, status: str | None) -> LiveFinding:
    """A bucket's versioning status ('Enabled', 'Suspended', None: never enabled) for plan validation."""
    subject = f"bucket {bucket} ({region})"
    if status == "Enabled":
        return LiveFinding(subject, "ok", "exists, versioning enabled")
    return LiveFinding(subject, "error", f"versioning is {status or 'off'}; S3 replication requires it")


def replicates_to(rules: Iterable[dict[str, Any]], replica_bucket: str) -> bool:
    """Does any enabled rule replicate to `replica_bucket` (whatever its filter)?"""
    for rule in rules:
        dest = str((rule.get("Destination") or {}).get("Bucket", ""))
        if rule.get("Status") == "Enabled" and dest.split(":")[-1] == replica_bucket:
            return True
    return False


def replication_finding(asset: S3Asset, rules: list[dict[str, Any]], objective: timedelta) -> LiveFinding:
    """Plan validation: is the source bucket replicated to the replica bucket at all?"""
    subject = f"{asset.name}: {asset.source.bucket} -> {asset.replica.bucket}"
    if replicates_to(rules, asset.replica.bucket):
        return LiveFinding(subject, "ok", "replication rule enabled")
    return LiveFinding(
        subject,
        "error",
        f"no enabled replication rule from {asset.source.bucket} to {asset.replica.bucket}: "
        f"the secondary's copy will go stale (RPO {format_duration(objective)})",
    )
