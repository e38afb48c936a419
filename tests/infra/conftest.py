"""Infra fixtures, built once per session: the shipped plans' dev copy packaged for every region, the prod
copy packaged for its failover region, and the merge templates of every stage rendered for every region.

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
from infra.template import render

STAGES = ("dev", "prod")
# Outside dev, a hosted zone a plan names by name only needs its id at package time (docs/deploy.md).
HOSTED_ZONES: dict[str, dict[str, str]] = {"prod": {"lifeboat.internal.": "Z0123456789ABCDEFGHIJ"}}
PROD_REGION = "us-west-2"  # the copy that runs the shipped plan's failover


def _package(stage: str, out: Path, regions: list[str] | None = None) -> list[build.Package]:
    with pytest.MonkeyPatch.context() as env:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.delenv(key, raising=False)
        return build.package(stage, out_dir=out, regions=regions, hosted_zones=HOSTED_ZONES.get(stage))


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, build.Package]:
    """region -> the packaged copy of Lifeboat (stage dev) for that region of the plans in plans/."""
    return {p.region: p for p in _package("dev", tmp_path_factory.mktemp("build"))}


@pytest.fixture(scope="session")
def prod_package(tmp_path_factory: pytest.TempPathFactory) -> build.Package:
    """The prod copy of the failover region, packaged once (`chalice package` is the slow part; the
    rendered templates of every stage and region are checked in test_stages.py)."""
    (package,) = _package("prod", tmp_path_factory.mktemp("build-prod"), [PROD_REGION])
    return package


@pytest.fixture(scope="session", params=STAGES)
def stage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def rendered(stage: str, plans: list[Any]) -> dict[str, dict[str, Any]]:
    """region -> the merge template of `stage` (rendered only: the app imported for that stage)."""
    app = build.load_app(stage)
    return {
        t.region: render(app, plans, t)
        for t in build.targets(plans, stage, None, None, HOSTED_ZONES.get(stage))
    }


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
