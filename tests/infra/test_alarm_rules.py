"""The alarm rules of the rendered templates (on_alarm's, and the cross-region forwarding rules) against alarm
events: the local cloud's (localcloud/alarms.py) and the ones captured from AWS (events/cloudwatch/). An alarm
of a plan, in its own region and this account, matches; the same name in another region or account does not.
Patterns are matched with the EventBridge pattern matcher of the local cloud (moto). Renders only (no
`chalice package`), so it runs in a second."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from moto.cloudwatch.utils import make_arn_for_alarm
from moto.events.models import EventPattern

from chalicelib.models.planfile import load_plan_text
from infra.build import load_app
from infra.template import Target, app_functions, render
from localcloud.alarms import state_change_event

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, OTHER_ACCOUNT = "123456789012", "210987654321"
PRIMARY, SECONDARY = "us-east-1", "us-west-2"
PRIMARY_ALARMS = ["fraud-scoring-use1-errors", "fraud-scoring-use1-latency", "fraud-scoring-use1-canary"]
PROBE = "fraud-scoring-usw2-canary"  # lives in the secondary region (trigger.alarm_regions)
CAPTURED = sorted((ROOT / "events" / "cloudwatch").glob("alarm-state-change-*.json"))


def resolve(value: Any, region: str, account: str = ACCOUNT) -> Any:
    """CloudFormation's pseudo parameters and Fn::Sub, as a deployed stack would have them."""
    pseudo = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": "aws"}
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in pseudo:
            return pseudo[value["Ref"]]
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return re.sub(r"\$\{(AWS::\w+)\}", lambda m: pseudo[m.group(1)], value["Fn::Sub"])
        return {k: resolve(v, region, account) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, region, account) for v in value]
    return value


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`chalice package --merge-template`: dicts merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = (
            merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def rules(plan_text: str) -> dict[str, dict[str, dict[str, Any]]]:
    """region -> enabled alarm rule (on_alarm, ForwardAlarmsTo...) -> its deployed event pattern."""
    plan = load_plan_text(plan_text, "alarm-rules.yaml")
    app = load_app("dev")
    on_alarm = next(f for f in app_functions(app) if f.name == "on_alarm")
    regions = (PRIMARY, SECONDARY)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for region in regions:
        template = render(
            app, [plan], Target(stage="dev", region=region, home_region=PRIMARY, regions=regions)
        )
        resources = template["Resources"]
        found = {}
        event = resources[on_alarm.logical_id]["Properties"]["Events"][on_alarm.event_id]["Properties"]
        if event["State"] == "ENABLED":
            found["on_alarm"] = resolve(merged(dict(on_alarm.pattern or {}), event["Pattern"]), region)
        for name, resource in resources.items():
            if name.startswith("ForwardAlarmsTo"):
                found[name] = resolve(resource["Properties"]["EventPattern"], region)
        out[region] = found
    return out


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return EventPattern.load(json.dumps(pattern)).matches_event(event)


def local_event(alarm: str, region: str, account: str = ACCOUNT) -> dict[str, Any]:
    """The event the local cloud's alarm simulator puts on the bus (DescribeAlarms gives it moto's ARN)."""
    described = {"AlarmName": alarm, "AlarmArn": make_arn_for_alarm(region, account, alarm)}
    state = {"value": "ALARM", "reason": "test", "timestamp": "2024-01-01T00:00:00.000+0000"}
    return state_change_event(described, state=state, account=account, region=region, at=datetime.now(UTC))


@pytest.fixture(scope="module")
def two_region_rules() -> dict[str, dict[str, dict[str, Any]]]:
    text = (ROOT / "plans" / "fraud-scoring.yaml").read_text()
    text = text.replace(
        "    - fraud-scoring-use1-canary\n",
        f"    - fraud-scoring-use1-canary\n    - {PROBE}\n  alarm_regions:\n    {PROBE}: {SECONDARY}\n",
    )
    return rules(text)


def test_each_rule_matches_the_alarms_it_serves_in_their_own_region_and_account(
    two_region_rules: dict,
) -> None:
    # Given the plan's failover running in the secondary region, three alarms in the primary, one beside it
    assert set(two_region_rules[PRIMARY]) == {"ForwardAlarmsToUsWest2"}  # primary: forwards, acts on none
    assert set(two_region_rules[SECONDARY]) == {"on_alarm"}
    forward = two_region_rules[PRIMARY]["ForwardAlarmsToUsWest2"]
    on_alarm = two_region_rules[SECONDARY]["on_alarm"]
    for alarm in PRIMARY_ALARMS:
        # Then an alarm of the primary, as the local cloud emits it there, is forwarded and acted on
        assert matches(forward, local_event(alarm, PRIMARY)), alarm
        assert matches(on_alarm, local_event(alarm, PRIMARY)), alarm
        # And the same name in the other region or another account is neither
        for event in (local_event(alarm, SECONDARY), local_event(alarm, PRIMARY, OTHER_ACCOUNT)):
            assert not matches(forward, event) and not matches(on_alarm, event), event["resources"]
    # And the secondary's own alarm reaches on_alarm directly, never through the primary's forwarding rule
    assert matches(on_alarm, local_event(PROBE, SECONDARY))
    assert not matches(on_alarm, local_event(PROBE, PRIMARY))
    assert not matches(forward, local_event(PROBE, SECONDARY))


@pytest.mark.parametrize("path", CAPTURED, ids=[p.stem for p in CAPTURED])
def test_a_captured_aws_alarm_event_matches_the_rule_of_a_plan_naming_that_alarm(path: Path) -> None:
    # Given an alarm state change as AWS documents it, and a plan whose trigger names that alarm (primary)
    event = json.loads(path.read_text())
    assert (event["account"], event["region"]) == (ACCOUNT, PRIMARY)
    name = event["detail"]["alarmName"]
    text = (ROOT / "plans" / "fraud-scoring.yaml").read_text()
    found = rules(text.replace(f"    - {PRIMARY_ALARMS[0]}\n", f"    - {json.dumps(name)}\n"))
    # Then the primary forwards it and the secondary's on_alarm takes it
    assert matches(found[PRIMARY]["ForwardAlarmsToUsWest2"], event)
    assert matches(found[SECONDARY]["on_alarm"], event)
    # And not the same event from another account or region, nor the alarm's configuration change
    for changed in ({"account": OTHER_ACCOUNT}, {"region": SECONDARY}):
        assert not matches(found[SECONDARY]["on_alarm"], {**event, **changed}), changed
    configuration = json.loads(
        (ROOT / "events" / "cloudwatch" / "alarm-configuration-change.json").read_text()
    )
    if configuration["detail"]["alarmName"] == name:
        assert not matches(found[SECONDARY]["on_alarm"], configuration)
