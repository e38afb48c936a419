"""Read-only looks at the resources a DR plan points at (plan validation): buckets, tables, topics,
endpoints, and what IAM says Lifeboat's role may do.

Every method either answers or raises the botocore error; "does not exist" is an answer (None/False).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import error_code

_MISSING = {
    "NoSuchBucket",
    "NoSuchKey",
    "404",
    "ResourceNotFoundException",
    "NotFound",
    "ValidationException",
    "NoSuchEntity",
}


class ResourceReader:
    def __init__(self, client: Callable[[str, str | None], Any] | None = None) -> None:
        # (service, region) -> client; the factory by default, asked on each use.
        self._client = client or (lambda service, region: aws.client(service, region))

    def _c(self, service: str, region: str | None = None) -> Any:
        return self._client(service, region)

    def bucket_versioning(self, bucket: str, region: str) -> str | None:
        """'Enabled', 'Suspended', None (never enabled); LookupError when the bucket does not exist."""
        try:
            resp = self._c("s3", region).get_bucket_versioning(Bucket=bucket)
        except Exception as exc:
            if error_code(exc) in _MISSING:
                raise LookupError(f"bucket {bucket} does not exist") from None
            raise
        return resp.get("Status")

    def bucket_replication_rules(self, bucket: str, region: str) -> list[dict[str, Any]]:
        """The bucket's replication rules ([] when it has no replication configuration)."""
        try:
            resp = self._c("s3", region).get_bucket_replication(Bucket=bucket)
        except Exception as exc:
            if error_code(exc) in ("ReplicationConfigurationNotFoundError", *_MISSING):
                return []
            raise
        return list(resp.get("ReplicationConfiguration", {}).get("Rules", []))

    def keys(self, bucket: str, prefix: str, region: str, limit: int = 20) -> list[str]:
        resp = self._c("s3", region).list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=limit)
        return [o["Key"] for o in resp.get("Contents", [])]

    def table(self, name: str, region: str) -> dict[str, Any] | None:
        try:
            return dict(self._c("dynamodb", region).describe_table(TableName=name)["Table"])
        except Exception as exc:
            if error_code(exc) in _MISSING:
                return None
            raise

    def topic_exists(self, topic_arn: str, region: str | None = None) -> bool:
        try:
            self._c("sns", region).get_topic_attributes(TopicArn=topic_arn)
        except Exception as exc:
            if error_code(exc) in ("NotFound", "NotFoundException", "InvalidParameter"):
                return False
            raise
        return True

    def sagemaker_endpoint(self, name: str, region: str) -> dict[str, Any] | None:
        try:
            return dict(self._c("sagemaker", region).describe_endpoint(EndpointName=name))
        except Exception as exc:
            if error_code(exc) in _MISSING:
                return None
            raise

    def model_package_group(self, name: str, region: str) -> dict[str, Any] | None:
        try:
            return dict(self._c("sagemaker", region).describe_model_package_group(ModelPackageGroupName=name))
        except Exception as exc:
            if error_code(exc) in _MISSING:
                return None
            raise

    def caller(self) -> dict[str, str]:
        resp = self._c("sts", None).get_caller_identity()
        return {"arn": str(resp["Arn"]), "account": str(resp["Account"])}

    def simulate(
        self, principal_arn: str, actions: Sequence[str], resources: Sequence[str]
    ) -> dict[str, str]:
        """action -> EvalDecision (allowed, implicitDeny, explicitDeny) for every action on `resources`."""
        iam = self._c("iam", None)
        decisions: dict[str, str] = {}
        kwargs: dict[str, Any] = {
            "PolicySourceArn": principal_arn,
            "ActionNames": list(actions),
            "ResourceArns": list(resources),
        }
        while True:
            page = iam.simulate_principal_policy(**kwargs)
            for result in page.get("EvaluationResults", []):
                decisions[result["EvalActionName"]] = result["EvalDecision"]
            if not page.get("IsTruncated"):
                return decisions
            kwargs["Marker"] = page["Marker"]


def role_arn_of(caller_arn: str) -> str:
    """The IAM role behind an assumed-role session ARN (what SimulatePrincipalPolicy wants)."""
    # arn:aws:sts::1234:assumed-role/lifeboat-dev/session -> arn:aws:iam::1234:role/lifeboat-dev
    parts = caller_arn.split(":")
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    return caller_arn
