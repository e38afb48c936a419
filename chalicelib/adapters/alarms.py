"""Reading the live state of the alarms a plan names (the quorum is judged on all of them, not one event)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Any

from chalicelib.adapters import aws
from chalicelib.models.alarms import AlarmSnapshot

_BATCH = 100  # DescribeAlarms accepts at most 100 names per call


class AlarmReader:
    def __init__(self, cloudwatch: Any | None = None) -> None:
        self._cw = cloudwatch

    @property
    def cloudwatch(self) -> Any:
        # Not cached here: the factory caches, and resetting it (local cloud, tests) must reach us.
        return self._cw if self._cw is not None else aws.client("cloudwatch")

    def snapshots(self, names: Iterable[str], region: str | None = None) -> list[AlarmSnapshot]:
        cw = self.cloudwatch if region is None else aws.client("cloudwatch", region)
        wanted = list(dict.fromkeys(names))
        out: list[AlarmSnapshot] = []
        for i in range(0, len(wanted), _BATCH):
            kwargs: dict[str, Any] = {
                "AlarmNames": wanted[i : i + _BATCH],
                "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
            }
            while True:
                page = cw.describe_alarms(**kwargs)
                for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                    since = alarm.get("StateTransitionedTimestamp") or alarm["StateUpdatedTimestamp"]
                    if since.tzinfo is None:
                        since = since.replace(tzinfo=UTC)
                    out.append(AlarmSnapshot(name=alarm["AlarmName"], state=alarm["StateValue"], since=since))
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return out
