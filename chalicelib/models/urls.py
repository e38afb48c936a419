"""Which URLs and addresses Lifeboat may send a plan's requests to (smoke tests, model identity, drills).

A plan names endpoint URLs, and Lifeboat's functions call them with their own network position and
credentials in reach: a URL is a request a plan author makes Lifeboat send. So only http(s), never with
credentials in the URL, never to the instance metadata service or any other link-local address, never to
an unspecified, multicast or reserved address; loopback only where the endpoints are local processes (the
local cloud's setting), private addresses only for hosts the deployment's allow-list names. The address is
judged after resolution (`adapters/outbound.py` connects to the address it judged, so a name cannot
resolve to one address for the check and another for the request).

Pure: the static rules a plan file is validated with, and the address rules the adapter applies.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ConfigDict, Field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESSES = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))
"""The EC2/Lambda instance metadata service over IPv4 and IPv6 (the IPv6 one is not link-local)."""
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundPolicy(BaseModel):
    """Where this copy of Lifeboat may send a plan's requests (from settings: `outbound_policy`)."""

    model_config = ConfigDict(frozen=True)

    allow_loopback: bool = Field(
        False, description="Loopback addresses allowed (the local cloud's model servers); never in AWS."
    )
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="When not empty, the only hosts requests may go to (exact names, or *.example.com for "
        "any name under example.com); such a host may also resolve to a private address.",
    )

    def host_listed(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        for allowed in self.allowed_hosts:
            entry = allowed.lower().rstrip(".")
            if entry.startswith("*.") and name.endswith(entry[1:]):
                return True
            if name == entry:
                return True
        return False


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def always_refused(ip: IPAddress) -> str | None:
    """Why no request may ever go to `ip` (whatever the deployment allows), or None."""
    ip = _unwrap(ip)
    if ip.is_loopback:
        return None  # the deployment decides (`address_problem`); ::1 sits in a reserved block
    if ip in METADATA_ADDRESSES:
        return "is the instance metadata service"
    if any(ip in net for net in _LINK_LOCAL if net.version == ip.version):
        return "is a link-local address"
    if ip.is_unspecified:
        return "is the unspecified address"
    if ip.is_multicast:
        return "is a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "is the broadcast address"
    if ip.is_reserved:
        return "is a reserved address"
    return None


def address_problem(ip: IPAddress, policy: OutboundPolicy, *, host: str) -> str | None:
    """Why a request to `host`, resolved to `ip`, is refused under `policy`; None when it may go."""
    why = always_refused(ip)
    if why is not None:
        return why
    inner = _unwrap(ip)
    if inner.is_loopback:
        return None if policy.allow_loopback else "is a loopback address (allowed in the local cloud only)"
    if inner.is_private or inner in ipaddress.ip_network("100.64.0.0/10"):
        if policy.host_listed(host):
            return None
        return "is a private address (allowed only for a host on the outbound allow-list)"
    return None


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


Scheme = Literal["http", "https"]


class Target(BaseModel):
    """A URL's parts as the adapter connects to them."""

    model_config = ConfigDict(frozen=True)

    scheme: Scheme
    host: str = Field(description="Host name or address literal (without IPv6 brackets).")
    port: int
    target: str = Field(description="Path and query, as sent in the request line.")


def split_url(url: str) -> tuple[Target | None, str | None]:
    """The URL's target, or why it can never be requested (the static rules; no resolution)."""
    if not isinstance(url, str) or not url:
        return None, "the URL is empty"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return None, "the URL contains spaces or control characters"
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return None, f"the URL cannot be read: {exc}"
    scheme: Scheme
    if parts.scheme.lower() == "https":
        scheme = "https"
    elif parts.scheme.lower() == "http":
        scheme = "http"
    else:
        return None, f"only http:// and https:// URLs are allowed (got {parts.scheme or 'no scheme'}://)"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return None, "the URL must not carry a user name or password (user:pass@host)"
    host = parts.hostname or ""
    if not host:
        return None, "the URL names no host"
    literal = literal_address(host)
    if literal is not None:
        why = always_refused(literal)
        if why is not None:
            return None, f"{host} {why}: requests never go there"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), target=target
    ), None


def url_problem(url: str) -> str | None:
    """Why a plan may not name `url` as an endpoint, whatever the deployment allows (None: it may)."""
    return split_url(url)[1]
