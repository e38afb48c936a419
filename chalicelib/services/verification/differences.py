"""A run's complete difference list: JSON Lines spooled per shard (memory, then a temporary file), stored
next to the report, and merged into one `differences.jsonl` when the run is published."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from typing import IO, Any

from chalicelib.adapters.evidence import EvidenceStore
from chalicelib.models.verification import ObjectSample

IN_MEMORY_BYTES = 8 * 1024 * 1024
"""A shard's list stays in memory up to this size, then spills to a temporary file (Lambda's /tmp)."""


class DifferenceList:
    """One shard's differences, one JSON object per line, never all in memory."""

    def __init__(self, asset: str, shard: int) -> None:
        self._asset, self._shard = asset, shard
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES)  # noqa: SIM115
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        line = {"asset": self._asset, "shard": self._shard, **record}
        self.file.write(json.dumps(line, sort_keys=True, default=str).encode() + b"\n")
        self.count += 1

    def add_samples(self, samples: Iterable[ObjectSample]) -> None:
        """Kinds that do not stream their differences (a registry, a table) report them as samples."""
        for s in samples:
            self.add({"proof": s.proof, **s.model_dump(mode="json", exclude={"proof"}, exclude_none=True)})

    def close(self) -> None:
        self.file.close()


def merge(store: EvidenceStore, parts: list[str], key: str) -> str:
    """Concatenate the shards' lists (in the order given) into one JSON Lines object; its URI. An empty
    list is written too: it says there was nothing to repair."""
    with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES) as out:
        for part in parts:
            store.copy_into(part, out)
        return store.put_lines(key, out)
