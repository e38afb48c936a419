"""The assessment's role: reads of what the plans name, and writes only its reports (no packaging needed)."""

from __future__ import annotations

from typing import Any

from infra import permissions
from infra.checks import is_read
from tests.infra.test_asset_permissions import arns, by_sid, example, scope


def actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in s["Action"]}


def test_the_scheduled_assessment_only_reads_but_for_its_reports() -> None:
    # Given the role of the assessment schedule for the example plan
    statements = permissions.statements_for("assess_scheduled", scope(example()))
    # Then every action is a read, but the report it writes into the evidence bucket
    writes = [(s["Sid"], a) for s in statements for a in s["Action"] if not is_read(a)]
    assert writes == [("EvidenceWrite", "s3:PutObject")]
    assert by_sid(statements)["EvidenceWrite"]["Resource"] == ["evidence/*"]


def test_the_assessment_reads_are_scoped_to_the_plans_resources() -> None:
    statements = by_sid(permissions.statements_for("assess_scheduled", scope(example())))
    # Then bucket settings are read on the plan's four buckets, replication rules on its two sources
    assert arns(statements["AssessBuckets"]) == [
        "arn:${AWS::Partition}:s3:::fraud-data-use1",
        "arn:${AWS::Partition}:s3:::fraud-data-usw2",
        "arn:${AWS::Partition}:s3:::fraud-models-use1",
        "arn:${AWS::Partition}:s3:::fraud-models-usw2",
    ]
    assert arns(statements["AssessReplication"]) == [
        "arn:${AWS::Partition}:s3:::fraud-data-use1",
        "arn:${AWS::Partition}:s3:::fraud-models-use1",
    ]
    # And the tables in their regions; the registry's manifests listed under their prefix only
    assert arns(statements["AssessTables"]) == [
        "arn:${AWS::Partition}:dynamodb:us-east-1:${AWS::AccountId}:table/fraud-features",
        "arn:${AWS::Partition}:dynamodb:us-west-2:${AWS::AccountId}:table/fraud-features",
    ]
    assert statements["AssessManifests0"]["Condition"] == {"StringLike": {"s3:prefix": ["registry/*"]}}
    # And "*" only where AWS has no resource type: the state machines' listing, S3's replication metrics
    unscoped = {a for s in statements.values() if s["Resource"] == ["*"] for a in s["Action"]}
    assert unscoped <= permissions.UNSCOPABLE_READS
    assert {"states:ListStateMachines", "cloudwatch:GetMetricStatistics"} <= unscoped


def test_the_api_may_assess_too() -> None:
    api = actions(permissions.statements_for("api_handler", scope(example())))
    assessed = actions(permissions.statements_for("assess_scheduled", scope(example())))
    assert assessed <= api
