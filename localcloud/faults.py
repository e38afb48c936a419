"""Faults in AWS calls: throttle or fail the calls Lifeboat's own clients make, N times, in this process.

A botocore `before-send` hook answers in place of the service with the exact error response the service
would send, so botocore's retry logic, our TransientError mapping and the state machine's Retry all see
what they would see in AWS.
"""

from __future__ import annotations

import io
import json
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

from chalicelib.adapters import aws
from chalicelib.settings import get_settings


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        yield self.getvalue()


@dataclass
class _Rule:
    operation: str
    remaining: int
    status: int
    code: str
    message: str
    skip: int = 0
    hits: int = 0


def _factory_key() -> tuple[str, str | None, int]:
    """Which of Lifeboat's client factories the calling context uses (as `aws.factory()` keys them)."""
    settings = get_settings()
    return settings.region, settings.endpoint_url, settings.aws_max_attempts


@dataclass
class AwsFaults:
    """Inject errors into `service` calls made through Lifeboat's client factory (per region).

    The factory's client for (service, region) gets the hook, and so does any client the same factory
    builds for them later: the local cloud's Lambda runner forgets the clients when a function's
    environment changes (`aws.reset()`), and a fault added just before that must still reach the calls made
    after it (a run that should have failed was green when a handler reset the clients in between).
    """

    rules: dict[tuple[str, str], list[_Rule]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _hooked: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)
    _targets: dict[tuple[str, str, tuple[str, str | None, int]], str] = field(default_factory=dict)
    """(client's service name, region, factory key) -> the service the rules are kept under."""
    _stop_observing: Callable[[], None] | None = None

    def throttle(self, service: str, operation: str, times: int, *, region: str | None = None) -> _Rule:
        return self.add(
            service, operation, times, status=400, code="Throttling", message="Rate exceeded", region=region
        )

    def add(
        self,
        service: str,
        operation: str,
        times: int,
        *,
        status: int,
        code: str,
        message: str = "injected fault",
        region: str | None = None,
        after: int = 0,
    ) -> _Rule:
        """Fail `times` calls of `operation`, after letting the first `after` calls through."""
        client = aws.client(service, region)
        rule = _Rule(
            operation=operation, remaining=times, status=status, code=code, message=message, skip=after
        )
        target = (client.meta.service_model.service_name, client.meta.region_name, _factory_key())
        with self._lock:
            self.rules.setdefault((service, operation), []).append(rule)
            self._targets[target] = service
            self._hook(service, client)
            if self._stop_observing is None:
                self._stop_observing = aws.observe_clients(self._on_built)
        return rule

    def _hook(self, service: str, client: Any) -> None:
        if client not in self._hooked:
            # Event names carry the hyphenised service id (route-53), so hook all sends of this client.
            client.meta.events.register("before-send", self._make_hook(service, client))
            self._hooked.add(client)

    def _on_built(self, client: Any) -> None:
        """A client built after the fault was added: hooked too when it is the same factory's, for the same
        service and region (called by the factory in the context that builds it)."""
        target = (client.meta.service_model.service_name, client.meta.region_name, _factory_key())
        with self._lock:
            service = self._targets.get(target)
            if service is not None:
                self._hook(service, client)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self._targets.clear()
            stop, self._stop_observing = self._stop_observing, None
        if stop is not None:
            stop()

    def _make_hook(self, service: str, client: Any) -> Any:
        protocol = client.meta.service_model.protocol

        def hook(request: Any, **kwargs: Any) -> AWSResponse | None:
            operation = _operation_from(kwargs.get("event_name", ""))
            with self._lock:
                for rule in self.rules.get((service, operation), []):
                    if rule.skip > 0:
                        rule.skip -= 1
                        continue
                    if rule.remaining > 0:
                        rule.remaining -= 1
                        rule.hits += 1
                        return _response(request.url, protocol, rule)
            return None

        return hook


def _operation_from(event_name: str) -> str:
    parts = event_name.split(".")
    return parts[2] if len(parts) > 2 else ""


def _response(url: str, protocol: str, rule: _Rule) -> AWSResponse:
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": rule.code, "message": rule.message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": rule.code}
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{rule.code}</Code>"
            f"<Message>{rule.message}</Message></Error><RequestId>lifeboat-fault</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml"}
    return AWSResponse(url, rule.status, headers, _Raw(body))
