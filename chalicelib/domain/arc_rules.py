"""Route 53 ARC safety rules, judged on routing control states: which rule an update would break.

A routing control update is judged by the cluster on the states it would leave (every rule of the control
panel at once, so both controls of a failover go in one call). Plan validation asks the same question of the
two states Lifeboat sets (one region On, the other Off) before an outage does; the local cloud's cluster
(localcloud/arc.py) answers updates with it.

- An **assertion** rule holds when its asserted controls meet its rule config: `ATLEAST` n of them On, `AND`
  (all On) or `OR` (at least one On), negated when `inverted`. It is judged when an update names one of its
  asserted controls.
- A **gating** rule holds when its gating controls meet its rule config; while it does not, none of its target
  controls may be updated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

RuleType = Literal["ATLEAST", "AND", "OR"]
ON, OFF = "On", "Off"


@dataclass(frozen=True)
class SafetyRule:
    """One safety rule as ListSafetyRules describes it (ASSERTION or GATING)."""

    arn: str
    name: str
    kind: Literal["ASSERTION", "GATING"]
    controls: tuple[str, ...]  # asserted controls (assertion) or gating controls (gating)
    type: RuleType
    threshold: int = 1
    inverted: bool = False
    targets: tuple[str, ...] = ()  # gating rules: the controls it guards

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> SafetyRule:
        """From one entry of ListSafetyRules' `SafetyRules` ({"ASSERTION": {...}} or {"GATING": {...}})."""
        kind: Literal["ASSERTION", "GATING"] = "ASSERTION" if "ASSERTION" in item else "GATING"
        body: Mapping[str, Any] = item[kind]
        config: Mapping[str, Any] = body.get("RuleConfig") or {}
        rule_type = str(config.get("Type", "ATLEAST"))
        if rule_type not in ("ATLEAST", "AND", "OR"):
            raise ValueError(f"safety rule {body.get('Name')}: unknown rule type {rule_type!r}")
        controls = body.get("AssertedControls" if kind == "ASSERTION" else "GatingControls") or []
        return cls(
            arn=str(body.get("SafetyRuleArn", "")),
            name=str(body.get("Name", "")),
            kind=kind,
            controls=tuple(str(c) for c in controls),
            type=rule_type,  # type: ignore[arg-type]  # checked above
            threshold=int(config.get("Threshold", 1)),
            inverted=bool(config.get("Inverted", False)),
            targets=tuple(str(c) for c in body.get("TargetControls") or []) if kind == "GATING" else (),
        )

    def describe(self) -> str:
        what = {"ATLEAST": f"at least {self.threshold} On", "AND": "all On", "OR": "at least one On"}[
            self.type
        ]
        negation = "not " if self.inverted else ""
        of = "gating controls" if self.kind == "GATING" else "asserted controls"
        return f"{self.kind.lower()} rule {self.name} ({negation}{what} of its {len(self.controls)} {of})"


def holds(rule: SafetyRule, states: Mapping[str, str]) -> bool:
    """Whether the rule's config is met by `states` (a control missing from `states` counts as Off)."""
    on = sum(1 for control in rule.controls if states.get(control) == ON)
    met = {
        "ATLEAST": on >= rule.threshold,
        "AND": on == len(rule.controls),
        "OR": on >= 1,
    }[rule.type]
    return met != rule.inverted


def broken_rule(
    rules: Iterable[SafetyRule], current: Mapping[str, str], updates: Mapping[str, str]
) -> SafetyRule | None:
    """The first rule an update of `updates` (control -> On/Off) from `current` would break, else None."""
    final = {**current, **updates}
    named = set(updates)
    for rule in rules:
        if rule.kind == "ASSERTION" and named & set(rule.controls) and not holds(rule, final):
            return rule
        if rule.kind == "GATING" and named & set(rule.targets) and not holds(rule, final):
            return rule
    return None


def rules_about(rules: Iterable[SafetyRule], controls: Iterable[str]) -> list[SafetyRule]:
    """The rules an update of `controls` is judged by."""
    wanted = set(controls)
    return [
        rule
        for rule in rules
        if (rule.kind == "ASSERTION" and wanted & set(rule.controls))
        or (rule.kind == "GATING" and wanted & set(rule.targets))
    ]
