"""The local cloud's IAM evaluator (localcloud/iam_policy.py): identity policies as AWS evaluates them."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud.iam_actions import GLOBAL_KEYS, Authorization
from localcloud.iam_policy import UnsupportedPolicy, evaluate

BUCKET = "arn:aws:s3:::fraud-data-use1"
OBJECT = "arn:aws:s3:::fraud-data-use1/datasets/day=1/part-0.parquet"


def auth(
    action: str, resource: str, known: tuple[str, ...] = (), **context: tuple[str, ...]
) -> Authorization:
    keys = {k.replace("__", ":").replace("_", "-"): v for k, v in context.items()}
    return Authorization(
        operation="Test.Call",
        action=action,
        resource=resource,
        context=keys,
        known_keys=frozenset({*keys, *known, *GLOBAL_KEYS}),
    )


def allow(actions: Any, resources: Any, condition: Any = None, sid: str = "S") -> dict[str, Any]:
    out: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        out["Condition"] = condition
    return out


def test_an_action_on_a_granted_resource_is_allowed() -> None:
    # Given a role allowed to read objects under the asset prefix
    policy = [allow(["s3:GetObject"], ["arn:aws:s3:::fraud-data-use1/datasets/*"], sid="Read")]
    # When it reads an object there
    decision = evaluate(policy, auth("s3:GetObject", OBJECT))
    # Then the statement that allowed it is named
    assert decision.allowed and decision.statement == "Read"


def test_nothing_granted_is_an_implicit_deny() -> None:
    # Given a role that may read objects but not bucket settings
    policy = [allow(["s3:GetObject"], ["arn:aws:s3:::fraud-data-use1/*"])]
    # When it reads the bucket's encryption settings
    decision = evaluate(policy, auth("s3:GetEncryptionConfiguration", BUCKET))
    # Then it is denied, without an explicit deny
    assert not decision.allowed and not decision.explicit_deny


def test_an_explicit_deny_wins_over_an_allow() -> None:
    # Given a role allowed every S3 read but explicitly denied the ledger bucket
    policy = [
        allow(["s3:Get*"], ["*"]),
        {"Sid": "NoEvidence", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::evidence/*"},
    ]
    # When it reads from that bucket
    decision = evaluate(policy, auth("s3:GetObject", "arn:aws:s3:::evidence/report.json"))
    # Then the deny decides
    assert not decision.allowed and decision.explicit_deny and decision.statement == "NoEvidence"


def test_wildcards_match_actions_case_insensitively_and_resources_exactly() -> None:
    # Given wildcards in actions and resources
    policy = [allow("states:Describe*", "arn:aws:states:us-east-1:123456789012:execution:lifeboat-dev-*:*")]
    execution = "arn:aws:states:us-east-1:123456789012:execution:lifeboat-dev-fraud-scoring-failover:op-1"
    # Then the action matches whatever its case, and the resource only as written
    assert evaluate(policy, auth("states:describeexecution", execution)).allowed
    assert not evaluate(
        policy, auth("states:DescribeExecution", execution.replace("lifeboat", "Lifeboat"))
    ).allowed
    assert not evaluate(policy, auth("states:StopExecution", execution)).allowed


def test_a_prefix_condition_limits_a_listing() -> None:
    # Given a listing allowed under the asset's prefix only
    policy = [allow("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": ["datasets/*"]}})]
    # Then a listing of the prefix (or below) is allowed, another prefix or the whole bucket is not
    assert evaluate(policy, auth("s3:ListBucket", BUCKET, s3__prefix=("datasets/",))).allowed
    assert evaluate(policy, auth("s3:ListBucket", BUCKET, s3__prefix=("datasets/day=1/",))).allowed
    assert not evaluate(policy, auth("s3:ListBucket", BUCKET, s3__prefix=("models/",))).allowed
    assert not evaluate(policy, auth("s3:ListBucket", BUCKET, known=("s3:prefix",))).allowed


def test_for_all_values_holds_only_when_every_change_is_granted() -> None:
    # Given the one Route 53 write of a plan: UPSERT of its CNAME record
    zone = "arn:aws:route53:::hostedzone/Z1"
    condition = {
        "ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["fraud.lifeboat.internal"],
            "route53:ChangeResourceRecordSetsActions": ["UPSERT"],
        }
    }
    policy = [allow("route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/*", condition)]
    names, actions = (
        "route53:ChangeResourceRecordSetsNormalizedRecordNames",
        "route53:ChangeResourceRecordSetsActions",
    )

    def change(records: tuple[str, ...], verbs: tuple[str, ...]) -> Authorization:
        return Authorization(
            "Route53.ChangeResourceRecordSets",
            "route53:ChangeResourceRecordSets",
            zone,
            {names: records, actions: verbs},
            frozenset({names, actions, *GLOBAL_KEYS}),
        )

    # Then an UPSERT of the plan's record is allowed, a DELETE or another record in the batch is not
    assert evaluate(policy, change(("fraud.lifeboat.internal",), ("UPSERT",))).allowed
    assert not evaluate(policy, change(("fraud.lifeboat.internal",), ("UPSERT", "DELETE"))).allowed
    assert not evaluate(
        policy, change(("fraud.lifeboat.internal", "www.lifeboat.internal"), ("UPSERT",))
    ).allowed


def test_string_equals_bool_arn_like_and_if_exists() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/k1"
    via = {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}}
    policy = [allow("kms:Decrypt", key, via)]
    # A direct call carries no kms:ViaService: the condition does not hold
    assert not evaluate(policy, auth("kms:Decrypt", key, known=("kms:ViaService",))).allowed
    # ...but holds through SNS
    assert evaluate(
        policy, auth("kms:Decrypt", key, kms__ViaService=("sns.us-east-1.amazonaws.com",))
    ).allowed
    # IfExists: a missing key passes
    lenient = [
        allow("kms:Decrypt", key, {"StringEqualsIfExists": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}})
    ]
    assert evaluate(lenient, auth("kms:Decrypt", key, known=("kms:ViaService",))).allowed
    # Bool and ArnLike
    tls = [allow("sns:Publish", "*", {"Bool": {"aws:SecureTransport": True}})]
    assert evaluate(
        tls, auth("sns:Publish", "arn:aws:sns:us-east-1:1:t", aws__SecureTransport=("true",))
    ).allowed
    assert not evaluate(
        tls, auth("sns:Publish", "arn:aws:sns:us-east-1:1:t", aws__SecureTransport=("false",))
    ).allowed
    role = [allow("sns:Publish", "*", {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/lifeboat-*"}})]
    assert evaluate(
        role, auth("sns:Publish", "t", aws__PrincipalArn=("arn:aws:iam::1:role/lifeboat-dev-x",))
    ).allowed
    assert not evaluate(
        role, auth("sns:Publish", "t", aws__PrincipalArn=("arn:aws:iam::1:user/lifeboat-x",))
    ).allowed


def test_not_action_and_not_resource() -> None:
    # Given everything but IAM, anywhere but the ledger
    policy = [{"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:dynamodb:*:*:table/ledger"}]
    assert evaluate(policy, auth("s3:GetObject", OBJECT)).allowed
    assert not evaluate(policy, auth("iam:PassRole", "arn:aws:iam::1:role/r")).allowed
    assert not evaluate(
        policy, auth("dynamodb:DeleteItem", "arn:aws:dynamodb:us-east-1:1:table/ledger")
    ).allowed


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        (allow("s3:ListBucket", BUCKET, {"StringLike": {"s3:ExistingObjectTag/x": "y"}}), "does not know"),
        (allow("s3:ListBucket", BUCKET, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), "does not know"),
        (allow("s3:ListBucket", BUCKET, {"DateLessThan": {"aws:SecureTransport": "x"}}), "not supported"),
        (allow("s3:ListBucket", "arn:aws:s3:::${aws:username}"), "policy variables"),
        (allow("s3:ListBucket", [{"Fn::GetAtt": ["PlanBucket", "Arn"]}]), "unresolved"),
    ],
)
def test_what_it_cannot_evaluate_fails_loudly(statement: dict[str, Any], why: str) -> None:
    # Given a statement the local cloud cannot evaluate as AWS would
    # When a call it could apply to is evaluated
    # Then the evaluation raises instead of allowing (or guessing)
    with pytest.raises(UnsupportedPolicy, match=why):
        evaluate([statement], auth("s3:ListBucket", BUCKET, s3__prefix=("a",)))


def test_a_condition_is_only_evaluated_for_statements_that_apply() -> None:
    # Given an unsupported condition on a statement about other actions
    policy = [
        allow("kms:Decrypt", "*", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        allow("s3:GetObject", OBJECT),
    ]
    # When an unrelated call is evaluated, it is decided by the statements that apply
    assert evaluate(policy, auth("s3:GetObject", OBJECT)).allowed
