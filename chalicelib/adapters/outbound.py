"""HTTP requests to the URLs plans name, and only where `models/urls.py` allows them to go.

The host is resolved once, every address it resolves to is judged, and the connection is made to the
judged address (the Host header, TLS SNI and certificate check still use the name): a name cannot resolve
to a public address for the check and to the metadata service for the request. Redirects are never
followed (a 302 turning `POST /invocations` into `GET /latest/meta-data/` is how such requests leak);
the 3xx answer is returned as it came, with its Location. No proxy from the environment is used.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chalicelib.models.urls import (
    IPAddress,
    OutboundPolicy,
    Target,
    address_problem,
    literal_address,
    split_url,
)

Resolver = Callable[[str, int], list[str]]
MAX_BODY = 1_000_000


class OutboundRefused(ValueError):
    """The request may not be sent there (the message says why, naming the host and address)."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    location: str | None = None

    @property
    def redirect(self) -> bool:
        return 300 <= self.status < 400


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (TCP), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def policy_from_settings() -> OutboundPolicy:
    """The outbound rules of the current settings (read when a request is made: the local cloud's copies of
    Lifeboat each have their own)."""
    from chalicelib.settings import get_settings

    s = get_settings()
    return OutboundPolicy(allow_loopback=s.outbound_allow_loopback, allowed_hosts=s.outbound_hosts())


def check(
    url: str, *, policy: OutboundPolicy | None = None, resolver: Resolver = resolve
) -> tuple[Target, str]:
    """The URL's target and the one address to connect to; OutboundRefused when any rule says no."""
    target, why = split_url(url)
    if target is None:
        raise OutboundRefused(why or "the URL cannot be requested")
    rules = policy if policy is not None else policy_from_settings()
    if rules.allowed_hosts and not rules.host_listed(target.host):
        raise OutboundRefused(
            f"{target.host} is not on the outbound allow-list ({', '.join(rules.allowed_hosts)})"
        )
    literal = literal_address(target.host)
    try:
        addresses = [str(literal)] if literal is not None else resolver(target.host, target.port)
    except OSError as exc:
        raise OutboundRefused(f"{target.host} cannot be resolved: {exc}") from None
    if not addresses:
        raise OutboundRefused(f"{target.host} resolves to no address")
    for address in addresses:
        ip: IPAddress | None = literal_address(address.split("%", 1)[0])
        if ip is None:
            raise OutboundRefused(f"{target.host} resolves to {address!r}, which is not an IP address")
        problem = address_problem(ip, rules, host=target.host)
        if problem is not None:
            # One bad answer refuses the name: a host that resolves to the metadata service among others is
            # not one to send a plan's requests to.
            raise OutboundRefused(f"{target.host} resolves to {address}, which {problem}")
    return target, addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # Certificate and SNI for the name the plan gave, over the address that was checked.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
    max_body: int = MAX_BODY,
    policy: OutboundPolicy | None = None,
    resolver: Resolver = resolve,
) -> Response:
    """Send one request; OutboundRefused before anything is sent when the rules say no, OSError on transport
    failures, ValueError when the answer is larger than `max_body`."""
    target, address = check(url, policy=policy, resolver=resolver)
    kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    connection = kind(target.host, target.port, address, timeout)
    try:
        connection.request(method, target.target, body=body, headers=dict(headers or {}))
        answer = connection.getresponse()
        raw = answer.read(max_body + 1)
        if len(raw) > max_body:
            raise ValueError(f"response larger than {max_body} bytes")
        return Response(status=answer.status, body=raw, location=answer.getheader("Location"))
    finally:
        connection.close()


def describe_redirect(response: Response) -> str:
    return f"HTTP {response.status} redirect to {str(response.location)[:200]} not followed"
