"""The local cloud's processes: whether one still runs, and stopping those whose owner is gone.

Everything the local cloud starts must stop with it, even when whoever started it cannot clean up (a test
killed by pytest-timeout, a demo killed by Ctrl-C): the daemon can watch an owner process and stop when it
ends, and model servers stop when the daemon that spawned them ends.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

_PROC = Path("/proc")


def alive(pid: int) -> bool:
    """True while process `pid` runs. A zombie (exited, not yet reaped by its parent) has ended."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return not (_PROC / "self").exists()  # without /proc (macOS) the signal has the last word
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def watch_owner(owner: int, on_gone: Callable[[], None], *, interval: float = 0.5) -> threading.Thread:
    """Call `on_gone` once, from a daemon thread, as soon as process `owner` has ended."""

    def run() -> None:
        while alive(owner):
            time.sleep(interval)
        on_gone()

    thread = threading.Thread(target=run, name=f"owner-{owner}", daemon=True)
    thread.start()
    return thread


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, *, grace: float = 5.0) -> None:
    """SIGTERM every process of group `pgid`, then SIGKILL whatever still runs after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not group_alive(pgid):
            return
