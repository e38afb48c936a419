"""Which cloud the CLI talks to: the local cloud when it is up (or --cloud local), else AWS.

For AWS, resource names come from the stage's environment variables in .chalice/config.json, the same
values the deployed functions get, and credentials from the operator's usual AWS configuration.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localcloud.processes import alive, kill_group
from localcloud.state import DEFAULT_STATE, read_state

ROOT = Path(__file__).resolve().parent.parent
LOG = DEFAULT_STATE.with_name("local.log")
# Left by `lifeboat local down`: this directory worked with the local cloud, so `--cloud auto` must not
# quietly turn to AWS once it is gone (`local up` removes it; `--cloud aws` talks to AWS regardless).
STOPPED = DEFAULT_STATE.with_name("local-stopped")


class CliError(Exception):
    """A usage or environment problem: exit code 2 with a clear message."""


def use_local() -> dict[str, Any]:
    state = read_state(DEFAULT_STATE)
    if not state or not state.get("ready"):
        raise CliError("the local cloud is not running: start it with `lifeboat local up`")
    if "pid" in state and not alive(int(state["pid"])):
        raise CliError(
            f"the local cloud is not running (its process {state['pid']} is gone): start it again with "
            "`lifeboat local up`, or pass --cloud aws to talk to AWS"
        )
    _apply_env(state["env"])
    return state


def use_aws(stage: str) -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    if stage not in config.get("stages", {}):
        raise CliError(
            f"unknown stage {stage!r} (stages in .chalice/config.json: {', '.join(config['stages'])})"
        )
    env = {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }
    # A deployed stack names its buckets per account and region: `python -m infra.build env` exports them,
    # and what the operator exported wins over the defaults above.
    env.update({k: v for k, v in os.environ.items() if k.startswith("LIFEBOAT_")})
    env.setdefault("AWS_REGION", os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""))
    if not env["AWS_REGION"]:
        raise CliError("set AWS_REGION (or AWS_DEFAULT_REGION) to the region Lifeboat is deployed in")
    _apply_env(env)


def select(cloud: str, stage: str, region: str | None = None) -> str:
    """Point chalicelib's settings and clients at the chosen cloud; returns 'local' or 'aws'.

    `region` picks which copy of Lifeboat to talk to: with the primary region's APIs down, an operator works
    through the copy in the secondary region (docs/deploy.md).
    """
    if cloud == "auto":
        if not read_state(DEFAULT_STATE) and STOPPED.exists():
            raise CliError(
                "the local cloud was stopped (`lifeboat local down`): start it with `lifeboat local up`, "
                "or pass --cloud aws to talk to AWS"
            )
        cloud = "local" if read_state(DEFAULT_STATE) else "aws"
    if cloud == "local":
        state = use_local()
        if region and region != state["env"].get("AWS_REGION"):
            copies = state.get("copies") or {}
            if region not in copies:
                raise CliError(
                    f"the local cloud runs no copy of Lifeboat in {region} "
                    f"(copies: {', '.join([state['env'].get('AWS_REGION', '?'), *copies]) or 'none'})"
                )
            _apply_env(copies[region]["env"])
    else:
        if region:
            os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region
        use_aws(stage)
    return cloud


def describe(cloud: str, stage: str) -> str:
    """Which cloud the CLI talks to, in one line (`status` starts with it)."""
    region = os.environ.get("AWS_REGION", "?")
    if cloud == "local":
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "?")  # what use_local pointed the clients at
        return f"cloud: local ({endpoint}, Lifeboat's copy in {region})"
    return f"cloud: AWS (stage {stage}, Lifeboat in {region}; --cloud local for the local cloud)"


def _apply_env(env: dict[str, str]) -> None:
    os.environ.update({k: str(v) for k, v in env.items()})
    from chalicelib.services import deps

    deps.reset()


def local_up(
    plans: Path,
    timeout: float = 120.0,
    *,
    owner: int | None = None,
    on_start: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Start the local cloud (unless it already runs here) and wait until it is ready; its state.

    `on_start` hears one line per step (what the daemon starts); `owner`: the daemon stops when that process
    ends.
    Raises CliError with one line saying why when it does not come up, and leaves nothing running then.
    """
    state = read_state(DEFAULT_STATE)
    STOPPED.unlink(missing_ok=True)
    if state and alive(int(state.get("pid", 0))):
        return state
    DEFAULT_STATE.parent.mkdir(parents=True, exist_ok=True)
    DEFAULT_STATE.unlink(missing_ok=True)
    command = [sys.executable, "-m", "localcloud.daemon", "--plans", str(plans)]
    command += ["--state", str(DEFAULT_STATE)]
    if owner is not None:
        command += ["--owner", str(owner)]
    read_end, write_end = os.pipe()
    try:
        with open(LOG, "ab") as log:
            log_start = log.tell()  # what this daemon writes: the log keeps earlier runs
            proc = subprocess.Popen(
                [*command, "--progress-fd", str(write_end)],
                cwd=os.getcwd(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=(write_end,),
                start_new_session=True,  # survives the CLI; `local down` stops it and all it started
            )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)  # the daemon holds the only write end: end of file means it is gone
    try:
        outcome = _follow(read_end, proc, timeout, on_start or (lambda _line: None), log_start)
        state = read_state(DEFAULT_STATE) if outcome == "ready" else None
        if outcome == "ready" and not (state and state.get("ready")):
            outcome = f"the local cloud said it was ready but wrote no state to {DEFAULT_STATE}"
    except BaseException:  # Ctrl-C while starting: nothing may be left running
        _stop_daemon(proc)
        raise
    finally:
        os.close(read_end)
    if state is not None and outcome == "ready":
        return state
    _stop_daemon(proc)
    raise CliError(f"{outcome} (log: {LOG})")


def _follow(
    fd: int,
    proc: subprocess.Popen[bytes],
    timeout: float,
    on_start: Callable[[str], None],
    log_start: int = 0,
) -> str:
    """Relay the daemon's progress lines until it is ready; otherwise one line saying what went wrong."""
    deadline = time.monotonic() + timeout
    step = "starting the local cloud"
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0:
            if not selector.select(timeout=min(remaining, 1.0)):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:  # end of file: the daemon exited without saying why
                code = _wait(proc, 5.0)
                return f"the local cloud exited with code {code} while {step}: {_last_line(LOG, log_start)}"
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                kind, _, text = raw.decode("utf-8", errors="replace").strip().partition(" ")
                if kind == "step":
                    step = text
                    on_start(text)
                elif kind == "ready":
                    return "ready"
                elif kind == "failed":
                    return f"{step} failed: {text}"
    return f"the local cloud did not become ready in {round(timeout)}s (still {step})"


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | str:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return "(none yet)"


def _last_line(path: Path, start: int = 0) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(start)
            lines = log.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return "no log"
    return next((line.strip() for line in reversed(lines) if line.strip()), "nothing in its log")


def _stop_daemon(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """Stop a daemon this process started, then whatever of its process group is left."""
    if proc.poll() is None:
        proc.terminate()
        if _wait(proc, grace) == "(none yet)":
            proc.kill()
            proc.wait()
    kill_group(proc.pid, grace=2.0)  # the daemon leads its group: model servers it did not stop
    DEFAULT_STATE.unlink(missing_ok=True)


def local_down(timeout: float = 20.0) -> bool:
    """Stop the daemon and everything it started; True when something was running."""
    state = read_state(DEFAULT_STATE)
    if not state:
        return False
    daemon = int(state["pid"])
    pids = [daemon]
    for workload in state.get("workloads", {}).values():
        pids += [int(s["pid"]) for s in workload.get("model_servers", {}).values()]
    running = alive(daemon)
    if running:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(daemon, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(daemon) and time.monotonic() < deadline:
            time.sleep(0.1)
    for pid in pids:  # whatever did not stop cleanly
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if running and state.get("pgid") == daemon:
        with contextlib.suppress(ChildProcessError):  # `lifeboat demo` started it: reap it here
            os.waitpid(daemon, os.WNOHANG)
        kill_group(daemon, grace=2.0)  # and anything else it started (a respawned model server)
    DEFAULT_STATE.unlink(missing_ok=True)
    STOPPED.parent.mkdir(parents=True, exist_ok=True)
    STOPPED.write_text("stopped by `lifeboat local down`; `lifeboat local up` starts it again\n")
    return True
