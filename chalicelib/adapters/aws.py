"""The one AWS client factory: lazy, one client per (service, region), bounded adaptive retries."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, overload

import boto3
from botocore.config import Config

from chalicelib.settings import get_settings, reset_settings


class ClientFactory:
    """Builds boto3 clients on first use and keeps one per (service, region)."""

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        max_attempts: int = 5,
        session: boto3.session.Session | None = None,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self._session = session
        self._config = Config(
            retries={"mode": "adaptive", "max_attempts": max_attempts},
            connect_timeout=3,
            read_timeout=20,
        )
        # For reads whose failure the caller handles itself (a region that may be down): one retry and
        # short timeouts, so an unreachable region costs seconds, not the minutes of the default retries.
        self._fail_fast = Config(
            retries={"mode": "standard", "max_attempts": min(2, max_attempts)},
            connect_timeout=2,
            read_timeout=5,
        )
        # For services answering on several regional endpoints, tried in turn by the caller (a Route 53 ARC
        # cluster): no retry at one endpoint, the next one is the retry.
        self._one_endpoint = Config(
            retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=5
        )
        self._clients: dict[tuple[str, str, bool], Any] = {}
        self._at: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()
        self._built_session: boto3.session.Session | None = None

    def _session_for_clients(self) -> boto3.session.Session:
        """The session clients are built from (under the lock): the one given, else one for the factory's
        life, so a service's model is loaded once for all regions (the S3 model is ~1.5 MB of JSON: a new
        session per client loaded it again for each region, ~0.1 s of a cold start)."""
        if self._session is not None:
            return self._session
        if self._built_session is None:
            self._built_session = boto3.session.Session()
        return self._built_session

    def client(self, service: str, region: str | None = None, *, fail_fast: bool = False) -> Any:
        key = (service, region or self.region, fail_fast)
        with self._lock:
            existing = self._clients.get(key)
            if existing is not None:
                return existing
            session = self._session_for_clients()
            built = session.client(
                service,
                region_name=key[1],
                endpoint_url=self.endpoint_url,
                config=self._fail_fast if fail_fast else self._config,
            )
            for observer in list(_observers):
                observer(built)
            self._clients[key] = built
            return built

    def client_at(self, service: str, region: str, endpoint_url: str) -> Any:
        """A client of one regional endpoint the caller names (signed for `region`), one attempt per call."""
        key = (service, region, endpoint_url)
        with self._lock:
            existing = self._at.get(key)
            if existing is not None:
                return existing
            session = self._session_for_clients()
            built = session.client(
                service, region_name=region, endpoint_url=endpoint_url, config=self._one_endpoint
            )
            for observer in list(_observers):
                observer(built)
            self._at[key] = built
            return built


# Seam for the local cloud (never used in Lambda): it watches the clients Lifeboat builds, to check each call
# against the calling function's IAM role (localcloud/iam.py).
_observers: list[Callable[[Any], None]] = []


def observe_clients(observer: Callable[[Any], None]) -> Callable[[], None]:
    """Call `observer(client)` on every client built from now on; returns the function that stops it."""
    _observers.append(observer)

    def stop() -> None:
        if observer in _observers:
            _observers.remove(observer)

    return stop


_factories: dict[tuple[str, str | None, int], ClientFactory] = {}
_factory_lock = threading.Lock()


def factory() -> ClientFactory:
    """The factory of the current settings, configured on first use: one per process in Lambda; one per
    copy of Lifeboat in the local cloud, whose copies in two regions share a process
    (`settings.environment`)."""
    settings = get_settings()
    key = (settings.region, settings.endpoint_url, settings.aws_max_attempts)
    with _factory_lock:
        found = _factories.get(key)
        if found is None:
            found = _factories[key] = ClientFactory(
                region=settings.region,
                endpoint_url=settings.endpoint_url,
                max_attempts=settings.aws_max_attempts,
            )
        return found


def client(service: str, region: str | None = None, *, fail_fast: bool = False) -> Any:
    """Shorthand for `factory().client(service, region, fail_fast=...)`."""
    return factory().client(service, region, fail_fast=fail_fast)


def client_at(service: str, region: str, endpoint_url: str) -> Any:
    """Shorthand for `factory().client_at(service, region, endpoint_url)`."""
    return factory().client_at(service, region, endpoint_url)


class Client:
    """An adapter's AWS client, declared once on its class: the client it was handed (a test's fake, the local
    cloud's), else the factory's for the current settings. Asked on each use, never kept by the adapter: the
    factory caches, and resetting it (local cloud, tests) must reach every adapter.

        class Ledger:
            ddb = aws.Client("dynamodb")

            def __init__(self, table: str, dynamodb: Any | None = None) -> None:
                self.ddb = dynamodb  # None: the factory's
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self._slot = f"_{service}_client"

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_client"

    @overload
    def __get__(self, adapter: None, owner: type) -> Client: ...
    @overload
    def __get__(self, adapter: object, owner: type | None = None) -> Any: ...
    def __get__(self, adapter: object | None, owner: type | None = None) -> Any:
        return self if adapter is None else self.of(adapter)

    def __set__(self, adapter: object, given: Any | None) -> None:
        vars(adapter)[self._slot] = given

    def of(self, adapter: object, region: str | None = None, *, fail_fast: bool = False) -> Any:
        """The client handed to `adapter` (for every region), else the factory's for `region`."""
        given = vars(adapter).get(self._slot)
        return given if given is not None else client(self.service, region, fail_fast=fail_fast)


def reset() -> None:
    """Drop cached clients and settings (after the environment changed: local cloud, tests)."""
    with _factory_lock:
        _factories.clear()
    reset_settings()
