"""How a drill stops early: refused before anything was broken, interrupted by a stop condition, or (a test
seam) killed outright."""

from __future__ import annotations


class DrillRefused(RuntimeError):
    """The drill did not start: a pre-condition failed (nothing was broken)."""


class DrillInterrupted(RuntimeError):
    """A stop condition ended the drill early."""


class SimulatedKill(BaseException):
    """Test seam: behave like a SIGKILL at this point (no cleanup, no record; `recover` must do it)."""
