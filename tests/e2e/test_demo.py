"""The README demo path, end to end: `lifeboat demo` on a fresh local cloud, as a user runs it."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
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


def test_demo_drills_a_region_outage_fails_back_and_reports(workdir: Path) -> None:
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
    # Then it succeeds and tells the story: topology, the drill's outage, alarms, decision, steps, switch,
    # the secondary serving, the primary restored, traffic back step by step, the verdicts, the report
    assert run.returncode == 0, out[-4000:]
    for expected in (
        "Protected workload: fraud-scoring",
        "Backup verification",
        "verification after repair: GREEN",
        "the primary model server is killed",
        "drill fault: primary model server killed (SIGKILL",
        "→ ALARM",
        "decision started: quorum met",
        "step → ShiftTraffic",
        "failover completed",
        "active region: us-west-2",
        "prediction served by us-west-2",
        "drill restore: restoring: primary model server restarted",
        "failback step [█·········] 10% of traffic on the primary",
        "failback step [██████████] 100% of traffic on the primary",
        "failback completed: failed back to us-east-1 (10% -> 25% -> 50% -> 100%)",
        "active region: us-east-1",
        "drill PASSED",
        "measured RTO",
        "local cloud stopped",
    ):
        assert expected in out, f"missing {expected!r} in demo output:\n{out[-4000:]}"
    # And the RTO was measured and met, and the failback measured
    assert "met" in out.split("measured RTO")[-1]
    rto_row = next(line for line in out.splitlines() if line.strip().startswith("RTO ") and "│" in line)
    assert "met" in rto_row, rto_row
    assert re.search(r"failback\s+│ -\s+│ \d+\.\ds", out), out[-2000:]
    # And the HTML report it names exists, with a timeline picture that is valid SVG with bars in it
    report = Path(re.search(r"report: (\S+\.html)", out).group(1))  # type: ignore[union-attr]
    assert report.is_file() and report.is_relative_to(workdir), report
    page = report.read_text(encoding="utf-8")
    svg = ET.fromstring(page[page.index("<svg") : page.index("</svg>") + len("</svg>")])
    assert list(svg.iter("{http://www.w3.org/2000/svg}rect")), "the timeline has no bars"
    assert "PASSED" in page and "failback" in page
    # And every process it started is gone: no state file, the model server ports are free again
    assert not (workdir / ".lifeboat" / "local.json").exists()
    assert all(port_free(p) for p in DEMO_PORTS)
