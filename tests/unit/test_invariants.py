"""Invariants in Lambda code are explicit checks: `assert` disappears under `python -O`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chalicelib.invariants import InvariantViolated, present

CHALICELIB = Path(__file__).resolve().parents[2] / "chalicelib"


def test_no_module_of_the_lambda_package_guards_an_invariant_with_assert() -> None:
    # Given every module of the Lambda package
    found = [
        f"{path.relative_to(CHALICELIB.parent)}:{node.lineno}"
        for path in sorted(CHALICELIB.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Assert)
    ]
    # Then none uses assert (use chalicelib.invariants.present, or raise a named error)
    assert found == []


def test_a_missing_value_names_what_was_missing() -> None:
    assert present(0, "the count") == 0
    with pytest.raises(InvariantViolated, match="the execution name of a start decision is missing"):
        present(None, "the execution name of a start decision")
