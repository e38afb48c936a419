"""The local cloud's SageMaker: the SageMaker example plan's endpoints and Model Registry in both regions,
InvokeEndpoint answered by the real model server of the variant (TargetVariant, current weights), weight
changes moving real requests, faults per endpoint, and Lifeboat's own SageMaker calls (smoke tests, model
identity, registry verification) under the functions' least-privilege roles."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.endpoints import EndpointClient
from chalicelib.adapters.model_identity import ModelInspector
from chalicelib.adapters.s3objects import copy_preserving
from chalicelib.services.deps import deps
from chalicelib.services.smoke import run_smoke
from localcloud.modelserver import ModelServer
from localcloud.sagemaker import SAGEMAKER
from localcloud.server import LocalCloud
from tests.integration.stack import SAGEMAKER_EXAMPLE, Stack, running_stack

ENDPOINT = "fraud-scorer"
CASE = {"features": {"amount": 450.0, "merchant_risk": 0.55, "foreign": 1, "night": 0, "velocity": 2.0}}


@pytest.fixture(scope="module")
def stack(local_cloud: LocalCloud) -> Iterator[Stack]:
    with running_stack(local_cloud, path=SAGEMAKER_EXAMPLE) as built:
        yield built


@pytest.fixture
def healthy(stack: Stack) -> Iterator[Stack]:
    yield stack
    for region in (stack.plan.regions.primary, stack.plan.regions.secondary):
        SAGEMAKER.clear_faults(region, ENDPOINT)


def invoke(cloud: LocalCloud, region: str, **extra: Any) -> dict[str, Any]:
    runtime = cloud.client("sagemaker-runtime", region)
    answer = runtime.invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="application/json", Body=json.dumps(CASE).encode(), **extra
    )
    return {"variant": answer.get("InvokedProductionVariant"), **json.loads(answer["Body"].read())}


def error_of(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    return dict(caught.value.response)


def test_each_regions_endpoint_serves_the_model_from_its_own_regions_artifact(healthy: Stack) -> None:
    # Given the SageMaker plan provisioned: an endpoint per region, one variant each
    for role, region in (("primary", "us-east-1"), ("secondary", "us-west-2")):
        described = healthy.cloud.client("sagemaker", region).describe_endpoint(EndpointName=ENDPOINT)
        assert described["EndpointStatus"] == "InService"
        assert [v["VariantName"] for v in described["ProductionVariants"]] == ["AllTraffic"]
        # When a client invokes it (TargetVariant as the plan's smoke tests do)
        answer = invoke(healthy.cloud, region, TargetVariant="AllTraffic")
        # Then the region's model server answered with the real model's score
        assert answer["variant"] == "AllTraffic" and answer["score"] == pytest.approx(0.994437, abs=1e-6)
        assert answer["model_sha256"] == healthy.resources.model["sha256"]
        # And the SageMaker model names that region's copy of the artifact
        config = healthy.cloud.client("sagemaker", region).describe_endpoint_config(
            EndpointConfigName=described["EndpointConfigName"]
        )
        model = healthy.cloud.client("sagemaker", region).describe_model(
            ModelName=config["ProductionVariants"][0]["ModelName"]
        )
        bucket = healthy.resources.model[f"{role}_bucket"]
        assert model["PrimaryContainer"]["ModelDataUrl"].startswith(f"s3://{bucket}/")


def test_an_unknown_variant_or_endpoint_is_refused_as_sagemaker_refuses_it(healthy: Stack) -> None:
    # When a client names a variant the endpoint does not have, or an endpoint that does not exist
    wrong_variant = error_of(lambda: invoke(healthy.cloud, "us-east-1", TargetVariant="Blue"))
    # Then SageMaker's ValidationError says which
    assert wrong_variant["Error"]["Code"] == "ValidationError" and "Blue" in wrong_variant["Error"]["Message"]
    runtime = healthy.cloud.client("sagemaker-runtime", "us-east-1")
    # (an endpoint nobody serves keeps moto's canned answer: the local cloud has no model for it)
    SAGEMAKER.register("us-east-1", "ghost", "AllTraffic", healthy.servers["primary"].url)
    missing = error_of(lambda: runtime.invoke_endpoint(EndpointName="ghost", Body=b"{}"))
    assert missing["Error"]["Code"] == "ValidationError" and "ghost" in missing["Error"]["Message"]


def blue_green(cloud: LocalCloud, name: str) -> None:
    """An endpoint `name` in us-east-1 with two variants, blue and green, weighted equally."""
    sm = cloud.client("sagemaker", "us-east-1")
    for variant in ("blue", "green"):
        sm.create_model(
            ModelName=f"{name}-{variant}",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/split",
            PrimaryContainer={"Image": "lifeboat/model-server:local", "ModelDataUrl": "s3://b/k"},
        )
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": v,
                "ModelName": f"{name}-{v}",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
            for v in ("blue", "green")
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def test_weights_choose_the_variant_and_a_weight_update_moves_real_requests(local_cloud: LocalCloud) -> None:
    # Given an endpoint with two variants, blue and green, each on its own model server, all weight on blue
    from localcloud.model import default_artifact

    sm = local_cloud.client("sagemaker", "us-east-1")
    blue_green(local_cloud, "split")
    servers = {v: ModelServer(default_artifact(), region="us-east-1").start() for v in ("blue", "green")}
    try:
        for variant, server in servers.items():
            SAGEMAKER.register("us-east-1", "split", variant, server.url)
        servers["green"].set_faults(wrong_answers=True)  # so an answer shows which one served it
        runtime = local_cloud.client("sagemaker-runtime", "us-east-1")

        def served(n: int) -> set[str]:
            out = set()
            for _ in range(n):
                answer = runtime.invoke_endpoint(EndpointName="split", Body=json.dumps(CASE).encode())
                body = json.loads(answer["Body"].read())
                out.add(answer["InvokedProductionVariant"] + ("-wrong" if body["score"] < 0.5 else ""))
            return out

        def weights(blue: float, green: float) -> None:
            sm.update_endpoint_weights_and_capacities(
                EndpointName="split",
                DesiredWeightsAndCapacities=[
                    {"VariantName": "blue", "DesiredWeight": blue},
                    {"VariantName": "green", "DesiredWeight": green},
                ],
            )

        weights(1.0, 0.0)
        # When clients invoke it
        # Then every request reaches blue
        assert served(12) == {"blue"}
        # When UpdateEndpointWeightsAndCapacities puts all weight on green
        weights(0.0, 1.0)
        # Then every request reaches green's model server (which answers wrongly)
        assert served(12) == {"green-wrong"}
        # And with both weighted, both serve
        weights(1.0, 1.0)
        assert served(40) == {"blue", "green-wrong"}
        # And the runtime counted where each of the 64 requests went
        counts = {v: SAGEMAKER.invocations[("us-east-1", "split", v)] for v in ("blue", "green")}
        assert sum(counts.values()) == 64 and counts["blue"] >= 12 and counts["green"] >= 12
    finally:
        for server in servers.values():
            server.stop()


def test_faults_per_endpoint_reach_callers_as_sagemaker_reports_them(healthy: Stack) -> None:
    cloud, primary, secondary = healthy.cloud, "us-east-1", "us-west-2"
    # When the primary endpoint is throttled
    SAGEMAKER.set_faults(primary, ENDPOINT, throttling=True)
    throttled = error_of(lambda: invoke(cloud, primary))
    # Then callers get ThrottlingException (after botocore's retries), and the secondary is untouched
    assert throttled["Error"]["Code"] == "ThrottlingException"
    assert invoke(cloud, secondary)["score"] == pytest.approx(0.994437, abs=1e-6)
    # When its container fails requests (ModelError), or its container is dead
    SAGEMAKER.set_faults(primary, ENDPOINT, throttling=False, model_error=True)
    model_error = error_of(lambda: invoke(cloud, primary))
    assert model_error["Error"]["Code"] == "ModelError" and model_error["OriginalStatusCode"] == 500
    SAGEMAKER.set_faults(primary, ENDPOINT, model_error=False, down=True)
    down = error_of(lambda: invoke(cloud, primary))
    # Then a dead container is a ModelError carrying the container's 503
    assert down["Error"]["Code"] == "ModelError" and down["OriginalStatusCode"] == 503
    # When it answers late and wrongly instead
    SAGEMAKER.set_faults(primary, ENDPOINT, down=False, latency_ms=300, wrong_answers=True)
    started = time.monotonic()
    wrong = invoke(cloud, primary)
    assert time.monotonic() - started >= 0.3 and wrong["score"] == pytest.approx(1 - 0.994437, abs=1e-6)
    # And unknown faults are refused by name
    with pytest.raises(ValueError, match="slow"):
        SAGEMAKER.set_faults(primary, ENDPOINT, slow=True)


def test_a_killed_model_server_is_a_model_error_and_the_smoke_test_fails_through_invoke_endpoint(
    healthy: Stack,
) -> None:
    # Given Lifeboat's smoke tests of both SageMaker endpoints, as the failover runs them
    plan, d = healthy.plan, deps()
    first = run_smoke(plan, "secondary", d, record=False)
    assert first.passed, first.model_dump_json(indent=1)
    # When the primary's container is gone (port closed)
    port = healthy.servers["primary"].port
    healthy.servers["primary"].stop()
    try:
        result = run_smoke(plan, "primary", d, record=False)
        # Then the primary fails its smoke test through InvokeEndpoint, naming SageMaker's error
        assert not result.passed
        assert "ModelError" in json.dumps(result.model_dump(mode="json")), result
    finally:
        healthy.servers["primary"] = ModelServer(
            healthy.servers["secondary"].artifact, region="us-east-1", port=port
        ).start()
    assert run_smoke(plan, "primary", d, record=False).passed


def test_model_identity_reads_each_endpoints_model_data_and_checksum(healthy: Stack) -> None:
    # Given both endpoints serving the same artifact from their own region's bucket
    inspector = ModelInspector()
    found = [
        inspector.identify(role, healthy.plan.endpoint_for(role), region, CASE, 2.0)
        for role, region in (("primary", "us-east-1"), ("secondary", "us-west-2"))
    ]
    # Then each is identified by its model data key and SHA-256, the same in both regions
    assert [f.error for f in found] == [None, None]
    assert found[0].artifact == found[1].artifact and found[0].sha256 == found[1].sha256
    assert found[0].sha256 == healthy.resources.model["sha256"]


def test_the_registry_holds_the_approved_package_in_each_region(healthy: Stack) -> None:
    # Given the plan's model package group
    for role, region in (("primary", "us-east-1"), ("secondary", "us-west-2")):
        sm = healthy.cloud.client("sagemaker", region)
        packages = sm.list_model_packages(ModelPackageGroupName=ENDPOINT, ModelApprovalStatus="Approved")
        # Then each region has exactly one Approved package, naming its region's copy and the checksum
        [summary] = packages["ModelPackageSummaryList"]
        described = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        container = described["InferenceSpecification"]["Containers"][0]
        bucket, key = healthy.resources.model[f"{role}_bucket"], healthy.resources.model[f"{role}_key"]
        assert container["ModelDataUrl"] == f"s3://{bucket}/{key}"
        assert described["CustomerMetadataProperties"]["sha256"] == healthy.resources.model["sha256"]


def test_endpoint_client_invokes_through_the_runtime(healthy: Stack) -> None:
    # Given the adapter the smoke tests use
    client = EndpointClient()
    # When it invokes the secondary's endpoint
    call = client.invoke(healthy.plan.endpoint_for("secondary"), "us-west-2", "clear-fraud", CASE, 2.0)
    # Then the answer is the model's
    assert call.status == 200 and call.body["score"] == pytest.approx(0.994437, abs=1e-6), call


def run_verification(stack: Stack, name: str) -> tuple[str, list[str]]:
    """The plan's verification state machine, its functions under their deployed (enforced) roles: the
    registry asset's verdict and its breach findings, from the report in the evidence bucket."""
    arn = stack.sfn.start_execution(
        stateMachineArn=stack.resources.state_machines["verify"],
        name=name,
        input=json.dumps({"workload": stack.plan.workload, "trigger": "schedule"}),
    )["executionArn"]
    desc = stack.wait(arn)
    assert desc["status"] == "SUCCEEDED", desc
    output = json.loads(desc["output"])
    bucket, _, key = output["evidence"]["json"].removeprefix("s3://").partition("/")
    report = json.loads(stack.cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    registry = next(a for a in report["assets"] if a["asset"] == "fraud-model")
    return output["assets"]["fraud-model"], [
        f"{f['code']}: {f['message']}" for f in registry["findings"] if f["severity"] == "breach"
    ]


def test_registry_verification_runs_under_the_verify_roles_and_names_each_breach(healthy: Stack) -> None:
    model = healthy.resources.model
    secondary_sm, replica_s3 = (healthy.cloud.client(s, "us-west-2") for s in ("sagemaker", "s3"))
    [package] = secondary_sm.list_model_packages(ModelPackageGroupName=ENDPOINT)["ModelPackageSummaryList"]
    # (moto's UpdateModelPackage drops the metadata it is not given; AWS keeps it)
    metadata = secondary_sm.describe_model_package(ModelPackageName=package["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    # Given the provisioned registries: the same Approved version in both regions
    # When the verification state machine runs
    # Then the registry is green
    assert run_verification(healthy, "registry-green") == ("green", [])
    try:
        # When the secondary's package is no longer approved
        secondary_sm.update_model_package(
            ModelPackageArn=package["ModelPackageArn"],
            ModelApprovalStatus="PendingManualApproval",
            CustomerMetadataProperties=metadata,
        )
        verdict, found = run_verification(healthy, "registry-pending")
        # Then the registry is red, saying the version is approved only in the primary
        assert verdict == "breached" and len(found) == 1, found
        assert found[0].startswith("package-approved-only-in-primary: version 1.0.0 of fraud-scorer is ")
    finally:
        secondary_sm.update_model_package(
            ModelPackageArn=package["ModelPackageArn"],
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties=metadata,
        )
    # When the replica artifact the secondary's package names is gone
    replica_s3.delete_object(Bucket=model["secondary_bucket"], Key=model["secondary_key"])
    try:
        verdict, found = run_verification(healthy, "registry-no-artifact")
        # Then the registry is red, naming the object that is missing
        assert verdict == "breached" and any(
            f.startswith("package-artifact-missing:")
            and f"s3://{model['secondary_bucket']}/{model['secondary_key']}" in f
            for f in found
        ), found
    finally:
        copy_preserving(
            replica_s3,
            model["primary_bucket"],
            model["primary_key"],
            model["secondary_bucket"],
            model["secondary_key"],
        )
    assert run_verification(healthy, "registry-repaired") == ("green", [])


VARIANTS_TRAFFIC = """traffic:
  kind: sagemaker-variants
  endpoint_name: fraud-split
  region: us-east-1
  variants:
    primary: use1
    secondary: usw2
"""


def test_a_failover_by_variant_weights_moves_real_requests_under_the_enforced_roles(healthy: Stack) -> None:
    # Given a plan whose traffic moves between two production variants of one endpoint, each variant served
    # by its role's model server, all weight on the primary's
    from chalicelib.adapters.traffic import TrafficRouter
    from chalicelib.models.planfile import load_plan_text
    from localcloud.model import default_artifact
    from localcloud.stack import provision_plan

    start, end = (
        healthy.text.index("traffic:\n"),
        healthy.text.index("\n\n", healthy.text.index("traffic:\n")),
    )
    text = (healthy.text[:start] + VARIANTS_TRAFFIC + healthy.text[end + 1 :]).replace(
        "workload: fraud-scoring-sagemaker", "workload: fraud-scoring-variants"
    )
    plan = load_plan_text(text, "variants.yaml")
    resources = provision_plan(
        healthy.cloud, plan, text, stage=healthy.cloud.stage, artifact=default_artifact()
    )
    SAGEMAKER.register_plan(plan, {role: server.url for role, server in healthy.servers.items()})
    deps().plans.put(text, source="variants.yaml")  # type: ignore[attr-defined]  # (past its cache)
    variants = Stack(cloud=healthy.cloud, plan=plan, resources=resources, servers=healthy.servers, text=text)
    router = TrafficRouter(sagemaker=lambda region: healthy.cloud.client("sagemaker", region))
    runtime = healthy.cloud.client("sagemaker-runtime", "us-east-1")

    def served_by() -> str:
        answer = runtime.invoke_endpoint(EndpointName="fraud-split", Body=json.dumps(CASE).encode())
        return str(answer["InvokedProductionVariant"])

    assert router.read(plan).weights == {"primary": 100, "secondary": 0} and served_by() == "use1"
    # When the failover state machine runs (its functions under their deployed, enforced roles)
    desc = variants.wait(variants.start_failover("variants-failover"))
    # Then it completed by UpdateEndpointWeightsAndCapacities, and requests now reach the secondary's variant
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    [entry] = deps().ledger.entries(plan.workload, kind="failover")
    assert entry.outcome == "completed", entry.reason
    assert router.read(plan).weights == {"primary": 0, "secondary": 100}
    assert {served_by() for _ in range(5)} == {"usw2"}


def test_a_weight_update_takes_time_the_endpoint_serves_and_refuses_another_meanwhile(
    healthy: Stack,
) -> None:
    # Given weight updates that take a second to apply (seconds to minutes in AWS)
    cloud = healthy.cloud
    blue_green(cloud, "settle")
    for variant in ("blue", "green"):
        SAGEMAKER.register("us-east-1", "settle", variant, healthy.servers["primary"].url)
    sm, runtime = cloud.client("sagemaker", "us-east-1"), cloud.client("sagemaker-runtime", "us-east-1")

    def weights(blue: float, green: float) -> None:
        sm.update_endpoint_weights_and_capacities(
            EndpointName="settle",
            DesiredWeightsAndCapacities=[
                {"VariantName": "blue", "DesiredWeight": blue},
                {"VariantName": "green", "DesiredWeight": green},
            ],
        )

    def served() -> str:
        answer = runtime.invoke_endpoint(EndpointName="settle", Body=json.dumps(CASE).encode())
        return str(answer["InvokedProductionVariant"])

    weights(1.0, 0.0)
    SAGEMAKER.update_seconds = 1.0
    try:
        # When all weight moves to green
        weights(0.0, 1.0)
        described = sm.describe_endpoint(EndpointName="settle")
        # Then the endpoint is Updating, still on its old weights, still serving
        assert described["EndpointStatus"] == "Updating"
        assert {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]} == {
            "blue": 1.0,
            "green": 0.0,
        }
        assert served() == "blue"
        # And another update meanwhile is refused, as SageMaker refuses it
        refused = error_of(lambda: weights(1.0, 1.0))
        assert "Cannot update in-progress endpoint" in refused["Error"]["Message"]
        # When the update has applied
        deadline = time.monotonic() + 10
        while sm.describe_endpoint(EndpointName="settle")["EndpointStatus"] != "InService":
            assert time.monotonic() < deadline, "the endpoint stayed Updating"
            time.sleep(0.1)
        # Then the new weights route the requests
        assert {served() for _ in range(5)} == {"green"}
    finally:
        SAGEMAKER.update_seconds = 0.0


def test_plan_validation_finds_the_sagemaker_endpoints_and_registries_live(healthy: Stack) -> None:
    from tests.api_support import ALICE, api_client

    # Given the SageMaker plan as the local cloud provisioned it
    workload = healthy.plan.workload
    deps().plans.put(healthy.text, source="test-plan.yaml")  # type: ignore[attr-defined]
    with api_client(ALICE, cloud=healthy.cloud) as api:
        # When it is validated against the live resources, the API function's role enforced
        found = api.post(f"/plans/{workload}/validate").json_body
    # Then it is valid: both endpoints answer the smoke tests through InvokeEndpoint, both registries exist
    assert found["valid"] is True, [f for f in found["findings"] if f["severity"] == "error"]
    oks = {(f["check"], f["subject"]) for f in found["findings"] if f["severity"] == "ok"}
    assert ("endpoint", "secondary endpoint (us-west-2)") in oks
    assert ("asset", "fraud-model: model package group fraud-scorer (us-west-2)") in oks
    # And the permissions it lists include invoking exactly the plan's endpoints
    invoke = {p["resource"] for p in found["permissions"] if p["action"] == "sagemaker:InvokeEndpoint"}
    assert invoke == {
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-scorer",
        "arn:aws:sagemaker:us-west-2:123456789012:endpoint/fraud-scorer",
    }, found["permissions"]
