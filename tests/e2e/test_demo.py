"""The README demo path, end to end: `lifeboat demo` on a fresh local cloud, as a user runs it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.processes import alive

ROOT = Path(__file__).resolve().parents[2]
# A bound that fails with the demo's output, far above its ~90 s on a busy 2-core machine.
DEMO_TIMEOUT_S = 900


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
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A folder with a copy of the example plans, as a user has it; whatever the demo leaves running is
    stopped afterwards (the demo's local cloud also stops by itself when the demo process ends)."""
    shutil.copytree(ROOT / "plans", tmp_path / "plans")
    try:
        yield tmp_path
    finally:
        # A demo that failed or timed out may have left the local cloud and its model servers behind.
        subprocess.run(
            [sys.executable, "-m", "lifeboat_cli", "local", "down"],
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
            env=demo_env(tmp_path),
        )


def demo_env(home: Path) -> dict[str, str]:
    # PYTHONPATH: the code of this checkout, whichever checkout the virtualenv was installed from.
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "COLUMNS": "160", "PYTHONPATH": str(ROOT)}


def run_demo(workdir: Path, *args: str) -> tuple[int, str]:
    """`lifeboat demo` in its own process group, killed whole if it outlives DEMO_TIMEOUT_S."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lifeboat_cli", "demo", *args],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=demo_env(workdir),
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=DEMO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the demo did not finish in {DEMO_TIMEOUT_S}s; its output:\n{out[-4000:]}")
    except BaseException:  # pytest-timeout or Ctrl-C: the demo goes too (and its local cloud with it)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return proc.returncode, out


@pytest.mark.timeout(DEMO_TIMEOUT_S + 180)
def test_demo_drills_a_region_outage_fails_back_and_reports(workdir: Path) -> None:
    folder = workdir
    # Given a fresh folder holding only the example plans
    # When a user runs the demo
    returncode, out = run_demo(folder)
    # Then it succeeds and tells the story: what starts, the topology, the drill's outage, alarms, decision,
    # steps, switch, the secondary serving, the primary restored, traffic back step by step, the verdicts,
    # the report
    assert returncode == 0, out[-4000:]
    for expected in (
        "starting moto server",
        "starting model server fraud-scoring/primary (us-east-1) on http://127.0.0.1:",
        "Protected workload: fraud-scoring",
        "Backup verification",
        "verification after repair: GREEN",
        "the primary model server is killed",
        "drill fault: primary model server killed (SIGKILL",
        "→ ALARM",
        "decision started: quorum met",
        "failover: stage",  # the failover told in words (lifeboat watch's), never by state names
        "moving all traffic to us-west-2",
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
    assert re.search(r"failback\s+│ -\s+│ (\d+m)?\d+(\.\d)?s", out), out[-2000:]
    assert "ShiftTraffic" not in out and "CheckBake" not in out
    # And the HTML report it names exists, with a timeline picture that is valid SVG with bars in it
    report = Path(re.search(r"report: (\S+\.html)", out).group(1))  # type: ignore[union-attr]
    assert report.is_file() and report.is_relative_to(folder), report
    page = report.read_text(encoding="utf-8")
    svg = ET.fromstring(page[page.index("<svg") : page.index("</svg>") + len("</svg>")])
    assert list(svg.iter("{http://www.w3.org/2000/svg}rect")), "the timeline has no bars"
    assert "PASSED" in page and "failback" in page
    # And the model servers listened on the free ports the local cloud chose (shown as it started), and the
    # plan it ran names them: the topology shows the same URLs
    shown = r"fraud-scoring (primary|secondary) model server: http://127\.0\.0\.1:(\d+)\S* \(pid (\d+)\)"
    servers = re.findall(shown, out)
    assert [role for role, _, _ in servers] == ["primary", "secondary"], out[:3000]
    ports = [int(port) for _, port, _ in servers]
    assert len(set(ports)) == 2 and 0 not in ports, ports
    topology = out.split("Protected workload: fraud-scoring")[1].split("objectives:")[0]
    assert all(f"http://127.0.0.1:{port}/invocations" in topology for port in ports), topology
    # And every process it started is gone: no state file, no model server, the ports are free again
    assert not (folder / ".lifeboat" / "local.json").exists()
    assert not [pid for _, _, pid in servers if alive(int(pid))]
    assert all(port_free(p) for p in ports)


@pytest.mark.timeout(DEMO_TIMEOUT_S + 180)
def test_demo_runs_the_sagemaker_plan_through_invoke_endpoint(workdir: Path) -> None:
    # Given a fresh folder holding the example plans
    # When a user runs the demo on the SageMaker plan
    returncode, out = run_demo(workdir, "--plan", "plans/fraud-scoring-sagemaker.yaml")
    # Then the local cloud serves its SageMaker endpoints with model servers, and the drill fails over through
    # them and back, every smoke test going through InvokeEndpoint
    assert returncode == 0, out[-4000:]
    for expected in (
        "reading the plans in .lifeboat/demo-plans/: fraud-scoring-sagemaker.yaml",
        "starting model server fraud-scoring-sagemaker/primary (us-east-1) on http://127.0.0.1:",
        "(SageMaker fraud-scorer/AllTraffic (us-east-1))",
        "Protected workload: fraud-scoring-sagemaker",
        "SageMaker fraud-scorer/AllTraffic",
        "verification after repair: GREEN",
        "drill fault: primary model server killed (SIGKILL",
        "failover completed",
        "prediction served by us-west-2",
        '"score": 0.994437',
        "failback completed: failed back to us-east-1 (10% -> 25% -> 50% -> 100%)",
        "drill PASSED",
        "local cloud stopped",
    ):
        assert expected in out, f"missing {expected!r} in demo output:\n{out[-4000:]}"
    # And only that plan ran: the other example plan's workload never appears
    assert "fraud-scoring/primary" not in out and "Protected workload: fraud-scoring\n" not in out
    assert not (workdir / ".lifeboat" / "local.json").exists()
