"""Calling the console API in-process with chalice.test, as API Gateway would after SigV4 verification.

`chalice.test`/`chalice local` do not run IAM authorizers: they admit every request, warn, and put no
identity in the request context. `signed_in` stands in for API Gateway: a request carrying the test header
`x-test-principal` gets that ARN as its verified `userArn`; a request without it stays anonymous, so tests
can check that the API itself refuses anonymous requests.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from chalice.local import LocalGatewayAuthorizer
from chalice.test import Client, HTTPResponse

ROOT = Path(__file__).resolve().parents[1]
ALICE = "arn:aws:iam::123456789012:user/alice"
PRINCIPAL_HEADER = "x-test-principal"


@contextmanager
def signed_in() -> Iterator[None]:
    original = LocalGatewayAuthorizer.authorize

    def authorize(self: Any, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "IAMAuthorizer is not supported in local mode"
            event, context = original(self, raw_path, lambda_event, lambda_context)
        principal = event.get("headers", {}).get(PRINCIPAL_HEADER)
        if principal:
            event["requestContext"]["identity"].update(
                userArn=principal, caller="AIDATESTCALLER", accountId="123456789012"
            )
        return event, context

    LocalGatewayAuthorizer.authorize = authorize  # type: ignore[method-assign]
    try:
        yield
    finally:
        LocalGatewayAuthorizer.authorize = original  # type: ignore[method-assign]


class Api:
    """A chalice.test HTTP client that signs as `principal` (None: anonymous). With `around`, each request
    runs inside it (the local cloud: as the API function, whose role then checks the handler's AWS calls)."""

    def __init__(
        self,
        client: Client,
        principal: str | None = ALICE,
        around: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        self._http = client.http
        self.principal = principal
        self._around = around

    def as_(self, principal: str | None) -> Api:
        other = Api.__new__(Api)
        other._http, other.principal, other._around = self._http, principal, self._around
        return other

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> HTTPResponse:
        sent = {"content-type": "application/json", **(headers or {})}
        if self.principal:
            sent[PRINCIPAL_HEADER] = self.principal
        payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        with self._around():
            return self._http.request(method, path, headers=sent, body=payload)

    def get(self, path: str, **kw: Any) -> HTTPResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> HTTPResponse:
        return self.request("POST", path, body, **kw)


@contextmanager
def api_client(principal: str | None = ALICE, *, cloud: Any = None) -> Iterator[Api]:
    """The console API in-process; given a local cloud, each request runs as its API function."""
    import app

    around: Callable[[], AbstractContextManager[Any]] = nullcontext
    if cloud is not None:
        from localcloud.lambda_runner import running_as

        invocation = cloud.as_function("api")
        around = lambda: running_as(invocation)  # noqa: E731
    with signed_in(), Client(app.app, project_dir=str(ROOT)) as client:
        yield Api(client, principal, around)
