"""One module per kind of asset a plan protects, each an `AssetChecker` (`base.py`), found by its kind.

Verification, plan validation and both IAM renderers (`chalicelib.domain.permissions` for plan validation,
`infra.permissions` for the deployed roles) ask the registry; none of them knows the kinds. Adding a kind:
docs/architecture.md, "Adding an asset kind".
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.assets.base import AssetChecker
from chalicelib.adapters.assets.dynamodb import DynamoDBChecker
from chalicelib.adapters.assets.model_registry import ModelRegistryChecker
from chalicelib.adapters.assets.s3 import S3Checker
from chalicelib.models.grants import Capability, Grant
from chalicelib.models.plan import DRPlan

CHECKERS: dict[str, AssetChecker[Any]] = {
    checker.kind: checker for checker in (S3Checker(), ModelRegistryChecker(), DynamoDBChecker())
}
"""Asset kind (the plan's `assets[].kind`) -> its checker."""


def checker_for(asset: Any) -> AssetChecker[Any]:
    """The checker of an asset of the plan; LookupError for a kind nobody registered."""
    try:
        return CHECKERS[asset.kind]
    except KeyError:
        raise LookupError(f"no asset checker for kind {asset.kind!r} (asset {asset.name})") from None


def asset_grants(plan: DRPlan, capability: Capability | None = None) -> list[Grant]:
    """What the plan's assets need from IAM, in the plan's order (one capability, or all of them)."""
    return [
        g
        for asset in plan.assets
        for g in checker_for(asset).grants(asset, plan)
        if capability is None or g.capability == capability
    ]
