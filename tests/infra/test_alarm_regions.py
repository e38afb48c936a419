"""Trigger alarms in the secondary region (trigger.alarm_regions) in the rendered templates: forwarded only
from the region they live in, readable by Lifeboat's roles where they live. Renders the merge templates only
(no `chalice package`), so it runs in a second."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.models.planfile import load_plan_text
from infra import build
from infra.template import Target, render

ROOT = Path(__file__).resolve().parents[2]
PRIMARY_ALARMS = ["fraud-scoring-use1-errors", "fraud-scoring-use1-latency", "fraud-scoring-use1-canary"]
PROBE = "fraud-scoring-usw2-canary"


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    # The dev stage's app (another test module may have imported app.py for another stage).
    app = build.load_app("dev")
    text = (ROOT / "plans" / "fraud-scoring.yaml").read_text()
    text = text.replace(
        "    - fraud-scoring-use1-canary\n",
        f"    - fraud-scoring-use1-canary\n    - {PROBE}\n  alarm_regions:\n    {PROBE}: us-west-2\n",
    )
    plan = load_plan_text(text, "two-region-alarms.yaml")
    regions = ("us-east-1", "us-west-2")
    return {
        region: render(
            app, [plan], Target(stage="dev", region=region, home_region=regions[0], regions=regions)
        )
        for region in regions
    }


def test_only_alarms_living_in_the_primary_are_forwarded_to_the_failover_region(templates: dict) -> None:
    # Given a plan with three alarms in us-east-1 and one in us-west-2 (where its failover runs)
    forwarding = {
        region: {
            name: r["Properties"]["EventPattern"]["detail"]["alarmName"]
            for name, r in t["Resources"].items()
            if name.startswith("ForwardAlarmsTo")
        }
        for region, t in templates.items()
    }
    # Then us-east-1 forwards its own three to us-west-2, and us-west-2 forwards nothing (its alarm is local)
    assert forwarding == {"us-east-1": {"ForwardAlarmsToUsWest2": PRIMARY_ALARMS}, "us-west-2": {}}


def test_lifeboat_may_read_each_trigger_alarm_in_its_own_region(templates: dict) -> None:
    for template in templates.values():
        text = json.dumps(template)
        # Then the alarm reads name the us-west-2 alarm in us-west-2, the others in us-east-1
        assert f"cloudwatch:us-west-2:${{AWS::AccountId}}:alarm:{PROBE}" in text
        assert f"cloudwatch:us-east-1:${{AWS::AccountId}}:alarm:{PROBE}" not in text
        for alarm in PRIMARY_ALARMS:
            assert f"cloudwatch:us-east-1:${{AWS::AccountId}}:alarm:{alarm}" in text


def alarm_action_permissions(template: dict[str, Any]) -> dict[str, Any]:
    return {
        name: r["Properties"]
        for name, r in template["Resources"].items()
        if r.get("Type") == "AWS::Lambda::Permission" and name.startswith("OnAlarmActionFromAlarm")
    }


def test_only_an_alarm_living_where_its_failover_runs_may_invoke_the_alarm_action_function(
    templates: dict,
) -> None:
    # Given the same plan (an alarm's Lambda action can only invoke a function in the alarm's own region)
    found = {region: alarm_action_permissions(t) for region, t in templates.items()}
    # Then us-east-1 grants none (its failover runs in us-west-2) and us-west-2 grants its own alarm only
    assert found["us-east-1"] == {}
    (grant,) = found["us-west-2"].values()
    assert grant["Principal"] == "lambda.alarms.cloudwatch.amazonaws.com"
    assert grant["Action"] == "lambda:InvokeFunction"
    assert grant["FunctionName"] == {"Fn::GetAtt": ["OnAlarmAction", "Arn"]}
    assert grant["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert grant["SourceArn"] == {
        "Fn::Sub": f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{PROBE}"
    }
    # And the function is asynchronous: failed invocations go to the events dead-letter queue
    function = templates["us-west-2"]["Resources"]["OnAlarmAction"]["Properties"]
    assert function["DeadLetterQueue"]["TargetArn"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    assert "OnAlarmActionArn" in templates["us-west-2"]["Outputs"]
