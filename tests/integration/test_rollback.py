"""Model rollback on the local cloud, S3-manifest registry and http model servers (the example plan): the
API starts the generated rollback state machine (moto's ASL engine running the real handlers, each with the
role infra/permissions.py gives it: IAM enforced); the model server loads the chosen version's artifact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.services.deps import deps
from localcloud.model import ModelArtifact, default_artifact
from localcloud.modelserver import publish_artifact
from tests.api_support import ALICE, Api, api_client
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
