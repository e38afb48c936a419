"""Resources in the in-process moto AWS of the `aws` fixture (tests/unit/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ClientFor = Callable[[str, str], Any]


def bucket(client: ClientFor, name: str, region: str, *, versioned: bool = True) -> None:
    s3 = client("s3", region)
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def table(client: ClientFor, name: str, region: str, *, pitr: bool = True) -> None:
    ddb = client("dynamodb", region)
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if pitr:
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
