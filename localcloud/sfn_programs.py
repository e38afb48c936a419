"""The local cloud's Step Functions engine parses each state machine definition once, not once per execution.

moto parses a machine's ASL with ANTLR every time it starts an execution: for Lifeboat's failback machine
that is about a fifth of a second of CPU, the largest share of a short run in the local cloud. A parsed
program keeps no execution's state (each execution evaluates it in its own Environment: stack, heap, frames,
history), so the engine reuses one per definition text (the last `PROGRAMS` of them).

It patches moto's `ExecutionWorker._get_evaluation_entrypoint` (`GUARDED_INTERNALS`, checked by
tests/integration/test_moto_guard.py).
"""

from __future__ import annotations

import functools
import importlib
import threading
from typing import Any

from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

PROGRAMS = 64

GUARDED_INTERNALS: list[tuple[str, str, str]] = [
    (
        "moto.stepfunctions.parser.backend.execution_worker",
        "ExecutionWorker._get_evaluation_entrypoint",
        "(self) -> moto.stepfunctions.parser.asl.component.eval_component.EvalComponent",
    ),
]

_original = ExecutionWorker.__dict__["_get_evaluation_entrypoint"]
_install_lock = threading.Lock()
_installed = False


@functools.lru_cache(maxsize=PROGRAMS)
def _parse(definition: str) -> Any:
    return AmazonStateLanguageParser.parse(definition)[0]


def _patched_entrypoint(self: ExecutionWorker) -> Any:
    definition = self._evaluation_details.state_machine_details.definition
    if not isinstance(definition, str):
        return _original(self)
    return _parse(definition)


def install() -> None:
    """Patch moto (idempotent)."""
    global _installed
    with _install_lock:
        if not _installed:
            ExecutionWorker._get_evaluation_entrypoint = _patched_entrypoint  # type: ignore[method-assign]
            _installed = True


def uninstall() -> None:
    """Restore moto's own method (idempotent) and forget the parsed programs."""
    global _installed
    with _install_lock:
        if _installed:
            ExecutionWorker._get_evaluation_entrypoint = _original  # type: ignore[method-assign]
            _installed = False
    _parse.cache_clear()


def installed() -> bool:
    return _installed


def original(module: str, qualname: str) -> Any:
    """The moto attribute `module`.`qualname` as moto defines it, even while this module is installed."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return _original if obj is _patched_entrypoint else obj
