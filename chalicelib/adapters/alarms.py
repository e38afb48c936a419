"""Reading the live state of the alarms a plan names (the quorum is judged on all of them, not one event)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.errors import unreachable
from chalicelib.models.alarms import AlarmSnapshot

_BATCH = 100  # DescribeAlarms accepts at most 100 names per call


@dataclass
class AlarmReadings:
    """What could be read of alarms spread over regions, and which regions could not be reached."""

    snapshots: list[AlarmSnapshot] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # region -> why (the error, in words)
    names_unreachable: list[str] = field(default_factory=list)  # alarms of those regions

    def by_name(self) -> dict[str, AlarmSnapshot]:
        return {s.name: s for s in self.snapshots}


class AlarmReader:
    cloudwatch = aws.Client("cloudwatch")

    def __init__(self, cloudwatch: Any | None = None) -> None:
        self.cloudwatch = cloudwatch

    def snapshots(self, names: Iterable[str], region: str | None = None) -> list[AlarmSnapshot]:
        cw = self.cloudwatch if region is None else aws.client("cloudwatch", region)
        return _describe(cw, names)

    def read(self, names_by_region: Mapping[str, Iterable[str]]) -> AlarmReadings:
        """Each region's alarms from that region's CloudWatch. A region that cannot be reached (connection
        refused or dropped, timeouts, 5xx after the retries) is reported, not raised: its alarms are unknown
        and the trigger policy decides what that means. It costs seconds (fail-fast client), never the
        minutes of the default retries. Throttling and other errors are raised as usual."""
        out = AlarmReadings()
        for region, names in names_by_region.items():
            wanted = list(dict.fromkeys(names))
            if not wanted:
                continue
            cw = AlarmReader.cloudwatch.of(self, region, fail_fast=True)
            try:
                out.snapshots.extend(_describe(cw, wanted))
            except Exception as exc:
                if not unreachable(exc):
                    raise
                out.unreachable[region] = f"{type(exc).__name__}: {exc}"[:500]
                out.names_unreachable.extend(wanted)
        return out


def _describe(cw: Any, names: Iterable[str]) -> list[AlarmSnapshot]:
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
