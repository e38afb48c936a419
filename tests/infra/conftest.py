"""Infra fixtures: the packaged templates of every region of the shipped plans, built once per session.

Packaging runs offline: no AWS credentials (infra.build hands Chalice dummy ones and a dead endpoint), no AWS
call; Chalice's dependency cache (.chalice/deployments/) or pip's index provide the wheels.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import build


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, build.Package]:
    """region -> the packaged copy of Lifeboat (stage dev) for that region of the plans in plans/."""
    out = tmp_path_factory.mktemp("build")
    with pytest.MonkeyPatch.context() as env:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.delenv(key, raising=False)
        built = build.package("dev", out_dir=out)
    return {p.region: p for p in built}


@pytest.fixture(scope="session")
def templates(packages: dict[str, build.Package]) -> dict[str, dict[str, Any]]:
    return {region: p.template() for region, p in packages.items()}


@pytest.fixture(scope="session")
def plans() -> list[Any]:
    return build.load_plans(build.ROOT / "plans")


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


@pytest.fixture
def dump(tmp_path: Path) -> Iterator[Any]:
    def write(data: Any, name: str = "t.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return path

    yield write
