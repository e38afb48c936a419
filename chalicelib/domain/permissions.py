"""The IAM permissions Lifeboat's functions need to run one DR plan, derived from the plan alone.

Used by plan validation: either simulated against Lifeboat's role, or listed for a human to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from chalicelib.models.grants import Grant
from chalicelib.models.plan import (
    DRPlan,
    HttpEndpoint,
    SageMakerEndpoint,
)


class Permission(BaseModel):
    model_config = {"frozen": True}

    action: str = Field(description="IAM action, e.g. route53:ChangeResourceRecordSets.")
    resource: str = Field(description="Resource ARN the action must be allowed on ('*' when unscoped).")
    why: str = Field(description="Which step of failover/failback/verification needs it.")


@dataclass(frozen=True)
class LifeboatResources:
    """Where Lifeboat itself keeps state (from settings) and where it runs."""

    account: str
    region: str
    ledger_table: str
    lock_table: str
    plan_bucket: str
    state_machine_prefix: str
    partition: str = "aws"


def _s3_bucket(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"


def required_permissions(plan: DRPlan, lb: LifeboatResources, *, grants: Sequence[Grant]) -> list[Permission]:
    """What Lifeboat's functions need to run `plan`: its own state, endpoints, traffic, alarms, topics, and
    `grants` (what the plan's kinds declare, collected by the caller: the domain does not know the kinds)."""
    p, acct = lb.partition, lb.account
    out: list[Permission] = []

    def need(action: str, resource: str, why: str) -> None:
        perm = Permission(action=action, resource=resource, why=why)
        if perm not in out:
            out.append(perm)

    # Lifeboat's own state: the ledger is append-only (no DeleteItem); locks, claims and operator controls
    # come and go in the lock table.
    ledger = f"arn:{p}:dynamodb:{lb.region}:{acct}:table/{lb.ledger_table}"
    for action in ("GetItem", "PutItem", "Query"):
        need(f"dynamodb:{action}", ledger, "the ledger (append-only audit trail and workload state)")
    locks = f"arn:{p}:dynamodb:{lb.region}:{acct}:table/{lb.lock_table}"
    for action in ("GetItem", "PutItem", "DeleteItem"):
        need(f"dynamodb:{action}", locks, "lease locks, one-time claims and operator controls")
    need("s3:ListBucket", _s3_bucket(p, lb.plan_bucket), "read DR plans")
    need("s3:GetObject", f"{_s3_bucket(p, lb.plan_bucket)}/*", "read DR plans")
    for kind in ("failover", "failback"):
        machine = f"{lb.state_machine_prefix}-{plan.workload}-{kind}"[:80]
        need("states:StartExecution", f"arn:{p}:states:{lb.region}:{acct}:stateMachine:{machine}", kind)
        need("states:ListExecutions", f"arn:{p}:states:{lb.region}:{acct}:stateMachine:{machine}", "status")
        need(
            "states:DescribeExecution",
            f"arn:{p}:states:{lb.region}:{acct}:execution:{machine}:*",
            "status: is the holder of the workload's lock still running",
        )
    need("states:ListStateMachines", "*", "find the generated state machines")

    # Endpoints: smoke tests and confirmation probes.
    for role in ("primary", "secondary"):
        endpoint = plan.endpoint_for(role)  # type: ignore[arg-type]
        region = plan.region_of(role)  # type: ignore[arg-type]
        if isinstance(endpoint, SageMakerEndpoint):
            arn = f"arn:{p}:sagemaker:{region}:{acct}:endpoint/{endpoint.endpoint_name.lower()}"
            need("sagemaker:InvokeEndpoint", arn, f"smoke-test the {role} endpoint")
            need("sagemaker:DescribeEndpoint", arn, f"check the {role} endpoint is InService")
        elif isinstance(endpoint, HttpEndpoint):
            pass  # plain HTTPS: no IAM involved

    # What the plan's kinds declare (its traffic switch and its assets: reads, shifts, listings,
    # verification, re-drives, validation), every capability of every function: one permission per action
    # and resource, with the first reason given.
    seen = {(perm.action, perm.resource) for perm in out}
    for grant in grants:
        resource = grant.concrete(partition=p, account=acct)
        if (grant.action, resource) not in seen:
            seen.add((grant.action, resource))
            out.append(Permission(action=grant.action, resource=resource, why=grant.why))

    # Alarms and notifications.
    for alarm in dict.fromkeys([*plan.trigger.alarms, *plan.failback.gate_alarms]):
        need(
            "cloudwatch:DescribeAlarms",
            f"arn:{p}:cloudwatch:{plan.regions.primary}:{acct}:alarm:{alarm}",
            "judge the trigger quorum and failback gates",
        )
    need("sns:Publish", plan.notifications.topic_arn(lb.region, acct), "notify humans")
    return out
