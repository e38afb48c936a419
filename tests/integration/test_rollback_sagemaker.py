"""Model rollback on the local cloud's SageMaker (the SageMaker example plan): a model package of the Model
Registry -> a new model and endpoint config -> UpdateEndpoint, through the API and the rollback state machine
(real handlers, IAM enforced); the variant's model server loads what the endpoint's new config names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.services.deps import deps
from localcloud.asset_kinds import PublishedModel, register_package
from localcloud.model import ModelArtifact, default_artifact
from localcloud.modelserver import publish_artifact
from localcloud.server import LocalCloud
from tests.api_support import ALICE, Api, api_client
from tests.integration.stack import SAGEMAKER_EXAMPLE, Stack, running_stack

pytestmark = pytest.mark.timeout(300)

W, PRIMARY, ENDPOINT, GROUP = "fraud-scoring-sagemaker", "us-east-1", "fraud-scorer", "fraud-scorer"
CASE = {"features": {"amount": 450.0, "merchant_risk": 0.55, "foreign": 1, "night": 0, "velocity": 2.0}}


@pytest.fixture(scope="module")
def stack(local_cloud: LocalCloud) -> Iterator[Stack]:
    with running_stack(local_cloud, path=SAGEMAKER_EXAMPLE) as built:
        yield built


def sm(stack: Stack) -> Any:
    return stack.cloud.client("sagemaker", PRIMARY)


def bad_package(stack: Stack) -> str:
    """Version 1.1.0, Approved after 1.0.0: a different model (inverted weights, every score wrong)."""
    good = default_artifact()
    bad: ModelArtifact = good.model_copy(
        update={"version": "1.1.0", "weights": [-w for w in good.weights], "bias": -good.bias}
    )
    bucket, key = stack.resources.model["primary_bucket"], "models/fraud-scorer/1.1.0/model.json"
    sha = publish_artifact(stack.cloud.client("s3", PRIMARY), bucket, key, bad)
    model = PublishedModel("fraud-scorer", "1.1.0", sha, bucket, key, bucket, key)
    return register_package(sm(stack), GROUP, model, f"s3://{bucket}/{key}")


def serve_package(stack: Stack, package: str) -> str:
    """Put the primary endpoint on a package, as a deployment pipeline would; its new config's name."""
    client = sm(stack)
    role = client.describe_model(ModelName="fraud-scorer-AllTraffic")["ExecutionRoleArn"]
    client.create_model(
        ModelName="pipeline-1-1-0", ExecutionRoleArn=role, PrimaryContainer={"ModelPackageName": package}
    )
    variant = {"VariantName": "AllTraffic", "ModelName": "pipeline-1-1-0", "InitialInstanceCount": 1}
    client.create_endpoint_config(
        EndpointConfigName="pipeline-1-1-0", ProductionVariants=[{**variant, "InstanceType": "ml.m5.large"}]
    )
    client.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="pipeline-1-1-0")
    return "pipeline-1-1-0"


def config(stack: Stack) -> str:
    found = sm(stack).describe_endpoint(EndpointName=ENDPOINT)
    assert found["EndpointStatus"] == "InService"
    return str(found["EndpointConfigName"])


def score(stack: Stack) -> float:
    runtime = stack.cloud.client("sagemaker-runtime", PRIMARY)
    answer = runtime.invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="application/json", Body=json.dumps(CASE).encode()
    )
    return float(json.loads(answer["Body"].read())["score"])


@pytest.fixture
def fresh(stack: Stack) -> Iterator[Stack]:
    stack.fresh()
    original = config(stack)
    yield stack
    if config(stack) != original:
        sm(stack).update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=original)


@pytest.fixture
def api(fresh: Stack) -> Iterator[Api]:
    with api_client(ALICE, cloud=fresh.cloud) as client:
        yield client


def rollback(api: Api, stack: Stack, **body: Any) -> dict[str, Any]:
    answer = api.post(f"/workloads/{W}/rollback", body)
    assert answer.status_code == 202, answer.json_body
    return stack.wait(answer.json_body["execution"]["arn"], timeout=120)


def test_a_named_version_whose_smoke_tests_fail_leaves_the_previous_endpoint_config(
    api: Api, fresh: Stack
) -> None:
    # Given the endpoint serving 1.0.0 from its original config, and 1.1.0 approved later
    before = config(fresh)
    bad_package(fresh)
    # When the endpoint is rolled to 1.1.0 by name
    desc = rollback(api, fresh, region=PRIMARY, to_version="1.1.0")
    # Then a new config was put in service, failed its smoke tests, and the previous config is back
    assert desc["status"] == "FAILED", desc
    (entry,) = [e for e in deps().ledger.entries(W, limit=10) if e.kind == "rollback"][:1]
    assert (entry.outcome, entry.detail["reverted"]) == ("failed", True), entry
    assert entry.detail["config_before"] == before and entry.detail["config_after"].startswith(
        "fraud-scorer-v1-1-0-"
    )
    assert config(fresh) == before
    assert score(fresh) == pytest.approx(0.994437, abs=1e-6)


def test_an_endpoint_on_a_bad_package_is_rolled_back_to_the_previous_approved_one(
    api: Api, fresh: Stack
) -> None:
    # Given a pipeline put the endpoint on package 1.1.0, whose scores are all wrong
    serve_package(fresh, bad_package(fresh))
    assert score(fresh) == pytest.approx(1 - 0.994437, abs=1e-6)
    # When the operator dry-runs, then rolls back (the previous approved version)
    dry = rollback(api, fresh, dry_run=True)
    desc = rollback(api, fresh, reason="1.1.0 scores everything wrong")
    # Then the dry run named the versions and the endpoint configs, and changed nothing
    plan = json.loads(dry["output"])
    assert (plan["from_version"], plan["to_version"], plan["config_before"]) == (
        "1.1.0",
        "1.0.0",
        "pipeline-1-1-0",
    )
    assert plan["config_after"].startswith("fraud-scorer-v1-0-0-")
    # And the endpoint serves 1.0.0's package from a new config, its smoke tests passed
    assert desc["status"] == "SUCCEEDED", desc
    report = json.loads(desc["output"])
    assert (report["verdict"], report["smoke_passed"]) == ("rolled-back", True)
    assert config(fresh) == report["config_after"] != "pipeline-1-1-0"
    model = sm(fresh).describe_model(ModelName=report["config_after"])
    assert model["PrimaryContainer"]["ModelPackageName"].endswith(f"model-package/{GROUP}/1")
    assert score(fresh) == pytest.approx(0.994437, abs=1e-6)
