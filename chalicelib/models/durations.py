"""Human-friendly durations ("30s", "5m", "1h30m") for plan files, and the pydantic `Duration` type."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

# Largest first: format_duration emits units in this order and parse_duration insists on it, so that every
# duration has exactly one canonical spelling and "30m1h" (almost certainly a typo) is refused.
_UNIT_MICROSECONDS: dict[str, int] = {
    "d": 86_400_000_000,
    "h": 3_600_000_000,
    "m": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
    "us": 1,
}
_UNIT_ORDER = list(_UNIT_MICROSECONDS)

# "ms" must be tried before "m", otherwise "500ms" would read as 500 minutes followed by garbage.
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|us|d|h|m|s)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?\s*(?:ms|us|d|h|m|s)\s*)+")
# Long enough for "999999d23h59m59s999ms999us" with spaces; anything longer is garbage, not a duration.
_MAX_TEXT = 64

DURATION_PATTERN = r"^(\d+(\.\d+)?\s*(d|h|m|s|ms|us)\s*)+$"
"""What a duration string looks like (for JSON schema and documentation)."""

_HINT = "expected a duration such as 30s, 5m, 1h"


def describe_value(value: Any) -> str:
    """A short description of a bad input for error messages: 'abc', 12, null, a list, a mapping."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _bad(value: Any, reason: str = _HINT) -> ValueError:
    return ValueError(f"{reason} (got {describe_value(value)})")


def _from_seconds(value: int | float) -> timedelta:
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(value)
    if value < 0:
        raise _bad(value, "a duration must not be negative")
    try:
        return timedelta(seconds=value)
    except OverflowError:
        raise _bad(value, "the duration is too large") from None


def _from_text(value: str) -> timedelta:
    text = value.strip()
    if not text:
        raise _bad(value)
    if len(text) > _MAX_TEXT or not _WHOLE.fullmatch(text):
        if text.startswith("-"):
            raise _bad(value, "a duration must not be negative")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            raise _bad(value, f"{_HINT}; a number in quotes needs a unit, e.g. {text}s")
        raise _bad(value)
    total = Decimal(0)
    previous = -1
    for number, unit in _PART.findall(text):
        rank = _UNIT_ORDER.index(unit)
        if rank <= previous:
            raise _bad(value, "duration units go from largest to smallest, each at most once, e.g. 1h30m")
        previous = rank
        total += Decimal(number) * _UNIT_MICROSECONDS[unit]
    try:
        return timedelta(microseconds=int(total.to_integral_value()))
    except (OverflowError, InvalidOperation):
        raise _bad(value, "the duration is too large") from None


def parse_duration(value: Any) -> timedelta:
    """Read "30s", "5m", "1h", "2d", "500ms", "1h30m", a number of seconds, or a timedelta.

    Raises ValueError (and nothing else) for anything that is not a non-negative duration, because pydantic
    turns only ValueError into a validation error that names the field.
    """
    if isinstance(value, bool):  # bool is an int subclass; "true" is never a sensible duration.
        raise _bad(value)
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise _bad(value, "a duration must not be negative")
        return value
    if isinstance(value, int | float):
        return _from_seconds(value)
    if isinstance(value, str):
        return _from_text(value)
    raise _bad(value)


def format_duration(value: timedelta) -> str:
    """The canonical short spelling of a duration: 90s -> "1m30s", 0 -> "0s", 1.5s -> "1s500ms"."""
    if value < timedelta(0):
        raise ValueError(f"cannot format a negative duration ({value})")
    remaining = value // timedelta(microseconds=1)
    if remaining == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_MICROSECONDS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "examples": ["30s", "5m", "1h30m", "500ms"],
            "description": "A duration: numbers with units d, h, m, s, ms (largest first), e.g. 1h30m.",
        }
    ),
]
"""A non-negative timedelta written as "30s", "5m", "1h30m"; serialised back to that form in JSON mode."""


def format_seconds(seconds: float | None, *, missing: str = "-") -> str:
    """A measured duration for people, as plans write them: 850ms, 6.8s, 42s, 1m30s, 2h5m (`missing`: None).

    Below a second in milliseconds, below ten seconds with one decimal (an RTO of 6.8s is worth the tenth),
    from there whole units largest first, as plans write them; negative values keep their sign (a margin).
    """
    if seconds is None or not math.isfinite(seconds):
        return missing
    if seconds < 0:
        return "-" + format_seconds(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms" if round(seconds * 1000) < 1000 else "1s"
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole >= 3600:  # hours and minutes: the seconds of a long wait are noise
        whole = round(seconds / 60) * 60
    return format_duration(timedelta(seconds=whole))
