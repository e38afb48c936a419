"""Model rollback on the local cloud, S3-manifest registry and http model servers (the example plan): the
API starts the generated rollback state machine (moto's ASL engine running the real handlers, each with the
role infra/permissions.py gives it: IAM enforced); the model server loads the chosen version's artifact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.services.deps import deps
from localcloud import crashpoints, lambda_runner, sfn_events
from localcloud.drill_faults import ArtifactCopies, ThreadServers
from localcloud.model import ModelArtifact, default_artifact
from localcloud.modelserver import publish_artifact
from tests.api_support import ALICE, Api, api_client
from tests.integration.failback_helpers import locks, stop_running
from tests.integration.stack import Stack

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
W, PRIMARY = "fraud-scoring", "us-east-1"


def bad_model(version: str) -> ModelArtifact:
    """A different model: inverted weights, every smoke-test score wrong."""
    good = default_artifact()
    return good.model_copy(
        update={"version": version, "weights": [-w for w in good.weights], "bias": -good.bias}
    )


class Registry:
    """The primary's S3-manifest registry of the example plan, rewritten by a test."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        asset = stack.plan.asset("fraud-model")
        self.bucket, self.key = asset.source.bucket, f"{asset.source.prefix}fraud-scorer.json"  # type: ignore[union-attr]
        self.models = stack.resources.model["primary_bucket"]
        self.s3 = stack.cloud.client("s3", PRIMARY)
        self.original = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()

    def artifact(self, art: ModelArtifact) -> dict[str, Any]:
        key = f"models/{art.model_name}/{art.version}/model.json"
        sha = publish_artifact(self.s3, self.models, key, art)
        return {
            "version": art.version,
            "artifact": f"s3://{self.models}/{key}",
            "sha256": sha,
            "deployable": True,
        }

    def holds(self, *versions: dict[str, Any]) -> None:
        body = {"model": "fraud-scorer", "versions": list(versions)}
        self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=json.dumps(body).encode())

    def restore(self) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=self.original)


def deploy(stack: Stack, entry: dict[str, Any]) -> None:
    """What the primary model server serves, set as a deployment would (its /admin/model)."""
    request = urllib.request.Request(
        stack.servers["primary"].url + "/admin/model",
        data=json.dumps({"artifact": entry["artifact"], "sha256": entry["sha256"]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - 127.0.0.1
        assert answer.status == 200


def served(stack: Stack) -> tuple[str, str]:
    with urllib.request.urlopen(stack.servers["primary"].url + "/ping", timeout=5) as answer:  # noqa: S310
        ping = json.loads(answer.read())
    return ping["model_version"], ping["model_sha256"]


@pytest.fixture
def registry(stack: Stack) -> Iterator[Registry]:
    stack.fresh()
    found = Registry(stack)
    good = found.artifact(default_artifact())
    yield found
    found.restore()
    deploy(stack, good)


@pytest.fixture
def api(stack: Stack) -> Iterator[Api]:
    with api_client(ALICE, cloud=stack.cloud) as client:
        yield client


def rollback(api: Api, stack: Stack, **body: Any) -> dict[str, Any]:
    answer = api.post(f"/workloads/{W}/rollback", body)
    assert answer.status_code == 202, answer.json_body
    return stack.wait(answer.json_body["execution"]["arn"], timeout=120)


def test_a_bad_model_is_rolled_back_to_the_previous_approved_version(
    api: Api, stack: Stack, registry: Registry
) -> None:
    # Given 1.0.0 and then 1.1.0 approved, and the primary serving 1.1.0, whose scores are all wrong
    good = registry.artifact(default_artifact())
    bad = registry.artifact(bad_model("1.1.0"))
    registry.holds(good, bad)
    deploy(stack, bad)
    # When the operator dry-runs, then rolls back through the API (the state machine)
    dry = rollback(api, stack, dry_run=True)
    assert served(stack) == ("1.1.0", bad["sha256"])
    desc = rollback(api, stack, reason="1.1.0 scores everything wrong")
    # Then the dry run said exactly what would change, and changed nothing
    plan = json.loads(dry["output"])
    assert (plan["verdict"], plan["from_version"], plan["to_version"]) == ("planned", "1.1.0", "1.0.0")
    assert plan["to_artifact"] == good["artifact"]
    # And the rollback deployed 1.0.0's artifact, whose smoke tests passed
    assert desc["status"] == "SUCCEEDED", desc
    report = json.loads(desc["output"])
    assert (report["verdict"], report["smoke_passed"], report["reverted"]) == ("rolled-back", True, False)
    assert served(stack) == ("1.0.0", good["sha256"])
    # And the ledger says who rolled what back
    entries = [(e.kind, e.outcome, e.actor) for e in deps().ledger.entries(W, limit=10)]
    assert ("rollback", "rolled-back", ALICE) in entries and (
        "operator",
        "rollback-requested",
        ALICE,
    ) in entries


def test_a_rollback_with_no_earlier_approved_version_is_refused_and_changes_nothing(
    api: Api, stack: Stack, registry: Registry
) -> None:
    # Given the endpoint serves the first approved version; a later one is only pending
    good = registry.artifact(default_artifact())
    pending = {**registry.artifact(bad_model("1.1.0")), "deployable": False}
    registry.holds(good, pending)
    # When a rollback is asked for, then a named version that is not approved
    refused = rollback(api, stack)
    unapproved = rollback(api, stack, to_version="1.1.0")
    # Then both runs end failed, recorded with the reason, and the endpoint still serves 1.0.0
    assert refused["status"] == unapproved["status"] == "FAILED"
    reasons = [e.reason for e in deps().ledger.entries(W, limit=10) if e.kind == "rollback"]
    assert any("no approved version before 1.0.0" in r for r in reasons), reasons
    assert any("1.1.0 is not approved" in r for r in reasons), reasons
    assert served(stack) == ("1.0.0", good["sha256"])


def test_a_rollback_whose_smoke_tests_fail_is_reverted_and_reported_failed(
    api: Api, stack: Stack, registry: Registry
) -> None:
    # Given an older approved version that scores wrongly, and the primary serving the good 1.0.0
    old = registry.artifact(bad_model("0.9.0"))
    good = registry.artifact(default_artifact())
    registry.holds(old, good)
    # When the endpoint is rolled back to 0.9.0
    desc = rollback(api, stack)
    # Then its smoke tests failed, the endpoint serves 1.0.0 again, and the run is reported failed
    assert desc["status"] == "FAILED", desc
    (entry,) = [e for e in deps().ledger.entries(W, limit=10) if e.kind == "rollback"][:1]
    assert entry.outcome == "failed" and entry.detail["reverted"] is True, entry
    assert "smoke tests failed on version 0.9.0" in entry.reason
    assert served(stack) == ("1.0.0", good["sha256"])
    # And the workload lock it held is free again: a failover could start now
    assert locks(stack).current(W) is None


def test_a_restarted_model_server_still_serves_the_rolled_back_version(
    api: Api, stack: Stack, registry: Registry
) -> None:
    # Given the primary rolled back from 1.1.0 to 0.9.0 (an artifact other than the one it started with)
    prior = registry.artifact(default_artifact().model_copy(update={"version": "0.9.0"}))
    bad = registry.artifact(bad_model("1.1.0"))
    registry.holds(prior, bad)
    deploy(stack, bad)
    assert rollback(api, stack)["status"] == "SUCCEEDED"
    # When its model server is killed and started again, as a drill or the local cloud's recovery does
    servers = ThreadServers(stack.plan, stack.servers, ArtifactCopies.from_model(stack.resources.model))
    servers.kill("primary")
    servers.start("primary")
    # Then it serves the rolled-back 0.9.0, as a real endpoint keeps its deployment
    assert served(stack) == ("0.9.0", prior["sha256"])


# -- the workload lock ------------------------------------------------------------------------------------
@pytest.fixture
def points(stack: Stack) -> Iterator[None]:
    """Crash points (hold an execution after a state); whatever still runs is stopped afterwards."""
    crashpoints.install()
    try:
        yield
    finally:
        crashpoints.uninstall()  # lets every held execution go on
        stop_running(stack)
        lambda_runner.drain()


def machine(kind: str) -> str:
    return deps().executions.state_machine_name(W, kind)


def rollbacks(stack: Stack) -> int:
    arn = stack.resources.state_machines["rollback"]
    return len(stack.sfn.list_executions(stateMachineArn=arn)["executions"])


def test_a_failover_is_refused_while_a_rollback_runs_and_can_start_once_it_ended(
    api: Api, stack: Stack, registry: Registry, points: None
) -> None:
    # Given a rollback of the primary's model, held right after its smoke tests (it holds the workload lock)
    good = registry.artifact(default_artifact())
    bad = registry.artifact(bad_model("1.1.0"))
    registry.holds(good, bad)
    deploy(stack, bad)
    hold = crashpoints.hold_after(machine("rollback"), "SmokeTest")
    started = api.post(f"/workloads/{W}/rollback", {"reason": "1.1.0 scores everything wrong"})
    assert started.status_code == 202, started.json_body
    arn = hold.wait(timeout=60)
    name = started.json_body["execution"]["name"]
    # When an operator asks for a failover of the same workload meanwhile
    refused = api.post(f"/workloads/{W}/failover", {"mode": "ungraceful", "reason": "now"})
    # Then it is refused, naming the rollback that holds the lock; nothing moved
    assert refused.status_code == 409, refused.json_body
    assert f"locked by a running rollback ({name})" in refused.json_body["message"]
    assert refused.json_body["execution"]["arn"] == arn
    assert stack.weights() == {"primary": 100, "secondary": 0}
    # When the rollback goes on to its end
    hold.release()
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    # Then its lock is released: the failover the operator wanted can start
    assert locks(stack).current(W) is None
    assert served(stack) == ("1.0.0", good["sha256"])


def test_a_rollback_is_refused_while_a_failover_runs(
    api: Api, stack: Stack, registry: Registry, points: None
) -> None:
    # Given the primary serving 1.1.0 after 1.0.0, and a failover held right after it took the lock
    good = registry.artifact(default_artifact())
    bad = registry.artifact(bad_model("1.1.0"))
    registry.holds(good, bad)
    deploy(stack, bad)
    hold = crashpoints.hold_after(machine("failover"), "AcquireLock")
    name = f"held-{uuid.uuid4().hex[:6]}"
    failover = stack.start_failover(name, mode="ungraceful")
    assert hold.wait(timeout=60) == failover
    before = rollbacks(stack)
    # When an operator asks for a rollback of the same workload
    refused = api.post(f"/workloads/{W}/rollback", {"reason": "bad model"})
    # Then it is a 409 naming the failover; no rollback started and the endpoint still serves 1.1.0
    assert refused.status_code == 409, refused.json_body
    message = refused.json_body["message"]
    assert f"locked by a running failover ({name})" in message, message
    assert refused.json_body["execution"]["arn"] == failover
    assert rollbacks(stack) == before
    assert served(stack) == ("1.1.0", bad["sha256"])
    # And a dry run, which changes nothing, is still answered
    dry = api.post(f"/workloads/{W}/rollback", {"dry_run": True})
    assert dry.status_code == 202, dry.json_body
    assert json.loads(stack.wait(dry.json_body["execution"]["arn"])["output"])["verdict"] == "planned"
    # (the failover is stopped before it moves anything; the janitor frees its lock)
    stack.sfn.stop_execution(executionArn=failover, error="Test", cause="the test is over")
    hold.release()
    sfn_events.wait_for_end(failover, timeout=60)
    assert lambda_runner.drain(timeout=60)
    assert locks(stack).current(W) is None


def test_a_stopped_rollback_leaves_no_lock_and_is_recorded_stopped(
    api: Api, stack: Stack, registry: Registry, points: None
) -> None:
    # Given a rollback held right after it deployed 1.0.0 (its smoke tests not run yet)
    good = registry.artifact(default_artifact())
    bad = registry.artifact(bad_model("1.1.0"))
    registry.holds(good, bad)
    deploy(stack, bad)
    hold = crashpoints.hold_after(machine("rollback"), "Deploy")
    started = api.post(f"/workloads/{W}/rollback", {})
    assert started.status_code == 202, started.json_body
    arn = hold.wait(timeout=60)
    assert locks(stack).current(W).holder == arn  # type: ignore[union-attr]
    # When an operator stops the execution (no Catch runs: it skips RecordRollback and ReleaseLock)
    stack.sfn.stop_execution(executionArn=arn, error="Test", cause="stopped mid-rollback")
    hold.release()
    assert sfn_events.wait_for_end(arn, timeout=60)["status"] == "ABORTED"
    assert lambda_runner.drain(timeout=60), "the janitor's run is still going"
    # Then the janitor released its lock and recorded the rollback as stopped, saying what to check
    assert locks(stack).current(W) is None
    (entry,) = [e for e in deps().ledger.entries(W, limit=10) if e.kind == "rollback"]
    assert entry.outcome == "stopped" and entry.execution == arn, entry
    assert "smoke tests not run" in entry.reason and "--dry-run" in entry.reason


# -- the CLI ---------------------------------------------------------------------------------------------
def lifeboat(stack: Stack, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`lifeboat --cloud local ...` as a subprocess against this module's local cloud."""
    state = tmp_path / ".lifeboat" / "local.json"
    state.parent.mkdir(exist_ok=True)
    state.write_text(
        json.dumps({"ready": True, "pid": os.getpid(), "env": stack.cloud.env(), "workloads": {}})
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "lifeboat_cli", "--cloud", "local", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_dry_runs_rolls_back_then_refuses_a_second_rollback(
    stack: Stack, registry: Registry, tmp_path: Path
) -> None:
    # Given the primary serving 1.1.0, registered after 1.0.0
    good = registry.artifact(default_artifact())
    bad = registry.artifact(bad_model("1.1.0"))
    registry.holds(good, bad)
    deploy(stack, bad)
    # When the operator dry-runs, rolls back, then asks for another rollback
    dry = lifeboat(stack, tmp_path, "rollback", W, "--side", PRIMARY, "--dry-run")
    done = lifeboat(stack, tmp_path, "rollback", W, "--json", "--reason", "bad model")
    again = lifeboat(stack, tmp_path, "rollback", W)
    # Then the dry run showed the change; the rollback deployed 1.0.0, smoke-tested; the second is refused
    assert dry.returncode == 0, dry.stderr
    assert "1.1.0 -> 1.0.0" in dry.stdout and "would deploy" in dry.stdout
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["verdict"], report["to_version"], report["smoke_passed"]) == ("rolled-back", "1.0.0", True)
    assert served(stack) == ("1.0.0", good["sha256"])
    assert again.returncode == 1 and "no approved version before 1.0.0" in again.stderr
    # And the CLI's rollback released the workload lock it held
    assert locks(stack).current(W) is None


def test_the_cli_refuses_a_rollback_while_a_failover_holds_the_lock(
    stack: Stack, registry: Registry, tmp_path: Path
) -> None:
    # Given a failover holding the workload's lock (taken as its AcquireLock takes it)
    holder = deps().executions.execution_arn(W, "failover", "fo-running")
    locks(stack).acquire(W, holder, "failover", timedelta(minutes=5))
    try:
        # When the operator rolls back from the CLI
        refused = lifeboat(stack, tmp_path, "rollback", W)
    finally:
        locks(stack).release(W, holder)
    # Then it is refused, naming the failover (which does not exist: the message says how to free it)
    assert refused.returncode == 1, refused.stdout
    assert "refused:" in refused.stderr and "locked by a" in refused.stderr
    assert "failover (fo-running)" in refused.stderr, refused.stderr
