"""CloudWatch alarm state changes start (or cancel) failovers through the trigger policy: delivered by
EventBridge (`on_alarm`), or sent by an alarm whose action invokes a function directly (`on_alarm_action`)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint
from chalice.app import CloudWatchEvent

bp = Blueprint(__name__)

ALARM_STATE_CHANGE = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}
_ENVELOPE = (
    ("version", "version"),
    ("account", "account"),
    ("region", "region"),
    ("detail", "detail"),
    ("detail_type", "detail-type"),
    ("source", "source"),
    ("time", "time"),
    ("event_id", "id"),
    ("resources", "resources"),
)


class LenientCloudWatchEvent(CloudWatchEvent):
    """Chalice's event class raises KeyError on a missing envelope key before any handler code runs.

    Keep the raw event instead and let the pydantic model reject it with a reason, a log line and a metric:
    a malformed event must never crash the function (and be retried) or start anything.
    """

    def _extract_attributes(self, event_dict: Any) -> None:
        raw = event_dict if isinstance(event_dict, dict) else {}
        for attr, key in _ENVELOPE:
            setattr(self, attr, raw.get(key))


@bp.on_cw_event(ALARM_STATE_CHANGE, name="on_alarm")
def on_alarm(event: Any) -> dict[str, Any]:
    from chalicelib.services.deps import deps
    from chalicelib.services.trigger import on_alarm_event
    from chalicelib.settings import get_settings

    outcome = on_alarm_event(
        event.to_dict(), deps(), idempotency_table=get_settings().idempotency_table, context=event.context
    )
    return outcome.model_dump(mode="json")


on_alarm.event_class = LenientCloudWatchEvent  # type: ignore[attr-defined]


@bp.lambda_function(name="on_alarm_action")
def on_alarm_action(event: Any, context: Any) -> dict[str, Any]:
    """An alarm's Lambda action (`alarmData`, no EventBridge envelope): the same policy as `on_alarm`."""
    from chalicelib.services.deps import deps
    from chalicelib.services.trigger import on_alarm_action as handle
    from chalicelib.settings import get_settings

    outcome = handle(event, deps(), idempotency_table=get_settings().idempotency_table, context=context)
    return outcome.model_dump(mode="json")
