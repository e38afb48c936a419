"""Failover or restore? What a damage calls for, from what each region shows: a pure rule (docs/restore.md).

A failover helps when the other region is healthy. Replication copies a bad write, a deletion or a corrupt
model to the other region within seconds: once the damage is in both regions a failover serves the same
damage from elsewhere (and a failback brings it back), so the answer is a restore to before the damage.
Replication is faithful, so comparing the source with its replica cannot see such damage: each region is
judged against what an operator knows is good - its smoke tests (they check predictions), and the state
recorded at the last green verification (the objects and their checksums).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

RecoveryAction = Literal["none", "failover", "restore", "repair-replica"]
"""none: nothing is wrong; failover: only the primary is damaged; restore: the damage is in both regions;
repair-replica: only the secondary is damaged (traffic stays; the replica is repaired)."""


@dataclass(frozen=True)
class RegionCheck:
    """What the checks saw in one region: its smoke tests, and the objects that differ from the last
    verified state (missing, or with another checksum)."""

    smoke_passed: bool
    missing: tuple[str, ...] = ()
    altered: tuple[str, ...] = ()
    smoke_reason: str = ""

    @property
    def damaged(self) -> bool:
        return not self.smoke_passed or bool(self.missing or self.altered)

    def words(self) -> str:
        parts = [] if self.smoke_passed else ["smoke tests fail"]
        if self.altered:
            parts.append(f"{len(self.altered)} object(s) overwritten")
        if self.missing:
            parts.append(f"{len(self.missing)} object(s) deleted")
        return ", ".join(parts) or "healthy"


@dataclass(frozen=True)
class Judgement:
    action: RecoveryAction
    reason: str
    evidence: list[str] = field(default_factory=list)


def judge(primary: RegionCheck, secondary: RegionCheck) -> Judgement:
    """What helps, given what each region shows."""
    evidence = [f"primary: {primary.words()}", f"secondary: {secondary.words()}"]
    seen = "; ".join(evidence)
    if not primary.damaged and not secondary.damaged:
        return Judgement(
            "none", "both regions pass their smoke tests and hold the last verified data", evidence
        )
    if primary.damaged and not secondary.damaged:
        return Judgement(
            "failover",
            f"only the primary is damaged ({seen}): the secondary is fit to serve, fail over",
            evidence,
        )
    if secondary.damaged and not primary.damaged:
        return Judgement(
            "repair-replica",
            f"only the secondary is damaged ({seen}): keep serving from the primary and repair the replica",
            evidence,
        )
    return Judgement(
        "restore",
        f"the damage is in both regions ({seen}): a failover would serve the same damage from the other "
        "region, so traffic stays; restore to before the damage",
        evidence,
    )


def differences(good: Mapping[str, str], now: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(missing, altered): the keys of the last verified state (key -> checksum) that are gone now, and those
    whose checksum changed. Keys added since are not damage."""
    missing = tuple(sorted(k for k in good if k not in now))
    altered = tuple(sorted(k for k in good if k in now and now[k] != good[k]))
    return missing, altered


def restore_point(first_damage: datetime) -> datetime:
    """The latest TIME a point-in-time restore can be given that keeps none of the damage. S3 stamps
    LastModified to the second and a restore to TIME keeps every change stamped at or before it, so TIME is
    the second before the damage's own second (good writes earlier in that second are lost with it)."""
    return first_damage.replace(microsecond=0) - timedelta(seconds=1)


def assets_to_restore(
    assets: Iterable[tuple[str, str]], *, data_asset: str | None, data_damaged: bool, model_suspect: bool
) -> list[str]:
    """The S3 assets (name, role) a restore must cover: the dataset whose objects differ from the last
    verified state, and the model artefacts when the endpoints fail their smoke tests (the model they serve
    is suspect). In the plan's order."""
    out = []
    for name, role in assets:
        if (name == data_asset and data_damaged) or (role == "model-artifacts" and model_suspect):
            out.append(name)
    return out
