"""cfn-lint, checkov and asl-validator on the packaged templates (dev, every region; prod, its failover
region): nothing reported that is not fixed or explained in infra/checks.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from infra import build, checks


@pytest.fixture(scope="module")
def every_package(packages: dict[str, build.Package], prod_package: build.Package) -> list[build.Package]:
    return [*packages.values(), prod_package]


@pytest.fixture(scope="module")
def asl_validator() -> None:
    try:  # `make setup` installs it; a bare `pytest` run installs it once here
        found = checks.install_asl_validator()
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"asl-validator could not be installed in {checks.ASL_VALIDATOR_DIR} (needs npm): {exc}")
    if found is None:
        pytest.skip("npm not found: asl-validator (npm package) not run; install Node.js to run it")


@pytest.fixture(scope="module")
def checkov_installed() -> None:
    if checks.CHECKOV.exists():
        return
    try:  # `make setup` installs it; a bare `pytest` run installs it once here
        checks.install_checkov()
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"checkov could not be installed in {checks.CHECKOV_VENV} (needs PyPI): {exc}")


def test_cfn_lint_reports_nothing(every_package: list[build.Package]) -> None:
    # When cfn-lint (which also validates the state machine definitions) checks every packaged template
    matches = checks.cfn_lint(*(p.template_path for p in every_package))
    # Then it has no error, no warning and no informational finding but the known gaps of its schemas
    templates = {str(p.template_path): p.template() for p in every_package}
    assert checks.lint_unexplained(matches, templates) == []


def test_asl_validator_finds_every_generated_definition_valid(
    every_package: list[build.Package], asl_validator: None, tmp_path: Path
) -> None:
    checked = 0
    for package in every_package:
        # Given every state machine of the template, substitutions resolved to Lambda ARNs
        for logical_id, definition in checks.state_machine_definitions(package.template()).items():
            path = tmp_path / f"{package.stage}-{package.region}-{logical_id}.json"
            path.write_text(definition)
            # Then asl-validator has nothing to say about it
            assert checks.asl_validate(path) == [], (package.stage, package.region, logical_id)
            checked += 1
    assert checked >= 4


def test_asl_validator_catches_a_broken_definition(
    packages: dict[str, build.Package], asl_validator: None, tmp_path: Path
) -> None:
    # Given a generated definition with a transition to a state that does not exist
    template = next(iter(packages.values())).template()
    definition = json.loads(next(iter(checks.state_machine_definitions(template).values())))
    first = definition["States"][definition["StartAt"]]
    first.pop("End", None)
    first["Next"] = "NoSuchState"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(definition))
    # Then it is reported, naming the missing state
    assert any("NoSuchState" in finding for finding in checks.asl_validate(path))


def test_known_cfn_lint_gaps_are_narrow() -> None:
    # Given a Succeed state with OutputPath and a Task state with a misspelt field
    template = {"R": {"Definition": {"States": {"Done": {"Type": "Succeed"}, "T": {"Type": "Task"}}}}}
    match = {"Rule": {"Id": "E3601"}, "Message": "'OutputPath' was unexpected", "Filename": "f"}
    succeed = {**match, "Location": {"Path": ["R", "Definition", "States", "Done", "OutputPath"]}}
    task = {**match, "Location": {"Path": ["R", "Definition", "States", "T", "OutputPath"]}}
    # Then only the Succeed finding is explained away
    assert checks.lint_unexplained([succeed, task], {"f": template}) == [
        ("E3601", "'OutputPath' was unexpected", ["R", "Definition", "States", "T", "OutputPath"], "f")
    ]


def test_checkov_findings_are_all_fixed_or_explained(
    every_package: list[build.Package], checkov_installed: None
) -> None:
    for package in every_package:
        # When checkov checks the template (offline)
        findings = checks.checkov(package.template_path)
        # Then every failed check is one the suppression list explains for that kind of resource
        unexplained = checks.unexplained(findings, package.template())
        assert [(f.check, f.resource, f.message) for f in unexplained] == [], (package.stage, package.region)


def test_every_suppression_says_why() -> None:
    for check, suppression in checks.SUPPRESSIONS.items():
        assert check.startswith("CKV_") and len(suppression.reason) > 80, check
        assert suppression.types, check
    for gap in checks.CFN_LINT_GAPS:
        assert len(gap.reason) > 80, gap.rule
    for rule, reason in {**checks.ASL_VALIDATOR_GAPS, **checks.IAM_EXCEPTIONS}.items():
        assert len(reason) > 80, rule
    # And one command lists them all, each with its reason
    explained = checks.explain()
    for text in (*checks.SUPPRESSIONS, *(g.reason for g in checks.CFN_LINT_GAPS), *checks.IAM_EXCEPTIONS):
        assert text in explained


def test_reserved_concurrency_is_accepted_only_where_the_function_has_none() -> None:
    # Given checkov's reserved-concurrency finding on a function with and one without a reservation
    rule = checks.SUPPRESSIONS["CKV_AWS_115"]
    reserved = {"Type": "AWS::Serverless::Function", "Properties": {"ReservedConcurrentExecutions": 5}}
    # Then only the one without is explained away
    assert rule.applies({"Type": "AWS::Serverless::Function", "Properties": {}})
    assert not rule.applies(reserved)
