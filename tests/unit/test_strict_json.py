"""Request bodies as strict JSON: a repeated key is an error naming it; everything else reads as json does."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.models import strict_json

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
documents = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)


@given(documents)
def test_any_document_without_repeated_keys_reads_as_the_json_module_reads_it(doc: Any) -> None:
    # Given any JSON document (dict keys are unique by construction)
    text = json.dumps(doc)
    # When it is read strictly / Then the result is what json.loads gives
    assert strict_json.loads(text) == json.loads(text)


@given(st.text(max_size=10), scalars, scalars, st.integers(min_value=0, max_value=3))
def test_a_key_given_twice_at_any_depth_is_refused_by_name(
    key: str, first: Any, second: Any, depth: int
) -> None:
    # Given an object repeating `key`, nested `depth` levels down
    inner = (
        "{"
        + json.dumps(key)
        + ": "
        + json.dumps(first)
        + ", "
        + json.dumps(key)
        + ": "
        + json.dumps(second)
        + "}"
    )
    text = inner
    for level in range(depth):
        text = f'{{"level{level}": [{text}]}}'
    # When it is read / Then the error names the key, whichever value came last
    with pytest.raises(strict_json.DuplicateKey) as err:
        strict_json.loads(text)
    assert err.value.key == key


@given(st.binary(max_size=200))
def test_any_bytes_give_a_document_or_a_named_error(raw: bytes) -> None:
    # Given arbitrary bytes / When read / Then a value or one of the two named errors, nothing else
    with contextlib.suppress(strict_json.DuplicateKey, strict_json.NotJson):
        strict_json.loads(raw)


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity}', "[-Infinity]"])
def test_values_json_does_not_have_are_refused(text: str) -> None:
    with pytest.raises(strict_json.NotJson, match="not a JSON value"):
        strict_json.loads(text)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(strict_json.NotJson, match="deeply"):
        strict_json.loads("[" * 100_000 + "]" * 100_000)
