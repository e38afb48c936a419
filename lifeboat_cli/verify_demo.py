"""The verification part of the demo: a green pass, then a replication failure and a corrupted replica model
artifact, both caught (measured RPO against the objective), then repaired.

`demo_verification(console, state)` is called by the README demo (lifeboat_cli/demo.py) with its rich
console and the local cloud's state (`lifeboat local up`). It talks to the local cloud like any CLI command
and hands faults to the daemon's replication simulator through its control file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from chalicelib.models.verification import VerificationReport
from lifeboat_cli import cloud as clouds
from lifeboat_cli.verify_cmd import COLOURS, fmt_seconds, render_report, run_with_progress
from localcloud.replication import faults_path, write_faults

WORKLOAD = "fraud-scoring"
SEED_OBJECTS = 12
FAILED_REASON = "DstKmsKeyNotFound"


def _wait(check: Callable[[], Any], timeout: float = 15.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    return None


def _keys(s3: Any, bucket: str, prefix: str) -> set[str]:
    out: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.update(o["Key"][len(prefix) :] for o in page.get("Contents", []))
    return out


def _rpo_lines(console: Console, report: VerificationReport) -> None:
    for a in report.assets:
        if a.verdict == "green":
            continue
        c = COLOURS[a.verdict]
        console.print(
            f"  [{c}]{a.asset}[/]: measured RPO {fmt_seconds(a.measured_rpo_seconds)} vs objective "
            f"{fmt_seconds(a.objective_seconds)} -> [{c}]{a.verdict}[/]"
        )


def demo_verification(console: Console, state: dict[str, Any], *, workload: str = WORKLOAD) -> dict[str, Any]:
    """Narrated: green pass; a replication failure and a corrupt replica artifact, both caught; repair."""
    from chalicelib.adapters import aws
    from chalicelib.adapters.s3objects import copy_preserving
    from chalicelib.services.deps import deps

    clouds.use_local()
    d = deps()
    plan = d.plans.get(workload)
    dataset = next(a for a in plan.assets if a.kind == "s3" and getattr(a, "role", "") == "dataset")
    src = aws.client("s3", plan.regions.primary)
    rep = aws.client("s3", plan.regions.secondary)
    faults = faults_path(clouds.DEFAULT_STATE)
    write_faults(faults, [])

    console.rule("[bold]Backup verification: is every ML asset really in the other region?[/bold]")
    # Training data arrives in the primary; the local S3 replication copies it a moment later.
    day = time.strftime("%Y-%m-%d")
    for i in range(SEED_OBJECTS):
        key = f"{dataset.source.prefix}transactions/{day}/part-{i:04d}.csv"
        src.put_object(
            Bucket=dataset.source.bucket, Key=key, Body=f"amount,merchant_risk\n{i},0.{i}\n".encode()
        )
    want = {f"transactions/{day}/part-{i:04d}.csv" for i in range(SEED_OBJECTS)}
    _wait(lambda: want <= _keys(rep, dataset.replica.bucket, dataset.replica.prefix))
    console.print(
        f"wrote {SEED_OBJECTS} training files to s3://{dataset.source.bucket}/{dataset.source.prefix}; "
        "S3 replication copied them"
    )
    first = run_with_progress(workload, d, console)
    render_report(first, console)

    console.rule("[bold]Now break two things[/bold]")
    # 1. Replication of new training data fails (the replica's KMS key is gone): S3 never retries.
    write_faults(faults, [{"pattern": f"{dataset.source.prefix}late/*", "reason": FAILED_REASON}])
    time.sleep(0.5)  # the simulator reads the control file on its next poll
    late_key = f"{dataset.source.prefix}late/{day}/chargebacks.csv"
    src.put_object(Bucket=dataset.source.bucket, Key=late_key, Body=b"amount,label\n120.0,fraud\n")
    console.print(f"1. replication of s3://{dataset.source.bucket}/{late_key} fails ({FAILED_REASON})")

    def event_seen() -> Any:
        return next(
            (
                e
                for e in d.ledger.entries(workload, limit=20, kind="replication")
                if e.detail.get("key") == late_key
            ),
            None,
        )

    entry = _wait(event_seen)
    if entry is not None:
        console.print(f"   [yellow]S3 replication event -> SQS -> Lifeboat:[/yellow] {entry.reason}")
    # 2. The secondary's copy of the model artifact silently changes (bit rot, a bad sync, tampering).
    model = state["workloads"][workload]["model"]
    rep.put_object(
        Bucket=model["secondary_bucket"],
        Key=model["secondary_key"],
        Body=json.dumps({"model": "fraud-scorer", "weights": "corrupted"}).encode(),
        ContentType="application/json",
    )
    console.print(
        f"2. the replica model artifact s3://{model['secondary_bucket']}/{model['secondary_key']} "
        "is overwritten with other bytes"
    )

    second = run_with_progress(workload, d, console)
    render_report(second, console)
    console.print("[bold]caught:[/bold]")
    _rpo_lines(console, second)

    console.rule("[bold]Repair[/bold]")
    write_faults(faults, [])
    copy_preserving(
        rep, model["primary_bucket"], model["primary_key"], model["secondary_bucket"], model["secondary_key"]
    )
    copy_preserving(
        rep,
        dataset.source.bucket,
        late_key,
        dataset.replica.bucket,
        dataset.replica.prefix + late_key[len(dataset.source.prefix) :],
    )
    console.print("restored the replica artifact from the primary and re-drove the failed object")
    third = run_with_progress(workload, d, console)
    c = COLOURS[third.verdict]
    console.print(
        f"verification after repair: [{c}]{third.verdict.upper()}[/]  ({third.evidence.get('markdown')})"
    )
    return {
        "before": first.verdict,
        "broken": second.verdict,
        "after": third.verdict,
        "broken_assets": {a.asset: a.verdict for a in second.assets},
        "replication_event": None if entry is None else entry.outcome,
    }
