"""Scheduled EventBridge rules for the local cloud: moto stores a rule's ScheduleExpression but never fires
it; `Scheduler` does, so `failback_auto`, `verify_scheduled` and `drill_monthly` run on their schedule.

- `parse_schedule` reads EventBridge's `rate(...)` and six-field `cron(...)` expressions; `due` decides, from
  plain values, whether a schedule has a due time to fire (pure, property-tested).
- `scheduled_event` builds the documented "Scheduled Event" envelope
  (events/eventbridge/scheduled-event.json).
- `Scheduler.tick(now)` fires every ENABLED scheduled rule of the local cloud's regions that is due, through
  `lambda_runner.send_scheduled` (the same delivery as an event that matches a rule).

Semantics (EventBridge user guide, "Creating a rule that runs on a schedule"; all times UTC):
- A rate schedule starts when the rule is created: it is due every period after that. moto keeps no creation
  time, so the scheduler counts from the tick that first sees the rule (or sees its expression change).
- A cron schedule is due at each whole minute its fields match. A rule first seen during a due minute does
  not fire for it.
- A rule fires at most once per due time and, like a late scheduler, once after a pause however many due
  times it missed, for the latest of them (the event's `time`). Disabled rules do not fire; re-enabled, they
  start over as new rules.

Cron fields: minutes 0-59, hours 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 1-7 or SUN-SAT
(1 = Sunday), year 1970-2199. Every field takes `*`, values, lists and ranges (a range may wrap: hours `22-2`,
day-of-week `FRI-MON`; not years); minutes, hours, day-of-month, month and year take `/` steps (`0/15`,
`*/5`, `8-17/2`). Exactly one of day-of-month and day-of-week is `?`. Alone in its field: day-of-month `L`
(last day) and `nW` (weekday nearest day n in the same month; n up to 28 only: how EventBridge treats 29W-31W
in shorter months is undocumented) and day-of-week `L` (Saturday), `nL` (last day n of the month) and `n#k`
(k-th day n of the month). Anything else (`LW`, `L-3`, `W` or `#` in lists) is rejected with the reason.
"""

from __future__ import annotations

import calendar
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from localcloud import lambda_runner

if TYPE_CHECKING:
    from localcloud.server import LocalCloud

logger = logging.getLogger(__name__)

SCHEDULED_EVENT = "Scheduled Event"
SCHEDULED_EVENT_SOURCE = "aws.events"

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
SATURDAY = 7
_RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def utc_now() -> datetime:
    return datetime.now(UTC)


class ScheduleExpressionError(ValueError):
    """A ScheduleExpression this scheduler cannot run (malformed, or a cron feature it does not support)."""

    def __init__(self, expression: str, reason: str) -> None:
        super().__init__(f"schedule expression {expression!r}: {reason}")
        self.expression = expression
        self.reason = reason


# ------------------------------------------------------------------------------------------------- rate


@dataclass(frozen=True)
class Rate:
    """`rate(value unit)`: due every `period` after the rule's start."""

    expression: str
    period: timedelta

    def latest(self, start: datetime, at: datetime) -> datetime | None:
        """The latest due time at or before `at` (None before the first one, one period after `start`)."""
        if at < start + self.period:
            return None
        return start + ((at - start) // self.period) * self.period


def _parse_rate(expression: str, body: str) -> Rate:
    match = re.fullmatch(r"\s*([0-9]+)\s+([a-z]+)\s*", body, flags=re.ASCII)
    if not match:
        raise ScheduleExpressionError(expression, "expected rate(value unit), e.g. rate(5 minutes)")
    value, unit = int(match.group(1)), match.group(2)
    singular = unit.removesuffix("s")
    if singular not in _RATE_UNITS:
        raise ScheduleExpressionError(expression, f"unit must be minute(s), hour(s) or day(s), not {unit!r}")
    if value < 1:
        raise ScheduleExpressionError(expression, "the value must be a positive number")
    # EventBridge's own rule: rate(1 hours) and rate(5 hour) are invalid.
    if (value == 1) != (unit == singular):
        expected = singular if value == 1 else f"{singular}s"
        raise ScheduleExpressionError(expression, f"with the value {value} the unit must be {expected!r}")
    return Rate(expression=expression, period=value * _RATE_UNITS[singular])


# ------------------------------------------------------------------------------------------------- cron


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    steps: bool = True  # takes `/`
    wraps: bool = True  # a range may run past the end back to the start


MINUTES = _Field("minutes", 0, 59)
HOURS = _Field("hours", 0, 23)
DAY_OF_MONTH = _Field("day-of-month", 1, 31)
MONTH = _Field("month", 1, 12, names=MONTHS)
DAY_OF_WEEK = _Field("day-of-week", 1, 7, names=DAYS, steps=False)
YEAR = _Field("year", 1970, 2199, wraps=False)


def day_of_week(day: date) -> int:
    """EventBridge's day-of-week number: 1 = Sunday ... 7 = Saturday."""
    return (day.weekday() + 1) % 7 + 1


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


@dataclass(frozen=True)
class DayRule:
    """Which days a cron expression runs on: its day-of-month or day-of-week field (the other one is `?`)."""

    kind: str  # "month-days", "last-day", "nearest-weekday", "week-days", "last-weekday", "nth-weekday"
    values: frozenset[int] = frozenset()
    weekday: int = 0  # nearest-weekday: the day of the month; last-weekday/nth-weekday: the day of the week
    nth: int = 0

    def matches(self, day: date) -> bool:
        last = _last_day(day.year, day.month)
        if self.kind == "month-days":
            return day.day in self.values
        if self.kind == "last-day":
            return day.day == last
        if self.kind == "nearest-weekday":
            return day.day == _nearest_weekday(day.year, day.month, self.weekday)
        if self.kind == "week-days":
            return day_of_week(day) in self.values
        if self.kind == "last-weekday":
            return day_of_week(day) == self.weekday and day.day + 7 > last
        if self.kind == "nth-weekday":
            return day_of_week(day) == self.weekday and (day.day - 1) // 7 + 1 == self.nth
        raise AssertionError(f"unknown day rule {self.kind}")


def _nearest_weekday(year: int, month: int, wanted: int) -> int:
    # A Saturday moves to the Friday before, a Sunday to the Monday after, never out of the month.
    dow = day_of_week(date(year, month, wanted))
    last = _last_day(year, month)
    if dow == SATURDAY:
        return wanted - 1 if wanted > 1 else wanted + 2
    if dow == 1:
        return wanted + 1 if wanted < last else wanted - 2
    return wanted


@dataclass(frozen=True)
class Cron:
    """`cron(minutes hours day-of-month month day-of-week year)`, evaluated in UTC."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...]
    days: DayRule

    def matches(self, at: datetime) -> bool:
        """Does the minute `at` falls in match every field?"""
        at = at.astimezone(UTC)
        return (
            at.minute in self.minutes
            and at.hour in self.hours
            and at.month in self.months
            and at.year in self.years
            and self.days.matches(at.date())
        )

    def latest(self, start: datetime, at: datetime) -> datetime | None:
        """The latest matching minute at or before `at` (`start` is unused: cron keeps to the calendar)."""
        del start
        at = at.astimezone(UTC).replace(second=0, microsecond=0)
        for year in reversed(self.years):
            if year > at.year:
                continue
            for month in reversed(self.months):
                if (year, month) > (at.year, at.month):
                    continue
                top = at.day if (year, month) == (at.year, at.month) else _last_day(year, month)
                for day in range(top, 0, -1):
                    if not self.days.matches(date(year, month, day)):
                        continue
                    for hour in reversed(self.hours):
                        for minute in reversed(self.minutes):
                            candidate = datetime(year, month, day, hour, minute, tzinfo=UTC)
                            if candidate <= at:
                                return candidate
        return None


def _parse_cron(expression: str, body: str) -> Cron:
    parts = body.split()
    if len(parts) != 6:
        raise ScheduleExpressionError(
            expression,
            f"cron needs 6 fields (minutes hours day-of-month month day-of-week year), got {len(parts)}",
        )
    minutes, hours, dom, month, dow, year = parts
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(
            expression,
            "exactly one of day-of-month and day-of-week must be '?' (the other one picks the days)",
        )
    days = _day_of_week_rule(expression, dow) if dom == "?" else _day_of_month_rule(expression, dom)
    return Cron(
        expression=expression,
        minutes=_values(expression, MINUTES, minutes),
        hours=_values(expression, HOURS, hours),
        months=_values(expression, MONTH, month),
        years=_values(expression, YEAR, year),
        days=days,
    )


def _day_of_month_rule(expression: str, text: str) -> DayRule:
    upper = text.upper()
    if upper == "L":
        return DayRule(kind="last-day")
    if "W" in upper:
        match = re.fullmatch(r"([0-9]+)W", upper)
        if not match:
            raise ScheduleExpressionError(
                expression, f"day-of-month {text!r}: W takes one day, alone (e.g. 15W); LW is not supported"
            )
        wanted = int(match.group(1))
        if not 1 <= wanted <= 28:
            raise ScheduleExpressionError(
                expression,
                f"day-of-month {text!r}: nW is supported for days 1-28 (EventBridge does not document "
                "29W-31W in shorter months)",
            )
        return DayRule(kind="nearest-weekday", weekday=wanted)
    if "L" in upper:
        raise ScheduleExpressionError(expression, f"day-of-month {text!r}: L stands alone (the last day)")
    return DayRule(kind="month-days", values=frozenset(_values(expression, DAY_OF_MONTH, text)))


def _day_of_week_rule(expression: str, text: str) -> DayRule:
    upper = text.upper()
    if upper == "L":
        return DayRule(kind="week-days", values=frozenset({SATURDAY}))  # the last day of the week
    if "#" in upper:
        match = re.fullmatch(r"([0-9A-Z]+)#([0-9]+)", upper)
        if not match:
            raise ScheduleExpressionError(
                expression, f"day-of-week {text!r}: # takes one day and one instance, alone (e.g. 3#2)"
            )
        nth = int(match.group(2))
        if not 1 <= nth <= 5:
            raise ScheduleExpressionError(expression, f"day-of-week {text!r}: the instance must be 1-5")
        return DayRule(kind="nth-weekday", weekday=_value(expression, DAY_OF_WEEK, match.group(1)), nth=nth)
    if upper.endswith("L") and upper not in DAYS:
        match = re.fullmatch(r"([0-9A-Z]+)L", upper)
        if not match:
            raise ScheduleExpressionError(
                expression, f"day-of-week {text!r}: L takes one day, alone (e.g. 6L, the last Friday)"
            )
        return DayRule(kind="last-weekday", weekday=_value(expression, DAY_OF_WEEK, match.group(1)))
    return DayRule(kind="week-days", values=frozenset(_values(expression, DAY_OF_WEEK, text)))


def _values(expression: str, spec: _Field, text: str) -> tuple[int, ...]:
    """The sorted values a comma-separated field selects."""
    selected: set[int] = set()
    for item in text.split(","):
        selected.update(_item(expression, spec, item))
    return tuple(sorted(selected))


def _item(expression: str, spec: _Field, item: str) -> Iterable[int]:
    base, slash, step_text = item.partition("/")
    if slash and not spec.steps:
        raise ScheduleExpressionError(expression, f"{spec.name} {item!r}: / is not allowed in {spec.name}")
    if base == "*":
        sequence = list(range(spec.low, spec.high + 1))
    elif "-" in base:
        first_text, _, last_text = base.partition("-")
        first, last = _value(expression, spec, first_text), _value(expression, spec, last_text)
        if first <= last:
            sequence = list(range(first, last + 1))
        elif spec.wraps:
            sequence = list(range(first, spec.high + 1)) + list(range(spec.low, last + 1))
        else:
            raise ScheduleExpressionError(expression, f"{spec.name} {item!r}: the range runs backwards")
    else:
        first = _value(expression, spec, base)
        # `a/n` runs from a to the end of the field; a lone value is itself.
        sequence = list(range(first, spec.high + 1)) if slash else [first]
    if not slash:
        return sequence
    if not _is_number(step_text) or not 1 <= int(step_text) <= spec.high - spec.low + 1:
        raise ScheduleExpressionError(
            expression, f"{spec.name} {item!r}: the step must be 1-{spec.high - spec.low + 1}"
        )
    return sequence[:: int(step_text)]


def _value(expression: str, spec: _Field, text: str) -> int:
    upper = text.upper()
    if upper in spec.names:
        return spec.names.index(upper) + spec.low
    if not _is_number(text):
        named = f" or {spec.names[0]}-{spec.names[-1]}" if spec.names else ""
        raise ScheduleExpressionError(
            expression, f"{spec.name} {text!r}: expected a number {spec.low}-{spec.high}{named}"
        )
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise ScheduleExpressionError(expression, f"{spec.name} {value} is outside {spec.low}-{spec.high}")
    return value


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


# ------------------------------------------------------------------------------------------------ public

Schedule = Rate | Cron


def parse_schedule(expression: str) -> Schedule:
    """A rule's ScheduleExpression as a schedule; ScheduleExpressionError says what is wrong with it."""
    match = re.fullmatch(r"\s*(rate|cron)\((.*)\)\s*", expression, flags=re.ASCII | re.DOTALL)
    if not match:
        raise ScheduleExpressionError(expression, "expected rate(...) or cron(...)")
    kind, body = match.groups()
    return _parse_rate(expression, body) if kind == "rate" else _parse_cron(expression, body)


def due(schedule: Schedule, *, start: datetime, last: datetime | None, now: datetime) -> datetime | None:
    """The due time to fire for at `now`, or None: the latest due time at or before `now` that is later than
    both `start` (when the scheduler began tracking the rule) and `last` (the due time it last fired for).
    Missed due times before it are never fired: one late firing stands for them all."""
    latest = schedule.latest(start, now)
    if latest is None or latest <= start or (last is not None and latest <= last):
        return None
    return latest


def scheduled_event(rule_arn: str, at: datetime, *, event_id: str | None = None) -> dict[str, Any]:
    """The event EventBridge sends a scheduled rule's targets (the user guide's "Scheduled Event" example)."""
    _, _, _, region, account, _ = rule_arn.split(":", 5)
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": SCHEDULED_EVENT,
        "source": SCHEDULED_EVENT_SOURCE,
        "account": account,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


# --------------------------------------------------------------------------------------------- scheduler


@dataclass(frozen=True)
class Firing:
    """One scheduled rule fired: for which due time, with which event, to how many targets."""

    rule_arn: str
    rule_name: str
    due: datetime
    event: dict[str, Any] = field(repr=False)
    targets: int


@dataclass
class _Tracked:
    expression: str
    start: datetime
    schedule: Schedule | None  # None: the expression cannot run here (logged once)
    last: datetime | None = None


class Scheduler:
    """Fires the local cloud's scheduled EventBridge rules when they are due, like EventBridge does.

    `tick(now)` is the whole behaviour (tests call it with their own clock); `start` runs it every
    `interval_s` seconds in a daemon thread on the injected clock.
    """

    def __init__(
        self,
        cloud: LocalCloud,
        *,
        regions: Iterable[str] | None = None,
        clock: Callable[[], datetime] = utc_now,
        deliver: Callable[[str, Mapping[str, Any]], int] = lambda_runner.send_scheduled,
    ) -> None:
        self._cloud = cloud
        self.regions = list(regions) if regions is not None else [cloud.region, cloud.secondary_region]
        self._clock = clock
        self._deliver = deliver
        self._lock = threading.Lock()  # one tick at a time
        self._tracked: dict[str, _Tracked] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------------------------------------ one tick

    def tick(self, now: datetime | None = None) -> list[Firing]:
        """Fire every enabled scheduled rule that has a due time in (its last firing, `now`]."""
        now = (now or self._clock()).astimezone(UTC).replace(microsecond=0)
        fired: list[Firing] = []
        with self._lock:
            seen: set[str] = set()
            listed: set[str] = set()
            for region in self.regions:
                try:
                    rules = self._scheduled_rules(region)
                except (BotoCoreError, ClientError):
                    # A region it cannot read must not hold up the other; its rules keep their state.
                    logger.exception("cannot list the scheduled rules of %s", region)
                    continue
                listed.add(region)
                for rule in rules:
                    arn = rule["Arn"]
                    seen.add(arn)
                    firing = self._consider(rule, now)
                    if firing is not None:
                        fired.append(firing)
            # Deleted or disabled rules are forgotten: created or enabled again, they start over.
            for arn in [a for a in self._tracked if a not in seen and a.split(":")[3] in listed]:
                del self._tracked[arn]
        return fired

    def _scheduled_rules(self, region: str) -> list[dict[str, Any]]:
        events = self._cloud.client("events", region)
        rules: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = events.list_rules(**kwargs)  # the default bus: the only one schedules run on
            rules += [
                rule
                for rule in page.get("Rules", [])
                if rule.get("ScheduleExpression") and rule.get("State") != "DISABLED"
            ]
            if not page.get("NextToken"):
                return rules
            kwargs["NextToken"] = page["NextToken"]

    def _consider(self, rule: Mapping[str, Any], now: datetime) -> Firing | None:
        arn, expression = rule["Arn"], rule["ScheduleExpression"]
        tracked = self._tracked.get(arn)
        if tracked is None or tracked.expression != expression:
            try:
                schedule: Schedule | None = parse_schedule(expression)
            except ScheduleExpressionError as exc:
                logger.error("scheduled rule %s will not fire in the local cloud: %s", rule["Name"], exc)
                schedule = None
            self._tracked[arn] = _Tracked(expression=expression, start=now, schedule=schedule)
            return None
        if tracked.schedule is None:
            return None
        when = due(tracked.schedule, start=tracked.start, last=tracked.last, now=now)
        if when is None:
            return None
        tracked.last = when
        event = scheduled_event(arn, when)
        try:
            targets = self._deliver(arn, event)
        except Exception:  # noqa: BLE001 - EventBridge counts a failed invocation; the schedule goes on
            logger.exception("scheduled rule %s could not deliver its event of %s", rule["Name"], when)
            targets = 0
        logger.info("scheduled rule %s fired for %s (%d targets)", rule["Name"], when.isoformat(), targets)
        return Firing(rule_arn=arn, rule_name=rule["Name"], due=when, event=event, targets=targets)

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self, interval_s: float = 1.0) -> Scheduler:
        """Tick every `interval_s` seconds in a daemon thread (EventBridge fires within the due minute)."""
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        if self._thread is not None:
            raise RuntimeError("the scheduler is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), name="schedules", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the loop and join its thread (at most `timeout` seconds); True when it has ended."""
        thread, self._thread = self._thread, None
        self._stopping.set()
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("the scheduler loop did not end within %.1fs", timeout)
            return False
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, interval_s: float) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - one bad round (cloud restarting) must not end the schedules
                logger.exception("scheduler round failed")
            self._stopping.wait(max(0.0, interval_s - (time.monotonic() - started)))

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
