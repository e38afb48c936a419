"""Safety rules for traffic shifts, enforced by the traffic adapter itself (no caller can skip them)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field


class ShiftVerdict(BaseModel):
    allowed: bool
    reason: str = Field(description="Why the shift is (not) allowed.")


def check_shift(weights: Mapping[str, int], last_smoke_passed: Mapping[str, bool | None]) -> ShiftVerdict:
    """Refuse shifts that would take the service down or hand it to a target known to be broken.

    `last_smoke_passed` maps a target to the verdict of its last smoke test (None: never tested).
    """
    bad = {t: w for t, w in weights.items() if not 0 <= w <= 100}
    if bad:
        return ShiftVerdict(allowed=False, reason=f"weights must be within 0..100, got {bad}")
    if sum(weights.values()) == 0:
        return ShiftVerdict(allowed=False, reason="refused: the shift would leave zero weight everywhere")
    receiving = [t for t, w in weights.items() if w > 0]
    if len(receiving) == 1:
        target = receiving[0]
        if last_smoke_passed.get(target) is False:
            return ShiftVerdict(
                allowed=False,
                reason=f"refused: {target} would take 100% of traffic but failed its last smoke test",
            )
    return ShiftVerdict(allowed=True, reason="shift is safe")
