"""Which cloud the CLI talks to: the local cloud when it is up (or --cloud local), else AWS.

For AWS, resource names come from the stage's environment variables in .chalice/config.json, the same
values the deployed functions get, and credentials from the operator's usual AWS configuration.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from localcloud.daemon import DEFAULT_STATE, read_state

ROOT = Path(__file__).resolve().parent.parent
LOG = DEFAULT_STATE.with_name("local.log")


class CliError(Exception):
    """A usage or environment problem: exit code 2 with a clear message."""


def use_local() -> dict[str, Any]:
    state = read_state(DEFAULT_STATE)
    if not state or not state.get("ready"):
        raise CliError("the local cloud is not running: start it with `lifeboat local up`")
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


def _apply_env(env: dict[str, str]) -> None:
    os.environ.update({k: str(v) for k, v in env.items()})
    from chalicelib.services import deps

    deps.reset()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def local_up(plans: Path, timeout: float = 90.0) -> dict[str, Any]:
    state = read_state(DEFAULT_STATE)
    if state and _alive(int(state.get("pid", 0))):
        return state
    DEFAULT_STATE.parent.mkdir(parents=True, exist_ok=True)
    DEFAULT_STATE.unlink(missing_ok=True)
    with open(LOG, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localcloud.daemon", "--plans", str(plans), "--state", str(DEFAULT_STATE)],
            cwd=os.getcwd(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the CLI; `local down` stops it
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(DEFAULT_STATE)
        if state and state.get("ready"):
            return state
        if proc.poll() is not None:
            raise CliError(f"the local cloud exited with {proc.returncode}; see {LOG}")
        time.sleep(0.2)
    proc.terminate()
    raise CliError(f"the local cloud did not become ready in {timeout:.0f}s; see {LOG}")


def local_down(timeout: float = 20.0) -> bool:
    """Stop the daemon and everything it started; True when something was running."""
    state = read_state(DEFAULT_STATE)
    if not state:
        return False
    pids = [int(state["pid"])]
    for workload in state.get("workloads", {}).values():
        pids += [int(s["pid"]) for s in workload.get("model_servers", {}).values()]
    daemon = pids[0]
    if _alive(daemon):
        os.kill(daemon, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(daemon) and time.monotonic() < deadline:
            time.sleep(0.1)
    for pid in pids:  # whatever did not stop cleanly
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    DEFAULT_STATE.unlink(missing_ok=True)
    return True
