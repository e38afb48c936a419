"""The console API and its CLI verbs against a real local cloud: routes run in-process through chalice.test
(with API Gateway's IAM check stood in by `signed_in`), the use cases behind them run for real on moto, and
the CLI runs as a subprocess against the same cloud.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.locks import LockTable
from chalicelib.adapters.traffic import TrafficRouter
from chalicelib.models.api import execution_id
from chalicelib.models.planfile import load_plan_file
from localcloud import lambda_runner, sfn_events
from localcloud.resources import names
from tests.api_support import ALICE, Api, api_client
from tests.integration.failback_helpers import (
    failed_over,
    ledger,
    locks,
    reconfigure,
    stop_running,
    wait_for,
    wait_until_waiting,
)
from tests.integration.stack import Stack

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
W = "fraud-scoring"
BOB = "arn:aws:sts::123456789012:assumed-role/operators/bob"
STACK_SETTINGS = {"sustain": "1s", "replication_wait_timeout": "3s", "bake": "0s"}


@pytest.fixture
def fresh(stack: Stack) -> Stack:
    """All traffic on a healthy primary, nothing running, empty ledger and locks."""
    stop_running(stack)
    return stack.fresh()


@pytest.fixture
def api(fresh: Stack) -> Iterator[Api]:
    with api_client(ALICE, cloud=fresh.cloud) as client:
        yield client


def executions_of(stack: Stack, kind: str) -> list[dict[str, Any]]:
    return stack.sfn.list_executions(stateMachineArn=stack.resources.state_machines[kind])["executions"]


# -- plans and status -----------------------------------------------------------------------------------
def test_plans_and_live_status(api: Api) -> None:
    # When an operator lists plans, reads one, and asks for status with a live smoke test
    plans = api.get("/plans")
    one = api.get(f"/plans/{W}")
    status = api.get(f"/status/{W}?probe=true")
    # Then the plan is there with its effective objectives
    assert [p["workload"] for p in plans.json_body["plans"]] == [W]
    assert one.json_body["objectives"] == {"rpo": "1m", "rto": "5m"}
    assert one.json_body["asset_rpo"]["training-data"] == "15m"
    # And status shows the live traffic, both endpoints passing, RPO objectives per asset, nothing running
    s = status.json_body
    assert status.status_code == 200 and s["active_region"] == "us-east-1"
    assert {e["role"]: (e["weight"], e["smoke"]["passed"]) for e in s["endpoints"]} == {
        "primary": (100, True),
        "secondary": (0, True),
    }
    assert {a["asset"]: a["objective"] for a in s["assets"]}["features"] == "5m"
    assert s["running"] == [] and s["lock"] is None and s["last_failover"] is None


# -- failover -------------------------------------------------------------------------------------------
def test_a_dry_run_shows_the_steps_and_traffic_change_and_changes_nothing(api: Api, fresh: Stack) -> None:
    # Given the executions so far
    before = len(executions_of(fresh, "failover"))
    # When an operator asks for a dry run of an ungraceful failover
    response = api.post(f"/workloads/{W}/failover", {"mode": "ungraceful", "dry_run": True})
    # Then the exact steps and the traffic change come back
    body = response.json_body
    assert response.status_code == 200, response.body
    assert body["steps"][:3] == ["HasTrigger", "AcquireLock", "SmokeTestBackup"]
    assert "CheckReplication" not in body["steps"] and "ShiftTraffic" in body["steps"]
    assert (body["traffic_before"], body["traffic_after"]) == (
        {"primary": 100, "secondary": 0},
        {"primary": 0, "secondary": 100},
    )
    assert body["would_refuse"] is False
    # And nothing changed: no execution, no ledger entry, traffic where it was
    assert len(executions_of(fresh, "failover")) == before
    assert ledger(fresh).entries(W) == []
    assert fresh.weights() == {"primary": 100, "secondary": 0}


def test_failover_records_the_caller_refuses_a_second_one_and_can_be_inspected(
    api: Api, fresh: Stack
) -> None:
    # When alice fails the workload over
    started = api.post(f"/workloads/{W}/failover", {"mode": "ungraceful", "reason": "us-east-1 is down"})
    # Then it is accepted with an execution id, and her identity and reason are in the ledger
    assert started.status_code == 202, started.body
    execution = started.json_body["execution"]
    entry = ledger(fresh).entries(W, kind="operator")[0]
    assert (entry.actor, entry.reason, entry.execution) == (ALICE, "us-east-1 is down", execution["arn"])
    # And a second failover while it runs is refused with the id of the one in the way
    second = api.as_(BOB).post(f"/workloads/{W}/failover", {"reason": "me too"})
    assert second.status_code == 409, second.body
    assert second.json_body["execution"]["id"] == execution["id"]
    assert execution["name"] in second.json_body["message"]
    # When it has finished
    assert fresh.wait(execution["arn"])["status"] == "SUCCEEDED"
    # Then the lock claimed for it before it started was taken over by the execution and released at its end
    assert locks(fresh).current(W) is None
    # Then the executions list, the execution (by id and by name) and status all tell the story
    listed = api.get(f"/executions?workload={W}").json_body["executions"]
    assert (listed[0]["name"], listed[0]["kind"], listed[0]["status"]) == (
        execution["name"],
        "failover",
        "SUCCEEDED",
    )
    detail = api.get(f"/executions/{execution['id']}").json_body
    by_name = api.get(f"/executions/{execution['name']}").json_body
    assert detail == {**by_name, "duration_seconds": detail["duration_seconds"]}
    steps = {s["name"]: s for s in detail["steps"]}
    assert steps["ShiftTraffic"]["status"] == "succeeded"
    assert steps["ShiftTraffic"]["result"]["weights"] == {"primary": 0, "secondary": 100}
    assert steps["IsGraceful"]["next"] == "ShiftTraffic"  # the choice an ungraceful run takes
    assert detail["requested_by"] == ALICE
    assert [(d["kind"], d["outcome"]) for d in detail["decisions"]] == [
        ("operator", "failover-requested"),
        ("failover", "completed"),
    ]
    status = api.get(f"/status/{W}").json_body
    assert status["active_region"] == "us-west-2"
    assert (
        status["last_failover"]["outcome"] == "completed" and status["last_failover"]["measured_seconds"] > 0
    )


def test_a_held_lock_is_a_409_naming_the_holder(api: Api, fresh: Stack) -> None:
    # Given the workload's lock was taken five minutes ago by a failback execution that does not exist
    holder = "arn:aws:states:us-east-1:123456789012:execution:lifeboat-dev-fraud-scoring-failback:fb-1"
    five_minutes_ago = LockTable(
        names(fresh.cloud.stage).lock_table,
        fresh.cloud.client("dynamodb"),
        clock=lambda: datetime.now(UTC) - timedelta(minutes=5),
    )
    five_minutes_ago.acquire(W, holder, "failback", timedelta(minutes=30))
    before = len(executions_of(fresh, "failover"))
    # When a failover is requested
    response = api.post(f"/workloads/{W}/failover", {"reason": "try anyway"})
    # Then it is refused with the holder's id, and nothing started
    assert response.status_code == 409
    assert response.json_body["execution"] == {"id": execution_id(holder), "arn": holder, "name": "fb-1"}
    assert len(executions_of(fresh, "failover")) == before
    # And the message says the holder no longer runs, and how to free the workload
    message = response.json_body["message"]
    assert "locked by a failback (fb-1) that is no longer running" in message
    assert "cannot be described: ExecutionDoesNotExist" in message and f"lifeboat unlock {W}" in message


# -- one answer per request, decided before answering ---------------------------------------------------
def lock_left_by_an_ended_execution(stack: Stack, name: str) -> str:
    """A failover that completed, whose lock is held again under its ARN: as if its ReleaseLock never ran
    and the janitor missed its end (its rule not deployed, its invocation failed). Traffic is left on the
    secondary."""
    arn = stack.start_failover(name)
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    # The janitor runs on the end's status change, asynchronously: let it finish before the lock is taken
    # again, or it would release that lock whenever it got to run (a race the test would sometimes lose).
    sfn_events.wait_for(arn, "SUCCEEDED")
    lambda_runner.drain()
    locks(stack).acquire(W, arn, "failover", timedelta(minutes=30))
    return arn


@pytest.mark.parametrize(
    "requests",
    [
        pytest.param(
            [("failover", {"mode": "ungraceful", "reason": "a"}), ("failover", {"reason": "b"})],
            id="two-failovers",
        ),
        pytest.param(
            [
                ("failover", {"mode": "ungraceful", "reason": "a", "force": True}),
                ("failback", {"reason": "b"}),
            ],
            id="failover-and-failback",
        ),
    ],
)
def test_of_two_requests_at_the_same_moment_exactly_one_is_accepted_and_the_other_names_it(
    api: Api, stack: Stack, monkeypatch: pytest.MonkeyPatch, requests: list[tuple[str, dict[str, Any]]]
) -> None:
    from chalicelib.services import console

    # Given a workload both requests apply to (failed over, for a failback to have something to do)
    if requests[1][0] == "failback":
        failed_over(stack)
    before = {kind: len(executions_of(stack, kind)) for kind in ("failover", "failback")}
    # And two requests that both pass the early checks before either takes the lock: each waits for the
    # other right after its check, so only the claim can tell them apart
    meet = threading.Barrier(2, timeout=30)
    check = console.ensure_idle

    def check_then_meet(workload: str, d: Any) -> None:
        check(workload, d)
        meet.wait()

    monkeypatch.setattr(console, "ensure_idle", check_then_meet)
    answers: dict[int, Any] = {}

    def send(i: int) -> None:
        kind, body = requests[i]
        answers[i] = api.as_([ALICE, BOB][i]).post(f"/workloads/{W}/{kind}", body)

    first = threading.Thread(target=send, args=(0,))
    first.start()
    # (the second is sent once the first has read its request: chalice.test shares one current_request)
    wait_for(lambda: meet.n_waiting == 1, what="the first request to pass its check")
    second = threading.Thread(target=send, args=(1,))
    second.start()
    first.join(60)
    second.join(60)
    # When both have been answered
    statuses = sorted(a.status_code for a in answers.values())
    # Then exactly one got 202, and the other a 409 naming the execution the first one started
    assert statuses == [202, 409], [a.json_body for a in answers.values()]
    won = next(a.json_body for a in answers.values() if a.status_code == 202)
    lost = next(a.json_body for a in answers.values() if a.status_code == 409)
    assert lost["execution"]["arn"] == won["execution"]["arn"], lost
    assert won["execution"]["name"] in lost["message"] and "no longer running" not in lost["message"]
    # And only the winner's execution exists, and it holds the lock and runs to its end
    after = {kind: len(executions_of(stack, kind)) for kind in ("failover", "failback")}
    assert sum(after.values()) - sum(before.values()) == 1
    assert stack.wait(won["execution"]["arn"], timeout=90)["status"] == "SUCCEEDED"
    assert locks(stack).current(W) is None


def test_a_second_failover_has_nothing_to_do_unless_forced(api: Api, fresh: Stack) -> None:
    # Given a completed failover
    first = api.post(f"/workloads/{W}/failover", {"mode": "ungraceful", "reason": "us-east-1 is down"})
    assert fresh.wait(first.json_body["execution"]["arn"])["status"] == "SUCCEEDED"
    started = len(executions_of(fresh, "failover"))
    # When another operator asks for a failover
    again = api.as_(BOB).post(f"/workloads/{W}/failover", {"mode": "ungraceful", "reason": "is it down?"})
    # Then the answer is that there is nothing to do: nothing started, no second "completed" RTO
    assert again.status_code == 200, again.body
    assert again.json_body["reason"] == "already serving from us-west-2; nothing to do"
    assert again.json_body["traffic"] == {"primary": 0, "secondary": 100}
    assert len(executions_of(fresh, "failover")) == started
    assert [e.outcome for e in ledger(fresh).entries(W, kind="failover")] == ["completed"]
    # And the ledger says who asked and what they were told
    told = ledger(fresh).entries(W, kind="operator")[0]
    assert (told.outcome, told.actor) == ("failover-not-needed", BOB)
    # When they insist (force)
    forced = api.as_(BOB).post(
        f"/workloads/{W}/failover", {"mode": "ungraceful", "reason": "re-run", "force": True}
    )
    # Then it runs
    assert forced.status_code == 202, forced.body
    assert fresh.wait(forced.json_body["execution"]["arn"])["status"] == "SUCCEEDED"


def test_a_failback_with_nothing_to_fail_back_is_a_409_with_the_reason(api: Api, fresh: Stack) -> None:
    # Given all traffic on the primary, which the ledger has never seen leave
    before = len(executions_of(fresh, "failback"))
    # When a failback is requested
    response = api.post(f"/workloads/{W}/failback", {"reason": "just in case"})
    # Then it is refused with the reason, and nothing started
    assert response.status_code == 409, response.body
    assert response.json_body["message"] == "nothing to fail back: us-east-1 already serves all traffic"
    assert "execution" not in response.json_body
    assert len(executions_of(fresh, "failback")) == before
    assert ledger(fresh).entries(W, kind="operator")[0].outcome == "failback-refused"


def test_status_flags_a_lock_whose_holder_has_ended_and_unlock_frees_it(api: Api, fresh: Stack) -> None:
    # Given the lock is held by a failover execution that has ended
    holder = lock_left_by_an_ended_execution(fresh, "op-ended-holder")
    # When an operator reads the status
    lock = api.get(f"/status/{W}").json_body["lock"]
    # Then the lock is shown with its holder, kind and lease, flagged stale because the holder is not running
    assert (lock["holder"], lock["holder_name"], lock["operation"]) == (holder, "op-ended-holder", "failover")
    assert lock["acquired_at"] < lock["expires_at"]
    assert (lock["stale"], lock["holder_status"], lock["stale_reason"]) == (
        True,
        "SUCCEEDED",
        "its execution is SUCCEEDED",
    )
    # And a forced failover is refused (409) by that lock, with the way out in the message
    blocked = api.post(f"/workloads/{W}/failover", {"reason": "x", "force": True})
    assert blocked.status_code == 409 and "lifeboat unlock" in blocked.json_body["message"]
    # When bob unlocks it without a reason, then with one
    no_reason = api.as_(BOB).post(f"/workloads/{W}/unlock", {})
    unlocked = api.as_(BOB).post(f"/workloads/{W}/unlock", {"reason": "holder ended without releasing"})
    # Then the first is a 400 naming the reason field; the second removes the lock and says whose it was
    assert no_reason.status_code == 400
    assert [p["field"] for p in no_reason.json_body["problems"]] == ["reason"]
    assert unlocked.status_code == 200, unlocked.body
    assert unlocked.json_body["released"]["holder"] == holder
    assert unlocked.json_body["result"] == (
        "released the lock of failover op-ended-holder (its execution is SUCCEEDED)"
    )
    assert api.get(f"/status/{W}").json_body["lock"] is None
    # And the ledger has who removed it and why, linked to the execution that held it
    entry = ledger(fresh).entries(W, kind="operator")[0]
    assert (entry.outcome, entry.actor, entry.reason, entry.execution) == (
        "unlocked",
        BOB,
        "holder ended without releasing",
        holder,
    )


def test_unknown_workloads_and_executions_are_404(api: Api) -> None:
    # When the workload or execution does not exist (an execution of another app counts as not existing)
    foreign = "arn:aws:states:us-east-1:123456789012:execution:someone-elses-machine:x"
    answers = [
        api.post("/workloads/no-such-workload/failover", {"reason": "x"}),
        api.get("/ledger/no-such-workload"),
        api.get("/executions/no-such-execution"),
        api.get(f"/executions/{execution_id(foreign)}"),
        api.post("/executions/no-such-execution/approve"),
    ]
    # Then each is a 404 in the API's error shape
    assert [(r.status_code, r.json_body["code"]) for r in answers] == [(404, "NotFound")] * len(answers)


# -- failback and its controls --------------------------------------------------------------------------
def test_failback_is_approved_through_the_api_and_every_decision_names_its_caller(
    api: Api, stack: Stack
) -> None:
    # Given a workload failed over, whose plan wants approval before failing back
    failed_over(stack, approval_required="true")
    # When alice starts a failback and bob approves it
    started = api.post(f"/workloads/{W}/failback", {"reason": "primary restored"})
    assert started.status_code == 202, started.body
    execution = started.json_body["execution"]
    wait_until_waiting(execution["arn"], "approval")
    approved = api.as_(BOB).post(
        f"/executions/{execution['id']}/approve", {"reason": "checked the dashboards"}
    )
    # Then the approval is accepted and the failback completes, back on the primary
    assert approved.status_code == 200, approved.body
    assert approved.json_body["action"] == "approve"
    assert stack.wait(execution["arn"])["status"] == "SUCCEEDED"
    assert stack.weights() == {"primary": 100, "secondary": 0}
    assert locks(stack).current(W) is None  # the claim taken at the request was the execution's lock
    # And the ledger names who asked and who approved
    operator = {e.outcome: e.actor for e in ledger(stack).entries(W, kind="operator")}
    assert operator["failback-requested"] == ALICE and operator["failback-approved"] == BOB
    # And controls that no longer apply are refused: approving again, or approving a failover
    again = api.post(f"/executions/{execution['name']}/approve")
    assert again.status_code == 409, again.body


def test_controls_only_apply_to_failback_executions(api: Api, fresh: Stack) -> None:
    # Given a finished failover execution
    arn = fresh.start_failover("op-control-target")
    fresh.wait(arn)
    # When someone tries to pause it
    response = api.post(f"/executions/{execution_id(arn)}/pause", {"reason": "oops"})
    # Then it is a 409 explaining that only failbacks take controls
    assert response.status_code == 409
    assert "only failback executions take pause" in response.json_body["message"]


# -- validation -----------------------------------------------------------------------------------------
@contextmanager
def replication_removed(stack: Stack, bucket: str) -> Iterator[None]:
    """Take a source bucket's replication configuration away for the duration, then put it back."""
    s3 = stack.cloud.client("s3")
    saved = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]
    s3.delete_bucket_replication(Bucket=bucket)
    try:
        yield
    finally:
        s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=saved)


def test_validation_checks_live_resources_and_finds_a_missing_replication_rule(
    api: Api, fresh: Stack
) -> None:
    # Given the local cloud as provisioned (endpoints, records, versioned and replicated buckets, alarms)
    # When the plan is validated
    healthy = api.post(f"/plans/{W}/validate").json_body
    # Then it is valid, and the checks that passed are listed
    assert healthy["valid"] is True, [f for f in healthy["findings"] if f["severity"] == "error"]
    oks = {(f["check"], f["subject"]) for f in healthy["findings"] if f["severity"] == "ok"}
    assert ("alarm", "fraud-scoring-use1-errors") in oks
    assert ("endpoint", "secondary endpoint (us-west-2)") in oks
    assert ("asset", "training-data: fraud-data-use1 -> fraud-data-usw2") in oks
    assert any(check == "traffic" for check, _ in oks)
    # And IAM could not be simulated on moto, so the permissions the plan needs are listed instead
    assert healthy["iam_simulated"] is False
    assert any(p["action"] == "route53:ChangeResourceRecordSets" for p in healthy["permissions"])
    # When the training data bucket stops replicating
    with replication_removed(fresh, "fraud-data-use1"):
        broken = api.post(f"/plans/{W}/validate", {"probe_endpoints": False}).json_body
    # Then the plan is not valid, with exactly that error, and no endpoint was probed this time
    errors = [f for f in broken["findings"] if f["severity"] == "error"]
    assert broken["valid"] is False
    assert [f["subject"] for f in errors] == ["training-data: fraud-data-use1 -> fraud-data-usw2"]
    assert "no enabled replication rule" in errors[0]["message"] and "(RPO 15m)" in errors[0]["message"]
    assert not any(f["check"] == "endpoint" for f in broken["findings"])


def test_verification_runs_on_demand_and_status_shows_the_measured_rpo_per_asset(
    api: Api, fresh: Stack
) -> None:
    # When alice asks for a backup verification now
    started = api.post(f"/workloads/{W}/verify", {"reason": "monthly check"})
    # Then it starts (202) with her identity in the ledger, and a second request while it runs is a 409
    assert started.status_code == 202, started.body
    execution = started.json_body["execution"]
    requested = ledger(fresh).entries(W, kind="operator")[0]
    assert (requested.outcome, requested.actor) == ("verification-requested", ALICE)
    again = api.post(f"/workloads/{W}/verify")
    assert again.status_code in (202, 409)  # 202 only if the first run already finished
    # When the run has finished
    assert fresh.wait(execution["arn"], timeout=60)["status"] == "SUCCEEDED"
    # Then status shows, for every asset, the RPO measured by that run against the asset's own objective
    assets = {a["asset"]: a for a in api.get(f"/status/{W}").json_body["assets"]}
    assert set(assets) == {"training-data", "model-artifacts", "fraud-model", "features"}
    for asset in assets.values():
        assert asset["source"] == "verification" and asset["measured_seconds"] is not None, asset
        assert asset["met"] is True and asset["last_verification"]["run_id"] == execution["name"]
    assert assets["training-data"]["objective"] == "15m"


def test_a_drill_request_is_accepted_and_the_drill_function_checks_its_preconditions(
    api: Api, fresh: Stack
) -> None:
    from localcloud import lambda_runner

    # Given traffic that is not all on the primary (a drill only starts from a clean state)
    TrafficRouter(route53=fresh.cloud.client("route53")).shift(
        fresh.plan, {"primary": 50, "secondary": 50}, {}
    )
    # When a drill is requested through the API
    drill = api.post(f"/workloads/{W}/drills", {"scenario": "backup-unhealthy", "reason": "game day"})
    # Then it is accepted at once (202) with its id: drills run asynchronously, in the drill function
    assert drill.status_code == 202, drill.body
    drill_id = drill.json_body["drill_id"]
    assert (drill.json_body["mode"], drill.json_body["requested_by"]) == ("local", ALICE)
    # And the drill function (EventBridge) refused it before breaking anything, and the ledger says why
    lambda_runner.drain(timeout=30)
    entries = {
        e.outcome: e for e in ledger(fresh).entries(W, kind="drill") if e.detail.get("drill_id") == drill_id
    }
    assert set(entries) == {"requested", "refused"}, entries
    assert "all on the primary" in entries["refused"].reason and entries["refused"].actor == ALICE
    assert fresh.weights() == {"primary": 50, "secondary": 50}  # nothing was touched


def test_the_ledger_route_filters_by_kind_and_limit(api: Api, fresh: Stack) -> None:
    # Given two operator entries and one failover entry
    book = ledger(fresh)
    book.record(W, "operator", "a", "first", actor=ALICE)
    book.record(W, "failover", "completed", "done")
    book.record(W, "operator", "b", "second", actor=BOB)
    # When the ledger is read with filters
    page = api.get(f"/ledger/{W}?kind=operator&limit=1").json_body
    # Then the newest matching entry comes back
    assert [(e["outcome"], e["actor"]) for e in page["entries"]] == [("b", BOB)]


# -- the CLI --------------------------------------------------------------------------------------------
@pytest.fixture
def cli(stack: Stack, tmp_path: Path) -> Any:
    """Run `lifeboat --cloud local ...` as a subprocess against this module's local cloud."""
    state = tmp_path / ".lifeboat" / "local.json"
    state.parent.mkdir()
    state.write_text(
        json.dumps({"ready": True, "pid": os.getpid(), "env": stack.cloud.env(), "workloads": {}})
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lifeboat_cli", "--cloud", "local", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def test_cli_lists_and_shows_executions_with_exit_codes(fresh: Stack, cli: Any) -> None:
    # Given one succeeded and one refused failover
    good = fresh.start_failover("cli-good")
    fresh.wait(good)
    fresh.reset_traffic()
    fresh.servers["secondary"].set_faults(wrong_answers=True)
    bad = fresh.start_failover("cli-refused")
    fresh.wait(bad)
    fresh.servers["secondary"].clear_faults()
    # When the operator lists executions and looks at each one
    listed = cli("--json", "executions", "--workload", W)
    shown = cli("execution", "cli-good")
    refused = cli("--json", "execution", execution_id(bad))
    # Then the list is JSON, newest first; a succeeded execution exits 0, a refused one 1
    assert listed.returncode == 0, listed.stderr
    assert [e["name"] for e in json.loads(listed.stdout)["executions"]][:2] == ["cli-refused", "cli-good"]
    assert shown.returncode == 0, shown.stderr
    assert "ShiftTraffic" in shown.stdout and "SUCCEEDED" in shown.stdout
    assert refused.returncode == 1, refused.stderr
    assert json.loads(refused.stdout)["error"] == "FailoverRefused"


def test_cli_refuses_what_has_nothing_to_do_shows_a_stale_lock_and_unlocks_it(fresh: Stack, cli: Any) -> None:
    # Given all traffic on the primary
    failbacks = len(executions_of(fresh, "failback"))
    # When the operator asks for a failback
    failback = cli("failback", W)
    # Then it is refused with the reason (exit 1), and nothing started
    assert failback.returncode == 1, failback.stdout + failback.stderr
    assert "nothing to fail back: us-east-1 already serves all traffic" in failback.stderr
    assert len(executions_of(fresh, "failback")) == failbacks
    # Given a completed failover whose lock was left behind under its execution ARN
    holder = lock_left_by_an_ended_execution(fresh, "cli-ended-holder")
    started = len(executions_of(fresh, "failover"))
    # When the operator looks at the status, asks for a failover, unlocks without and with a reason, and asks
    # for a failover again
    status = cli("status", W, "--no-probe")
    blocked = cli("failover", W, "--force")
    no_reason = cli("unlock", W)
    unlocked = cli("unlock", W, "--reason", "holder ended without releasing")
    after = cli("--json", "status", W, "--no-probe")
    failover = cli("failover", W)
    # Then status shows the lock, its holder, and that it is stale
    assert status.returncode == 0, status.stderr
    assert "lock: held by failover cli-ended-holder" in status.stdout
    assert "STALE: its execution is SUCCEEDED" in status.stdout and f"lifeboat unlock {W}" in status.stdout
    # And the failover is refused by that lock (exit 1), saying how to free it
    assert blocked.returncode == 1 and "lifeboat unlock" in blocked.stderr, blocked.stderr
    # And unlock needs a reason (usage error), then removes the lock and records the reason
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    assert unlocked.returncode == 0, unlocked.stderr
    assert "released the lock of failover cli-ended-holder (its execution is SUCCEEDED)" in unlocked.stdout
    assert json.loads(after.stdout)[0]["lock"] is None
    unlock_entry = ledger(fresh).entries(W, kind="operator", limit=2)[1]
    assert (unlock_entry.outcome, unlock_entry.reason, unlock_entry.execution) == (
        "unlocked",
        "holder ended without releasing",
        holder,
    )
    # And with the lock gone, the failover has nothing to do (exit 0), and nothing started all along
    assert failover.returncode == 0, failover.stdout + failover.stderr
    assert "already serving from us-west-2; nothing to do" in failover.stdout
    assert len(executions_of(fresh, "failover")) == started


def test_cli_usage_and_input_errors_exit_2(cli: Any) -> None:
    # When the CLI is given an unknown execution, a malformed id or an out-of-range limit
    unknown = cli("execution", "no-such-execution")
    malformed = cli("execution", "not an id")
    limit = cli("executions", "--limit", "0")
    # Then each exits 2 with the reason on stderr
    assert [unknown.returncode, malformed.returncode, limit.returncode] == [2, 2, 2]
    assert "no Lifeboat execution" in unknown.stderr
    assert "expected an execution name" in malformed.stderr


def test_cli_plan_check_exits_1_while_the_plan_has_errors(fresh: Stack, cli: Any) -> None:
    # When the stored plan is checked against the local cloud as provisioned, then with a bucket unreplicated
    valid = cli("plan", "check", W, "--no-probe", "--no-iam")
    with replication_removed(fresh, "fraud-models-use1"):
        broken = cli("plan", "check", W, "--no-probe", "--no-iam")
    # Then the first exits 0, the second lists the problem and exits 1
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert broken.returncode == 1, broken.stderr
    assert (
        "no enabled replication rule from fraud-models-use1" in broken.stdout and "NOT valid" in broken.stdout
    )


def test_traffic_router_is_untouched_by_reads(api: Api, fresh: Stack) -> None:
    # Given the weights before
    before = TrafficRouter(route53=fresh.cloud.client("route53")).read(fresh.plan).weights
    # When every read route is called
    for path in (
        "/plans",
        f"/plans/{W}",
        "/status?probe=true",
        f"/status/{W}",
        "/executions",
        f"/ledger/{W}",
    ):
        assert api.get(path).status_code == 200, path
    # Then traffic and the ledger are as they were
    assert fresh.weights() == before
    assert ledger(fresh).entries(W) == []


def test_cli_failover_and_failback_wait_show_progress_in_words_and_end_with_a_verdict(
    fresh: Stack, cli: Any
) -> None:
    # Given all traffic on a healthy primary, and a plan whose failback needs no approval (an earlier test
    # of this module's stack may have asked for one)
    reconfigure(fresh, **STACK_SETTINGS, approval_required="false")
    fresh.reset_traffic()
    # When the operator fails over and then fails back, each with --wait, output going to a pipe (no TTY)
    failover = cli("failover", W, "--mode", "ungraceful", "--reason", "cli watch test", "--wait")
    failback = cli("failback", W, "--reason", "cli watch test", "--wait")
    # Then each exits 0 and prints one plain line per change, in words, never a state machine's state name
    assert failover.returncode == 0, failover.stdout + failover.stderr
    assert failback.returncode == 0, failback.stdout + failback.stderr
    states = _state_names()
    for out in (failover.stdout, failback.stdout):
        words = set(re.findall(r"[A-Za-z]+", out))
        assert not words & states, f"internal state names shown: {sorted(words & states)}\n{out}"
    assert "moving all traffic to us-west-2" in failover.stdout
    assert "us-east-1 0%, us-west-2 100%" in failover.stdout
    # And the failover ends with where traffic is and the RTO against the objective
    assert re.search(r"now serving from us-west-2, RTO [\d.]+(ms|s) of 5m\n\Z", failover.stdout), (
        failover.stdout
    )
    # And the failback shows its steps k of n and the traffic at each, then where traffic is
    for k, share in enumerate(fresh.plan.failback.steps, 1):
        assert f"step {k} of {len(fresh.plan.failback.steps)}" in failback.stdout
        assert f"us-east-1 {share}%, us-west-2 {100 - share}%" in failback.stdout
    assert "gates at 100%: pass" in failback.stdout
    assert re.search(r"now serving from us-east-1 again, failback took \S+ in 4 steps\n\Z", failback.stdout)
    # And the changes come one per line, not one per state visited
    assert len(failback.stdout.splitlines()) < 40, failback.stdout


def _state_names() -> set[str]:
    from chalicelib.workflows.failback import build_failback
    from chalicelib.workflows.failover import build_failover
    from tests.integration.stack import EXAMPLE

    plan = load_plan_file(EXAMPLE)
    names_: set[str] = set()
    for build in (build_failover, build_failback):
        names_ |= set(build(plan, lambda fn: fn)["States"])
    return {n for n in names_ if n not in ("Bake", "Paused", "Approved", "Init")}  # plain English words too


def test_cli_an_unknown_workload_is_a_usage_error_everywhere(cli: Any) -> None:
    # When every command that takes a workload is given one no plan declares
    runs = {
        " ".join(args): cli(*args)
        for args in (
            ("status", "no-such-workload"),
            ("ledger", "no-such-workload"),
            ("failover", "no-such-workload", "--no-wait"),
            ("failback", "no-such-workload"),
            ("unlock", "no-such-workload", "--reason", "test"),
            ("executions", "--workload", "no-such-workload"),
            ("drill", "no-such-workload"),
        )
    }
    # Then each exits 2 with one line naming it, and no traceback
    for command, run in runs.items():
        assert run.returncode == 2, f"{command}: {run.returncode}\n{run.stdout}{run.stderr}"
        assert "no DR plan for workload 'no-such-workload'" in run.stderr, f"{command}: {run.stderr}"
        assert "Traceback" not in run.stderr, f"{command}: {run.stderr}"
    # And watching an execution that does not exist is a usage error too
    watch = cli("watch", "no-such-execution")
    assert watch.returncode == 2 and "no Lifeboat execution 'no-such-execution'" in watch.stderr


def test_cli_output_is_tables_and_words_naming_the_cloud_and_the_actor(fresh: Stack, cli: Any) -> None:
    # Given a completed failover the operator asked for
    fresh.wait(fresh.start_failover("cli-words", requested_by="arn:aws:iam::123456789012:user/alice"))
    fresh.reset_traffic()
    # When the operator previews another, reads the status and the ledger
    preview = cli("failover", W, "--dry-run")
    status = cli("status", W, "--no-probe")
    ledger_ = cli("ledger", W)
    # Then the preview's traffic is in regions and shares, not a Python dict
    assert "traffic: us-east-1 100%, us-west-2 0% → us-east-1 0%, us-west-2 100%" in preview.stdout, (
        preview.stdout
    )
    assert "{" not in preview.stdout
    # And its steps are in words, never the state machine's states
    assert "moving all traffic to us-west-2" in preview.stdout and "SmokeTestBackup" not in preview.stdout
    # And status says which cloud it talks to, first
    assert status.stdout.startswith("cloud: local (http://127.0.0.1:"), status.stdout
    # And the ledger table has a `by` column with who did it, and the RTO in the plan's units
    header = [c.strip() for c in ledger_.stdout.splitlines()[0].split("┃")]
    assert header == ["at (UTC)", "kind", "outcome", "by", "reason"], ledger_.stdout
    row = [c.strip() for c in ledger_.stdout.splitlines()[2].split("│")]
    assert row[1:4] == ["failover", "completed", "alice"], ledger_.stdout
    assert re.match(r"failed over; measured RTO [\d.]+(ms|s) \(objective 5m, met\)", row[4]), ledger_.stdout
