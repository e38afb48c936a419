"""What one kind of traffic target or asset needs from IAM, declared once by the kind's module.

Both permission renderers read these: `chalicelib.domain.permissions` (plan validation: concrete ARNs,
simulated against Lifeboat's role or listed for a human) and `infra.permissions` (the deployed
least-privilege roles, as CloudFormation `Fn::Sub` strings). A kind writes its IAM actions in one place.

`resource` is an ARN template in CloudFormation `Fn::Sub` syntax: `${AWS::Partition}` and `${AWS::AccountId}`
stand for the partition and account (region is always concrete: a plan names its regions), or "*" for the few
read actions AWS only grants on every resource.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Capability = Literal[
    "traffic-find-zone",  # look a hosted zone id up by its name
    "traffic-read",  # read the weights / health checks / variants (status, verify read-back)
    "traffic-shift",  # move traffic (one atomic call)
    "inspect",  # plan validation against live resources
    "asset-list",  # replication listings (RPO, failback readiness)
    "asset-verify",  # backup verification (checksums, versions, protection)
    "asset-redrive",  # re-drive a failed replication
    "model-identify",  # read the model artefact an endpoint serves (failback readiness: which model is where)
]

PARTITION = "${AWS::Partition}"
ACCOUNT = "${AWS::AccountId}"


class Grant(BaseModel):
    model_config = {"frozen": True}

    capability: Capability = Field(description="Which use of the kind needs it (functions get capabilities).")
    action: str = Field(description="IAM action, e.g. route53:ChangeResourceRecordSets.")
    resource: str = Field(description="ARN template (Fn::Sub syntax) or '*'.")
    why: str = Field(description="Which step of failover/failback/verification needs it, in words.")
    condition: dict[str, Any] | None = Field(default=None, description="IAM condition block, if any.")
    sid: str | None = Field(
        default=None,
        description="Which statement of the capability the grant joins in the deployed policy (infra/"
        "permissions.py prefixes it with the capability's, e.g. Tables -> VerifyTables); grants sharing it "
        "become one statement, allowing each of their actions on each of their resources. s3:ListBucket "
        "grants need none: they are merged per bucket. Plan validation ignores it.",
    )

    def __hash__(self) -> int:  # conditions are dicts: hash what identifies the grant
        return hash((self.capability, self.action, self.resource, self.why, repr(self.condition), self.sid))

    def concrete(self, *, partition: str, account: str) -> str:
        """The resource with partition and account filled in (plan validation, IAM simulation)."""
        return self.resource.replace(PARTITION, partition).replace(ACCOUNT, account)


def arn(service: str, region: str, resource: str) -> str:
    """`arn:${AWS::Partition}:<service>:<region>:${AWS::AccountId}:<resource>` (region "" for global services;
    S3 bucket ARNs carry no account either: use `s3_arn`)."""
    account = ACCOUNT if service not in ("route53",) else ""
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def s3_arn(bucket: str, key_pattern: str | None = None) -> str:
    """A bucket (key_pattern None) or the objects under a key pattern, e.g. s3_arn("b", "data/*")."""
    base = f"arn:{PARTITION}:s3:::{bucket}"
    return base if key_pattern is None else f"{base}/{key_pattern}"
