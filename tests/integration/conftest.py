"""Integration fixtures: a local cloud (moto on 127.0.0.1 + the in-process Lambda runner) per test module, and
the example plan's stack in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcloud.iam import describe_denials
from localcloud.resources import provision_base
from localcloud.server import LocalCloud
from tests.integration.stack import Stack, running_stack


@pytest.fixture(scope="module")
def local_cloud(request: pytest.FixtureRequest) -> Iterator[LocalCloud]:
    """A started local cloud with Lifeboat's base resources; `local_cloud.resources` holds their names/ARNs.

    A test module picks the Chalice app whose handlers the functions run with a module-level
    `LOCAL_CLOUD_APP = "<module>"` (default: Lifeboat's own `app`).
    """
    cloud = LocalCloud(handler_module=getattr(request.module, "LOCAL_CLOUD_APP", "app"))
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
