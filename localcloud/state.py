"""The local cloud's state file (ports, pids, model server URLs, the environment a client needs): where it is
and how it is written and read. Light on purpose: the CLI reads it for every command, `--help` included,
without importing the local cloud itself (moto)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_STATE = Path(".lifeboat") / "local.json"


def write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(path)  # atomic: readers never see half a file


def read_state(path: Path = DEFAULT_STATE) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
