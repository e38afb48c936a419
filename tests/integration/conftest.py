"""Integration fixtures: a local cloud (moto on 127.0.0.1 + the in-process Lambda runner) per test module, and
the example plan's stack in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcloud.iam import describe_denials
from localcloud.resources import provision_base
from localcloud.server import LocalCloud
from tests.integration.stack import Stack, running_stack

RETRY_CAP_S = 1
"""The generated state machines' retriers wait at most this long between attempts here (deployed: 1, 2, 4, 8,
16 s...; moto really sleeps through them). Every retrier keeps its errors, attempts, backoff and jitter."""

BOTOCORE_MAX_BACKOFF_S = 0.5
"""botocore's pause between two attempts of one call (deployed: rand * 2^n s, up to 1+2+4+8 s over Lifeboat's
five attempts). The attempts, what is retried and botocore's retry quota stay as they are."""


@pytest.fixture(scope="session", autouse=True)
def _short_botocore_backoff() -> Iterator[None]:
    """Caps botocore's retry backoff in this process (BOTOCORE_MAX_BACKOFF_S): a region whose APIs are down
    costs each failing call seconds of pauses, and a failover through it pays that on every task attempt
    (minutes in all). botocore has no public setting for it: each client's retry handler builds its
    `ExponentialBackoff` when the client is created, so clients created from now on get the capped one."""
    from botocore.retries import standard

    original = standard.ExponentialBackoff
    assert hasattr(original(), "_max_backoff"), "botocore's ExponentialBackoff changed: update this fixture"

    class CappedBackoff(original):  # type: ignore[misc,valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self._max_backoff = min(self._max_backoff, BOTOCORE_MAX_BACKOFF_S)

    standard.ExponentialBackoff = CappedBackoff
    try:
        yield
    finally:
        standard.ExponentialBackoff = original


@pytest.fixture(scope="module")
def local_cloud(request: pytest.FixtureRequest) -> Iterator[LocalCloud]:
    """A started local cloud with Lifeboat's base resources; `local_cloud.resources` holds their names/ARNs.

    Its state machines' retriers wait at most RETRY_CAP_S between attempts. A test module picks the Chalice
    app whose handlers the functions run with a module-level `LOCAL_CLOUD_APP = "<module>"` (default:
    Lifeboat's own `app`).
    """
    cloud = LocalCloud(
        handler_module=getattr(request.module, "LOCAL_CLOUD_APP", "app"), retry_cap_s=RETRY_CAP_S
    )
    cloud.start()
    try:
        provision_base(cloud, stage=cloud.stage)
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture(scope="module")
def stack(local_cloud: LocalCloud, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The example plan provisioned in this module's local cloud, with its model servers (stopped when the
    module ends). A module replaces plan settings with a module-level `STACK_SETTINGS` (e.g.
    `{"sustain": "1s"}`, see `stack.plan_text`); each module gets its own stack, as its own cloud.
    """
    with running_stack(local_cloud, **getattr(request.module, "STACK_SETTINGS", {})) as built:
        yield built


@pytest.fixture(autouse=True)
def _iam_denials(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test of the local cloud fails when a handler made an AWS call its deployed role does not grant (or
    one the local cloud could not check), even when the handler coped with the error. A test that expects a
    denial takes it with `local_cloud.iam.expect_denials()`."""
    if "local_cloud" not in request.fixturenames:
        yield
        return
    iam = request.getfixturevalue("local_cloud").iam
    denials, errors = len(iam.denials), len(iam.errors)
    yield
    met, failed = iam.denials[denials:], iam.errors[errors:]
    if met or failed:
        lines = []
        if met:
            lines.append("AWS calls the functions' deployed roles do not grant:\n" + describe_denials(met))
        if failed:
            unchecked = "\n".join(f"  - {e}" for e in failed)
            lines.append("AWS calls the local cloud could not check:\n" + unchecked)
        pytest.fail("\n".join(lines), pytrace=False)
