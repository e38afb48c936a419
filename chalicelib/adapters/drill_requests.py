"""Drill requests travel as EventBridge events, so the API answers at once and a drill function (up to 15
minutes) runs the drill: `source` lifeboat.drills, `detail-type` "Lifeboat Drill Requested", the
DrillRequest as `detail`."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters import aws
from chalicelib.models.drill import DrillRequest
from chalicelib.models.drill_event import DETAIL_TYPE, PATTERN, SOURCE

__all__ = ["DETAIL_TYPE", "PATTERN", "SOURCE"]


class DrillRequestFailed(RuntimeError):
    """EventBridge did not take the request."""


class DrillRequests:
    events = aws.Client("events")

    def __init__(self, events: Any | None = None) -> None:
        self.events = events

    def publish(self, request: DrillRequest) -> str:
        """Put the request on the default bus; returns the event id."""
        answer = self.events.put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps(request.model_dump(mode="json")),
                    "Resources": [],
                }
            ]
        )
        entry = (answer.get("Entries") or [{}])[0]
        if answer.get("FailedEntryCount") or not entry.get("EventId"):
            raise DrillRequestFailed(f"EventBridge refused the drill request: {entry}")
        return str(entry["EventId"])
