"""Backup verification: prove each asset's RPO by comparing primary and replica, and report it.

Three steps, the same in the Step Functions state machine (Distributed Map over the shards) and in the
on-demand run the CLI and API call (a thread pool over the same shards):

    plan_shards -> run_shard (each shard, in parallel; transient errors retried) -> finalize + publish

A shard that cannot finish makes its asset "incomplete", and an incomplete run is never reported green.
"""

from __future__ import annotations

import contextvars
import heapq
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.asset_state import AssetStateStore
from chalicelib.adapters.dynamo import error_code
from chalicelib.adapters.errors import TransientError, is_transient
from chalicelib.adapters.evidence import EvidenceStore, latest_key, run_prefix
from chalicelib.adapters.s3objects import (
    NOT_FOUND,
    bucket_protection,
    directories,
    first_inventory_key,
    head_checksum,
    inventory_columns,
    inventory_snapshot,
    iter_inventory,
    iter_object_versions,
    iter_objects,
    latest_inventory_manifest,
    sha256_of_object,
    stored_sha256_hex,
)
from chalicelib.domain.listings import ObjectInfo, diff_listings
from chalicelib.domain.verification import (
    CountingStream,
    count_version_gap,
    key_ranges,
    merge_asset,
    prefix_end,
    relative_range,
    render_markdown,
    report_summary,
    tally,
    worst,
)
from chalicelib.models.plan import DRPlan, DynamoDBAsset, ModelRegistryAsset, S3Asset
from chalicelib.models.replication import AssetReplicationState
from chalicelib.models.verification import (
    AssetVerification,
    FinalizeInput,
    Finding,
    InventorySource,
    ObjectSample,
    PlannedRun,
    PlanRunInput,
    Shard,
    ShardInput,
    ShardResult,
    ShardsLocation,
    VerificationReport,
)
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.settings import get_settings

MAX_SHARDS_PER_ASSET = 256
SHARD_ATTEMPTS = 3
RTC_THRESHOLD = timedelta(minutes=15)
Progress = Callable[[str, Any], None]


def evidence_store(d: Deps) -> EvidenceStore:
    store = d.extras.get("evidence")
    if store is None:
        store = d.extras["evidence"] = EvidenceStore(get_settings().evidence_bucket)
    return store  # type: ignore[no-any-return]


def asset_states(d: Deps) -> AssetStateStore:
    store = d.extras.get("asset_states")
    if store is None:
        store = d.extras["asset_states"] = AssetStateStore(get_settings().ledger_table)
    return store  # type: ignore[no-any-return]


def _s3(plan: DRPlan, role: str) -> Any:
    return aws.client("s3", plan.regions.primary if role == "primary" else plan.regions.secondary)


# -- planning ---------------------------------------------------------------------------------------------
def plan_shards(plan: DRPlan, d: Deps) -> tuple[list[Shard], list[str]]:
    """The work of one run, and planning problems (an asset whose shards could not be planned)."""
    shards: list[Shard] = []
    problems: list[str] = []

    def add(**fields: Any) -> None:
        shards.append(Shard(index=len(shards), **fields))

    for asset in plan.assets:
        if isinstance(asset, S3Asset):
            add(asset=asset.name, kind="s3-config")
            try:
                for fields in _object_shards(plan, asset):
                    add(asset=asset.name, kind="s3-objects", **fields)
            except Exception as exc:
                if is_transient(exc):
                    raise
                problems.append(f"{asset.name}: cannot plan the object comparison: {_describe(exc)}")
        elif isinstance(asset, ModelRegistryAsset):
            add(asset=asset.name, kind="model-registry")
        elif isinstance(asset, DynamoDBAsset):
            add(asset=asset.name, kind="dynamodb")
    return shards, problems


def _object_shards(plan: DRPlan, asset: S3Asset) -> list[dict[str, Any]]:
    src, rep = _s3(plan, "primary"), _s3(plan, "secondary")
    versions = _versioned(src, asset.source.bucket) and _versioned(rep, asset.replica.bucket)
    if asset.inventory is not None:
        found = latest_inventory_manifest(
            src, asset.inventory.bucket, asset.inventory.prefix, asset.source.bucket
        )
        if found is not None:
            return _inventory_shards(src, rep, asset, found[1])
        logger.warning("no inventory manifest; listing instead", asset=asset.name)
    src_dirs, src_loose = directories(src, asset.source.bucket, asset.source.prefix)
    rep_dirs, rep_loose = directories(rep, asset.replica.bucket, asset.replica.prefix)
    dirs = sorted(set(src_dirs) | set(rep_dirs))
    groups = max(1, MAX_SHARDS_PER_ASSET - 1)
    per = max(1, -(-len(dirs) // groups))
    # Objects directly under the prefix get their own shard, when either side has any.
    out: list[dict[str, Any]] = [{"top_level": True, "versions": versions}] if src_loose or rep_loose else []
    for i in range(0, len(dirs), per):
        out.append({"prefixes": dirs[i : i + per], "versions": versions})
    return out


def _versioned(s3: Any, bucket: str) -> bool:
    try:
        return s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"
    except Exception as exc:
        if is_transient(exc):
            raise
        return False


def _inventory_shards(s3: Any, rep: Any, asset: S3Asset, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """One shard per inventory data file, each owning the key range from its first key to the next file's.

    A leading range with no file catches replica objects that sort before every inventoried key. The
    replica side of a range is listed per "directory" (Prefix=dir/) plus the top-level objects, merged in
    key order: a listing scoped to a prefix is what S3 serves best (and what moto can serve at all).
    """
    assert asset.inventory is not None
    columns = inventory_columns(manifest)
    snapshot = inventory_snapshot(manifest)
    bucket = manifest.get("destinationBucket", "").rsplit(":", 1)[-1] or asset.inventory.bucket
    firsts: list[tuple[str, str]] = []
    for f in manifest.get("files", []):
        first = first_inventory_key(s3, bucket, f["key"], columns)
        if first is not None:
            firsts.append((first, f["key"]))
    firsts.sort()
    files = dict(firsts)
    dirs, loose = directories(rep, asset.replica.bucket, asset.replica.prefix)
    out: list[dict[str, Any]] = []
    for start, end in key_ranges([k for k, _ in firsts], len(firsts) + 1):
        overlaps, rel_start, rel_end = relative_range(asset.source.prefix, start, end)
        if not overlaps:
            continue
        # The range before the first inventoried key has no file: its source side is empty, and it
        # catches replica objects that sort before everything the inventory lists.
        source = InventorySource(
            bucket=bucket,
            key=files[start] if start is not None else "",
            columns=columns,
            snapshot_at=snapshot,
        )
        overlapping = [d for d in dirs if _overlaps(d, rel_start, rel_end)]
        out.append(
            {
                "start": rel_start,
                "end": rel_end,
                "inventory": source,
                "prefixes": overlapping,
                "top_level": loose,
            }
        )
    return out


def _overlaps(directory: str, start: str | None, end: str | None) -> bool:
    """Can keys under `directory` fall in [start, end)?"""
    upper = prefix_end(directory)
    return (end is None or directory < end) and (start is None or upper is None or upper > start)


# -- one shard --------------------------------------------------------------------------------------------
def run_shard(plan: DRPlan, shard: Shard, d: Deps) -> ShardResult:
    """Check one shard. Throttling/5xx propagate (to be retried); anything else makes it incomplete."""
    asset = plan.asset(shard.asset)
    try:
        if shard.kind == "s3-objects":
            assert isinstance(asset, S3Asset)
            return _compare_objects(plan, asset, shard)
        if shard.kind == "s3-config":
            assert isinstance(asset, S3Asset)
            return _check_buckets(plan, asset, shard)
        if shard.kind == "model-registry":
            assert isinstance(asset, ModelRegistryAsset)
            return _check_registry(plan, asset, shard)
        assert isinstance(asset, DynamoDBAsset)
        return _check_table(plan, asset, shard, d.clock())
    except Exception as exc:
        if is_transient(exc) or isinstance(exc, TransientError):
            raise
        logger.warning("shard incomplete", workload=plan.workload, shard=shard.index, error=_describe(exc))
        return ShardResult(shard=shard, status="incomplete", reason=_describe(exc))


def _describe(exc: BaseException) -> str:
    code = error_code(exc) if isinstance(exc, Exception) else ""
    return f"{code or type(exc).__name__}: {exc}"


def _compare_objects(plan: DRPlan, asset: S3Asset, shard: Shard) -> ShardResult:
    src_s3, rep_s3 = _s3(plan, "primary"), _s3(plan, "secondary")
    src_loc, rep_loc = asset.source, asset.replica
    result = ShardResult(shard=shard, mode="versions" if shard.versions else "listing")
    lister = iter_object_versions if shard.versions else iter_objects

    def side(s3: Any, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        if shard.top_level:
            return lister(s3, bucket, prefix, delimiter="/")
        return _chain(lister(s3, bucket, prefix + sub, relative_to=prefix) for sub in shard.prefixes)

    def ranged(s3: Any, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        """Keys in [start, end): each overlapping directory and (if any) the top-level objects, in order."""
        dirs = _chain(
            lister(s3, bucket, prefix + sub, relative_to=prefix, start=shard.start, end=shard.end)
            for sub in shard.prefixes
        )
        if not shard.top_level:
            return dirs
        top = lister(s3, bucket, prefix, delimiter="/", start=shard.start, end=shard.end)
        return heapq.merge(top, dirs, key=lambda o: o.key)

    snapshot = None
    if shard.inventory is not None:
        result.mode = "inventory"
        snapshot = result.snapshot_at = shard.inventory.snapshot_at
        rows: Iterator[ObjectInfo] = iter(())
        if shard.inventory.key:
            rows = iter_inventory(
                src_s3, shard.inventory.bucket, shard.inventory.key, shard.inventory.columns, src_loc.prefix
            )
        source = CountingStream(_guard_range(rows, shard, result))
        replica = CountingStream(ranged(rep_s3, rep_loc.bucket, rep_loc.prefix))
    else:
        source = CountingStream(side(src_s3, src_loc.bucket, src_loc.prefix))
        replica = CountingStream(side(rep_s3, rep_loc.bucket, rep_loc.prefix))

    def resolve(a: ObjectInfo, b: ObjectInfo) -> tuple[ObjectInfo, ObjectInfo]:
        # Only pairs whose listing data cannot prove equal content cost a HEAD on each side.
        return (
            _with_checksum(src_s3, src_loc.bucket, src_loc.prefix, a),
            _with_checksum(rep_s3, rep_loc.bucket, rep_loc.prefix, b),
        )

    diffs = diff_listings(
        source,
        replica,
        resolve=resolve,
        report_unverified=True,
        on_pair=lambda a, b: count_version_gap(result, a, b),
    )
    tally(result, diffs, snapshot_at=snapshot)
    result.source_objects, result.replica_objects = source.count, replica.count
    result.first_key, result.last_key = source.first_key, source.last_key
    if shard.versions:
        result.source_versions, result.replica_versions = source.versions, replica.versions
        result.version_gaps = result.version_gaps or 0
    for stream, name in ((source, "source"), (replica, "replica")):
        if stream.out_of_order is not None:
            result.status = "incomplete"
            result.reason = f"the {name} listing is not in key order at {stream.out_of_order!r}"
    return result


def _chain(streams: Iterator[Iterator[ObjectInfo]]) -> Iterator[ObjectInfo]:
    for stream in streams:
        yield from stream


def _guard_range(rows: Iterator[ObjectInfo], shard: Shard, result: ShardResult) -> Iterator[ObjectInfo]:
    """Inventory rows must fall in the shard's range; rows outside it mean the files overlap."""
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


def _with_checksum(s3: Any, bucket: str, prefix: str, obj: ObjectInfo) -> ObjectInfo:
    try:
        found = head_checksum(s3, bucket, prefix + obj.key, obj.version_id)
    except Exception as exc:
        if is_transient(exc):
            raise
        return obj
    if not found:
        return obj
    return obj.model_copy(update={"checksum": found[0], "checksum_type": found[1] or obj.checksum_type})


# -- bucket settings --------------------------------------------------------------------------------------
def _check_buckets(plan: DRPlan, asset: S3Asset, shard: Shard) -> ShardResult:
    src = bucket_protection(_s3(plan, "primary"), asset.source.bucket)
    rep = bucket_protection(_s3(plan, "secondary"), asset.replica.bucket)
    result = ShardResult(shard=shard, mode="config", detail={"buckets": {"source": src, "replica": rep}})
    problems = [f"{b['bucket']} {name}: {err}" for b in (src, rep) for name, err in b["errors"].items()]
    if problems:
        result.status = "incomplete"
        result.reason = "cannot read bucket settings: " + "; ".join(problems)
    result.findings = bucket_findings(asset, src, rep, plan.asset_rpo(asset))
    return result


def bucket_findings(
    asset: S3Asset, src: dict[str, Any], rep: dict[str, Any], objective: timedelta
) -> list[Finding]:
    """What the source and replica bucket settings mean for the asset's recoverability (pure)."""
    out: list[Finding] = []
    for side, b in (("source", src), ("replica", rep)):
        if "versioning" in b["errors"]:
            continue
        if b.get("versioning") != "Enabled":
            out.append(
                Finding(
                    severity="breach",
                    code=f"{side}-unversioned",
                    message=f"versioning is {b.get('versioning') or 'off'} on {side} bucket {b['bucket']}: "
                    "S3 replication needs it on both buckets, and without it an overwrite destroys "
                    "the old copy",
                )
            )
        if "encryption" not in b["errors"] and not b.get("encryption"):
            out.append(
                Finding(
                    severity="warning",
                    code=f"{side}-unencrypted",
                    message=f"{side} bucket {b['bucket']} has no default encryption (use SSE-KMS or SSE-S3)",
                )
            )
    if src.get("encryption", "").startswith("aws:kms") and rep.get("encryption") == "AES256":
        out.append(
            Finding(
                severity="warning",
                code="replica-weaker-encryption",
                message=f"the source uses SSE-KMS but replica {rep['bucket']} only SSE-S3",
            )
        )
    if "replication" not in src["errors"]:
        rule = _replication_rule(src.get("replication_rules") or [], asset)
        if rule is None:
            out.append(
                Finding(
                    severity="breach",
                    code="no-replication-rule",
                    message="no enabled replication rule copies "
                    f"s3://{asset.source.bucket}/{asset.source.prefix} to {asset.replica.bucket}: "
                    "new objects will not reach the replica",
                )
            )
        else:
            dest = rule.get("Destination") or {}
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
    if "object_lock" not in rep["errors"]:
        if not rep.get("object_lock"):
            out.append(
                Finding(
                    severity="warning",
                    code="replica-not-locked",
                    message=f"replica bucket {rep['bucket']} has no Object Lock: anyone (or any ransomware) "
                    "allowed to delete can erase every version of the backup",
                )
            )
        elif not rep.get("default_retention"):
            out.append(
                Finding(
                    severity="warning",
                    code="replica-lock-without-retention",
                    message=f"replica bucket {rep['bucket']} has Object Lock but no default retention: new "
                    "replicas are not protected from deletion",
                )
            )
    return out


def _replication_rule(rules: list[dict[str, Any]], asset: S3Asset) -> dict[str, Any] | None:
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


# -- model registry ---------------------------------------------------------------------------------------
def _check_registry(plan: DRPlan, asset: ModelRegistryAsset, shard: Shard) -> ShardResult:
    if asset.registry == "s3-manifest":
        return _check_manifests(plan, asset, shard)
    return _check_model_packages(plan, asset, shard)


def _sample(result: ShardResult, kind: str, key: str, why: str, changed: datetime | None) -> None:
    if kind == "missing":
        result.missing += 1
    elif kind == "different":
        result.different += 1
    else:
        result.unverified += 1
    if (
        changed is not None
        and kind != "unverified"
        and (result.oldest_unreplicated_at is None or changed < result.oldest_unreplicated_at)
    ):
        result.oldest_unreplicated_at = changed
        result.oldest_unreplicated_key = key
    if len(result.samples) < 20:
        result.samples.append(ObjectSample(kind=kind, key=key, why=why, source_last_modified=changed))


def _check_manifests(plan: DRPlan, asset: ModelRegistryAsset, shard: Shard) -> ShardResult:
    """Every deployable version in the primary's manifests exists in the secondary's, with the same
    SHA-256, and the artifact the secondary's manifest names really has those bytes."""
    assert asset.source is not None and asset.replica is not None
    src_s3, rep_s3 = _s3(plan, "primary"), _s3(plan, "secondary")
    result = ShardResult(shard=shard, mode="registry")
    checked: list[dict[str, Any]] = []
    for manifest in iter_objects(src_s3, asset.source.bucket, asset.source.prefix):
        if not manifest.key.endswith(".json"):
            continue
        primary = _read_json(src_s3, asset.source.bucket, asset.source.prefix + manifest.key)
        replica_doc = _read_json(rep_s3, asset.replica.bucket, asset.replica.prefix + manifest.key)
        result.replica_objects += 0 if replica_doc is None else 1
        replica_versions = {str(v.get("version")): v for v in (replica_doc or {}).get("versions", [])}
        for version in (primary or {}).get("versions", []):
            if not version.get("deployable"):
                continue
            result.source_objects += 1
            name = f"{manifest.key}#{version.get('version')}"
            expected = str(version.get("sha256", "")).lower()
            theirs = replica_versions.get(str(version.get("version")))
            entry: dict[str, Any] = {"model": name, "sha256": expected}
            checked.append(entry)
            if theirs is None:
                _sample(
                    result, "missing", name, "version not in the secondary's registry", manifest.last_modified
                )
                continue
            if str(theirs.get("sha256", "")).lower() != expected:
                _sample(
                    result,
                    "different",
                    name,
                    "the secondary's registry names another checksum",
                    manifest.last_modified,
                )
                continue
            if not theirs.get("deployable"):
                _sample(result, "different", name, "not deployable in the secondary", manifest.last_modified)
                continue
            bucket, _, key = str(theirs.get("artifact", "")).removeprefix("s3://").partition("/")
            if bucket != asset.replica.bucket:
                result.findings.append(
                    Finding(
                        severity="breach",
                        code="replica-artifact-outside-replica",
                        message=f"the secondary's registry serves {name} from s3://{bucket}/{key}, not from "
                        f"replica bucket {asset.replica.bucket}: the secondary depends on another region",
                    )
                )
            actual, how = _artifact_sha256(rep_s3, bucket, key)
            entry.update(artifact=f"s3://{bucket}/{key}", actual=actual, verified_by=how)
            if actual is None:
                _sample(
                    result,
                    "missing",
                    name,
                    f"artifact s3://{bucket}/{key} is missing",
                    manifest.last_modified,
                )
            elif actual != expected:
                _sample(
                    result,
                    "different",
                    name,
                    f"artifact SHA-256 {actual[:12]}... != registered {expected[:12]}... "
                    "(corrupt or wrong model)",
                    manifest.last_modified,
                )
                result.findings.append(
                    Finding(
                        severity="breach",
                        code="artifact-checksum-mismatch",
                        message=f"the secondary would load different bytes for {name} than the primary "
                        f"registered (s3://{bucket}/{key}): restore it from the primary",
                    )
                )
    result.detail = {"registry_versions": checked}
    return result


def _read_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    except Exception as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise


def _artifact_sha256(s3: Any, bucket: str, key: str) -> tuple[str | None, str]:
    """(hex SHA-256, how): the stored checksum when S3 has a full-object one, else the streamed bytes."""
    try:
        stored = stored_sha256_hex(s3, bucket, key)
        if stored is not None:
            return stored, "stored-checksum"
        return sha256_of_object(s3, bucket, key), "read"
    except Exception as exc:
        if error_code(exc) in NOT_FOUND:
            return None, "missing"
        raise


def _check_model_packages(plan: DRPlan, asset: ModelRegistryAsset, shard: Shard) -> ShardResult:
    """SageMaker: every Approved package in the primary group has a counterpart in the secondary's with the
    same artifact identity (CustomerMetadataProperties sha256, else the container's ModelDataETag)."""
    assert asset.model_package_group is not None
    result = ShardResult(shard=shard, mode="registry")
    primary = list(
        _approved_packages(aws.client("sagemaker", plan.regions.primary), asset.model_package_group)
    )
    secondary = {
        ident
        for ident, _, _ in _approved_packages(
            aws.client("sagemaker", plan.regions.secondary), asset.model_package_group
        )
    }
    result.source_objects, result.replica_objects = len(primary), len(secondary)
    for ident, arn, created in primary:
        if ident is None:
            _sample(result, "unverified", arn, "no sha256 metadata or ModelDataETag to compare", created)
        elif ident not in secondary:
            _sample(
                result,
                "missing",
                arn,
                f"no approved package with artifact {ident[:16]} in the secondary",
                created,
            )
    return result


def _approved_packages(sm: Any, group: str) -> Iterator[tuple[str | None, str, datetime | None]]:
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "ModelApprovalStatus": "Approved"}
    while True:
        page = sm.list_model_packages(**kwargs)
        for summary in page.get("ModelPackageSummaryList", []):
            arn = summary["ModelPackageArn"]
            desc = sm.describe_model_package(ModelPackageName=arn)
            meta = desc.get("CustomerMetadataProperties") or {}
            containers = (desc.get("InferenceSpecification") or {}).get("Containers") or [{}]
            ident = meta.get("sha256") or containers[0].get("ModelDataETag")
            yield (str(ident).lower() if ident else None), arn, summary.get("CreationTime")
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


# -- DynamoDB ---------------------------------------------------------------------------------------------
def _check_table(plan: DRPlan, asset: DynamoDBAsset, shard: Shard, now: datetime) -> ShardResult:
    """PITR on and its latest restorable time within the RPO (or a recent enough backup), and the replica
    table present in the secondary region."""
    primary = aws.client("dynamodb", plan.regions.primary)
    secondary = aws.client("dynamodb", plan.regions.secondary)
    result = ShardResult(shard=shard, mode="table")
    objective = plan.asset_rpo(asset)
    pitr = primary.describe_continuous_backups(TableName=asset.table)["ContinuousBackupsDescription"]
    desc = pitr.get("PointInTimeRecoveryDescription") or {}
    restore_point: datetime | None = None
    if desc.get("PointInTimeRecoveryStatus") == "ENABLED" and desc.get("LatestRestorableDateTime"):
        restore_point = desc["LatestRestorableDateTime"]
        result.detail["pitr"] = {"status": "ENABLED", "latest_restorable": restore_point.isoformat()}
    else:
        backups = primary.list_backups(TableName=asset.table).get("BackupSummaries", [])
        times = [b["BackupCreationDateTime"] for b in backups if b.get("BackupStatus") == "AVAILABLE"]
        result.detail["pitr"] = {"status": desc.get("PointInTimeRecoveryStatus", "DISABLED")}
        if times:
            restore_point = max(times)
            result.detail["latest_backup"] = restore_point.isoformat()
            result.findings.append(
                Finding(
                    severity="warning",
                    code="pitr-disabled",
                    message=f"point-in-time recovery is off on {asset.table}; the newest on-demand backup "
                    f"({restore_point:%Y-%m-%d %H:%M} UTC) is the restore point",
                )
            )
        else:
            result.findings.append(
                Finding(
                    severity="breach",
                    code="pitr-disabled",
                    message=f"point-in-time recovery is off on {asset.table} and it has no backup: there "
                    "is no restore point at all. Enable PITR",
                )
            )
    result.source_objects = 1
    if restore_point is not None:
        result.oldest_unreplicated_at = restore_point
        result.oldest_unreplicated_key = asset.table
        if now - restore_point > objective:
            result.samples.append(
                ObjectSample(
                    kind="stale",
                    key=asset.table,
                    why=f"latest restore point is {now - restore_point} old (objective {objective})",
                    source_last_modified=restore_point,
                )
            )
    try:
        table = secondary.describe_table(TableName=asset.replica_table_name)["Table"]
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        result.missing += 1
        result.findings.append(
            Finding(
                severity="breach",
                code="replica-table-missing",
                message=f"replica table {asset.replica_table_name} does not exist in "
                f"{plan.regions.secondary}",
            )
        )
        return result
    result.replica_objects = 1
    if table.get("TableStatus") != "ACTIVE":
        result.findings.append(
            Finding(
                severity="warning",
                code="replica-table-not-active",
                message=f"replica table {asset.replica_table_name} is {table.get('TableStatus')}",
            )
        )
    replica_pitr = secondary.describe_continuous_backups(TableName=asset.replica_table_name)
    status = (replica_pitr["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription") or {}).get(
        "PointInTimeRecoveryStatus"
    )
    if status != "ENABLED":
        result.findings.append(
            Finding(
                severity="warning",
                code="replica-pitr-disabled",
                message=f"PITR is off on replica table {asset.replica_table_name}: after a failover the "
                "table serving traffic has no point-in-time recovery",
            )
        )
    return result


# -- finishing a run --------------------------------------------------------------------------------------
def finalize(
    plan: DRPlan,
    shards: list[Shard],
    results: list[ShardResult],
    *,
    run_id: str,
    trigger: str,
    started_at: datetime,
    now: datetime,
    execution: str | None = None,
    problems: list[str] | None = None,
    replication_failures: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> VerificationReport:
    """The report of a run from its shard results and the replication failures events reported (no I/O)."""
    problems = list(problems or [])
    assets: list[AssetVerification] = []
    for asset in plan.assets:
        own = [s for s in shards if s.asset == asset.name]
        got = [r for r in results if r.shard.asset == asset.name]
        merged = merge_asset(
            asset=asset.name,
            kind=asset.kind,
            role=getattr(asset, "role", None),
            objective=plan.asset_rpo(asset),
            results=got,
            expected=len(own),
            now=now,
        )
        for code, seen in sorted((replication_failures or {}).get(asset.name, {}).items()):
            merged.findings.append(failure_finding(code, seen, outstanding=merged.mismatches > 0))
        names = {a.name for a in plan.assets}
        for problem in problems:
            owner = problem.split(":", 1)[0]
            if owner == asset.name or owner not in names:
                merged.incomplete_reasons.append(problem)
                if merged.verdict in ("green", "at-risk"):
                    merged.verdict = "incomplete"
        assets.append(merged)
    verdict = worst(a.verdict for a in assets)
    if problems and verdict in ("green", "at-risk"):
        verdict = "incomplete"
    summary = report_summary(plan.workload, verdict, assets)
    return VerificationReport(
        workload=plan.workload,
        run_id=run_id,
        trigger=trigger,
        execution=execution,
        started_at=started_at,
        finished_at=now,
        verdict=verdict,
        summary=summary,
        assets=assets,
        problems=problems,
    )


def failure_finding(code: str, seen: dict[str, Any], *, outstanding: bool) -> Finding:
    """A replication failure reason S3 reported for an asset, said for humans: can a retry fix it?"""
    fix = (
        "a retry can fix it"
        if seen.get("retry_fixes")
        else f"a retry CANNOT fix it until someone acts: {seen.get('action', 'fix the configuration')}"
    )
    return Finding(
        severity="warning" if outstanding else "info",
        code=f"replication-failed-{code}",
        message=f"S3 reported {seen.get('count', 1)} replication failure(s) {code} "
        f"(last: {seen.get('last_key')} at {seen.get('last_at')}, "
        f"{seen.get('redrive', 'not re-driven')}); {fix}",
    )


def replication_failures(plan: DRPlan, d: Deps) -> dict[str, dict[str, dict[str, Any]]]:
    """Failure reasons the replication events recorded per asset since its last clean verification."""
    try:
        return {s.asset: s.failures for s in asset_states(d).all(plan.workload) if s.failures}
    except Exception as exc:
        if is_transient(exc):
            raise
        logger.warning("asset states unreadable", workload=plan.workload, error=str(exc))
        return {}


def publish(plan: DRPlan, report: VerificationReport, d: Deps) -> VerificationReport:
    """Evidence (JSON + Markdown), ledger, metrics, asset state, and an alert when an objective is breached
    or the run could not prove it."""
    store = evidence_store(d)
    base = run_prefix(plan.workload, report.run_id)
    report.evidence = {"json": store.uri(base + "report.json"), "markdown": store.uri(base + "report.md")}
    store.put_text(base + "report.md", render_markdown(report))
    store.put_json(base + "report.json", report.model_dump(mode="json"))
    store.put_json(
        latest_key(plan.workload),
        {"run_id": report.run_id, "verdict": report.verdict, "at": report.finished_at, **report.evidence},
    )
    d.ledger.record(
        plan.workload,
        "verification",
        report.verdict,
        report.summary,
        actor="lifeboat" if report.trigger != "operator" else "operator",
        execution=report.execution,
        detail={
            "run_id": report.run_id,
            "trigger": report.trigger,
            "evidence": report.evidence,
            "assets": [
                {
                    "asset": a.asset,
                    "verdict": a.verdict,
                    "measured_rpo_seconds": a.measured_rpo_seconds,
                    "objective_seconds": a.objective_seconds,
                    "mismatches": a.mismatches,
                    "extra": a.extra,
                    "unverified": a.unverified,
                    "findings": [f.code for f in a.findings],
                }
                for a in report.assets
            ],
        },
        at=report.finished_at,
    )
    for a in report.assets:
        dims = {"workload": plan.workload, "asset": a.asset}
        emit("VerificationObjectsChecked", a.objects_checked, **dims)
        emit("VerificationMismatches", a.mismatches + a.extra, **dims)
        if a.measured_rpo_seconds is not None:
            emit("VerificationMeasuredRPO", a.measured_rpo_seconds, "Seconds", **dims)
        emit("VerificationObjectiveMet", 0 if a.verdict in ("breached", "incomplete") else 1, **dims)
        _record_asset_state(plan, a, report, d)
    emit("VerificationRun", 1, workload=plan.workload, verdict=report.verdict)
    # The deployed "<workload>-rpo-breach" alarm watches this metric (infra/template.py RPO_BREACH_METRIC).
    emit("RPOBreached", sum(1 for a in report.assets if a.verdict == "breached"), workload=plan.workload)
    if report.verdict in ("breached", "incomplete"):
        subject = {
            "breached": f"[Lifeboat] {plan.workload}: RPO objective BREACHED",
            "incomplete": f"[Lifeboat] {plan.workload}: backup verification INCOMPLETE",
        }[report.verdict]
        try:
            d.notifier.publish(plan, subject, report.summary, {"run_id": report.run_id, **report.evidence})
        except Exception as exc:  # the alert failing must not lose the report
            logger.error("verification alert failed", workload=plan.workload, error=str(exc))
    logger.info("verification", workload=plan.workload, run_id=report.run_id, verdict=report.verdict)
    return report


def _record_asset_state(plan: DRPlan, a: AssetVerification, report: VerificationReport, d: Deps) -> None:
    def change(state: AssetReplicationState) -> None:
        state.objective_seconds = a.objective_seconds
        state.last_verification = {
            "run_id": report.run_id,
            "verdict": a.verdict,
            "at": report.finished_at.isoformat(),
            "measured_rpo_seconds": a.measured_rpo_seconds,
            "mismatches": a.mismatches,
        }
        if a.incomplete_reasons:
            return  # an incomplete run proves nothing about what is pending
        # A complete run knows exactly what is outstanding: it replaces what events had accumulated.
        state.pending = {}
        if a.mismatches == 0:
            state.failures = {}  # every failed object is in the replica now
        for s in a.samples:
            if s.kind in ("missing", "different", "stale") and s.source_last_modified is not None:
                state.add_pending(s.key, s.source_last_modified)
        if a.oldest_unreplicated_key and a.oldest_unreplicated_at:
            state.add_pending(a.oldest_unreplicated_key, a.oldest_unreplicated_at)
        state.measured_rpo_seconds = a.measured_rpo_seconds
        state.measured_at = report.finished_at
        state.measured_by = "verification"

    try:
        asset_states(d).update(plan.workload, a.asset, change)
    except Exception as exc:  # the report stands even if the state write fails
        logger.error("asset state not updated", workload=plan.workload, asset=a.asset, error=str(exc))


# -- on demand (CLI / API) --------------------------------------------------------------------------------
def verify_workload(
    workload: str,
    d: Deps,
    *,
    trigger: str = "operator",
    progress: Progress | None = None,
    max_workers: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> VerificationReport:
    """Run a whole verification in this process (the shards in a thread pool) and publish its report."""
    plan = d.plans.get(workload)
    started = d.clock()
    run_id = f"{trigger}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    try:
        shards, problems = plan_shards(plan, d)
    except Exception as exc:
        shards, problems = [], [f"planning failed: {_describe(exc)}"]
    if progress:
        progress("planned", shards)

    def one(shard: Shard) -> ShardResult:
        delay = 0.5
        for attempt in range(1, SHARD_ATTEMPTS + 1):
            try:
                return run_shard(plan, shard, d)
            except Exception as exc:
                if attempt == SHARD_ATTEMPTS:
                    return ShardResult(
                        shard=shard,
                        status="incomplete",
                        reason=f"gave up after {attempt} attempts: {_describe(exc)}",
                    )
                sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    results: list[ShardResult] = []
    # Workers see this context's settings (the local cloud runs copies of Lifeboat for two regions).
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="verify") as pool:
        for result in pool.map(lambda shard: context.copy().run(one, shard), shards):
            results.append(result)
            if progress:
                progress("shard", result)
    report = finalize(
        plan,
        shards,
        results,
        run_id=run_id,
        trigger=trigger,
        started_at=started,
        now=d.clock(),
        problems=problems,
        replication_failures=replication_failures(plan, d),
    )
    return publish(plan, report, d)


# -- Step Functions tasks ---------------------------------------------------------------------------------
def task_plan_run(inp: PlanRunInput, d: Deps) -> PlannedRun:
    """First state: plan the shards and store them where the Distributed Map's ItemReader reads them."""
    plan = d.plans.get(inp.workload)
    shards, problems = plan_shards(plan, d)
    store = evidence_store(d)
    base = run_prefix(plan.workload, inp.run_id)
    store.put_json(base + "shards.json", [s.model_dump(mode="json") for s in shards])
    if problems:
        store.put_json(base + "problems.json", problems)
    trigger = str(inp.input.get("trigger") or "execution")
    return PlannedRun(
        workload=plan.workload,
        run_id=inp.run_id,
        trigger=trigger,
        started_at=inp.started or d.clock(),
        shards=ShardsLocation(bucket=store.bucket, key=base + "shards.json", count=len(shards)),
    )


def task_run_shard(inp: ShardInput, d: Deps) -> dict[str, Any]:
    """One Map item: check the shard and store its result (only a small summary travels in the state)."""
    plan = d.plans.get(inp.workload)
    result = run_shard(plan, inp.shard, d)
    key = f"{run_prefix(plan.workload, inp.run_id)}shards/{inp.shard.index:06d}.json"
    evidence_store(d).put_json(key, result.model_dump(mode="json"))
    return {"index": inp.shard.index, "status": result.status, "mismatches": result.mismatches}


def task_finalize(inp: FinalizeInput, d: Deps) -> dict[str, Any]:
    """Last state (also reached from every Catch): merge what the shards stored, publish the report."""
    plan = d.plans.get(inp.workload)
    store = evidence_store(d)
    base = run_prefix(plan.workload, inp.run_id)
    problems = list(store.get_json(base + "problems.json") or [])
    error = inp.context.get("error")
    if error:
        problems.append(
            f"the run stopped early: {error.get('Error', 'error')}: {str(error.get('Cause', ''))[:500]}"
        )
    raw_shards = store.get_json(base + "shards.json")
    shards = [Shard.model_validate(s) for s in raw_shards or []]
    if raw_shards is None and plan.assets:
        problems.append("no shards were planned")
    results = [ShardResult.model_validate(doc) for _, doc in store.iter_json(base + "shards/")]
    run = inp.context.get("run") or {}
    trigger = str(run.get("trigger") or (inp.context.get("trigger")) or "execution")
    started = inp.started or d.clock()
    report = finalize(
        plan,
        shards,
        results,
        run_id=inp.run_id,
        trigger=trigger,
        started_at=started,
        now=d.clock(),
        execution=inp.execution,
        problems=problems,
        replication_failures=replication_failures(plan, d),
    )
    publish(plan, report, d)
    return {
        "verdict": report.verdict,
        "summary": report.summary,
        "evidence": report.evidence,
        "assets": {a.asset: a.verdict for a in report.assets},
    }


def start_scheduled(d: Deps) -> dict[str, Any]:
    """The schedule: start one verification execution per plan, named from the hour (idempotent)."""
    now = d.clock()
    started: dict[str, Any] = {}
    for plan in d.plans.all():
        name = f"scheduled-{now:%Y%m%dT%H%M}"
        try:
            arn, new = d.executions.start(
                plan.workload, "verify", name, {"workload": plan.workload, "trigger": "schedule"}
            )
        except LookupError as exc:
            started[plan.workload] = {"started": False, "reason": str(exc)}
            continue
        started[plan.workload] = {"started": new, "execution": arn}
    emit("VerificationScheduled", len(started))
    return started
