"""Plans written by hand, wrongly: misspelt regions, one workload in two files, a missing section, YAML that
does not parse. Each is refused with a message a plan author can act on, at the line to look at."""

from __future__ import annotations

import json
import re
from pathlib import Path

import botocore.loaders
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.plan_store import BrokenPlans, DirectoryPlanStore
from chalicelib.models.aws_regions import ALL_REGIONS, REGIONS
from chalicelib.models.plan import region_problem
from chalicelib.models.planfile import PlanError, check_plan_files, load_plan_text, load_plans
from lifeboat_cli import regions as regions_cli
from tests.unit.test_planfile import MINIMAL, SOURCE, edit, line_of, problems_of

ROOT = Path(__file__).resolve().parents[2]


# -- regions --------------------------------------------------------------------------------------------
def test_the_region_list_is_botocores() -> None:
    # Given the regions botocore's endpoints data lists (what get_available_regions reads)
    data = botocore.loaders.create_loader().load_data("endpoints")
    botocore_regions = {p["partition"]: tuple(sorted(p["regions"])) for p in data["partitions"]}
    # Then the generated module lists exactly those (regenerate: python -m lifeboat_cli.regions)
    assert botocore_regions == REGIONS
    assert regions_cli.main(["--check"]) == 0


@pytest.mark.parametrize(
    ("written", "suggested"),
    [
        ("us-west-3", "us-west-2"),
        ("us-wset-2", "us-west-2"),
        ("eu-cental-1", "eu-central-1"),
        ("US-EAST-1", "us-east-1"),
        ("apsoutheast-2", "ap-southeast-2"),
    ],
)
def test_an_unknown_or_misspelt_region_is_refused_with_a_suggestion(written: str, suggested: str) -> None:
    # Given a plan whose secondary region is misspelt
    text = edit("secondary: us-west-2", f"secondary: {written}")
    # When it is loaded / Then the region's line says it is unknown and suggests the likely one
    (problem,) = problems_of(text)
    assert problem.startswith(f"{SOURCE}:{line_of(text, written)} regions.secondary: unknown AWS region")
    assert f"did you mean {suggested}" in problem


@pytest.mark.parametrize("where", ["trigger.alarm_regions", "traffic.region"])
def test_every_region_field_is_checked(where: str) -> None:
    if where == "traffic.region":
        text = edit(
            "traffic:\n  kind: route53-weighted\n  hosted_zone_name: lifeboat.internal.\n"
            "  record_name: fraud.lifeboat.internal.\n  set_identifiers: {primary: use1, secondary: usw2}\n",
            "traffic:\n  kind: sagemaker-variants\n  endpoint_name: fraud\n  region: us-wset-2\n"
            "  variants: {primary: a, secondary: b}\n",
        )
    else:
        text = edit("  quorum: 2\n", "  quorum: 2\n  alarm_regions: {canary: us-wset-2}\n")
    assert any("unknown AWS region 'us-wset-2'" in p for p in problems_of(text))


@given(st.sampled_from(sorted(ALL_REGIONS)))
def test_every_region_botocore_knows_is_accepted(region: str) -> None:
    assert region_problem(region) is None


@given(st.text(max_size=30))
def test_any_text_is_a_known_region_or_a_reason(name: str) -> None:
    problem = region_problem(name)
    assert (problem is None) == (name in ALL_REGIONS)
    if problem is not None:
        assert problem.startswith("unknown AWS region")


# -- one workload, two files ----------------------------------------------------------------------------
def test_the_same_workload_in_two_plan_files_is_an_error_naming_both(tmp_path: Path) -> None:
    # Given two plan files for one workload (a copy kept next to the original)
    first, second = tmp_path / "fraud.yaml", tmp_path / "fraud-copy.yaml"
    first.write_text(MINIMAL)
    second.write_text("# an old copy\n" + MINIMAL)
    # When they are checked together
    checked = check_plan_files([first, second])
    # Then the first loads, and the second is refused at its workload line, naming the first file
    assert checked[0].plan is not None and checked[0].problems == []
    (problem,) = checked[1].problems
    assert (problem.source, problem.line, problem.field) == (str(second), 3, "workload")
    assert f"also declared by {first}:2" in problem.message
    # And every reader of a plan folder refuses the pair (the local cloud, the CLI's store, the build)
    with pytest.raises(BrokenPlans) as err:
        DirectoryPlanStore(tmp_path).all()
    assert str(first) in str(err.value) and str(second) in str(err.value)


def test_plans_of_different_workloads_load_together() -> None:
    other = MINIMAL.replace("workload: fraud-scoring", "workload: churn-model")
    plans = load_plans([("a.yaml", MINIMAL), ("b.yaml", other)])
    assert [p.workload for p in plans] == ["fraud-scoring", "churn-model"]


def test_a_broken_file_and_a_duplicate_are_reported_together(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as err:
        load_plans([("a.yaml", MINIMAL), ("b.yaml", "tier: [\n"), ("c.yaml", MINIMAL)])
    assert [p.source for p in err.value.problems] == ["b.yaml", "c.yaml"]


# -- missing sections -----------------------------------------------------------------------------------
def test_a_missing_top_level_section_is_reported_for_the_file_with_its_shape() -> None:
    # Given a plan without its trigger section
    start = MINIMAL.index("trigger:")
    text = MINIMAL[:start] + MINIMAL[MINIMAL.index("failback:") :]
    # When it is loaded
    with pytest.raises(PlanError) as err:
        load_plan_text(text, SOURCE)
    # Then the problem is the file's (no line: certainly not version's), and says what the section holds
    (problem,) = err.value.problems
    assert (problem.line, problem.field) == (None, "trigger")
    assert problem.message.startswith("required field is missing; expected a mapping with alarms")
    assert "(optional: quorum, sustain, cooldown" in problem.message


def test_a_missing_nested_section_is_reported_at_its_parents_line() -> None:
    # Given a plan whose smoke tests lack their cases
    text = MINIMAL[: MINIMAL.index("  cases:")] + MINIMAL[MINIMAL.index("assets:") :]
    (problem,) = problems_of(text)
    # Then it is reported at the smoke_tests line, the parent the author wrote
    assert problem.startswith(f"{SOURCE}:{line_of(text, 'smoke_tests:')} smoke_tests.cases: required field")


def test_a_missing_nested_mapping_names_its_keys() -> None:
    text = edit("  set_identifiers: {primary: use1, secondary: usw2}\n", "")
    (problem,) = problems_of(text)
    assert (
        f"{SOURCE}:{line_of(text, 'traffic:')} traffic.set_identifiers: required field is missing" in problem
    )
    assert "expected a mapping with primary, secondary" in problem


# -- YAML that does not parse ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "at", "column", "words"),
    [
        ("tier: critical", "tier:\tcritical", "tier:", 6, "a tab character: YAML indents with spaces only"),
        ("tier: critical", "tier: 'critical", "tier:", None, "quoted text opened on line"),
        ("  quorum: 2", "   quorum: 2", "quorum:", None, "not indented like the keys of the mapping"),
        ("tier: critical", "tier: critical: yes", "tier:", 15, "a ':' where a value was expected"),
        ("  sustain: 20s", "  sustain: *missing", "sustain:", 12, "*missing refers to no anchor &missing"),
        ("  quorum: 2", "  quorum: @two", "quorum:", 11, "'@' cannot start a value: put the value in quotes"),
        ('url: "http://127.0.0.1:18081/invocations"', 'url: "http://x\\q"', "url:", None, "\\q"),
    ],
)
def test_yaml_errors_are_said_in_plain_words_with_line_and_column(
    old: str, new: str, at: str, column: int | None, words: str
) -> None:
    text = edit(old, new)
    with pytest.raises(PlanError) as err:
        load_plan_text(text, SOURCE)
    (problem,) = err.value.problems
    assert problem.message.startswith("invalid YAML: ") and words in problem.message, problem.message
    assert problem.line is not None and problem.column is not None
    if column is not None:
        assert (problem.line, problem.column) == (line_of(text, at), column)
    assert str(problem).startswith(f"{SOURCE}:{problem.line}:{problem.column}: invalid YAML")


JARGON = re.compile(r"<(scalar|block end|block mapping start|block sequence start|stream end|key|value)>")
YAML_TOKENS = [*"abkqv01239.:-_ \n\t[]{},&*!#'\"|>?%@<~", "  ", "\n  ", ": ", "- ", "version", "kind", "tier"]


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(YAML_TOKENS), max_size=80).map("".join))
def test_no_yaml_error_speaks_parser_jargon(text: str) -> None:
    # Given any YAML-ish text / When it does not parse / Then the message names no parser token
    try:
        load_plan_text(text, "fuzz.yaml")
    except PlanError as err:
        for problem in err.problems:
            if problem.message.startswith("invalid YAML"):
                assert not JARGON.search(problem.message), problem.message
                assert problem.line is not None


def test_the_cli_validates_files_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lifeboat_cli.main import main

    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(MINIMAL)
    second.write_text(MINIMAL)
    # When both are validated / Then the second is invalid, naming the first, and the exit code says so
    assert main(["--json", "plan", "validate", str(first), str(second)]) == 2
    results = json.loads(capsys.readouterr().out)
    assert [r["valid"] for r in results] == [True, False]
    assert f"also declared by {first}" in results[1]["problems"][0]
