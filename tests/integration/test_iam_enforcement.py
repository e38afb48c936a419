"""The local cloud enforces each function's deployed role (localcloud/iam.py): a call without a grant fails as
in AWS, naming the function, the action and the resource."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.models.planfile import load_plan_text
from chalicelib.services import deps
from infra import permissions
from localcloud.server import LocalCloud
from localcloud.stack import provision_plan

PLAN = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
LOAD_PLAN = "lifeboat-dev-load_plan"


@pytest.fixture(scope="module")
def cloud(local_cloud: LocalCloud) -> LocalCloud:
    text = PLAN.read_text()
    provision_plan(local_cloud, load_plan_text(text, "fraud-scoring.yaml"), text)
    return local_cloud


@pytest.fixture
def fresh_plans() -> Iterator[None]:
    deps.reset()  # the plan store caches what it read: every test reads the bucket again
    yield
    deps.reset()


def invoke(cloud: LocalCloud, function: str, payload: dict[str, Any]) -> dict[str, Any]:
    answer = cloud.client("lambda").invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    return {"error": answer.get("FunctionError"), "payload": json.loads(answer["Payload"].read())}


def test_a_granted_call_goes_through(cloud: LocalCloud, fresh_plans: None) -> None:
    # Given load_plan with its deployed role (it may list and read the plan bucket's plans/)
    # When the state machine's first task loads the plan
    answer = invoke(cloud, LOAD_PLAN, {"workload": "fraud-scoring"})
    # Then it answers the plan
    assert answer["error"] is None, answer
    assert answer["payload"]["workload"] == "fraud-scoring"


def test_a_call_the_role_does_not_grant_is_denied_naming_function_action_and_resource(
    cloud: LocalCloud, fresh_plans: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a template whose load_plan role lacks the plan bucket's grants
    monkeypatch.setitem(permissions.FUNCTIONS, "load_plan", ())
    cloud.iam.deploy_plan(load_plan_text(PLAN.read_text(), "fraud-scoring.yaml"))  # render the roles again
    try:
        # When the handler lists the plans
        with cloud.iam.expect_denials() as denials:
            answer = invoke(cloud, LOAD_PLAN, {"workload": "fraud-scoring"})
    finally:
        monkeypatch.undo()
        cloud.iam.deploy_plan(load_plan_text(PLAN.read_text(), "fraud-scoring.yaml"))
    # Then S3 answered as AWS would: AccessDenied, naming the role's session (the function), action, resource
    assert answer["error"], answer  # the handler failed
    message = answer["payload"]["errorMessage"]
    assert "AccessDenied" in message
    assert (
        "User: arn:aws:sts::123456789012:assumed-role/lifeboat-dev-us-east-1-load_plan/"
        "lifeboat-dev-load_plan "
        "is not authorized to perform: s3:ListBucket on resource: arn:aws:s3:::lifeboat-dev-plans because no "
        "identity-based policy allows the s3:ListBucket action"
    ) in message
    # And the test sees the denial (the fixture fails any test that meets one it does not expect)
    assert [str(d) for d in denials] == [
        "lifeboat-dev-load_plan (us-east-1): s3:ListBucket on arn:aws:s3:::lifeboat-dev-plans "
        "(S3.ListObjectsV2, s3:prefix=plans/)"
    ]


def test_calls_outside_an_invocation_are_not_checked(cloud: LocalCloud, fresh_plans: None) -> None:
    # Given the factory's S3 client, used by the test itself (no Lambda invocation on this thread)
    from chalicelib.adapters import aws

    s3 = aws.client("s3")
    # When it reads a bucket no role may touch
    with cloud.iam.expect_denials() as denials:
        s3.put_object(Bucket="lifeboat-dev-plans", Key="notes/test.txt", Body=b"x")
    # Then nothing is checked
    assert denials == []


def test_the_error_is_the_services_own(cloud: LocalCloud) -> None:
    # Given S3's and DynamoDB's error codes for an IAM denial
    from localcloud.iam import error_code

    # Then each service answers with its own code
    assert error_code(cloud.client("s3").meta.service_model) == "AccessDenied"
    assert error_code(cloud.client("dynamodb").meta.service_model) == "AccessDeniedException"
    assert error_code(cloud.client("sns").meta.service_model) == "AuthorizationError"
    assert issubclass(cloud.client("s3").exceptions.from_code("AccessDenied"), ClientError)


def test_inside_an_invocation_the_caller_is_the_functions_role(cloud: LocalCloud, fresh_plans: None) -> None:
    # Given code running as the API function (as chalice.test runs the console API)
    from chalicelib.adapters import aws
    from localcloud.lambda_runner import running_as

    # When it asks who it is
    with running_as(cloud.as_function("api")):
        arn = aws.client("sts").get_caller_identity()["Arn"]
    # Then STS answers as in Lambda: the session of the function's role
    assert arn == "arn:aws:sts::123456789012:assumed-role/lifeboat-dev-us-east-1-api_handler/lifeboat-dev-api"
