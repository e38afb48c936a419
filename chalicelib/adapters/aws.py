"""The one AWS client factory: lazy, one client per (service, region), bounded adaptive retries."""

from __future__ import annotations

import threading
from typing import Any

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
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        with self._lock:
            existing = self._clients.get(key)
            if existing is not None:
                return existing
            session = self._session or boto3.session.Session()
            built = session.client(
                service,
                region_name=key[1],
                endpoint_url=self.endpoint_url,
                config=self._config,
            )
            self._clients[key] = built
            return built


_factory: ClientFactory | None = None
_factory_lock = threading.Lock()


def factory() -> ClientFactory:
    """The process-wide factory, configured from settings on first use."""
    global _factory
    with _factory_lock:
        if _factory is None:
            settings = get_settings()
            _factory = ClientFactory(
                region=settings.region,
                endpoint_url=settings.endpoint_url,
                max_attempts=settings.aws_max_attempts,
            )
        return _factory


def client(service: str, region: str | None = None) -> Any:
    """Shorthand for `factory().client(service, region)`."""
    return factory().client(service, region)


def reset() -> None:
    """Drop cached clients and settings (after the environment changed: local cloud, tests)."""
    global _factory
    with _factory_lock:
        _factory = None
    reset_settings()
