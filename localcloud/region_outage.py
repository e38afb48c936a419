"""A region's AWS APIs down in the local cloud: every request signed for that region fails like an outage.

One moto server answers every region, so an outage cannot be a closed port. `RegionOutageMiddleware` wraps
moto's WSGI application instead and reads the region each request is for from its SigV4 credential scope
(`Credential=<key>/<date>/<region>/<service>/aws4_request`, in the Authorization header or a presigned URL's
query). A request for a failed region is never answered: the connection is dropped (what a client sees when
a region's endpoints are unreachable) or, in `unavailable` mode, answered 503 ServiceUnavailable (a region
whose APIs are up but impaired). Both come back at once, or after `delay_s` (bounded: a slow failure, like a
connect timeout), so nothing waits on an outage longer than the caller's own retries.

Why at the server and not in a botocore hook: the server is the one point every caller goes through, in
every process: Lifeboat's handlers (through `chalicelib.adapters.aws`), the local cloud's own clients (alarm
simulator, canary, replication simulator), moto's Step Functions engine invoking Lambda over HTTP, the model
servers loading artifacts, and the CLI when the local cloud runs as a daemon. A botocore hook reaches only the
clients it was registered on in its own process.

Which region a request is for:
- the credential scope's region, for every regional service;
- S3 also by the bucket's home region: a client signing for another region would be redirected to the
  bucket's own region in AWS, so a bucket in a failed region is unreachable from anywhere;
- global services (Route 53, IAM) are homed in us-east-1 and fail with it only when the outage says so
  (`global_services`): Route 53's data plane keeps answering DNS in a us-east-1 outage, its control plane
  (ChangeResourceRecordSets, health-check updates) may not.
Unsigned requests (moto's own /moto-api) always pass.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

log = logging.getLogger(__name__)

Mode = Literal["refuse", "unavailable"]
MODES: tuple[Mode, ...] = ("refuse", "unavailable")
MAX_DELAY_S = 5.0
"""Upper bound of `delay_s`: an outage may be slow to fail, never slow enough to hang a test or a drill."""

GLOBAL_SERVICES: dict[str, str] = {"route53": "us-east-1", "iam": "us-east-1"}
"""Signing names of global services and the region whose control plane they live in."""

# SigV4 only: SigV4a (AWS4-ECDSA-P256-SHA256) scopes carry no region (it travels in X-Amz-Region-Set).
_CREDENTIAL = re.compile(
    r"Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[A-Za-z0-9._-]+)"
    r"/aws4_request(?=$|[,\s])"
)


@dataclass(frozen=True)
class CredentialScope:
    """What a SigV4 signature says a request is for."""

    access_key: str
    date: str
    region: str
    service: str


def credential_scope(authorization: str | None, query: str = "") -> CredentialScope | None:
    """The SigV4 credential scope of a request, from its Authorization header or, for a presigned URL, its
    `X-Amz-Credential` query parameter; None when the request is not SigV4-signed. Never raises."""
    if authorization:
        found = _CREDENTIAL.search(authorization)
        if found:
            return CredentialScope(
                access_key=found["key"], date=found["date"], region=found["region"], service=found["service"]
            )
        return None
    if "X-Amz-Credential" in query or "x-amz-credential" in query.lower():
        for name, values in parse_qs(query, keep_blank_values=True).items():
            if name.lower() == "x-amz-credential" and values:
                return credential_scope(f"Credential={values[0]}")
    return None


def s3_bucket(path: str, host: str = "") -> str | None:
    """The bucket of an S3 request: path-style (`/bucket/key`, what botocore sends to an IP endpoint) or
    virtual-hosted (`bucket.s3...` / `bucket.localhost`)."""
    hostname = host.split(":", 1)[0].lower()
    if hostname and not _is_ip(hostname) and "." in hostname:
        first, rest = hostname.split(".", 1)
        if first not in ("s3", "localhost") and (rest.startswith("s3") or rest.startswith("localhost")):
            return first
    segment = unquote(path).lstrip("/").split("/", 1)[0]
    return segment or None


def _is_ip(hostname: str) -> bool:
    try:
        socket.inet_aton(hostname)
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Outage:
    """One region's APIs down."""

    region: str
    global_services: bool = False
    mode: Mode = "refuse"
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0 <= self.delay_s <= MAX_DELAY_S:
            raise ValueError(f"delay_s must be between 0 and {MAX_DELAY_S:g} seconds, got {self.delay_s}")
        if self.global_services and self.region not in GLOBAL_SERVICES.values():
            homes = ", ".join(sorted(set(GLOBAL_SERVICES.values())))
            raise ValueError(
                f"global services ({', '.join(GLOBAL_SERVICES)}) live in {homes}, not in {self.region}: "
                "global_services would change nothing"
            )


@dataclass
class RegionOutage:
    """The regions whose APIs are down now (process-wide: the middleware consults it on every request)."""

    _outages: dict[str, Outage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    refused: int = 0

    def begin(
        self, region: str, *, global_services: bool = False, mode: Mode = "refuse", delay_s: float = 0.0
    ) -> Outage:
        """Take `region`'s APIs down (replacing any outage of that region already on)."""
        outage = Outage(region=region, global_services=global_services, mode=mode, delay_s=delay_s)
        with self._lock:
            self._outages[region] = outage
        log.warning("region outage: %s APIs down (%s)", region, describe(outage))
        return outage

    def end(self, region: str | None = None) -> list[str]:
        """Bring `region` (or every region) back; the regions that were down."""
        with self._lock:
            ended = [region] if region in self._outages else [] if region else list(self._outages)
            for name in ended:
                del self._outages[name]
        for name in ended:
            log.warning("region outage over: %s APIs back", name)
        return ended

    def active(self) -> list[Outage]:
        with self._lock:
            return list(self._outages.values())

    def outage_for(self, scope: CredentialScope | None, *, bucket_region: str | None = None) -> Outage | None:
        """The outage a request with this scope (and, for S3, this bucket's home region) runs into."""
        if scope is None:
            return None
        with self._lock:
            if not self._outages:
                return None
            home = GLOBAL_SERVICES.get(scope.service)
            if home is not None:
                outage = self._outages.get(home)
                return outage if outage is not None and outage.global_services else None
            found = self._outages.get(scope.region)
            if found is None and bucket_region is not None:
                found = self._outages.get(bucket_region)
            return found

    def count(self) -> None:
        with self._lock:
            self.refused += 1


def describe(outage: Outage) -> str:
    what = "connections dropped" if outage.mode == "refuse" else "503 ServiceUnavailable"
    extra = ", Route 53 and IAM control planes too" if outage.global_services else ""
    delay = f" after {outage.delay_s:g}s" if outage.delay_s else ""
    return f"{what}{delay}{extra}"


REGION_OUTAGE = RegionOutage()
"""This process's outages (the daemon's, or a test's in-process cloud)."""


# -- the middleware ------------------------------------------------------------------------------------------
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RegionOutageMiddleware:
    """WSGI middleware in front of moto: requests for a failed region fail like an outage (module doc)."""

    def __init__(
        self,
        app: WSGIApp,
        outages: RegionOutage = REGION_OUTAGE,
        *,
        bucket_region: Callable[[str], str | None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.app = app
        self.outages = outages
        self._bucket_region = bucket_region or moto_bucket_region
        self._sleep = sleep

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        found = self.outage(environ)
        if found is None:
            return self.app(environ, start_response)
        outage, service = found
        self.outages.count()
        if outage.delay_s:
            self._sleep(outage.delay_s)
        _discard_body(environ)
        if outage.mode == "unavailable":
            return unavailable(environ, start_response, outage.region, service)
        return drop(environ, outage.region)

    def outage(self, environ: Mapping[str, Any]) -> tuple[Outage, str] | None:
        """The outage this request runs into, and the service it was for; None when it may pass."""
        if not self.outages.active():
            return None  # the common case: no parsing at all
        scope = credential_scope(environ.get("HTTP_AUTHORIZATION"), str(environ.get("QUERY_STRING", "")))
        bucket_region = None
        if scope is not None and scope.service == "s3":
            bucket = s3_bucket(str(environ.get("PATH_INFO", "")), str(environ.get("HTTP_HOST", "")))
            bucket_region = self._bucket_region(bucket) if bucket else None
        outage = self.outages.outage_for(scope, bucket_region=bucket_region)
        return (outage, scope.service) if outage is not None and scope is not None else None


def _discard_body(environ: Mapping[str, Any]) -> None:
    # Unread body bytes would be parsed by the server as the next request line on this connection.
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    while length > 0 and stream is not None:
        chunk = stream.read(min(length, 1 << 16))
        if not chunk:
            return
        length -= len(chunk)


def drop(environ: Mapping[str, Any], region: str) -> Iterable[bytes]:
    """Close the connection without an answer. Raising a ConnectionError makes werkzeug treat it as a client
    that went away (no error page, no log line); the client sees the connection closed mid-request."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # the client may have gone already
            sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError(f"region outage: {region} is unreachable")


XML_SERVICES = frozenset({"s3", "route53", "sns", "iam", "sts", "cloudformation", "ec2"})
"""Signing names of services whose errors are XML (query and rest-xml protocols); the others speak JSON."""


def unavailable(
    environ: Mapping[str, Any], start_response: Callable[..., Any], region: str, service: str
) -> list[bytes]:
    """503 ServiceUnavailable in the request's wire format (JSON for JSON protocols, XML otherwise)."""
    message = f"Service unavailable in {region} (local cloud region outage)"
    if "json" in str(environ.get("CONTENT_TYPE", "")) or service not in XML_SERVICES:
        body = json.dumps({"__type": "ServiceUnavailable", "message": message}).encode()
        content_type = "application/x-amz-json-1.0"
    else:
        body = (
            "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
            f"<Message>{message}</Message></Error><RequestId>lifeboat-region-outage</RequestId></ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    start_response(
        "503 Service Unavailable",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("x-amzn-ErrorType", "ServiceUnavailable"),
        ],
    )
    return [body]


def log_round_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """For the local cloud's background loops: a call refused by an outage is expected, one line is enough;
    anything else keeps its traceback."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    if isinstance(exc, BotoConnectionError | HTTPClientError):
        logger.warning("%s: %s: %s", what, type(exc).__name__, exc)
    else:
        logger.error("%s", what, exc_info=exc)


def moto_bucket_region(bucket: str) -> str | None:
    """The region of a bucket in moto's S3 (None when moto has no such bucket or its internals moved)."""
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        found = s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets.get(bucket)
    except Exception:  # noqa: BLE001 - the scope's region still decides
        return None
    return getattr(found, "region_name", None) if found is not None else None


def install(server: Any, outages: RegionOutage = REGION_OUTAGE) -> RegionOutageMiddleware:
    """Wrap a started ThreadedMotoServer's WSGI application (werkzeug reads `server.app` per request)."""
    wsgi = server._server  # ThreadedMotoServer keeps its werkzeug server here (moto 5.x)
    if wsgi is None or not hasattr(wsgi, "app"):
        raise RuntimeError("the moto server is not started, or moto changed how it keeps its WSGI server")
    if isinstance(wsgi.app, RegionOutageMiddleware):
        return wsgi.app
    middleware = RegionOutageMiddleware(wsgi.app, outages)
    wsgi.app = middleware
    return middleware
