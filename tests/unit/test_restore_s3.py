"""Point-in-time restore of an S3 asset (services/restore.py with adapters/restore_s3.py) against moto in
process: the example plan's training-data asset, damaged after TIME, restored into a new prefix or in place.

S3's clock is moto's: the tests move it (`s3_clock`) instead of sleeping, so each write has the second the
test gives it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import moto.s3.models
import pytest

from chalicelib.adapters.evidence import EvidenceStore
from chalicelib.adapters.plan_store import DirectoryPlanStore
from chalicelib.adapters.restore_s3 import ObjectRestorer
from chalicelib.models.ledger import WorkloadState
from chalicelib.models.restore import Progress, RestoreRequest
from chalicelib.services import restore as uc
from chalicelib.services.deps import Deps
from chalicelib.services.restore_test import run_restore_test, run_scheduled
from tests.unit.fakes import FakeLedger
from tests.unit.moto_aws import ClientFor, bucket

ROOT = Path(__file__).resolve().parents[2]
W, ASSET = "fraud-scoring", "training-data"
SRC, REP, EVIDENCE = "fraud-data-use1", "fraud-data-usw2", "lifeboat-evidence-unit"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class S3Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now.replace(tzinfo=None)  # moto keeps naive UTC


@pytest.fixture
def s3_clock(monkeypatch: pytest.MonkeyPatch) -> S3Clock:
    clock = S3Clock()
    monkeypatch.setattr(moto.s3.models, "utcnow", clock)
    return clock


@pytest.fixture
def world(aws: ClientFor, s3_clock: S3Clock) -> Iterator[tuple[Deps, Any, S3Clock]]:
    bucket(aws, SRC, "us-east-1")
    bucket(aws, REP, "us-west-2")
    bucket(aws, EVIDENCE, "us-east-1")
    s3 = aws("s3", "us-east-1")
    d = Deps(
        plans=DirectoryPlanStore(ROOT / "plans"),
        ledger=FakeLedger(state=WorkloadState(workload=W)),  # type: ignore[arg-type]
        locks=None,  # type: ignore[arg-type]
        router=None,  # type: ignore[arg-type]
        endpoints=None,  # type: ignore[arg-type]
        notifier=None,  # type: ignore[arg-type]
        alarms=None,  # type: ignore[arg-type]
        executions=None,  # type: ignore[arg-type]
        clock=lambda: s3_clock.now + timedelta(seconds=1),
    )
    d.restorer = ObjectRestorer(s3)
    d.evidence = EvidenceStore(EVIDENCE, s3=s3)
    yield d, s3, s3_clock


def damage(s3: Any, clock: S3Clock) -> datetime:
    """Good data at T0, then (30 s later) a bad overwrite, a deletion and a new key. Returns TIME (T0+10s)."""
    for name in ("a.csv", "b.csv", "c.csv"):
        s3.put_object(Bucket=SRC, Key=f"datasets/{name}", Body=f"good {name}".encode())
    clock.now = T0 + timedelta(seconds=30)
    s3.put_object(Bucket=SRC, Key="datasets/a.csv", Body=b"CORRUPT")
    s3.delete_object(Bucket=SRC, Key="datasets/b.csv")
    s3.put_object(Bucket=SRC, Key="datasets/z.csv", Body=b"written after the damage")
    clock.now = T0 + timedelta(seconds=40)
    return T0 + timedelta(seconds=10)


def body(s3: Any, key: str) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=SRC, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def versions(s3: Any) -> int:
    page = s3.list_object_versions(Bucket=SRC)
    return len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))


def request(to: datetime, **kw: Any) -> RestoreRequest:
    return RestoreRequest(workload=W, asset=ASSET, to=to, requested_by="alice", **kw)


def test_a_dry_run_lists_exactly_what_would_change_and_changes_nothing(world: Any) -> None:
    d, s3, clock = world
    to = damage(s3, clock)
    before = versions(s3)
    # When the in-place restore is dry-run
    report = uc.restore(request(to, in_place=True, confirm=W, dry_run=True), d)
    # Then it counts and lists each change, and nothing was written anywhere
    assert report.verdict == "planned"
    assert (report.keys, report.copies, report.deletes) == (4, 2, 1)
    assert report.changes == {"unchanged": 1, "reverted": 1, "undeleted": 1, "created-since": 1, "absent": 0}
    assert [(c["key"], c["operation"], c["change"]) for c in report.listed] == [
        ("a.csv", "copy", "reverted"),
        ("b.csv", "copy", "undeleted"),
        ("z.csv", "delete", "created-since"),
    ]
    assert versions(s3) == before
    assert d.ledger.recorded == [] and "Contents" not in s3.list_objects_v2(Bucket=EVIDENCE)


def test_restore_into_a_new_prefix_holds_every_key_as_it_was_each_copy_verified(world: Any) -> None:
    d, s3, clock = world
    to = damage(s3, clock)
    # When restored to TIME into the default new prefix
    report = uc.restore(request(to), d)
    # Then the new prefix holds the keys that existed at TIME, with their content then; the asset is untouched
    target = report.target.prefix
    assert target == "lifeboat-restore/training-data/20260301T120010Z/"
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=SRC, Prefix=target)["Contents"]]
    assert listed == [f"{target}a.csv", f"{target}b.csv", f"{target}c.csv"]
    assert body(s3, f"{target}a.csv") == b"good a.csv" and body(s3, f"{target}b.csv") == b"good b.csv"
    assert body(s3, "datasets/a.csv") == b"CORRUPT" and body(s3, "datasets/b.csv") is None
    assert report.verdict == "restored" and report.verified == {"etag-md5": 3} and report.failed == 0
    # And the evidence report and the ledger entry say so
    stored = json.loads(
        s3.get_object(Bucket=EVIDENCE, Key=f"restore/{W}/{report.run_id}.json")["Body"].read()
    )
    assert stored["copies"] == 3 and stored["verdict"] == "restored"
    assert d.ledger.outcomes[0][:2] == ("restore", "restored")


def test_in_place_restore_undoes_the_damage_and_keeps_every_version(world: Any) -> None:
    d, s3, clock = world
    to = damage(s3, clock)
    before = versions(s3)
    report = uc.restore(request(to, in_place=True, confirm=W), d)
    # Then the asset reads as it did at TIME: the overwrite reverted, the deletion undone, the later key gone
    assert report.verdict == "restored" and (report.copies, report.deletes) == (2, 1)
    assert [body(s3, f"datasets/{k}") for k in ("a.csv", "b.csv", "c.csv", "z.csv")] == [
        b"good a.csv",
        b"good b.csv",
        b"good c.csv",
        None,
    ]
    # And nothing was lost: the restore only added versions (two copies, one delete marker)
    assert versions(s3) == before + 3
    # And a second restore to the same TIME finds nothing left to change
    again = uc.restore(request(to, in_place=True, confirm=W, dry_run=True), d)
    assert again.copies == 0 and again.deletes == 0 and again.changes["unchanged"] == 3


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"asset": "nope"}, "has no asset 'nope'"),
        ({"asset": "features"}, "is a dynamodb asset"),
        ({"in_place": True}, "confirm with the name"),
        ({"in_place": True, "confirm": W, "target": f"s3://{SRC}/x/"}, "give no target"),
        ({"target": f"s3://{SRC}/datasets/restored"}, "is inside the asset"),
        ({"target": f"s3://{SRC}/kept/"}, "is not empty"),
        ({"target": f"s3://{SRC}/"}, "contains the asset"),
        ({"to": T0 + timedelta(days=1)}, "is in the future"),
    ],
)
def test_requests_that_cannot_run_as_asked_are_refused_with_the_reason(
    world: Any, change: dict[str, Any], words: str
) -> None:
    d, s3, clock = world
    to = damage(s3, clock)
    s3.put_object(Bucket=SRC, Key="kept/x", Body=b"someone's data")
    fields = {"workload": W, "asset": ASSET, "to": to, **change}
    with pytest.raises(uc.RestoreRefused, match=words):
        uc.restore(RestoreRequest(**fields), d)
    assert d.ledger.recorded == []


def test_an_unversioned_bucket_has_nothing_to_restore(world: Any) -> None:
    d, s3, _ = world
    d.restorer = ObjectRestorer(_Unversioned(s3))
    with pytest.raises(uc.RestoreRefused, match="not versioned"):
        uc.restore(request(T0), d)


class _Unversioned:
    """A bucket that was never versioned (moto cannot turn versioning off once on)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def get_bucket_versioning(self, **_: Any) -> dict[str, Any]:
        return {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


class _ListsChecksums(_Unversioned):
    """S3 as AWS answers: version listings name each version's stored checksum algorithm (moto's omit it)."""

    def get_bucket_versioning(self, **kw: Any) -> dict[str, Any]:
        return dict(self._s3.get_bucket_versioning(**kw))

    def list_object_versions(self, **kw: Any) -> dict[str, Any]:
        page = dict(self._s3.list_object_versions(**kw))
        page["Versions"] = [{**v, "ChecksumAlgorithm": ["SHA256"]} for v in page.get("Versions", [])]
        return page


class _CorruptingCopies(_Unversioned):
    """A copy that writes other bytes than its source's (what the verification exists to catch)."""

    def get_bucket_versioning(self, **kw: Any) -> dict[str, Any]:
        return dict(self._s3.get_bucket_versioning(**kw))

    def copy_object(self, **kw: Any) -> dict[str, Any]:
        resp = self._s3.put_object(Bucket=kw["Bucket"], Key=kw["Key"], Body=b"not what was there")
        return {"VersionId": resp["VersionId"], "CopyObjectResult": {"ETag": resp["ETag"]}}


def test_a_stored_checksum_proves_each_copy(world: Any) -> None:
    d, s3, clock = world
    s3.put_object(Bucket=SRC, Key="datasets/a.csv", Body=b"good", ChecksumAlgorithm="SHA256")
    clock.now = T0 + timedelta(seconds=30)
    d.restorer = ObjectRestorer(_ListsChecksums(s3))
    report = uc.restore(request(T0 + timedelta(seconds=5)), d)
    assert report.verified == {"checksum-SHA256": 1} and report.verdict == "restored"


def test_a_copy_whose_bytes_differ_from_its_version_fails_the_restore(world: Any) -> None:
    d, s3, clock = world
    to = damage(s3, clock)
    d.restorer = ObjectRestorer(_CorruptingCopies(s3))
    report = uc.restore(request(to), d)
    # Then every copy was read back, found different and reported; the restore failed
    assert report.verdict == "failed" and report.failed == 3 and report.verified == {}
    assert all("SHA-256 of the copy differs" in f["error"] for f in report.failures)
    assert d.ledger.outcomes[0][:2] == ("restore", "failed")


def test_batches_resume_from_their_cursor_and_add_up_to_one_run(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, s3, clock = world
    to = damage(s3, clock)
    monkeypatch.setattr(uc, "BATCH_KEYS", 1)
    scope = uc.resolve(request(to, dry_run=True), d, run_id="r1")
    # When each batch runs past its deadline at once (the state machine's loop)
    progress, rounds = Progress(), 0
    while not progress.done:
        progress = uc.run_batches(scope, d, progress, list_limit=10, deadline=0.0, monotonic=lambda: 1.0)
        rounds += 1
    # Then each batch took one key and the totals are those of a single pass
    whole = uc.run_batches(scope, d, Progress(), list_limit=10)
    assert rounds == 5 and progress.batches == 4
    assert progress.model_dump(exclude={"cursor", "batches"}) == whole.model_dump(
        exclude={"cursor", "batches"}
    )


# -- scheduled restore tests -----------------------------------------------------------------------------
def ticking(step: float) -> Any:
    """A monotonic clock that moves `step` seconds at every look."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_a_restore_test_restores_a_sample_to_scratch_extrapolates_and_cleans_up(world: Any) -> None:
    d, s3, clock = world
    damage(s3, clock)  # now: a.csv (overwritten), c.csv, z.csv; b.csv deleted
    plan = d.plans.get(W)
    # When the restore test samples two objects (each look at the clock: one second later)
    report = run_restore_test(plan, plan.asset(ASSET), d, sample=2, monotonic=ticking(1.0))
    # Then both were restored and verified, the whole asset was counted, and the projection scales the sample
    assert (report.sample_objects, report.failed, report.objects, report.listing_complete) == (2, 0, 3, True)
    # (by the slower rate: here bytes, the sample's objects being smaller than the rest)
    by_objects, by_bytes = 3 / 2, report.bytes / report.sample_bytes
    assert by_bytes > by_objects
    assert report.projected_seconds == round(report.listing_seconds + report.copy_seconds * by_bytes, 3)
    assert report.verdict == "passed" and report.rto_seconds == 300
    # And the scratch prefix is gone, every version of it, and nothing else was touched
    assert report.scratch.prefix.startswith("lifeboat-restore/training-data/test-")
    left = s3.list_object_versions(Bucket=SRC, Prefix=report.scratch.prefix)
    assert not left.get("Versions") and not left.get("DeleteMarkers") and report.scratch_deleted == 2
    assert body(s3, "datasets/a.csv") == b"CORRUPT" and body(s3, "datasets/z.csv") is not None
    # And the evidence and the ledger entry are there
    stored = json.loads(
        s3.get_object(Bucket=EVIDENCE, Key=f"restore-tests/{W}/{report.run_id}.json")["Body"].read()
    )
    assert stored["verdict"] == "passed"
    assert d.ledger.outcomes[-1][:2] == ("restore", "test-passed")


def test_a_restore_test_projecting_past_the_rto_is_a_breach(world: Any) -> None:
    d, s3, clock = world
    damage(s3, clock)
    plan = d.plans.get(W)
    # When each look at the clock is 200 s later: one sample copy "takes" 200 s, so three take 600 s > 300 s
    report = run_restore_test(plan, plan.asset(ASSET), d, sample=1, monotonic=ticking(200.0))
    assert report.verdict == "breached" and report.projected_seconds > report.rto_seconds
    assert d.ledger.outcomes[-1][:2] == ("restore", "test-breached")


def test_the_schedule_tests_every_s3_asset_of_every_plan(world: Any) -> None:
    d, s3, clock = world
    damage(s3, clock)
    # Given the example plan's other S3 asset (model artefacts) in an empty bucket of its own
    bucket(lambda service, region: s3, "fraud-models-use1", "us-east-1")
    # When the daily schedule runs, each S3 asset is tested; an empty one proves nothing and says so
    results = run_scheduled(d)
    mine = {k: v for k, v in results.items() if k.startswith(f"{W}/")}
    assert mine == {f"{W}/training-data": "passed", f"{W}/model-artifacts": "empty"}
    # And the other shipped plans' assets (no buckets in this world) are each an error, never a stop
    others = {k: v for k, v in results.items() if not k.startswith(f"{W}/")}
    assert others and all(v == "error: NoSuchBucket" for v in others.values()), others
