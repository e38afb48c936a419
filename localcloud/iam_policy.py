"""Identity-based IAM policy evaluation: is one authorization (action, resource, condition keys) allowed?

What AWS does for a role without permission boundaries, session policies or resource policies: an explicit
Deny wins, otherwise any matching Allow allows, otherwise the request is implicitly denied. Action, NotAction,
Resource and NotResource with `*` and `?` wildcards; the condition operators below with ForAllValues: /
ForAnyValue: and ...IfExists. Anything else in a policy (policy variables, other operators, a condition key
the request's context does not determine) raises `UnsupportedPolicy`: never a silent allow, nor a guess.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from localcloud.iam_actions import Authorization


class UnsupportedPolicy(ValueError):
    """A policy element the local cloud cannot evaluate as AWS would."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explicit_deny: bool = False
    statement: str | None = None  # the Sid (or index) of the statement that decided


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    if "${" in pattern:
        raise UnsupportedPolicy(f"policy variables are not supported: {pattern}")
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _matches(patterns: Iterable[Any], value: str, *, ignore_case: bool) -> bool:
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise UnsupportedPolicy(f"unresolved policy value {pattern!r}")
        if _glob(pattern, ignore_case).match(value):
            return True
    return False


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return _matches(_as_list(statement["Action"]), action, ignore_case=True)
    if "NotAction" in statement:
        return not _matches(_as_list(statement["NotAction"]), action, ignore_case=True)
    raise UnsupportedPolicy(f"statement {statement.get('Sid')} has neither Action nor NotAction")


def _resource_matches(statement: Mapping[str, Any], resource: str) -> bool:
    if "Resource" in statement:
        return _matches(_as_list(statement["Resource"]), resource, ignore_case=False)
    if "NotResource" in statement:
        return not _matches(_as_list(statement["NotResource"]), resource, ignore_case=False)
    raise UnsupportedPolicy(f"statement {statement.get('Sid')} has neither Resource nor NotResource")


# -- conditions -----------------------------------------------------------------------------------------
def _string_equals(policy: str, value: str) -> bool:
    return policy == value


def _string_equals_ci(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return bool(_glob(policy, False).match(value))


def _arn_like(policy: str, value: str) -> bool:
    # ArnLike compares each of the six colon-delimited parts; a wildcard does not cross a colon before the
    # resource part. Comparing part by part gives that.
    p_parts, v_parts = policy.split(":", 5), value.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6:
        return False
    return all(_glob(p, False).match(v) for p, v in zip(p_parts, v_parts, strict=True))


def _bool(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _numeric(compare: Any) -> Any:
    def check(policy: str, value: str) -> bool:
        try:
            return bool(compare(float(value), float(policy)))
        except ValueError:
            return False

    return check


# operator -> (compare(policy value, request value), negated)
OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ci, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ci, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool, False),
    "NumericEquals": (_numeric(lambda v, p: v == p), False),
    "NumericNotEquals": (_numeric(lambda v, p: v == p), True),
    "NumericLessThan": (_numeric(lambda v, p: v < p), False),
    "NumericLessThanEquals": (_numeric(lambda v, p: v <= p), False),
    "NumericGreaterThan": (_numeric(lambda v, p: v > p), False),
    "NumericGreaterThanEquals": (_numeric(lambda v, p: v >= p), False),
}


def _condition_holds(
    operator: str, key: str, policy_values: Sequence[Any], auth: Authorization, sid: str | None
) -> bool:
    if key not in auth.known_keys and key.lower() not in {k.lower() for k in auth.known_keys}:
        raise UnsupportedPolicy(
            f"statement {sid}: the local cloud does not know the value of {key} for {auth.action} "
            f"({auth.operation}), so it cannot evaluate this condition as AWS would"
        )
    present = next((v for k, v in auth.context.items() if k.lower() == key.lower()), None)
    values = [str(v).lower() if isinstance(v, bool) else str(v) for v in policy_values]
    if operator == "Null":
        absent = present is None or len(present) == 0
        return any((v.lower() == "true") == absent for v in values)
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in OPERATORS or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise UnsupportedPolicy(f"statement {sid}: condition operator {operator} is not supported")
    compare, negated = OPERATORS[base]

    def one(value: str) -> bool:
        hit = any(compare(p, value) for p in values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in present or ())
    if qualifier == "ForAnyValue":
        return any(one(v) for v in present or ())
    if present is None:
        # A missing key: true for ...IfExists and for the negated operators, false otherwise (AWS).
        return if_exists or negated
    if len(present) != 1:
        raise UnsupportedPolicy(
            f"statement {sid}: {operator} on the multivalued key {key}; use ForAllValues/ForAnyValue"
        )
    return one(present[0])


def _conditions_hold(statement: Mapping[str, Any], auth: Authorization) -> bool:
    sid = statement.get("Sid")
    for operator, block in (statement.get("Condition") or {}).items():
        if not isinstance(block, Mapping):
            raise UnsupportedPolicy(f"statement {sid}: condition {operator} is not a mapping")
        for key, policy_values in block.items():
            if not _condition_holds(operator, key, _as_list(policy_values), auth, sid):
                return False
    return True


def evaluate(statements: Sequence[Mapping[str, Any]], auth: Authorization) -> Decision:
    """AWS's answer for `auth` under an identity-based policy made of `statements`."""
    allowed_by: str | None = None
    for index, statement in enumerate(statements):
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"statement {statement.get('Sid', index)}: Effect {effect!r}")
        if "Principal" in statement or "NotPrincipal" in statement:
            raise UnsupportedPolicy(
                f"statement {statement.get('Sid', index)}: a Principal in an identity policy"
            )
        if not (_action_matches(statement, auth.action) and _resource_matches(statement, auth.resource)):
            continue
        if not _conditions_hold(statement, auth):
            continue
        sid = str(statement.get("Sid", index))
        if effect == "Deny":
            return Decision(allowed=False, explicit_deny=True, statement=sid)
        allowed_by = allowed_by or sid
    return Decision(allowed=allowed_by is not None, statement=allowed_by)
