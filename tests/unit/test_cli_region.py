"""`lifeboat --region`: which copy of Lifeboat the CLI talks to (the secondary's when the primary is down)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat_cli import cloud as clouds

HOME = {"AWS_REGION": "us-east-1", "LIFEBOAT_LEDGER_TABLE": "ledger", "LIFEBOAT_STATE_MACHINE_PREFIX": "p"}
COPY = {"AWS_REGION": "us-west-2", "LIFEBOAT_STATE_MACHINE_PREFIX": "p-usw2"}


@pytest.fixture
def local_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A running local cloud's state file, with a copy of Lifeboat in us-west-2; os.environ restored after."""
    monkeypatch.chdir(tmp_path)
    state = tmp_path / ".lifeboat" / "local.json"
    state.parent.mkdir()
    state.write_text(
        json.dumps({"ready": True, "pid": 1, "env": HOME, "copies": {"us-west-2": {"env": COPY}}})
    )
    before = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)
        from chalicelib.services import deps

        deps.reset()


def test_the_home_copy_by_default(local_state: None) -> None:
    # When the CLI selects the local cloud without a region
    clouds.select("local", "dev")
    # Then it talks to the home region's copy
    assert os.environ["AWS_REGION"] == "us-east-1" and os.environ["LIFEBOAT_STATE_MACHINE_PREFIX"] == "p"


def test_region_selects_the_secondary_copy_over_the_home_environment(local_state: None) -> None:
    # When the operator names the secondary region (the primary's APIs are down)
    clouds.select("local", "dev", "us-west-2")
    # Then the copy's settings win, and what the copy does not set comes from the home environment
    assert os.environ["AWS_REGION"] == "us-west-2" and os.environ["LIFEBOAT_STATE_MACHINE_PREFIX"] == "p-usw2"
    assert os.environ["LIFEBOAT_LEDGER_TABLE"] == "ledger"


def test_a_region_without_a_copy_is_a_clear_error(local_state: None) -> None:
    # When the operator names a region where the local cloud runs no copy
    with pytest.raises(clouds.CliError, match="no copy of Lifeboat in eu-west-1.*us-east-1, us-west-2"):
        clouds.select("local", "dev", "eu-west-1")
