"""Loading plans from YAML: the shipped example, round trips, and errors that point at the right line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.models.plan import DRPlan, HttpEndpoint, ModelRegistryAsset, S3Asset
from chalicelib.models.planfile import (
    MAX_PLAN_BYTES,
    PlanError,
    PlanProblem,
    load_plan_file,
    load_plan_text,
    plan_to_yaml,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml"
SOURCE = "plans/fraud.yaml"

MINIMAL = """\
version: 1
workload: fraud-scoring
tier: critical
regions:
  primary: us-east-1
  secondary: us-west-2
endpoints:
  primary: {kind: http, url: "http://127.0.0.1:18081/invocations"}
  secondary:
    kind: sagemaker
    endpoint_name: fraud-scorer
traffic:
  kind: route53-weighted
  hosted_zone_name: lifeboat.internal.
  record_name: fraud.lifeboat.internal.
  set_identifiers: {primary: use1, secondary: usw2}
smoke_tests:
  latency_budget_p95_ms: 300
  cases:
    - name: clear-fraud
      payload: {features: {amount: 2450.0}}
      expect:
        field: score
        value: 0.9
        tolerance: 0.05
    - name: label
      payload: {features: {amount: 2450.0}}
      expect:
        field: label
        equals: fraud
assets:
  - name: training-data
    kind: s3
    source: {bucket: fraud-data-use1, prefix: datasets/}
    replica: {bucket: fraud-data-usw2, prefix: datasets/}
trigger:
  alarms: [errors, latency, canary]
  quorum: 2
  sustain: 20s
failback:
  steps: [10, 25, 50, 100]
notifications:
  topic: lifeboat-fraud-scoring
"""


def edit(old: str, new: str, text: str = MINIMAL) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once"
    return text.replace(old, new)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing `needle`: what an author sees in the editor."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def problems_of(text: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan_text(text, SOURCE)
    return [str(problem) for problem in caught.value.problems]


# -- the shipped example


def test_the_shipped_example_loads_with_the_demo_values():
    # Given the example plan the local-cloud demo runs
    # When it is loaded from its file
    plan = load_plan_file(EXAMPLE)

    # Then it holds the values the demo depends on
    assert (plan.workload, plan.tier, plan.rpo, plan.rto) == (
        "fraud-scoring",
        "critical",
        timedelta(minutes=1),
        timedelta(minutes=5),
    )
    assert (plan.region_of("primary"), plan.region_of("secondary")) == ("us-east-1", "us-west-2")
    # (local model servers on any free port: the local cloud puts each on the port it got)
    for role in ("primary", "secondary"):
        assert plan.endpoint_for(role) == HttpEndpoint(kind="http", url="http://127.0.0.1:0/invocations")
    assert plan.traffic.kind == "route53-weighted"
    assert plan.traffic.hosted_zone_name == "lifeboat.internal."
    assert plan.traffic.record_name == "fraud.lifeboat.internal."
    assert plan.traffic.record_type == "CNAME"
    assert plan.traffic.set_identifiers.primary == "fraud-scoring-us-east-1"
    assert plan.traffic.set_identifiers.secondary == "fraud-scoring-us-west-2"
    assert plan.traffic.ttl == timedelta(seconds=30)
    assert plan.smoke_tests.latency_budget_p95_ms == 300
    cases = plan.smoke_tests.cases
    assert len(cases) == 4
    assert [c.expect.field for c in cases] == ["score", "score", "score", "label"]
    assert all(c.expect.tolerance == 0.01 for c in cases[:3])
    assert cases[3].expect.equals == "fraud" and not cases[3].expect.is_numeric
    for case in cases:
        assert set(case.payload["features"]) == {"amount", "merchant_risk", "foreign", "night", "velocity"}
    assert [a.name for a in plan.assets] == ["training-data", "model-artifacts", "fraud-model", "features"]
    assert plan.asset_rpo("training-data") == timedelta(minutes=15)
    assert plan.asset_rpo("model-artifacts") == timedelta(minutes=1)
    assert plan.asset_rpo("features") == timedelta(minutes=5)
    registry = plan.asset("fraud-model")
    assert isinstance(registry, ModelRegistryAsset) and registry.registry == "s3-manifest"
    assert plan.trigger.alarms == [
        "fraud-scoring-use1-errors",
        "fraud-scoring-use1-latency",
        "fraud-scoring-use1-canary",
    ]
    assert (plan.trigger.quorum, plan.trigger.sustain, plan.trigger.cooldown) == (
        2,
        timedelta(seconds=20),
        timedelta(minutes=10),
    )
    assert plan.failover.mode == "graceful"
    assert plan.failover.replication_wait_timeout == timedelta(minutes=1)
    assert plan.failback.steps == [10, 25, 50, 100]
    assert plan.failback.bake == timedelta(minutes=1)
    assert plan.failback.gate_alarms == ["fraud-scoring-use1-errors", "fraud-scoring-use1-latency"]
    assert plan.failback.approval_required is False
    assert plan.failback.healthy_window == timedelta(minutes=5)
    assert plan.notifications.topic == "lifeboat-fraud-scoring"


@pytest.mark.parametrize("text", [EXAMPLE.read_text(encoding="utf-8"), MINIMAL], ids=["example", "minimal"])
def test_plan_to_yaml_round_trips(text):
    # Given a loaded plan
    plan = load_plan_text(text)

    # When it is written as YAML and loaded again
    again = load_plan_text(plan_to_yaml(plan))

    # Then it is the same plan, with durations still written the way authors write them
    assert again == plan
    assert "sustain: 20s" in plan_to_yaml(plan)


def test_plan_to_yaml_round_trips_plans_built_in_code():
    # Given a plan built from a full JSON dump (every default spelled out, equals: null included)
    plan = load_plan_text(edit("equals: fraud", "equals: null"))
    rebuilt = DRPlan.model_validate(plan.model_dump(mode="json"))

    # When it is written as YAML and loaded again
    # Then it is the same plan
    assert load_plan_text(plan_to_yaml(rebuilt)) == rebuilt == plan


def test_errors_name_the_file_as_given(tmp_path: Path):
    # Given a plan file with a mistake
    path = tmp_path / "bad.yaml"
    path.write_text(edit("tier: critical", "tier: urgent"), encoding="utf-8")

    # When it is loaded
    with pytest.raises(PlanError) as caught:
        load_plan_file(str(path))

    # Then the problem names the path as given and the line
    assert str(caught.value.problems[0]) == (
        f"{path}:3 tier: expected one of: critical, standard, batch (got 'urgent')"
    )


def test_unreadable_files_are_plan_errors(tmp_path: Path):
    # Given a missing file and a file that is not UTF-8
    missing = tmp_path / "missing.yaml"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"version: 1\nworkload: \xff\xfe\n")

    # Then both are PlanErrors the CLI can print
    with pytest.raises(PlanError) as caught:
        load_plan_file(missing)
    assert str(caught.value.problems[0]) == f"{missing}: cannot read the file: No such file or directory"
    with pytest.raises(PlanError) as caught:
        load_plan_file(binary)
    assert str(caught.value.problems[0]) == f"{binary}:2: the file is not UTF-8 text"


# -- errors, with exact messages and lines


def mistake(name: str, text: str, needle: str, expected: str, occurrence: int = 1):
    """A broken plan, text on the line the problem must point at (n-th match), and the expected problem."""
    return pytest.param(text, f"{SOURCE}:{line_of(text, needle, occurrence)} {expected}", id=name)


ERROR_CASES = [
    mistake(
        "typo",
        edit("  quorum: 2", "  quorom: 2"),
        "quorom:",
        "trigger.quorom: unknown key (typo?); expected one of: alarms, quorum, sustain, cooldown, "
        "confirmation_probe, alarm_regions",
    ),
    mistake(
        "wrong type",
        edit("  quorum: 2", "  quorum: two"),
        "quorum:",
        "trigger.quorum: expected a whole number (got 'two')",
    ),
    mistake(
        "negative tolerance",
        edit("tolerance: 0.05", "tolerance: -0.05"),
        "tolerance:",
        "smoke_tests.cases[0].expect.tolerance: must be >= 0",
    ),
    mistake(
        "missing required field",
        edit("  record_name: fraud.lifeboat.internal.\n", ""),
        "traffic:",
        "traffic.record_name: required field is missing",
    ),
    mistake(
        "quorum above alarms",
        edit("  quorum: 2", "  quorum: 4"),
        "quorum:",
        "trigger.quorum: quorum 4 is more than the 3 alarm(s) listed; it must be between 1 and 3",
    ),
    mistake(
        "steps not increasing",
        edit("steps: [10, 25, 50, 100]", "steps: [10, 50, 25, 100]"),
        "steps:",
        "failback.steps[2]: steps must increase strictly (got 50 then 25)",
    ),
    mistake(
        "steps not ending at 100",
        edit("steps: [10, 25, 50, 100]", "steps:\n    - 10\n    - 50"),
        "- 50",
        "failback.steps[1]: the last step must be 100 so all traffic returns to the primary (got 50)",
    ),
    mistake(
        "step out of range",
        edit("steps: [10, 25, 50, 100]", "steps: [10, 250, 100]"),
        "steps:",
        "failback.steps[1]: must be <= 100",
    ),
    mistake(
        "bad duration",
        edit("sustain: 20s", "sustain: 20 seconds"),
        "sustain:",
        "trigger.sustain: expected a duration such as 30s, 5m, 1h (got '20 seconds')",
    ),
    mistake(
        "value and equals",
        edit("        equals: fraud\n", "        equals: fraud\n        value: 1\n"),
        "equals: fraud",
        "smoke_tests.cases[1].expect.equals: give either value (with tolerance) or equals, not both",
    ),
    mistake(
        "hosted zone id and name",
        edit("  hosted_zone_name: lifeboat.internal.\n", "  hosted_zone_id: Z123\n  hosted_zone_name: x.\n"),
        "hosted_zone_name:",
        "traffic.hosted_zone_name: give either hosted_zone_id or hosted_zone_name, not both",
    ),
    mistake(
        "no hosted zone",
        edit("  hosted_zone_name: lifeboat.internal.\n", ""),
        "traffic:",
        "traffic: one of hosted_zone_id or hosted_zone_name is required",
    ),
    mistake(
        "unknown asset kind",
        edit("    kind: s3", "    kind: s4"),
        "kind: s4",
        "assets[0].kind: unknown kind 's4'; expected one of: s3, model-registry, dynamodb",
    ),
    mistake(
        "unknown traffic kind",
        edit("kind: route53-weighted", "kind: dns"),
        "kind: dns",
        "traffic.kind: unknown kind 'dns'; expected one of: route53-weighted, route53-failover, "
        "sagemaker-variants, arc-routing-control",
    ),
    mistake(
        "missing kind",
        edit("    kind: sagemaker\n", ""),
        "secondary:",
        "endpoints.secondary.kind: required field is missing; expected one of: http, sagemaker",
        2,
    ),
    mistake(
        "unknown key inside a kind",
        edit(
            "    endpoint_name: fraud-scorer\n", "    endpoint_name: fraud-scorer\n    variant: AllTraffic\n"
        ),
        "variant:",
        "endpoints.secondary.variant: unknown key (typo?); expected one of: kind, endpoint_name, "
        "variant_name",
    ),
    mistake(
        "missing field inside a kind",
        edit("    endpoint_name: fraud-scorer\n", ""),
        "secondary:",
        "endpoints.secondary.endpoint_name: required field is missing",
        2,
    ),
    mistake(
        "literal",
        edit("tier: critical", "tier: urgent"),
        "tier:",
        "tier: expected one of: critical, standard, batch (got 'urgent')",
    ),
    mistake("version", edit("version: 1", "version: 2"), "version:", "version: must be 1 (got 2)"),
    mistake(
        "region",
        edit("secondary: us-west-2", "secondary: uswest2"),
        "uswest2",
        "regions.secondary: unknown AWS region 'uswest2'; did you mean us-west-2, us-west-1 or us-east-2?",
    ),
    mistake(
        "same regions",
        edit("secondary: us-west-2", "secondary: us-east-1"),
        "secondary: us-east-1",
        "regions.secondary: must differ from the primary region (both are us-east-1); a DR plan needs two "
        "regions",
    ),
    mistake(
        "duplicate case",
        edit("    - name: label", "    - name: clear-fraud"),
        "name: clear-fraud",
        "smoke_tests.cases[1].name: smoke case name 'clear-fraud' is used more than once",
        2,
    ),
    mistake(
        "empty list",
        edit("alarms: [errors, latency, canary]", "alarms: []"),
        "alarms:",
        "trigger.alarms: must have at least 1 item(s)",
    ),
    mistake(
        "mapping expected",
        edit("  topic: lifeboat-fraud-scoring", "  - lifeboat-fraud-scoring"),
        "notifications:",
        "notifications: expected a mapping of key: value pairs (got a list)",
    ),
    mistake(
        "duplicate yaml key",
        edit("  quorum: 2\n", "  quorum: 2\n  quorum: 1\n"),
        "quorum: 1",
        f"trigger.quorum: duplicate key 'quorum' (first defined on line {line_of(MINIMAL, 'quorum: 2')})",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERROR_CASES)
def test_each_mistake_gets_one_exact_message_on_its_line(text, expected):
    # Given a plan with exactly one mistake
    # When it is loaded
    problems = problems_of(text)

    # Then there is one problem: the file, the author's line, the field path (no union tags), a human message
    assert problems == [expected]


def test_yaml_syntax_errors_point_at_the_yaml_line():
    # Given a plan with an unclosed flow sequence
    text = edit("alarms: [errors, latency, canary]", "alarms: [errors, latency, canary")

    # When it is loaded
    problems = problems_of(text)

    # Then the YAML parser's line and column are reported, in plain words, with where the list started
    assert problems == [
        f"{SOURCE}:{line_of(text, 'quorum:')}:9: invalid YAML: the list opened with '[' on line "
        f"{line_of(text, 'alarms:')} is not closed: expected ',' or ']' before ':'"
    ]


def test_all_problems_are_reported_together_in_file_order():
    # Given a plan with a wrong tier near the top and a typo near the bottom
    text = edit("  quorum: 2", "  quorom: 2", edit("tier: critical", "tier: urgent"))

    # When it is loaded
    with pytest.raises(PlanError) as caught:
        load_plan_text(text, SOURCE)

    # Then both are reported, first line prefixed with the count, in the order they appear in the file
    assert str(caught.value).splitlines() == [
        f"2 problems: {SOURCE}:3 tier: expected one of: critical, standard, batch (got 'urgent')",
        f"{SOURCE}:{line_of(text, 'quorom')} trigger.quorom: unknown key (typo?); expected one of: alarms, "
        "quorum, sustain, cooldown, confirmation_probe, alarm_regions",
    ]
    assert isinstance(caught.value, ValueError)


def test_problems_print_without_line_or_field_when_unknown():
    # Given problems with less information
    # Then they still read naturally
    assert str(PlanProblem(source="s.yaml", field="tier", message="m")) == "s.yaml tier: m"
    assert str(PlanProblem(source="s.yaml", line=3, message="m")) == "s.yaml:3: m"
    assert str(PlanError([PlanProblem(source="s", message="m")])) == "1 problem: s: m"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "<string>: the plan is empty; expected a mapping with version, workload, tier, ..."),
        (
            "# nothing yet\n",
            "<string>: the plan is empty; expected a mapping with version, workload, tier, ...",
        ),
        ("~\n", "<string>: the plan is empty; expected a mapping with version, workload, tier, ..."),
        (
            "- a\n- b\n",
            "<string>:1: the plan must be a mapping of keys such as version, workload, tier (got a list)",
        ),
        (
            "fraud",
            "<string>:1: the plan must be a mapping of keys such as version, workload, tier (got 'fraud')",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "<string>:2:1: invalid YAML: the file holds more than one YAML document ('---' separates them); "
            "a plan is one document",
        ),
        (
            "a: \x00\n",
            "<string>:1:4: invalid YAML: character #x0000 is not allowed "
            "(special characters are not allowed)",
        ),
        ("a: &a [*a]\n", "<string>:1 a[0]: recursive alias: a value contains itself"),
        (
            "x: !!int abc\n",
            "<string>:1: YAML value cannot be read: invalid literal for int() with base 10: 'abc'",
        ),
        ("[" * 3000 + "]" * 3000, "<string>: YAML is nested too deeply"),
    ],
)
def test_documents_that_are_not_a_plan_at_all(text, expected):
    # Given text that is not a mapping of plan keys
    # When it is loaded
    with pytest.raises(PlanError) as caught:
        load_plan_text(text)

    # Then the one problem says so plainly
    assert [str(p) for p in caught.value.problems] == [expected]


def test_alias_bombs_are_refused():
    # Given a small document whose aliases expand to billions of values
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    text = "\n".join(lines) + "\n"

    # When it is loaded
    # Then it is refused before anything is expanded
    problems = problems_of(text)
    assert len(problems) == 1
    assert "expands to more than 100000 values (too many aliases?)" in problems[0]


def test_oversized_documents_are_refused():
    # Given a plan padded beyond 1 MiB
    text = MINIMAL + "#" * MAX_PLAN_BYTES

    # When it is loaded
    # Then it is refused without being parsed
    assert problems_of(text) == [f"{SOURCE}: the plan is larger than 1024 KiB"]


def test_anchors_and_merge_keys_work_and_keep_lines():
    # Given a plan that reuses the trigger alarms and one endpoint definition through YAML anchors
    text = edit("alarms: [errors, latency, canary]", "alarms: &alarms [errors, latency, canary]")
    text = edit(
        '  primary: {kind: http, url: "http://127.0.0.1:18081/invocations"}',
        '  primary: &endpoint {kind: http, url: "http://127.0.0.1:18081/invocations"}',
        text,
    )
    text = edit(
        "  secondary:\n    kind: sagemaker\n    endpoint_name: fraud-scorer\n",
        "  secondary:\n    <<: *endpoint\n    url: http://127.0.0.1:18082/invocations\n",
        text,
    )
    text = edit("  steps: [10, 25, 50, 100]", "  steps: [10, 25, 50, 100]\n  gate_alarms: *alarms", text)

    # When it is loaded
    plan = load_plan_text(text)

    # Then the aliases resolve and explicit keys override merged ones
    assert plan.failback.gate_alarms == plan.trigger.alarms
    assert plan.endpoint_for("secondary") == HttpEndpoint(
        kind="http", url="http://127.0.0.1:18082/invocations"
    )

    # ... and a mistake in an overriding key is reported on its own line
    broken = edit("url: http://127.0.0.1:18082/invocations", "url: ftp://nowhere", text)
    assert problems_of(broken) == [
        f"{SOURCE}:{line_of(broken, 'ftp://')} endpoints.secondary.url: expected an http:// or https:// URL "
        "(got 'ftp://nowhere')"
    ]


def test_dates_in_payloads_stay_text():
    # Given a smoke-test payload with a date-like value (JSON has no dates)
    text = edit(
        "payload: {features: {amount: 2450.0}}",
        "payload: {day: 2024-01-31, amount: 1}",
        edit(
            "    - name: label\n      payload: {features: {amount: 2450.0}}",
            "    - name: label\n      payload: {}",
        ),
    )

    # When it is loaded
    plan = load_plan_text(text)

    # Then the value is the text the author wrote
    assert plan.smoke_tests.cases[0].payload == {"day": "2024-01-31", "amount": 1}


def test_s3_asset_roles_and_prefix_defaults():
    # Given the minimal plan's S3 asset (no role, no rpo)
    plan = load_plan_text(MINIMAL)
    (asset,) = plan.assets

    # Then the documented defaults apply
    assert isinstance(asset, S3Asset)
    assert (asset.role, asset.rpo, plan.asset_rpo(asset)) == ("other", None, timedelta(minutes=1))


# -- nothing but PlanError, whatever the input

# Fragments that mean something to YAML, so generated text exercises the parser and the validator, not
# just the "this is not YAML" path.
YAML_TOKENS = [*"abkqv01239.:-_ \n\t[]{},&*!#'\"|>?%@<~", "  ", "\n  ", ": ", "- ", "version", "kind", "tier"]
YAMLISH = st.lists(st.sampled_from(YAML_TOKENS), max_size=120).map("".join)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), YAMLISH))
def test_arbitrary_text_only_ever_raises_plan_error(text):
    # Given any text at all
    # When it is loaded as a plan
    # Then it is either a plan or a PlanError with at least one problem: never a crash with another exception
    try:
        load_plan_text(text, "fuzz.yaml")
    except PlanError as exc:
        assert exc.problems and all(p.source == "fuzz.yaml" for p in exc.problems)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=len(MINIMAL)),
    st.integers(min_value=0, max_value=40),
    st.one_of(YAMLISH, st.sampled_from(["-1", "null", "[]", "{}", "&x", "*x", "<<: *x", "!!str", "1e400"])),
)
def test_damaged_plans_only_ever_raise_plan_error(position, cut, insert):
    # Given the valid minimal plan with a piece cut out and something else pasted in
    text = MINIMAL[:position] + insert + MINIMAL[position + cut :]

    # When it is loaded
    # Then it is a plan or a PlanError whose lines are inside the document
    try:
        load_plan_text(text)
    except PlanError as exc:
        line_count = text.count("\n") + 1
        assert all(p.line is None or 1 <= p.line <= line_count for p in exc.problems)
