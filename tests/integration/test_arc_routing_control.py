"""arc-routing-control for real: the ARC example plan (plans/fraud-scoring-arc.yaml) in the local cloud, its
routing controls in the local ARC cluster (five endpoints on 127.0.0.1, localcloud/arc.py), the generated
failover and failback state machines run by moto's ASL engine, every task the real handler under its IAM role.

The proof: us-east-1's APIs down with Route 53's control plane (homed there) and 2 of the cluster's 5
endpoints down (us-east-1's, which goes with its region, and eu-west-1's). The ARC plan still fails over on
its own, within its RTO, and fails back once the region is back; the shipped route53-weighted plan under the
same outage cannot move traffic, and its failover says why.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.ledger import Ledger
from chalicelib.adapters.traffic import TrafficRouter
from chalicelib.models.drill import DrillRequest
from chalicelib.models.plan import ArcRoutingControlTraffic
from chalicelib.models.planfile import load_plan_text
from chalicelib.services import drills
from chalicelib.services.deps import deps
from chalicelib.settings import environment
from localcloud import arc, lambda_runner
from localcloud.drill_faults import ArtifactCopies, InProcessControls, LocalFaults, ThreadServers
from localcloud.model import default_artifact
from localcloud.modelserver import ModelServer
from localcloud.region_outage import REGION_OUTAGE
from localcloud.regional import copy_env, provision_copy
from localcloud.resources import names
from localcloud.server import LocalCloud
from localcloud.stack import PlanResources, provision_plan
from tests.integration.stack import LOCAL_ENDPOINT, Stack, automation, clear_tables, running_stack

pytestmark = pytest.mark.timeout(300)

ARC_PLAN = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring-arc.yaml"
PRIMARY, SECONDARY = "us-east-1", "us-west-2"
ON_PRIMARY, ON_SECONDARY = {"primary": 100, "secondary": 0}, {"primary": 0, "secondary": 100}
# Short waits so a drill fits a test; the plan's RTO (5m) and its failback steps stay as shipped.
SETTINGS = {
    "sustain": "2s",
    "cooldown": "1s",
    "replication_wait_timeout": "2s",
    "bake": "0s",
    "write_interval": "500ms",
    "failback_bake": "0s",
    "observe": "30s",
    "request_timeout": "1s",
}


def arc_plan_text(primary_url: str, secondary_url: str) -> str:
    text = ARC_PLAN.read_text()
    assert text.count(LOCAL_ENDPOINT) == 2
    text = text.replace(LOCAL_ENDPOINT, primary_url, 1).replace(LOCAL_ENDPOINT, secondary_url, 1)
    for key, value in SETTINGS.items():
        text, count = re.subn(rf"(?m)^(\s*{key}:)\s*[^#\n]*", rf"\g<1> {value}  ", text, count=1)
        if count == 0:  # not in the shipped plan: add it to its section
            section = "drill" if key in ("write_interval", "failback_bake", "observe") else None
            assert section, key
            text = text.replace(f"\n{section}:\n", f"\n{section}:\n  {key}: {value}\n", 1)
    return text


class ArcWorld:
    def __init__(self, cloud: LocalCloud, res: PlanResources, servers: dict[str, ModelServer]) -> None:
        self.cloud, self.res, self.servers, self.plan = cloud, res, servers, res.plan
        traffic = self.plan.traffic
        assert isinstance(traffic, ArcRoutingControlTraffic)
        self.traffic = traffic
        self.cluster = arc.cluster_for(cloud, traffic.cluster_arn)

    def states(self) -> tuple[str, str]:
        controls = self.traffic.routing_controls
        return self.cluster.state(controls.primary), self.cluster.state(controls.secondary)

    def weights(self) -> dict[str, int]:
        # The real client at the cluster's endpoints, as the functions call them (Route 53 only when split).
        return TrafficRouter(route53=self.cloud.client("route53", SECONDARY)).read(self.plan).weights

    def injector(self, controls: InProcessControls) -> LocalFaults:
        copies = ArtifactCopies.from_model(self.res.model)
        return LocalFaults(self.plan, ThreadServers(self.plan, self.servers, copies), copies, controls)


@pytest.fixture(scope="module")
def weighted(local_cloud: LocalCloud) -> Iterator[Stack]:
    """The shipped route53-weighted plan, with Lifeboat's copy in us-west-2 and its canary there."""
    with running_stack(local_cloud, copy_in_secondary=True, **SETTINGS) as stack:
        yield stack


@pytest.fixture(scope="module")
def world(local_cloud: LocalCloud, weighted: Stack) -> Iterator[ArcWorld]:
    provision_copy(local_cloud, SECONDARY)
    artifact = default_artifact()
    servers = {
        role: ModelServer(artifact, region=region).start()
        for role, region in (("primary", PRIMARY), ("secondary", SECONDARY))
    }
    try:
        text = arc_plan_text(
            servers["primary"].url + "/invocations", servers["secondary"].url + "/invocations"
        )
        plan = load_plan_text(text, "fraud-scoring-arc.yaml")
        res = provision_plan(local_cloud, plan, text, stage=local_cloud.stage, artifact=artifact)
        yield ArcWorld(local_cloud, res, servers)
    finally:
        REGION_OUTAGE.end()
        for server in servers.values():
            server.stop()


@pytest.fixture
def fresh(world: ArcWorld) -> Iterator[ArcWorld]:
    """All traffic on a healthy primary, every endpoint and region up, empty ledger and locks."""
    REGION_OUTAGE.end()
    world.cluster.bring_up()
    TrafficRouter().shift(world.plan, ON_PRIMARY, {})
    for server in world.servers.values():
        server.clear_faults()
    clear_tables(world.cloud, "ledger", "locks", "idempotency", region=PRIMARY)
    clear_tables(world.cloud, "idempotency", region=SECONDARY)
    world.cluster.calls.clear()
    try:
        yield world
    finally:
        REGION_OUTAGE.end()
        world.cluster.bring_up()
        lambda_runner.drain()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 240.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout:g}s for {what}")


def run_to_end(cloud: LocalCloud, machine: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    sfn = cloud.client("stepfunctions", machine.split(":")[3])
    arn = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(body))["executionArn"]
    return dict(
        wait_for(
            f"execution {name} to end",
            lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
        )
    )


def wait_probe_ok(w: ArcWorld) -> None:
    probe = "fraud-scoring-arc-usw2-canary"
    cloudwatch = w.cloud.client("cloudwatch", SECONDARY)
    wait_for(
        f"{probe} OK (the us-west-2 canary sees a healthy primary)",
        lambda: [
            a
            for a in cloudwatch.describe_alarms(AlarmNames=[probe])["MetricAlarms"]
            if a["StateValue"] == "OK"
        ],
        timeout=60,
    )


def ledger(cloud: LocalCloud, region: str = SECONDARY) -> Ledger:
    return Ledger(names(cloud.stage).ledger_table, cloud.client("dynamodb", region))


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, kind: str, message: str) -> None:
        self.events.append((kind, message))

    def tick(self) -> None:
        return None


def test_the_local_cloud_serves_the_plans_cluster_on_five_endpoints(world: ArcWorld) -> None:
    # Given the ARC plan provisioned in the local cloud
    endpoints = world.traffic.cluster_endpoints
    # Then the plan it stores names the local cluster's five endpoints, each on 127.0.0.1
    assert [e.region for e in endpoints] == list(arc.REGIONS)
    assert all(e.url.startswith("http://127.0.0.1:") for e in endpoints)
    stored = (
        world.cloud.client("s3")
        .get_object(Bucket=names(world.cloud.stage).plan_bucket, Key="plans/fraud-scoring-arc.yaml")["Body"]
        .read()
        .decode()
    )
    assert endpoints[0].url in stored
    # And the controls are there, all traffic on the primary, guarded by an at-least-one-On rule
    assert world.states() == ("On", "Off")
    assert [r.name for r in world.cluster.rules()] == ["fraud-scoring-arc-one-region-serves"]


def test_plan_check_reads_the_cluster_controls_and_rules_from_the_local_cluster(world: ArcWorld) -> None:
    # When the ARC plan is validated against the local cloud's live resources (as `lifeboat plan check`)
    from chalicelib.services.validate import validate_plan

    report = validate_plan(world.plan.workload, deps(), probe_endpoints=False, simulate_iam=False)
    traffic = {(f.subject, f.severity): f.message for f in report.findings if f.check == "traffic"}
    # Then the switch reads back, and the cluster, each control and the safety rules pass
    assert all(severity == "ok" for _, severity in traffic), traffic
    subjects = " ".join(subject for subject, _ in traffic)
    controls = world.traffic.routing_controls
    for found in (world.traffic.cluster_arn, controls.primary, controls.secondary, "safety rules"):
        assert found in subjects, traffic
    assert any("fraud-scoring-arc-one-region-serves" in m for m in traffic.values()), traffic


def test_an_operator_failover_flips_both_controls_in_one_call(fresh: ArcWorld) -> None:
    w = fresh
    # When an operator fails over through the home copy's generated state machine
    done = run_to_end(
        w.cloud,
        w.res.state_machines["failover"],
        "arc-op-failover",
        {"workload": w.plan.workload, "mode": "ungraceful", "reason": "test"},
    )
    # Then it succeeds: one update set both controls, the read-back agrees, the ledger records it
    assert done["status"] == "SUCCEEDED", done.get("cause")
    assert w.states() == ("Off", "On")
    updates = [c for c in w.cluster.calls if c.operation == "UpdateRoutingControlStates"]
    assert [c.outcome for c in updates] == ["ok"]
    assert w.weights() == ON_SECONDARY
    entry = ledger(w.cloud, PRIMARY).entries(w.plan.workload, kind="failover")[0]
    assert entry.outcome == "completed" and entry.detail["traffic_after"] == ON_SECONDARY


def test_a_safety_rule_refusal_stops_the_failover_and_names_the_rule(fresh: ArcWorld) -> None:
    w = fresh
    # Given a gating rule: the controls may change only while an "automation allowed" switch is On (Off)
    switch = w.cluster.routing_control(
        w.traffic.routing_controls.primary.replace("/use1", "/automation-allowed"), state="Off"
    ).arn
    w.cluster.gating_rule(
        "automation-allowed",
        [switch],
        [w.traffic.routing_controls.primary, w.traffic.routing_controls.secondary],
    )
    try:
        # When an operator fails over
        done = run_to_end(
            w.cloud,
            w.res.state_machines["failover"],
            "arc-refused",
            {"workload": w.plan.workload, "mode": "ungraceful", "reason": "test"},
        )
    finally:
        w.cluster.remove_rule("automation-allowed")
    # Then the run fails on the cluster's refusal (ShiftRefused: never retried, at this endpoint or another),
    # its reason naming the rule; nothing moved
    assert done["status"] == "FAILED" and done["error"] == "FailoverFailed"
    entry = ledger(w.cloud, PRIMARY).entries(w.plan.workload, kind="failover")[0]
    assert entry.outcome == "failed", entry.reason
    assert "safety rule" in entry.reason and "automation-allowed" in entry.reason, entry.reason
    updates = [c.outcome for c in w.cluster.calls if c.operation == "UpdateRoutingControlStates"]
    assert updates == ["ConflictException"]
    assert w.states() == ("On", "Off")


def test_region_api_outage_with_route53s_control_plane_and_two_endpoints_down_arc_fails_over_in_rto(
    fresh: ArcWorld, weighted: Stack, tmp_path: Path
) -> None:
    w = fresh
    # Given two of the cluster's five endpoints will be down: eu-west-1's now, us-east-1's with its region
    w.cluster.take_down("eu-west-1")
    request = DrillRequest(
        workload=w.plan.workload, scenario="region-api-outage", requested_by="tester", reason="test"
    )
    # When the region-api-outage drill, run by the us-west-2 copy, kills the primary and takes every API of
    # us-east-1 down, Route 53's and IAM's control planes included
    with (
        automation(Stack(w.cloud, w.plan, w.res, w.servers), SECONDARY),
        environment(copy_env(w.cloud, SECONDARY)),
    ):
        wait_probe_ok(w)  # the us-west-2 canary has seen the healthy primary
        runner = drills.DrillRunner(
            request,
            deps(),
            w.injector(InProcessControls(global_services=True)),
            observer=Recorder(),
            reports_dir=tmp_path,
        )
        record = runner.run()
    lambda_runner.drain()
    # Then Lifeboat failed over on its own from us-west-2 within the plan's RTO, and failed back after
    assert record.verdict == "passed", record.verdict_reason
    assert record.behaviour == "failed-over" and record.failback_outcome == "completed"
    rto = record.objective("RTO")
    assert rto is not None and rto.met
    assert any("Route 53 and IAM control planes" in f for f in record.faults), record.faults
    # And the failover's switch (the first update) went through an endpoint that answered, after any of the
    # down ones the random order met first; only those two were ever down
    updates = [c for c in w.cluster.calls if c.operation == "UpdateRoutingControlStates"]
    failover = next(c for c in updates if c.outcome == "ok")
    assert failover.region not in {"us-east-1", "eu-west-1"}
    assert {c.region for c in w.cluster.calls if c.outcome == "down"} <= {"us-east-1", "eu-west-1"}
    # And traffic is back on the primary, its control On
    assert w.weights() == ON_PRIMARY and w.states() == ("On", "Off")


@pytest.mark.timeout(420)  # the shift is retried as for any transient failure before failing
def test_the_same_outage_stops_a_route53_weighted_failover_and_says_why(weighted: Stack) -> None:
    s = weighted
    s.fresh()
    clear_tables(s.cloud, "idempotency", region=SECONDARY)
    # Given the shipped route53-weighted plan, its primary dead, us-east-1 down with Route 53's control plane
    s.servers["primary"].set_faults(down=True)
    REGION_OUTAGE.begin(PRIMARY, global_services=True)
    try:
        # When an operator fails over through the us-west-2 copy
        done = run_to_end(
            s.cloud,
            s.resources.copies[SECONDARY]["failover"],
            "weighted-route53-down",
            {"workload": s.plan.workload, "mode": "ungraceful", "reason": "us-east-1 is down"},
        )
        entry = ledger(s.cloud).entries(s.plan.workload, kind="failover")[0]
    finally:
        REGION_OUTAGE.end()
        s.servers["primary"].clear_faults()
    # Then the run fails: its traffic switch is Route 53's control plane, which never answered, and the
    # ledger says so
    assert done["status"] == "FAILED" and done["error"] == "FailoverFailed"
    assert entry.outcome == "failed", entry.reason
    assert "route53-weighted fraud.lifeboat.internal. unreachable" in entry.reason, entry.reason
    assert "which region serves users is UNKNOWN" in entry.reason  # it could not even read traffic back
    # And nothing moved: all traffic is still on the (dead) primary once Route 53 answers again
    assert s.weights() == ON_PRIMARY
