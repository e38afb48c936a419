"""A small Chalice app the local-cloud tests run in place of Lifeboat's app (which other work changes)."""

from __future__ import annotations

import os
from typing import Any

from chalice import Chalice

from chalicelib.middleware import powertools_middleware

REPLICATION_QUEUE = "lifeboat-dev-replication-events"
TEST_SOURCE = "lifeboat.test"

app = Chalice(app_name="lifeboat")
app.register_middleware(powertools_middleware, "all")

# Handlers record what they received; tests poll these lists (EventBridge delivers asynchronously).
received_events: list[dict[str, Any]] = []
received_messages: list[str] = []
received_schedules: list[dict[str, Any]] = []


class BackupUnhealthy(Exception):
    """The latest backup of a workload is too old to fail over to."""


@app.route("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.lambda_function(name="echo")
def echo(event: Any, context: Any) -> dict[str, Any]:
    return {
        "echo": event,
        "function_name": context.function_name,
        "has_time_left": context.get_remaining_time_in_millis() > 0,
        "ledger_table": os.environ.get("LIFEBOAT_LEDGER_TABLE"),
    }


@app.lambda_function(name="check_backup")
def check_backup(event: Any, context: Any) -> dict[str, Any]:
    raise BackupUnhealthy(f"backup of {event.get('workload')} is 3h old")


@app.on_cw_event({"source": [TEST_SOURCE]}, name="on_test_event")
def on_test_event(event: Any) -> None:
    received_events.append(event.to_dict())


@app.schedule("rate(1 hour)", name="on_schedule")
def on_schedule(event: Any) -> None:
    received_schedules.append(event.to_dict())


@app.on_sqs_message(queue=REPLICATION_QUEUE, name="on_replication_event")
def on_replication_event(event: Any) -> None:
    for record in event:
        received_messages.append(record.body)
