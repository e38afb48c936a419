"""The local cloud's region outage: which requests it refuses (SigV4 credential scope, S3 bucket home region,
global services) and how (a dropped connection or a 503), without a socket."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localcloud.region_outage import (
    MAX_DELAY_S,
    CredentialScope,
    RegionOutage,
    RegionOutageMiddleware,
    credential_scope,
    s3_bucket,
)

DATE = "20260301"


def header(key: str, region: str, service: str, *, date: str = DATE, signed: str = "host;x-amz-date") -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential={key}/{date}/{region}/{service}/aws4_request, "
        f"SignedHeaders={signed}, Signature=0d86c579e1a4"
    )


# -- the credential-scope parser


def test_a_botocore_authorization_header_names_region_and_service() -> None:
    # Given the Authorization header botocore signs a CloudWatch call in us-west-2 with
    auth = header("AKIDEXAMPLE", "us-west-2", "monitoring")
    # When it is parsed
    scope = credential_scope(auth)
    # Then the scope is the key, date, region and signing name
    assert scope == CredentialScope(
        access_key="AKIDEXAMPLE", date=DATE, region="us-west-2", service="monitoring"
    )


def test_a_presigned_url_carries_its_scope_in_the_query() -> None:
    # Given a presigned S3 GET (the credential is URL-encoded in X-Amz-Credential)
    credential = quote("AKID/20260301/eu-west-1/s3/aws4_request")
    query = f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}"
    # When it is parsed without an Authorization header
    scope = credential_scope(None, query)
    # Then the scope comes from the query
    assert scope is not None and (scope.region, scope.service) == ("eu-west-1", "s3")


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "",
        "Bearer abc",
        "AWS AKID:signature",  # SigV2
        "AWS4-ECDSA-P256-SHA256 Credential=AKID/20260301/s3/aws4_request, SignedHeaders=host",  # SigV4a
        "AWS4-HMAC-SHA256 Credential=AKID/2026/us-east-1/s3/aws4_request",  # not an 8-digit date
        "AWS4-HMAC-SHA256 Credential=AKID/20260301/us-east-1/s3/aws4_requestX",
    ],
)
def test_requests_without_a_sigv4_scope_have_none(auth: str | None) -> None:
    # Then an unsigned, differently signed or malformed request names no region
    assert credential_scope(auth) is None


KEYS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=4, max_size=40)
DATES = st.dates().map(lambda d: d.strftime("%Y%m%d")).filter(lambda d: len(d) == 8)
REGIONS = st.from_regex(r"[a-z]{2}(-gov)?-[a-z]{4,9}-[1-9]", fullmatch=True)
SERVICES = st.from_regex(r"[a-z][a-z0-9-]{1,20}", fullmatch=True)
HEADERS = st.sampled_from(["host;x-amz-date", "content-type;host;x-amz-date;x-amz-target", "host"])


@given(key=KEYS, date=DATES, region=REGIONS, service=SERVICES, signed=HEADERS, swap=st.booleans())
def test_parsing_a_signed_header_gives_back_exactly_what_was_signed(
    key: str, date: str, region: str, service: str, signed: str, swap: bool
) -> None:
    # Given any well-formed SigV4 Authorization header, its parts in either order
    parts = [f"Credential={key}/{date}/{region}/{service}/aws4_request", f"SignedHeaders={signed}"]
    if swap:
        parts.reverse()
    auth = "AWS4-HMAC-SHA256 " + ", ".join([*parts, "Signature=ab12"])
    # Then the parser returns the same scope, whatever surrounds it
    assert credential_scope(auth) == CredentialScope(
        access_key=key, date=date, region=region, service=service
    )


@given(st.text(max_size=300), st.text(max_size=300))
def test_the_parser_never_raises(auth: str, query: str) -> None:
    # Whatever a client sends, the middleware must answer rather than crash the server thread
    result = credential_scope(auth, query)
    assert result is None or isinstance(result, CredentialScope)


# -- which requests an outage refuses


def scope(region: str, service: str) -> CredentialScope:
    return CredentialScope(access_key="AKID", date=DATE, region=region, service=service)


def test_only_the_failed_region_is_refused() -> None:
    # Given us-east-1's APIs are down
    outages = RegionOutage()
    outages.begin("us-east-1")
    # Then its calls are refused, another region's are not, and unsigned requests always pass
    assert outages.outage_for(scope("us-east-1", "dynamodb")) is not None
    assert outages.outage_for(scope("us-west-2", "dynamodb")) is None
    assert outages.outage_for(None) is None


def test_a_bucket_in_the_failed_region_is_unreachable_from_any_region() -> None:
    # Given us-east-1 is down and a client signs for us-west-2
    outages = RegionOutage()
    outages.begin("us-east-1")
    west = scope("us-west-2", "s3")
    # Then a bucket in us-east-1 is refused (AWS would redirect the call there); one in us-west-2 is not
    assert outages.outage_for(west, bucket_region="us-east-1") is not None
    assert outages.outage_for(west, bucket_region="us-west-2") is None


def test_route53_fails_with_us_east_1_only_when_asked() -> None:
    # Given a us-east-1 outage without, then with, the global control planes
    outages = RegionOutage()
    outages.begin("us-east-1")
    # Then Route 53 (signed for any region in the local cloud) stays up by default...
    assert outages.outage_for(scope("us-west-2", "route53")) is None
    assert outages.outage_for(scope("us-east-1", "route53")) is None
    # ...and goes down with global_services
    outages.begin("us-east-1", global_services=True)
    assert outages.outage_for(scope("us-west-2", "route53")) is not None


def test_outage_options_are_validated() -> None:
    outages = RegionOutage()
    # global services live in us-east-1: asking for them elsewhere is a mistake, not a silent no-op
    with pytest.raises(ValueError, match="global services"):
        outages.begin("us-west-2", global_services=True)
    with pytest.raises(ValueError, match="delay_s"):
        outages.begin("us-east-1", delay_s=MAX_DELAY_S + 1)
    with pytest.raises(ValueError, match="mode"):
        outages.begin("us-east-1", mode="explode")  # type: ignore[arg-type]
    assert outages.active() == []


def test_ending_an_outage_brings_the_region_back() -> None:
    outages = RegionOutage()
    outages.begin("us-east-1")
    outages.begin("eu-west-1")
    assert outages.end("us-east-1") == ["us-east-1"]
    assert outages.outage_for(scope("us-east-1", "s3")) is None
    assert outages.end() == ["eu-west-1"]
    assert outages.end() == []


# -- the middleware


def environ(region: str, service: str, *, path: str = "/", content_type: str = "", body: bytes = b"") -> dict:
    return {
        "HTTP_AUTHORIZATION": header("AKID", region, service),
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "HTTP_HOST": "127.0.0.1:5000",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status: str | None = None
        self.headers: dict[str, str] = {}

    def app(self, env: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls.append(env)
        start_response("200 OK", [])
        return [b"moto"]

    def start_response(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status, self.headers = status, dict(headers)


def test_a_request_for_a_healthy_region_reaches_moto_untouched() -> None:
    # Given us-east-1 is down
    outages, seen = RegionOutage(), Recorder()
    outages.begin("us-east-1")
    middleware = RegionOutageMiddleware(seen.app, outages, bucket_region=lambda _: None)
    # When a us-west-2 request arrives
    body = middleware(environ("us-west-2", "dynamodb"), seen.start_response)
    # Then moto answers it
    assert list(body) == [b"moto"] and len(seen.calls) == 1 and outages.refused == 0


def test_a_refused_request_drops_the_connection_after_reading_its_body() -> None:
    # Given us-east-1 is down (refuse mode)
    outages, seen = RegionOutage(), Recorder()
    outages.begin("us-east-1")
    middleware = RegionOutageMiddleware(seen.app, outages, bucket_region=lambda _: None)
    request = environ("us-east-1", "dynamodb", body=b'{"TableName": "x"}')
    # When a us-east-1 request arrives
    with pytest.raises(ConnectionAbortedError, match="us-east-1"):
        middleware(request, seen.start_response)
    # Then moto never saw it, the body was consumed (it must not read as the next request), it was counted
    assert seen.calls == [] and request["wsgi.input"].read() == b"" and outages.refused == 1


def test_unavailable_mode_answers_503_in_the_services_wire_format() -> None:
    # Given us-east-1 is down in 503 mode, after a bounded delay
    outages, seen, slept = RegionOutage(), Recorder(), []
    outages.begin("us-east-1", mode="unavailable", delay_s=0.5)
    middleware = RegionOutageMiddleware(seen.app, outages, bucket_region=lambda _: None, sleep=slept.append)
    # When a JSON-protocol call and an S3 (XML) call arrive
    json_body = b"".join(
        middleware(
            environ("us-east-1", "states", content_type="application/x-amz-json-1.0"), seen.start_response
        )
    )
    assert (
        seen.status == "503 Service Unavailable" and seen.headers["x-amzn-ErrorType"] == "ServiceUnavailable"
    )
    xml_body = b"".join(middleware(environ("us-east-1", "s3", path="/bucket/key"), seen.start_response))
    # Then each is a ServiceUnavailable error botocore can parse, after the delay
    assert b'"__type": "ServiceUnavailable"' in json_body
    assert b"<Code>ServiceUnavailable</Code>" in xml_body
    assert slept == [0.5, 0.5] and seen.calls == []


def test_s3_calls_are_refused_by_the_buckets_region() -> None:
    # Given us-east-1 is down and bucket "east" lives there
    outages, seen = RegionOutage(), Recorder()
    outages.begin("us-east-1")
    regions = {"east": "us-east-1", "west": "us-west-2"}
    middleware = RegionOutageMiddleware(seen.app, outages, bucket_region=regions.get)
    # Then a us-west-2-signed listing of "east" is refused, of "west" answered
    with pytest.raises(ConnectionAbortedError):
        middleware(environ("us-west-2", "s3", path="/east"), seen.start_response)
    assert list(middleware(environ("us-west-2", "s3", path="/west/a/b"), seen.start_response)) == [b"moto"]


@pytest.mark.parametrize(
    ("path", "host", "bucket"),
    [
        ("/fraud-data-use1/datasets/x.json", "127.0.0.1:5000", "fraud-data-use1"),
        ("/fraud-data-use1", "localhost:5000", "fraud-data-use1"),
        ("/datasets/x.json", "fraud-data-use1.s3.us-east-1.amazonaws.com", "fraud-data-use1"),
        ("/k", "fraud-data-use1.localhost:5000", "fraud-data-use1"),
        ("/", "127.0.0.1:5000", None),
        ("/my%20bucket/k", "127.0.0.1", "my bucket"),
    ],
)
def test_the_bucket_of_an_s3_request(path: str, host: str, bucket: str | None) -> None:
    assert s3_bucket(path, host) == bucket


# -- through the drill control file (a CLI drill asks the daemon, which serves the AWS APIs)


def test_the_daemon_applies_and_lifts_the_outage_a_drill_asks_for(tmp_path: Any) -> None:
    import time

    from localcloud.drill_faults import ControlFile, DrillFaultController, read_control
    from localcloud.region_outage import REGION_OUTAGE

    control = ControlFile(tmp_path / "drill-faults.json", workload="fraud-scoring")
    controller = DrillFaultController(tmp_path / "local.json", {}, lambda *_: None, control_path=control.path)
    try:
        # Given a drill (another process) asks for us-east-1's APIs down
        control.region_outage("us-east-1")
        control.heartbeat("drill-1", until=_in(60))
        # When the daemon's controller applies the control file
        controller.apply(read_control(control.path))
        # Then the daemon's server refuses us-east-1
        assert [o.region for o in REGION_OUTAGE.active()] == ["us-east-1"]
        # When the drill restores everything, the region comes back
        control.clear()
        controller.apply(read_control(control.path))
        assert REGION_OUTAGE.active() == []
        # And a drill whose lease lapsed leaves no outage behind (the dead-man switch)
        control.region_outage("us-east-1")
        controller.apply(read_control(control.path))
        assert REGION_OUTAGE.active()
        lapsed = {**(read_control(control.path) or {}), "expires_at": time.time() - 1}
        controller.apply({**lapsed, "workload": ""})
        assert REGION_OUTAGE.active() == []
    finally:
        REGION_OUTAGE.end()


def _in(seconds: float) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(seconds=seconds)
