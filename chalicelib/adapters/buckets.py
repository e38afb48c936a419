"""A plan's buckets in whichever region holds them: listings (as ObjectInfo streams), a version's headers, and
the copy that re-drives a failed replication. The S3 mechanics live in `s3objects`; this adapter owns the
clients (one per region, from the factory on each use)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.s3objects import copy_preserving, iter_objects
from chalicelib.domain.listings import ObjectInfo

S3ForRegion = Callable[..., Any]
"""(region, *, fail_fast=False) -> an S3 client of that region."""


def _factory_s3(region: str, *, fail_fast: bool = False) -> Any:
    return aws.client("s3", region, fail_fast=fail_fast)


class Buckets:
    def __init__(self, s3: S3ForRegion | None = None) -> None:
        # Not cached here: the factory caches, and resetting it (local cloud, tests) must reach us.
        self._s3 = s3 or _factory_s3

    def objects(
        self, region: str, bucket: str, prefix: str = "", *, fail_fast: bool = False
    ) -> Iterator[ObjectInfo]:
        """The objects under `prefix` (keys relative to it), listed page by page as they are consumed.
        `fail_fast` for a region that may be down (one retry, short timeouts): the caller handles it."""
        return iter_objects(self._s3(region, fail_fast=fail_fast), bucket, prefix)

    def head(self, region: str, bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
        """HeadObject of `key` (that version, when given)."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        return dict(self._s3(region).head_object(**kwargs))

    def copy(
        self,
        region: str,
        source_bucket: str,
        source_key: str,
        destination_bucket: str,
        destination_key: str,
        *,
        version_id: str | None = None,
    ) -> dict[str, Any]:
        """Copy an object (that version) into `destination_bucket`, which lives in `region`, keeping its
        metadata and tags; returns {version_id, etag} of the copy (`s3objects.copy_preserving`)."""
        return copy_preserving(
            self._s3(region),
            source_bucket,
            source_key,
            destination_bucket,
            destination_key,
            version_id=version_id,
        )
