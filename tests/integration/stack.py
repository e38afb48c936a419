"""Test helpers: the example plan wired to in-process model servers in a local cloud, the automation that
makes Lifeboat act on its own (canary, alarm evaluation, replication), and the resets between tests.

A test module gets its own stack from the `stack` fixture (tests/integration/conftest.py), built with the
module's `STACK_SETTINGS`; modules that need another shape build theirs with `running_stack`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_text
from localcloud.alarms import AlarmSimulator, Canary, CanaryTarget
from localcloud.model import default_artifact
from localcloud.modelserver import ModelServer
from localcloud.regional import provision_copy
from localcloud.replication import ReplicationSimulator
from localcloud.resources import names
from localcloud.sagemaker import SAGEMAKER
from localcloud.server import LocalCloud
from localcloud.stack import PlanResources, endpoint_metric_name, provision_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
SAGEMAKER_EXAMPLE = EXAMPLE.with_name("fraud-scoring-sagemaker.yaml")
LOCAL_ENDPOINT = "http://127.0.0.1:0/invocations"
SECONDARY = "us-west-2"
PROBE = "fraud-scoring-usw2-canary"  # a canary alarm in the secondary region on the primary endpoint
TEST_LATENCY_BUDGET_MS = 1500
TABLE_KEYS = {"ledger": ("pk", "sk"), "locks": ("pk",), "idempotency": ("id",)}


def plan_text(primary_url: str, secondary_url: str, *, path: Path = EXAMPLE, **replacements: str) -> str:
    """A shipped example plan with top-level settings replaced by regex; its local http endpoints (if any)
    pointed at `primary_url` and `secondary_url` (a SageMaker plan's endpoints are served by the local
    cloud's SageMaker, routed to the model servers by `build_stack`).

    The smoke tests' p95 latency budget is TEST_LATENCY_BUDGET_MS unless a test sets its own: the example's
    300 ms is a healthy server's answer on a quiet machine, and a busy 2-core machine (the test suite's) can
    exceed it with nothing wrong, so a failover would refuse its backup. The drills' degraded endpoint
    (2.5 s) stays far beyond it."""
    replacements = {"latency_budget_p95_ms": str(TEST_LATENCY_BUDGET_MS), **replacements}
    text = path.read_text()
    # The http example's endpoints are local ones on port 0 ("any free port"); the primary is written first.
    if LOCAL_ENDPOINT in text:
        assert text.count(LOCAL_ENDPOINT) == 2, f"the example plan no longer names {LOCAL_ENDPOINT} twice"
        text = text.replace(LOCAL_ENDPOINT, primary_url, 1).replace(LOCAL_ENDPOINT, secondary_url, 1)
    for pattern, value in replacements.items():
        text, count = re.subn(rf"(?m)^(\s*{pattern}:)\s*[^#\n]*", rf"\g<1> {value}  ", text, count=1)
        assert count == 1, f"no {pattern} in the example plan"
    return text


def with_secondary_canary(text: str) -> str:
    """The plan with one more trigger alarm, PROBE, living in the secondary region: what detects an outage of
    the primary region's APIs (its own alarms can no longer be read)."""
    return text.replace(
        "    - fraud-scoring-use1-canary\n",
        f"    - fraud-scoring-use1-canary\n    - {PROBE}\n  alarm_regions:\n    {PROBE}: {SECONDARY}\n",
    )


def clear_tables(cloud: LocalCloud, *tables: str, region: str | None = None) -> None:
    """Empty Lifeboat's tables (`TABLE_KEYS`: ledger and locks unless named) in `region` (the home one)."""
    ddb = cloud.client("dynamodb", region)
    n = names(cloud.stage)
    table_names = {"ledger": n.ledger_table, "locks": n.lock_table, "idempotency": n.idempotency_table}
    for table in tables or ("ledger", "locks"):
        key = TABLE_KEYS[table]
        items = ddb.scan(TableName=table_names[table], ProjectionExpression=", ".join(key)).get("Items", [])
        for at in range(0, len(items), 25):
            batch = [{"DeleteRequest": {"Key": item}} for item in items[at : at + 25]]
            ddb.batch_write_item(RequestItems={table_names[table]: batch})


@dataclass
class Stack:
    cloud: LocalCloud
    plan: DRPlan
    resources: PlanResources
    servers: dict[str, ModelServer]
    text: str = ""  # the plan as stored

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

    def clear_tables(self, *tables: str) -> None:
        clear_tables(self.cloud, *tables)

    def fresh(self) -> Stack:
        """All traffic on a healthy primary, empty ledger and locks, an empty inbox."""
        self.reset_traffic()
        self.clear_tables()
        self.inbox()
        return self


def build_stack(
    cloud: LocalCloud, *, copy_in_secondary: bool = False, path: Path = EXAMPLE, **replacements: str
) -> Stack:
    """An example plan (`path`) with `replacements`, its two model servers started and its resources
    provisioned; a SageMaker plan's endpoint variants routed to the model servers of their roles.

    `copy_in_secondary`: Lifeboat's copy in the secondary region too, and the PROBE alarm that lets it see
    an outage of the primary region (`with_secondary_canary`).
    """
    if copy_in_secondary:
        provision_copy(cloud, SECONDARY)
    artifact = default_artifact()
    servers = {
        role: ModelServer(artifact, region=region).start()
        for role, region in (("primary", "us-east-1"), ("secondary", SECONDARY))
    }
    text = plan_text(
        servers["primary"].url + "/invocations",
        servers["secondary"].url + "/invocations",
        path=path,
        **replacements,
    )
    if copy_in_secondary:
        text = with_secondary_canary(text)
    plan = load_plan_text(text, "test-plan.yaml")
    resources = provision_plan(cloud, plan, text, stage=cloud.stage, artifact=artifact)
    SAGEMAKER.register_plan(resources.plan, {role: server.url for role, server in servers.items()})
    return Stack(cloud=cloud, plan=resources.plan, resources=resources, servers=servers, text=text)


@contextmanager
def running_stack(cloud: LocalCloud, **options: Any) -> Iterator[Stack]:
    """`build_stack`, its model servers stopped when the context ends, however it ends."""
    stack = build_stack(cloud, **options)
    try:
        yield stack
    finally:
        for server in stack.servers.values():
            server.stop()


@contextmanager
def automation(stack: Stack, region: str) -> Iterator[None]:
    """What makes Lifeboat act on its own, running in the background until the context ends: a canary
    probing both model servers into `region`'s CloudWatch, alarm evaluation there (every second), and the
    replication simulator."""
    plan = stack.plan
    targets = [
        CanaryTarget(
            name=endpoint_metric_name(plan, role),
            url=stack.servers[role].url + "/invocations",
            payload=plan.smoke_tests.cases[0].payload,
            timeout_s=plan.smoke_tests.request_timeout.total_seconds(),
        )
        for role in ("primary", "secondary")
    ]
    simulator = AlarmSimulator(stack.cloud, region=region)
    simulator.attach(Canary(targets, stack.cloud.client("cloudwatch", region))).start(interval_s=1.0)
    replication = ReplicationSimulator(stack.cloud).watch(plan).start()
    try:
        yield
    finally:
        replication.stop()
        simulator.stop()
