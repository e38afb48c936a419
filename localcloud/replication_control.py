"""The local cloud's replication pause switch: drills pause S3 replication here, and the replication
simulator (localcloud/replication.py) holds back, while it is set, every object written since the pause.

Process-wide. In the daemon the switch is set from the drill control file (localcloud/drill_faults.py), so a
drill run by the CLI pauses the daemon's simulator. Objects written before the pause still replicate (S3
keeps copying what it has already accepted); objects written after it wait until `resume`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

_lock = threading.Lock()
_paused: dict[str, datetime] = {}  # source bucket ("*": every bucket) -> paused since


def pause(bucket: str = "*", since: datetime | None = None) -> None:
    with _lock:
        _paused[bucket] = since or datetime.now(UTC)


def resume(bucket: str | None = None) -> None:
    with _lock:
        if bucket is None:
            _paused.clear()
        else:
            _paused.pop(bucket, None)


def paused(bucket: str, written_at: datetime | None = None) -> bool:
    """Is replication of `bucket` paused (for an object written at `written_at`, when given)?"""
    with _lock:
        for key in (bucket, "*"):
            since = _paused.get(key)
            if since is not None and (written_at is None or written_at >= since):
                return True
        return False
