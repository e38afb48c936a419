"""Conditions the code relies on, checked explicitly: `assert` is stripped under `python -O`, these are not.

A broken invariant is a bug in Lifeboat, never bad input (input is rejected by the models with a reason), so
it raises `InvariantViolated` naming what was missing instead of carrying on with a wrong value.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class InvariantViolated(RuntimeError):
    """Something Lifeboat's own code guarantees did not hold (a bug, reported by name)."""


def present(value: T | None, what: str) -> T:
    """`value`, which the caller's logic guarantees is set; InvariantViolated naming `what` when it is not."""
    if value is None:
        raise InvariantViolated(f"{what} is missing")
    return value
