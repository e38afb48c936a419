"""Lifeboat's copy in another region of the local cloud, as infra/ deploys one stack per region.

`provision_base` deploys the home copy in the local cloud's region; `provision_copy` adds a copy in another
region (the secondary region of the plans), so that Lifeboat keeps working when the home region's APIs are
down (localcloud/region_outage.py). A copy has its own Lambda functions (same names, their own environment:
AWS_REGION and its buckets), EventBridge rules, idempotency table, plan and evidence buckets, plan topics
and state machines, and a notifications inbox (`localcloud.stack.provision_plan` creates those in every copy).

The ledger and lock tables are DynamoDB global tables in AWS. moto has no replication, so the copy's region
is given the home region's table objects: a write through either region is read by both at once, a global
table without replication lag. What stays simplified (docs/deploy.md, docs/architecture.md): conditional
writes are strongly consistent across regions here (last-writer-wins races of a real global table cannot
happen), and every copy has every state machine (in AWS a plan's failover machine lives only in its
secondary region and its failback machine only in its primary).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localcloud.resources import (
    EVIDENCE_RETENTION_DAYS,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    _ensure_bucket,
    _ensure_function,
    _ensure_rule,
    _ensure_table,
    chalice_functions,
    names,
)

if TYPE_CHECKING:
    from localcloud.server import LocalCloud

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyNames:
    """The resources a copy in `region` owns (the global tables keep the home copy's names)."""

    stage: str
    region: str

    @property
    def plan_bucket(self) -> str:
        return f"{names(self.stage).plan_bucket}-{self.region}"

    @property
    def evidence_bucket(self) -> str:
        return f"{names(self.stage).evidence_bucket}-{self.region}"


def copy_env(cloud: LocalCloud, region: str, stage: str | None = None) -> dict[str, str]:
    """Environment of the copy in `region`: what its functions get, and what a process acting as that copy
    (a test, a drill run from the surviving region) gives `chalicelib.settings.environment`."""
    stage = stage or cloud.stage
    if region == cloud.region:
        return cloud.env(stage)
    copy = CopyNames(stage, region)
    return {
        **cloud.env(stage),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "LIFEBOAT_PLAN_BUCKET": copy.plan_bucket,
        "LIFEBOAT_EVIDENCE_BUCKET": copy.evidence_bucket,
    }


def provision_copy(
    cloud: LocalCloud, region: str, *, stage: str | None = None, chalice_app: Any = None
) -> dict[str, Any]:
    """Create (idempotently) Lifeboat's copy in `region`; provision_base must have run. Returns (and keeps
    in `cloud.resources["copies"][region]`) its names and function ARNs."""
    stage = stage or cloud.stage
    if region == cloud.region:
        raise ValueError(f"{region} is the local cloud's home region: provision_base deploys that copy")
    if "role_arn" not in cloud.resources:
        raise RuntimeError("provision_base(cloud) first: a copy shares the home copy's tables and role")
    n, copy = names(stage), CopyNames(stage, region)
    if chalice_app is None:
        chalice_app = importlib.import_module(cloud.handler_module).app

    dynamodb = cloud.client("dynamodb", region)
    _ensure_table(dynamodb, n.idempotency_table, [("id", "HASH")], ttl_attribute=IDEMPOTENCY_TTL_ATTRIBUTE)
    share_global_tables(cloud, region, [n.ledger_table, n.lock_table])

    s3 = cloud.client("s3", region)
    _ensure_bucket(s3, copy.plan_bucket, region)
    _ensure_bucket(s3, copy.evidence_bucket, region, lock_days=EVIDENCE_RETENTION_DAYS)

    lam, events = cloud.client("lambda", region), cloud.client("events", region)
    environment = copy_env(cloud, region, stage)
    functions: dict[str, str] = {}
    rules: dict[str, str] = {}
    for spec in chalice_functions(chalice_app):
        function_name = n.function(spec.name)
        arn = _ensure_function(lam, function_name, spec.handler, cloud.resources["role_arn"], environment)
        functions[function_name] = arn
        kind = type(spec.source).__name__
        if kind in ("CloudWatchEventConfig", "ScheduledEventConfig"):
            rule = n.event_rule(spec.name)
            rules[rule] = _ensure_rule(events, rule, spec.source, arn)
        # SQS sources stay with the home copy: the replication queue is fed by the primary's buckets.

    result = {
        "region": region,
        "plan_bucket": copy.plan_bucket,
        "evidence_bucket": copy.evidence_bucket,
        "functions": functions,
        "rules": rules,
        "env": environment,
    }
    cloud.resources.setdefault("copies", {})[region] = result
    return result


def share_global_tables(cloud: LocalCloud, region: str, tables: list[str]) -> None:
    """Make `tables` of the home region visible in `region` too (the same table objects in moto)."""
    from moto.dynamodb.models import dynamodb_backends

    home = dynamodb_backends[cloud.account_id][cloud.region]
    there = dynamodb_backends[cloud.account_id][region]
    for name in tables:
        table = home.tables.get(name)
        if table is None:
            raise RuntimeError(f"table {name} does not exist in {cloud.region}: provision_base first")
        existing = there.tables.get(name)
        if existing is not None and existing is not table:
            log.warning("replacing %s's own table %s by the global table of %s", region, name, cloud.region)
        there.tables[name] = table


def copies(cloud: LocalCloud) -> dict[str, dict[str, Any]]:
    """The copies other than the home one, by region."""
    return dict(cloud.resources.get("copies", {}))
