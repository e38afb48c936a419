"""The packaged template, deployed into the local cloud's CloudFormation, runs a real failover.

The copy deployed is the secondary region's (us-west-2): the region a failover of the example plan activates,
so it is the one with the failover state machine. It also creates the global tables here (home region), since
this test deploys a single copy. Functions run the real handlers (the Handler strings Chalice wrote) through
the local cloud's Lambda runner; the model servers stand in for the two regions' endpoints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.ledger import Ledger
from chalicelib.adapters.locks import LockTable
from chalicelib.adapters.traffic import TrafficRouter
from chalicelib.models.planfile import load_plan_text
from infra import build
from infra.template import FAILOVER_RESERVED_CONCURRENCY
from localcloud.model import default_artifact
from localcloud.modelserver import ModelServer
from localcloud.server import LocalCloud
from localcloud.traffic_kinds import provision_traffic
from tests.infra import localdeploy
from tests.integration.stack import plan_text

REGION = "us-west-2"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    artifact = default_artifact()
    servers = {
        role: ModelServer(artifact, region=region).start()
        for role, region in (("primary", "us-east-1"), ("secondary", REGION))
    }
    # IAM enforcement knows the local cloud's own resources (provision_base / provision_plan); this stack's
    # are CloudFormation's, named as in AWS. The same roles are enforced by tests/integration.
    cloud = LocalCloud(region=REGION, secondary_region="us-east-1", iam="off")
    try:
        text = plan_text(servers["primary"].url + "/invocations", servers["secondary"].url + "/invocations")
        plan = load_plan_text(text, "deploy-test.yaml")
        plans_dir = tmp_path_factory.mktemp("plans")
        (plans_dir / f"{plan.workload}.yaml").write_text(text)
        # Given the copy of the region the failover activates, packaged offline
        (package,) = build.package(
            "dev",
            plans_dir=plans_dir,
            regions=[REGION],
            home_region=REGION,
            out_dir=tmp_path_factory.mktemp("build"),
        )
        cloud.start()
        # When it is deployed as a stack, and the plan is published to the stack's plan bucket
        outputs = localdeploy.deploy(cloud, package.template_path, package.zip_path)
        cloud.client("s3").put_object(
            Bucket=outputs["PlanBucketName"], Key=f"plans/{plan.workload}.yaml", Body=text.encode()
        )
        # And what exists before Lifeboat arrives: the zone and both weighted records, all on the primary
        provision_traffic(cloud, plan)
        yield {"cloud": cloud, "plan": plan, "outputs": outputs, "package": package}
    finally:
        cloud.stop()
        for server in servers.values():
            server.stop()


def _inbox(cloud: LocalCloud, topic_arn: str) -> str:
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="deploy-test-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    cloud.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _wait(cloud: LocalCloud, arn: str, timeout: float = 60.0) -> dict[str, Any]:
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING":
            return dict(desc)
        time.sleep(0.1)
    raise AssertionError(f"{arn} still running after {timeout}s")


def test_the_deployed_stack_holds_lifeboat_wired_to_its_own_resources(deployed: dict[str, Any]) -> None:
    cloud, outputs = deployed["cloud"], deployed["outputs"]
    # Then every function of the app exists under its fixed name, with the handler Chalice packaged
    lam = cloud.client("lambda")
    sam = deployed["package"].template()
    for logical_id, name in sam["Metadata"]["Lifeboat"]["functions"].items():
        config = lam.get_function(FunctionName=f"lifeboat-dev-{name}")["Configuration"]
        assert config["Handler"] == sam["Resources"][logical_id]["Properties"]["Handler"]
        env = config["Environment"]["Variables"]
        # And its settings name the stack's resources, not the names in .chalice/config.json
        assert env["LIFEBOAT_PLAN_BUCKET"] == outputs["PlanBucketName"] != "lifeboat-dev-plans"
        assert env["LIFEBOAT_LEDGER_TABLE"] == "lifeboat-dev-ledger"
    # And the failover state machine is there under the name the app looks it up by
    machines = {m["name"] for m in cloud.client("stepfunctions").list_state_machines()["stateMachines"]}
    assert "lifeboat-dev-fraud-scoring-failover" in machines
    # And replication events are polled from the stack's own queue; a failed drill is not run again
    mappings = lam.list_event_source_mappings(FunctionName="lifeboat-dev-on_replication_event")
    assert [m["EventSourceArn"] for m in mappings["EventSourceMappings"]] == [outputs["ReplicationQueueArn"]]
    drill = lam.get_function_event_invoke_config(FunctionName="lifeboat-dev-drill_run")
    assert drill["MaximumRetryAttempts"] == 0
    # And the failover's tasks have their reserved concurrency
    concurrency = lam.get_function_concurrency(FunctionName="lifeboat-dev-shift_traffic")
    assert concurrency["ReservedConcurrentExecutions"] == FAILOVER_RESERVED_CONCURRENCY


def test_an_operator_failover_runs_through_the_deployed_stack(deployed: dict[str, Any]) -> None:
    cloud, plan, outputs = deployed["cloud"], deployed["plan"], deployed["outputs"]
    router = TrafficRouter(route53=cloud.client("route53"))
    assert router.read(plan).weights == {"primary": 100, "secondary": 0}
    inbox = _inbox(cloud, outputs["TopicLifeboatFraudScoringArn"])
    # When an operator starts a failover on the deployed state machine
    execution = cloud.client("stepfunctions").start_execution(
        stateMachineArn=outputs["FraudScoringFailoverStateMachineArn"],
        name="deployed-op-failover-1",
        input=json.dumps(
            {
                "workload": plan.workload,
                "mode": "ungraceful",
                "reason": "infra test",
                "requested_by": "arn:aws:iam::123456789012:user/alice",
            }
        ),
    )["executionArn"]
    result = _wait(cloud, execution)
    # Then it succeeds, the secondary takes all traffic, the deployed ledger records it, the lock is free
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert router.read(plan).weights == {"primary": 0, "secondary": 100}
    ddb = cloud.client("dynamodb")
    entry = Ledger(outputs["EnvLedgerTable"], ddb).entries(plan.workload, kind="failover")[0]
    assert entry.outcome == "completed" and entry.actor == "arn:aws:iam::123456789012:user/alice"
    assert LockTable(outputs["EnvLockTable"], ddb).current(plan.workload) is None
    # And the notification went to the topic the stack created
    messages = cloud.client("sqs").receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    subjects = [json.loads(m["Body"]).get("Subject", "") for m in messages]
    assert any(f"failed over to {REGION}" in s for s in subjects), subjects


def test_only_documented_resource_types_are_left_out_locally(deployed: dict[str, Any]) -> None:
    # Given the expanded template of the deployed package
    package: build.Package = deployed["package"]
    expanded = localdeploy.expand_sam(package.template(), "b", "k")
    # Then what moto cannot create is exactly the documented set (and all of it guards or observes)
    _, dropped = localdeploy.adapt_for_moto(expanded, REGION)
    assert dropped <= localdeploy.MOTO_UNSUPPORTED
    assert Path(localdeploy.__file__).read_text().count("MOTO_UNSUPPORTED") >= 2
