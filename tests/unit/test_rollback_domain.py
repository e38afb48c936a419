"""Which registry version a model rollback deploys, and every refusal (domain/rollback.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.rollback import (
    RollbackRefusal,
    choose_target,
    deployed_version,
    poll_interval,
    resource_name,
)
from chalicelib.models.rollback import Deployed, RegistryVersion


def v(version: str, order: int, *, approved: bool = True, status: str | None = None) -> RegistryVersion:
    return RegistryVersion(
        version=version,
        approved=approved,
        status=status or ("Approved" if approved else "Rejected"),
        order=order,
        artifact=f"s3://models-use1/models/fraud-scorer/{version}/model.json",
        sha256=f"{order:064x}",
        package=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud-scorer/{order}",
    )


REGISTRY = [
    v("1.0.0", 1),
    v("1.1.0", 2, approved=False, status="PendingManualApproval"),
    v("1.2.0", 3),
    v("2.0.0", 4),
]


def serving(version: RegistryVersion) -> Deployed:
    return Deployed(version=version.version, sha256=version.sha256)


def test_by_default_the_endpoint_gets_the_approved_version_before_the_one_it_serves() -> None:
    # Given the endpoint serves 2.0.0
    # When the operator rolls back without naming a version
    now, target = choose_target(REGISTRY, serving(REGISTRY[3]))
    # Then it gets 1.2.0, the newest approved version registered before 2.0.0
    assert (now and now.version, target.version) == ("2.0.0", "1.2.0")


def test_an_unapproved_version_in_between_is_skipped() -> None:
    _, target = choose_target(REGISTRY, serving(REGISTRY[2]))
    assert target.version == "1.0.0"


def test_the_deployed_version_is_recognised_by_its_package_across_regions_and_by_its_artifact_key() -> None:
    # Given the secondary's endpoint names the package by its own region's ARN
    other_region = Deployed(package="arn:aws:sagemaker:us-west-2:123456789012:model-package/fraud-scorer/3")
    assert deployed_version(REGISTRY, other_region) == REGISTRY[2]
    # And a model naming only its model data in the replica bucket
    replica = Deployed(artifact="s3://models-usw2/models/fraud-scorer/1.2.0/model.json")
    assert deployed_version(REGISTRY, replica) == REGISTRY[2]


def test_a_named_approved_version_is_deployed() -> None:
    _, target = choose_target(REGISTRY, serving(REGISTRY[3]), to_version="1.0.0")
    assert target.version == "1.0.0"


def test_latest_redeploys_the_newest_approved_version_on_an_endpoint_that_cannot_say_what_it_serves() -> None:
    # Given the primary's model server is down (restore primary before a failback)
    down = Deployed(error="OSError: connection refused")
    # When the newest approved version is asked for
    now, target = choose_target(REGISTRY, down, latest=True)
    # Then it is deployed, whatever the endpoint served
    assert now is None and target.version == "2.0.0"


@pytest.mark.parametrize(
    ("current", "options", "message"),
    [
        (serving(REGISTRY[0]), {}, "no approved version before 1.0.0"),
        (serving(REGISTRY[3]), {"to_version": "9.9.9"}, "no version '9.9.9'"),
        (serving(REGISTRY[3]), {"to_version": "1.1.0"}, "1.1.0 is not approved (PendingManualApproval)"),
        (serving(REGISTRY[3]), {"to_version": "2.0.0"}, "2.0.0 is already deployed"),
        (serving(REGISTRY[3]), {"latest": True}, "2.0.0 is already deployed"),
        (Deployed(error="OSError: refused"), {}, "cannot tell which registry version"),
        (Deployed(version="0.1", sha256="f" * 64), {}, "not a version of the registry"),
        (serving(REGISTRY[3]), {"to_version": "1.0.0", "latest": True}, "not both"),
    ],
)
def test_a_rollback_that_cannot_run_as_asked_is_refused_with_the_reason(
    current: Deployed, options: dict[str, object], message: str
) -> None:
    with pytest.raises(RollbackRefusal, match=message.replace("(", r"\(").replace(")", r"\)")):
        choose_target(REGISTRY, current, **options)  # type: ignore[arg-type]


def test_an_empty_registry_has_nothing_to_deploy() -> None:
    with pytest.raises(RollbackRefusal, match="no approved version to deploy"):
        choose_target([v("1.0.0", 1, approved=False)], Deployed(error="down"), latest=True)


def test_names_of_new_sagemaker_resources_are_valid_and_bounded() -> None:
    name = resource_name("a" * 70, "1.2.0+build.7", datetime(2026, 12, 2, 11, 0, 5, tzinfo=UTC))
    assert len(name) <= 63 and name.endswith("-v1-2-0-build-7-20261202T110005")
    assert all(c.isalnum() or c == "-" for c in name)


def test_an_updating_endpoint_is_looked_at_less_and_less_often() -> None:
    assert [poll_interval(n) for n in range(5)] == [5, 10, 20, 30, 30]
