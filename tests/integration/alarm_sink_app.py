"""A tiny Chalice app for the alarm simulator tests: it records every CloudWatch alarm state change event.

tests/integration/sample_app.py only listens to its own test source, so alarm events would never reach it.
"""

from __future__ import annotations

from typing import Any

from chalice import Chalice

app = Chalice(app_name="lifeboat")

# EventBridge delivers asynchronously; tests drain the Lambda runner, then read this list.
received_alarm_events: list[dict[str, Any]] = []


@app.on_cw_event(
    {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}, name="on_alarm"
)
def on_alarm(event: Any) -> None:
    received_alarm_events.append(event.to_dict())
