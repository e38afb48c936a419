"""The primary region's APIs down (localcloud/region_outage.py): every AWS call to us-east-1 fails like an
outage, and Lifeboat's copy in us-west-2 still detects the outage, decides and fails over on its own.

The plan adds a canary alarm in us-west-2 that probes the primary endpoint (trigger.alarm_regions). Alarms
are driven by a real canary and the alarm simulator on an injected clock (no waiting for real periods).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from chalicelib.adapters.errors import unreachable
from chalicelib.adapters.ledger import Ledger
from chalicelib.adapters.locks import LockTable
from chalicelib.adapters.traffic import TrafficRouter
from localcloud import lambda_runner
from localcloud.alarms import AlarmSimulator, Canary, CanaryTarget, period_start
from localcloud.modelserver import ModelServer
from localcloud.region_outage import REGION_OUTAGE
from localcloud.resources import names
from localcloud.server import CREDENTIALS, LocalCloud
from localcloud.stack import PlanResources, endpoint_metric_name
from tests.integration.stack import PROBE, clear_tables, running_stack

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
PRIMARY, SECONDARY = "us-east-1", "us-west-2"
PERIOD = timedelta(seconds=2)  # the simulator's trigger alarms: 2 of 2 periods of 2 seconds


class World:
    """The plan's resources in both copies, its model servers, and clients per region."""

    def __init__(self, cloud: LocalCloud, res: PlanResources, servers: dict[str, ModelServer]) -> None:
        self.cloud, self.res, self.servers = cloud, res, servers
        self.plan = res.plan
        self.n = names(cloud.stage)

    def ledger(self, region: str = SECONDARY) -> Ledger:
        return Ledger(self.n.ledger_table, self.cloud.client("dynamodb", region))

    def locks(self, region: str = SECONDARY) -> LockTable:
        return LockTable(self.n.lock_table, self.cloud.client("dynamodb", region))

    def weights(self) -> dict[str, int]:
        # Route 53 is global; its control plane stays up unless the outage takes it too.
        return TrafficRouter(route53=self.cloud.client("route53", SECONDARY)).read(self.plan).weights

    def sfn(self, arn: str) -> Any:
        return self.cloud.client("stepfunctions", arn.split(":")[3])

    def executions(self, region: str, kind: str = "failover") -> list[dict[str, Any]]:
        machine = self.res.state_machines[kind] if region == PRIMARY else self.res.copies[region][kind]
        return self.cloud.client("stepfunctions", region).list_executions(stateMachineArn=machine)[
            "executions"
        ]


@pytest.fixture(scope="module")
def world(local_cloud: LocalCloud) -> Iterator[World]:
    with running_stack(
        local_cloud, copy_in_secondary=True, sustain="2s", replication_wait_timeout="2s"
    ) as stack:
        assert stack.plan.failover.mode == "graceful"
        try:
            yield World(local_cloud, stack.resources, stack.servers)
        finally:
            REGION_OUTAGE.end()


@pytest.fixture
def fresh(world: World) -> Iterator[World]:
    """All traffic on a healthy primary, no ledger, lock or idempotency records, every region up."""
    REGION_OUTAGE.end()
    TrafficRouter(route53=world.cloud.client("route53")).shift(
        world.plan, {"primary": 100, "secondary": 0}, {}
    )
    for server in world.servers.values():
        server.clear_faults()
    clear_tables(world.cloud, "ledger", "locks", "idempotency", region=PRIMARY)
    clear_tables(world.cloud, "idempotency", region=SECONDARY)
    try:
        yield world
    finally:
        REGION_OUTAGE.end()
        lambda_runner.drain()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"waited {timeout:g}s for {what}")


def fail_fast(cloud: LocalCloud, service: str, region: str) -> Any:
    return boto3.session.Session().client(
        service,
        region_name=region,
        endpoint_url=cloud.endpoint_url,
        aws_access_key_id=CREDENTIALS,
        aws_secret_access_key=CREDENTIALS,
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )


# -- the fault


CALLS: dict[str, Callable[[Any], Any]] = {
    "cloudwatch": lambda c: c.describe_alarms(),
    "events": lambda c: c.list_rules(),
    "s3": lambda c: c.list_buckets(),
    "dynamodb": lambda c: c.list_tables(),
    "lambda": lambda c: c.list_functions(),
    "stepfunctions": lambda c: c.list_state_machines(),
}


def test_every_api_of_the_failed_region_fails_fast_and_the_other_region_answers(world: World) -> None:
    # Given us-east-1's APIs are down
    REGION_OUTAGE.begin(PRIMARY)
    try:
        for service, call in CALLS.items():
            # When Lifeboat's services are called in us-east-1, then in us-west-2
            refused_before = REGION_OUTAGE.refused
            with pytest.raises(Exception) as caught:
                call(fail_fast(world.cloud, service, PRIMARY))
            # Then the us-east-1 call fails like an unreachable region, at once: the outage dropped its one
            # attempt (not a client timeout, which would also read as unreachable); us-west-2 answers
            assert unreachable(caught.value), (service, caught.value)
            assert not isinstance(caught.value, ReadTimeoutError | ConnectTimeoutError), service
            assert REGION_OUTAGE.refused > refused_before, service  # (background loops may be refused too)
            call(fail_fast(world.cloud, service, SECONDARY))
        # And a us-east-1 bucket cannot be reached even by a client of another region (AWS would redirect)
        with pytest.raises(Exception) as caught:
            fail_fast(world.cloud, "s3", SECONDARY).list_objects_v2(Bucket="fraud-data-use1")
        assert unreachable(caught.value)
        # And Route 53 (global) stays up unless the outage takes the global control planes too
        fail_fast(world.cloud, "route53", PRIMARY).list_hosted_zones()
        REGION_OUTAGE.begin(PRIMARY, global_services=True, mode="unavailable")
        with pytest.raises(Exception) as caught:
            fail_fast(world.cloud, "route53", SECONDARY).list_hosted_zones()
        assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"  # type: ignore[attr-defined]
    finally:
        REGION_OUTAGE.end()
    # When the outage ends, us-east-1 answers again
    fail_fast(world.cloud, "cloudwatch", PRIMARY).describe_alarms()


def test_the_step_functions_engine_cannot_invoke_a_function_of_the_failed_region(world: World) -> None:
    # Given a us-west-2 state machine whose one Task is a us-east-1 Lambda function
    sfn = world.cloud.client("stepfunctions", SECONDARY)
    fn = world.cloud.resources["functions"][world.n.function("load_plan")]
    assert fn.split(":")[3] == PRIMARY
    definition = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": fn, "End": True}}}
    machine = sfn.create_state_machine(
        name="cross-region-task", definition=json.dumps(definition), roleArn=world.cloud.resources["role_arn"]
    )["stateMachineArn"]
    # When it runs while us-east-1 is down
    refused_before = REGION_OUTAGE.refused
    REGION_OUTAGE.begin(PRIMARY)
    try:
        arn = sfn.start_execution(
            stateMachineArn=machine,
            name="engine-call-refused",
            input=json.dumps({"workload": "fraud-scoring"}),
        )["executionArn"]
        done = wait_for(
            "the execution to end",
            lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
            timeout=60,
        )
    finally:
        REGION_OUTAGE.end()
    # Then the engine's own Invoke call was refused: the execution failed, the handler never ran
    assert done["status"] == "FAILED"
    assert REGION_OUTAGE.refused > refused_before


# -- Lifeboat through it


def drive_us_west_2_alarms(world: World) -> list[Any]:
    """The us-west-2 canary probes the (dead) primary endpoint for three periods on an injected clock, then
    the us-west-2 simulator evaluates its alarms: the probe alarm goes to ALARM and EventBridge (us-west-2)
    delivers the state change to the us-west-2 copy's on_alarm."""
    start = period_start(datetime.now(UTC), 2) - timedelta(seconds=20)
    cloudwatch = world.cloud.client("cloudwatch", SECONDARY)
    target = CanaryTarget(
        name=endpoint_metric_name(world.plan, "primary"),
        url=world.servers["primary"].url + "/invocations",
        payload=world.plan.smoke_tests.cases[0].payload,
        timeout_s=1.0,
    )
    canary = Canary([target], cloudwatch)
    for k in range(3):
        results = canary.probe_once(start + k * PERIOD + timedelta(milliseconds=500))
        assert not results[0].success
    simulator = AlarmSimulator(world.cloud, region=SECONDARY, warm_up=False)
    return simulator.tick(start + 3 * PERIOD + timedelta(milliseconds=500))


def test_failover_completes_from_the_secondary_region_with_the_primarys_apis_down(fresh: World) -> None:
    w = fresh
    # Given the primary endpoint dies and every us-east-1 API goes down with it (CloudWatch, EventBridge,
    # S3, DynamoDB, Lambda, Step Functions): its alarms can neither be evaluated nor read
    before = {r["executionArn"] for r in [*w.executions(PRIMARY), *w.executions(SECONDARY)]}
    w.servers["primary"].set_faults(down=True)
    REGION_OUTAGE.begin(PRIMARY)
    # When the us-west-2 canary's alarm on the primary endpoint fires
    transitions = drive_us_west_2_alarms(w)
    assert [(t.alarm_name, t.value) for t in transitions] == [(PROBE, "ALARM")]
    # Then the us-west-2 copy decides alone (the us-east-1 alarms unknown, the quorum judged on the readable
    # alarm, the confirmation probe as second witness) and its failover machine runs
    lambda_runner.drain()
    runs = wait_for(
        "a failover execution in us-west-2",
        lambda: [r for r in w.executions(SECONDARY) if r["executionArn"] not in before],
    )
    assert len(runs) == 1 and runs[0]["executionArn"].split(":")[3] == SECONDARY
    arn = runs[0]["executionArn"]
    sfn = w.sfn(arn)
    done = wait_for(
        "the us-west-2 failover to end",
        lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
    )
    assert done["status"] == "SUCCEEDED", done.get("cause")
    # And traffic is on the secondary
    assert w.weights() == {"primary": 0, "secondary": 100}
    # And the ledger, read in us-west-2 while us-east-1 is still down, tells the whole story
    entries = w.ledger().entries(w.plan.workload, limit=50)
    decision = next(e for e in entries if e.kind == "decision" and e.outcome == "started")
    quorum = decision.detail["quorum"]
    assert quorum["unreachable"] == [
        "fraud-scoring-use1-errors",
        "fraud-scoring-use1-latency",
        "fraud-scoring-use1-canary",
    ]
    assert quorum["in_alarm"] == [PROBE] and quorum["needed"] == 1
    failover = next(e for e in entries if e.kind == "failover")
    assert failover.outcome == "completed" and failover.execution == arn
    assert "us-east-1" in failover.detail["recheck"]["regions_unreachable"]
    # And graceful mode, unable to list the us-east-1 sources, proceeded after its bounded wait and
    # recorded the RPO exposure instead of failing
    replication = failover.detail["replication"]
    assert replication["done"] and not replication["caught_up"]
    assert sorted(replication["source_unreachable"]) == ["model-artifacts", "training-data"]
    assert {e["asset"] for e in replication["exposure"]} == {"model-artifacts", "training-data"}
    exposed = next(e for e in entries if e.kind == "replication" and e.outcome == "rpo-exposed")
    assert exposed.execution == arn and "proceeds as ungraceful" in exposed.reason
    state = w.ledger().get_state(w.plan.workload)
    assert state.active_region == SECONDARY and state.last_rto_seconds is not None
    assert state.pending_execution is None
    assert w.locks().current(w.plan.workload) is None
    # When the region comes back, its replica of the global tables holds the same ledger, and no failover
    # ran there
    REGION_OUTAGE.end()
    assert [e.entry_id for e in w.ledger(PRIMARY).entries(w.plan.workload, limit=50)] == [
        e.entry_id for e in entries
    ]
    assert [r for r in w.executions(PRIMARY) if r["executionArn"] not in before] == []


def test_operator_failover_from_the_secondary_copy_with_the_primarys_apis_down(fresh: World) -> None:
    w = fresh
    # Given us-east-1's APIs are down (its endpoint too)
    w.servers["primary"].set_faults(down=True)
    REGION_OUTAGE.begin(PRIMARY)
    # When an operator starts a graceful failover through the us-west-2 copy (deploy.md's failure case)
    sfn = w.cloud.client("stepfunctions", SECONDARY)
    arn = sfn.start_execution(
        stateMachineArn=w.res.copies[SECONDARY]["failover"],
        name="op-failover-region-down",
        input=json.dumps({"workload": w.plan.workload, "mode": "graceful", "reason": "us-east-1 is down"}),
    )["executionArn"]
    done = wait_for(
        "the operator failover to end",
        lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
    )
    # Then it completes: traffic on the secondary, the exposure recorded, the lock free
    assert done["status"] == "SUCCEEDED", done.get("cause")
    assert w.weights() == {"primary": 0, "secondary": 100}
    failover = w.ledger().entries(w.plan.workload, kind="failover")[0]
    assert failover.outcome == "completed"
    assert failover.detail["replication"]["source_unreachable"]
    assert w.locks().current(w.plan.workload) is None


def test_an_alarm_of_the_same_name_in_another_region_is_not_the_plans(fresh: World) -> None:
    # Given a state change of an alarm named like the plan's us-west-2 probe, but living in eu-west-1
    event = json.loads((ROOT / "events/cloudwatch/alarm-state-change-single-metric.json").read_text())
    event["region"] = "eu-west-1"
    event["resources"] = [f"arn:aws:cloudwatch:eu-west-1:{event['account']}:alarm:{PROBE}"]
    event["detail"]["alarmName"] = PROBE
    event["detail"]["state"]["value"] = "ALARM"
    # When the us-west-2 copy's on_alarm receives it
    resp = fresh.cloud.client("lambda", SECONDARY).invoke(
        FunctionName=fresh.n.function("on_alarm"), Payload=json.dumps(event).encode()
    )
    outcome = json.loads(resp["Payload"].read())
    # Then no plan claims it: nothing decided, nothing recorded
    assert "FunctionError" not in resp, outcome
    assert outcome["rejected"] is None and outcome["decisions"] == [] and outcome["executions"] == {}
    assert fresh.ledger().entries(fresh.plan.workload) == []
