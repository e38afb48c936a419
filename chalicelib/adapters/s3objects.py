"""Listing S3 objects as a stream of ObjectInfo (relative keys, one page in memory at a time)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import Any

from chalicelib.domain.listings import ObjectInfo


def iter_objects(s3: Any, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
    """ListObjectsV2 pages as ObjectInfo; listings carry no checksum values, so `checksum` stays None."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        page = s3.list_objects_v2(**kwargs)
        for obj in page.get("Contents", []):
            modified = obj["LastModified"]
            if modified.tzinfo is None:
                modified = modified.replace(tzinfo=UTC)
            yield ObjectInfo(
                key=obj["Key"][len(prefix) :],
                size=int(obj["Size"]),
                etag=str(obj.get("ETag", "")).strip('"') or None,
                last_modified=modified,
            )
        if not page.get("IsTruncated"):
            return
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
