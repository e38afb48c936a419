"""What every test gets: the process as the functions run in it, whatever an earlier test did to it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

# The CLI, which tests run in-process, quiets the functions for people (lifeboat_cli.main:
# POWERTOOLS_LOG_LEVEL WARNING, metrics off) through the process environment; a later test must see the
# functions' own settings.
_CLI_VARIABLES = ("POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_DISABLED")
_AT_START = {name: os.environ.get(name) for name in _CLI_VARIABLES}


INFRA_TIMEOUT_S = 900


# tryfirst: pytest-xdist reads the groups in its own hook of this name, which otherwise runs before this one.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs the suite on several pytest-xdist workers (`--dist loadgroup`): the infrastructure
    tests share session fixtures (`chalice package` of every stage, which writes Chalice's dependency cache in
    .chalice/), so they run together on one worker; every other test goes wherever a worker is free."""
    for item in items:
        if "tests/infra/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("infra"))
            # `chalice package` of every stage and region (the session fixtures, paid by whichever test comes
            # first) and checkov on each template: minutes of CPU, more beside three busy workers.
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(INFRA_TIMEOUT_S))


@pytest.fixture(autouse=True)
def _cli_settings_do_not_leak() -> Iterator[None]:
    yield
    for name, value in _AT_START.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    logging.getLogger("lifeboat").setLevel(_AT_START["POWERTOOLS_LOG_LEVEL"] or logging.INFO)
