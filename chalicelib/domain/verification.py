"""Backup verification decisions, pure: key ranges, tallies of differences, RPO exposure, verdicts, reports.

Nothing here performs I/O; time comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.listings import Difference, ObjectInfo
from chalicelib.domain.objectives import rpo_exposure
from chalicelib.models.durations import format_duration
from chalicelib.models.plan import DRPlan
from chalicelib.models.verification import (
    NOT_COMPARED,
    PROOFS,
    VERDICT_ORDER,
    AssetVerification,
    Finding,
    ObjectSample,
    Shard,
    ShardResult,
    Verdict,
    VerificationReport,
)

SAMPLES_PER_SHARD = 20
SAMPLES_PER_ASSET = 50
OBJECT_MODES = frozenset({"listing", "versions", "inventory"})
"""Shard modes that compare objects (an empty source is only a finding for those)."""


# -- key ranges -------------------------------------------------------------------------------------------
def start_after(prefix: str, start: str | None) -> str | None:
    """The ListObjectsV2 StartAfter (exclusive) that includes relative key `start`.

    The largest key below `start` cannot be spelled in general, so list from `start` minus its last
    character and let `in_range` drop the few keys in between.
    """
    if not start:
        return None
    return prefix + start[:-1] if start[:-1] or prefix else None


def in_range(key: str, start: str | None, end: str | None) -> bool:
    return (start is None or key >= start) and (end is None or key < end)


def clip(objects: Iterable[ObjectInfo], start: str | None, end: str | None) -> Iterator[ObjectInfo]:
    """The objects of a sorted stream inside [start, end); stops reading at `end`."""
    for obj in objects:
        if end is not None and obj.key >= end:
            return
        if start is None or obj.key >= start:
            yield obj


def prefix_end(prefix: str) -> str | None:
    """The smallest key greater than every key starting with `prefix` (None: no such bound)."""
    while prefix:
        last = prefix[-1]
        if ord(last) < 0x10FFFF:
            return prefix[:-1] + chr(ord(last) + 1)
        prefix = prefix[:-1]
    return None


def relative_range(prefix: str, start: str | None, end: str | None) -> tuple[bool, str | None, str | None]:
    """Clamp a range of full keys to the keys under `prefix`, relative to it: (overlaps, start, end)."""
    upper = prefix_end(prefix)
    if (end is not None and end <= prefix) or (start is not None and upper is not None and start >= upper):
        return False, None, None
    rel_start = start[len(prefix) :] if start is not None and start > prefix else None
    rel_end = end[len(prefix) :] if end is not None and (upper is None or end < upper) else None
    return True, rel_start or None, rel_end


def key_ranges(boundaries: Iterable[str], max_ranges: int) -> list[tuple[str | None, str | None]]:
    """Contiguous [start, end) ranges covering every key, split at `boundaries`, at most `max_ranges`.

    Ranges cover the whole key space (the first starts at None, the last ends at None), so an object is in
    exactly one range whichever side it is on, and a directory only the replica has is still checked.
    """
    points = sorted({b for b in boundaries if b})
    if max_ranges < 1:
        raise ValueError("max_ranges must be at least 1")
    if len(points) + 1 > max_ranges:
        step = (len(points) + 1) / max_ranges
        points = [points[int(step * i) - 1] for i in range(1, max_ranges)]
        points = sorted(set(points))
    starts: list[str | None] = [None, *points]
    ends: list[str | None] = [*points, None]
    return list(zip(starts, ends, strict=True))


# -- tallies ----------------------------------------------------------------------------------------------
class CountingStream:
    """Counts objects (and versions) pulled through a listing without holding them."""

    def __init__(self, objects: Iterable[ObjectInfo]) -> None:
        self._it = iter(objects)
        self.count = 0
        self.versions = 0
        self.first_key: str | None = None
        self.last_key: str | None = None
        self.out_of_order: str | None = None

    def __iter__(self) -> CountingStream:
        return self

    def close(self) -> None:
        """Close the underlying stream, if it can be (a listing read ahead by a thread)."""
        close = getattr(self._it, "close", None)
        if close is not None:
            close()

    def __next__(self) -> ObjectInfo:
        obj = next(self._it)
        if self.last_key is not None and obj.key <= self.last_key and self.out_of_order is None:
            self.out_of_order = obj.key
        if self.first_key is None:
            self.first_key = obj.key
        self.last_key = obj.key
        self.count += 1
        self.versions += obj.version_count or 0
        return obj


def count_version_gap(
    result: ShardResult,
    source: ObjectInfo,
    replica: ObjectInfo,
    sink: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """A key whose replica keeps fewer versions than the source: history that did not replicate."""
    src, rep = source.version_count, replica.version_count
    if src is not None and rep is not None and src > rep:
        result.version_gaps = (result.version_gaps or 0) + 1
        if len(result.version_gap_keys) < SAMPLES_PER_SHARD:
            result.version_gap_keys.append(source.key)
        if sink is not None:
            sink({"kind": "version-gap", "key": source.key, "source_versions": src, "replica_versions": rep})


def count_proof(result: ShardResult, proof: str) -> None:
    result.proofs[proof] = result.proofs.get(proof, 0) + 1


def difference_record(d: Difference) -> dict[str, Any]:
    """One line of the complete difference list (JSON Lines in the evidence bucket)."""
    out: dict[str, Any] = {"kind": d.kind, "key": d.key, "why": d.why, "proof": d.proof}
    for side, obj in (("source", d.source), ("replica", d.replica)):
        if obj is not None:
            out[side] = {
                "size": obj.size,
                "etag": obj.etag,
                "checksum": obj.checksum,
                "last_modified": obj.last_modified.isoformat(),
                "version_id": obj.version_id,
            }
    return out


def tally(
    result: ShardResult,
    diffs: Iterable[Difference],
    *,
    snapshot_at: datetime | None = None,
    clock: Callable[[], datetime] | None = None,
    sink: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Fold differences into `result` (counts exact, samples capped, largest exposure); `sink` sees every
    one (the complete list).

    A change's exposure is measured when the listing page showing it was read (`listed_at`), else when it
    was compared (`clock`): a run that takes minutes does not add minutes to what it found early.
    With an inventory snapshot, a replica object changed after the snapshot cannot be judged against it
    (the source may have changed too): it is counted as unjudged, not as a difference.
    """
    for d in diffs:
        if snapshot_at is not None and d.replica is not None and d.replica.last_modified > snapshot_at:
            result.unjudged += 1
            count_proof(result, "inventory-unjudged")
            continue
        if sink is not None:
            sink(difference_record(d))
        if d.kind == "missing":
            result.missing += 1
        elif d.kind == "extra":
            result.extra += 1
        elif d.kind == "different":
            result.different += 1
        elif d.kind == "stale":
            result.stale += 1
        else:
            result.unverified += 1
        if d.kind in ("missing", "different", "stale") and d.source is not None:
            changed = d.source.last_modified
            if result.oldest_unreplicated_at is None or changed < result.oldest_unreplicated_at:
                result.oldest_unreplicated_at = changed
                result.oldest_unreplicated_key = d.key
            seen = d.source.listed_at or (clock() if clock is not None else None)
            if seen is not None:
                exposure = max(0.0, (seen - changed).total_seconds())
                if result.exposure_seconds is None or exposure > result.exposure_seconds:
                    result.exposure_seconds = exposure
        if len(result.samples) < SAMPLES_PER_SHARD:
            result.samples.append(
                ObjectSample(
                    kind=d.kind,
                    key=d.key,
                    why=d.why,
                    source_last_modified=d.source.last_modified if d.source else None,
                    replica_last_modified=d.replica.last_modified if d.replica else None,
                    source_size=d.source.size if d.source else None,
                    replica_size=d.replica.size if d.replica else None,
                    proof=d.proof,
                )
            )


def add_sample(result: ShardResult, kind: str, key: str, why: str, changed: datetime | None) -> None:
    """Count one difference found without a listing diff (a registry version, a table's restore point):
    missing, different, or unverified; the oldest change not safely in the replica is remembered."""
    if kind == "missing":
        result.missing += 1
    elif kind == "different":
        result.different += 1
    else:
        result.unverified += 1
    if (
        changed is not None
        and kind != "unverified"
        and (result.oldest_unreplicated_at is None or changed < result.oldest_unreplicated_at)
    ):
        result.oldest_unreplicated_at = changed
        result.oldest_unreplicated_key = key
    if len(result.samples) < SAMPLES_PER_SHARD:
        result.samples.append(ObjectSample(kind=kind, key=key, why=why, source_last_modified=changed))


# -- verdicts ---------------------------------------------------------------------------------------------
def asset_verdict(
    *,
    objective: timedelta,
    exposure: timedelta | None,
    incomplete: bool,
    findings: Sequence[Finding],
    differences: int,
    unverified: int,
) -> Verdict:
    """incomplete beats everything but a proven breach; any difference or warning is at-risk."""
    if exposure is not None and exposure > objective:
        return "breached"
    if any(f.severity == "breach" for f in findings):
        return "breached"
    if incomplete:
        return "incomplete"
    if differences or unverified or any(f.severity == "warning" for f in findings):
        return "at-risk"
    return "green"


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    out: Verdict = "green"
    for v in verdicts:
        if VERDICT_ORDER[v] > VERDICT_ORDER[out]:
            out = v
    return out


def merge_asset(
    *,
    asset: str,
    kind: str,
    role: str | None,
    objective: timedelta,
    results: Sequence[ShardResult],
    expected: int,
    now: datetime,
    may_be_empty: bool = True,
) -> AssetVerification:
    """One asset's verdict from all of its shard results (`expected` shards were planned).

    Unless the asset `may_be_empty`, object shards that all finished without seeing a single source object
    are a breach: a mistyped prefix would otherwise verify nothing and look green.
    """
    out = AssetVerification(
        asset=asset,
        kind=kind,
        role=role,
        verdict="green",
        objective_seconds=objective.total_seconds(),
        shards=expected,
        not_compared=list(NOT_COMPARED.get(kind, [])),
    )
    modes: list[str] = []
    exposure_seconds: float | None = None
    for r in sorted(results, key=lambda r: r.shard.index):
        modes.append(r.mode)
        if r.status != "complete":
            out.incomplete_reasons.append(f"shard {r.shard.index} ({r.shard.kind}): {r.reason or 'failed'}")
        for name in (
            "source_objects",
            "replica_objects",
            "missing",
            "extra",
            "different",
            "stale",
            "unverified",
            "unjudged",
        ):
            setattr(out, name, getattr(out, name) + getattr(r, name))
        for name in ("source_versions", "replica_versions", "version_gaps"):
            value = getattr(r, name)
            if value is not None:
                setattr(out, name, (getattr(out, name) or 0) + value)
        if r.oldest_unreplicated_at is not None and (
            out.oldest_unreplicated_at is None or r.oldest_unreplicated_at < out.oldest_unreplicated_at
        ):
            out.oldest_unreplicated_at = r.oldest_unreplicated_at
            out.oldest_unreplicated_key = r.oldest_unreplicated_key
        # Each shard measured its changes when it saw them; shards that did not (a registry, a table)
        # are measured now.
        shard_exposure = r.exposure_seconds
        if shard_exposure is None and r.oldest_unreplicated_at is not None:
            shard_exposure = rpo_exposure(r.oldest_unreplicated_at, now).total_seconds()
        if shard_exposure is not None and (exposure_seconds is None or shard_exposure > exposure_seconds):
            exposure_seconds = shard_exposure
        for proof, count in r.proofs.items():
            out.proofs[proof] = out.proofs.get(proof, 0) + count
        out.read_bytes += r.read_bytes
        out.unread_over_budget += r.unread_over_budget
        room = SAMPLES_PER_ASSET - len(out.version_gap_keys)
        out.version_gap_keys.extend(r.version_gap_keys[: max(room, 0)])
        if r.snapshot_at is not None and (out.snapshot_at is None or r.snapshot_at < out.snapshot_at):
            out.snapshot_at = r.snapshot_at
        for f in r.findings:
            if f not in out.findings:
                out.findings.append(f)
        room = SAMPLES_PER_ASSET - len(out.samples)
        out.samples.extend(r.samples[: max(room, 0)])
        out.detail.update(r.detail)
    if len(results) < expected:
        done = {r.shard.index for r in results}
        out.incomplete_reasons.append(
            f"{expected - len(done)} of {expected} shard(s) never reported (retries exhausted or stopped)"
        )
    overlap = _inventory_overlap(results)
    if overlap:
        out.incomplete_reasons.append(overlap)
    out.mode = "+".join(sorted(set(modes))) or "none"
    out.objects_checked = out.source_objects
    listed = [r for r in results if r.mode in OBJECT_MODES]
    if (
        listed
        and not may_be_empty
        and out.source_objects == 0
        and all(r.status == "complete" for r in listed)
    ):
        out.findings.append(
            Finding(
                severity="breach",
                code="source-empty",
                message="the source holds no objects: nothing was verified. Check the asset's prefix; if "
                "it may legitimately be empty, set `may_be_empty: true` in the plan",
            )
        )
    incomplete = bool(out.incomplete_reasons)
    # Incomplete: the part that was checked alone already proves at least the exposure it found.
    exposure = None if incomplete and exposure_seconds is None else timedelta(seconds=exposure_seconds or 0)
    out.measured_rpo_seconds = None if exposure is None else exposure.total_seconds()
    out.verdict = asset_verdict(
        objective=objective,
        exposure=exposure,
        incomplete=incomplete,
        findings=out.findings,
        differences=out.mismatches + out.extra,
        unverified=out.unverified,
    )
    return out


def _inventory_overlap(results: Sequence[ShardResult]) -> str | None:
    """Inventory files must cover disjoint key ranges in order; otherwise their shards missed keys."""
    ranged = sorted(
        (r for r in results if r.mode == "inventory" and r.first_key is not None),
        key=lambda r: r.shard.index,
    )
    for before, after in zip(ranged, ranged[1:], strict=False):
        if before.last_key is not None and after.first_key is not None and before.last_key >= after.first_key:
            return (
                f"inventory files overlap ({before.last_key!r} >= {after.first_key!r}); "
                "verify without inventory"
            )
    return None


def report_summary(workload: str, verdict: Verdict, assets: Sequence[AssetVerification]) -> str:
    parts = []
    for a in assets:
        measured = "n/a" if a.measured_rpo_seconds is None else _dur(a.measured_rpo_seconds)
        parts.append(f"{a.asset} {a.verdict} (RPO {measured} / {_dur(a.objective_seconds)})")
    return f"{workload}: {verdict.upper()}: " + "; ".join(parts) if parts else f"{workload}: no assets"


def _dur(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.1f}s"
    return format_duration(timedelta(seconds=round(seconds)))


# -- the report of a run ---------------------------------------------------------------------------------
def finalize(
    plan: DRPlan,
    shards: list[Shard],
    results: list[ShardResult],
    *,
    run_id: str,
    trigger: str,
    started_at: datetime,
    now: datetime,
    execution: str | None = None,
    problems: list[str] | None = None,
    replication_failures: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> VerificationReport:
    """The report of a run from its shard results and the replication failures events reported (no I/O)."""
    problems = list(problems or [])
    assets: list[AssetVerification] = []
    for asset in plan.assets:
        own = [s for s in shards if s.asset == asset.name]
        got = [r for r in results if r.shard.asset == asset.name]
        merged = merge_asset(
            asset=asset.name,
            kind=asset.kind,
            role=getattr(asset, "role", None),
            objective=plan.asset_rpo(asset),
            results=got,
            expected=len(own),
            now=now,
            may_be_empty=bool(getattr(asset, "may_be_empty", True)),
        )
        for code, seen in sorted((replication_failures or {}).get(asset.name, {}).items()):
            merged.findings.append(failure_finding(code, seen, outstanding=merged.mismatches > 0))
        names = {a.name for a in plan.assets}
        for problem in problems:
            owner = problem.split(":", 1)[0]
            if owner == asset.name or owner not in names:
                merged.incomplete_reasons.append(problem)
                if merged.verdict in ("green", "at-risk"):
                    merged.verdict = "incomplete"
        assets.append(merged)
    verdict = worst(a.verdict for a in assets)
    if problems and verdict in ("green", "at-risk"):
        verdict = "incomplete"
    summary = report_summary(plan.workload, verdict, assets)
    return VerificationReport(
        workload=plan.workload,
        run_id=run_id,
        trigger=trigger,
        execution=execution,
        started_at=started_at,
        finished_at=now,
        verdict=verdict,
        summary=summary,
        assets=assets,
        problems=problems,
    )


def failure_finding(code: str, seen: dict[str, Any], *, outstanding: bool) -> Finding:
    """A replication failure reason S3 reported for an asset, said for humans: can a retry fix it?"""
    fix = (
        "a retry can fix it"
        if seen.get("retry_fixes")
        else f"a retry CANNOT fix it until someone acts: {seen.get('action', 'fix the configuration')}"
    )
    return Finding(
        severity="warning" if outstanding else "info",
        code=f"replication-failed-{code}",
        message=f"S3 reported {seen.get('count', 1)} replication failure(s) {code} "
        f"(last: {seen.get('last_key')} at {seen.get('last_at')}, "
        f"{seen.get('redrive', 'not re-driven')}); {fix}",
    )


# -- Markdown ---------------------------------------------------------------------------------------------
def _proof_lines(a: AssetVerification) -> list[str]:
    """How each compared pair was judged, what was not compared, and what reading cost."""
    out: list[str] = []
    if a.proofs:
        out += ["", "| proof | pairs | what it means |", "|---|---|---|"]
        order = list(PROOFS)
        for proof, count in sorted(
            a.proofs.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99
        ):
            out.append(f"| {proof} | {count} | {PROOFS.get(proof, proof)} |")
    if a.read_bytes or a.unread_over_budget:
        out.append(
            f"\nRead and hashed: {a.read_bytes:,} bytes; {a.unread_over_budget} pair(s) left unverified "
            "because the run's read budget was spent."
        )
    if a.not_compared:
        out.append("\nNot compared: " + "; ".join(a.not_compared) + ".")
    return out


_ICON = {"green": "✅", "at-risk": "⚠️", "breached": "❌", "incomplete": "❔"}


def render_markdown(report: VerificationReport) -> str:
    """A readable summary of a report for humans (the JSON next to it has everything)."""
    lines = [
        f"# Backup verification: {report.workload}",
        "",
        f"**Verdict: {_ICON[report.verdict]} {report.verdict.upper()}**  ",
        f"Run `{report.run_id}` ({report.trigger}), {report.started_at:%Y-%m-%d %H:%M:%S} → "
        f"{report.finished_at:%H:%M:%S} UTC",
        "",
        "| asset | kind | verdict | measured RPO | objective | checked | missing | different | stale | extra "
        "| unverified |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in report.assets:
        measured = "n/a" if a.measured_rpo_seconds is None else _dur(a.measured_rpo_seconds)
        lines.append(
            f"| {a.asset} | {a.kind} | {_ICON[a.verdict]} {a.verdict} | {measured} "
            f"| {_dur(a.objective_seconds)} | {a.objects_checked} | {a.missing} | {a.different} "
            f"| {a.stale} | {a.extra} | {a.unverified} |"
        )
    for problem in report.problems:
        lines += ["", f"**Run problem:** {problem}"]
    for a in report.assets:
        lines += ["", f"## {a.asset}", ""]
        if a.snapshot_at is not None:
            lines.append(f"- source side read from the S3 Inventory of {a.snapshot_at:%Y-%m-%d %H:%M} UTC")
        for reason in a.incomplete_reasons:
            lines.append(f"- ❔ incomplete: {reason}")
        for f in a.findings:
            mark = {"breach": "❌", "warning": "⚠️", "info": "ℹ️"}[f.severity]
            lines.append(f"- {mark} `{f.code}`: {f.message}")
        lines += _proof_lines(a)
        if a.samples:
            lines += ["", "| difference | key | why | proof |", "|---|---|---|---|"]
            for s in a.samples:
                key = s.key.replace("|", "\\|")
                lines.append(f"| {s.kind} | `{key}` | {s.why} | {s.proof or ''} |")
            shown = len(a.samples)
            total = a.mismatches + a.extra + a.unverified
            if total > shown:
                lines.append(
                    f"\n({shown} of {total} differences shown; counts above are exact; every one is in "
                    "the difference list.)"
                )
        if a.version_gaps:
            keys = ", ".join(f"`{k}`" for k in a.version_gap_keys)
            more = (
                " (every one is in the difference list)" if a.version_gaps > len(a.version_gap_keys) else ""
            )
            lines.append(f"\n{a.version_gaps} key(s) whose replica holds fewer versions: {keys}{more}")
    if report.evidence:
        lines += ["", "Evidence: " + ", ".join(f"[{k}]({v})" for k, v in sorted(report.evidence.items()))]
    return "\n".join(lines) + "\n"
