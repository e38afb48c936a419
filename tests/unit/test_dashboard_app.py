"""The dashboard's routes, through Flask's test client (no socket): pages and fragments rendered from the
source, the confirmation step before a control, and the guards on every POST (token, Origin, Host)."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from chalicelib.models.durations import format_seconds
from chalicelib.models.failback import ControlOutcome, FailbackView
from chalicelib.models.ledger import LedgerEntry, WorkloadState
from chalicelib.services.status import EndpointHealth, WorkloadStatus
from lifeboat_cli import dashboard
from lifeboat_cli.dashboard.app import create_app
from lifeboat_cli.dashboard.source import ExecutionPage, Overview, Refused, UnknownItem
from lifeboat_cli.dashboard.steps import execution_view
from lifeboat_cli.dashboard.views import workload_view
from tests.unit.dashboard_support import T0, bake, detail, gate, plan, progress, step

TOKEN = "test-token"
OPERATOR = "arn:aws:iam::123456789012:user/alice"
ORIGIN = "http://localhost"  # the test client's host, as a browser on the dashboard's page sends it


class FakeSource:
    """A failback of fraud-scoring waiting for approval; controls are recorded, or refused when asked to."""

    identity = OPERATOR

    def __init__(self) -> None:
        steps = [step("AcquireLock", 0), step("CheckReadiness", 1), step("RequestApproval", 2, None)]
        control = FailbackView(
            workload="fraud-scoring", execution="arn", status="RUNNING", waiting_for="approval"
        )
        self.page = ExecutionPage(
            view=execution_view(
                detail("failback", steps), plan(), now=T0 + timedelta(seconds=5), control=control
            ),
            decisions=[],
        )
        self.controls: list[tuple[str, str, str]] = []
        self.refuse: str | None = None
        self.report: dict[str, Any] | None = None
        self.overviews = 0
        self.failure: Exception | None = None

    def overview(self) -> Overview:
        self.overviews += 1
        if self.failure is not None:
            raise self.failure
        s = WorkloadStatus(
            workload="fraud-scoring",
            tier="tier-1",
            objectives={"rpo": "15m", "rto": "5m"},
            active_region="us-west-2",
            endpoints=[
                EndpointHealth(role="primary", region="us-east-1", endpoint="http://p", weight=0),
                EndpointHealth(role="secondary", region="us-west-2", endpoint="http://s", weight=100),
            ],
            state=WorkloadState(workload="fraud-scoring", active_region="us-west-2"),
            at=T0,
        )
        w = workload_view(s, plan(), [], None, [self.page.view], now=T0)
        return Overview(workloads=[w], recent=[], drills=[], problems=["drills: AccessDenied: not allowed"])

    def execution(self, ref: str) -> ExecutionPage:
        if ref != self.page.view.id:
            raise UnknownItem(f"no Lifeboat execution {ref!r}")
        return self.page

    def control(self, ref: str, action: str, reason: str) -> ControlOutcome:
        self.execution(ref)
        if self.refuse:
            raise Refused(self.refuse)
        self.controls.append((ref, action, reason))
        return ControlOutcome(
            workload="fraud-scoring",
            execution="arn",
            action=action,
            result="approved: traffic starts moving back",
        )

    def ledger(self, workload: str, limit: int) -> list[LedgerEntry]:
        return [
            LedgerEntry(
                workload=workload,
                at=T0,
                kind="operator",
                outcome="failback-approved",
                reason="go",
                actor=OPERATOR,
                entry_id="1",
            )
        ]

    def verification(self, workload: str) -> dict[str, Any] | None:
        return self.report if workload == "fraud-scoring" else None

    def drill_report(self, drill_id: str) -> str:
        if drill_id != "d-1":
            raise UnknownItem(f"no drill {drill_id!r}")
        return "<html><body><h1>Drill d-1 PASSED</h1><svg></svg></body></html>"


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
def client(source: FakeSource) -> FlaskClient:
    return create_app(source, token=TOKEN, min_read_seconds=0).test_client()


def test_the_overview_shows_each_workload_the_running_execution_and_what_could_not_be_read(
    client: FlaskClient, source: FakeSource
) -> None:
    # When the overview is opened
    page = client.get("/").get_data(as_text=True)
    # Then it shows who serves, the running failback waiting for approval (linked), the reading problem and
    # whose identity acts; the page refreshes itself from the fragment, which is the same content
    assert "us-west-2 (secondary) serves all traffic" in page
    assert f'href="/executions/{source.page.view.id}"' in page and "waiting for approval" in page
    assert "drills: AccessDenied: not allowed" in page
    assert OPERATOR in page
    assert 'data-refresh="/fragment/overview"' in page
    fragment = client.get("/fragment/overview").get_data(as_text=True)
    assert "<html" not in fragment and "us-west-2 (secondary) serves all traffic" in fragment


def test_the_execution_page_shows_the_step_view_and_offers_the_controls_that_apply(
    client: FlaskClient, source: FakeSource
) -> None:
    # When the failback's page is opened
    ref = source.page.view.id
    page = client.get(f"/executions/{ref}").get_data(as_text=True)
    # Then it says where it stands and offers approve / reject / abort, each through a confirmation page
    assert "waiting for approval" in page and "Waiting for approval" in page
    assert "step 0 of 4 (no traffic moved yet)" in page
    offered = re.findall(r'data-action="([a-z-]+)" href="([^"]+)"', page)
    assert offered == [(a, f"/executions/{ref}/{a}") for a in ("approve", "reject", "abort")]
    # And the fragment it refreshes from is there too
    assert client.get(f"/fragment/executions/{ref}").status_code == 200


def test_a_baking_failback_s_page_shows_the_watch_view_s_step_traffic_bake_and_gates(
    client: FlaskClient, source: FakeSource
) -> None:
    # Given a failback baking at 25% on the primary after its first gate passed
    steps = [
        step("ShiftStep", 2, result=progress(0, 10)),
        step("EvaluateGates", 5, result=gate("pass", "every gate alarm OK, smoke tests pass")),
        step("ShiftStep", 6, result=progress(1, 25)),
        step("CheckBake", 7, result=bake(1, T0 + timedelta(seconds=60))),
        step("Bake", 8, None, type_="Wait"),
    ]
    view = execution_view(detail("failback", steps), plan(), now=T0 + timedelta(seconds=30))
    source.page = ExecutionPage(view=view, decisions=[])
    # When its page is opened
    page = client.get(f"/executions/{view.id}").get_data(as_text=True)
    # Then it shows the watch view's words: the step with its share, traffic per region, bake left, gate
    assert "step 2 of 4 (25% on us-east-1)" in page
    assert re.search(r'data-test="weights">us-east-1 <meter[^>]*></meter> 25%', page)
    bake_words = f"30s left (bakes {format_seconds(plan().failback.bake.total_seconds())} a step)"
    assert f'data-test="bake">{bake_words}</dd>' in page
    assert "<td>10%</td><td>gate</td>" in page and "every gate alarm OK, smoke tests pass" in page


def test_a_control_takes_a_confirmation_page_then_a_post_with_the_token(
    client: FlaskClient, source: FakeSource
) -> None:
    ref = source.page.view.id
    # When the operator clicks approve
    confirm = client.get(f"/executions/{ref}/approve").get_data(as_text=True)
    # Then nothing is done yet: a confirmation page explains it and carries the process's token
    assert source.controls == []
    assert "Approve failback of fraud-scoring?" in confirm
    assert f'name="token" value="{TOKEN}"' in confirm and f'action="/executions/{ref}/approve"' in confirm
    # When they confirm, with a reason
    done = client.post(
        f"/executions/{ref}/approve",
        data={"token": TOKEN, "reason": " looks good "},
        headers={"Origin": ORIGIN},
    )
    # Then the control ran once with the reason, and the execution page says what it did
    assert source.controls == [(ref, "approve", "looks good")]
    assert done.status_code == 303
    shown = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "approve: approved: traffic starts moving back" in shown


def test_a_refused_control_is_shown_with_the_reason(client: FlaskClient, source: FakeSource) -> None:
    # Given the service refuses (the failback stopped waiting meanwhile)
    source.refuse = "failback-x is not waiting for approval"
    # When the operator confirms approve
    done = client.post(f"/executions/{source.page.view.id}/approve", data={"token": TOKEN})
    # Then the page says it was refused and why
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "approve refused: failback-x is not waiting for approval" in page


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        ({}, {"Origin": ORIGIN}),  # no token
        ({"token": "guess"}, {"Origin": ORIGIN}),  # wrong token
        ({"token": TOKEN}, {"Origin": "http://evil.example"}),  # another site's page
        ({"token": TOKEN}, {"Referer": "http://evil.example/page"}),  # another page, no Origin sent
        ({"token": TOKEN}, {"Host": "evil.example"}),  # a name rebound to 127.0.0.1
    ],
)
def test_a_post_without_the_token_or_from_another_origin_is_refused(
    client: FlaskClient, source: FakeSource, data: dict[str, str], headers: dict[str, str]
) -> None:
    # When a POST lacks the token or comes from elsewhere
    response = client.post(f"/executions/{source.page.view.id}/abort", data=data, headers=headers)
    # Then it is refused and nothing is done
    assert response.status_code == 403
    assert source.controls == []


def test_pages_answer_only_to_loopback_names_and_forbid_inline_scripts_and_framing(
    client: FlaskClient,
) -> None:
    # When a page is asked for under another host name
    assert client.get("/", headers={"Host": "attacker.example:8080"}).status_code == 403
    # Then under 127.0.0.1 and localhost it is served, with a policy allowing only its own files
    for host in ("127.0.0.1:8123", "localhost:8123"):
        response = client.get("/", headers={"Host": host})
        assert response.status_code == 200
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["Cache-Control"] == "no-store"
    # And every script the page loads is the package's own file
    page = client.get("/").get_data(as_text=True)
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/dashboard.js" defer>']
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/static/dashboard.css").status_code == 200


def test_unknown_items_are_404_and_a_drill_report_is_served_as_stored(client: FlaskClient) -> None:
    # When an unknown execution, control or drill is asked for
    assert client.get("/executions/nope").status_code == 404
    assert client.post("/executions/nope/approve", data={"token": TOKEN}).status_code == 404
    assert client.get("/drills/d-404").status_code == 404
    # Then a known drill's report is the stored page, under a policy that runs no script
    report = client.get("/drills/d-1")
    assert report.status_code == 200 and "Drill d-1 PASSED" in report.get_data(as_text=True)
    assert report.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_the_ledger_page_shows_who_did_what(client: FlaskClient) -> None:
    page = client.get("/workloads/fraud-scoring/ledger").get_data(as_text=True)
    assert "failback-approved" in page and OPERATOR in page


def test_the_cli_offers_dashboard_with_a_port() -> None:
    # Given the CLI's parser
    from lifeboat_cli.main import parser

    # When `dashboard` is parsed with and without a port
    # Then port 0 (a free one) is the default, a chosen port is taken, a port out of range is a usage error
    assert parser().parse_args(["dashboard"]).port == 0
    args = parser().parse_args(["dashboard", "--port", "8765", "--open"])
    assert args.port == 8765 and args.open and args.func is dashboard.cmd_dashboard
    with pytest.raises(SystemExit):
        parser().parse_args(["dashboard", "--port", "70000"])
    with pytest.raises(argparse.ArgumentTypeError):
        dashboard._port("http")


def test_the_verification_page_shows_each_assets_verdict_and_measured_rpo(
    client: FlaskClient, source: FakeSource
) -> None:
    # Given no verification yet, the page says how to run one
    assert "lifeboat verify fraud-scoring" in client.get("/workloads/fraud-scoring/verification").get_data(
        as_text=True
    )
    # Given a report (as the evidence bucket's latest.json holds it) with one asset behind its objective
    asset = {"kind": "s3", "objects_checked": 12, "missing": 0, "different": 0, "stale": 0, "findings": []}
    source.report = {
        "workload": "fraud-scoring",
        "run_id": "r-1",
        "trigger": "operator",
        "started_at": "2026-03-01T12:00:00Z",
        "finished_at": "2026-03-01T12:00:04Z",
        "verdict": "breached",
        "summary": "fraud-model breached",
        "assets": [
            {
                **asset,
                "asset": "training-data",
                "verdict": "green",
                "measured_rpo_seconds": 0.0,
                "objective_seconds": 900.0,
            },
            {
                **asset,
                "asset": "fraud-model",
                "verdict": "breached",
                "measured_rpo_seconds": 39.0,
                "objective_seconds": 60.0,
                "missing": 1,
                "findings": [
                    {"severity": "breach", "code": "replica-missing", "message": "1 version missing"}
                ],
            },
        ],
        "problems": [],
    }
    # When the page is opened
    page = client.get("/workloads/fraud-scoring/verification").get_data(as_text=True)
    # Then it shows the run's verdict, each asset's verdict, measured RPO and objective, and the findings
    assert "BREACHED: fraud-model breached" in page
    rows = re.findall(r"<td>(training-data|fraud-model)</td><td>s3</td><td class=\"(\w+)\">(\w+)</td>", page)
    assert rows == [("training-data", "ok", "green"), ("fraud-model", "bad", "breached")]
    assert "39.0s" in page and "60s" in page
    assert "breach replica-missing: 1 version missing" in page


def test_pages_polling_together_read_the_overview_once_a_second(source: FakeSource) -> None:
    # Given a dashboard whose clock the test moves, and three pages polling it
    now = [100.0]
    client = create_app(source, token=TOKEN, min_read_seconds=1.0, clock=lambda: now[0]).test_client()
    # When they poll within the same second
    for _ in range(3):
        assert client.get("/fragment/overview").status_code == 200
    # Then the services were read once; a second later, once more
    assert source.overviews == 1
    now[0] += 1.0
    client.get("/")
    assert source.overviews == 2


def test_a_failed_read_is_said_on_the_page(client: FlaskClient, source: FakeSource) -> None:
    # Given AWS refuses a read (throttled, a region down, expired credentials)
    source.failure = RuntimeError("ThrottlingException: Rate exceeded")
    # When the overview (or its fragment, which the page keeps polling) is asked for
    page = client.get("/")
    fragment = client.get("/fragment/overview")
    # Then the answer says what failed, as a gateway error the page's script treats as "stale"
    assert page.status_code == fragment.status_code == 502
    assert "RuntimeError: ThrottlingException: Rate exceeded" in page.get_data(as_text=True)
    # And HTTP errors keep their own status
    assert client.get("/executions/nope").status_code == 404
