"""cfn-lint and checkov on the packaged templates: nothing reported that is not fixed or explained."""

from __future__ import annotations

import subprocess

import pytest

from infra import build, checks


@pytest.fixture(scope="module")
def checkov_installed() -> None:
    if checks.CHECKOV.exists():
        return
    try:  # `make setup` installs it; a bare `pytest` run installs it once here
        checks.install_checkov()
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"checkov could not be installed in {checks.CHECKOV_VENV} (needs PyPI): {exc}")


def test_cfn_lint_reports_nothing(packages: dict[str, build.Package]) -> None:
    # When cfn-lint (which also validates the state machine definitions) checks every region's template
    matches = checks.cfn_lint(*(p.template_path for p in packages.values()))
    # Then it has no error, no warning and no informational finding but the known gaps of its schemas
    templates = {str(p.template_path): p.template() for p in packages.values()}
    assert checks.lint_unexplained(matches, templates) == []


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
    packages: dict[str, build.Package], checkov_installed: None
) -> None:
    for region, package in packages.items():
        # When checkov checks the template (offline)
        findings = checks.checkov(package.template_path)
        # Then every failed check is one the suppression list explains for that kind of resource
        unexplained = checks.unexplained(findings, package.template())
        assert [(f.check, f.resource, f.message) for f in unexplained] == [], region


def test_every_suppression_says_why() -> None:
    for check, suppression in checks.SUPPRESSIONS.items():
        assert check.startswith("CKV_") and len(suppression.reason) > 80, check
        assert suppression.types, check
