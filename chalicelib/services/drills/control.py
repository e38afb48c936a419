"""The drill's control record in the ledger (`control#drill` of its subject): one drill per subject, alive
while its lease is renewed (the heartbeat), taken over by `recover` once the lease lapsed. The fault
injector's dead-man switch is renewed with it: faults outliving the drill's process are undone."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.drill_faults import FaultInjector
from chalicelib.clock import parse_timestamp
from chalicelib.models.drill import DrillRecord
from chalicelib.services.deps import Deps
from chalicelib.services.drills.errors import DrillInterrupted, DrillRefused

CONTROL_KEY = "drill"
LEASE = timedelta(seconds=45)
HEARTBEAT_EVERY = timedelta(seconds=3)


class DrillLease:
    """The running drill's claim on its subject: the control record says who runs, in which phase, which
    executions and faults are its own, and until when it is alive."""

    def __init__(
        self,
        d: Deps,
        workload: str,
        record: DrillRecord,
        executions: Mapping[str, str],
        injector: FaultInjector,
    ) -> None:
        self.d = d
        self.workload = workload
        self.record = record
        self.executions = executions  # the run's own: arn -> kind, read at each renewal
        self.injector = injector
        self.phase = "starting"
        self._last: datetime | None = None

    def claim(self) -> None:
        """Take the subject (refused while another drill runs); the drill owns it from here on."""
        now = self.d.clock()

        def claim(current: dict[str, Any] | None) -> dict[str, Any]:
            if current and current.get("status") == "running":
                raise DrillRefused(f"drill {current.get('drill_id')} is already running on {self.workload}")
            return self._control(now, "running", "starting")

        self.d.ledger.update_control(self.workload, CONTROL_KEY, claim)
        self._last = now

    def arm_faults(self) -> None:
        """Start the injector's dead-man switch (renewed by each heartbeat)."""
        self.injector.heartbeat(self.record.drill_id, self.d.clock() + LEASE)

    def heartbeat(self, phase: str | None = None, *, force: bool = False) -> None:
        """Renew the lease (at most every HEARTBEAT_EVERY unless forced); a stop condition when another
        process took the drill over."""
        now = self.d.clock()
        if not force and self._last and now - self._last < HEARTBEAT_EVERY:
            return
        self._last = now
        rec = self.record
        self.phase = phase or self.phase

        def renew(current: dict[str, Any] | None) -> dict[str, Any]:
            if not current or current.get("drill_id") != rec.drill_id or current.get("status") != "running":
                raise DrillInterrupted(
                    "stop condition: another process took the drill over (its lease lapsed)"
                )
            return self._control(now, "running", self.phase)

        self.d.ledger.update_control(self.workload, CONTROL_KEY, renew)
        self.injector.heartbeat(rec.drill_id, now + LEASE)

    def _control(self, now: datetime, status: str, phase: str) -> dict[str, Any]:
        rec = self.record
        return {
            "drill_id": rec.drill_id,
            "workload": rec.workload,
            "subject": rec.subject,
            "scenario": rec.scenario,
            "mode": rec.mode,
            "requested_by": rec.requested_by,
            "reason": rec.reason,
            "started_at": rec.started_at.isoformat(),
            "status": status,
            "phase": phase,
            "heartbeat_at": now.isoformat(),
            "lease_until": (now + LEASE).isoformat(),
            "executions": dict(self.executions),
            "faults": list(rec.faults),
        }


def take_over(d: Deps, workload: str, now: datetime, *, force: bool = False) -> dict[str, Any] | None:
    """The control record of a drill whose lease lapsed, now marked recovering; None (and the record
    removed) when no drill is left behind. `force` takes over even a live lease (an operator's decision)."""
    taken: dict[str, Any] = {}

    def take(current: dict[str, Any] | None) -> dict[str, Any]:
        taken.clear()
        if not current or current.get("status") != "running":
            return current or {"status": "idle"}
        if not force and parse_timestamp(str(current["lease_until"])) > now:
            raise DrillRefused(
                f"drill {current.get('drill_id')} is alive (lease until {current['lease_until']}); "
                "use --force to take it over"
            )
        taken.update(current)
        return {**current, "status": "recovering", "heartbeat_at": now.isoformat()}

    d.ledger.update_control(workload, CONTROL_KEY, take)
    if not taken:
        d.ledger.delete_control(workload, CONTROL_KEY)
        return None
    return taken


def release(d: Deps, workload: str) -> None:
    """The drill is over (recorded): the subject is free for the next one."""
    d.ledger.delete_control(workload, CONTROL_KEY)
