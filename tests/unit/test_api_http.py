"""The console API's HTTP boundary, in-process (chalice.test, no sockets): authorisation, request parsing,
error bodies, and a property-based fuzz proving bad input never gets a 500.

Use cases are replaced by stubs here (the integration tests run them for real against the local cloud):
what is under test is that every request is parsed, refused or delegated, and answered in one JSON shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from chalice import IAMAuthorizer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app as lifeboat
from chalicelib.adapters.plan_store import UnknownWorkload
from chalicelib.blueprints import api as api_module
from chalicelib.clock import utc_now
from chalicelib.models.api import MAX_BODY_BYTES
from chalicelib.models.drill import DrillBody, DrillList, DrillStarted
from chalicelib.models.failback import ControlOutcome
from chalicelib.models.planfile import load_plan_file
from chalicelib.services import assessment as assessment_module
from chalicelib.services import console
from chalicelib.services import deps as deps_module
from chalicelib.services import executions as runs
from chalicelib.services import restore as restore_module
from chalicelib.services import rollback as rollback_module
from chalicelib.services import validate as validate_module
from chalicelib.services.operations import FailoverPlanPreview
from chalicelib.services.validate import ValidationReport
from chalicelib.services.workload_lock import Unlocked
from lifeboat_cli import openapi
from tests.api_support import ALICE, Api, api_client

PLAN = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
WORKLOAD = "fraud-scoring"
EXEC_NAME = "failback-fraud-scoring-op-20240501T120000-abcdef"
DRILL_ID = "drill-20240501T120000Z-ab12"
NOW = "2024-05-01T12:00:00Z"

# Every authorised route, with a path that reaches its handler.
ROUTES = [
    ("GET", "/plans"),
    ("GET", f"/plans/{WORKLOAD}"),
    ("POST", f"/plans/{WORKLOAD}/validate"),
    ("GET", "/status"),
    ("GET", f"/status/{WORKLOAD}"),
    ("POST", f"/workloads/{WORKLOAD}/failover"),
    ("POST", f"/workloads/{WORKLOAD}/failback"),
    ("POST", f"/workloads/{WORKLOAD}/unlock"),
    ("POST", f"/workloads/{WORKLOAD}/verify"),
    ("POST", f"/workloads/{WORKLOAD}/drills"),
    ("POST", f"/workloads/{WORKLOAD}/assess"),
    ("POST", f"/workloads/{WORKLOAD}/restores"),
    ("POST", f"/workloads/{WORKLOAD}/rollback"),
    *[
        ("POST", f"/executions/{EXEC_NAME}/{action}")
        for action in ("approve", "reject", "pause", "resume", "abort", "fast-track")
    ],
    ("GET", "/executions"),
    ("GET", f"/executions/{EXEC_NAME}"),
    ("GET", f"/ledger/{WORKLOAD}"),
    ("GET", "/drills"),
    ("GET", f"/drills/{DRILL_ID}"),
]
POST_ROUTES = [path for method, path in ROUTES if method == "POST"]
NOT_YET = ("/verify",)  # 501: drills come later; verify's state machine is not "deployed" here


@cache
def plan() -> Any:
    return load_plan_file(PLAN)


class FakePlans:
    def all(self) -> list[Any]:
        return [plan()]

    def get(self, workload: str) -> Any:
        if workload != WORKLOAD:
            raise UnknownWorkload(workload)
        return plan()


def _started(*_: Any, **__: Any) -> console.OperationStarted:
    arn = f"arn:aws:states:us-east-1:123456789012:execution:lifeboat-dev-{WORKLOAD}-failover:x"
    return console.OperationStarted(
        workload=WORKLOAD,
        operation="failover",
        execution={"id": "x", "arn": arn, "name": "x"},
        requested_by=ALICE,
    )


def _failover(workload: str, body: Any, actor: str, d: Any) -> Any:
    FakePlans().get(workload)
    if body.dry_run:
        return FailoverPlanPreview(
            workload=workload,
            mode=body.mode or "graceful",
            steps=["AcquireLock"],
            traffic_before=None,
            traffic_after={"primary": 0, "secondary": 100},
            backup_smoke_passed=True,
            backup_smoke_reason="ok",
            would_refuse=False,
        )
    return _started()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Stub every use case (recording its arguments) and give the handlers a fake plan store."""
    seen: list[tuple[str, tuple[Any, ...]]] = []

    def stub(name: str, result: Any) -> Any:
        def fn(*args: Any, **kwargs: Any) -> Any:
            seen.append((name, args + tuple(kwargs.values())))
            return result(*args, **kwargs) if callable(result) else result

        return fn

    report = ValidationReport(
        workload=WORKLOAD,
        valid=True,
        counts={},
        findings=[],
        permissions=[],
        iam_simulated=False,
        checked_at=NOW,
    )
    outcome = ControlOutcome(workload=WORKLOAD, execution="x", action="approve", result="approved")
    monkeypatch.setattr(console, "list_plans", stub("list_plans", console.PlanList(plans=[])))
    monkeypatch.setattr(console, "show_plan", stub("show_plan", console.show_plan))  # pure: runs for real
    monkeypatch.setattr(validate_module, "validate_plan", stub("validate_plan", report))
    monkeypatch.setattr(assessment_module, "assess_workload", stub("assess_workload", _assessed))
    monkeypatch.setattr(console, "status_all", stub("status_all", console.StatusList(workloads=[])))
    monkeypatch.setattr(console, "status_of", stub("status_of", _not_found_unless_known))
    monkeypatch.setattr(console, "request_failover", stub("request_failover", _failover))
    monkeypatch.setattr(console, "request_failback", stub("request_failback", _started))
    monkeypatch.setattr(console, "unlock", stub("unlock", _unlocked))
    monkeypatch.setattr(console, "control_execution", stub("control_execution", outcome))
    monkeypatch.setattr(console, "request_drill", stub("request_drill", _drill_started))
    monkeypatch.setattr(console, "list_drills", stub("list_drills", DrillList(drills=[])))
    monkeypatch.setattr(restore_module, "request_restore", stub("request_restore", _restore_started))
    monkeypatch.setattr(rollback_module, "request_rollback", stub("request_rollback", _restore_started))
    monkeypatch.setattr(console, "show_drill", stub("show_drill", _unknown_workload))
    monkeypatch.setattr(runs, "list_executions", stub("list_executions", runs.ExecutionList(executions=[])))
    monkeypatch.setattr(runs, "get_execution", stub("get_execution", _unknown_execution))
    monkeypatch.setattr(
        console, "ledger_page", stub("ledger_page", console.LedgerPage(workload=WORKLOAD, entries=[]))
    )
    idle = SimpleNamespace(
        current=lambda workload: None, running=lambda workload, kind: [], start=_not_deployed
    )
    monkeypatch.setattr(
        deps_module, "_deps", SimpleNamespace(plans=FakePlans(), locks=idle, executions=idle, clock=utc_now)
    )
    yield seen


def _drill_started(workload: str, body: DrillBody, actor: str, d: Any) -> DrillStarted:
    FakePlans().get(workload)
    return DrillStarted(
        drill_id=DRILL_ID,
        workload=workload,
        subject=workload,
        mode="local",
        scenario=body.scenario or "region-outage",
        requested_by=actor,
    )


def _assessed(workload: str, d: Any, **_: Any) -> Any:
    from chalicelib.domain.assessment import assess
    from chalicelib.models.assessment import AssessmentFacts

    found = FakePlans().get(workload)
    return assess(found, AssessmentFacts(workload=workload, read_at=NOW), now=NOW)


def _restore_started(request: Any, d: Any) -> console.OperationStarted:
    FakePlans().get(request.workload)
    return _started()


def _unlocked(workload: str, reason: str, actor: str, d: Any) -> Unlocked:
    FakePlans().get(workload)
    return Unlocked(workload=workload, released=None, result="not locked", requested_by=actor)


def _unknown_workload(ref: str, *_: Any) -> Any:
    raise UnknownWorkload(f"drill {ref!r}")


def _not_deployed(workload: str, kind: str, *_: Any) -> Any:
    raise LookupError(f"state machine lifeboat-dev-{workload}-{kind} is not deployed")


def _not_found_unless_known(workload: str, *_: Any, **__: Any) -> Any:
    FakePlans().get(workload)
    return console.StatusList(workloads=[])  # any model: what is under test is the HTTP plumbing


def _unknown_execution(ref: Any, d: Any) -> Any:
    raise runs.UnknownExecution(ref.arn or ref.name)


@pytest.fixture
def api(calls: list[Any]) -> Iterator[Api]:
    with api_client() as client:
        yield client


def assert_error(
    response: Any, status: int, *, field: str | None = None, location: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.body
    body = response.json_body
    assert isinstance(body, dict) and body["code"] and body["message"], response.body
    if field is not None:
        problems = [(p["field"], p["location"]) for p in body["problems"]]
        assert (field, location) in problems, body
    return body


# -- authorisation --------------------------------------------------------------------------------------
def test_every_route_but_health_declares_the_iam_authorizer() -> None:
    # Given the Chalice app's route table (what `chalice deploy` turns into API Gateway methods)
    routes = {(m, p): entry for p, methods in lifeboat.app.routes.items() for m, entry in methods.items()}
    # Then GET /health is the one route without an authorizer, and every other one uses IAM (SigV4)
    assert routes[("GET", "/health")].authorizer is None
    protected = {k: e for k, e in routes.items() if k != ("GET", "/health")}
    assert {
        (m, p.replace("{workload}", WORKLOAD).replace("{id}", EXEC_NAME).replace("{drill_id}", DRILL_ID))
        for m, p in protected
    } == set(ROUTES)
    for key, entry in protected.items():
        assert isinstance(entry.authorizer, IAMAuthorizer), key
    # And each one is documented (body, query and answers) for the OpenAPI document
    assert set(api_module.declared_routes()) == {(p, m) for m, p in protected}


def test_health_answers_without_auth_and_reveals_nothing(api: Api) -> None:
    # When an anonymous caller asks for /health
    response = api.as_(None).get("/health")
    # Then it is 200 with a bare status and no workload, region or version information
    assert response.status_code == 200
    assert response.json_body == {"status": "ok"}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_request_without_a_verified_iam_identity_is_refused(
    api: Api, calls: list[Any], method: str, path: str
) -> None:
    # Given a request API Gateway did not authenticate (chalice.test admits it, with no identity)
    # When it reaches a protected route
    response = api.as_(None).request(method, path, {"dry_run": True} if method == "POST" else None)
    # Then it is refused with 403 before any use case runs
    body = assert_error(response, 403)
    assert body["code"] == "Forbidden"
    assert calls == []


def test_the_callers_identity_reaches_the_use_case(api: Api, calls: list[Any]) -> None:
    # When alice fails a workload over
    response = api.post(f"/workloads/{WORKLOAD}/failover", {"mode": "ungraceful", "reason": "region down"})
    # Then the use case is called with her ARN (which the service records in the ledger)
    assert response.status_code == 202, response.body
    name, args = calls[-1]
    assert name == "request_failover" and args[2] == ALICE


def test_a_restore_request_reaches_the_use_case_with_its_time_and_the_caller(
    api: Api, calls: list[Any]
) -> None:
    # When alice asks for an in-place restore of an asset to a point in time
    body = {"asset": "training-data", "to": "2026-03-01T12:00:10Z", "in_place": True, "confirm": WORKLOAD}
    response = api.post(f"/workloads/{WORKLOAD}/restores", body)
    # Then the use case gets the request with the time parsed (UTC) and her identity as the requester
    assert response.status_code == 202, response.body
    name, (request, _) = calls[-1]
    assert name == "request_restore" and request.requested_by == ALICE
    assert (request.workload, request.in_place, request.to.isoformat()) == (
        WORKLOAD,
        True,
        "2026-03-01T12:00:10+00:00",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"asset": "training-data", "to": "2026-03-01T12:00:10"}, "to"),  # no zone: ambiguous
        ({"asset": "training-data", "to": "yesterday-ish-please"}, "to"),
        ({"asset": "training-data", "to": "2026-03-01T12:00:10Z", "target": "bucket/prefix"}, "target"),
    ],
)
def test_a_restore_body_that_cannot_be_read_exactly_is_refused(
    api: Api, calls: list[Any], body: dict[str, Any], field: str
) -> None:
    response = api.post(f"/workloads/{WORKLOAD}/restores", body)
    assert response.status_code == 400 and field in response.body.decode(), response.body
    assert calls == []


def test_a_rollback_request_reaches_the_use_case_with_its_region_as_a_role(
    api: Api, calls: list[Any]
) -> None:
    # When alice dry-runs a rollback of the secondary's endpoint, naming its region, to a named version
    body = {"region": "us-west-2", "to_version": "1.0.0", "dry_run": True}
    response = api.post(f"/workloads/{WORKLOAD}/rollback", body)
    # Then the use case gets the secondary's endpoint, the version and her identity
    assert response.status_code == 202, response.body
    name, (request, _) = calls[-1]
    assert name == "request_rollback" and request.requested_by == ALICE
    assert (request.role, request.to_version, request.dry_run) == ("secondary", "1.0.0", True)


def test_a_rollback_in_a_region_the_plan_does_not_name_is_refused(api: Api, calls: list[Any]) -> None:
    response = api.post(f"/workloads/{WORKLOAD}/rollback", {"region": "eu-west-1"})
    assert response.status_code == 409 and "eu-west-1 is not a region" in response.body.decode()
    assert calls == []


# -- request parsing ------------------------------------------------------------------------------------
FAILOVER = f"/workloads/{WORKLOAD}/failover"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"mode": "ungracefull", "reason": "x"}, "mode", "expected one of: graceful, ungraceful"),
        ({"mode": "graceful", "dry_run": "yes"}, "dry_run", "true or false"),
        ({"mode": "graceful", "dry_run": 1}, "dry_run", "true or false"),
        ({"mode": "graceful"}, "reason", "required for a real failover"),
        ({"mode": "graceful", "reason": "   "}, "reason", "must not be empty"),
        ({"mode": "graceful", "reason": 42}, "reason", "a string"),
        ({"mode": "graceful", "reason": "x" * 1001}, "reason", "at most 1000"),
        ({"dry_run": True, "forse": True}, "forse", "unknown field"),
        ({"reason": "x", "force": "yes"}, "force", "true or false"),
    ],
)
def test_bad_failover_bodies_name_the_field_and_the_problem(
    api: Api, calls: list[Any], body: dict[str, Any], field: str, words: str
) -> None:
    # When a failover body is wrong in one field
    response = api.post(FAILOVER, body)
    # Then it is a 400 naming that field and saying what is wrong, and nothing was started
    error = assert_error(response, 400, field=field, location="body")
    assert any(words in p["problem"] for p in error["problems"]), error
    assert calls == []


UNLOCK = f"/workloads/{WORKLOAD}/unlock"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (None, "a JSON object body is required"),
        ({}, "required field is missing"),
        ({"reason": "  "}, "must not be empty"),
        ({"reason": "stale", "holder": "x"}, "unknown field"),
    ],
)
def test_an_unlock_needs_a_reason(api: Api, calls: list[Any], body: Any, words: str) -> None:
    # When an unlock comes without a usable reason
    response = api.post(UNLOCK, body)
    # Then it is a 400 saying what is missing, and nothing was unlocked
    error = assert_error(response, 400, location="body")
    assert words in error["message"] or any(words in p["problem"] for p in error["problems"]), error
    assert calls == []


def test_an_unlock_reaches_the_use_case_with_the_reason_and_the_caller(api: Api, calls: list[Any]) -> None:
    # When alice unlocks a workload, giving a reason
    response = api.post(UNLOCK, {"reason": "holder was stopped by hand"})
    # Then the use case gets the workload, her reason and her ARN, and its answer comes back as 200
    assert response.status_code == 200, response.body
    assert calls == [("unlock", (WORKLOAD, "holder was stopped by hand", ALICE, calls[0][1][3]))]
    assert response.json_body["requested_by"] == ALICE


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "field"),
    [
        (b"{not json", "application/json", 400, "body"),
        (b"[1, 2]", "application/json", 400, "body"),
        (b'"dry_run"', "application/json", 400, "body"),
        (b"", "application/json", 400, "body"),
        (b"\xff\xfe\x00", "application/json", 400, "body"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, "body"),
        (b'{"dry_run": true}', "text/plain", 415, None),
        (json.dumps({"reason": "x" * MAX_BODY_BYTES}).encode(), "application/json", 413, "body"),
    ],
)
def test_malformed_bodies_are_4xx_never_500(
    api: Api, calls: list[Any], raw: bytes, content_type: str, status: int, field: str | None
) -> None:
    # When the body is not a JSON object, is too big, or has the wrong content type
    response = api.post(FAILOVER, raw=raw, headers={"content-type": content_type})
    # Then the answer is the right 4xx in the API's error shape, and nothing was called
    assert_error(response, status, field=field, location="body" if field else None)
    assert calls == []


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"dry_run": true, "mode": "graceful", "dry_run": false}', "dry_run"),
        (b'{"reason": "a", "mode": "graceful", "reason": "b"}', "reason"),
        (b'{"mode": "graceful", "dry_run": true, "extra": {"x": 1, "x": 2}}', "x"),
    ],
)
def test_a_body_naming_a_key_twice_is_refused_naming_the_key(
    api: Api, calls: list[Any], raw: bytes, key: str
) -> None:
    # Given a body that says dry_run twice (last-one-wins would start a real failover)
    # When it is posted
    response = api.post(FAILOVER, raw=raw, headers={"content-type": "application/json"})
    # Then it is a 400 naming the repeated key, and nothing was started
    error = assert_error(response, 400, field=key, location="body")
    assert key in error["message"] and "more than once" in error["message"]
    assert calls == []


def test_nan_and_infinity_are_not_json(api: Api, calls: list[Any]) -> None:
    # When a body carries a value JSON does not have
    response = api.post(
        FAILOVER, raw=b'{"dry_run": true, "n": NaN}', headers={"content-type": "application/json"}
    )
    # Then it is refused as invalid JSON
    error = assert_error(response, 400, field="body", location="body")
    assert "NaN" in error["message"]
    assert calls == []


def test_optional_bodies_may_be_empty(api: Api, calls: list[Any]) -> None:
    # When approve and validate are called without a body
    approved = api.post(f"/executions/{EXEC_NAME}/approve")
    validated = api.post(f"/plans/{WORKLOAD}/validate")
    # Then both reach their use case with the defaults
    assert approved.status_code == 200 and validated.status_code == 200
    assert [name for name, _ in calls] == ["control_execution", "validate_plan"]
    assert calls[0][1][2] is None  # no reason given


@pytest.mark.parametrize(
    ("path", "field", "location"),
    [
        ("/plans/Fraud_Scoring", "workload", "path"),
        ("/status/x", "workload", "path"),
        ("/ledger/-bad-", "workload", "path"),
        ("/executions/has%20space", "id", "path"),
        ("/executions/" + "a" * 401, "id", "path"),
        ("/executions/arn:aws:states:us-east-1:1:stateMachine:x", "id", "path"),
        ("/status?probe=maybe", "probe", "query"),
        ("/executions?limit=0", "limit", "query"),
        ("/executions?limit=ten", "limit", "query"),
        ("/executions?status=DONE", "status", "query"),
        ("/executions?workload=NO", "workload", "query"),
        ("/executions?limit=1&limit=2", "limit", "query"),
        ("/ledger/fraud-scoring?kind=rumour", "kind", "query"),
        ("/ledger/fraud-scoring?page=2", "page", "query"),
    ],
)
def test_bad_path_and_query_parameters_are_400_naming_the_parameter(
    api: Api, calls: list[Any], path: str, field: str, location: str
) -> None:
    # When a path or query parameter is malformed
    response = api.get(path)
    # Then it is a 400 naming the parameter and where it was
    assert_error(response, 400, field=field, location=location)
    assert calls == []


def test_unknown_workload_and_execution_are_404(api: Api) -> None:
    # When the workload or execution does not exist
    plan_404 = api.get("/plans/no-such-workload")
    status_404 = api.get("/status/no-such-workload")
    failover_404 = api.post("/workloads/no-such-workload/failover", {"dry_run": True})
    exec_404 = api.get(f"/executions/{EXEC_NAME}")
    # Then each is a 404 naming the path parameter
    assert_error(plan_404, 404, field="workload", location="path")
    assert_error(status_404, 404, field="workload", location="path")
    assert_error(failover_404, 404, field="workload", location="path")
    assert_error(exec_404, 404, field="id", location="path")


def test_what_is_not_available_answers_501_with_a_message(api: Api) -> None:
    # When a verification whose state machine is not deployed is requested
    verify = api.post(f"/workloads/{WORKLOAD}/verify", {"reason": "monthly"})
    # Then the answer is 501 with a JSON explanation, not a 500 or a silent success
    assert "verify is not deployed" in assert_error(verify, 501)["message"]


def test_a_drill_request_is_parsed_and_started_with_the_callers_identity(
    api: Api, calls: list[tuple[str, tuple[Any, ...]]]
) -> None:
    # When a drill is requested with a scenario, with a typo, and a live one without the body being JSON
    started = api.post(
        f"/workloads/{WORKLOAD}/drills", {"scenario": "backup-unhealthy", "reason": "game day"}
    )
    typo = api.post(f"/workloads/{WORKLOAD}/drills", {"scenario": "region-outtage"})
    unknown = api.post("/workloads/no-such-workload/drills", {})
    # Then the first is accepted (202) with its id, the drill service got the parsed body and who asked
    assert started.status_code == 202, started.body
    assert started.json_body["drill_id"] == DRILL_ID and started.json_body["scenario"] == "backup-unhealthy"
    name, args = [c for c in calls if c[0] == "request_drill"][0]
    assert args[1] == DrillBody(scenario="backup-unhealthy", reason="game day") and args[2] == ALICE
    # And a scenario that does not exist is a 400 naming the field; an unknown workload a 404
    assert_error(typo, 400, field="scenario", location="body")
    assert_error(unknown, 404, field="workload", location="path")
    # And the drill listing and an unknown drill answer like every other route
    assert api.get("/drills?workload=fraud-scoring&limit=5").json_body == {"drills": []}
    assert_error(api.get(f"/drills/{DRILL_ID}"), 404)


def test_chalices_own_errors_get_the_same_shape(api: Api) -> None:
    # When the method is wrong for a known path (Chalice answers before any handler runs)
    response = api.get(FAILOVER)
    # Then it is a 405 in the API's error shape
    assert assert_error(response, 405)["code"] == "MethodNotAllowedError"


def test_answers_are_json_and_not_cached(api: Api) -> None:
    # When any answer comes back, success or error
    ok = api.get("/plans")
    bad = api.get("/plans/BAD")
    # Then it is JSON that intermediaries must not cache (it describes live DR state)
    for response in (ok, bad):
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Cache-Control"] == "no-store"


# -- fuzzing --------------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
known_fields = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.sampled_from(["graceful", "ungraceful"]) | json_values,
        "dry_run": st.booleans() | json_values,
        "reason": st.text(max_size=40) | json_values,
        "probe_endpoints": st.booleans() | json_values,
        "simulate_iam": st.booleans() | json_values,
        "force": st.booleans() | json_values,
    },
)
valid_ish = st.fixed_dictionaries(
    {"reason": st.text(min_size=1, max_size=40)},
    optional={"mode": st.sampled_from(["graceful", "ungraceful"]), "dry_run": st.booleans()},
)
bodies = st.one_of(
    valid_ish.map(lambda d: json.dumps(d).encode()),
    known_fields.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)
content_types = st.one_of(
    st.just("application/json"),
    st.sampled_from(["application/json; charset=utf-8", "text/plain", "", "application/xml", "*/*"]),
)
segments = st.one_of(
    st.sampled_from([WORKLOAD, "no-such-workload", EXEC_NAME, "x"]),
    st.text(min_size=1, max_size=30).map(lambda s: quote(s, safe="")),
)


def _acceptable(status: int, path: str) -> bool:
    return status < 500 or (status == 501 and path.endswith(NOT_YET))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(POST_ROUTES), body=bodies, content_type=content_types)
def test_fuzzed_request_bodies_never_get_a_500(api: Api, path: str, body: bytes, content_type: str) -> None:
    # Given any body with any content type, sent to any mutating route
    response = api.post(path, raw=body, headers={"content-type": content_type})
    # Then the API answers 2xx or 4xx (501 only where documented), always as JSON with a code on errors
    assert _acceptable(response.status_code, path), (path, body, response.body)
    if response.status_code >= 400:
        assert response.json_body["code"], response.body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    template=st.sampled_from([p for _, p in ROUTES]),
    segment=segments,
    query=st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3),
)
def test_fuzzed_paths_and_query_strings_never_get_a_500(
    api: Api, template: str, segment: str, query: dict[str, str]
) -> None:
    # Given any path parameter (URL-encoded) and any query string, on any route
    path = template.replace(WORKLOAD, segment).replace(EXEC_NAME, segment)
    method = "POST" if template in POST_ROUTES else "GET"
    url = path + ("?" + urlencode(query) if query else "")
    # When it is requested
    response = api.request(method, url, {"dry_run": True} if method == "POST" else None)
    # Then the answer is never a 500
    assert _acceptable(response.status_code, path), (method, url, response.body)


# -- OpenAPI --------------------------------------------------------------------------------------------
def test_the_published_openapi_document_is_up_to_date() -> None:
    # Given the document generated from the routes and models as they are now
    expected = openapi.render(openapi.build(lifeboat.app))
    # Then docs/openapi.json is exactly that (regenerate with: python -m lifeboat_cli.openapi)
    current = openapi.OUTPUT.read_text(encoding="utf-8")
    assert current == expected, "docs/openapi.json is stale: run `.venv/bin/python -m lifeboat_cli.openapi`"


def test_the_openapi_document_declares_sigv4_on_every_route_but_health() -> None:
    # Given the published document
    doc = json.loads(openapi.OUTPUT.read_text(encoding="utf-8"))
    # Then every operation but GET /health requires the sigv4 scheme, and bodies reference their models
    assert doc["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            expected = [] if (path, method) == ("/health", "get") else [{"sigv4": []}]
            assert op["security"] == expected, (path, method)
    failover = doc["paths"]["/workloads/{workload}/failover"]["post"]
    assert failover["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/FailoverBody")
    assert {"200", "202", "400", "403", "404", "409", "413", "415"} <= set(failover["responses"])
