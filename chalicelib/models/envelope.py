"""How large an inbound event is, measured without serialising it: the size check runs before any parsing.

EventBridge refuses events over 256 KB, so an alarm event larger than that did not come from CloudWatch
through EventBridge; a CloudWatch alarm's own payload is a few kilobytes. The walk below is iterative (a
deeply nested value cannot exhaust the stack) and stops as soon as the limit is passed, so an event of any
size costs at most the limit's worth of work.
"""

from __future__ import annotations

import json
from typing import Any

MAX_EVENT_BYTES = 256 * 1024
"""EventBridge's largest event (PutEvents entry size); the alarm entries accept nothing larger."""


def _text_size(text: str, limit: int) -> int:
    # A string longer than the limit in characters is over it in bytes too: not encoded just to be refused.
    if len(text) > limit:
        return len(text) + 2
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _scalar_size(value: Any) -> int:
    if value is None or value is True:
        return 4
    if value is False:
        return 5
    return len(json.dumps(value)) if isinstance(value, int | float) else len(str(value))


def json_size_over(value: Any, limit: int = MAX_EVENT_BYTES) -> int | None:
    """None when `value` written as compact UTF-8 JSON (`separators=(",", ":")`) fits in `limit` bytes;
    else how many bytes were counted when the walk stopped (more than `limit`)."""
    total = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += _text_size(item, limit)
        elif isinstance(item, dict):
            total += 1 if item else 2  # the braces, less the comma the last member does not have
            for key, child in item.items():
                total += _text_size(str(key), limit) + 2  # the colon and a comma
                if total > limit:
                    return total
                stack.append(child)
        elif isinstance(item, list | tuple):
            # The brackets and the commas. Every item costs at least a byte more, so a list longer than
            # the limit is refused before it is walked.
            total += 1 + len(item) if item else 2
            if total > limit:
                return total
            stack.extend(item)
        else:
            total += _scalar_size(item)
        if total > limit:
            return total
    return None
