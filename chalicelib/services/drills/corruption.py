"""data-corruption: a bad write and a deletion in the dataset, and a bad model artefact, all carried to the
secondary region by replication. Nothing is left to fail over to, so Lifeboat must move no traffic and the
damage must be restored instead.

The drill plays the runbook an operator follows (docs/restore.md): it detects the damage with what an
operator has - the smoke tests of both regions (they check predictions), and the dataset against its last
verified good state (the drill's objects and their checksums, recorded once both regions held them) - since
replication is faithful and comparing source with replica would see nothing; it judges what helps
(`domain/damage.py`: the damage is in both regions, restore); it stops the writes and restores each damaged
asset in place to the second before the damage, as `lifeboat restore W ASSET --to T --in-place --yes` does;
once the replicas carried the restored objects it reloads the model servers, and validates (smoke tests pass
in both regions, the overwritten and deleted objects are back). Then it measures the writes the restore undid
(RPO) and the time to restore (detected -> validated) against the objectives, and keeps watching the
automation until the observation window is over: traffic must never have moved.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.domain import damage
from chalicelib.domain import drills as rules
from chalicelib.domain.damage import Judgement, RegionCheck
from chalicelib.invariants import present
from chalicelib.models.drill import AssetRestore
from chalicelib.models.durations import format_duration, format_seconds
from chalicelib.models.plan import ROLES, Role, S3Asset
from chalicelib.models.restore import RestoreReport, RestoreRequest
from chalicelib.services import restore as restores
from chalicelib.services.drills.context import DrillContext
from chalicelib.services.drills.dataset import asset_copy
from chalicelib.services.drills.errors import DrillInterrupted
from chalicelib.services.drills.subject import ON_PRIMARY
from chalicelib.services.smoke import run_smoke

DAMAGED = 2
"""Dataset objects overwritten by the bad write, and as many deleted."""
BASELINE = 2 * DAMAGED
"""Verified objects the drill needs before it damages any."""
SETTLE = timedelta(seconds=30)
"""Longest wait for replication: the baseline verified in both regions, the restored objects replicated."""
VALIDATE_TIMEOUT = timedelta(seconds=90)
"""Longest wait, after the redeploy, for the smoke tests and the data checks to pass."""
BAD_BODY = b'{"seq": -1, "label": "garbage written by the data-corruption drill"}'


def run(drill: DrillContext) -> None:
    """The scenario, up to (not including) the leftovers check and the cleanup."""
    rec, writes = drill.record, drill.writes
    asset = present(writes.asset, "the drill's dataset asset")
    writes.start(drill.injector, drill.policy.write_interval, drill.d.clock, drill.say)
    good = verified_baseline(drill)
    fault_at = inject(drill, good)
    drill.hook("after-fault")
    judgement, detected_at, checks = detect(drill, good, fault_at)
    if judgement.action != "restore" or detected_at is None:
        writes.stop()
        rec.restore_outcome = "not-detected" if detected_at is None else "not-restored"
        rec.restore_problems = judgement.evidence
        observe(drill, fault_at)
        return
    decided_at = drill.now()
    drill.d.ledger.record(
        drill.subject.workload,
        "drill",
        "restore-chosen",
        f"drill {rec.drill_id}: {judgement.reason}",
        actor=rec.requested_by,
        detail={
            "drill_id": rec.drill_id,
            "evidence": judgement.evidence,
            "smoke": {role: c.smoke_reason for role, c in checks.items() if not c.smoke_passed},
        },
    )
    writes.stop()  # the application's writes stop while the dataset is restored in place
    first = writes.first_change(sorted(set(checks["primary"].missing) | set(checks["primary"].altered)))
    point = damage.restore_point(min(first, fault_at) if first else fault_at)
    names = damage.assets_to_restore(
        [(a.name, a.role) for a in drill.subject.assets if isinstance(a, S3Asset)],
        data_asset=asset.name,
        data_damaged=any(c.missing or c.altered for c in checks.values()),
        model_suspect=any(not c.smoke_passed for c in checks.values()),
    )
    drill.say(
        "decision",
        f"no failover: {judgement.reason}. Restoring {', '.join(names)} in place to "
        f"{point:%H:%M:%S} UTC (the second before the damage)",
    )
    reports = restore_assets(drill, names, point)
    restored_at = drill.now()
    if rec.restore_outcome == "failed":
        observe(drill, fault_at)
        return
    redeploy(drill, reports)
    redeployed_at = drill.now()
    validated_at = validate(drill, good, redeployed_at)
    if validated_at is None:
        observe(drill, fault_at)
        return
    rec.restore_outcome = "restored"
    measure(drill, asset, fault_at, detected_at, decided_at, restored_at, redeployed_at, validated_at, point)
    observe(drill, fault_at)


# -- before the damage --------------------------------------------------------------------------------------
def verified_baseline(drill: DrillContext) -> dict[str, str]:
    """Writes until BASELINE of them are held by both regions with the content written: the last verified
    good state (key -> checksum). Then a new second: S3 stamps changes to the second, and a restore to the
    second before the damage must keep every verified object."""
    deadline = drill.now() + SETTLE
    drill.wait(drill.policy.write_interval.total_seconds() * BASELINE)
    while len(good := drill.writes.verified()) < BASELINE:
        if drill.now() > deadline:
            raise DrillInterrupted(
                f"stop condition: fewer than {BASELINE} of the drill's writes were held by both regions "
                f"within {format_duration(SETTLE)} (is replication running?)"
            )
        drill.tick()
    verified_at = drill.now()
    drill.mark("verified", f"last verified good state: {len(good)} objects in both regions")
    drill.say("verified", f"last verified good state: {len(good)} dataset objects, in both regions alike")
    later = verified_at.replace(microsecond=0) + timedelta(seconds=1)
    drill.wait((later - drill.now()).total_seconds())
    return good


def inject(drill: DrillContext, good: dict[str, str]) -> datetime:
    """The damage: a bad write over DAMAGED verified objects, a deletion of DAMAGED more, then a bad model
    artefact deployed (replicated to the secondary, reloaded by both model servers)."""
    rec, writes = drill.record, drill.writes
    copy = present(writes.copy, "the drill dataset's copy")
    keys = sorted(good)
    overwritten, deleted = keys[:DAMAGED], keys[DAMAGED:BASELINE]

    def did(words: str) -> None:
        rec.faults.append(words)
        drill.say("fault", words)

    fault_at = drill.mark("fault", "bad write, deletion, bad model")
    for key in overwritten:
        writes.overwrite(key, BAD_BODY)
    did(
        f"bad write: {len(overwritten)} dataset objects overwritten with garbage "
        f"(s3://{copy.source_bucket}/{copy.source_prefix}{{{','.join(overwritten)}}})"
    )
    for key in deleted:
        writes.delete(key)
    did(
        f"deletion: {len(deleted)} dataset objects deleted "
        f"(s3://{copy.source_bucket}/{copy.source_prefix}{{{','.join(deleted)}}}); replication carries "
        "both to the replica"
    )
    did(drill.injector.corrupt_model())
    return fault_at


# -- detection and judgement --------------------------------------------------------------------------------
def region_check(drill: DrillContext, role: Role, good: dict[str, str]) -> RegionCheck:
    """What an operator can see in one region: its smoke tests, and the drill's objects against the last
    verified state."""
    smoke = run_smoke(drill.subject, role, drill.d, phase="drill-detect")
    missing, altered = damage.differences(good, drill.writes.checksums(role))
    return RegionCheck(smoke.passed, missing, altered, "" if smoke.passed else smoke.reason[:160])


def detect(
    drill: DrillContext, good: dict[str, str], fault_at: datetime
) -> tuple[Judgement, datetime | None, dict[Role, RegionCheck]]:
    """Check both regions until the damage is judged to be in both (restore), or `observe` has passed."""
    deadline = fault_at + drill.policy.observe
    detected_at: datetime | None = None
    drill.lease.heartbeat("looking for the damage", force=True)
    while True:
        at = drill.now()
        checks = {role: region_check(drill, role, good) for role in ROLES}
        judgement = damage.judge(checks["primary"], checks["secondary"])
        if judgement.action != "none" and detected_at is None:
            detected_at = at
            drill.record.detected_by = judgement.evidence
            drill.mark("detected", "damage detected", at)
            drill.say("detected", "damage seen: " + "; ".join(judgement.evidence))
        if judgement.action == "restore" or drill.now() >= deadline:
            drill.record.recovery_action, drill.record.recovery_reason = judgement.action, judgement.reason
            return judgement, detected_at, checks
        drill.tick()


# -- the restore --------------------------------------------------------------------------------------------
def restore_assets(
    drill: DrillContext, names: list[str], point: datetime
) -> list[tuple[S3Asset, RestoreReport]]:
    """Each asset restored in place to `point`, as `lifeboat restore W ASSET --to T --in-place --yes`."""
    rec, plan = drill.record, drill.subject
    done: list[tuple[S3Asset, RestoreReport]] = []
    for name in names:
        drill.lease.heartbeat(f"restoring {name}", force=True)
        request = RestoreRequest(
            workload=plan.workload,
            asset=name,
            to=point,
            in_place=True,
            confirm=plan.workload,
            requested_by=rec.requested_by,
            reason=f"drill {rec.drill_id} (data-corruption): restore to before the damage",
        )
        try:
            report = restores.restore(request, drill.d)
        except Exception as exc:  # recorded by the restore itself; the drill says so and stops restoring
            rec.restored_assets.append(AssetRestore(asset=name, run_id="-", verdict="failed"))
            rec.restore_problems.append(f"{name}: {type(exc).__name__}: {exc}")
            rec.restore_outcome = "failed"
            return done
        rec.restored_assets.append(
            AssetRestore(
                asset=name,
                run_id=report.run_id,
                verdict=report.verdict,
                changes={k: v for k, v in report.changes.items() if v and k != "unchanged"},
                copies=report.copies,
                deletes=report.deletes,
                failed=report.failed,
                duration_seconds=report.duration_seconds,
                evidence=report.evidence,
            )
        )
        changed = ", ".join(f"{v} {k}" for k, v in report.changes.items() if v and k != "unchanged")
        drill.say(
            "restore",
            f"{name} restored in place to {point:%H:%M:%S} UTC: {changed or 'nothing to change'} "
            f"({report.copies} copies verified, {report.deletes} deletions) in "
            f"{format_seconds(report.duration_seconds)}",
        )
        if report.verdict != "restored":
            why = report.error or f"{report.failed} object(s) not restored"
            rec.restore_problems.append(f"{name}: {why}")
            rec.restore_outcome = "failed"
            return done
        asset = next(a for a in drill.subject.assets if isinstance(a, S3Asset) and a.name == name)
        done.append((asset, report))
    return done


def redeploy(drill: DrillContext, reports: list[tuple[S3Asset, RestoreReport]]) -> None:
    """An in-place restore writes the primary's copies; the replicas have them once replication carried
    them. Then the model servers of both regions reload their region's artefact."""
    deadline = drill.now() + SETTLE
    drill.lease.heartbeat("waiting for the restored objects to replicate", force=True)
    while True:
        behind = [
            f"{asset.name}/{key}"
            for asset, report in reports
            for key in drill.d.drill_dataset.lagging(
                asset_copy(drill.subject, asset), [str(c["key"]) for c in report.listed]
            )
        ]
        if not behind:
            break
        if drill.now() > deadline:
            drill.say("redeploy", f"replication has not carried {len(behind)} restored object(s) yet")
            break
        drill.tick()
    for role in ROLES:
        drill.say("redeploy", drill.injector.redeploy(role))


def validate(drill: DrillContext, good: dict[str, str], since: datetime) -> datetime | None:
    """Smoke tests pass in both regions and every verified object is back, unchanged, in both."""
    deadline = since + VALIDATE_TIMEOUT
    drill.lease.heartbeat("validating the restore", force=True)
    while True:
        at = drill.now()
        checks = {role: region_check(drill, role, good) for role in ROLES}
        problems = [f"{role}: {c.words()}" for role, c in checks.items() if c.damaged]
        if not problems:
            drill.say("validated", "smoke tests pass in both regions; the damaged objects are back")
            return at
        if drill.now() > deadline:
            drill.record.restore_outcome = "unvalidated"
            drill.record.restore_problems = problems
            drill.say("validated", "still wrong after the restore: " + "; ".join(problems))
            return None
        drill.tick()


# -- measurements and the automation's behaviour ---------------------------------------------------------
def measure(
    drill: DrillContext,
    asset: S3Asset,
    fault_at: datetime,
    detected_at: datetime,
    decided_at: datetime,
    restored_at: datetime,
    redeployed_at: datetime,
    validated_at: datetime,
    point: datetime,
) -> None:
    rec, plan = drill.record, drill.subject
    rec.restore = rules.restore_breakdown(
        damaged_at=fault_at,
        detected_at=detected_at,
        decided_at=decided_at,
        restored_at=restored_at,
        redeployed_at=redeployed_at,
        validated_at=validated_at,
        restore_point=point,
    )
    rec.rpo = rules.measure_restore_rpo(
        asset.name,
        plan.asset_rpo(asset),
        drill.policy.write_interval,
        drill.writes.log(),
        drill.writes.kept(),
        decided_at,
    )
    rec.phases = rules.restore_timeline(rec.restore)
    rec.markers.extend(m for m in rules.restore_markers(rec.restore) if m.name != "detected")
    rec.objectives.append(
        rules.objective("RTO", plan.rto, rec.restore.rto_seconds, "time to restore: detected -> validated")
    )
    rec.objectives.append(
        rules.objective(
            "RPO", plan.asset_rpo(asset), rec.rpo.rpo_seconds, f"writes to {asset.name} the restore undid"
        )
    )
    drill.say(
        "measured",
        f"time to restore {format_seconds(rec.restore.rto_seconds)} (objective {format_duration(plan.rto)}), "
        f"data lost {format_seconds(rec.rpo.rpo_seconds)} ({rec.rpo.missing} writes; objective "
        f"{format_duration(plan.asset_rpo(asset))})",
    )


def observe(drill: DrillContext, fault_at: datetime) -> None:
    """Watch the automation until the observation window after the damage is over: it must not have moved
    traffic (a failover it refused, its backup failing the smoke tests too, is no move)."""
    rec, plan = drill.record, drill.subject
    window = rules.observation_window(plan.trigger.sustain, drill.policy.observe)
    deadline = fault_at + window
    drill.lease.heartbeat("watching the automation", force=True)
    moved = False
    while True:
        moved = moved or drill.d.router.read(plan).weights != ON_PRIMARY
        if drill.now() >= deadline and not drill.watch.running_failovers():
            break
        if drill.now() >= deadline + timedelta(minutes=5):
            raise DrillInterrupted("stop condition: a failover execution outlived the drill's window")
        drill.tick()
    concluded = [
        c for c in drill.watch.concluded_failovers() if c["outcome"] in ("completed", "refused", "failed")
    ]
    if concluded:
        rec.failover_execution = concluded[0]["execution"]
        rec.failover_outcome = concluded[0]["outcome"]
        rec.failover_reason = concluded[0]["reason"]
    rec.behaviour = rules.behaviour_of(concluded[0]["outcome"] if concluded else None)
    if moved and rec.behaviour != "failed-over":
        rec.behaviour = "failed-over"
