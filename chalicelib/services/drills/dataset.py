"""The drill's writes: timestamped objects in the subject's dataset asset (the application's writes whose
replication the drill measures for the RPO), the replica as it was at the switch, and their removal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from chalicelib.adapters.drill_dataset import DatasetWriter, DrillDataset
from chalicelib.adapters.drill_faults import FaultInjector, ReplicaCopy
from chalicelib.invariants import present
from chalicelib.models.drill import Write
from chalicelib.models.durations import format_duration
from chalicelib.models.plan import DRPlan, S3Asset

WRITE_PREFIX = "lifeboat-drill/"


def dataset_copy(plan: DRPlan, drill_id: str) -> tuple[S3Asset, ReplicaCopy] | None:
    """Where the drill writes its timestamped objects: the plan's dataset asset (else its first S3 asset)."""
    s3 = [a for a in plan.assets if isinstance(a, S3Asset)]
    chosen = next((a for a in s3 if a.role == "dataset"), s3[0] if s3 else None)
    if chosen is None:
        return None
    return chosen, asset_copy(plan, chosen, f"{WRITE_PREFIX}{drill_id}/")


def asset_copy(plan: DRPlan, asset: S3Asset, folder: str = "") -> ReplicaCopy:
    """An S3 asset's source and replica (below `folder` of its prefix)."""
    return ReplicaCopy(
        source_bucket=asset.source.bucket,
        source_prefix=asset.source.prefix + folder,
        source_region=plan.regions.primary,
        replica_bucket=asset.replica.bucket,
        replica_prefix=asset.replica.prefix + folder,
        replica_region=plan.regions.secondary,
    )


def remove_writes(dataset: DrillDataset, copy: ReplicaCopy) -> str:
    """Delete the drill's objects from both regions (every version); says what it did, and what it could
    not delete."""
    removal = dataset.remove(copy)
    note = (
        f" ({removal.retained} versions kept by Object Lock, behind delete markers)"
        if removal.retained
        else ""
    )
    left = f"; still visible: {removal.visible}" if removal.visible else ""
    return f"removed the drill's {removal.objects} dataset objects from both regions{note}{left}"


class DrillWrites:
    """One drill's writes to its subject's dataset, when the subject has an S3 asset to write to."""

    def __init__(self, dataset: DrillDataset, plan: DRPlan, drill_id: str) -> None:
        self.dataset = dataset
        found = dataset_copy(plan, drill_id)
        self.asset: S3Asset | None = found[0] if found else None
        self.copy: ReplicaCopy | None = found[1] if found else None
        self.replica_at_switch: set[str] | None = None
        self._writer: DatasetWriter | None = None

    def start(
        self,
        injector: FaultInjector,
        interval: timedelta,
        clock: Callable[[], datetime],
        say: Callable[[str, str], None],
    ) -> None:
        """Make sure the writes replicate, then write every `interval` (stamped with `clock`)."""
        if self.copy is None:
            return
        copy = self.copy
        injector.start_replication([copy])
        self._writer = self.dataset.writer(copy, interval, clock)
        self._writer.start()
        say(
            "writes",
            f"writing to s3://{copy.source_bucket}/{copy.source_prefix} every {format_duration(interval)}",
        )

    def stop(self) -> None:
        if self._writer is not None:
            self._writer.stop()

    def log(self) -> list[Write]:
        """The writes S3 accepted, in order."""
        return self._writer.snapshot() if self._writer else []

    def replica_keys(self) -> set[str]:
        return self.dataset.replica_keys(present(self.copy, "the drill dataset's replica copy"))

    def at_switch(self) -> None:
        """Traffic just left the primary: the application's writes stop, and what the replica holds now is
        what the RPO is measured against."""
        self.stop()
        if self.copy is not None:
            self.replica_at_switch = self.replica_keys()

    # -- data-corruption --------------------------------------------------------------------------------
    def verified(self) -> dict[str, str]:
        """A green verification of the drill's objects: key -> checksum (ETag) of every write that both
        regions hold with the content written. The last verified good state the damage is judged against."""
        copy = present(self.copy, "the drill dataset's copy")
        source, replica = self.dataset.source_etags(copy), self.dataset.replica_etags(copy)
        return {
            w.key: w.etag
            for w in self.log()
            if w.etag is not None and source.get(w.key) == w.etag and replica.get(w.key) == w.etag
        }

    def checksums(self, role: str) -> dict[str, str]:
        """key -> ETag of the drill's objects now, in the primary's source or the secondary's replica."""
        copy = present(self.copy, "the drill dataset's copy")
        return self.dataset.source_etags(copy) if role == "primary" else self.dataset.replica_etags(copy)

    def kept(self) -> set[str]:
        """The writes the source holds now with the content written (after a restore: what it kept)."""
        now = self.checksums("primary")
        return {w.key for w in self.log() if w.etag is not None and now.get(w.key) == w.etag}

    def overwrite(self, key: str, body: bytes) -> None:
        """A bad write over one of the drill's objects, in the source (replication carries it)."""
        self.dataset.put(present(self.copy, "the drill dataset's copy"), key, body)

    def delete(self, key: str) -> None:
        """A deletion of one of the drill's objects, in the source (its delete marker replicates)."""
        self.dataset.delete(present(self.copy, "the drill dataset's copy"), key)

    def first_change(self, keys: list[str]) -> datetime | None:
        return self.dataset.first_change(present(self.copy, "the drill dataset's copy"), keys)

    def remove(self) -> str | None:
        return remove_writes(self.dataset, self.copy) if self.copy is not None else None
