"""The local cloud's processes: model servers on ports nobody else can take, `lifeboat local up` saying what
starts and why it did not, and nothing left running after a failed start, a Ctrl-C or a timed-out test."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from localcloud.daemon import HOLD_FILE_VARIABLE
from localcloud.model import default_artifact
from localcloud.modelserver import ModelServer
from localcloud.ports import PortReservation
from tests.processes import left_running, marked_env

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 300  # `lifeboat local up` on a busy 2-core machine takes 15-60 s

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds processes in /proc")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def checkout(folder: Path, plan_edit: tuple[str, str] | None = None) -> Path:
    """A folder holding the example plans, as a second checkout has them."""
    shutil.copytree(ROOT / "plans", folder / "plans")
    if plan_edit is not None:
        plan = folder / "plans" / "fraud-scoring.yaml"
        text = plan.read_text()
        assert plan_edit[0] in text
        plan.write_text(text.replace(*plan_edit))
    return folder


def lifeboat_env() -> tuple[str, dict[str, str]]:
    # PYTHONPATH: this checkout's code, whichever checkout the virtualenv was installed from.
    return marked_env({**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", "NO_COLOR": "1"})


def stop_everything(folders: list[Path], procs: list[subprocess.Popen[Any]], env: dict[str, str]) -> None:
    """This test's own cleanup: its subprocesses' groups, then `lifeboat local down` in every folder."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for folder in folders:
        subprocess.run(
            [sys.executable, "-m", "lifeboat_cli", "local", "down"],
            cwd=folder,
            env=env,
            capture_output=True,
            timeout=120,
        )


def test_a_reserved_port_is_kept_from_other_programs_but_its_model_server_can_listen_and_restart() -> None:
    # Given a port the local cloud reserved for a model server
    with PortReservation() as reserved:
        # Then no other program can bind it
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", reserved.port))
        # When the model server starts on it, is killed and starts again (a drill's outage and restore)
        reserved.hand_over()
        artifact = default_artifact()
        listened = []
        for _ in ("outage", "restore"):
            server = ModelServer(artifact, region="us-east-1", port=reserved.port).start()
            listened.append(server.port)
            server.stop()
            with socket.socket() as probe:
                refused = probe.connect_ex(("127.0.0.1", reserved.port))
            # Then while it is down nothing answers there (the outage a drill wants)
            assert refused != 0
    # And both times it listened on the reserved port
    assert listened == [reserved.port, reserved.port]
    # And once released the port is free again
    assert port_free(reserved.port)


@pytest.mark.slow
@pytest.mark.timeout(START_TIMEOUT_S + 120)
def test_local_up_that_fails_says_why_in_one_plain_line_and_leaves_nothing_running(tmp_path: Path) -> None:
    # Given a checkout whose plan is broken, and a narrow terminal
    folder = checkout(tmp_path, ("quorum: 2", "quorum: 7"))
    mark, env = lifeboat_env()
    try:
        # When the user starts the local cloud
        result = subprocess.run(
            [sys.executable, "-m", "lifeboat_cli", "local", "up"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
        )
        # Then it said what it was doing, and fails with ONE plain line on stderr: the step and the problem
        assert result.returncode == 2, result
        shipped = ", ".join(sorted(p.name for p in (ROOT / "plans").glob("*.yaml")))
        assert result.stdout.splitlines() == [f"reading the plans in plans/: {shipped}"]
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert re.fullmatch(
            rf"error: reading the plans in plans/: {re.escape(shipped)} failed: "
            r"plans/fraud-scoring.yaml:\d+ "
            r"trigger.quorum: quorum 7 is more than the 3 alarm\(s\) listed; .* "
            r"\(log: .lifeboat/local.log\)\n",
            result.stderr,
        ), result.stderr
        # And nothing it started runs, and no state says otherwise
        assert left_running(mark, within=30) == []
        assert not (folder / ".lifeboat" / "local.json").exists()
    finally:
        stop_everything([folder], [], env)


@pytest.mark.slow
@pytest.mark.timeout(START_TIMEOUT_S + 120)
def test_ctrl_c_while_the_model_servers_start_leaves_nothing_running(tmp_path: Path) -> None:
    # Given `lifeboat local up` in a checkout, as far as starting the model servers
    folder = checkout(tmp_path)
    mark, env = lifeboat_env()
    # (held there by the daemon's test hold, so the interrupt lands at that step however busy the machine)
    hold = tmp_path / "hold"
    hold.touch()
    env[HOLD_FILE_VARIABLE] = str(hold)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lifeboat_cli", "local", "up"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # Ctrl-C reaches it as it reaches a program started from a terminal, even when this test process
        # ignores SIGINT (an earlier test can leave it so, and an ignored signal is inherited across exec)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        said = []
        for line in proc.stdout:
            said.append(line)
            if line.startswith("starting model server "):  # the first plan's (held there)
                break
        assert said and said[-1].startswith("starting model server"), said
        # When the user presses Ctrl-C
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        # Then the CLI says so in one line and fails
        assert proc.returncode == 130, (out, err)
        assert err == "interrupted\n", err
        # And nothing it started runs: no daemon, no model server, no state file
        assert left_running(mark, within=30) == []
        assert not (folder / ".lifeboat" / "local.json").exists()
    finally:
        hold.unlink(missing_ok=True)
        stop_everything([folder], [proc], env)


HANGING_TEST = textwrap.dedent(
    '''
    """A test that needs the local cloud, started as such tests start it, and then hangs."""
    import json
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import pytest


    def lifeboat(*args):
        command = [sys.executable, "-m", "lifeboat_cli", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)


    @pytest.fixture
    def local_cloud():
        # Owned by this test process (it stops when this process ends), and stopped by the finalizer.
        up = lifeboat("--json", "local", "up", "--owner", str(os.getpid()))
        assert up.returncode == 0, up.stderr
        Path("up.json").write_text(up.stdout)
        beside = Path(os.environ["BESIDE"]) / "up.json"  # the other checkout's local cloud is up too
        deadline = time.monotonic() + 300
        while not beside.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        try:
            yield json.loads(up.stdout)
        finally:
            lifeboat("local", "down")


    def test_hangs(local_cloud):
        time.sleep(600)
    '''
)


@pytest.mark.slow
@pytest.mark.timeout(2 * START_TIMEOUT_S + 120)
def test_timed_out_tests_leave_none_of_their_local_clouds_running(tmp_path: Path) -> None:
    # Given two checkouts, each with a test that starts the local cloud and hangs: one run with
    # pytest-timeout's signal method (the timeout raises, finalizers run), one with its thread method (the
    # process exits at once: no finalizer, no atexit)
    methods = ("signal", "thread")
    folders = {m: checkout(tmp_path / m) for m in methods}
    for folder in folders.values():
        (folder / "test_hang.py").write_text(HANGING_TEST)
    mark, env = lifeboat_env()
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for method, other in zip(methods, reversed(methods), strict=True):
            procs[method] = subprocess.Popen(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_hang.py"]
                + ["-o", "timeout_func_only=true", "--timeout", "2", "--timeout-method", method],
                cwd=folders[method],
                env={**env, "BESIDE": str(folders[other])},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        # When both time out
        outputs = {m: p.communicate(timeout=2 * START_TIMEOUT_S)[0] for m, p in procs.items()}

        # Then each test timed out while its local cloud ran beside the other one, on ports of its own
        for method, out in outputs.items():
            assert procs[method].returncode != 0 and "Timeout" in out, out[-3000:]
        states = {m: json.loads((folders[m] / "up.json").read_text()) for m in methods}
        ports = [s["port"] for s in states.values()]
        ports += [
            srv["port"]
            for s in states.values()
            for srv in s["workloads"]["fraud-scoring"]["model_servers"].values()
        ]
        assert len(set(ports)) == 6, states
        # And afterwards nothing either started runs: no daemon, no model server, no state file, no port held
        assert left_running(mark, within=60) == []
        for folder in folders.values():
            assert not (folder / ".lifeboat" / "local.json").exists()
        assert all(port_free(p) for p in ports)
        # And each was stopped the way its method allows: by the finalizer, or by the end of its owner
        log = {m: (folders[m] / ".lifeboat" / "local.log").read_text() for m in methods}
        assert "signal 15: stopping" in log["signal"], (log["signal"][-2000:], outputs["signal"][-2000:])
        assert "ended: stopping" in log["thread"], log["thread"][-2000:]
    finally:
        stop_everything(list(folders.values()), list(procs.values()), env)
