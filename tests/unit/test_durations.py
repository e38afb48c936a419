"""Durations as plan authors write them: "30s", "5m", "1h30m"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from chalicelib.models.durations import Duration, format_duration, format_seconds, parse_duration

WHOLE_MS = st.integers(min_value=0, max_value=10**13).map(lambda ms: timedelta(milliseconds=ms))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("500ms", timedelta(milliseconds=500)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1m30s", timedelta(seconds=90)),
        (" 1h 30m ", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        ("0s", timedelta(0)),
        (90, timedelta(seconds=90)),
        (2.5, timedelta(seconds=2.5)),
        (timedelta(minutes=3), timedelta(minutes=3)),
    ],
)
def test_accepts_the_spellings_plan_authors_use(text, expected):
    # Given a duration as it appears in a plan
    # When it is parsed
    # Then it is the timedelta the author meant
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "expected a duration such as 30s, 5m, 1h (got 'abc')"),
        ("", "expected a duration such as 30s, 5m, 1h (got '')"),
        ("5M", "expected a duration such as 30s, 5m, 1h (got '5M')"),
        ("5 minutes", "expected a duration such as 30s, 5m, 1h (got '5 minutes')"),
        ("5", "expected a duration such as 30s, 5m, 1h; a number in quotes needs a unit, e.g. 5s (got '5')"),
        ("-5m", "a duration must not be negative (got '-5m')"),
        (-1, "a duration must not be negative (got -1)"),
        (timedelta(seconds=-1), "a duration must not be negative (got a timedelta)"),
        ("30m1h", "duration units go from largest to smallest, each at most once, e.g. 1h30m (got '30m1h')"),
        ("1h1h", "duration units go from largest to smallest, each at most once, e.g. 1h30m (got '1h1h')"),
        (True, "expected a duration such as 30s, 5m, 1h (got true)"),
        (None, "expected a duration such as 30s, 5m, 1h (got null)"),
        ([1], "expected a duration such as 30s, 5m, 1h (got a list)"),
        (float("nan"), "expected a duration such as 30s, 5m, 1h (got nan)"),
        (1e300, "the duration is too large (got 1e+300)"),
    ],
)
def test_refuses_anything_else_with_a_helpful_message(value, message):
    # Given something that is not a non-negative duration
    # When it is parsed
    # Then the error says what a duration looks like and echoes the input
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(seconds=1.5), "1s500ms"),
        (timedelta(hours=25), "1d1h"),
        (timedelta(minutes=5), "5m"),
        (timedelta(microseconds=1500), "1ms500us"),
    ],
)
def test_formats_the_canonical_short_form(value, text):
    # Given a timedelta / When it is formatted / Then it is the shortest largest-unit-first spelling
    assert format_duration(value) == text


def test_format_refuses_negative_durations():
    # Given a negative timedelta (plans never hold one)
    # When it is formatted
    # Then it is refused rather than written as something that would not parse
    with pytest.raises(ValueError):
        format_duration(timedelta(seconds=-1))


@given(WHOLE_MS)
def test_parse_inverts_format_for_whole_milliseconds(value):
    # Given any non-negative duration in whole milliseconds
    # When it is formatted and parsed back
    # Then nothing is lost
    assert parse_duration(format_duration(value)) == value


@given(st.timedeltas(min_value=timedelta(0)))
def test_parse_inverts_format_down_to_the_microsecond(value):
    # Given any non-negative timedelta at all, up to timedelta.max
    # When it is formatted and parsed back
    # Then nothing is lost (sub-millisecond parts are written in us)
    assert parse_duration(format_duration(value)) == value


@given(WHOLE_MS, WHOLE_MS)
def test_ordering_is_preserved_through_text(a, b):
    # Given two durations
    # When both go through their text form
    # Then they compare exactly as before
    parsed_a, parsed_b = parse_duration(format_duration(a)), parse_duration(format_duration(b))
    assert (parsed_a < parsed_b) == (a < b)
    assert (parsed_a == parsed_b) == (a == b)


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=59))
def test_compound_spellings_add_up(minutes, seconds):
    # Given a compound spelling such as 12m34s
    # When it is parsed
    # Then it is the sum of its parts
    assert parse_duration(f"{minutes}m{seconds}s") == timedelta(minutes=minutes, seconds=seconds)


@given(
    st.one_of(
        st.text(),
        st.text(alphabet="0123456789.dhmsu -+e", max_size=80),
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    )
)
def test_garbage_only_ever_raises_value_error(value):
    # Given arbitrary input, mostly garbage
    # When it is parsed
    # Then the result is a non-negative timedelta or a ValueError: pydantic only turns ValueError into a
    # validation error that names the field, anything else would crash the plan loader
    try:
        result = parse_duration(value)
    except ValueError:
        return
    assert isinstance(result, timedelta) and result >= timedelta(0)


class _Window(BaseModel):
    window: Duration


def test_duration_fields_read_text_and_write_text_in_json():
    # Given a model with a Duration field, validated from text
    window = _Window.model_validate({"window": "1h30m"})

    # When it is dumped in python and in JSON mode
    # Then python code sees a timedelta and JSON sees the canonical text
    assert window.window == timedelta(minutes=90)
    assert window.model_dump() == {"window": timedelta(minutes=90)}
    assert window.model_dump(mode="json") == {"window": "1h30m"}
    assert _Window.model_validate_json(window.model_dump_json()) == window


def test_duration_fields_report_the_field_and_the_input():
    # Given a bad duration in a model
    # When it is validated
    # Then the pydantic error is a value error carrying the duration message
    with pytest.raises(ValidationError) as caught:
        _Window.model_validate({"window": "soon"})
    (error,) = caught.value.errors()
    assert error["loc"] == ("window",)
    assert error["msg"] == "Value error, expected a duration such as 30s, 5m, 1h (got 'soon')"


def test_duration_json_schema_is_a_string():
    # Given the JSON schema of a Duration field (editors and docs use it)
    schema = _Window.model_json_schema()["properties"]["window"]

    # Then it describes text such as 30s
    assert schema["type"] == "string"
    assert "30s" in schema["examples"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.85, "850ms"),
        (6.84, "6.8s"),
        (42.4, "42s"),
        (90, "1m30s"),
        (300, "5m"),
        (3725, "1h2m"),
        (-12.3, "-12s"),
        (None, "-"),
    ],
)
def test_measured_seconds_read_in_the_plans_units(seconds, text):
    # Given a measured duration (an RTO, a bake left, a margin)
    # When it is shown to a person
    # Then it is spelled as plans spell durations, with a tenth below ten seconds and ms below one
    assert format_seconds(seconds) == text
