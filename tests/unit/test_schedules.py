"""The local cloud's schedules: rate/cron expressions, due times, the Scheduled Event and the scheduler."""

from __future__ import annotations

import calendar
import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localcloud.schedules import (
    DAYS,
    MONTHS,
    Cron,
    Rate,
    ScheduleExpressionError,
    Scheduler,
    due,
    parse_schedule,
    scheduled_event,
)

FIXTURE = Path(__file__).resolve().parents[2] / "events" / "eventbridge" / "scheduled-event.json"
ACCOUNT = "123456789012"
T0 = datetime(2030, 1, 1, 9, 0, 7, tzinfo=UTC)


def rule_arn(name: str, region: str = "us-east-1") -> str:
    return f"arn:aws:events:{region}:{ACCOUNT}:rule/{name}"


# ------------------------------------------------------------------------------------ oracles (independent)

# (low, high, names, takes steps, ranges wrap) per field, from the EventBridge user guide's table.
FIELDS: dict[str, tuple[int, int, tuple[str, ...], bool, bool]] = {
    "minutes": (0, 59, (), True, True),
    "hours": (0, 23, (), True, True),
    "dom": (1, 31, (), True, True),
    "month": (1, 12, MONTHS, True, True),
    "dow": (1, 7, DAYS, False, True),
    "year": (1970, 2199, (), True, False),
}

Item = tuple[Any, ...]  # ("value", a) | ("star",) | ("range", a, b) | ("step", base item, s)


def item_contains(field: str, item: Item, v: int) -> bool:
    low, high, *_ = FIELDS[field]
    size = high - low + 1
    kind = item[0]
    if kind == "value":
        return v == item[1]
    if kind == "star":
        return True
    if kind == "range":
        a, b = item[1], item[2]
        return a <= v <= b if a <= b else (v >= a or v <= b)
    base, step = item[1], item[2]
    if base[0] == "star":
        return (v - low) % step == 0
    if base[0] == "value":
        return v >= base[1] and (v - base[1]) % step == 0
    a, b = base[1], base[2]
    offset = (v - a) % size  # position of v in the (possibly wrapping) run from a
    return offset <= (b - a) % size and offset % step == 0


def field_contains(field: str, items: list[Item], v: int) -> bool:
    return any(item_contains(field, item, v) for item in items)


def dow_number(day: date) -> int:
    return day.isoweekday() % 7 + 1  # Sunday = 1 ... Saturday = 7


def day_rule_holds(rule: Item, day: date) -> bool:
    kind = rule[0]
    if kind == "L":
        return (day + timedelta(days=1)).month != day.month
    if kind == "W":  # the weekday of the month nearest to day n
        last = calendar.monthrange(day.year, day.month)[1]
        weekdays = [d for d in range(1, last + 1) if date(day.year, day.month, d).isoweekday() <= 5]
        return day.day == min(weekdays, key=lambda d: abs(d - rule[1]))
    if kind == "nL":
        return dow_number(day) == rule[1] and (day + timedelta(days=7)).month != day.month
    if kind == "#":
        same = [d for d in range(1, day.day + 1) if dow_number(date(day.year, day.month, d)) == rule[1]]
        return dow_number(day) == rule[1] and len(same) == rule[2]
    if kind == "dom":
        return field_contains("dom", rule[1], day.day)
    return field_contains("dow", rule[1], dow_number(day))


@dataclass
class CronCase:
    minutes: list[Item]
    hours: list[Item]
    month: list[Item]
    year: list[Item]
    days: Item  # ("dom", items) | ("dow", items) | ("L",) | ("W", n) | ("nL", d) | ("#", d, k)

    def expression(self, render: Any) -> str:
        dom, dow = "?", "?"
        kind = self.days[0]
        if kind == "dom":
            dom = render("dom", self.days[1])
        elif kind == "dow":
            dow = render("dow", self.days[1])
        elif kind == "L":
            dom = "L"
        elif kind == "W":
            dom = f"{self.days[1]}W"
        elif kind == "nL":
            dow = f"{self.days[1]}L"
        else:
            dow = f"{self.days[1]}#{self.days[2]}"
        if dom == "?" and dow == "?":
            dom = "*"
        fields = [
            render("minutes", self.minutes),
            render("hours", self.hours),
            dom,
            render("month", self.month),
            dow,
            render("year", self.year),
        ]
        return f"cron({' '.join(fields)})"

    def matches(self, at: datetime) -> bool:
        day = at.date()
        return (
            field_contains("minutes", self.minutes, at.minute)
            and field_contains("hours", self.hours, at.hour)
            and field_contains("month", self.month, at.month)
            and field_contains("year", self.year, at.year)
            and day_rule_holds(self.days, day)
        )


# --------------------------------------------------------------------------------------------- strategies


@st.composite
def items(draw: st.DrawFn, field: str, dense: bool = False) -> list[Item]:
    low, high, _, steps, wraps = FIELDS[field]
    value = st.integers(low, high)

    def a_range() -> st.SearchStrategy[Item]:
        pair = st.tuples(value, value)
        if not wraps:
            pair = pair.map(lambda p: (min(p), max(p)))
        return pair.map(lambda p: ("range", p[0], p[1]))

    base = st.one_of(value.map(lambda v: ("value", v)), st.just(("star",)), a_range())
    one = base
    if steps:
        stepped = st.tuples(base, st.integers(1, high - low + 1)).map(lambda t: ("step", t[0], t[1]))
        one = st.one_of(base, stepped)
    if dense:
        return [draw(st.one_of(st.just(("star",)), one))]
    return draw(st.lists(one, min_size=1, max_size=3))


def render_with(draw: Any) -> Any:
    def render_value(field: str, v: int) -> str:
        low, _, names, *_ = FIELDS[field]
        if names and draw(st.booleans()):
            name = names[v - low]
            return draw(st.sampled_from([name, name.lower()]))
        return str(v)

    def render_item(field: str, item: Item) -> str:
        kind = item[0]
        if kind == "value":
            return render_value(field, item[1])
        if kind == "star":
            return "*"
        if kind == "range":
            return f"{render_value(field, item[1])}-{render_value(field, item[2])}"
        return f"{render_item(field, item[1])}/{item[2]}"

    return lambda field, its: ",".join(render_item(field, i) for i in its)


@st.composite
def cron_cases(draw: st.DrawFn, dense: bool = False) -> CronCase:
    days = draw(
        st.one_of(
            items("dom", dense).map(lambda i: ("dom", i)),
            items("dow", dense).map(lambda i: ("dow", i)),
            st.just(("L",)),
            st.integers(1, 28).map(lambda n: ("W", n)),
            st.integers(1, 7).map(lambda d: ("nL", d)),
            st.tuples(st.integers(1, 7), st.integers(1, 5)).map(lambda t: ("#", t[0], t[1])),
        )
    )
    year = [("star",)] if dense else draw(items("year"))
    return CronCase(
        minutes=draw(items("minutes", dense)),
        hours=draw(items("hours", dense)),
        month=draw(items("month", dense)),
        year=year,
        days=days,
    )


moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)
)


# ------------------------------------------------------------------------------------------ rate and cron


def test_rate_units_follow_eventbridges_singular_plural_rule() -> None:
    # Given the documented valid and invalid rate expressions
    # When they are parsed / Then the valid ones give their period and the invalid ones say why
    assert parse_schedule("rate(1 minute)") == Rate("rate(1 minute)", timedelta(minutes=1))
    assert parse_schedule("rate(5 minutes)").period == timedelta(minutes=5)  # type: ignore[union-attr]
    assert parse_schedule("rate(1 hour)").period == timedelta(hours=1)  # type: ignore[union-attr]
    assert parse_schedule("rate(1 day)").period == timedelta(days=1)  # type: ignore[union-attr]
    for bad, reason in [
        ("rate(1 hours)", "must be 'hour'"),
        ("rate(5 hour)", "must be 'hours'"),
        ("rate(0 minutes)", "positive"),
        ("rate(5 weeks)", "minute(s), hour(s) or day(s)"),
        ("rate(five minutes)", "rate(value unit)"),
    ]:
        with pytest.raises(ScheduleExpressionError, match=re.escape(reason)):
            parse_schedule(bad)


@pytest.mark.parametrize(
    ("expression", "at", "latest"),
    [
        # The user guide's examples
        ("cron(0 10 * * ? *)", "2030-03-14T09:59", "2030-03-13T10:00"),
        ("cron(15 12 * * ? *)", "2030-03-14T12:15", "2030-03-14T12:15"),
        ("cron(0 18 ? * MON-FRI *)", "2030-03-17T12:00", "2030-03-15T18:00"),  # Sunday -> Friday
        ("cron(0 8 1 * ? *)", "2030-03-14T00:00", "2030-03-01T08:00"),
        ("cron(0/15 * * * ? *)", "2030-03-14T12:44", "2030-03-14T12:30"),
        ("cron(0/5 8-17 ? * MON-FRI *)", "2030-03-14T18:30", "2030-03-14T17:55"),
        ("cron(0/30 20-2 ? * MON-FRI *)", "2030-03-18T01:10", "2030-03-18T01:00"),  # Monday morning
        ("cron(0/30 20-2 ? * MON-FRI *)", "2030-03-16T01:10", "2030-03-15T23:30"),  # not Saturday morning
        ("cron(5,35 14 * * ? *)", "2030-03-14T14:34", "2030-03-14T14:05"),
        ("cron(15 10 ? * 6L 2019-2022)", "2030-01-01T00:00", "2022-12-30T10:15"),  # last Friday, last year
        ("cron(0 12 ? * 3#2 *)", "2030-03-14T00:00", "2030-03-12T12:00"),  # second Tuesday
        ("cron(0 12 L * ? *)", "2030-03-14T00:00", "2030-02-28T12:00"),
        ("cron(0 12 1W * ? *)", "2030-06-05T00:00", "2030-06-03T12:00"),  # the 1st is a Saturday
        ("cron(0 12 ? * L *)", "2030-03-14T00:00", "2030-03-09T12:00"),  # L alone: Saturday
        ("cron(0 6 1 * ? *)", "2030-03-01T06:00:59", "2030-03-01T06:00"),  # drill_monthly
        ("cron(0 0 29 2 ? *)", "2030-03-14T00:00", "2028-02-29T00:00"),
        ("cron(0 0 1 1 ? 2031)", "2030-03-14T00:00", None),
    ],
)
def test_cron_latest_due_time_on_documented_examples(expression: str, at: str, latest: str | None) -> None:
    # Given an EventBridge cron expression and a moment
    schedule = parse_schedule(expression)
    now = datetime.fromisoformat(at).replace(tzinfo=UTC)
    # When the latest due time at or before it is computed
    found = schedule.latest(now, now)
    # Then it is the documented meaning's last occurrence
    assert found == (datetime.fromisoformat(latest).replace(tzinfo=UTC) if latest else None)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 6 1 * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 6 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 6 1 * ?)", "6 fields"),
        ("cron(60 6 1 * ? *)", "minutes 60 is outside 0-59"),
        ("cron(0 24 1 * ? *)", "hours 24 is outside 0-23"),
        ("cron(0 6 0 * ? *)", "day-of-month 0 is outside 1-31"),
        ("cron(0 6 1 13 ? *)", "month 13 is outside 1-12"),
        ("cron(0 6 ? * 8 *)", "day-of-week 8 is outside 1-7"),
        ("cron(0 6 1 * ? 2200)", "year 2200 is outside 1970-2199"),
        ("cron(0 6 1 * ? 2030-2020)", "runs backwards"),
        ("cron(0 6 ? * 1/2 *)", "/ is not allowed in day-of-week"),
        ("cron(0/0 6 1 * ? *)", "the step must be 1-60"),
        ("cron(0 6 LW * ? *)", "LW is not supported"),
        ("cron(0 6 L-2 * ? *)", "L stands alone"),
        ("cron(0 6 1,15W * ? *)", "W takes one day"),
        ("cron(0 6 30W * ? *)", "days 1-28"),
        ("cron(0 6 ? * 3#1,6#3 *)", "# takes one day"),
        ("cron(0 6 ? * 2#6 *)", "instance must be 1-5"),
        ("cron(0 6 ? * MON,6L *)", "L takes one day"),
        ("cron(0 6 ? * FOO *)", "day-of-week 'FOO'"),
        ("cron(0 6 ? * ٣ *)", "day-of-week '٣'"),
        ("every day at six", "rate(...) or cron(...)"),
    ],
)
def test_unsupported_or_malformed_cron_is_rejected_with_the_reason(expression: str, reason: str) -> None:
    # Given an expression EventBridge would refuse, or a feature this scheduler does not run
    # When it is parsed / Then the error names the expression and what is wrong
    with pytest.raises(ScheduleExpressionError) as err:
        parse_schedule(expression)
    assert reason in str(err.value)
    assert expression in str(err.value)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_cron_fields_select_exactly_the_documented_values(data: st.DataObject) -> None:
    # Given any cron expression built from values, names, ranges (wrapping too), `*` and steps
    case = data.draw(cron_cases())
    expression = case.expression(render_with(data.draw))
    # When it is parsed
    cron = parse_schedule(expression)
    assert isinstance(cron, Cron)
    # Then each field holds exactly the values the wildcards' definitions select
    for name, field_items, parsed in [
        ("minutes", case.minutes, cron.minutes),
        ("hours", case.hours, cron.hours),
        ("month", case.month, cron.months),
        ("year", case.year, cron.years),
    ]:
        low, high, *_ = FIELDS[name]
        assert set(parsed) == {v for v in range(low, high + 1) if field_contains(name, field_items, v)}, name


@settings(max_examples=300, deadline=None)
@given(st.data(), moments)
def test_cron_matches_exactly_the_minutes_its_fields_describe(data: st.DataObject, at: datetime) -> None:
    # Given any cron expression, including L, W, nL and # days, and any moment
    case = data.draw(cron_cases())
    cron = parse_schedule(case.expression(render_with(data.draw)))
    # When the scheduler's matcher judges the moment / Then it agrees with the definitions
    assert cron.matches(at) == case.matches(at)  # type: ignore[union-attr]


@settings(max_examples=120, deadline=None)
@given(st.data(), moments)
def test_cron_latest_is_the_last_match_at_or_before_now(data: st.DataObject, now: datetime) -> None:
    # Given a cron expression that matches often, and a moment
    case = data.draw(cron_cases(dense=True))
    cron = parse_schedule(case.expression(render_with(data.draw)))
    # When the latest due time is computed
    found = cron.latest(now, now)
    # Then it matches, is not after now, and no minute between it and now matches (checked minute by
    # minute over the two days before now; beyond them only that it matches)
    window_start = now.replace(second=0, microsecond=0) - timedelta(days=2)
    minute = now.replace(second=0, microsecond=0)
    while minute > window_start and (found is None or minute > found):
        assert not case.matches(minute), f"{minute} matches but latest said {found}"
        minute -= timedelta(minutes=1)
    if found is not None:
        assert found <= now and found.second == 0 and case.matches(found)


schedules = st.one_of(
    st.tuples(st.integers(1, 3), st.sampled_from(["minute", "hour", "day"])).map(
        lambda t: f"rate({t[0]} {t[1]}{'s' if t[0] > 1 else ''})"
    ),
    st.sampled_from(
        ["cron(0/5 * * * ? *)", "cron(0 * ? * MON-FRI *)", "cron(30 6 1,15 * ? *)", "cron(0 12 ? * 6L *)"]
    ),
)


@settings(max_examples=200, deadline=None)
@given(schedules, moments, st.lists(st.integers(1, 3 * 24 * 3600), min_size=1, max_size=30))
def test_a_rule_fires_once_per_due_time_and_once_after_a_pause(
    expression: str, start: datetime, gaps: list[int]
) -> None:
    # Given a schedule first seen at `start` and ticks at increasing moments, some far apart (pauses)
    schedule = parse_schedule(expression)
    start = start.replace(microsecond=0)
    ticks, moment = [], start
    for gap in gaps:
        moment += timedelta(seconds=gap)
        ticks.append(moment)
    # When each tick asks whether the rule is due
    fired: list[datetime] = []
    last: datetime | None = None
    previous = start
    for now in ticks:
        when = due(schedule, start=start, last=last, now=now)
        latest = schedule.latest(start, now)
        # Then a tick fires iff a due time fell since the previous tick, for the latest of them, once
        new_due = latest is not None and latest > previous
        assert (when is not None) == new_due, (previous, now, latest)
        if when is not None:
            assert when == latest and previous < when <= now
            fired.append(when)
            last = when
        previous = now
    assert fired == sorted(set(fired))
    if isinstance(schedule, Rate):
        assert all((f - start) % schedule.period == timedelta(0) and f > start for f in fired)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.text(max_size=30).map(lambda t: f"cron({t})"),
        st.lists(st.text("0123456789*?/-,#LW" + "".join(DAYS), max_size=6), min_size=6, max_size=6).map(
            lambda f: f"cron({' '.join(f)})"
        ),
    )
)
def test_parse_never_fails_with_anything_but_a_schedule_error(text: str) -> None:
    # Given arbitrary text, or six fields of cron characters
    # When it is parsed / Then it parses or raises the schedule error, never anything else
    try:
        parse_schedule(text)
    except ScheduleExpressionError as exc:
        assert exc.expression == text


# ------------------------------------------------------------------------------------------------ envelope


def test_scheduled_event_has_the_documented_shape() -> None:
    # Given the documented example of a Scheduled Event
    documented = json.loads(FIXTURE.read_text())
    # When the scheduler builds the event for the same rule, time and id
    event = scheduled_event(
        documented["resources"][0],
        datetime(2016, 12, 30, 18, 44, 49, tzinfo=UTC),
        event_id=documented["id"],
    )
    # Then it is the documented event, field for field and in the same order
    assert event == documented
    assert list(event) == list(documented)
    assert json.dumps(event) == json.dumps(documented)


# ----------------------------------------------------------------------------------------------- scheduler


class FakeEvents:
    """list_rules of one region, paginated two rules a page like a busy account."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.rules: dict[str, dict[str, Any]] = {}
        self.failing = False
        self.listed = threading.Event()

    def put(self, name: str, expression: str | None, state: str = "ENABLED") -> str:
        arn = rule_arn(name, self.region)
        rule = {"Name": name, "Arn": arn, "State": state, "EventBusName": "default"}
        if expression is not None:
            rule["ScheduleExpression"] = expression
        self.rules[name] = rule
        return arn

    def list_rules(self, NextToken: str | None = None) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.listed.set()
        if self.failing:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        rules = list(self.rules.values())
        first = int(NextToken or 0)
        page: dict[str, Any] = {"Rules": rules[first : first + 2]}
        if first + 2 < len(rules):
            page["NextToken"] = str(first + 2)
        return page


class FakeCloud:
    region = "us-east-1"
    secondary_region = "us-west-2"

    def __init__(self) -> None:
        self.events = {r: FakeEvents(r) for r in (self.region, self.secondary_region)}

    def client(self, service: str, region: str | None = None) -> FakeEvents:
        assert service == "events"
        return self.events[region or self.region]


class Deliveries:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, arn: str, event: Any) -> int:
        self.sent.append((arn, dict(event)))
        return 1

    def times(self, arn: str) -> list[str]:
        return [event["time"] for a, event in self.sent if a == arn]


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
def deliveries() -> Deliveries:
    return Deliveries()


def test_rate_rule_fires_once_per_period_and_once_after_a_pause(
    cloud: FakeCloud, deliveries: Deliveries
) -> None:
    # Given an hourly rule among rules without a schedule, first seen at T0
    arn = cloud.events["us-east-1"].put("hourly", "rate(1 hour)")
    for i in range(3):
        cloud.events["us-east-1"].put(f"pattern-{i}", None)
    scheduler = Scheduler(cloud, deliver=deliveries)  # type: ignore[arg-type]
    assert scheduler.tick(T0) == []

    # When ticks come just before, at and after the first due time, then after a 3.5 hour pause
    scheduler.tick(T0 + timedelta(minutes=59, seconds=59))
    first = scheduler.tick(T0 + timedelta(hours=1))
    scheduler.tick(T0 + timedelta(hours=1, seconds=1))
    late = scheduler.tick(T0 + timedelta(hours=4, minutes=30))
    scheduler.tick(T0 + timedelta(hours=4, minutes=31))

    # Then it fired once at 1h and once (not three times) for the latest missed due time, 4h, with that time
    assert [f.due for f in first] == [T0 + timedelta(hours=1)]
    assert [f.due for f in late] == [T0 + timedelta(hours=4)]
    assert deliveries.times(arn) == ["2030-01-01T10:00:07Z", "2030-01-01T13:00:07Z"]
    event = deliveries.sent[0][1]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [arn] and event["detail"] == {} and event["version"] == "0"
    assert event["account"] == ACCOUNT and event["region"] == "us-east-1"
    assert deliveries.sent[0][1]["id"] != deliveries.sent[1][1]["id"]


def test_cron_rule_fires_at_its_minutes_in_both_regions(cloud: FakeCloud, deliveries: Deliveries) -> None:
    # Given cron rules in the primary and the secondary region, first seen during a due minute
    east = cloud.events["us-east-1"].put("quarter", "cron(0/15 * * * ? *)")
    west = cloud.events["us-west-2"].put("quarter", "cron(0/15 * * * ? *)")
    scheduler = Scheduler(cloud, deliver=deliveries)  # type: ignore[arg-type]
    scheduler.tick(datetime(2030, 1, 1, 9, 0, 20, tzinfo=UTC))

    # When the clock passes 09:14:59, 09:15:03 and 09:15:40
    for second in (
        datetime(2030, 1, 1, 9, 14, 59, tzinfo=UTC),
        datetime(2030, 1, 1, 9, 15, 3, tzinfo=UTC),
        datetime(2030, 1, 1, 9, 15, 40, tzinfo=UTC),
    ):
        scheduler.tick(second)

    # Then each fired once, for 09:15 (not for 09:00, which began before the rule was seen)
    assert deliveries.times(east) == ["2030-01-01T09:15:00Z"]
    assert deliveries.times(west) == ["2030-01-01T09:15:00Z"]
    assert [event["region"] for _, event in deliveries.sent] == ["us-east-1", "us-west-2"]


def test_disabled_rules_do_not_fire_and_start_over_when_enabled(
    cloud: FakeCloud, deliveries: Deliveries
) -> None:
    # Given a rule every minute, seen at T0, then disabled before its first due time
    events = cloud.events["us-east-1"]
    arn = events.put("minutely", "rate(1 minute)")
    scheduler = Scheduler(cloud, deliver=deliveries)  # type: ignore[arg-type]
    scheduler.tick(T0)
    events.put("minutely", "rate(1 minute)", state="DISABLED")

    # When ten minutes pass, then it is enabled and the clock moves on
    scheduler.tick(T0 + timedelta(minutes=10))
    events.put("minutely", "rate(1 minute)")
    scheduler.tick(T0 + timedelta(minutes=10, seconds=30))
    scheduler.tick(T0 + timedelta(minutes=11))
    scheduler.tick(T0 + timedelta(minutes=11, seconds=30))

    # Then nothing fired while disabled, nor for the missed minutes: the first run is a minute after enabling
    assert deliveries.times(arn) == ["2030-01-01T09:11:37Z"]


def test_a_changed_expression_starts_the_schedule_over(cloud: FakeCloud, deliveries: Deliveries) -> None:
    # Given a daily rule seen at T0 that is changed to every 5 minutes at T0 + 3 minutes
    events = cloud.events["us-east-1"]
    arn = events.put("job", "rate(1 day)")
    scheduler = Scheduler(cloud, deliver=deliveries)  # type: ignore[arg-type]
    scheduler.tick(T0)
    events.put("job", "rate(5 minutes)")
    scheduler.tick(T0 + timedelta(minutes=3))

    # When the clock reaches T0 + 5 and T0 + 8 minutes
    scheduler.tick(T0 + timedelta(minutes=5))
    scheduler.tick(T0 + timedelta(minutes=8))

    # Then the new period counts from the change
    assert deliveries.times(arn) == ["2030-01-01T09:08:07Z"]


def test_a_rule_the_scheduler_cannot_run_is_reported_once_and_others_still_fire(
    cloud: FakeCloud, deliveries: Deliveries, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a rule whose cron uses a feature the scheduler rejects, next to a good one
    events = cloud.events["us-east-1"]
    events.put("bad", "cron(0 6 LW * ? *)")
    good = events.put("good", "rate(1 minute)")
    scheduler = Scheduler(cloud, deliver=deliveries)  # type: ignore[arg-type]

    # When several ticks pass
    with caplog.at_level(logging.ERROR, logger="localcloud.schedules"):
        for minutes in range(4):
            scheduler.tick(T0 + timedelta(minutes=minutes))

    # Then the bad rule is named once with the reason, never fires, and the good one runs every minute
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "bad" in errors[0] and "LW is not supported" in errors[0]
    assert len(deliveries.times(good)) == 3
    assert {arn for arn, _ in deliveries.sent} == {good}


def test_a_region_that_cannot_be_read_does_not_stop_the_other(
    cloud: FakeCloud, deliveries: Deliveries
) -> None:
    # Given rules in both regions, and the secondary region failing to answer for a while
    east = cloud.events["us-east-1"].put("east", "rate(1 minute)")
    west = cloud.events["us-west-2"].put("west", "rate(1 minute)")
    scheduler = Scheduler(cloud, deliver=deliveries)  # type: ignore[arg-type]
    scheduler.tick(T0)
    cloud.events["us-west-2"].failing = True

    # When a minute passes, then the region answers again a minute later
    scheduler.tick(T0 + timedelta(minutes=1))
    cloud.events["us-west-2"].failing = False
    scheduler.tick(T0 + timedelta(minutes=2))

    # Then the primary's rule kept its schedule and the secondary's kept its state (no restart)
    assert deliveries.times(east) == ["2030-01-01T09:01:07Z", "2030-01-01T09:02:07Z"]
    assert deliveries.times(west) == ["2030-01-01T09:02:07Z"]


def test_start_ticks_on_the_injected_clock_until_stopped(cloud: FakeCloud, deliveries: Deliveries) -> None:
    # Given a scheduler on a fixed clock one period after a rule was first seen
    arn = cloud.events["us-east-1"].put("minutely", "rate(1 minute)")
    scheduler = Scheduler(cloud, clock=lambda: T0 + timedelta(minutes=1), deliver=deliveries)  # type: ignore[arg-type]
    scheduler.tick(T0)

    # When its loop runs until it has listed the rules again, then is stopped
    cloud.events["us-east-1"].listed.clear()
    scheduler.start(interval_s=0.01)
    assert cloud.events["us-east-1"].listed.wait(30), "the scheduler loop never listed the rules"
    stopped = scheduler.stop(timeout=30)

    # Then it fired the due time once, however often it ticked, and its thread has ended
    assert stopped and not scheduler.running
    assert deliveries.times(arn) == ["2030-01-01T09:01:07Z"]
