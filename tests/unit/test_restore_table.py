"""Point-in-time restore of a DynamoDB asset (services/restore_table.py, adapters/restore_dynamodb.py) on moto
in process: the example plan's feature table restored into a new table, waited for without sleeping,
validated against the source, then swapped into use as an explicit second step.

moto keeps no table history: its restore copies the table as it is when the restore starts, and it reports
one fixed restorable time. The tests write to the source after the restore started (what arrives while AWS
restores), which is what the validation's sample compares.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.evidence import EvidenceStore
from chalicelib.adapters.plan_store import DirectoryPlanStore
from chalicelib.adapters.restore_dynamodb import TableRestorer
from chalicelib.models.ledger import WorkloadState
from chalicelib.models.restore import RestoreRequest
from chalicelib.services.deps import Deps
from chalicelib.services.restore import RestoreRefused
from chalicelib.services.restore_table import restore_table, swap_table
from tests.unit.fakes import FakeLedger
from tests.unit.moto_aws import ClientFor, bucket, table

ROOT = Path(__file__).resolve().parents[2]
W, ASSET, TABLE, EVIDENCE = "fraud-scoring", "features", "fraud-features", "lifeboat-evidence-unit"


def item(pk: str, score: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "score": {"N": str(score)}}


class WritesDuringRestore(TableRestorer):
    """Writes that reach the source after the restore point (moto restores the table as it is at start)."""

    def start(self, region: str, source: str, target: str, to: datetime) -> None:
        super().start(region, source, target, to)
        ddb = self._client(region)
        ddb.put_item(TableName=source, Item=item("card-1", 999))  # a bad write
        ddb.delete_item(TableName=source, Key={"pk": {"S": "card-2"}})  # a deletion
        ddb.put_item(TableName=source, Item=item("card-9", 9))  # a new item


@pytest.fixture
def world(aws: ClientFor) -> Iterator[tuple[Deps, Any, datetime]]:
    table(aws, TABLE, "us-east-1")
    bucket(aws, EVIDENCE, "us-east-1")
    ddb = aws("dynamodb", "us-east-1")
    for n in range(5):
        ddb.put_item(TableName=TABLE, Item=item(f"card-{n}", n))
    pitr = ddb.describe_continuous_backups(TableName=TABLE)["ContinuousBackupsDescription"]
    to = pitr["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"].astimezone(UTC)
    d = Deps(
        plans=DirectoryPlanStore(ROOT / "plans"),
        ledger=FakeLedger(state=WorkloadState(workload=W)),  # type: ignore[arg-type]
        locks=None,  # type: ignore[arg-type]
        router=None,  # type: ignore[arg-type]
        endpoints=None,  # type: ignore[arg-type]
        notifier=None,  # type: ignore[arg-type]
        alarms=None,  # type: ignore[arg-type]
        executions=None,  # type: ignore[arg-type]
        clock=lambda: to + timedelta(minutes=5),
    )
    d.tables = WritesDuringRestore(ddb, sleep=_no_sleep)
    d.evidence = EvidenceStore(EVIDENCE, s3=aws("s3", "us-east-1"))
    yield d, ddb, to


def _no_sleep(seconds: float) -> None:
    raise AssertionError("the restored table was ACTIVE: nothing to wait for")


def request(to: datetime, **kw: Any) -> RestoreRequest:
    return RestoreRequest(workload=W, asset=ASSET, to=to, requested_by="alice", **kw)


def scan(ddb: Any, name: str) -> dict[str, int]:
    return {i["pk"]["S"]: int(i["score"]["N"]) for i in ddb.scan(TableName=name)["Items"]}


def test_the_table_is_restored_into_a_new_table_validated_and_recorded(world: Any) -> None:
    d, ddb, to = world
    # When the feature table is restored to TIME
    report = restore_table(request(to), d)
    # Then a new table holds the items as they were, and the source is untouched
    assert report.verdict == "restored", report.problems
    assert report.target_table.startswith("fraud-features-restored-")
    assert scan(ddb, report.target_table) == {f"card-{n}": n for n in range(5)}
    assert scan(ddb, TABLE)["card-1"] == 999
    # And the validation counted both tables and compared a sample with the source now
    assert (report.items, report.source_items_now, report.key_schema_matches) == (5, 5, True)
    states = {s.key["pk"]["S"]: s.now for s in report.sample}
    assert states == {
        "card-0": "same",
        "card-1": "changed-since",
        "card-2": "deleted-since",
        "card-3": "same",
        "card-4": "same",
    }
    # And the evidence and the ledger say what was restored
    assert report.evidence and report.evidence.endswith(f"/restore/{W}/{report.run_id}.json")
    assert d.ledger.outcomes[0][:2] == ("restore", "restored")


def test_waiting_is_driven_by_the_table_status_and_bounded(world: Any) -> None:
    d, ddb, _ = world
    statuses = iter(["CREATING", "CREATING", "ACTIVE"])
    slept: list[float] = []
    clock = iter(range(0, 1000, 10))

    class Creating:
        def describe_table(self, **kw: Any) -> dict[str, Any]:
            return {"Table": {"TableStatus": next(statuses)}}

    tables = TableRestorer(Creating(), sleep=slept.append, monotonic=lambda: float(next(clock)))
    # When the restored table reports CREATING twice, then ACTIVE
    waited = tables.wait_active("us-east-1", "t-restored", timeout=600, interval=5)
    # Then it polled at the interval, no more, and measured the wait on its clock
    assert slept == [5, 5] and waited == 30.0  # three looks, each 10 s later on the injected clock
    # And a table that never becomes ACTIVE ends the wait at the bound with the reason
    statuses = iter(["CREATING"] * 1000)
    with pytest.raises(TimeoutError, match="still CREATING"):
        tables.wait_active("us-east-1", "t-restored", timeout=30, interval=5)


def test_a_dry_run_names_the_new_table_and_restores_nothing(world: Any) -> None:
    d, ddb, to = world
    report = restore_table(request(to, dry_run=True), d)
    assert report.verdict == "planned" and report.items is None
    assert ddb.list_tables()["TableNames"] == [TABLE] and d.ledger.recorded == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"asset": "training-data"}, "is not a DynamoDB asset"),
        ({"in_place": True, "confirm": W}, "restored into a new table"),
        ({"target": TABLE}, "exists: pick a new name"),
        ({"to": datetime(2020, 1, 1, tzinfo=UTC)}, "can be restored to"),
    ],
)
def test_restores_that_cannot_run_are_refused(world: Any, change: dict[str, Any], words: str) -> None:
    d, _, to = world
    with pytest.raises(RestoreRefused, match=words):
        restore_table(RestoreRequest(**{"workload": W, "asset": ASSET, "to": to, **change}), d)


def test_a_table_without_point_in_time_recovery_cannot_be_restored(world: Any) -> None:
    d, ddb, to = world
    ddb.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    with pytest.raises(RestoreRefused, match="point-in-time recovery is off"):
        restore_table(request(to), d)


def test_the_swap_is_a_separate_confirmed_step_that_puts_the_restored_items_into_use(world: Any) -> None:
    d, ddb, to = world
    restored = restore_table(request(to), d).target_table
    # When swapped without confirmation, nothing changes
    with pytest.raises(RestoreRefused, match="confirm with the name"):
        swap_table(W, ASSET, restored, confirm=None, actor="alice", d=d)
    assert scan(ddb, TABLE)["card-1"] == 999
    # When confirmed
    done = swap_table(W, ASSET, restored, confirm=W, actor="alice", d=d)
    # Then the source table holds exactly the restored items: the bad write and the deletion undone, the
    # item written after TIME gone; the restored table stays for comparison
    assert scan(ddb, TABLE) == scan(ddb, restored) == {f"card-{n}": n for n in range(5)}
    assert (done.written, done.deleted) == (5, 1)
    assert d.ledger.outcomes[-1][:2] == ("restore", "swapped")
