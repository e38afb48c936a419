"""How a drill breaks things: the `FaultInjector` interface, and the injector for an AWS drill target.

A drill asks for faults by intent (kill the primary, degrade an endpoint, throttle AWS calls, take a region's
APIs down, pause replication, corrupt a replica artifact, or the model artefact of both regions) and
restores everything with `restore_all`, which brings the subject back to its baseline whatever was changed,
so a recovering drill can call it on a fresh injector.

The local cloud's injector (`localcloud/drill_faults.py`, never deployed) makes every fault real. In an AWS
account the drill target's endpoints are expected to run Lifeboat's model-server container, whose
`/admin/faults` API injects latency, wrong answers and a dead container (`HttpFaults` below); the faults an
account cannot take from a Lambda function (killing a region's process, pausing S3 replication, throttling
AWS's own APIs or taking a region's APIs down, replacing an artifact under a running endpoint) are refused
before anything is broken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlparse, urlunparse

from chalicelib.adapters import outbound
from chalicelib.models.plan import ROLES, DRPlan, HttpEndpoint, Role
from chalicelib.models.urls import OutboundPolicy


class FaultUnsupported(RuntimeError):
    """This injector cannot inject that fault here."""


@dataclass(frozen=True)
class ReplicaCopy:
    """Objects under `prefix` in the source bucket, replicated to the replica bucket (same relative keys)."""

    source_bucket: str
    source_prefix: str
    source_region: str
    replica_bucket: str
    replica_prefix: str
    replica_region: str


class FaultInjector(Protocol):
    """What a drill needs from wherever it breaks things. Every method returns what it did, in words."""

    name: str

    def unsupported(self, scenario: str) -> str | None:
        """Why `scenario` cannot be injected here, or None when it can."""

    def kill(self, role: Role) -> str: ...

    def restore(self, role: Role) -> str:
        """Bring a killed endpoint back (same artifact, same address)."""

    def degrade(self, role: Role, **faults: Any) -> str:
        """Model-server faults: latency_ms, error_rate, wrong_answers, down."""

    def heal(self, role: Role) -> str: ...

    def corrupt_artifact(self, role: Role) -> str:
        """Replace `role`'s copy of the model artifact with a different model and reload the endpoint."""

    def corrupt_model(self) -> str:
        """Overwrite the primary's model artefact with a bad model, let replication carry it to the replica,
        and reload both endpoints (a bad deployment): the damage is in both regions (data-corruption)."""

    def redeploy(self, role: Role) -> str:
        """Reload `role`'s endpoint from its region's copy of the model artefact (after a restore)."""

    def throttle(self, share: float) -> str:
        """Throttle `share` of Lifeboat's own AWS calls."""

    def take_region_down(self, region: str) -> str:
        """Every AWS API of `region` unreachable (`restore_all` brings it back)."""

    def pause_replication(self) -> str: ...

    def resume_replication(self) -> str: ...

    def start_replication(self, copies: list[ReplicaCopy]) -> None:
        """Make sure objects the drill writes replicate (a no-op where S3 replication is real)."""

    def heartbeat(self, drill_id: str, until: datetime) -> None:
        """The drill is alive until `until`: faults outliving it are undone (dead-man switch)."""

    def restore_all(self) -> list[str]:
        """Everything back to the baseline (idempotent); what had to be restored."""

    def close(self) -> None: ...


def admin_url(invocations_url: str) -> str:
    """`/admin/faults` next to `/invocations` (Lifeboat's model-server container)."""
    parsed = urlparse(invocations_url)
    path = parsed.path
    path = path[: -len("/invocations")] if path.endswith("/invocations") else path.rstrip("/")
    return urlunparse(parsed._replace(path=path + "/admin/faults", query="", fragment=""))


def call_faults(
    url: str,
    method: str,
    body: dict[str, Any] | None = None,
    timeout: float = 5.0,
    *,
    policy: OutboundPolicy | None = None,
) -> Any:
    """One call of a model server's fault API (under the outbound rules: `policy`, else the settings')."""
    data = json.dumps(body).encode() if body is not None else None
    answer = outbound.request(
        method,
        url,
        body=data,
        headers={"Content-Type": "application/json"} if data else {},
        timeout=timeout,
        policy=policy,
    )
    if answer.redirect:
        raise OSError(outbound.describe_redirect(answer))
    if answer.status >= 400:
        raise OSError(f"HTTP {answer.status} from {url}")
    return json.loads(answer.body or b"null")


class HttpFaults:
    """Faults through the endpoints' `/admin/faults` API: what a drill can do to an AWS drill target."""

    name = "drill target endpoints (/admin/faults)"
    SUPPORTED = ("region-outage", "endpoint-degraded", "alarm-flapping", "backup-unhealthy")

    def __init__(self, plan: DRPlan) -> None:
        self.plan = plan

    def _url(self, role: Role) -> str:
        endpoint = self.plan.endpoint_for(role)
        if not isinstance(endpoint, HttpEndpoint):
            raise FaultUnsupported(f"the {role} endpoint is not an http endpoint with a fault API")
        return admin_url(endpoint.url)

    def unsupported(self, scenario: str) -> str | None:
        if scenario not in self.SUPPORTED:
            return (
                f"{scenario} needs the local cloud's fault injector (it kills processes, pauses "
                "replication, throttles AWS APIs or swaps artifacts); in an account a drill can inject "
                f"{', '.join(self.SUPPORTED)}"
            )
        missing = [r for r in ROLES if not isinstance(self.plan.endpoint_for(r), HttpEndpoint)]
        if missing:
            return f"the {' and '.join(missing)} endpoint(s) of {self.plan.workload} have no fault API"
        return None

    def kill(self, role: Role) -> str:
        # A Lambda function cannot kill a process in another region; a container answering 503 to
        # everything (pings included) is the same outage to every client, canary and smoke test.
        call_faults(self._url(role), "POST", {"down": True})
        return f"{role} endpoint down (answers 503 to every request)"

    def restore(self, role: Role) -> str:
        call_faults(self._url(role), "DELETE")
        return f"{role} endpoint back up"

    def degrade(self, role: Role, **faults: Any) -> str:
        call_faults(self._url(role), "POST", faults)
        return f"{role} endpoint faults {faults}"

    def heal(self, role: Role) -> str:
        call_faults(self._url(role), "DELETE")
        return f"{role} endpoint faults cleared"

    def corrupt_artifact(self, role: Role) -> str:
        raise FaultUnsupported(self.unsupported("corrupt-artifact") or "corrupt-artifact")

    def corrupt_model(self) -> str:
        raise FaultUnsupported(self.unsupported("data-corruption") or "data-corruption")

    def redeploy(self, role: Role) -> str:
        raise FaultUnsupported(self.unsupported("data-corruption") or "data-corruption")

    def throttle(self, share: float) -> str:
        raise FaultUnsupported(self.unsupported("api-throttling") or "api-throttling")

    def take_region_down(self, region: str) -> str:
        raise FaultUnsupported(self.unsupported("region-api-outage") or "region-api-outage")

    def pause_replication(self) -> str:
        raise FaultUnsupported(self.unsupported("replication-stalled") or "replication-stalled")

    def resume_replication(self) -> str:
        return "replication untouched"

    def start_replication(self, copies: list[ReplicaCopy]) -> None:
        return None  # S3 replication is real in an account

    def heartbeat(self, drill_id: str, until: datetime) -> None:
        return None

    def restore_all(self) -> list[str]:
        done = []
        for role in ROLES:
            try:
                current = call_faults(self._url(role), "GET")
                if isinstance(current, dict) and any(current.values()):
                    done.append(self.heal(role))
            except (OSError, ValueError, FaultUnsupported) as exc:
                done.append(f"could not reach the {role} fault API: {exc}")
        return done

    def close(self) -> None:
        return None


__all__ = [
    "FaultInjector",
    "FaultUnsupported",
    "HttpFaults",
    "ReplicaCopy",
    "admin_url",
    "call_faults",
]
