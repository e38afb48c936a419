"""The README demo path, end to end: `lifeboat demo` on a fresh local cloud, as a user runs it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_PORTS = (18081, 18082)  # the example plan's model servers


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # Like the model server itself: connections lingering in TIME_WAIT do not make the port busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    busy = [p for p in DEMO_PORTS if not port_free(p)]
    if busy:
        pytest.fail(
            f"ports {busy} are taken (is `lifeboat local up` running? stop it with `lifeboat local down`)"
        )
    shutil.copytree(ROOT / "plans", tmp_path / "plans")
    return tmp_path


def test_demo_fails_over_on_its_own_and_cleans_up(workdir: Path) -> None:
    # Given a fresh folder holding only the example plans
    # When a user runs the demo
    run = subprocess.run(
        [sys.executable, "-m", "lifeboat_cli", "demo"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(workdir), "COLUMNS": "160"},
    )
    out = run.stdout + run.stderr
    # Then it succeeds and tells the story: topology, outage, alarms, decision, steps, switch, RTO
    assert run.returncode == 0, out[-4000:]
    for expected in (
        "Protected workload: fraud-scoring",
        "the primary model server is killed",
        "→ ALARM",
        "decision started: quorum met",
        "step → ShiftTraffic",
        "failover completed",
        "active region: us-west-2",
        "prediction served by us-west-2",
        "measured RTO",
        "local cloud stopped",
    ):
        assert expected in out, f"missing {expected!r} in demo output:\n{out[-4000:]}"
    assert "met" in out.split("measured RTO")[-1]
    # And every process it started is gone: no state file, the model server ports are free again
    assert not (workdir / ".lifeboat" / "local.json").exists()
    assert all(port_free(p) for p in DEMO_PORTS)
