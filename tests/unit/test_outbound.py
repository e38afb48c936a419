"""Where a plan's URLs may send Lifeboat's requests: the static rules a plan file is held to, the address
rules judged after resolution, the allow-list, and that the connection goes to the address that was judged.
No socket is opened: resolvers are fakes and the connection is caught before it is made."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.adapters import outbound
from chalicelib.adapters.endpoints import EndpointClient
from chalicelib.models.plan import HttpEndpoint
from chalicelib.models.planfile import PlanError, load_plan_text
from chalicelib.models.urls import OutboundPolicy, address_problem, split_url, url_problem
from chalicelib.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
AWS = OutboundPolicy()
LOCAL = OutboundPolicy(allow_loopback=True)


def resolver(*addresses: str) -> Any:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return list(addresses)

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


# -- the static rules (what a plan file may name) --------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://models.example.com/x", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "only http:// and https://"),
        ("http://user:pass@models.example.com/invocations", "user name or password"),
        ("http://user@models.example.com/invocations", "user name or password"),
        ("http://169.254.169.254/latest/meta-data/", "instance metadata service"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "instance metadata service"),
        ("http://[::ffff:169.254.169.254]/", "instance metadata service"),
        ("http://[64:ff9b::a9fe:a9fe]/", "instance metadata service"),
        ("http://169.254.10.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0:8080/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://models.example.com:99999/", "cannot be read"),
        ("http:///invocations", "names no host"),
        ("http://models.example.com/a b", "spaces or control characters"),
    ],
)
def test_a_url_no_deployment_may_request_is_refused_with_the_reason(url: str, words: str) -> None:
    problem = url_problem(url)
    assert problem is not None and words in problem, problem


@pytest.mark.parametrize(
    "url",
    [
        "https://fraud.models.example.com/invocations",
        "http://127.0.0.1:8080/invocations",  # loopback: the deployment decides (the local cloud allows it)
        "http://10.0.3.7/invocations",  # private: the allow-list decides
        "https://[2001:4860:4860::8888]:8443/x?y=1",
    ],
)
def test_urls_the_deployment_decides_on_pass_the_static_rules(url: str) -> None:
    assert url_problem(url) is None


def test_a_plan_naming_such_a_url_is_rejected_at_the_field() -> None:
    # Given the example plan with its primary endpoint pointed at the metadata service with credentials
    text = (ROOT / "plans" / "fraud-scoring.yaml").read_text()
    text = text.replace("url: http://127.0.0.1:0/invocations", "url: http://u:p@169.254.169.254/x", 1)
    # When it is loaded / Then the problem names the field and says why, in words
    with pytest.raises(PlanError) as err:
        load_plan_text(text, "plan.yaml")
    (problem,) = err.value.problems
    assert problem.field == "endpoints.primary.url" and "user name or password" in problem.message


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z][a-z0-9-]{0,15}){0,3}", fullmatch=True)


@given(
    st.sampled_from(["http", "https", "ftp", "file", "gopher", "HTTP", "javascript", ""]),
    st.one_of(st.none(), st.text(alphabet="abc:", min_size=1, max_size=6)),
    hosts,
    st.one_of(st.none(), st.integers(min_value=0, max_value=70000)),
    st.text(alphabet="/abc?=&%", max_size=20),
)
def test_any_url_is_split_or_refused_never_raises(
    scheme: str, userinfo: str | None, host: str, port: int | None, path: str
) -> None:
    # Given a URL built from any scheme, optional userinfo, host, port and path
    credentials = f"{userinfo}@" if userinfo else ""
    url = f"{scheme}://{credentials}{host}{f':{port}' if port is not None else ''}/{path}"
    # When it is split / Then it is a target, or refused; a target is always http(s) without credentials
    target, why = split_url(url)
    assert (target is None) != (why is None)
    if target is not None:
        assert target.scheme in ("http", "https") and not userinfo and target.host == host.lower()
        assert 0 < target.port < 65536


# -- addresses, after resolution --------------------------------------------------------------------------
@given(st.ip_addresses())
def test_any_address_is_judged_and_the_metadata_and_link_local_ones_never_pass(ip: Any) -> None:
    # Given any IPv4 or IPv6 address, under the most permissive policy there is
    permissive = OutboundPolicy(allow_loopback=True, allowed_hosts=("*.example.com",))
    problem = address_problem(ip, permissive, host="a.example.com")
    inner = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
    # Then link-local addresses (the metadata service among them) are refused whatever the policy
    if inner in ipaddress.ip_network(f"{'169.254.0.0/16' if inner.version == 4 else 'fe80::/10'}"):
        assert problem is not None
    # And under AWS rules nothing loopback or private gets through for a host not on an allow-list
    if inner.is_loopback or inner.is_private:
        assert address_problem(ip, AWS, host="a.example.com") is not None


def test_a_name_is_judged_by_what_it_resolves_to() -> None:
    # Given an innocent-looking name that resolves to the metadata service (or has it among its answers)
    for answers in (("169.254.169.254",), ("93.184.216.34", "169.254.169.254"), ("fd00:ec2::254",)):
        # Then the URL is refused, naming the address
        with pytest.raises(outbound.OutboundRefused, match="169.254.169.254|fd00:ec2::254"):
            outbound.check("https://innocent.example.com/x", policy=LOCAL, resolver=resolver(*answers))


@pytest.mark.parametrize(
    ("policy", "address", "refused"),
    [
        (AWS, "127.0.0.1", "loopback"),
        (LOCAL, "127.0.0.1", None),
        (AWS, "::1", "loopback"),
        (AWS, "10.1.2.3", "private"),
        (AWS, "192.168.0.10", "private"),
        (AWS, "100.64.0.1", "private"),
        (OutboundPolicy(allowed_hosts=("models.internal.example.com",)), "10.1.2.3", None),
        (AWS, "93.184.216.34", None),
    ],
)
def test_loopback_only_in_the_local_cloud_and_private_only_for_listed_hosts(
    policy: OutboundPolicy, address: str, refused: str | None
) -> None:
    url = "http://models.internal.example.com/invocations"
    if refused is None:
        target, chosen = outbound.check(url, policy=policy, resolver=resolver(address))
        assert chosen == address and target.host == "models.internal.example.com"
    else:
        with pytest.raises(outbound.OutboundRefused, match=refused):
            outbound.check(url, policy=policy, resolver=resolver(address))


@pytest.mark.parametrize(
    ("host", "listed"),
    [
        ("a.example.com", True),
        ("example.com", False),
        ("a.example.com.evil.net", False),
        ("b.other.org", True),
    ],
)
def test_the_allow_list_names_hosts_exactly_or_by_wildcard(host: str, listed: bool) -> None:
    policy = OutboundPolicy(allowed_hosts=("*.example.com", "b.other.org"))
    assert policy.host_listed(host) is listed
    if not listed:
        with pytest.raises(outbound.OutboundRefused, match="allow-list"):
            outbound.check(f"https://{host}/", policy=policy, resolver=resolver("93.184.216.34"))


def test_the_settings_give_the_policy_and_loopback_is_off_unless_set() -> None:
    base = {
        "AWS_REGION": "us-east-1",
        "LIFEBOAT_LEDGER_TABLE": "l",
        "LIFEBOAT_LOCK_TABLE": "k",
        "LIFEBOAT_IDEMPOTENCY_TABLE": "i",
        "LIFEBOAT_PLAN_BUCKET": "p",
        "LIFEBOAT_EVIDENCE_BUCKET": "e",
    }
    aws = load_settings(base)
    assert aws.outbound_allow_loopback is False and aws.outbound_hosts() == ()
    local = load_settings(
        {
            **base,
            "LIFEBOAT_OUTBOUND_ALLOW_LOOPBACK": "true",
            "LIFEBOAT_OUTBOUND_ALLOWED_HOSTS": " a.b , *.c.d ,",
        }
    )
    assert local.outbound_allow_loopback is True and local.outbound_hosts() == ("a.b", "*.c.d")


# -- the connection goes to the checked address ----------------------------------------------------------
def test_the_request_connects_to_the_address_that_was_checked_resolving_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a resolver that answers a public address first and the metadata service afterwards (rebinding)
    answers = iter([["93.184.216.34"], ["169.254.169.254"]])
    resolved: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        resolved.append(host)
        return next(answers)

    connected: list[tuple[Any, Any]] = []

    def connect(address: Any, timeout: Any = None, *args: Any) -> Any:
        connected.append(address)
        raise ConnectionRefusedError("stopped before any byte left")

    monkeypatch.setattr(socket, "create_connection", connect)
    # When a request is made
    with pytest.raises(ConnectionRefusedError):
        outbound.request("POST", "http://models.example.com:8080/invocations", policy=AWS, resolver=rebinding)
    # Then the name was resolved once, and the connection went to the address that passed the check
    assert resolved == ["models.example.com"]
    assert connected == [("93.184.216.34", 8080)]


def test_a_refused_endpoint_is_a_failed_smoke_case_naming_why() -> None:
    # Given an endpoint whose URL resolves to a loopback address, in AWS
    def request(method: str, url: str, **kw: Any) -> outbound.Response:
        return outbound.request(method, url, policy=AWS, resolver=resolver("127.0.0.1"), **kw)

    client = EndpointClient(http=request)
    # When a smoke case is sent / Then it fails without a request, saying why
    result = client.invoke(
        HttpEndpoint(kind="http", url="http://model.example.com/invocations"), "us-east-1", "c", {}, 1.0
    )
    assert result.status is None and result.error and "loopback" in result.error


def test_a_redirect_is_a_failed_smoke_case_and_is_not_followed() -> None:
    # Given an endpoint that answers 302 to the metadata service
    sent: list[str] = []

    def request(method: str, url: str, **kw: Any) -> outbound.Response:
        sent.append(url)
        return outbound.Response(status=302, body=b"", location="http://169.254.169.254/latest/meta-data/")

    result = EndpointClient(http=request).invoke(
        HttpEndpoint(kind="http", url="https://model.example.com/invocations"), "us-east-1", "c", {}, 1.0
    )
    # Then one request was made, and the case failed naming the redirect it did not follow
    assert sent == ["https://model.example.com/invocations"]
    assert result.status == 302 and result.error and "not followed" in result.error
