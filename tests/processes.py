"""Test support for tests that start processes: every process a test starts (and whatever those start)
carries a mark in its environment, so a test can check that none of them outlived it, wherever they went
(a daemon in its own session, a model server orphaned by a killed parent)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from localcloud.processes import alive

MARK = "LIFEBOAT_TEST_PROCESSES"
PROC = Path("/proc")


def marked_env(env: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """A fresh mark and `env` (default: this process's environment) carrying it."""
    mark = uuid.uuid4().hex
    return mark, {**(os.environ if env is None else env), MARK: mark}


def processes_marked(mark: str) -> list[int]:
    """The processes still running with `mark` in their environment (Linux: read from /proc)."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def left_running(mark: str, within: float) -> list[str]:
    """Wait up to `within` seconds for the marked processes to end; the command lines of any still running."""
    deadline = time.monotonic() + within
    while (pids := processes_marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    out = []
    for pid in pids:
        try:
            out.append(f"{pid}: " + (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return out
