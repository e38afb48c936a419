"""The DR plan model: defaults, helpers and the cross-field rules, validated from plain dicts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

from chalicelib.models import plan as plan_module
from chalicelib.models.plan import (
    RULE_ERROR,
    DRPlan,
    DynamoDBAsset,
    HttpEndpoint,
    ModelRegistryAsset,
    Route53FailoverTraffic,
    S3Asset,
    SageMakerEndpoint,
    SageMakerVariantsTraffic,
    other_role,
)


def plan_dict(**overrides: Any) -> dict[str, Any]:
    """A small valid plan as the YAML loader would hand it over; keyword arguments replace top-level keys."""
    data: dict[str, Any] = {
        "version": 1,
        "workload": "fraud-scoring",
        "tier": "critical",
        "regions": {"primary": "us-east-1", "secondary": "us-west-2"},
        "endpoints": {
            "primary": {"kind": "http", "url": "http://127.0.0.1:18081/invocations"},
            "secondary": {"kind": "sagemaker", "endpoint_name": "fraud-scorer"},
        },
        "traffic": {
            "kind": "route53-weighted",
            "hosted_zone_name": "lifeboat.internal.",
            "record_name": "fraud.lifeboat.internal.",
            "set_identifiers": {"primary": "use1", "secondary": "usw2"},
        },
        "smoke_tests": {
            "latency_budget_p95_ms": 300,
            "cases": [{"name": "one", "payload": {"x": 1}, "expect": {"field": "score", "value": 0.5}}],
        },
        "assets": [
            {
                "name": "training-data",
                "kind": "s3",
                "source": {"bucket": "data-use1"},
                "replica": {"bucket": "data-usw2"},
                "rpo": "15m",
            },
            {"name": "features", "kind": "dynamodb", "table": "fraud-features"},
        ],
        "trigger": {"alarms": ["errors", "latency"], "quorum": 2},
        "notifications": {"topic": "lifeboat-fraud-scoring"},
    }
    data.update(overrides)
    return data


def rule_errors(data: dict[str, Any]) -> list[tuple[tuple, str, tuple]]:
    """(loc, message, at) of every error, so tests can assert where a rule points."""
    with pytest.raises(ValidationError) as caught:
        DRPlan.model_validate(data)
    return [
        (
            tuple(e["loc"]),
            e["msg"],
            tuple((e.get("ctx") or {}).get("at", ())) if e["type"] == RULE_ERROR else (),
        )
        for e in caught.value.errors()
    ]


# -- defaults and helpers


@pytest.mark.parametrize(
    ("tier", "rpo", "rto"),
    [
        ("critical", timedelta(minutes=1), timedelta(minutes=5)),
        ("standard", timedelta(minutes=15), timedelta(hours=1)),
        ("batch", timedelta(hours=24), timedelta(hours=24)),
    ],
)
def test_objectives_default_from_the_tier(tier, rpo, rto):
    # Given a plan that states no objectives
    plan = DRPlan.model_validate(plan_dict(tier=tier))

    # Then its effective RPO and RTO are the tier's
    assert (plan.rpo, plan.rto) == (rpo, rto)


def test_stated_objectives_override_the_tier_one_by_one():
    # Given a batch plan that states only its RTO
    plan = DRPlan.model_validate(plan_dict(tier="batch", objectives={"rto": "2h"}))

    # Then the RTO is the stated one and the RPO still comes from the tier
    assert plan.rto == timedelta(hours=2)
    assert plan.rpo == timedelta(hours=24)


def test_assets_inherit_the_plan_rpo_unless_they_override_it():
    # Given a critical plan whose training data may lag 15 minutes
    plan = DRPlan.model_validate(plan_dict())

    # Then that asset is held to 15m and the others to the plan's 1m, by object or by name
    assert plan.asset_rpo(plan.assets[0]) == timedelta(minutes=15)
    assert plan.asset_rpo("features") == timedelta(minutes=1)
    with pytest.raises(KeyError):
        plan.asset_rpo("no-such-asset")


def test_roles_map_to_regions_and_endpoints_both_ways():
    # Given a plan
    plan = DRPlan.model_validate(plan_dict())

    # Then every role has a region and an endpoint, and every plan region has a role
    assert plan.region_of("primary") == "us-east-1"
    assert plan.region_of("secondary") == "us-west-2"
    assert plan.role_of("us-west-2") == "secondary"
    assert isinstance(plan.endpoint_for("primary"), HttpEndpoint)
    assert isinstance(plan.endpoint_for("secondary"), SageMakerEndpoint)
    assert other_role("primary") == "secondary" and other_role("secondary") == "primary"


def test_a_region_outside_the_plan_has_no_role():
    # Given a plan in us-east-1 / us-west-2
    plan = DRPlan.model_validate(plan_dict())

    # When asked for the role of another region
    # Then the error names the region and the plan's regions
    with pytest.raises(ValueError, match="eu-west-1 is not a region of fraud-scoring"):
        plan.role_of("eu-west-1")


def test_policies_have_documented_defaults():
    # Given a plan that leaves failover, failback and most trigger settings out
    plan = DRPlan.model_validate(plan_dict())

    # Then the defaults documented in docs/plans.md apply
    assert plan.trigger.sustain == timedelta(0)
    assert plan.trigger.cooldown == timedelta(minutes=15)
    assert plan.trigger.confirmation_probe is True
    assert plan.failover.mode == "graceful"
    assert plan.failover.replication_wait_timeout == timedelta(minutes=5)
    assert plan.failback.steps == [10, 25, 50, 100]
    assert plan.failback.bake == timedelta(minutes=5)
    assert plan.failback.gate_alarms == []
    assert plan.failback.approval_required is True
    assert plan.failback.approval_timeout == timedelta(hours=1)
    assert plan.failback.auto is False
    assert plan.failback.healthy_window == timedelta(minutes=30)
    assert plan.traffic.record_type == "CNAME"
    assert plan.traffic.ttl == timedelta(seconds=60)
    assert plan.smoke_tests.request_timeout == timedelta(seconds=5)
    assert plan.smoke_tests.min_success_ratio == 1.0
    assert plan.assets[0].role == "other"
    assert plan.assets[0].source.prefix == ""


def test_kinds_select_the_right_model():
    # Given endpoints, traffic and assets of different kinds
    plan = DRPlan.model_validate(
        plan_dict(
            traffic={
                "kind": "route53-failover",
                "hosted_zone_id": "Z123ABC",
                "record_name": "fraud.example.com.",
                "set_identifiers": {"primary": "a", "secondary": "b"},
                "health_check_ids": {"primary": "hc-1"},
            },
            assets=[
                {
                    "name": "registry",
                    "kind": "model-registry",
                    "registry": "sagemaker",
                    "model_package_group": "fraud-scorer",
                },
                {
                    "name": "features",
                    "kind": "dynamodb",
                    "table": "fraud-features",
                    "replica_table": "ff-usw2",
                },
            ],
        )
    )

    # Then each is the model of its kind
    assert isinstance(plan.traffic, Route53FailoverTraffic)
    assert plan.traffic.health_check_ids.secondary is None
    assert isinstance(plan.assets[0], ModelRegistryAsset)
    assert isinstance(plan.assets[1], DynamoDBAsset)
    assert plan.assets[1].replica_table_name == "ff-usw2"


def test_plans_are_frozen():
    # Given a loaded plan
    plan = DRPlan.model_validate(plan_dict())

    # When code tries to change it
    # Then it cannot: every decision must see the plan as it was validated
    with pytest.raises(ValidationError):
        plan.tier = "batch"  # type: ignore[misc]


def test_json_round_trip_keeps_the_plan():
    # Given a plan (Step Functions and the ledger pass plans around as JSON)
    plan = DRPlan.model_validate(plan_dict())

    # When it goes to JSON and back
    # Then it is the same plan, and durations travel as text
    assert DRPlan.model_validate_json(plan.model_dump_json()) == plan
    assert plan.model_dump(mode="json")["assets"][0]["rpo"] == "15m"


def test_topic_names_expand_to_arns():
    # Given a topic name and a full ARN
    plan = DRPlan.model_validate(plan_dict())
    arn = "arn:aws:sns:us-east-1:123456789012:ops"
    full = DRPlan.model_validate(plan_dict(notifications={"topic": arn}))

    # Then the name expands in Lifeboat's region and account, and the ARN is kept
    assert plan.notifications.topic_arn("us-east-1", "123456789012") == (
        "arn:aws:sns:us-east-1:123456789012:lifeboat-fraud-scoring"
    )
    assert full.notifications.topic_arn("eu-west-1", "999999999999") == arn


def _models(root: type[BaseModel]) -> set[type[BaseModel]]:
    found, todo = set(), [root]
    while todo:
        model = todo.pop()
        if model in found:
            continue
        found.add(model)
        for field in model.model_fields.values():
            stack = [field.annotation]
            while stack:
                tp = stack.pop()
                if isinstance(tp, type) and issubclass(tp, BaseModel):
                    todo.append(tp)
                stack.extend(get_args(tp))
    return found


def test_every_field_is_described():
    # Given every model reachable from DRPlan (house style: Field descriptions feed docs and schemas)
    models = _models(DRPlan)

    # Then each field of each has a description, and unknown keys are refused everywhere
    assert len(models) >= 20
    undocumented = [
        f"{m.__name__}.{n}" for m in models for n, f in m.model_fields.items() if not f.description
    ]
    assert undocumented == []
    assert all(m.model_config.get("extra") == "forbid" for m in models)


# -- rules


def test_regions_must_differ():
    # Given a plan whose secondary region is its primary region
    errors = rule_errors(plan_dict(regions={"primary": "us-east-1", "secondary": "us-east-1"}))

    # Then the rule points at regions.secondary
    assert errors == [
        (
            ("regions",),
            "must differ from the primary region (both are us-east-1); a DR plan needs two regions",
            ("secondary",),
        )
    ]


def test_rto_must_be_positive():
    # Given an RTO of zero
    errors = rule_errors(plan_dict(objectives={"rto": "0s"}))

    # Then it is refused on the rto field
    assert errors == [(("objectives", "rto"), "Value error, must be longer than 0s", ())]


def test_quorum_cannot_exceed_the_alarms():
    # Given 3 of 2 alarms
    errors = rule_errors(plan_dict(trigger={"alarms": ["a", "b"], "quorum": 3}))

    # Then the message says what the range is
    assert errors == [
        (
            ("trigger",),
            "quorum 3 is more than the 2 alarm(s) listed; it must be between 1 and 2",
            ("quorum",),
        )
    ]


def test_alarms_must_be_unique():
    # Given an alarm listed twice
    errors = rule_errors(plan_dict(trigger={"alarms": ["a", "b", "a"], "quorum": 2}))

    # Then the duplicate is named and located
    assert errors == [(("trigger",), "alarm 'a' is listed more than once", ("alarms", 2))]


@pytest.mark.parametrize(
    ("steps", "message", "at"),
    [
        ([10, 50, 25, 100], "steps must increase strictly (got 50 then 25)", ("steps", 2)),
        ([10, 10, 100], "steps must increase strictly (got 10 then 10)", ("steps", 1)),
        ([10, 50], "the last step must be 100 so all traffic returns to the primary (got 50)", ("steps", 1)),
    ],
)
def test_failback_steps_rise_to_100(steps, message, at):
    # Given failback steps that do not rise strictly to 100
    errors = rule_errors(plan_dict(failback={"steps": steps}))

    # Then the offending step is named
    assert errors == [(("failback",), message, at)]


@pytest.mark.parametrize("steps", [[0, 100], [50, 101], []])
def test_failback_steps_are_percentages(steps):
    # Given steps outside 1..100 (or none at all)
    # Then the plan is refused
    with pytest.raises(ValidationError):
        DRPlan.model_validate(plan_dict(failback={"steps": steps}))


def test_hosted_zone_is_given_exactly_once():
    # Given traffic with both a hosted zone id and name, and traffic with neither
    both = plan_dict()
    both["traffic"] = {**both["traffic"], "hosted_zone_id": "Z123"}
    neither = plan_dict()
    neither["traffic"] = {k: v for k, v in neither["traffic"].items() if k != "hosted_zone_name"}

    # Then each is refused with a message saying which one to give
    assert rule_errors(both) == [
        (
            ("traffic", "route53-weighted"),
            "give either hosted_zone_id or hosted_zone_name, not both",
            ("hosted_zone_name",),
        )
    ]
    assert rule_errors(neither) == [
        (("traffic", "route53-weighted"), "one of hosted_zone_id or hosted_zone_name is required", ())
    ]


def test_sagemaker_variant_traffic_must_be_in_a_plan_region():
    # Given variant traffic in a region the plan does not use
    traffic = {
        "kind": "sagemaker-variants",
        "endpoint_name": "fraud-scorer",
        "region": "eu-west-1",
        "variants": {"primary": "blue", "secondary": "green"},
    }
    errors = rule_errors(plan_dict(traffic=traffic))

    # Then the rule names both allowed regions
    assert errors == [
        (
            (),
            "must be the plan's primary (us-east-1) or secondary (us-west-2) region (got eu-west-1)",
            ("traffic", "region"),
        )
    ]
    # ... and the same traffic in the secondary region is fine
    plan = DRPlan.model_validate(plan_dict(traffic={**traffic, "region": "us-west-2"}))
    assert isinstance(plan.traffic, SageMakerVariantsTraffic)


def test_asset_names_are_unique():
    # Given two assets with one name
    data = plan_dict()
    data["assets"] = [*data["assets"], {"name": "features", "kind": "dynamodb", "table": "other-table"}]

    # Then the second one is named
    assert rule_errors(data) == [((), "asset name 'features' is used more than once", ("assets", 2, "name"))]


def test_smoke_case_names_are_unique():
    # Given two smoke cases with one name
    case = {"name": "same", "payload": {}, "expect": {"field": "label", "equals": "fraud"}}
    errors = rule_errors(plan_dict(smoke_tests={"latency_budget_p95_ms": 300, "cases": [case, case]}))

    # Then the second one is named
    assert errors == [
        (("smoke_tests",), "smoke case name 'same' is used more than once", ("cases", 1, "name"))
    ]


@pytest.mark.parametrize(
    ("expect", "message", "at"),
    [
        (
            {"field": "score", "value": 0.5, "equals": 0.5},
            "give either value (with tolerance) or equals, not both",
            ("equals",),
        ),
        (
            {"field": "score"},
            "one of value (a number, with tolerance) or equals (an exact value) is required",
            (),
        ),
        (
            {"field": "label", "equals": "fraud", "tolerance": 0.1},
            "tolerance only applies to value, not to equals",
            ("tolerance",),
        ),
        ({"field": "score", "value": None}, "must be a number (or leave it out and use equals)", ("value",)),
    ],
)
def test_an_expectation_is_a_number_or_an_exact_value(expect, message, at):
    # Given an expectation that is neither or both
    case = {"name": "c", "payload": {}, "expect": expect}
    errors = rule_errors(plan_dict(smoke_tests={"latency_budget_p95_ms": 300, "cases": [case]}))

    # Then the rule says which
    assert errors == [(("smoke_tests", "cases", 0, "expect"), message, at)]


def test_equals_null_is_a_real_expectation():
    # Given an expectation that a field is null
    case = {"name": "c", "payload": {}, "expect": {"field": "error", "equals": None}}
    plan = DRPlan.model_validate(plan_dict(smoke_tests={"latency_budget_p95_ms": 300, "cases": [case]}))

    # Then it is kept as an exact expectation, not mistaken for "no expectation", also through JSON
    expect = plan.smoke_tests.cases[0].expect
    assert expect.equals is None and not expect.is_numeric
    assert DRPlan.model_validate(plan.model_dump(mode="json")) == plan


def test_model_registry_fields_follow_the_registry():
    # Given an s3-manifest registry without its replica, and a sagemaker registry without its group
    manifest = {"name": "m", "kind": "model-registry", "registry": "s3-manifest", "source": {"bucket": "abc"}}
    sagemaker = {"name": "m", "kind": "model-registry", "registry": "sagemaker"}

    # Then each names the missing field
    assert rule_errors(plan_dict(assets=[manifest])) == [
        (("assets", 0, "model-registry"), "replica is required when registry is s3-manifest", ("replica",))
    ]
    assert rule_errors(plan_dict(assets=[sagemaker])) == [
        (
            ("assets", 0, "model-registry"),
            "model_package_group is required when registry is sagemaker",
            ("model_package_group",),
        )
    ]


def test_s3_replica_is_another_bucket():
    # Given an S3 asset replicated onto itself
    asset = {"name": "d", "kind": "s3", "source": {"bucket": "same"}, "replica": {"bucket": "same"}}

    # Then it is refused
    assert rule_errors(plan_dict(assets=[asset])) == [
        (
            ("assets", 0, "s3"),
            "replica bucket must differ from the source bucket (both are same)",
            ("replica", "bucket"),
        )
    ]


KEY_USE1 = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_USW2 = "arn:aws:kms:us-west-2:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"


def test_a_bucket_names_its_customer_managed_key_in_its_own_region():
    # Given an S3 asset whose buckets encrypt with customer-managed keys, each in the bucket's region
    asset = {
        "name": "d",
        "kind": "s3",
        "source": {"bucket": "data-use1", "kms_key": KEY_USE1},
        "replica": {"bucket": "data-usw2", "kms_key": KEY_USW2},
    }
    # Then the plan keeps both keys, and an asset without them has none
    plan = DRPlan.model_validate(plan_dict(assets=[asset]))
    assert (plan.assets[0].source.kms_key, plan.assets[0].replica.kms_key) == (KEY_USE1, KEY_USW2)
    assert DRPlan.model_validate(plan_dict()).assets[0].source.kms_key is None
    # And a key of the other region is refused where it is named (S3 only uses keys of its region)
    swapped = {**asset, "replica": {"bucket": "data-usw2", "kms_key": KEY_USE1}}
    assert rule_errors(plan_dict(assets=[swapped])) == [
        (
            (),
            "must be a key in the secondary region us-west-2, where the replica bucket is (got us-east-1): "
            "S3 only uses keys of its own region",
            ("assets", 0, "replica", "kms_key"),
        )
    ]


@pytest.mark.parametrize(
    "key",
    [
        "alias/lifeboat",  # an alias: IAM grants name keys, not aliases
        "arn:aws:kms:us-east-1:123456789012:alias/lifeboat",
        "1234abcd-12ab-34cd-56ef-1234567890ab",  # a bare key id
        "arn:aws:s3:::data-use1",
    ],
)
def test_a_kms_key_must_be_a_key_arn(key):
    asset = {"name": "d", "kind": "s3", "source": {"bucket": "a", "kms_key": key}, "replica": {"bucket": "b"}}
    with pytest.raises(ValidationError, match="kms_key"):
        DRPlan.model_validate(plan_dict(assets=[asset]))


def test_evidence_retention_is_a_year_unless_the_plan_says_otherwise_in_whole_days():
    assert DRPlan.model_validate(plan_dict()).audit.evidence_retention == timedelta(days=365)
    assert DRPlan.model_validate(plan_dict(audit={"evidence_retention": "30d"})).audit.evidence_retention == (
        timedelta(days=30)
    )
    for bad in ("36h", "0s", "36501d"):
        with pytest.raises(ValidationError, match="whole days from 1d to 36500d"):
            DRPlan.model_validate(plan_dict(audit={"evidence_retention": bad}))


def test_ttl_is_whole_seconds():
    # Given a TTL Route 53 could not store
    data = plan_dict()
    data["traffic"] = {**data["traffic"], "ttl": "1500ms"}

    # Then it is refused
    assert rule_errors(data) == [
        (
            ("traffic", "route53-weighted", "ttl"),
            "Value error, must be a whole number of seconds (got 1s500ms)",
            (),
        )
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("workload", "Fraud_Scoring"),
        ("workload", "f"),
        ("tier", "urgent"),
        ("version", 2),
        ("regions", {"primary": "us-east-1", "secondary": "mars-1"}),
        ("notifications", {"topic": "not a topic"}),
    ],
)
def test_simple_fields_are_checked(key, value):
    # Given a plan with one malformed value
    # Then it is refused
    with pytest.raises(ValidationError):
        DRPlan.model_validate(plan_dict(**{key: value}))


def test_module_exports_role_literal():
    # Given the Role type other modules annotate with
    # Then it is exactly primary | secondary
    assert get_args(plan_module.Role) == ("primary", "secondary")
    assert S3Asset.model_fields["kind"].annotation is not None
