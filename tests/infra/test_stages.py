"""Every stage's templates, rendered for every region (no `chalice package`, so each stage costs a second):
the stage's own names, SQS sources their roles can consume, the least-privilege rules, an append-only
ledger, the hosted zone a stage may change, reserved concurrency and the drill's retries, the evidence lock.
The same checks on the packaged templates are in test_template.py (dev) and below (prod, once)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.adapters.ledger import CLAIM_PREFIX, CONTROL_PREFIX
from chalicelib.adapters.locks import _pk as lock_key
from infra import build, permissions
from infra.checks import iam_violations
from infra.template import (
    FAILOVER_RESERVED_CONCURRENCY,
    Target,
    TemplateError,
    app_functions,
    render,
)
from tests.infra.conftest import HOSTED_ZONES, PROD_REGION, STAGES

LEDGER_ACTIONS = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"}


def roles(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Role logical id -> its statements (the functions' roles: merge-template amendments, no Type)."""
    out = {}
    for name, resource in template["Resources"].items():
        policies = resource.get("Properties", {}).get("Policies")
        if name.endswith("Role") and isinstance(policies, list):
            out[name] = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    return out


def queue_arn(value: dict[str, Any]) -> str:
    """The logical id of the queue whose Arn attribute `value` is (Fn::GetAtt, or Fn::Sub "${Q.Arn}")."""
    if "Fn::GetAtt" in value and len(value) == 1:
        logical, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn"
        return str(logical)
    (text,) = value.values()
    assert list(value) == ["Fn::Sub"] and text.startswith("${") and text.endswith(".Arn}"), value
    return str(text[2:-5])


def on_table(statement: dict[str, Any], logical_id: str, name: str) -> bool:
    text = json.dumps(statement["Resource"])
    return f'["{logical_id}", "Arn"]' in text or f'table/{name}"' in text


def test_every_name_is_the_stages_own(stage: str, rendered: dict[str, dict[str, Any]]) -> None:
    others = [s for s in STAGES if s != stage]
    for region, template in rendered.items():
        text = json.dumps(template)
        # Then functions, roles, queues, tables, machines of this stage only (the app imported for it)
        assert f"lifeboat-{stage}-replication-events" in text, region
        assert f"lifeboat-{stage}-ledger" in text and f"lifeboat-{stage}-{region}-" in text, region
        for other in others:
            assert f"lifeboat-{other}-" not in text, (region, other)


def test_each_sqs_source_is_a_queue_of_the_stack_its_role_may_consume(
    stage: str, rendered: dict[str, dict[str, Any]]
) -> None:
    sqs = [f for f in app_functions(build.load_app(stage)) if f.kind == "sqs"]
    assert sqs
    for region, template in rendered.items():
        resources = template["Resources"]
        for fn in sqs:
            # Given the function's event source (merged into Chalice's, which names the queue by text)
            queue = resources[fn.logical_id]["Properties"]["Events"][fn.event_id]["Properties"]["Queue"]
            # Then it is the Arn attribute of the stack's queue, a queue of this stage
            logical = queue_arn(queue)
            assert resources[logical]["Properties"]["QueueName"] == f"lifeboat-{stage}-replication-events"
            # And the function's role may receive, delete and inspect messages of exactly that queue (GetAtt)
            consume = [s for s in roles(template)[fn.role_id] if "sqs:ReceiveMessage" in s["Action"]]
            assert [s["Resource"] for s in consume] == [[{"Fn::GetAtt": [logical, "Arn"]}]], region
            assert {"sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= set(consume[0]["Action"])


def test_no_identity_policy_breaks_the_least_privilege_rules(rendered: dict[str, dict[str, Any]]) -> None:
    for region, template in rendered.items():
        # Given every role of the copy: the functions' (amendments of Chalice's roles) and the stack's own
        resources = {
            name: {"Type": "AWS::IAM::Role", **r} if "Type" not in r else r
            for name, r in template["Resources"].items()
            if name in roles(template) or r.get("Type") == "AWS::IAM::Role"
        }
        assert len(resources) > len(app_functions(build.load_app("dev")))
        # Then no Action "*", no "*" resource but on the unscopable reads, no write on a whole resource type
        assert iam_violations({"Resources": resources}) == [], region


def test_no_role_may_delete_from_the_ledger(stage: str, rendered: dict[str, dict[str, Any]]) -> None:
    ledger = f"lifeboat-{stage}-ledger"
    for region, template in rendered.items():
        writers = set()
        for role, statements in roles(template).items():
            for st in statements:
                # Then a statement on the ledger table only reads and puts (entries are conditional puts)
                if on_table(st, "LedgerTable", ledger):
                    assert set(st["Action"]) <= LEDGER_ACTIONS, (region, role, st["Sid"])
                    writers |= {role} if "dynamodb:PutItem" in st["Action"] else set()
        assert "ConcludeRole" in writers, region


def test_every_lock_table_statement_names_the_kind_of_item_it_touches(
    stage: str, rendered: dict[str, dict[str, Any]]
) -> None:
    prefixes = {
        st["Sid"]: st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        for template in rendered.values()
        for statements in roles(template).values()
        for st in statements
        if on_table(st, "LockTable", f"lifeboat-{stage}-locks")
    }
    # Then locks, claims and control items each have their own statements, keyed like the adapters key them
    assert prefixes == {
        "LocksRead": [permissions.LOCK_KEYS],
        "LocksWrite": [permissions.LOCK_KEYS],
        "Claims": [permissions.CLAIM_KEYS],
        "ControlRead": [permissions.CONTROL_KEYS],
        "ControlWrite": [permissions.CONTROL_KEYS],
    }
    assert lock_key("w").startswith(permissions.LOCK_KEYS.rstrip("*"))
    assert f"{CLAIM_PREFIX}*" == permissions.CLAIM_KEYS and f"{CONTROL_PREFIX}*" == permissions.CONTROL_KEYS


def test_only_the_functions_that_claim_or_control_may(rendered: dict[str, dict[str, Any]]) -> None:
    template = next(iter(rendered.values()))
    by_sid: dict[str, set[str]] = {"Claims": set(), "ControlWrite": set(), "ControlRead": set()}
    for role, statements in roles(template).items():
        for st in statements:
            if st["Sid"] in by_sid:
                by_sid[st["Sid"]].add(role)
    assert by_sid == {
        "Claims": {"OnAlarmRole", "OnAlarmActionRole", "OnReplicationEventRole"},
        "ControlRead": {"FailbackShiftRole", "FailbackBakeRole"},
        "ControlWrite": {
            "FailbackAwaitRole",
            "FailbackConcludeRole",
            "OnExecutionEndRole",
            "FailbackAutoRole",
            "DrillRunRole",
            "ApiHandlerRole",
        },
    }


def test_record_changes_are_granted_on_the_stages_zone(
    stage: str, rendered: dict[str, dict[str, Any]]
) -> None:
    for template in rendered.values():
        zones = {
            json.dumps(r)
            for statements in roles(template).values()
            for st in statements
            if "route53:ChangeResourceRecordSets" in st["Action"]
            for r in st["Resource"]
        }
        # Then dev may change the plan's record in any zone (its id is looked up at run time); prod only in
        # the zone whose id it was packaged with
        zone_id = next(iter(HOSTED_ZONES.get(stage, {}).values()), "*")
        assert zones == {json.dumps({"Fn::Sub": f"arn:${{AWS::Partition}}:route53:::hostedzone/{zone_id}"})}


def test_a_stage_other_than_dev_needs_the_id_of_a_zone_named_by_name(plans: list[Any]) -> None:
    # Given prod without the zone's id
    target = Target(
        stage="prod", region=PROD_REGION, home_region="us-east-1", regions=("us-east-1", "us-west-2")
    )
    # Then rendering refuses, naming the plan, the zone and both ways to give the id
    with pytest.raises(
        TemplateError, match=r"fraud-scoring \(lifeboat.internal.\).*hosted_zone_id.*--hosted-zone"
    ):
        render(build.load_app("prod"), plans, target)
    # And the command line says it too (exit 2, no traceback)
    assert build.main(["render", "--stage", "prod", "--region", PROD_REGION]) == 2
    with pytest.raises(build.BuildError, match="--hosted-zone"):
        build.parse_hosted_zones(["lifeboat.internal."])


def test_failover_tasks_have_reserved_concurrency_where_failovers_run(
    stage: str, rendered: dict[str, dict[str, Any]], plans: list[Any]
) -> None:
    for region, template in rendered.items():
        machines = template["Metadata"]["Lifeboat"]["state_machines"]
        failover = [
            template["Resources"][m]["Properties"]["DefinitionSubstitutions"]
            for m, meta in machines.items()
            if meta["kind"] == "failover"
        ]
        tasks = {v["Fn::GetAtt"][0] for subs in failover for v in subs.values()}
        reserved = {
            name: r["Properties"]["ReservedConcurrentExecutions"]
            for name, r in template["Resources"].items()
            if "ReservedConcurrentExecutions" in r.get("Properties", {})
        }
        # Then exactly the failover machine's task functions have it (none where no failover runs)
        assert set(reserved) == tasks, region
        # And each keeps FAILOVER_RESERVED_CONCURRENCY, or one per machine here that calls it when more do
        # (acquire_lock and release_lock: every failover, failback and rollback machine of the copy)
        callers = {
            name: sum(
                1
                for m in machines
                if name
                in {
                    v["Fn::GetAtt"][0]
                    for v in template["Resources"][m]["Properties"]["DefinitionSubstitutions"].values()
                }
            )
            for name in reserved
        }
        assert reserved == {n: max(FAILOVER_RESERVED_CONCURRENCY, c) for n, c in callers.items()}, region
    assert any(template["Metadata"]["Lifeboat"]["state_machines"] for template in rendered.values())


def test_lambda_never_retries_a_drill(rendered: dict[str, dict[str, Any]]) -> None:
    drill = next(f for f in app_functions(build.load_app("dev")) if f.name == "drill_run")
    for template in rendered.values():
        props = template["Resources"][drill.logical_id]["Properties"]
        # Then a failed or timed-out drill goes to the dead-letter queue instead of running again
        assert props["EventInvokeConfig"] == {"MaximumRetryAttempts": 0}
        assert props["DeadLetterQueue"]["Type"] == "SQS"


def test_evidence_is_kept_unalterable_for_the_plans_retention(
    rendered: dict[str, dict[str, Any]], plans: list[Any]
) -> None:
    days = max(p.audit.evidence_retention.days for p in plans)
    for template in rendered.values():
        props = template["Resources"]["EvidenceBucket"]["Properties"]
        assert props["ObjectLockEnabled"] is True
        assert props["ObjectLockConfiguration"] == {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": days}},
        }
        assert "ObjectLockEnabled" not in template["Resources"]["PlanBucket"]["Properties"]


def test_the_packaged_prod_copy_consumes_its_own_queue(prod_package: build.Package) -> None:
    # Given `chalice package --stage prod` merged with the prod template (packaged once)
    template = prod_package.template()
    resources = template["Resources"]
    (fn,) = [f for f in app_functions(build.load_app("prod")) if f.kind == "sqs"]
    event = resources[fn.logical_id]["Properties"]["Events"][fn.event_id]
    # Then the event source mapping polls the stack's prod queue, by GetAtt, and the role may consume it
    assert event["Type"] == "SQS"
    assert queue_arn(event["Properties"]["Queue"]) == "ReplicationQueue"
    assert resources["ReplicationQueue"]["Properties"]["QueueName"] == "lifeboat-prod-replication-events"
    consume = [s for s in roles(template)[fn.role_id] if "sqs:ReceiveMessage" in s["Action"]]
    assert [s["Resource"] for s in consume] == [[{"Fn::GetAtt": ["ReplicationQueue", "Arn"]}]]
    assert "lifeboat-dev-" not in json.dumps(template)
    assert iam_violations(template) == []


def test_loading_a_stage_app_leaves_the_process_own_app_alone() -> None:
    # Given the app this process imported (the one the local cloud's handlers run)
    import importlib

    own = importlib.import_module("app")
    # When another stage's app is loaded, as rendering that stage does
    prod = build.load_app("prod")
    # Then the process still imports its own app, not the other stage's (whose names are prod's)
    assert importlib.import_module("app") is own
    assert prod is not own.app
