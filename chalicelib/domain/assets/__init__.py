"""What each kind of asset's checks mean, pure: one module per kind (`s3`, `model_registry`, `dynamodb`).

The matching AWS calls live in `chalicelib.adapters.assets` (one module per kind there too); these functions
take what those calls read and return findings, samples and shard plans. Nothing here performs I/O.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Severity = Literal["ok", "info", "warning", "error"]
"""Severity of a plan validation finding (the same scale as `services.validate`)."""


class LiveFinding(NamedTuple):
    """One result of checking a plan's asset against the live resources (plan validation)."""

    subject: str
    severity: Severity
    message: str
