"""DR drills in the local cloud, for real: faults injected into in-process model servers, Lifeboat's own AWS
calls and the drill's replication; the canary and the alarm simulator running in the background; the
trigger, failover and failback state machines executed by moto's ASL engine; verdicts, evidence and reports.

One module-scoped stack per example plan with short windows (sustain 2s, bake 0s, write every 0.5s) keeps
this file under a few minutes; every scenario starts from all traffic on a healthy primary. The scenarios
marked `EVERY_PLAN` run on the SageMaker example plan too (its endpoints served by the local cloud's
SageMaker, smoke tests through InvokeEndpoint); the others on the http example plan.
"""

from __future__ import annotations

import argparse
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.drill_faults import HttpFaults
from chalicelib.models.drill import DrillRequest
from chalicelib.models.plan import S3Asset
from chalicelib.services import drills
from chalicelib.services.deps import deps
from lifeboat_cli import drill as drill_cli
from localcloud import lambda_runner, replication_control
from localcloud.drill_faults import THROTTLE, ArtifactCopies, InProcessControls, LocalFaults, ThreadServers
from localcloud.server import LocalCloud
from tests.api_support import ALICE, api_client
from tests.integration.failback_helpers import locks, stop_running
from tests.integration.stack import EXAMPLE, SAGEMAKER_EXAMPLE, Stack, automation, running_stack

pytestmark = pytest.mark.timeout(600)  # a bound for a hung drill, far above its ~15 s

W = "fraud-scoring"
GAP = 4.0
INTERVAL = 0.5
STACK_SETTINGS = {
    "sustain": "2s",
    "cooldown": "1s",
    "replication_wait_timeout": "2s",
    "bake": "0s",
    "write_interval": "500ms",
    "replication_gap": "4s",
    "failback_bake": "0s",
    "observe": "25s",
    "throttle_share": "0.15",
    "request_timeout": "1s",  # smoke tests and the canary give up sooner on a degraded endpoint
}


PLANS = {"http": EXAMPLE, "sagemaker": SAGEMAKER_EXAMPLE}
EVERY_PLAN = pytest.mark.parametrize("stack", sorted(PLANS), indirect=True)
"""A scenario that runs on every example plan (the others run on the http one)."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test of the module names its plan: EVERY_PLAN's, else the http example's.
    chosen = [m for m in metafunc.definition.iter_markers("parametrize") if m.args[0] == "stack"]
    if "stack" in metafunc.fixturenames and not chosen:
        metafunc.parametrize("stack", ["http"], indirect=True)


@pytest.fixture(scope="module")
def stack(local_cloud: LocalCloud, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """An example plan's stack (`request.param`: a key of PLANS) with Lifeboat's automation running
    (canary, alarm evaluation, replication)."""
    with running_stack(local_cloud, path=PLANS[request.param], **STACK_SETTINGS) as built:
        # The other plan's stack may have run first: the plan store's cache must see this one now.
        deps().plans.put(built.text, source="test-plan.yaml")  # type: ignore[attr-defined]
        with automation(built, built.cloud.region):
            yield built


def injector(stack: Stack) -> LocalFaults:
    servers = ThreadServers(stack.plan, stack.servers, ArtifactCopies.from_model(stack.resources.model))
    return LocalFaults(
        stack.plan, servers, ArtifactCopies.from_model(stack.resources.model), InProcessControls()
    )


@pytest.fixture
def clean(stack: Stack) -> Iterator[Stack]:
    """All traffic on a healthy primary, no faults, no executions, empty ledger; alarms back to OK.

    Afterwards, whatever the test did or however it failed, nothing it started is still running: the next
    test never meets this one's executions, faults or lock.
    """
    reset(stack)
    yield stack
    stop_running(stack)
    injector(stack).restore_all()
    lambda_runner.drain()


def reset(stack: Stack) -> None:
    stop_running(stack)
    injector(stack).restore_all()
    stack.reset_traffic()
    lambda_runner.drain()
    stack.clear_tables()
    wait_alarms_ok(stack)


def wait_alarms_ok(stack: Stack, timeout: float = 120.0) -> None:
    """Bounded: the canary needs two good periods per alarm; a busy machine makes that slower, not wrong."""
    deadline = time.monotonic() + timeout
    firing: list[str] = []
    while time.monotonic() < deadline:
        snaps = deps().alarms.snapshots(stack.plan.trigger.alarms, stack.plan.regions.primary)
        firing = [s.name for s in snaps if s.state == "ALARM"]
        if not firing:
            return
        time.sleep(0.3)
    raise AssertionError(f"trigger alarms still in ALARM after {timeout:.0f}s: {firing}")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, kind: str, message: str) -> None:
        self.events.append((kind, message))

    def tick(self) -> None:
        return None


QUIET_ATTEMPTS = 3
"""A drill starts only from a quiet workload (its preflight refuses while a trigger alarm fires, before it
breaks anything). On a busy machine the canary can miss a probe between the reset and the preflight; the
test then waits for the alarms again, a bounded number of times."""


def drill(stack: Stack, scenario: str, tmp_path: Path, **kwargs: Any) -> drills.DrillRecord:
    request = DrillRequest(
        workload=stack.plan.workload, scenario=scenario, requested_by="tester", reason="integration test"
    )
    for attempt in range(1, QUIET_ATTEMPTS + 1):
        runner = drills.DrillRunner(
            request, deps(), injector(stack), observer=Recorder(), reports_dir=tmp_path, **kwargs
        )
        try:
            return runner.run()
        except drills.DrillRefused as refused:
            if "already in ALARM before the drill" not in str(refused) or attempt == QUIET_ATTEMPTS:
                raise
            wait_alarms_ok(stack)
    raise AssertionError("unreachable")


def assert_clean(stack: Stack) -> None:
    assert stack.weights() == {"primary": 100, "secondary": 0}
    # No trace of the drill's writes: nothing visible in either region, no old version left in the source
    # (the replica's Object Lock keeps its versions: that is what the lock is for)
    for asset in (a for a in stack.plan.assets if isinstance(a, S3Asset)):
        for location, region in ((asset.source, "us-east-1"), (asset.replica, "us-west-2")):
            s3, prefix = stack.cloud.client("s3", region), location.prefix + drills.WRITE_PREFIX
            assert not s3.list_objects_v2(Bucket=location.bucket, Prefix=prefix).get("Contents")
        versions = stack.cloud.client("s3").list_object_versions(
            Bucket=asset.source.bucket, Prefix=asset.source.prefix + drills.WRITE_PREFIX
        )
        assert not versions.get("Versions") and not versions.get("DeleteMarkers"), asset.source.bucket
    assert locks(stack).current(stack.plan.workload) is None
    assert deps().ledger.get_control(stack.plan.workload, drills.CONTROL_KEY) is None
    assert all(server.running for server in stack.servers.values())
    assert THROTTLE.share == 0 and not replication_control.paused("*")


# -- the scenarios -----------------------------------------------------------------------------------------
@EVERY_PLAN
def test_region_outage_fails_over_measures_and_fails_back(clean: Stack, tmp_path: Path) -> None:
    # Given a healthy workload with the drill writing to its dataset
    # When the region-outage drill kills the primary model server
    record = drill(clean, "region-outage", tmp_path)
    # Then Lifeboat failed over by itself, within its RTO, lost no data, and failed back step by step
    assert record.verdict == "passed", record.verdict_reason
    assert record.behaviour == "failed-over" and record.failback_outcome == "completed"
    rto, rpo = record.objective("RTO"), record.objective("RPO")
    assert rto is not None and rto.met and rto.margin_seconds == pytest.approx(300 - rto.measured_seconds)
    assert rpo is not None and rpo.met and record.rpo is not None and record.rpo.rpo_seconds <= INTERVAL
    # And the RTO parts add up: decision + automation + validation == RTO, detection came before it
    r = record.rto
    assert r is not None
    assert r.decision_seconds + r.automation_seconds + r.validation_seconds == pytest.approx(
        r.rto_seconds, abs=0.01
    )
    assert r.decision_seconds >= 2.0  # the sustain window
    assert r.detection_seconds > 0 and r.fault_at < r.first_alarm_at <= r.decided_at <= r.switched_at
    # And every step of both executions has a duration from the histories
    names = {(s.execution, s.name) for s in record.steps}
    assert {("failover", "ShiftTraffic"), ("failback", "ShiftStep")} <= names
    assert all(s.duration_seconds is not None for s in record.steps)
    # And the evidence exists: bucket, ledger, local report with a valid picture
    stored = drills.get_drill(record.drill_id, deps())
    assert stored.verdict == "passed" and stored.evidence["html"].endswith("report.html")
    html = Path(record.report_paths["html"]).read_text()
    svg = html[html.index("<svg") : html.index("</svg>") + len("</svg>")]
    assert ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}rect")
    assert_clean(clean)


@EVERY_PLAN
def test_endpoint_degraded_fails_over_on_slow_wrong_answers(clean: Stack, tmp_path: Path) -> None:
    # When the primary answers slower than the canary's timeout, and wrongly when it answers at all
    record = drill(clean, "endpoint-degraded", tmp_path)
    # Then the alarms fire, the confirmation probe agrees, Lifeboat fails over and back, objectives met
    assert record.verdict == "passed", record.verdict_reason
    assert record.behaviour == "failed-over" and record.failback_outcome == "completed"
    assert any("latency_ms=2500" in f for f in record.faults)
    assert_clean(clean)


def test_replication_stalled_rpo_equals_the_gap(clean: Stack, tmp_path: Path) -> None:
    # When replication is paused for GAP seconds while writes continue, and then the region fails
    record = drill(clean, "replication-stalled", tmp_path)
    # Then Lifeboat fails over after its bounded replication wait, and the RPO it measured is the gap
    assert record.behaviour == "failed-over", record.verdict_reason
    assert record.rpo is not None and record.rpo.missing > 0
    # (against the gap as it really was, on the drill's clock and the writer's own log: the drill waits GAP
    # and a busy machine adds to it; the writer paces itself with real sleeps, so on a loaded machine it may
    # write less often than INTERVAL. What must hold whatever the load: the recovery point is the newest
    # write before the pause, every write made during the gap is lost, and nothing after the fault counts.)
    paused, fault = (next(m.at for m in record.markers if m.name == name) for name in ("paused", "fault"))
    gap = (fault - paused).total_seconds()
    rpo = record.rpo
    assert gap >= GAP, gap
    assert rpo.recovery_point_at is not None and rpo.recovery_point_at <= paused, (paused, rpo)
    assert rpo.oldest_missing_at is not None and rpo.newest_write_at is not None, rpo
    assert rpo.oldest_missing_at > rpo.recovery_point_at and rpo.newest_write_at <= fault, (fault, rpo)
    # so the window lost runs from the recovery point before the pause to the newest write before the fault
    assert rpo.rpo_seconds == round((rpo.newest_write_at - rpo.recovery_point_at).total_seconds(), 3), rpo
    assert rpo.missing >= 2, rpo  # the writer wrote through the gap
    objective = record.objective("RPO")
    assert objective is not None and objective.met and objective.objective_seconds == 15 * 60  # its own RPO
    assert record.verdict == "passed", record.verdict_reason
    assert "dataset objects from both regions" in " ".join(record.cleanup)
    assert_clean(clean)


@EVERY_PLAN
def test_corrupt_replica_artifact_is_refused(clean: Stack, tmp_path: Path) -> None:
    before = clean.servers["secondary"].artifact.sha256()
    # When the replica's model artifact differs (the secondary reloaded it) and the primary region fails
    record = drill(clean, "corrupt-artifact", tmp_path)
    # Then Lifeboat refuses: the backup fails its smoke tests; traffic never moved; the artifact is restored
    assert record.verdict == "passed", record.verdict_reason
    assert record.behaviour == "refused" and "backup unhealthy" in (record.failover_reason or "")
    assert record.objective("RTO").met is None  # type: ignore[union-attr]
    assert clean.servers["secondary"].artifact.sha256() == before
    assert_clean(clean)


@EVERY_PLAN
def test_data_corruption_is_restored_in_place_not_failed_over(clean: Stack, tmp_path: Path) -> None:
    good_model = clean.servers["primary"].artifact.sha256()
    # When a bad write and a deletion hit the dataset and a bad model artefact is deployed, all replicated to
    # the secondary region (both model servers load the bad model)
    record = drill(clean, "data-corruption", tmp_path)
    # Then Lifeboat moved no traffic: the damage is in both regions, so a failover would not have helped
    assert record.verdict == "passed", (record.verdict_reason, record.restore_problems)
    assert record.behaviour in ("no-failover", "refused") and record.failover_outcome != "completed"
    assert record.recovery_action == "restore" and "both regions" in (record.recovery_reason or "")
    # And the smoke tests and the last verified state saw the damage in each region
    assert any(e.startswith("primary: smoke tests fail") for e in record.detected_by), record.detected_by
    assert any(e.startswith("secondary: smoke tests fail") for e in record.detected_by), record.detected_by
    # And both damaged assets were restored in place to the second before the damage, every copy verified
    restored = {a.asset: a for a in record.restored_assets}
    assert set(restored) == {"training-data", "model-artifacts"}
    assert all(a.verdict == "restored" and a.failed == 0 for a in restored.values())
    data = restored["training-data"].changes
    assert data.get("reverted") == 2 and data.get("undeleted") == 2, data
    assert restored["model-artifacts"].changes == {"reverted": 1}
    r = record.restore
    assert r is not None and r.restore_point < r.damaged_at <= r.detected_at <= r.validated_at
    assert r.restore_point == r.damaged_at.replace(microsecond=0) - timedelta(seconds=1)
    parts = r.decision_seconds + r.restore_seconds + r.redeploy_seconds + r.validation_seconds
    assert parts == pytest.approx(r.rto_seconds, abs=0.01)
    # And the data lost is the writes the restore undid: everything after the recovery point, and nothing
    # at or before it
    rpo = record.rpo
    assert rpo is not None and rpo.recovery_point_at is not None and rpo.newest_write_at is not None
    assert rpo.missing >= 1 and rpo.recovery_point_at < r.damaged_at, rpo
    assert rpo.rpo_seconds == round((rpo.newest_write_at - rpo.recovery_point_at).total_seconds(), 3)
    rto_obj, rpo_obj = record.objective("RTO"), record.objective("RPO")
    assert rto_obj is not None and rto_obj.met and rto_obj.measured_seconds == r.rto_seconds
    assert rpo_obj is not None and rpo_obj.met and rpo_obj.objective_seconds == 15 * 60
    # And the good model serves again in both regions; each restore is on record in the ledger
    assert all(server.artifact.sha256() == good_model for server in clean.servers.values())
    restores = [d for d in record.decisions if d["kind"] == "restore"]
    assert [d["outcome"] for d in restores] == ["restored", "restored"], restores
    report = Path(record.report_paths["markdown"]).read_text()
    assert "## Restore (no failover)" in report and "Time to restore" in report
    assert_clean(clean)


def test_api_throttling_still_fails_over(clean: Stack, tmp_path: Path) -> None:
    throttled_before = THROTTLE.throttled
    # When 15% of Lifeboat's own AWS calls are throttled and then the primary region fails
    record = drill(clean, "api-throttling", tmp_path)
    # Then the retries absorb the throttling: failed over and back within the objectives
    assert THROTTLE.throttled > throttled_before
    assert record.verdict == "passed", record.verdict_reason
    assert record.behaviour == "failed-over"
    assert_clean(clean)


def test_backup_unhealthy_is_refused_in_a_drill_started_through_the_api(clean: Stack) -> None:
    # Given the local cloud's injector plugged in, as the daemon does for the drill function
    unregister = drills.register_injector(lambda plan: injector(clean))
    try:
        with api_client(ALICE, cloud=clean.cloud) as api:
            # When an operator starts the backup-unhealthy drill through the API
            started = api.post(
                f"/workloads/{W}/drills", {"scenario": "backup-unhealthy", "reason": "game day"}
            )
            assert started.status_code == 202, started.body
            drill_id = started.json_body["drill_id"]
            # (the drill function runs it asynchronously, from the EventBridge event)
            lambda_runner.drain(timeout=120)
            listed = api.get(f"/drills?workload={W}").json_body["drills"]
            record = api.get(f"/drills/{drill_id}").json_body
    finally:
        unregister()
    # Then Lifeboat refused to fail over onto a backup serving wrong predictions, as it must
    assert listed[0]["drill_id"] == drill_id and listed[0]["verdict"] == "passed", listed[0]
    assert record["behaviour"] == "refused" and record["failover_outcome"] == "refused"
    assert "backup unhealthy" in record["failover_reason"] and record["requested_by"] == ALICE
    assert any(m["name"] == "refused" for m in record["markers"])
    assert record["evidence"]["html"].endswith(f"{drill_id}/report.html")
    assert_clean(clean)


def test_alarm_flapping_never_fails_over(clean: Stack, tmp_path: Path) -> None:
    # Given a plan whose sustain window is longer than an alarm burst (8s), and a primary that fails and
    # recovers every few seconds
    reprovision(clean, sustain="8s")
    try:
        record = drill(clean, "alarm-flapping", tmp_path)
    finally:
        reprovision(clean)
    # Then the alarms really flapped, but no failover happened: every quorum was suppressed or cancelled
    assert record.verdict == "passed", record.verdict_reason
    assert record.behaviour == "no-failover"
    assert any(a["state"] == "ALARM" for a in record.alarms) and any(
        a["state"] == "OK" for a in record.alarms
    )
    assert not any(d["kind"] == "failover" and d["outcome"] == "completed" for d in record.decisions)
    assert_clean(clean)


def test_flapping_refused_when_the_sustain_window_is_too_short(clean: Stack, tmp_path: Path) -> None:
    # Given the module's plan (sustain 2s: an alarm burst outlasts it, so failing over would be right)
    # Then the flapping drill refuses to start, saying why, and nothing was broken
    with pytest.raises(drills.DrillRefused, match="sustain window"):
        drill(clean, "alarm-flapping", tmp_path)
    assert_clean(clean)


# -- interrupted drills ------------------------------------------------------------------------------------
def test_an_exception_mid_drill_cleans_up_and_records_interrupted(
    clean: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom() -> None:
        raise RuntimeError("the operator's laptop lost power")

    # When the drill fails right after the failover (traffic on the secondary, primary dead)
    record = drill(clean, "region-outage", tmp_path, hooks={"after-failover": boom})
    # Then it says so, and left a consistent system: primary back, traffic all on it, nothing running
    assert record.verdict == "interrupted" and "lost power" in record.verdict_reason
    assert any("moved back to the primary" in c for c in record.cleanup), record.cleanup
    assert_clean(clean)
    assert deps().ledger.get_state(W).active_region == clean.plan.regions.primary
    assert Path(record.report_paths["html"]).exists()
    # And `lifeboat drill list` / `lifeboat drill show` find it in the ledger and the evidence bucket
    monkeypatch.chdir(tmp_path)
    listed = drill_cli.cmd_drill(argparse.Namespace(target="list", rest=[], workload=W, limit=5, json=True))
    printed = capsys.readouterr().out  # (the handlers' JSON log lines share stdout in-process)
    rows = json.loads(printed[printed.index("[\n") : printed.index("\n]\n") + 2])
    shown = drill_cli.cmd_drill(argparse.Namespace(target="show", rest=[record.drill_id], json=False))
    out = capsys.readouterr().out
    assert listed == 0 and rows[0]["drill_id"] == record.drill_id and rows[0]["verdict"] == "interrupted"
    assert shown == 1 and "drill INTERRUPTED" in out and "lost power" in out
    assert (tmp_path / "reports" / f"{W}-{record.drill_id}.html").is_file()


def test_a_killed_drill_is_recovered_after_its_lease_lapses(
    clean: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drills.control, "LEASE", __import__("datetime").timedelta(seconds=2))

    def killed() -> None:
        raise drills.SimulatedKill()

    # Given a drill whose process died (no cleanup at all) after the failover
    with pytest.raises(drills.SimulatedKill):
        drill(clean, "region-outage", tmp_path, hooks={"after-failover": killed})
    assert clean.weights() == {"primary": 0, "secondary": 100}
    assert not clean.servers["primary"].running
    time.sleep(2.5)
    # Then no new drill starts over the wreck
    with pytest.raises(drills.DrillRefused, match="recover"):
        drill(clean, "region-outage", tmp_path)
    # When recovery runs (the daemon's dead-man switch does this by itself)
    record = drills.recover(W, deps(), injector(clean), reports_dir=tmp_path)
    # Then the faults are gone, traffic is clean, and the drill is on record as interrupted
    assert record is not None and record.verdict == "interrupted"
    assert_clean(clean)
    assert drills.recover(W, deps(), injector(clean)) is None  # nothing left to recover


def reprovision(stack: Stack, **overrides: str) -> None:
    from chalicelib.models.planfile import load_plan_text
    from localcloud.stack import provision_plan
    from tests.integration.stack import plan_text

    text = plan_text(
        stack.servers["primary"].url + "/invocations",
        stack.servers["secondary"].url + "/invocations",
        **{**STACK_SETTINGS, **overrides},
    )
    stack.plan = load_plan_text(text, "test-plan.yaml")
    stack.resources = provision_plan(
        stack.cloud, stack.plan, text, stage=stack.cloud.stage, artifact=stack.servers["secondary"].artifact
    )
    deps().plans.put(text, source="test-plan.yaml")  # type: ignore[attr-defined]


def test_the_aws_injector_breaks_drill_target_endpoints_through_their_fault_api(clean: Stack) -> None:
    # Given the injector a drill uses in an AWS account (HTTP endpoints running the model-server container)
    faults = HttpFaults(clean.plan)
    assert faults.unsupported("api-throttling") and faults.unsupported("region-outage") is None
    # When it "kills" the primary and degrades the secondary
    faults.kill("primary")
    faults.degrade("secondary", wrong_answers=True)
    # Then both endpoints really misbehave, and restore_all brings both back
    assert clean.servers["primary"].faults.down and clean.servers["secondary"].faults.wrong_answers
    assert len(faults.restore_all()) == 2
    assert not clean.servers["primary"].faults.down and not clean.servers["secondary"].faults.wrong_answers


def test_data_corruption_drill_started_through_the_api_restores_under_the_drill_functions_role(
    clean: Stack,
) -> None:
    # Given the local cloud's injector plugged in, as the daemon does for the drill function (whose role the
    # local cloud enforces: it must be allowed to restore the assets in place)
    unregister = drills.register_injector(lambda plan: injector(clean))
    try:
        with api_client(ALICE, cloud=clean.cloud) as api:
            started = api.post(
                f"/workloads/{W}/drills", {"scenario": "data-corruption", "reason": "game day"}
            )
            assert started.status_code == 202, started.body
            lambda_runner.drain(timeout=180)
            record = api.get(f"/drills/{started.json_body['drill_id']}").json_body
    finally:
        unregister()
    # Then the drill function restored both assets and passed
    assert record["verdict"] == "passed", (record["verdict_reason"], record["restore_problems"])
    assert {a["asset"] for a in record["restored_assets"]} == {"training-data", "model-artifacts"}
    assert_clean(clean)
