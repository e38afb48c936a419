"""The packaged templates (chalice package + the merge template) of both regions of the shipped plans."""

from __future__ import annotations

import re
import zipfile
from typing import Any

import pytest

from chalicelib.models.plan import route53_records
from chalicelib.settings import Settings, load_settings
from infra import build, permissions
from infra.checks import iam_violations
from infra.template import Target, TemplateError, app_functions, render, workflow_builders
from localcloud.resources import RUNTIME
from tests.infra.conftest import resources_of

PRIMARY, SECONDARY = "us-east-1", "us-west-2"


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def _actions(role: dict[str, Any]) -> set[str]:
    return {a for s in _statements(role) for a in s["Action"]}


def test_every_chalice_function_is_packaged_with_its_own_least_privilege_role(templates: dict) -> None:
    # Given the Chalice app's functions
    functions = app_functions(build.load_app("dev"))
    for region, template in templates.items():
        resources = template["Resources"]
        # Then each is a function of the template with Chalice's real handler, a fixed name and its own role
        assert "DefaultRole" not in resources
        for fn in functions:
            props = resources[fn.logical_id]["Properties"]
            assert props["FunctionName"] == f"lifeboat-dev-{fn.name}"
            assert props["Runtime"] == RUNTIME
            assert props["Role"] == {"Fn::GetAtt": [fn.role_id, "Arn"]}
            role = resources[fn.role_id]
            assert [p["PolicyName"] for p in role["Properties"]["Policies"]] == [f"lifeboat-{fn.name}"], (
                region
            )
            assert role["Properties"]["RoleName"] == f"lifeboat-dev-{region}-{fn.name}"
            # And it may write its own log group and nothing else of CloudWatch Logs
            logs = [s for s in _statements(role) if any(a.startswith("logs:") for a in s["Action"])]
            assert logs == [
                {
                    "Sid": "OwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [{"Fn::GetAtt": [f"{fn.logical_id}LogGroup", "Arn"]}],
                }
            ]


def test_each_function_gets_only_the_actions_its_service_code_calls(
    templates: dict, plans: list[Any]
) -> None:
    # Given the packaged secondary-region copy (it runs failovers)
    resources = templates[SECONDARY]["Resources"]
    # Then a lock task touches only the lock table, and only the shift-capable tasks may move traffic
    assert _actions(resources["ReleaseLockRole"]) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    }
    shifters = {
        name
        for name, r in resources_of(templates[SECONDARY], "AWS::IAM::Role").items()
        if "route53:ChangeResourceRecordSets" in _actions(r)
    }
    assert shifters <= {
        "ShiftTrafficRole",
        "ConcludeRole",
        "FailbackShiftRole",
        "FailbackRollbackRole",
        "FailbackConcludeRole",
        "ApiHandlerRole",
        "DrillRunRole",  # a drill's cleanup puts traffic back to a clean state
        # the janitor: traffic left all on a target that just failed its smoke test goes back (under the
        # run's lock, through the safety rules) when the run was stopped or crashed before its Conclude
        "OnExecutionEndRole",
    }
    assert "ShiftTrafficRole" in shifters
    # And the record change is pinned to the plans' records, type and UPSERT (the zone is known by name only)
    changes = [
        s
        for s in _statements(resources["ShiftTrafficRole"])
        if s["Action"] == ["route53:ChangeResourceRecordSets"]
    ]
    names = set()
    for change in changes:
        condition = change["Condition"]["ForAllValues:StringEquals"]
        assert condition["route53:ChangeResourceRecordSetsRecordTypes"] == ["CNAME"]
        assert condition["route53:ChangeResourceRecordSetsActions"] == ["UPSERT"]
        names.update(condition["route53:ChangeResourceRecordSetsNormalizedRecordNames"])
    # (the Route 53 kinds' own records, and an arc-routing-control plan's failback records)
    records = [route53_records(p.traffic) for p in plans]
    assert names == {r.record_name.rstrip(".") for r in records if r is not None}
    assert "fraud.lifeboat.internal" in names
    # And the alarm handler may start and stop this region's failover machines (one per plan) only
    starts = [s for s in _statements(resources["OnAlarmRole"]) if "states:StartExecution" in s["Action"]]
    assert sorted(r["Fn::Sub"] for s in starts for r in s["Resource"]) == sorted(
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:"
        f"stateMachine:lifeboat-dev-{p.workload}-failover"
        for p in plans
    )


def test_no_identity_policy_breaks_the_least_privilege_rules(templates: dict) -> None:
    # Then no Action "*", no "*" resource but on the few unscopable reads, no write on a whole resource type
    for region, template in templates.items():
        assert iam_violations(template) == [], region


def test_the_least_privilege_checker_catches_violations() -> None:
    # Given a role with a wildcard action, a write on "*" and a write on every table
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Policies": [
                {
                    "PolicyName": "bad",
                    "PolicyDocument": {
                        "Statement": [
                            {"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"},
                            {"Sid": "B", "Effect": "Allow", "Action": ["sns:Publish"], "Resource": "*"},
                            {
                                "Sid": "C",
                                "Effect": "Allow",
                                "Action": ["dynamodb:PutItem"],
                                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:x:1:table/*"},
                            },
                            {"Sid": "D", "Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::b"},
                        ]
                    },
                }
            ]
        },
    }
    # When checked
    problems = iam_violations({"Resources": {"R": role}})
    # Then each statement is reported
    assert [p.split(":")[1] for p in problems] == ["A", "B", "C", "D"]


def test_functions_get_every_setting_pointing_at_the_stack(templates: dict) -> None:
    # Given the environment variables chalicelib.settings requires (and the naming ones with defaults)
    required = {
        f.alias
        for f in Settings.model_fields.values()
        if f.alias and f.alias.startswith("LIFEBOAT_")
        if f.is_required()
    } | {"LIFEBOAT_STAGE", "LIFEBOAT_STATE_MACHINE_PREFIX", "LIFEBOAT_PLAN_PREFIX"}
    for region, template in templates.items():
        owns_tables = template["Metadata"]["Lifeboat"]["home_region"] == region
        for fn in resources_of(template, "AWS::Serverless::Function").values():
            env = fn["Properties"]["Environment"]["Variables"]
            # Then every one is set, the stack's own resources by Ref
            assert required <= env.keys(), region
            resolved = {k: v if isinstance(v, str) else "resolved-by-cloudformation" for k, v in env.items()}
            assert load_settings({**resolved, "AWS_REGION": region}).state_machine_prefix == "lifeboat-dev"
            assert env["LIFEBOAT_PLAN_BUCKET"] == {"Ref": "PlanBucket"}
            assert env["LIFEBOAT_EVIDENCE_BUCKET"] == {"Ref": "EvidenceBucket"}
            assert env["LIFEBOAT_IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
            # And the replicated tables by Ref where this copy creates them, by their global name elsewhere
            ledger = {"Ref": "LedgerTable"} if owns_tables else "lifeboat-dev-ledger"
            assert env["LIFEBOAT_LEDGER_TABLE"] == ledger


def test_state_machines_run_in_the_region_they_activate(templates: dict, plans: list) -> None:
    # Given the workflows chalicelib defines (failover; failback and others as they land)
    kinds = set(workflow_builders())
    placed: dict[str, set[tuple[str, str]]] = {}
    for region, template in templates.items():
        machines = resources_of(template, "AWS::StepFunctions::StateMachine")
        meta = template["Metadata"]["Lifeboat"]["state_machines"]
        placed[region] = {(m["workload"], m["kind"]) for m in meta.values()}
        functions = template["Metadata"]["Lifeboat"]["functions"]
        for logical_id, machine in machines.items():
            props = machine["Properties"]
            # Then the definition is ASL data whose every task ARN is a substitution for a packaged function
            text = repr(props["Definition"])
            used = set(re.findall(r"\$\{(\w+)\}", text))
            assert used == set(props["DefinitionSubstitutions"]), logical_id
            for value in props["DefinitionSubstitutions"].values():
                assert value["Fn::GetAtt"][0] in functions and value["Fn::GetAtt"][1] == "Arn"
            # And its role may invoke exactly those functions
            role = template["Resources"][props["RoleArn"]["Fn::GetAtt"][0]]
            invoked = {
                r["Fn::GetAtt"][0] for s in _statements(role) for r in s["Resource"] if "Fn::GetAtt" in r
            }
            assert invoked == {v["Fn::GetAtt"][0] for v in props["DefinitionSubstitutions"].values()}
    for plan in plans:
        # And a failover runs only in the secondary region, a failback only in the primary
        assert (plan.workload, "failover") in placed[plan.regions.secondary]
        assert (plan.workload, "failover") not in placed[plan.regions.primary]
        if "failback" in kinds:
            assert (plan.workload, "failback") in placed[plan.regions.primary]
            assert (plan.workload, "failback") not in placed[plan.regions.secondary]


def test_ledger_and_locks_are_global_tables_created_once(templates: dict) -> None:
    homes = {t["Metadata"]["Lifeboat"]["home_region"] for t in templates.values()}
    assert len(homes) == 1
    home = homes.pop()
    for region, template in templates.items():
        globals_ = resources_of(template, "AWS::DynamoDB::GlobalTable")
        if region != home:
            # Given another region: it creates none (its replica exists; the home copy owns the tables)
            assert globals_ == {}
            continue
        # Then the home copy creates both, with a replica (PITR, deletion protection) in every region
        assert set(globals_) == {"LedgerTable", "LockTable"}
        for table in globals_.values():
            props = table["Properties"]
            assert table["DeletionPolicy"] == "Retain"
            assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
            assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
            assert sorted(r["Region"] for r in props["Replicas"]) == sorted(templates)
            for replica in props["Replicas"]:
                assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
                assert replica["DeletionProtectionEnabled"] is True
        keys = {n: [k["AttributeName"] for k in t["Properties"]["KeySchema"]] for n, t in globals_.items()}
        assert keys == {"LedgerTable": ["pk", "sk"], "LockTable": ["pk"]}
    for template in templates.values():
        # And every copy has its own idempotency table: TTL on `expiration`, PITR, encryption
        props = template["Resources"]["IdempotencyTable"]["Properties"]
        assert [k["AttributeName"] for k in props["KeySchema"]] == ["id"]
        assert props["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": "expiration"}
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True


def test_buckets_are_versioned_encrypted_private_and_tls_only(templates: dict) -> None:
    for template in templates.values():
        buckets = resources_of(template, "AWS::S3::Bucket")
        assert set(buckets) == {"PlanBucket", "EvidenceBucket"}
        policies = resources_of(template, "AWS::S3::BucketPolicy")
        for name, bucket in buckets.items():
            props = bucket["Properties"]
            assert props["VersioningConfiguration"] == {"Status": "Enabled"}
            rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
            assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
            assert all(props["PublicAccessBlockConfiguration"].values())
            policy = next(p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": name})
            (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
            assert deny["Effect"] == "Deny" and deny["Condition"] == {
                "Bool": {"aws:SecureTransport": "false"}
            }


def test_queues_topics_and_log_groups_are_encrypted(templates: dict) -> None:
    for template in templates.values():
        for queue in resources_of(template, "AWS::SQS::Queue").values():
            props = queue["Properties"]
            assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props
        topics = resources_of(template, "AWS::SNS::Topic")
        assert {t["Properties"]["TopicName"] for t in topics.values()} >= {
            "lifeboat-fraud-scoring",
            "lifeboat-dev-health",
        }
        for topic in topics.values():
            assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "LifeboatKey"}
        for group in resources_of(template, "AWS::Logs::LogGroup").values():
            assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["LifeboatKey", "Arn"]}
            assert group["Properties"]["RetentionInDays"] > 0
        assert template["Resources"]["LifeboatKey"]["Properties"]["EnableKeyRotation"] is True


def test_replication_queue_has_a_dlq_and_accepts_only_the_plans_source_buckets(
    templates: dict, plans: list[Any]
) -> None:
    for region, template in templates.items():
        resources = template["Resources"]
        redrive = resources["ReplicationQueue"]["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["ReplicationDeadLetterQueue", "Arn"]}
        statements = resources["ReplicationQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
        s3 = [s for s in statements if s.get("Principal") == {"Service": "s3.amazonaws.com"}]
        if region == PRIMARY:
            # Given the primary region, where the plan's source buckets are: S3 may send their events
            (allow,) = s3
            sources = [
                a["Fn::Sub"].rsplit(":", 1)[-1] for a in allow["Condition"]["ArnLike"]["aws:SourceArn"]
            ]
            assert sorted(sources) == sorted(
                {a.source.bucket for p in plans for a in p.assets if a.kind == "s3"}
            )
            assert {"fraud-data-use1", "fraud-models-use1"} <= set(sources)
            assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        else:
            assert s3 == []


def test_replication_events_return_only_failed_records_to_the_queue(templates: dict) -> None:
    # Given the packaged functions / Then every SQS-fed one reports partial batch failures to Lambda,
    # so a failed record goes back to the queue (and to its DLQ after the redrive count), nothing is lost
    for template in templates.values():
        sqs_events = [
            (name, event)
            for name, fn in resources_of(template, "AWS::Serverless::Function").items()
            for event in fn["Properties"].get("Events", {}).values()
            if event["Type"] == "SQS"
        ]
        assert sqs_events
        for name, event in sqs_events:
            assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name


def test_asynchronous_invocations_have_dead_letter_queues(templates: dict) -> None:
    for template in templates.values():
        dlq = {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
        for name, fn in resources_of(template, "AWS::Serverless::Function").items():
            events = {
                k: e
                for k, e in fn["Properties"].get("Events", {}).items()
                if e["Type"] in ("CloudWatchEvent", "Schedule")
            }
            if not events:
                continue  # synchronous, or polled from SQS (the queue's redrive is its DLQ)
            # Then an EventBridge-invoked function has a DLQ, and so does each of its rules' targets
            assert fn["Properties"]["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": dlq}, name
            for event in events.values():
                assert event["Properties"]["DeadLetterConfig"] == {"Arn": dlq}, name
        for rule in resources_of(template, "AWS::Events::Rule").values():
            for target in rule["Properties"]["Targets"]:
                assert target["DeadLetterConfig"] == {"Arn": dlq}


def test_alarm_events_reach_only_the_copy_that_runs_the_failover(templates: dict, plans: list[Any]) -> None:
    alarms = sorted(a for p in plans for a in p.trigger.alarms)
    forwarded = sorted(a for p in plans for a in p.trigger.alarms if p.alarm_region(a) == PRIMARY)
    assert "fraud-scoring-use1-errors" in forwarded
    # Given the secondary copy: its alarm rule matches the plans' trigger alarms only
    event = templates[SECONDARY]["Resources"]["OnAlarm"]["Properties"]["Events"]["OnAlarmEvent"]["Properties"]
    assert sorted(event["Pattern"]["detail"]["alarmName"]) == alarms
    assert event["Pattern"]["detail-type"] == ["CloudWatch Alarm State Change"]
    assert event["State"] == "ENABLED"
    # And the primary copy does not act on them, it forwards them to the secondary region's event bus
    primary = templates[PRIMARY]["Resources"]
    assert primary["OnAlarm"]["Properties"]["Events"]["OnAlarmEvent"]["Properties"]["State"] == "DISABLED"
    forward = primary["ForwardAlarmsToUsWest2"]["Properties"]
    assert sorted(forward["EventPattern"]["detail"]["alarmName"]) == forwarded
    (target,) = forward["Targets"]
    assert target["Arn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:events:us-west-2:${AWS::AccountId}:event-bus/default"
    }
    put = _statements(primary["ForwardAlarmsRole"])
    assert put[0]["Action"] == ["events:PutEvents"] and put[0]["Resource"] == [target["Arn"]]


def test_execution_status_changes_reach_the_janitor_of_the_copy_that_runs_them(templates: dict) -> None:
    for region, template in templates.items():
        # Given a copy's failover and failback machines (failover in the secondary, failback in the primary)
        # and its rollback machines (they hold the workload lock too)
        machines = resources_of(template, "AWS::StepFunctions::StateMachine")
        cleaned = [
            {"Ref": logical}
            for logical, m in machines.items()
            if m["Properties"]["StateMachineName"].endswith(("-failover", "-failback", "-rollback"))
        ]
        assert cleaned, region
        # Then the janitor's rule matches every end of an execution of exactly those machines
        resources = template["Resources"]
        rule = resources["OnExecutionEnd"]["Properties"]["Events"]["OnExecutionEndEvent"]["Properties"]
        assert rule["Pattern"]["source"] == ["aws.states"]
        detail = rule["Pattern"]["detail"]
        assert detail["status"] == ["SUCCEEDED", "ABORTED", "TIMED_OUT", "FAILED"]
        assert sorted(detail["stateMachineArn"], key=str) == sorted(cleaned, key=str)
        assert set(detail) == {"status", "stateMachineArn"}
        assert rule["State"] == "ENABLED"
        # And it may release locks, read traffic and move it back (off a target that failed its smoke
        # test), never touch executions
        actions = _actions(resources["OnExecutionEndRole"])
        assert {"dynamodb:DeleteItem", "route53:ListResourceRecordSets", "sns:Publish"} <= actions
        assert "route53:ChangeResourceRecordSets" in actions
        assert not any(a.startswith("states:") for a in actions)


def test_lifeboat_watches_its_own_health(templates: dict, plans: list) -> None:
    for template in templates.values():
        alarms = resources_of(template, "AWS::CloudWatch::Alarm")
        metrics = [
            a["Properties"].get("MetricName")
            or {
                m["MetricStat"]["Metric"]["MetricName"]
                for m in a["Properties"]["Metrics"]
                if "MetricStat" in m
            }
            for a in alarms.values()
        ]
        functions = resources_of(template, "AWS::Serverless::Function")
        # Then: errors of every function, both dead-letter queues, every state machine, every plan's RPO
        assert metrics.count("Errors") == len(functions)
        assert metrics.count("ApproximateNumberOfMessagesVisible") == 2
        machines = resources_of(template, "AWS::StepFunctions::StateMachine")
        assert metrics.count({"ExecutionsFailed", "ExecutionsTimedOut"}) == len(machines)
        assert metrics.count("RPOBreached") == len(plans)
        # And every plan with an S3 asset: its scheduled restore tests (a failure or a projected breach)
        tested = [p for p in plans if any(a.kind == "s3" for a in p.assets)]
        assert metrics.count("RestoreTestBreached") == len(tested) > 0
        for alarm in alarms.values():
            assert alarm["Properties"]["AlarmActions"] == [{"Ref": "HealthTopic"}]
        assert "Dashboard" in resources_of(template, "AWS::CloudWatch::Dashboard")


def test_the_zip_is_built_for_the_lambda_runtime(packages: dict) -> None:
    # Given the deployment package of a region
    package = next(iter(packages.values()))
    with zipfile.ZipFile(package.zip_path) as archive:
        names = archive.namelist()
    # Then compiled dependencies match the functions' runtime, not the interpreter that packaged them
    tag = "cpython-" + RUNTIME.removeprefix("python").replace(".", "")
    compiled = [n for n in names if n.endswith(".so") and "cpython-" in n]
    assert compiled and all(tag in n for n in compiled), compiled
    assert "app.py" in names and any(n.startswith("chalicelib/") for n in names)
    assert not any(n.startswith(("infra/", "localcloud/", "lifeboat_cli/", "tests/")) for n in names)


class _FakeFunction:
    def __init__(self, name: str) -> None:
        self.name = name
        self.handler_string = f"app.{name}"


class _FakeApp:
    routes: dict[str, Any] = {}
    event_sources: list[Any] = []
    websocket_handlers: dict[str, Any] = {}
    builtin_auth_handlers: list[Any] = []

    def __init__(self, *names: str) -> None:
        self.pure_lambda_functions = [_FakeFunction(n) for n in names]


def test_a_function_without_declared_permissions_cannot_be_packaged(plans: list) -> None:
    # Given an app with a function infra/permissions.py does not describe
    app = _FakeApp(*[n for n in ("acquire_lock", "release_lock") if n in permissions.FUNCTIONS], "new_thing")
    target = Target(stage="dev", region=SECONDARY, home_region=PRIMARY, regions=(PRIMARY, SECONDARY))
    # When the template is rendered, then it names the function and the file to edit
    with pytest.raises(permissions.MissingPermissions, match="new_thing.*infra/permissions.py"):
        render(app, plans, target)


def test_a_state_machine_calling_a_missing_function_cannot_be_packaged(plans: list) -> None:
    # Given an app without the failover's task functions (but with permissions for what it has)
    app = _FakeApp("acquire_lock")
    target = Target(stage="dev", region=SECONDARY, home_region=PRIMARY, regions=(PRIMARY, SECONDARY))
    # Then rendering says which machine calls what
    with pytest.raises(TemplateError, match="failover state machine of fraud-scoring calls"):
        render(app, plans, target)
