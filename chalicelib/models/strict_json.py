"""Strict JSON for request bodies: a key given twice in one object is an error, not "last one wins".

Python's `json.loads` keeps the last of two equal keys without a word, so `{"dry_run": true, ...,
"dry_run": false}` reads as a real run while every reviewer of the request sees a dry one. It also accepts
`NaN` and `Infinity`, which are not JSON. Both are refused here with the name of what was wrong.
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKey(ValueError):
    """An object in the document names `key` more than once."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}: each key may appear once per object")
        self.key = key


class NotJson(ValueError):
    """The text is not a JSON document (the message says where, as the json module does)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON value")


def loads(text: str | bytes) -> Any:
    """The document in `text`; DuplicateKey for a repeated key, NotJson for anything else that is wrong."""
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except (DuplicateKey, NotJson):
        raise
    except RecursionError:
        raise NotJson("nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise NotJson(str(exc)[:200]) from None
