"""Test helpers: the example plan wired to in-process model servers in a local cloud."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_text
from localcloud.model import default_artifact
from localcloud.modelserver import ModelServer
from localcloud.server import LocalCloud
from localcloud.stack import PlanResources, provision_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
LOCAL_ENDPOINT = "http://127.0.0.1:0/invocations"


def plan_text(primary_url: str, secondary_url: str, **replacements: str) -> str:
    """The shipped example plan, pointed at other endpoints, with top-level settings replaced by regex."""
    text = EXAMPLE.read_text()
    # Both endpoints are local ones on port 0 ("any free port"); the primary is written first.
    assert text.count(LOCAL_ENDPOINT) == 2, f"the example plan no longer names {LOCAL_ENDPOINT} twice"
    text = text.replace(LOCAL_ENDPOINT, primary_url, 1).replace(LOCAL_ENDPOINT, secondary_url, 1)
    for pattern, value in replacements.items():
        text, count = re.subn(rf"(?m)^(\s*{pattern}:)\s*[^#\n]*", rf"\g<1> {value}  ", text, count=1)
        assert count == 1, f"no {pattern} in the example plan"
    return text


@dataclass
class Stack:
    cloud: LocalCloud
    plan: DRPlan
    resources: PlanResources
    servers: dict[str, ModelServer]

    @property
    def sfn(self) -> Any:
        return self.cloud.client("stepfunctions")

    def weights(self) -> dict[str, int]:
        from chalicelib.adapters.traffic import TrafficRouter

        return TrafficRouter(route53=self.cloud.client("route53")).read(self.plan).weights

    def wait(self, execution_arn: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            desc = self.sfn.describe_execution(executionArn=execution_arn)
            if desc["status"] != "RUNNING":
                return desc
            time.sleep(0.1)
        raise AssertionError(f"execution {execution_arn} still running after {timeout}s")

    def start_failover(self, name: str, **request: Any) -> str:
        body = {"workload": self.plan.workload, "mode": "ungraceful", "reason": "test", **request}
        return self.sfn.start_execution(
            stateMachineArn=self.resources.state_machines["failover"], name=name, input=json.dumps(body)
        )["executionArn"]

    def inbox(self) -> list[dict[str, Any]]:
        from localcloud.resources import names

        sqs = self.cloud.client("sqs")
        url = sqs.get_queue_url(QueueName=names(self.cloud.stage).notifications_inbox)["QueueUrl"]
        out: list[dict[str, Any]] = []
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def reset_traffic(self) -> None:
        from chalicelib.adapters.traffic import TrafficRouter

        TrafficRouter(route53=self.cloud.client("route53")).shift(
            self.plan, {"primary": 100, "secondary": 0}, {}
        )
        for server in self.servers.values():
            server.clear_faults()


def build_stack(cloud: LocalCloud, **replacements: str) -> Stack:
    artifact = default_artifact()
    servers = {
        role: ModelServer(artifact, region=region).start()
        for role, region in (("primary", "us-east-1"), ("secondary", "us-west-2"))
    }
    text = plan_text(
        servers["primary"].url + "/invocations", servers["secondary"].url + "/invocations", **replacements
    )
    plan = load_plan_text(text, "test-plan.yaml")
    resources = provision_plan(cloud, plan, text, stage=cloud.stage, artifact=artifact)
    return Stack(cloud=cloud, plan=plan, resources=resources, servers=servers)
