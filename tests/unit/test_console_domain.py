"""Pure parts of the console API: execution ids in URLs, reading an execution history as steps, the IAM
permissions a plan needs, and the request models' rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.adapters.assets import asset_grants
from chalicelib.adapters.resources import role_arn_of
from chalicelib.adapters.traffic import grants_for
from chalicelib.domain.history import steps_from_history
from chalicelib.domain.permissions import LifeboatResources, required_permissions
from chalicelib.models.api import FailoverBody, execution_id, parse_execution_id
from chalicelib.models.planfile import load_plan_file
from chalicelib.services.executions import split_machine_name

PLAN = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ARN = "arn:aws:states:us-east-1:123456789012:execution:lifeboat-dev-fraud-scoring-failover:op-1"

names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1, max_size=80
)


# -- execution ids --------------------------------------------------------------------------------------
@given(machine=names, name=names, region=st.sampled_from(["us-east-1", "eu-west-2"]))
def test_an_execution_id_is_url_safe_and_names_exactly_its_arn(machine: str, name: str, region: str) -> None:
    # Given any Step Functions execution ARN
    arn = f"arn:aws:states:{region}:123456789012:execution:{machine}:{name}"
    # When it is turned into the id used in URLs
    ident = execution_id(arn)
    # Then the id needs no escaping in a path segment and reads back as the same ARN and name
    assert set(ident) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    ref = parse_execution_id(ident)
    assert (ref.arn, ref.name) == (arn, name)


def test_an_execution_name_or_a_plain_arn_is_accepted_too() -> None:
    # When the path holds an execution name, or an ARN the gateway already decoded
    by_name = parse_execution_id("failover-fraud-scoring-op-20240501T120000-abc123")
    by_arn = parse_execution_id(ARN)
    # Then the name is looked up later, and the ARN is taken as it is
    assert by_name.arn is None and by_name.name == "failover-fraud-scoring-op-20240501T120000-abc123"
    assert by_arn.arn == ARN and by_arn.name == "op-1"


@pytest.mark.parametrize(
    "raw",
    ["", "has space", "a" * 401, "arn:aws:states:us-east-1:1:stateMachine:x", "semi;colon", "x" * 81],
)
def test_anything_else_is_not_an_execution_id(raw: str) -> None:
    # When the path holds something that is neither a name, an id nor an execution ARN
    # Then it is refused with a reason (the API turns it into a 400 on the `id` parameter)
    with pytest.raises(ValueError):
        parse_execution_id(raw)


def test_state_machine_names_split_into_workload_and_kind_even_when_workloads_share_a_prefix() -> None:
    # Given workloads 'fraud' and 'fraud-scoring' (one is a prefix of the other)
    workloads = ["fraud", "fraud-scoring"]
    # Then each state machine is attributed to the longest matching workload
    assert split_machine_name("lifeboat-dev-fraud-scoring-failover", "lifeboat-dev", workloads) == (
        "fraud-scoring",
        "failover",
    )
    assert split_machine_name("lifeboat-dev-fraud-failback", "lifeboat-dev", workloads) == (
        "fraud",
        "failback",
    )
    assert split_machine_name("other-app-machine", "lifeboat-dev", workloads) == (None, None)


# -- history --------------------------------------------------------------------------------------------
def _event(kind: str, seconds: float, **details: Any) -> dict[str, Any]:
    key = kind[0].lower() + kind[1:] + "EventDetails"
    return {"type": kind, "timestamp": T0 + timedelta(seconds=seconds), **({key: details} if details else {})}


def test_a_history_reads_as_steps_with_timings_retries_decisions_and_failures() -> None:
    # Given a history: a task retried once after throttling, a choice, and a task that failed for good
    events = [
        _event("ExecutionStarted", 0, input="{}"),
        _event("TaskStateEntered", 0, name="ShiftTraffic"),
        _event("LambdaFunctionScheduled", 0.1),
        _event("LambdaFunctionFailed", 0.5, error="TransientError", cause="Throttling"),
        _event("LambdaFunctionScheduled", 1.5),
        _event("LambdaFunctionSucceeded", 2.0, output='{"weights": {"primary": 0, "secondary": 100}}'),
        _event("TaskStateExited", 2.0, name="ShiftTraffic"),
        _event("ChoiceStateEntered", 2.0, name="SwitchValidated"),
        _event("ChoiceStateExited", 2.1, name="SwitchValidated"),
        _event("TaskStateEntered", 2.1, name="Conclude"),
        _event("LambdaFunctionScheduled", 2.1),
        _event("LambdaFunctionFailed", 3.1, error="ValueError", cause="x" * 5000),
        _event("ExecutionFailed", 3.2, error="ValueError"),
    ]
    # When it is read as steps
    shift, choice, conclude = steps_from_history(events)
    # Then the retried task succeeded after two attempts, with its result and the error it met
    assert (shift.name, shift.status, shift.attempts, shift.duration_seconds) == (
        "ShiftTraffic",
        "succeeded",
        2,
        2.0,
    )
    assert shift.result == {"weights": {"primary": 0, "secondary": 100}}
    assert [e.error for e in shift.errors] == ["TransientError"]
    # And the choice shows the decision it took, and the last task failed (cause truncated)
    assert (choice.type, choice.next) == ("Choice", "Conclude")
    assert conclude.status == "failed" and conclude.exited_at is None
    assert len(conclude.errors[0].cause) <= 1000


def test_a_running_step_has_no_duration_yet() -> None:
    # Given a history whose last state has not exited
    steps = steps_from_history([_event("WaitStateEntered", 0, name="WaitSustain")])
    # Then it is running
    assert steps[0].status == "running" and steps[0].duration_seconds is None


# -- permissions ----------------------------------------------------------------------------------------
LB = LifeboatResources(
    account="123456789012",
    region="us-east-1",
    ledger_table="lifeboat-dev-ledger",
    lock_table="lifeboat-dev-locks",
    plan_bucket="lifeboat-dev-plans",
    state_machine_prefix="lifeboat-dev",
)


def test_the_example_plan_needs_route53_s3_dynamodb_alarms_and_sns_but_no_sagemaker() -> None:
    # Given the example plan (HTTP endpoints, weighted Route 53 records, S3 and DynamoDB assets)
    plan = load_plan_file(PLAN)
    # When the permissions it needs are derived
    perms = required_permissions(plan, LB, grants=[*grants_for(plan.traffic), *asset_grants(plan)])
    actions = {p.action for p in perms}
    # Then shifting traffic, reading replicas, alarms and notifying are all there, each with a reason
    assert {
        "route53:ChangeResourceRecordSets",
        "route53:ListHostedZonesByName",
        "s3:GetReplicationConfiguration",
        "dynamodb:DescribeTable",
        "cloudwatch:DescribeAlarms",
        "sns:Publish",
        "states:StartExecution",
    } <= actions
    assert not any(a.startswith("sagemaker:") for a in actions)
    assert all(p.why for p in perms)
    assert len(perms) == len(set(perms))
    publish = next(p for p in perms if p.action == "sns:Publish")
    assert publish.resource == "arn:aws:sns:us-east-1:123456789012:lifeboat-fraud-scoring"


def test_validation_lists_what_restore_and_model_rollback_need_each_once() -> None:
    # Given the example plan (S3 assets, an S3-manifest model registry, HTTP endpoints)
    plan = load_plan_file(PLAN)
    # When the permissions it needs are derived
    perms = required_permissions(plan, LB, grants=[*grants_for(plan.traffic), *asset_grants(plan)])
    listed = {(p.action, p.resource) for p in perms}
    # Then the restore and rollback state machines can be started, and each action is listed once
    machines = "arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-dev-fraud-scoring"
    assert {("states:StartExecution", f"{machines}-{k}") for k in ("restore", "rollback")} <= listed
    assert len(listed) == len(perms)
    # And a restore reads versions and writes its copy under the asset's restore prefix (or in place)
    data = "arn:aws:s3:::fraud-data-use1"
    assert {
        ("s3:ListBucketVersions", data),
        ("s3:GetObjectVersion", f"{data}/datasets/*"),
        ("s3:PutObject", f"{data}/lifeboat-restore/training-data/*"),
        ("s3:DeleteObjectVersion", f"{data}/lifeboat-restore/training-data/test-*"),
    } <= listed
    assert ("s3:DeleteObjectVersion", f"{data}/datasets/*") not in listed  # never a version of the asset
    # And an http endpoint's rollback needs the registry's manifests only: no SageMaker
    assert not any(a.startswith("sagemaker:") or a == "iam:PassRole" for a, _ in listed)


def test_validation_lists_a_sagemaker_rollback_new_model_config_and_update() -> None:
    # Given a plan whose endpoints are SageMaker's and whose registry is the Model Registry
    plan = load_plan_file(PLAN.with_name("fraud-scoring-sagemaker.yaml"))
    perms = required_permissions(plan, LB, grants=[*grants_for(plan.traffic), *asset_grants(plan)])
    listed = {(p.action, p.resource) for p in perms}
    # Then the rollback's deployment in each region is listed, scoped to the endpoint's names
    for region in (plan.regions.primary, plan.regions.secondary):
        base = f"arn:aws:sagemaker:{region}:123456789012"
        assert {
            ("sagemaker:CreateModel", f"{base}:model/fraud-scorer-v*"),
            ("sagemaker:CreateEndpointConfig", f"{base}:endpoint-config/fraud-scorer*"),
            ("sagemaker:UpdateEndpoint", f"{base}:endpoint/fraud-scorer"),
            ("sagemaker:DescribeModelPackage", f"{base}:model-package/fraud-scorer/*"),
        } <= listed
    assert ("iam:PassRole", "arn:aws:iam::123456789012:role/*") in listed
    assert len(listed) == len(perms)


def test_the_role_behind_an_assumed_role_session_is_what_iam_simulates() -> None:
    # Given the identity a Lambda function runs as
    session = "arn:aws:sts::123456789012:assumed-role/lifeboat-dev/lifeboat-dev-api"
    # Then the role ARN is simulated; other principals are used as they are
    assert role_arn_of(session) == "arn:aws:iam::123456789012:role/lifeboat-dev"
    assert role_arn_of("arn:aws:iam::123456789012:user/alice") == "arn:aws:iam::123456789012:user/alice"


# -- request models -------------------------------------------------------------------------------------
def test_a_dry_run_needs_no_reason_but_a_real_failover_does() -> None:
    # A dry run without a reason is fine; a real one is refused, naming the reason field
    assert FailoverBody.model_validate({"dry_run": True}).reason is None
    with pytest.raises(ValidationError) as err:
        FailoverBody.model_validate({"mode": "graceful"})
    assert "required for a real failover" in str(err.value)
