"""The local cloud runs the real Chalice handlers from Step Functions, EventBridge, SQS and the Invoke API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.awslambda.models import LambdaFunction
from moto.events.models import Rule

from localcloud import lambda_runner
from localcloud.resources import provision_base
from localcloud.schedules import Scheduler
from localcloud.server import LocalCloud
from tests.integration import sample_app

LOCAL_CLOUD_APP = "tests.integration.sample_app"
REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEDULED_EVENT = REPO_ROOT / "events" / "eventbridge" / "scheduled-event.json"

pytestmark = pytest.mark.timeout(300)


def _wait_for(predicate: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def _function_arn(cloud: LocalCloud, name: str) -> str:
    return cloud.resources["functions"][f"lifeboat-{cloud.stage}-{name}"]


def _run_state_machine(cloud: LocalCloud, definition: dict[str, Any], execution_input: Any) -> dict[str, Any]:
    sfn = cloud.client("stepfunctions")
    unique = uuid.uuid4().hex[:8]
    machine_arn = sfn.create_state_machine(
        name=f"lifeboat-test-{unique}",
        definition=json.dumps(definition),
        roleArn=cloud.resources["role_arn"],
    )["stateMachineArn"]
    execution_arn = sfn.start_execution(
        stateMachineArn=machine_arn, name=f"test-{unique}", input=json.dumps(execution_input)
    )["executionArn"]
    return _wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING" and d,
        timeout=15,
    )


def test_task_state_with_function_arn_runs_the_chalice_handler(local_cloud: LocalCloud) -> None:
    # Given a state machine whose Task resource is the echo function's ARN
    definition = {
        "StartAt": "Echo",
        "States": {"Echo": {"Type": "Task", "Resource": _function_arn(local_cloud, "echo"), "End": True}},
    }

    # When an execution runs
    execution = _run_state_machine(local_cloud, definition, {"workload": "fraud-scorer"})

    # Then the handler ran with the function's context and environment, and its result is the output
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["echo"] == {"workload": "fraud-scorer"}
    assert output["function_name"] == "lifeboat-dev-echo"
    assert output["has_time_left"] is True
    assert output["ledger_table"] == "lifeboat-dev-ledger"


def test_lambda_invoke_integration_passes_payload_and_returns_it(local_cloud: LocalCloud) -> None:
    # Given a state machine using the arn:aws:states:::lambda:invoke integration
    definition = {
        "StartAt": "Echo",
        "States": {
            "Echo": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": _function_arn(local_cloud, "echo"), "Payload.$": "$"},
                "ResultSelector": {"result.$": "$.Payload", "status.$": "$.StatusCode"},
                "End": True,
            }
        },
    }

    # When an execution runs
    execution = _run_state_machine(local_cloud, definition, {"region": "us-west-2"})

    # Then the Payload the handler returned reaches the execution output
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["status"] == 200
    assert output["result"]["echo"] == {"region": "us-west-2"}


@pytest.mark.parametrize("form", ["function_arn", "lambda_invoke"])
def test_catch_on_the_handlers_exception_class_name(local_cloud: LocalCloud, form: str) -> None:
    # Given a Task whose handler raises BackupUnhealthy, caught by ErrorEquals ["BackupUnhealthy"]
    arn = _function_arn(local_cloud, "check_backup")
    task: dict[str, Any] = (
        {"Resource": arn}
        if form == "function_arn"
        else {
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": arn, "Payload.$": "$"},
        }
    )
    definition = {
        "StartAt": "CheckBackup",
        "States": {
            "CheckBackup": {
                "Type": "Task",
                **task,
                "Catch": [{"ErrorEquals": ["BackupUnhealthy"], "ResultPath": "$.error", "Next": "Abort"}],
                "Next": "FailOver",
            },
            "FailOver": {"Type": "Pass", "Result": "failed over", "End": True},
            "Abort": {"Type": "Pass", "End": True},
        },
    }

    # When an execution runs
    execution = _run_state_machine(local_cloud, definition, {"workload": "fraud-scorer"})

    # Then the catcher took the Abort branch with the Lambda error shape as the cause
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["error"]["Error"] == "BackupUnhealthy"
    cause = json.loads(output["error"]["Cause"])
    assert cause["errorType"] == "BackupUnhealthy"
    assert cause["errorMessage"] == "backup of fraud-scorer is 3h old"
    assert cause["stackTrace"]


def test_uncaught_handler_error_fails_the_execution_with_its_class_name(local_cloud: LocalCloud) -> None:
    # Given a Task without a Catch whose handler raises
    definition = {
        "StartAt": "CheckBackup",
        "States": {
            "CheckBackup": {
                "Type": "Task",
                "Resource": _function_arn(local_cloud, "check_backup"),
                "End": True,
            }
        },
    }

    # When an execution runs
    execution = _run_state_machine(local_cloud, definition, {"workload": "fraud-scorer"})

    # Then the execution fails with the exception's class name as the error
    assert execution["status"] == "FAILED"
    assert execution["error"] == "BackupUnhealthy"


def test_invoke_api_reports_function_error(local_cloud: LocalCloud) -> None:
    # Given the Lambda client of the local cloud
    lam = local_cloud.client("lambda")

    # When a function that raises is invoked
    response = lam.invoke(FunctionName="lifeboat-dev-check_backup", Payload=b'{"workload": "w"}')

    # Then the response carries FunctionError and the Lambda error payload
    assert response["FunctionError"]
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "BackupUnhealthy"
    assert payload["errorMessage"] == "backup of w is 3h old"


def test_eventbridge_rule_delivers_the_event_envelope_to_the_on_cw_event_handler(
    local_cloud: LocalCloud,
) -> None:
    # Given the rule provision_base created for the on_cw_event handler
    rule_name = "lifeboat-dev-on_test_event-event"
    assert rule_name in local_cloud.resources["rules"]
    sample_app.received_events.clear()

    # When a matching event and a non-matching one are put on the default bus
    events = local_cloud.client("events")
    detail = {"alarm": "p99-latency", "state": "ALARM"}
    response = events.put_events(
        Entries=[
            {
                "Source": sample_app.TEST_SOURCE,
                "DetailType": "CloudWatch Alarm State Change",
                "Detail": json.dumps(detail),
                "Resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:p99-latency"],
            },
            {"Source": "someone.else", "DetailType": "Other", "Detail": "{}"},
        ]
    )
    assert response["FailedEntryCount"] == 0

    # Then the handler receives the matching event, as EventBridge's envelope, exactly once
    assert _wait_for(lambda: sample_app.received_events), "the on_cw_event handler was never invoked"
    lambda_runner.drain(timeout=60)
    assert len(sample_app.received_events) == 1
    event = sample_app.received_events[0]
    assert set(event) >= {"version", "id", "detail-type", "source", "account", "time", "region", "resources"}
    assert event["id"] == response["Entries"][0]["EventId"]
    assert event["version"] == "0"
    assert event["detail-type"] == "CloudWatch Alarm State Change"
    assert event["source"] == sample_app.TEST_SOURCE
    assert event["account"] == local_cloud.account_id
    assert event["region"] == "us-east-1"
    assert event["resources"] == ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:p99-latency"]
    assert event["detail"] == detail
    datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")


def test_eventbridge_target_input_transformer_is_applied(local_cloud: LocalCloud) -> None:
    # Given an extra rule whose Lambda target reshapes the event with an InputTransformer
    events = local_cloud.client("events")
    events.put_rule(
        Name="lifeboat-test-transformed", EventPattern=json.dumps({"source": ["lifeboat.transform"]})
    )
    events.put_targets(
        Rule="lifeboat-test-transformed",
        Targets=[
            {
                "Id": "echo",
                "Arn": _function_arn(local_cloud, "on_test_event"),
                "InputTransformer": {
                    "InputPathsMap": {"state": "$.detail.state"},
                    "InputTemplate": json.dumps(
                        {
                            "version": "0",
                            "id": "fixed",
                            "detail-type": "Transformed",
                            "source": "lifeboat.transform",
                            "account": "123456789012",
                            "time": "2025-01-01T00:00:00Z",
                            "region": "us-east-1",
                            "resources": [],
                            "detail": {"state": "<state>"},
                        }
                    ),
                },
            }
        ],
    )
    sample_app.received_events.clear()

    # When a matching event is put
    events.put_events(
        Entries=[{"Source": "lifeboat.transform", "DetailType": "x", "Detail": json.dumps({"state": "OK"})}]
    )

    # Then the handler receives the transformed input
    assert _wait_for(lambda: sample_app.received_events), "the transformed event never arrived"
    assert sample_app.received_events[0]["detail"] == {"state": "OK"}
    assert sample_app.received_events[0]["detail-type"] == "Transformed"


def test_rule_with_lambda_and_sqs_targets_delivers_to_both(local_cloud: LocalCloud) -> None:
    # Given a rule with a Lambda target and an SQS target (the latter handled by moto itself)
    events, sqs = local_cloud.client("events"), local_cloud.client("sqs")
    queue_url = sqs.create_queue(QueueName="lifeboat-test-mixed-targets")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="lifeboat-test-mixed", EventPattern=json.dumps({"source": ["lifeboat.mixed"]}))
    events.put_targets(
        Rule="lifeboat-test-mixed",
        Targets=[
            {"Id": "fn", "Arn": _function_arn(local_cloud, "on_test_event")},
            {"Id": "queue", "Arn": queue_arn},
        ],
    )
    sample_app.received_events.clear()

    # When a matching event is put
    events.put_events(
        Entries=[{"Source": "lifeboat.mixed", "DetailType": "x", "Detail": json.dumps({"n": 1})}]
    )

    # Then both the handler and the queue get it, and the rule still lists both targets
    assert _wait_for(lambda: sample_app.received_events), "the Lambda target was never invoked"
    assert sample_app.received_events[0]["detail"] == {"n": 1}
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(m["Body"])["detail"] for m in messages] == [{"n": 1}]
    targets = events.list_targets_by_rule(Rule="lifeboat-test-mixed")["Targets"]
    assert {t["Id"] for t in targets} == {"fn", "queue"}


def test_put_events_never_runs_a_scheduled_rule(local_cloud: LocalCloud) -> None:
    # Given the scheduled rule provision_base created for the schedule handler, with an SQS target added
    # next to its Lambda target, and the pattern rule of the on_cw_event handler
    events, sqs = local_cloud.client("events"), local_cloud.client("sqs")
    scheduled = "lifeboat-dev-on_schedule-event"
    assert events.describe_rule(Name=scheduled)["ScheduleExpression"] == "rate(1 hour)"
    queue_url = sqs.create_queue(QueueName="lifeboat-test-scheduled-target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_targets(Rule=scheduled, Targets=[{"Id": "queue", "Arn": queue_arn}])
    sample_app.received_events.clear()
    sample_app.received_schedules.clear()

    # When PutEvents sends an event that the pattern rule matches
    events.put_events(
        Entries=[{"Source": sample_app.TEST_SOURCE, "DetailType": "x", "Detail": json.dumps({"n": 1})}]
    )

    # Then only the pattern rule's target runs: the scheduled rule's Lambda and SQS targets get nothing
    # (every asynchronous invocation PutEvents started is finished once drain() returns True)
    assert lambda_runner.drain(timeout=60), "EventBridge invocations still running"
    assert [e["detail"] for e in sample_app.received_events] == [{"n": 1}]
    assert sample_app.received_schedules == []
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages", []) == []


def test_rule_with_a_schedule_and_a_pattern_still_matches_events(local_cloud: LocalCloud) -> None:
    # Given a rule with both a ScheduleExpression and an EventPattern (AWS runs it on both)
    events = local_cloud.client("events")
    events.put_rule(
        Name="lifeboat-test-both",
        ScheduleExpression="rate(1 day)",
        EventPattern=json.dumps({"source": ["lifeboat.both"]}),
    )
    events.put_targets(
        Rule="lifeboat-test-both", Targets=[{"Id": "fn", "Arn": _function_arn(local_cloud, "on_test_event")}]
    )
    sample_app.received_events.clear()

    # When a matching event is put
    events.put_events(
        Entries=[{"Source": "lifeboat.both", "DetailType": "x", "Detail": json.dumps({"n": 2})}]
    )

    # Then its target receives the event
    assert lambda_runner.drain(timeout=60), "EventBridge invocations still running"
    assert [e["detail"] for e in sample_app.received_events] == [{"n": 2}]


def test_a_schedule_runs_its_function_once_per_due_time_with_the_documented_event(
    local_cloud: LocalCloud,
) -> None:
    # Given the hourly rule provision_base created for the schedule handler, first seen by a scheduler at T0
    events = local_cloud.client("events")
    rule = events.describe_rule(Name="lifeboat-dev-on_schedule-event")
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    documented = json.loads(SCHEDULED_EVENT.read_text())
    scheduler = Scheduler(local_cloud)
    t0 = datetime(2030, 1, 1, 9, 0, 7, tzinfo=UTC)
    scheduler.tick(t0)
    sample_app.received_schedules.clear()

    # When the injected clock reaches 59 minutes, 1 hour, 1 hour and a second, then 5.5 hours (a pause)
    fired = []
    for offset in (
        timedelta(minutes=59),
        timedelta(hours=1),
        timedelta(hours=1, seconds=1),
        timedelta(hours=5, minutes=30),
    ):
        fired.append([f.due for f in scheduler.tick(t0 + offset) if f.rule_arn == rule["Arn"]])
    assert lambda_runner.drain(timeout=60), "scheduled invocations still running"

    # Then the function ran once at 1 hour and once for the latest hour missed in the pause (no catch-up),
    # each time with EventBridge's Scheduled Event: the documented fields, order and types, the rule's ARN
    assert fired == [[], [t0 + timedelta(hours=1)], [], [t0 + timedelta(hours=5)]]
    received = sample_app.received_schedules
    assert [e["time"] for e in received] == ["2030-01-01T10:00:07Z", "2030-01-01T14:00:07Z"]
    for event in received:
        assert list(event) == list(documented)
        assert {k: type(v) for k, v in event.items()} == {k: type(v) for k, v in documented.items()}
        assert event["version"] == "0"
        assert event["detail-type"] == documented["detail-type"] == "Scheduled Event"
        assert event["source"] == documented["source"] == "aws.events"
        assert event["account"] == local_cloud.account_id
        assert event["region"] == local_cloud.region
        assert event["resources"] == [rule["Arn"]]
        assert event["detail"] == {}
        uuid.UUID(event["id"])
    assert received[0]["id"] != received[1]["id"]

    # And PutEvents still never runs it, even an event with the "Scheduled Event" detail-type
    events.put_events(
        Entries=[{"Source": "lifeboat.test", "DetailType": "Scheduled Event", "Detail": json.dumps({})}]
    )
    assert lambda_runner.drain(timeout=60), "EventBridge invocations still running"
    assert len(sample_app.received_schedules) == 2


def test_a_cron_rule_fires_at_its_minute_to_transformed_and_queue_targets(local_cloud: LocalCloud) -> None:
    # Given a rule due every day at 12:00 UTC whose targets are the schedule handler (through an
    # InputTransformer) and a queue, first seen by a scheduler at 11:59:30
    events, sqs = local_cloud.client("events"), local_cloud.client("sqs")
    rule_arn = events.put_rule(Name="lifeboat-test-noon", ScheduleExpression="cron(0 12 * * ? *)")["RuleArn"]
    queue_url = sqs.create_queue(QueueName="lifeboat-test-noon-target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    template = {
        "version": "0",
        "id": "fixed",
        "detail-type": "Transformed",
        "source": "lifeboat.schedule",
        "account": "123456789012",
        "time": "<at>",
        "region": "us-east-1",
        "resources": [],
        "detail": {"rule": "<rule>", "at": "<at>"},
    }
    events.put_targets(
        Rule="lifeboat-test-noon",
        Targets=[
            {
                "Id": "fn",
                "Arn": _function_arn(local_cloud, "on_schedule"),
                "InputTransformer": {
                    "InputPathsMap": {"rule": "$.resources[0]", "at": "$.time"},
                    "InputTemplate": json.dumps(template),
                },
            },
            {"Id": "queue", "Arn": queue_arn},
        ],
    )
    scheduler = Scheduler(local_cloud)
    noon = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    scheduler.tick(noon - timedelta(seconds=30))
    sample_app.received_schedules.clear()

    # When the clock passes 12:00:05 and 12:00:50, then the rule is disabled and the next noon passes
    fired = [f.rule_arn for f in scheduler.tick(noon + timedelta(seconds=5))]
    fired += [f.rule_arn for f in scheduler.tick(noon + timedelta(seconds=50))]
    events.disable_rule(Name="lifeboat-test-noon")
    fired += [f.rule_arn for f in scheduler.tick(noon + timedelta(days=1, seconds=5))]
    assert lambda_runner.drain(timeout=60), "scheduled invocations still running"

    # Then it fired once, for 12:00: the handler got the transformed input, the queue the whole event
    # (the handler's own hourly rule also fired, a day later, untransformed)
    assert fired.count(rule_arn) == 1
    transformed = [e for e in sample_app.received_schedules if e["detail-type"] == "Transformed"]
    assert [e["detail"] for e in transformed] == [{"rule": rule_arn, "at": "2030-01-01T12:00:00Z"}]
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    )
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [(b["detail-type"], b["source"], b["time"], b["resources"]) for b in bodies] == [
        ("Scheduled Event", "aws.events", "2030-01-01T12:00:00Z", [rule_arn])
    ]


def test_sqs_message_invokes_the_on_sqs_message_handler(local_cloud: LocalCloud) -> None:
    # Given the replication queue with the event-source mapping provision_base created
    assert "lifeboat-dev-on_replication_event" in local_cloud.resources["event_source_mappings"]
    sample_app.received_messages.clear()
    body = json.dumps({"bucket": "models-us-east-1", "key": "fraud-scorer/1.0.0/model.json"})

    # When a message is sent to the queue
    local_cloud.client("sqs").send_message(QueueUrl=local_cloud.resources["queue_url"], MessageBody=body)

    # Then the handler receives its body
    assert _wait_for(lambda: sample_app.received_messages) == [body]


def test_concurrent_invocations_all_run(local_cloud: LocalCloud) -> None:
    # Given the Lambda client of the local cloud
    lam = local_cloud.client("lambda")

    # When eight invocations run at the same time
    def call(i: int) -> dict[str, Any]:
        response = lam.invoke(FunctionName="lifeboat-dev-echo", Payload=json.dumps({"i": i}).encode())
        return json.loads(response["Payload"].read())

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(8)))

    # Then each got its own event back
    assert [r["echo"] for r in results] == [{"i": i} for i in range(8)]


def test_rest_api_function_serves_chalice_routes(local_cloud: LocalCloud) -> None:
    # Given the REST API function (Handler app.app) and an API Gateway proxy event
    event = {
        "resource": "/health",
        "path": "/health",
        "httpMethod": "GET",
        "headers": {"Host": "localhost"},
        "multiValueHeaders": None,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/health",
            "httpMethod": "GET",
            "path": "/dev/health",
            "stage": "dev",
        },
        "body": None,
        "isBase64Encoded": False,
    }

    # When it is invoked
    response = local_cloud.client("lambda").invoke(FunctionName="lifeboat-dev-api", Payload=json.dumps(event))

    # Then Chalice routed the request
    payload = json.loads(response["Payload"].read())
    assert payload["statusCode"] == 200
    assert json.loads(payload["body"]) == {"status": "ok"}


def test_uninstall_restores_moto_and_install_is_idempotent(local_cloud: LocalCloud) -> None:
    # Given the runner installed by the local cloud, and moto's own methods
    moto_invoke = lambda_runner.original("moto.awslambda.models", "LambdaFunction._invoke_lambda")
    moto_send = lambda_runner.original("moto.events.models", "Rule.send_to_targets")
    assert LambdaFunction._invoke_lambda is not moto_invoke
    try:
        # When it is uninstalled twice
        lambda_runner.uninstall()
        lambda_runner.uninstall()

        # Then moto's methods are back
        assert LambdaFunction._invoke_lambda is moto_invoke
        assert Rule.send_to_targets is moto_send
        assert not lambda_runner.installed()
    finally:
        # And installing twice patches once (the original stays reachable)
        lambda_runner.install(handler_module=LOCAL_CLOUD_APP)
        lambda_runner.install(handler_module=LOCAL_CLOUD_APP)
    assert lambda_runner.original("moto.awslambda.models", "LambdaFunction._invoke_lambda") is moto_invoke
    response = local_cloud.client("lambda").invoke(FunctionName="lifeboat-dev-echo", Payload=b"{}")
    assert "FunctionError" not in response


def test_server_listens_on_loopback_only(local_cloud: LocalCloud) -> None:
    # Given the running local cloud
    # When we look at where it listens and at what it tells clients
    listening = local_cloud._server._server.socket.getsockname()  # type: ignore[union-attr]

    # Then it is bound to 127.0.0.1 and every endpoint it hands out is loopback
    assert listening[0] == "127.0.0.1"
    assert local_cloud.endpoint_url == f"http://127.0.0.1:{local_cloud.port}"
    assert local_cloud.env()["AWS_ENDPOINT_URL"] == local_cloud.endpoint_url


_LIFECYCLE_SCRIPT = """
import json, os, socket
from localcloud.resources import provision_base
from localcloud.server import LocalCloud
before = os.environ.get("AWS_ENDPOINT_URL")
cloud = LocalCloud(handler_module="tests.integration.sample_app").start()
port = cloud.port
socket.create_connection(("127.0.0.1", port), timeout=2).close()
during = os.environ.get("AWS_ENDPOINT_URL")
cloud.stop()
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    refused = False
except OSError:
    refused = True
print(json.dumps({"refused": refused, "during": during, "after": os.environ.get("AWS_ENDPOINT_URL"),
                  "before": before, "port": port}))
"""


def test_stop_really_stops_the_server_and_restores_the_environment() -> None:
    # Given a local cloud started in a fresh process (only one may run per process)
    # When it is stopped
    completed = subprocess.run(
        [sys.executable, "-c", _LIFECYCLE_SCRIPT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=45,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
    )

    # Then connecting to its port afterwards fails, and the environment is as it was
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["during"] == f"http://127.0.0.1:{result['port']}"
    assert result["refused"] is True
    assert result["after"] == result["before"] is None


def test_a_second_local_cloud_in_the_same_process_is_refused(local_cloud: LocalCloud) -> None:
    # Given a running local cloud
    # When another one is started in the same process
    # Then it is refused (moto's backends and MOTO_PORT are process-wide)
    with pytest.raises(RuntimeError, match="already running"):
        LocalCloud().start()
    assert local_cloud.running
    with socket.create_connection(("127.0.0.1", local_cloud.port), timeout=2):
        pass


def test_provision_base_is_idempotent_and_configures_the_base_resources(local_cloud: LocalCloud) -> None:
    # Given a provisioned cloud
    first = dict(local_cloud.resources)

    # When provisioning runs again
    second = provision_base(local_cloud, stage=local_cloud.stage)

    # Then nothing new appears and the resources carry the protections of the real deployment
    assert second == first
    dynamodb, s3, sqs = (local_cloud.client(s) for s in ("dynamodb", "s3", "sqs"))
    for table in (first["ledger_table"], first["lock_table"], first["idempotency_table"]):
        backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    ttl = dynamodb.describe_time_to_live(TableName=first["idempotency_table"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}
    evidence = first["evidence_bucket"]
    assert s3.get_bucket_versioning(Bucket=evidence)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=evidence)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=evidence)["PublicAccessBlockConfiguration"].values())
    redrive = sqs.get_queue_attributes(QueueUrl=first["queue_url"], AttributeNames=["RedrivePolicy"])
    assert json.loads(redrive["Attributes"]["RedrivePolicy"]) == {
        "deadLetterTargetArn": first["dlq_arn"],
        "maxReceiveCount": 5,
    }
    assert local_cloud.env()["LIFEBOAT_IDEMPOTENCY_TABLE"] == first["idempotency_table"]
