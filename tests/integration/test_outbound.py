"""Outbound requests on real sockets (127.0.0.1 stands for both a model endpoint and the place a redirect
tries to send Lifeboat): redirects are answered, never followed; a refused address is never contacted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.adapters import outbound
from chalicelib.adapters.endpoints import EndpointClient
from chalicelib.adapters.model_identity import ModelInspector
from chalicelib.models.plan import HttpEndpoint
from chalicelib.models.urls import OutboundPolicy

LOCAL = OutboundPolicy(allow_loopback=True)


class Server:
    """A tiny HTTP server answering every request with `status` (and `location`), counting the requests."""

    def __init__(self, status: int = 200, location: str | None = None) -> None:
        self.hits: list[tuple[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                owner.hits.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = b'{"ok": true}'
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    target = Server()  # where a redirect points (standing in for the metadata service)
    redirecting = Server(status=302, location=f"{target.url}/latest/meta-data/")
    try:
        yield redirecting, target
    finally:
        redirecting.close()
        target.close()


def test_a_302_is_answered_and_never_followed(servers: tuple[Server, Server]) -> None:
    redirecting, target = servers
    # When Lifeboat POSTs to an endpoint that redirects
    answer = outbound.request("POST", f"{redirecting.url}/invocations", body=b"{}", policy=LOCAL)
    # Then it gets the 302 and its Location, and the place it points to is never contacted
    assert answer.status == 302 and answer.location == f"{target.url}/latest/meta-data/"
    assert redirecting.hits == [("POST", "/invocations")] and target.hits == []


def test_a_redirecting_endpoint_fails_its_smoke_case_and_its_identity_read(
    servers: tuple[Server, Server],
) -> None:
    redirecting, target = servers

    def local(method: str, url: str, **kw: Any) -> outbound.Response:
        return outbound.request(method, url, policy=LOCAL, **kw)

    endpoint = HttpEndpoint(kind="http", url=f"{redirecting.url}/invocations")
    # When the smoke test and the model identity read call it
    case = EndpointClient(http=local).invoke(endpoint, "us-east-1", "c", {"x": 1}, 2.0)
    # Then the case fails naming the redirect, and nothing followed it
    assert case.status == 302 and case.error and "not followed" in case.error
    assert target.hits == []


def test_a_loopback_endpoint_is_never_contacted_outside_the_local_cloud(
    servers: tuple[Server, Server],
) -> None:
    _, target = servers
    # When an AWS copy of Lifeboat (no loopback) is asked to call an endpoint on 127.0.0.1
    with pytest.raises(outbound.OutboundRefused, match="loopback"):
        outbound.request("GET", f"{target.url}/ping", policy=OutboundPolicy())
    # Then no request reached it
    assert target.hits == []


def test_the_model_identity_read_follows_no_redirect(servers: tuple[Server, Server]) -> None:
    redirecting, target = servers

    def local(method: str, url: str, **kw: Any) -> outbound.Response:
        return outbound.request(method, url, policy=LOCAL, **kw)

    # When the model identity of a redirecting endpoint is read
    identity = ModelInspector(http=local).identify(
        "primary", HttpEndpoint(kind="http", url=f"{redirecting.url}/invocations"), "us-east-1", {}, 2.0
    )
    # Then the read failed naming the redirect (ping, then the prediction fallback), and nothing followed
    assert identity.error and "not followed" in identity.error
    assert [hit[0] for hit in redirecting.hits] == ["GET", "POST"] and target.hits == []
