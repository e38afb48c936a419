"""Smoke-test verdicts: golden cases against an endpoint, judged on correctness, latency and success ratio."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.models.plan import Expectation, SmokeTests


class Invocation(BaseModel):
    """What one request to an endpoint produced (filled in by the endpoint adapter)."""

    case: str = Field(description="Smoke case name.")
    status: int | None = Field(None, description="HTTP status, None when no response arrived.")
    latency_ms: float = Field(description="Wall-clock time of the request.")
    body: Any = Field(None, description="Parsed JSON response body.")
    error: str | None = Field(None, description="Transport error (timeout, refused, bad JSON).")


class CaseResult(BaseModel):
    case: str
    passed: bool
    latency_ms: float
    reason: str = Field(description="Why it passed or failed.")
    observed: Any = Field(None, description="The value found at the expectation's field.")


class SmokeVerdict(BaseModel):
    """The verdict on one endpoint; `passed` is what safety rules rely on."""

    target: str = Field(description="primary or secondary.")
    region: str = Field(description="Region of the endpoint tested.")
    passed: bool
    reason: str
    success_ratio: float
    p95_latency_ms: float
    cases: list[CaseResult]
    at: datetime


_MISSING = object()


def extract(body: Any, path: str) -> Any:
    """Follow a dot path ("predictions.0.score") through dicts and lists; _MISSING when absent."""
    current = body
    for part in path.split("."):
        if isinstance(current, dict):
            if part not in current:
                return _MISSING
            current = current[part]
        elif isinstance(current, list):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                return _MISSING
        else:
            return _MISSING
    return current


def judge_case(expect: Expectation, inv: Invocation) -> CaseResult:
    def result(passed: bool, reason: str, observed: Any = None) -> CaseResult:
        return CaseResult(
            case=inv.case, passed=passed, latency_ms=inv.latency_ms, reason=reason, observed=observed
        )

    if inv.error is not None:
        return result(False, f"no answer: {inv.error}")
    if inv.status is None or not 200 <= inv.status < 300:
        return result(False, f"HTTP {inv.status}")
    observed = extract(inv.body, expect.field)
    if observed is _MISSING:
        return result(False, f"response has no field {expect.field!r}")
    if expect.value is not None:
        number = _as_number(observed)
        if number is None:
            return result(False, f"{expect.field} is {_short(observed)}, expected a number", observed)
        delta = abs(number - expect.value)
        # Float slack relative to the magnitudes, so a value exactly at the tolerance passes at any scale.
        if delta > expect.tolerance + 1e-9 * max(1.0, abs(expect.value), abs(number)):
            return result(
                False,
                f"{expect.field}={observed} is {delta:.6g} away from {expect.value} (> {expect.tolerance})",
                observed,
            )
        return result(
            True, f"{expect.field}={observed} within {expect.tolerance} of {expect.value}", observed
        )
    if not json_equal(observed, expect.equals):
        return result(False, f"{expect.field}={_short(observed)}, expected {expect.equals!r}", observed)
    return result(True, f"{expect.field}={observed!r} as expected", observed)


def _as_number(value: Any) -> float | None:
    """A finite float, or None for booleans, non-numbers, NaN/inf and integers too large for a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: true is not 1 and false is not 0 (Python's == says they are)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile (the small-sample definition that never interpolates optimism)."""
    if not values:
        return math.inf
    ordered = sorted(values)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return ordered[rank - 1]


def verdict(
    config: SmokeTests, invocations: Sequence[Invocation], *, target: str, region: str, at: datetime
) -> SmokeVerdict:
    by_name = {c.name: c for c in config.cases}
    cases = [judge_case(by_name[inv.case].expect, inv) for inv in invocations]
    total = len(config.cases)
    ok = sum(1 for c in cases if c.passed)
    ratio = ok / total if total else 0.0
    latency = p95([c.latency_ms for c in cases])
    problems = []
    if len(cases) < total:
        problems.append(f"only {len(cases)} of {total} cases ran")
    if ratio + 1e-12 < config.min_success_ratio:
        failed = "; ".join(f"{c.case}: {c.reason}" for c in cases if not c.passed)
        problems.append(f"success ratio {ratio:.2f} below {config.min_success_ratio:.2f} ({failed})")
    if latency > config.latency_budget_p95_ms:
        problems.append(f"p95 latency {latency:.0f} ms over the {config.latency_budget_p95_ms} ms budget")
    passed = not problems
    reason = (
        f"{ok}/{total} cases passed, p95 {latency:.0f} ms within {config.latency_budget_p95_ms} ms"
        if passed
        else "; ".join(problems)
    )
    return SmokeVerdict(
        target=target,
        region=region,
        passed=passed,
        reason=reason,
        success_ratio=ratio,
        p95_latency_ms=latency if math.isfinite(latency) else -1.0,
        cases=cases,
        at=at,
    )


def slow_only(result: SmokeVerdict) -> bool:
    """Failed on latency alone: every case ran and answered as expected, only the p95 was over budget."""
    return not result.passed and bool(result.cases) and all(c.passed for c in result.cases)


def remeasure_slow(
    measure: Callable[[], SmokeVerdict], attempts: int, max_spent_ms: float | None = None
) -> SmokeVerdict:
    """The first verdict that passes or fails on more than latency, measuring at most `attempts` times.

    A decision is not taken on one latency spike of a busy host: an endpoint that answers every case right but
    slowly is measured again, and judged slow only if it stays slow. A wrong or missing answer is final. With
    `max_spent_ms`, no new measurement starts once the requests measured so far took that long in all (a task
    with a Lambda timeout bounds its time: a side that is really slow is not measured for minutes).
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    result = measure()
    spent = sum(c.latency_ms for c in result.cases)
    for _ in range(attempts - 1):
        if not slow_only(result) or (max_spent_ms is not None and spent >= max_spent_ms):
            break
        result = measure()
        spent += sum(c.latency_ms for c in result.cases)
    return result


SLOW_SMOKE_ATTEMPTS = 3
"""How many times a decision measures a side that is only slow before it judges it slow."""


def smoke_spend_ms(config: SmokeTests) -> float:
    """The request time one measurement may take at worst: what re-measuring a slow side may add to a task."""
    return config.request_timeout.total_seconds() * 1000 * len(config.cases)
