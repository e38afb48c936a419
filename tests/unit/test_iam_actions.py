"""SDK operation -> IAM authorizations (localcloud/iam_actions.py), on AWS's pinned authorization data."""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
import pytest

from localcloud.iam_actions import SUPPLEMENT, Call, Unmapped, authorizations, describe
from localcloud.iam_data import IamData, shared

ACCOUNT = "123456789012"


@cache
def _model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


@pytest.fixture(scope="module")
def data() -> IamData:
    return shared()


def asks(data: IamData, service: str, operation: str, region: str = "us-east-1", **params: Any) -> list[str]:
    call = Call(
        service_model=_model(service), operation=operation, params=params, region=region, account=ACCOUNT
    )
    return describe(authorizations(call, data))


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        # Renamed by AWS: the reference documents these operations under another action.
        ("ListObjectsV2", {"Bucket": "b", "Prefix": "p/"}, "s3:ListBucket on arn:aws:s3:::b"),
        ("ListObjectVersions", {"Bucket": "b"}, "s3:ListBucketVersions on arn:aws:s3:::b"),
        ("GetBucketEncryption", {"Bucket": "b"}, "s3:GetEncryptionConfiguration on arn:aws:s3:::b"),
        (
            "GetObjectLockConfiguration",
            {"Bucket": "b"},
            "s3:GetBucketObjectLockConfiguration on arn:aws:s3:::b",
        ),
        ("GetBucketReplication", {"Bucket": "b"}, "s3:GetReplicationConfiguration on arn:aws:s3:::b"),
        # Supplemented: AWS checks another action than the operation's name.
        ("HeadObject", {"Bucket": "b", "Key": "k/1"}, "s3:GetObject on arn:aws:s3:::b/k/1"),
        ("HeadBucket", {"Bucket": "b"}, "s3:ListBucket on arn:aws:s3:::b"),
        # Same name, on the object.
        ("PutObject", {"Bucket": "b", "Key": "k"}, "s3:PutObject on arn:aws:s3:::b/k"),
        ("GetBucketVersioning", {"Bucket": "b"}, "s3:GetBucketVersioning on arn:aws:s3:::b"),
    ],
)
def test_s3_operations_map_to_the_actions_aws_checks(
    data: IamData, operation: str, params: dict[str, Any], expected: str
) -> None:
    # Given an S3 call / When it is mapped / Then it asks for the action AWS authorizes it with
    assert asks(data, "s3", operation, **params) == [expected]


def test_a_named_version_needs_the_version_action(data: IamData) -> None:
    # Given reads and deletes of one object version
    # Then they are authorized as s3:*Version actions
    assert asks(data, "s3", "GetObject", Bucket="b", Key="k", VersionId="v1") == [
        "s3:GetObjectVersion on arn:aws:s3:::b/k"
    ]
    assert asks(data, "s3", "HeadObject", Bucket="b", Key="k", VersionId="v1") == [
        "s3:GetObjectVersion on arn:aws:s3:::b/k"
    ]
    assert asks(data, "s3", "GetObject", Bucket="b", Key="k") == ["s3:GetObject on arn:aws:s3:::b/k"]


def test_a_multi_object_delete_needs_each_object(data: IamData) -> None:
    # Given a DeleteObjects of an object and of another object's version
    objects = [{"Key": "a"}, {"Key": "b", "VersionId": "v"}]
    # Then each key is authorized on its own
    assert asks(data, "s3", "DeleteObjects", Bucket="bk", Delete={"Objects": objects}) == [
        "s3:DeleteObject on arn:aws:s3:::bk/a",
        "s3:DeleteObjectVersion on arn:aws:s3:::bk/b",
    ]


def test_a_copy_reads_the_source_and_writes_the_destination(data: IamData) -> None:
    # Given a copy of a source version into the replica (string and dict forms of CopySource)
    for source in (
        "src/data/x%3D1.csv?versionId=v7",
        {"Bucket": "src", "Key": "data/x=1.csv", "VersionId": "v7"},
    ):
        found = asks(data, "s3", "CopyObject", Bucket="dst", Key="data/x=1.csv", CopySource=source)
        # Then the source version and its tags are read, the destination and its tags written
        assert found == [
            "s3:GetObjectVersion on arn:aws:s3:::src/data/x=1.csv",
            "s3:GetObjectVersionTagging on arn:aws:s3:::src/data/x=1.csv",
            "s3:PutObject on arn:aws:s3:::dst/data/x=1.csv",
            "s3:PutObjectTagging on arn:aws:s3:::dst/data/x=1.csv",
        ]


def test_listing_carries_its_prefix_condition_keys(data: IamData) -> None:
    call = Call(
        _model("s3"),
        "ListObjectsV2",
        {"Bucket": "b", "Prefix": "datasets/", "Delimiter": "/"},
        "us-east-1",
        ACCOUNT,
    )
    (only,) = authorizations(call, data)
    assert only.context == {"s3:prefix": ("datasets/",), "s3:delimiter": ("/",)}
    assert {"s3:prefix", "s3:max-keys"} <= only.known_keys  # max-keys: known to be absent


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        (
            "dynamodb",
            "PutItem",
            {"TableName": "lifeboat-dev-ledger", "Item": {}},
            ["dynamodb:PutItem on arn:aws:dynamodb:us-west-2:123456789012:table/lifeboat-dev-ledger"],
        ),
        ("dynamodb", "ListBackups", {}, ["dynamodb:ListBackups on *"]),
        (
            "stepfunctions",
            "StartExecution",
            {"stateMachineArn": "arn:aws:states:us-west-2:123456789012:stateMachine:m"},
            ["states:StartExecution on arn:aws:states:us-west-2:123456789012:stateMachine:m"],
        ),
        (
            "stepfunctions",
            "DescribeExecution",
            {"executionArn": "arn:aws:states:us-west-2:123456789012:execution:m:e"},
            ["states:DescribeExecution on arn:aws:states:us-west-2:123456789012:execution:m:e"],
        ),
        (
            "stepfunctions",
            "SendTaskSuccess",
            {"taskToken": "t", "output": "{}"},
            ["states:SendTaskSuccess on *"],
        ),
        (
            "cloudwatch",
            "DescribeAlarms",
            {"AlarmNames": ["a1", "a2"]},
            [
                "cloudwatch:DescribeAlarms on arn:aws:cloudwatch:us-west-2:123456789012:alarm:a1",
                "cloudwatch:DescribeAlarms on arn:aws:cloudwatch:us-west-2:123456789012:alarm:a2",
            ],
        ),
        (
            "route53",
            "ListResourceRecordSets",
            {"HostedZoneId": "/hostedzone/Z9"},
            ["route53:ListResourceRecordSets on arn:aws:route53:::hostedzone/Z9"],
        ),
        (
            "sns",
            "Publish",
            {"TopicArn": "arn:aws:sns:us-west-2:123456789012:t", "Message": "m"},
            ["sns:Publish on arn:aws:sns:us-west-2:123456789012:t"],
        ),
        (
            "sagemaker-runtime",
            "InvokeEndpoint",
            {"EndpointName": "Fraud-Scorer", "Body": b"{}"},
            ["sagemaker:InvokeEndpoint on arn:aws:sagemaker:us-west-2:123456789012:endpoint/fraud-scorer"],
        ),
        (
            "events",
            "PutEvents",
            {"Entries": [{"Source": "lifeboat.drills", "DetailType": "d", "Detail": "{}"}]},
            ["events:PutEvents on arn:aws:events:us-west-2:123456789012:event-bus/default"],
        ),
        ("sts", "GetCallerIdentity", {}, []),
    ],
)
def test_other_services(
    data: IamData, service: str, operation: str, params: dict[str, Any], expected: list[str]
) -> None:
    assert asks(data, service, operation, region="us-west-2", **params) == expected


def test_route53_changes_carry_the_record_condition_keys(data: IamData) -> None:
    changes = [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": "Fraud.Lifeboat.Internal.", "Type": "CNAME"}}
    ]
    call = Call(
        _model("route53"),
        "ChangeResourceRecordSets",
        {"HostedZoneId": "Z1", "ChangeBatch": {"Changes": changes}},
        "us-east-1",
        ACCOUNT,
    )
    (only,) = authorizations(call, data)
    assert only.resource == "arn:aws:route53:::hostedzone/Z1"
    assert only.context == {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": ("fraud.lifeboat.internal",),
        "route53:ChangeResourceRecordSetsRecordTypes": ("CNAME",),
        "route53:ChangeResourceRecordSetsActions": ("UPSERT",),
    }


@pytest.mark.parametrize(
    ("service", "operation", "params", "why"),
    [
        ("cloudwatch", "DescribeAlarms", {}, "named alarms only"),
        ("lambda", "Invoke", {"FunctionName": "f"}, "builds no resource ARNs"),
        ("dynamodb", "ExecuteStatement", {"Statement": "SELECT 1"}, "several actions"),
        ("s3", "CopyObject", {"Bucket": "b", "Key": "k", "CopySource": 7}, "neither a dict nor a string"),
        ("kms", "Decrypt", {"KeyId": "alias/x", "CiphertextBlob": b"x"}, "key ARN only"),
    ],
)
def test_a_call_it_cannot_map_fails_loudly(
    data: IamData, service: str, operation: str, params: dict[str, Any], why: str
) -> None:
    # Given a call whose authorization the local cloud cannot derive
    # Then mapping it raises (enforcement fails the call) rather than letting it through unchecked
    with pytest.raises(Unmapped, match=why):
        asks(data, service, operation, **params)


def test_every_supplemented_action_exists_in_the_reference(data: IamData) -> None:
    # The supplement names actions; a renamed or removed action in a newer data set must show up here
    for (prefix, operation), needs in SUPPLEMENT.items():
        service = data.service(prefix)
        assert service is not None, prefix
        for need in needs:
            assert service.action(need.action) is not None, f"{prefix}:{need.action} ({operation})"


@pytest.fixture
def lock_table() -> Any:
    """A table in moto's in-process DynamoDB whose partition key is `pk` (as Lifeboat's lock table)."""
    from moto import mock_aws

    with mock_aws():
        import boto3

        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="locks",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield ddb


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("GetItem", {"Key": {"pk": {"S": "lock#fraud-scoring"}}}),
        ("DeleteItem", {"Key": {"pk": {"S": "lock#fraud-scoring"}}}),
        ("PutItem", {"Item": {"pk": {"S": "lock#fraud-scoring"}, "holder": {"S": "x"}}}),
        (
            "Query",
            {
                "KeyConditionExpression": "#p = :w",
                "ExpressionAttributeNames": {"#p": "pk"},
                "ExpressionAttributeValues": {":w": {"S": "lock#fraud-scoring"}},
            },
        ),
    ],
)
def test_item_calls_carry_their_leading_key(
    data: IamData, lock_table: Any, operation: str, params: dict[str, Any]
) -> None:
    # Given a call on one item (or one partition) of a table keyed by `pk`
    call = Call(_model("dynamodb"), operation, {"TableName": "locks", **params}, "us-east-1", ACCOUNT)
    # When it is mapped
    (only,) = authorizations(call, data)
    # Then dynamodb:LeadingKeys is the partition key value, so a policy scoped by it can be evaluated
    assert only.context["dynamodb:LeadingKeys"] == ("lock#fraud-scoring",)
    assert "dynamodb:LeadingKeys" in only.known_keys


def test_a_scan_names_no_leading_key(data: IamData, lock_table: Any) -> None:
    # Given a scan (no partition named) / When it is mapped / Then no leading key is claimed for it
    call = Call(_model("dynamodb"), "Scan", {"TableName": "locks"}, "us-east-1", ACCOUNT)
    (only,) = authorizations(call, data)
    assert "dynamodb:LeadingKeys" not in only.context


def test_routing_control_updates_ask_for_each_control_and_say_whether_they_override(data: IamData) -> None:
    # Given an update of two routing controls at a cluster endpoint
    panel = f"arn:aws:route53-recovery-control::{ACCOUNT}:controlpanel/p"
    entries = [
        {"RoutingControlArn": f"{panel}/routingcontrol/{name}", "RoutingControlState": "On"}
        for name in ("a", "b")
    ]
    call = Call(
        service_model=_model("route53-recovery-cluster"),
        operation="UpdateRoutingControlStates",
        params={"UpdateRoutingControlStateEntries": entries},
        region="eu-west-1",
        account=ACCOUNT,
    )
    auths = authorizations(call, data)
    # Then it asks for the action on each control, and overriding no rule sets no override key
    assert describe(auths) == [
        f"route53-recovery-cluster:UpdateRoutingControlStates on {panel}/routingcontrol/a",
        f"route53-recovery-cluster:UpdateRoutingControlStates on {panel}/routingcontrol/b",
    ]
    key = "route53-recovery-cluster:AllowSafetyRulesOverrides"
    assert all(key in a.known_keys and key not in a.context for a in auths)
    # And an update overriding a rule carries the key
    overriding = Call(
        service_model=_model("route53-recovery-cluster"),
        operation="UpdateRoutingControlStates",
        params={"UpdateRoutingControlStateEntries": entries[:1], "SafetyRulesToOverride": ["r"]},
        region="eu-west-1",
        account=ACCOUNT,
    )
    assert authorizations(overriding, data)[0].context[key] == ("true",)
    # And a read asks for the one control
    assert asks(
        data,
        "route53-recovery-cluster",
        "GetRoutingControlState",
        RoutingControlArn=f"{panel}/routingcontrol/a",
    ) == [f"route53-recovery-cluster:GetRoutingControlState on {panel}/routingcontrol/a"]


def test_arc_configuration_reads_ask_for_the_resource_they_name(data: IamData) -> None:
    # Given plan validation's reads of an ARC cluster's configuration
    cluster = f"arn:aws:route53-recovery-control::{ACCOUNT}:cluster/c"
    panel = f"arn:aws:route53-recovery-control::{ACCOUNT}:controlpanel/p"
    control = f"{panel}/routingcontrol/a"
    service = "route53-recovery-control-config"
    # Then each asks for its action on the ARN it names
    assert asks(data, service, "DescribeCluster", region="us-west-2", ClusterArn=cluster) == [
        f"{service}:DescribeCluster on {cluster}"
    ]
    assert asks(data, service, "ListSafetyRules", region="us-west-2", ControlPanelArn=panel) == [
        f"{service}:ListSafetyRules on {panel}"
    ]
    assert asks(
        data, service, "ListAssociatedRoute53HealthChecks", region="us-west-2", RoutingControlArn=control
    ) == [f"{service}:ListAssociatedRoute53HealthChecks on {control}"]
