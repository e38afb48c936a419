"""The region-api-outage drill, for real in the local cloud: the primary model server is killed and every AWS
API of us-east-1 goes down with it; Lifeboat's copy in us-west-2 detects (a canary alarm there on the primary
endpoint), decides, fails over, and after the restore fails back; the drill measures the RTO.

The drill runs as the us-west-2 copy of Lifeboat (`settings.environment`), as an operator would run it in
AWS. Only the us-west-2 canary and alarm simulator run in the background: us-east-1's own can do nothing
while its APIs are down, and after the restore their missing-data evaluation would only add a wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.adapters.traffic import TrafficRouter
from chalicelib.models.drill import DrillRequest
from chalicelib.services import drills
from chalicelib.services.deps import deps
from chalicelib.settings import environment
from localcloud import lambda_runner
from localcloud.drill_faults import ArtifactCopies, InProcessControls, LocalFaults, ThreadServers
from localcloud.modelserver import ModelServer
from localcloud.region_outage import REGION_OUTAGE
from localcloud.regional import copy_env
from localcloud.server import LocalCloud
from localcloud.stack import PlanResources
from tests.integration.stack import PROBE, automation, running_stack

pytestmark = pytest.mark.timeout(180)

W = "fraud-scoring"
PRIMARY, SECONDARY = "us-east-1", "us-west-2"
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


class Subject:
    def __init__(self, cloud: LocalCloud, res: PlanResources, servers: dict[str, ModelServer]) -> None:
        self.cloud, self.res, self.servers, self.plan = cloud, res, servers, res.plan

    def injector(self) -> LocalFaults:
        copies = ArtifactCopies.from_model(self.res.model)
        return LocalFaults(
            self.plan, ThreadServers(self.plan, self.servers, copies), copies, InProcessControls()
        )

    def weights(self) -> dict[str, int]:
        return TrafficRouter(route53=self.cloud.client("route53", SECONDARY)).read(self.plan).weights


@pytest.fixture(scope="module")
def subject(local_cloud: LocalCloud) -> Iterator[Subject]:
    with (
        running_stack(local_cloud, copy_in_secondary=True, **SETTINGS) as stack,
        automation(stack, SECONDARY),
    ):
        try:
            yield Subject(local_cloud, stack.resources, stack.servers)
        finally:
            REGION_OUTAGE.end()


def wait_probe_ok(subject: Subject, timeout: float = 30.0) -> None:
    cloudwatch = subject.cloud.client("cloudwatch", SECONDARY)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alarms = cloudwatch.describe_alarms(AlarmNames=[PROBE])["MetricAlarms"]
        if alarms and alarms[0]["StateValue"] == "OK":
            return
        time.sleep(0.3)
    raise AssertionError(
        f"{PROBE} not OK within {timeout:g}s (the us-west-2 canary sees the primary failing)"
    )


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, kind: str, message: str) -> None:
        self.events.append((kind, message))

    def tick(self) -> None:
        return None


def test_region_api_outage_fails_over_from_the_secondary_region_and_measures_the_rto(
    subject: Subject, tmp_path: Path
) -> None:
    # Given a healthy workload whose plan watches the primary endpoint from us-west-2 too
    wait_probe_ok(subject)
    assert subject.weights() == {"primary": 100, "secondary": 0}
    request = DrillRequest(workload=W, scenario="region-api-outage", requested_by="tester", reason="test")
    # When the drill, acting as the us-west-2 copy of Lifeboat, kills the primary and takes us-east-1's
    # APIs down
    narration = Recorder()
    with environment(copy_env(subject.cloud, SECONDARY)):
        runner = drills.DrillRunner(
            request, deps(), subject.injector(), observer=narration, reports_dir=tmp_path
        )
        record = runner.run()
        stored = drills.get_drill(record.drill_id, deps())
    lambda_runner.drain()
    # Then Lifeboat failed over on its own from us-west-2, within its RTO, and failed back after the restore
    assert record.verdict == "passed", record.verdict_reason
    assert record.behaviour == "failed-over" and record.failback_outcome == "completed"
    assert record.failover_execution is not None and record.failover_execution.split(":")[3] == SECONDARY
    rto = record.objective("RTO")
    assert rto is not None and rto.met and record.rto is not None
    assert record.rto.decision_seconds >= 2.0  # the sustain window held, on the readable alarm
    # And the record says what was broken and what was restored
    assert any("every AWS API of us-east-1 down" in f for f in record.faults)
    restored = [message for kind, message in narration.events if kind == "restore"]
    assert restored and "us-east-1's APIs back" in restored[0]
    # And the evidence is in the us-west-2 copy's bucket, traffic is back on a healthy primary, no outage left
    assert stored.verdict == "passed" and stored.evidence["html"].endswith("report.html")
    assert subject.weights() == {"primary": 100, "secondary": 0}
    assert REGION_OUTAGE.active() == []
    assert all(server.running for server in subject.servers.values())


def test_region_api_outage_is_refused_from_the_primary_regions_copy(subject: Subject, tmp_path: Path) -> None:
    # When the drill is started by the us-east-1 copy (the one it would take down)
    request = DrillRequest(workload=W, scenario="region-api-outage", requested_by="tester", reason="test")
    runner = drills.DrillRunner(
        request, deps(), subject.injector(), observer=Recorder(), reports_dir=tmp_path
    )
    # Then it is refused before anything is broken, saying where to run it from
    with pytest.raises(drills.DrillRefused, match="run it from the copy in us-west-2"):
        runner.run()
    assert REGION_OUTAGE.active() == [] and all(server.running for server in subject.servers.values())
