"""Model rollback, pure: which registry version an endpoint gets, or why it gets none.

The endpoint says what it serves (its SHA-256, model package or version); that is matched to a registry
version. Then:
- a named version (`to_version`) must exist, be approved and not be the one deployed;
- `latest` (restore primary before a failback) is the newest approved version, unless it is deployed;
- by default, the previous approved version: the newest approved one registered before the deployed one.
Each refusal says why, in words an operator can act on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from chalicelib.models.rollback import Deployed, RegistryVersion


class RollbackRefusal(ValueError):
    """The rollback cannot run as asked; the message says why."""


def deployed_version(versions: Sequence[RegistryVersion], current: Deployed) -> RegistryVersion | None:
    """The registry version the endpoint serves: by model package, then SHA-256, then artifact, then the
    version it reports (the strongest evidence first; None: not a registry version, or unknown)."""
    for attribute in ("package", "sha256", "artifact", "version"):
        value = getattr(current, attribute)
        if not value:
            continue
        found = [
            v for v in versions if getattr(v, attribute) and _same(attribute, getattr(v, attribute), value)
        ]
        if found:
            return max(found, key=lambda v: v.order)
    return None


def _same(attribute: str, a: str, b: str) -> bool:
    if attribute == "sha256":
        return a.lower() == b.lower()
    if attribute == "package":  # ARNs differ by region and account: the group/version tail identifies it
        return a.split(":model-package/")[-1].lower() == b.split(":model-package/")[-1].lower()
    if attribute == "artifact":  # replicas differ by bucket: the key identifies the artifact
        return a.removeprefix("s3://").partition("/")[2] == b.removeprefix("s3://").partition("/")[2]
    return a == b


def _names(versions: Iterable[RegistryVersion]) -> str:
    return ", ".join(v.version for v in versions) or "none"


def choose_target(
    versions: Sequence[RegistryVersion],
    current: Deployed,
    *,
    to_version: str | None = None,
    latest: bool = False,
    endpoint: str = "the endpoint",
) -> tuple[RegistryVersion | None, RegistryVersion]:
    """(the deployed registry version or None, the version to deploy), or RollbackRefusal."""
    if to_version is not None and latest:
        raise RollbackRefusal("name a version or ask for the latest approved one, not both")
    ordered = sorted(versions, key=lambda v: v.order)
    approved = [v for v in ordered if v.approved]
    now = deployed_version(ordered, current)
    if to_version is not None:
        named = [v for v in ordered if v.version == to_version]
        if not named:
            raise RollbackRefusal(
                f"the registry has no version {to_version!r} (approved: {_names(approved)})"
            )
        target = named[-1]
        if not target.approved:
            raise RollbackRefusal(
                f"version {to_version} is not approved ({target.status}); approved: {_names(approved)}"
            )
    elif latest:
        if not approved:
            raise RollbackRefusal("the registry has no approved version to deploy")
        target = approved[-1]
    else:
        if now is None:
            why = current.error or (
                f"it serves {current.version or '?'} (sha256 {(current.sha256 or '?')[:12]}), "
                "which is not a version of the registry"
            )
            raise RollbackRefusal(
                f"cannot tell which registry version {endpoint} serves ({why}): name the version to "
                f"deploy (approved: {_names(approved)})"
            )
        earlier = [v for v in approved if v.order < now.order]
        if not earlier:
            raise RollbackRefusal(
                f"there is no approved version before {now.version}, the one {endpoint} serves "
                f"(approved: {_names(approved)})"
            )
        target = earlier[-1]
    if now is not None and _is(now, target):
        raise RollbackRefusal(
            f"version {target.version} is already deployed on {endpoint}: nothing to roll back"
        )
    return now, target


def _is(a: RegistryVersion, b: RegistryVersion) -> bool:
    if a.sha256 and b.sha256:
        return a.sha256 == b.sha256
    return (a.version, a.package) == (b.version, b.package)


_NAME = re.compile(r"[^A-Za-z0-9-]+")


def resource_name(endpoint: str, version: str, at: datetime) -> str:
    """A SageMaker model or endpoint config name for `version` on `endpoint`: at most 63 characters of
    letters, digits and hyphens, unique per second (`<endpoint>-v<version>-<YYYYmmddTHHMMSS>`)."""
    stamp = f"{at.astimezone(UTC):%Y%m%dT%H%M%S}"
    tail = f"-v{_NAME.sub('-', version).strip('-')}-{stamp}"[:40]
    return f"{_NAME.sub('-', endpoint).strip('-')[: 63 - len(tail)]}{tail}".strip("-")


def poll_interval(polls: int) -> int:
    """Seconds to wait before looking at an updating endpoint again: 5, 10, 20, then 30 (SageMaker takes
    minutes; the state machine's history stays small)."""
    return min(30, 5 * 2 ** min(polls, 3))
