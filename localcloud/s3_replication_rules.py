"""The local cloud's GetBucketReplication returns the rules as they were put, like S3.

moto 5.2.5 stores a bucket's replication rules as given but answers GetBucketReplication with two fields made
up: `DeleteMarkerReplication` always Disabled and `Filter` always `{"Prefix": ""}` (the whole bucket). So a
rule that replicates deletions read back as one that does not, and a rule for one prefix as one for every key.
Verification judges both (whether deletions replicate, whether the rule covers the asset's prefix), so the
local cloud would report findings AWS never would.

This patches `S3Response.get_bucket_replication` (`GUARDED_INTERNALS`, checked by
tests/integration/test_moto_guard.py) to answer with the stored rules' own DeleteMarkerReplication and
Filter (or the V1 `Prefix`), falling back to moto's made-up values only where a rule has none.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.s3.exceptions import ReplicationConfigurationNotFoundError
from moto.s3.responses import S3Response

GUARDED_INTERNALS: list[tuple[str, str, str]] = [
    (
        "moto.s3.responses",
        "S3Response.get_bucket_replication",
        "(self) -> str | tuple[int, dict[str, typing.Any], str | bytes]",
    ),
    (
        "moto.s3.models",
        "S3Backend.get_bucket_replication",
        "(self, bucket_name: 'str') -> 'dict[str, Any] | None'",
    ),
]

_original = S3Response.__dict__["get_bucket_replication"]
_install_lock = threading.Lock()
_installed = False


def _filter(rule: dict[str, Any]) -> dict[str, Any]:
    """The rule's filter as S3 returns it: Prefix, Tag or And, with an empty prefix spelled ""."""
    found = rule.get("Filter")
    if isinstance(found, dict) and found:
        return {k: ("" if v is None else v) for k, v in found.items()}
    return {"Prefix": rule.get("Prefix") or ""}


def rules_as_put(replication: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored rules (moto's parsed request) as GetBucketReplication returns them in S3."""
    out = []
    for rule in replication["Rule"]:
        marker = rule.get("DeleteMarkerReplication") or {}
        out.append(
            {
                "ID": rule["ID"],
                "Priority": rule["Priority"],
                "Status": rule["Status"],
                "DeleteMarkerReplication": {"Status": marker.get("Status") or "Disabled"},
                "Filter": _filter(rule),
                "Destination": rule["Destination"],
            }
        )
    return out


def _patched_get_bucket_replication(self: S3Response) -> Any:
    self.data["Action"] = "GetBucketReplication"
    replication = self.backend.get_bucket_replication(self.bucket_name)
    if not replication:
        raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
    configuration = {"Role": replication["Role"], "Rules": rules_as_put(replication)}
    return self.serialized(ActionResult({"ReplicationConfiguration": configuration}))


def install() -> None:
    """Patch moto (idempotent)."""
    global _installed
    with _install_lock:
        if not _installed:
            S3Response.get_bucket_replication = _patched_get_bucket_replication  # type: ignore[method-assign]
            _installed = True


def uninstall() -> None:
    """Restore moto's own method (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            S3Response.get_bucket_replication = _original  # type: ignore[method-assign]
            _installed = False


def installed() -> bool:
    return _installed
