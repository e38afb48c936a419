"""Point-in-time restore on the local cloud: the example plan's training data damaged after TIME, restored
through the API and the generated restore state machine (moto's ASL engine running the real handlers, each
with the role infra/permissions.py gives it: IAM enforced)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.services.deps import deps
from tests.api_support import ALICE, Api, api_client
from tests.integration.failback_helpers import wait_for
from tests.integration.stack import Stack

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
W, ASSET, PRIMARY = "fraud-scoring", "training-data", "us-east-1"
PREFIX = "datasets/restore-test/"


def s3(stack: Stack) -> Any:
    return stack.cloud.client("s3", PRIMARY)


def bucket(stack: Stack) -> str:
    return stack.plan.asset(ASSET).source.bucket  # type: ignore[union-attr]


def purge(stack: Stack) -> None:
    """Every version under the test's prefixes gone (each test starts from nothing)."""
    client, name = s3(stack), bucket(stack)
    for prefix in (PREFIX, "lifeboat-restore/"):
        page = client.list_object_versions(Bucket=name, Prefix=prefix)
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if doomed:
            client.delete_objects(Bucket=name, Delete={"Objects": doomed})


@pytest.fixture
def fresh(stack: Stack) -> Iterator[Stack]:
    for arn in executions_running(stack):
        stack.sfn.stop_execution(executionArn=arn)
    wait_for(lambda: not executions_running(stack), timeout=120, what="no restore running")
    purge(stack)
    stack.fresh()
    yield stack
    purge(stack)


def executions_running(stack: Stack) -> list[str]:
    arn = stack.resources.state_machines["restore"]
    return [
        e["executionArn"]
        for e in stack.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
    ]


@pytest.fixture
def api(fresh: Stack) -> Iterator[Api]:
    with api_client(ALICE, cloud=fresh.cloud) as client:
        yield client


def damaged(stack: Stack) -> datetime:
    """Good objects, then (in a later second: S3 keeps LastModified to the second) a bad overwrite, a
    deletion and a key created after the damage. Returns TIME: when the good objects were written."""
    client, name = s3(stack), bucket(stack)
    for key in ("a.csv", "b.csv", "c.csv"):
        client.put_object(Bucket=name, Key=f"{PREFIX}{key}", Body=f"good {key}".encode())
    written = client.head_object(Bucket=name, Key=f"{PREFIX}c.csv")["LastModified"].astimezone(UTC)
    # Data-driven: on as soon as the clock is in the next second (at most one second).
    wait_for(lambda: datetime.now(UTC).replace(microsecond=0) > written, timeout=5, what="the next second")
    client.put_object(Bucket=name, Key=f"{PREFIX}a.csv", Body=b"CORRUPT")
    client.delete_object(Bucket=name, Key=f"{PREFIX}b.csv")
    client.put_object(Bucket=name, Key=f"{PREFIX}z.csv", Body=b"written after the damage")
    return written


def read(stack: Stack, key: str) -> bytes | None:
    try:
        return bytes(s3(stack).get_object(Bucket=bucket(stack), Key=key)["Body"].read())
    except Exception:
        return None


def restore(api: Api, stack: Stack, **body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST /workloads/W/restores, then the execution it started, ended."""
    answer = api.post(f"/workloads/{W}/restores", {"asset": ASSET, **body})
    assert answer.status_code == 202, answer.json_body
    desc = stack.wait(answer.json_body["execution"]["arn"], timeout=120)
    return answer.json_body, desc


def test_a_dry_run_through_the_api_lists_the_changes_and_changes_nothing(api: Api, fresh: Stack) -> None:
    # Given training data damaged after TIME
    to = damaged(fresh)
    before = s3(fresh).list_object_versions(Bucket=bucket(fresh), Prefix=PREFIX)
    # When an in-place restore is dry-run through the API and its state machine
    _, desc = restore(api, fresh, to=to.isoformat(), in_place=True, confirm=W, dry_run=True)
    # Then the execution's report lists exactly the three changes and nothing was written
    assert desc["status"] == "SUCCEEDED", desc
    report = json.loads(desc["output"])
    assert report["verdict"] == "planned" and (report["copies"], report["deletes"]) == (2, 1)
    changes = [(c["key"], c["operation"]) for c in report["listed"] if c["key"].startswith("restore-test/")]
    assert changes == [
        ("restore-test/a.csv", "copy"),
        ("restore-test/b.csv", "copy"),
        ("restore-test/z.csv", "delete"),
    ]
    after = s3(fresh).list_object_versions(Bucket=bucket(fresh), Prefix=PREFIX)
    assert len(after.get("Versions", [])) == len(before.get("Versions", []))
    assert read(fresh, f"{PREFIX}a.csv") == b"CORRUPT"


def test_the_restore_machine_restores_into_a_new_prefix_verified_and_recorded(api: Api, fresh: Stack) -> None:
    to = damaged(fresh)
    started, desc = restore(api, fresh, to=to.isoformat(), reason="bad feature backfill")
    assert desc["status"] == "SUCCEEDED", desc
    report = json.loads(desc["output"])
    target = report["target"]["prefix"]
    # Then the new prefix holds the data as it was at TIME (the corrupt overwrite and the deletion undone,
    # the later key left out), every copy verified against its source version; the asset is untouched
    assert target.startswith(f"lifeboat-restore/{ASSET}/")
    assert read(fresh, f"{target}restore-test/a.csv") == b"good a.csv"
    assert read(fresh, f"{target}restore-test/b.csv") == b"good b.csv"
    assert read(fresh, f"{target}restore-test/z.csv") is None
    assert read(fresh, f"{PREFIX}a.csv") == b"CORRUPT"
    assert report["verdict"] == "restored" and report["failed"] == 0
    assert sum(report["verified"].values()) == report["copies"] >= 3
    # And the ledger names who asked and what was restored; the report is in the evidence bucket
    kinds = [(e.kind, e.outcome, e.actor) for e in deps().ledger.entries(W, limit=10)]
    assert ("restore", "restored", ALICE) in kinds and ("operator", "restore-requested", ALICE) in kinds
    assert report["evidence"].endswith(f"/restore/{W}/{started['execution']['name']}.json")


def test_an_in_place_restore_undoes_the_damage_in_the_asset(api: Api, fresh: Stack) -> None:
    to = damaged(fresh)
    _, desc = restore(api, fresh, to=to.isoformat(), in_place=True, confirm=W, reason="undo the bad write")
    assert desc["status"] == "SUCCEEDED", desc
    assert [read(fresh, f"{PREFIX}{k}") for k in ("a.csv", "b.csv", "c.csv", "z.csv")] == [
        b"good a.csv",
        b"good b.csv",
        b"good c.csv",
        None,
    ]


def test_an_unconfirmed_in_place_restore_is_refused_before_anything_starts(api: Api, fresh: Stack) -> None:
    to = damaged(fresh)
    arn = fresh.resources.state_machines["restore"]
    before = len(fresh.sfn.list_executions(stateMachineArn=arn)["executions"])
    answer = api.post(f"/workloads/{W}/restores", {"asset": ASSET, "to": to.isoformat(), "in_place": True})
    assert answer.status_code == 409 and "confirm with the name" in answer.json_body["message"]
    assert len(fresh.sfn.list_executions(stateMachineArn=arn)["executions"]) == before
    assert read(fresh, f"{PREFIX}a.csv") == b"CORRUPT"


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


def test_the_cli_dry_runs_then_restores_in_place(fresh: Stack, tmp_path: Path) -> None:
    to = damaged(fresh).isoformat()
    # When the operator dry-runs, forgets --yes, then restores in place
    dry = lifeboat(fresh, tmp_path, "restore", W, ASSET, "--to", to, "--in-place", "--yes", "--dry-run")
    unconfirmed = lifeboat(fresh, tmp_path, "restore", W, ASSET, "--to", to, "--in-place")
    done = lifeboat(fresh, tmp_path, "restore", W, ASSET, "--to", to, "--in-place", "--yes", "--json")
    # Then the dry run names each change and changed nothing; without --yes nothing runs (exit 2)
    assert dry.returncode == 0, dry.stderr
    assert "would copy 2" in dry.stdout and "would delete 1" in dry.stdout
    assert "restore-test/z.csv" in dry.stdout and "created-since" in dry.stdout
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    # And the restore ran, verified every copy, and the asset reads as it did at TIME
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["verdict"], report["copies"], report["deletes"], report["failed"]) == ("restored", 2, 1, 0)
    assert read(fresh, f"{PREFIX}a.csv") == b"good a.csv" and read(fresh, f"{PREFIX}z.csv") is None


# -- the scheduled restore test ----------------------------------------------------------------------------
def test_the_daily_restore_test_runs_with_its_own_role_and_leaves_no_scratch(fresh: Stack) -> None:
    damaged(fresh)
    # When the schedule's function runs (as Lambda runs it: its role's permissions enforced)
    answer = fresh.cloud.client("lambda").invoke(
        FunctionName="lifeboat-dev-restore_test_scheduled",
        Payload=(ROOT / "events" / "eventbridge" / "scheduled-event.json").read_bytes(),
    )
    assert "FunctionError" not in answer, answer["Payload"].read()
    results = json.loads(answer["Payload"].read())
    # Then the training data was sample-restored, verified and projected within the RTO
    assert results[f"{W}/{ASSET}"] == "passed", results
    (entry,) = [e for e in deps().ledger.entries(W, limit=20) if e.outcome.startswith("test-")][:1]
    assert entry.kind == "restore" and entry.detail["asset"] in (ASSET, "model-artifacts")
    # And no scratch copy is left behind
    left = s3(fresh).list_object_versions(Bucket=bucket(fresh), Prefix=f"lifeboat-restore/{ASSET}/test-")
    assert not left.get("Versions") and not left.get("DeleteMarkers")
