"""Plan validation's checks of live resources: what every traffic and asset kind hands plan validation
(`LiveCheck`) and what running one says (`LiveFinding`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

Severity = Literal["ok", "info", "warning", "error"]
"""Severity of a plan validation finding: `error` means a failover (or failback) would fail or could not
start, `warning` something degraded or unchecked, `info` context, `ok` a pass."""


class LiveFinding(NamedTuple):
    """One result of checking a plan's resource against the live one."""

    subject: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class LiveCheck:
    """One check of a live resource a kind adds to plan validation (a bucket's versioning, a health check
    exists...). `run` reads the resource and judges it, or raises when it cannot tell (access denied,
    throttled): plan validation then reports a warning naming `subject`."""

    subject: str
    run: Callable[[], list[LiveFinding]]
