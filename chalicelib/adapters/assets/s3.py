"""S3 assets: objects replicated from a bucket in the primary region to one in the secondary region.

Verification plans one bucket-settings shard (`s3-config`) and object shards (`s3-objects`) that partition
the asset's keys: by "directory" of the listings, or by inventory data file when S3 Inventory is configured.
Each object shard merge-joins the two sides' listings (`domain/listings.py`); verdicts are in
`chalicelib.domain.assets.s3`.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from chalicelib.adapters.assets.base import (
    ClientFor,
    ShardPlan,
    describe_error,
    factory_client,
    grant,
    replicated_objects_grants,
    s3_list_grant,
    s3_objects,
)
from chalicelib.adapters.errors import is_transient
from chalicelib.adapters.resources import ResourceReader
from chalicelib.adapters.s3objects import (
    ReadAhead,
    bucket_protection,
    chain_ahead,
    directories,
    first_inventory_key,
    head_facts,
    inventory_base,
    inventory_columns,
    inventory_snapshot,
    is_versioned,
    iter_inventory,
    iter_object_versions,
    iter_objects,
    latest_inventory_manifest,
    sha256_of_version,
)
from chalicelib.clock import Clock
from chalicelib.domain.assets.s3 import (
    bucket_findings,
    directory_shards,
    inventory_shards,
    replication_finding,
    versioning_finding,
    within_range,
)
from chalicelib.domain.listings import ObjectInfo, diff_listings
from chalicelib.domain.verification import CountingStream, count_proof, count_version_gap, tally
from chalicelib.invariants import present
from chalicelib.models.grants import Grant, s3_arn
from chalicelib.models.live_checks import LiveCheck, LiveFinding
from chalicelib.models.plan import DRPlan, S3Asset, S3Location
from chalicelib.models.verification import Shard, ShardResult
from chalicelib.observability import logger


class S3Checker:
    kind = "s3"
    checks = ("s3-config", "s3-objects")
    streams_differences = True
    """`check` takes a `sink` for the complete difference list (other kinds report their samples)."""

    def __init__(
        self, client: ClientFor | None = None, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client or factory_client
        self._monotonic = monotonic

    def _s3(self, plan: DRPlan, role: str) -> Any:
        return self._client("s3", plan.regions.primary if role == "primary" else plan.regions.secondary)

    # -- planning ---------------------------------------------------------------------------------------
    def plan(self, plan: DRPlan, asset: S3Asset) -> ShardPlan:
        out = ShardPlan(shards=[{"kind": "s3-config"}])
        try:
            out.shards += [{"kind": "s3-objects", **fields} for fields in self.object_shards(plan, asset)]
        except Exception as exc:
            if is_transient(exc):
                raise
            out.problems.append(f"{asset.name}: cannot plan the object comparison: {describe_error(exc)}")
        return out

    def object_shards(self, plan: DRPlan, asset: S3Asset) -> list[dict[str, Any]]:
        """The object shards' fields: one per inventory data file, else per group of "directories"."""
        src, rep = self._s3(plan, "primary"), self._s3(plan, "secondary")
        # The planning's requests depend on none of each other's answers: sent together, the plan waits for
        # the slowest chain of S3 round trips, not for their sum (errors surface in the order read below).
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="plan-s3") as pool:
            src_versioned = pool.submit(is_versioned, src, asset.source.bucket)
            rep_versioned = pool.submit(is_versioned, rep, asset.replica.bucket)
            rep_listed = pool.submit(directories, rep, asset.replica.bucket, asset.replica.prefix)
            if asset.inventory is not None:
                manifest = pool.submit(
                    latest_inventory_manifest,
                    src,
                    asset.inventory.bucket,
                    asset.inventory.prefix,
                    asset.source.bucket,
                )
                src_listed = None
            else:
                manifest = None
                src_listed = pool.submit(directories, src, asset.source.bucket, asset.source.prefix)
            versions = src_versioned.result() and rep_versioned.result()
            if manifest is not None:
                found = manifest.result()
                if found is not None:
                    return self._inventory_shards(src, asset, found[1], rep_listed.result())
                logger.warning("no inventory manifest; listing instead", asset=asset.name)
            src_dirs, src_loose = (
                src_listed or pool.submit(directories, src, asset.source.bucket, asset.source.prefix)
            ).result()
            rep_dirs, rep_loose = rep_listed.result()
        return directory_shards([*src_dirs, *rep_dirs], loose=src_loose or rep_loose, versions=versions)

    def _inventory_shards(
        self, s3: Any, asset: S3Asset, manifest: dict[str, Any], replica: tuple[list[str], bool]
    ) -> list[dict[str, Any]]:
        inventory = present(asset.inventory, f"the inventory of {asset.name}")
        columns = inventory_columns(manifest)
        bucket = manifest.get("destinationBucket", "").rsplit(":", 1)[-1] or inventory.bucket
        keys = [f["key"] for f in manifest.get("files", [])]
        # One small read per data file (its first rows), each waiting for S3 alone: read several at once.
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="plan-inventory") as pool:
            heads = list(pool.map(lambda key: first_inventory_key(s3, bucket, key, columns), keys))
        firsts = [(first, key) for first, key in zip(heads, keys, strict=True) if first is not None]
        dirs, loose = replica
        return inventory_shards(
            firsts,
            bucket=bucket,
            columns=columns,
            snapshot_at=inventory_snapshot(manifest),
            source_prefix=asset.source.prefix,
            replica_directories=dirs,
            replica_loose=loose,
        )

    # -- one shard --------------------------------------------------------------------------------------
    def check(
        self,
        plan: DRPlan,
        asset: S3Asset,
        shard: Shard,
        *,
        now: datetime,
        sink: Callable[[dict[str, Any]], None] | None = None,
    ) -> ShardResult:
        """One shard; `sink`, when given, sees every difference (and version gap) an object shard finds, as
        JSON-ready records: the complete list the report's samples are taken from."""
        if shard.kind == "s3-config":
            return self._check_buckets(plan, asset, shard)
        if shard.kind == "s3-objects":
            return self._compare_objects(plan, asset, shard, self._clock_from(now), sink)
        raise ValueError(f"an s3 asset has no {shard.kind!r} shards")

    def _clock_from(self, now: datetime) -> Clock:
        """The shard's clock: `now` (the run's time base) plus the time elapsed since, so a listing page is
        timed when it was read, on the same base as the run."""
        started = self._monotonic()
        return lambda: now + timedelta(seconds=self._monotonic() - started)

    def _check_buckets(self, plan: DRPlan, asset: S3Asset, shard: Shard) -> ShardResult:
        src = bucket_protection(self._s3(plan, "primary"), asset.source.bucket)
        rep = bucket_protection(self._s3(plan, "secondary"), asset.replica.bucket)
        detail = {"buckets": {"source": src.model_dump(mode="json"), "replica": rep.model_dump(mode="json")}}
        result = ShardResult(shard=shard, mode="config", detail=detail)
        problems = [f"{b.bucket} {name}: {err}" for b in (src, rep) for name, err in b.errors().items()]
        if problems:
            result.status = "incomplete"
            result.reason = "cannot read bucket settings: " + "; ".join(problems)
        result.findings = bucket_findings(asset, src, rep, plan.asset_rpo(asset))
        return result

    def _compare_objects(
        self,
        plan: DRPlan,
        asset: S3Asset,
        shard: Shard,
        clock: Clock,
        sink: Callable[[dict[str, Any]], None] | None,
    ) -> ShardResult:
        src_s3, rep_s3 = self._s3(plan, "primary"), self._s3(plan, "secondary")
        src_loc, rep_loc = asset.source, asset.replica
        result = ShardResult(shard=shard, mode="versions" if shard.versions else "listing")
        lister = partial(iter_object_versions if shard.versions else iter_objects, clock=clock)

        def side(s3: Any, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
            # Listed ahead by threads, several "directories" at once: S3's latency, not its work, is what
            # a listing waits for (each stream stays a few pages ahead, in key order).
            if shard.top_level:
                return ReadAhead(lister(s3, bucket, prefix, delimiter="/"))
            return chain_ahead(lister(s3, bucket, prefix + sub, relative_to=prefix) for sub in shard.prefixes)

        def ranged(s3: Any, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
            """Keys in [start, end): each overlapping directory and any top-level objects, in key order."""
            dirs = chain_ahead(
                lister(s3, bucket, prefix + sub, relative_to=prefix, start=shard.start, end=shard.end)
                for sub in shard.prefixes
            )
            if not shard.top_level:
                return dirs
            top = ReadAhead(lister(s3, bucket, prefix, delimiter="/", start=shard.start, end=shard.end))
            return _merged(top, dirs)

        snapshot = None
        if shard.inventory is not None:
            result.mode = "inventory"
            snapshot = result.snapshot_at = shard.inventory.snapshot_at
            rows: Iterator[ObjectInfo] = iter(())
            if shard.inventory.key:
                rows = iter_inventory(
                    src_s3,
                    shard.inventory.bucket,
                    shard.inventory.key,
                    shard.inventory.columns,
                    src_loc.prefix,
                )
            source = CountingStream(within_range(rows, shard, result))
            replica = CountingStream(ranged(rep_s3, rep_loc.bucket, rep_loc.prefix))
        else:
            source = CountingStream(side(src_s3, src_loc.bucket, src_loc.prefix))
            replica = CountingStream(side(rep_s3, rep_loc.bucket, rep_loc.prefix))

        def resolve(a: ObjectInfo, b: ObjectInfo) -> tuple[ObjectInfo, ObjectInfo]:
            # Only pairs whose listing data cannot judge them cost a HEAD on each side.
            return (
                _with_facts(src_s3, src_loc.bucket, src_loc.prefix, a),
                _with_facts(rep_s3, rep_loc.bucket, rep_loc.prefix, b),
            )

        read = BudgetedReader(
            (src_s3, src_loc.bucket, src_loc.prefix), (rep_s3, rep_loc.bucket, rep_loc.prefix), result
        )
        diffs = diff_listings(
            source,
            replica,
            resolve=resolve,
            read=read,
            report_unverified=True,
            on_pair=lambda a, b: count_version_gap(result, a, b, sink),
            on_proof=lambda proof: count_proof(result, proof),
        )
        try:
            tally(result, diffs, snapshot_at=snapshot, clock=clock, sink=sink)
        finally:  # listings still reading ahead (an error stopped the comparison) stop too
            source.close()
            replica.close()
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

    # -- IAM --------------------------------------------------------------------------------------------
    def grants(self, asset: S3Asset, plan: DRPlan) -> list[Grant]:
        sides = (("source", asset.source), ("replica", asset.replica))
        out: list[Grant] = []
        for side, loc in sides:
            out.append(
                s3_list_grant(loc, "asset-list", f"compare {asset.name} {side} listings (replication lag)")
            )
        out += replicated_objects_grants(asset.name, asset.source, asset.replica)
        if asset.inventory is not None:  # the source side read from S3 Inventory's manifests and data files
            files = S3Location(
                bucket=asset.inventory.bucket,
                prefix=inventory_base(asset.inventory.prefix, asset.source.bucket),
            )
            out.append(
                s3_list_grant(files, "asset-verify", f"verify {asset.name}: find the newest inventory")
            )
            why = f"verify {asset.name}: read its inventory"
            out.append(grant("asset-verify", "s3:GetObject", s3_objects(files), why, "Inventory"))
        for _, loc in sides:
            why = "validate versioning (required by replication)"
            out.append(grant("inspect", "s3:GetBucketVersioning", s3_arn(loc.bucket), why, "Buckets"))
        why = f"validate {asset.name} is replicated"
        out.append(
            grant("inspect", "s3:GetReplicationConfiguration", s3_arn(asset.source.bucket), why, "Buckets")
        )
        if asset.role == "model-artifacts":
            for _, loc in sides:
                why = "identify the model an endpoint serves (its artifact's checksum)"
                out.append(grant("model-identify", "s3:GetObject", s3_objects(loc), why, "HeadArtifact"))
        return out

    # -- plan validation --------------------------------------------------------------------------------
    def live_checks(self, plan: DRPlan, asset: S3Asset, reader: ResourceReader) -> list[LiveCheck]:
        primary, secondary = plan.regions.primary, plan.regions.secondary
        out = [
            LiveCheck(f"bucket {bucket}", partial(_versioning, reader, bucket, region))
            for bucket, region in ((asset.source.bucket, primary), (asset.replica.bucket, secondary))
        ]
        out.append(LiveCheck(asset.name, partial(_replication, plan, reader, asset)))
        return out


def _versioning(reader: ResourceReader, bucket: str, region: str) -> list[LiveFinding]:
    try:
        status = reader.bucket_versioning(bucket, region)
    except LookupError as exc:  # the bucket does not exist
        return [LiveFinding(f"bucket {bucket} ({region})", "error", str(exc))]
    return [versioning_finding(bucket, region, status)]


def _replication(plan: DRPlan, reader: ResourceReader, asset: S3Asset) -> list[LiveFinding]:
    rules = reader.bucket_replication_rules(asset.source.bucket, plan.regions.primary)
    return [replication_finding(asset, rules, plan.asset_rpo(asset))]


def _merged(top: ReadAhead, dirs: Iterator[ObjectInfo]) -> Iterator[ObjectInfo]:
    """Two listings merged in key order; closing it stops both (their threads)."""
    try:
        yield from heapq.merge(top, dirs, key=lambda o: o.key)
    finally:
        top.close()
        close = getattr(dirs, "close", None)
        if close is not None:
            close()


def _with_facts(s3: Any, bucket: str, prefix: str, obj: ObjectInfo) -> ObjectInfo:
    """The listing entry with what HeadObject adds (stored checksum, encryption); unchanged when HEAD is
    refused (an SSE-C object without its key, access denied): the pair then stays unproven."""
    try:
        found = head_facts(s3, bucket, prefix + obj.key, obj.version_id)
    except Exception as exc:
        if is_transient(exc):
            raise
        return obj
    update: dict[str, Any] = {"encryption": found["encryption"]}
    if found.get("checksum"):
        update["checksum"] = found["checksum"]
        update["checksum_type"] = found.get("checksum_type") or obj.checksum_type
    return dataclasses.replace(obj, **update)


Side = tuple[Any, str, str]
"""(client, bucket, asset prefix) of one side of a comparison."""


class BudgetedReader:
    """Reads and hashes both objects of a pair nothing else could judge, within the shard's byte budget.

    A pair that does not fit in what is left is not read (counted in `unread_over_budget`): it stays
    unverified, and the report says the budget ran out.
    """

    def __init__(self, source: Side, replica: Side, result: ShardResult) -> None:
        self._source, self._replica, self._result = source, replica, result
        self.remaining = result.shard.read_budget_bytes

    def __call__(self, a: ObjectInfo, b: ObjectInfo) -> tuple[str, str] | None:
        need = a.size + b.size
        if need > self.remaining:
            self._result.unread_over_budget += 1
            return None
        self.remaining -= need
        self._result.read_bytes += need
        try:
            return (self._hash(self._source, a), self._hash(self._replica, b))
        except Exception as exc:
            if is_transient(exc):
                raise
            logger.warning("object not readable for hashing", key=a.key, error=describe_error(exc))
            return None

    @staticmethod
    def _hash(side: Side, obj: ObjectInfo) -> str:
        s3, bucket, prefix = side
        return sha256_of_version(s3, bucket, prefix + obj.key, obj.version_id)
