"""Free ports for the local cloud's model servers, and the plan that names them.

A plan's `http` endpoint on 127.0.0.1 (or localhost) is a model server the local cloud starts. It listens on
a free port chosen when the local cloud starts, whatever port the plan file writes (the example plan writes
0, "any free port"), and the plan the local cloud stores and runs names that port. So no fixed port has to
be free, and two local clouds (two checkouts, a test run beside the demo) never collide.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from chalicelib.models.plan import ROLES, DRPlan, HttpEndpoint, Role
from chalicelib.models.planfile import load_plan_text, plan_to_yaml

LOOPBACK = "127.0.0.1"
LOCAL_HOSTS = (LOOPBACK, "localhost")
# Linux lets a socket listen on a port that other SO_REUSEADDR sockets hold without listening; macOS and the
# BSDs refuse, so there a reservation ends as its model server starts (the usual small race of a free port).
SHARED_RESERVATIONS = sys.platform.startswith("linux")


def is_local(url: str) -> bool:
    return urlsplit(url).hostname in LOCAL_HOSTS


def local_port(url: str) -> int | None:
    """The port a URL served on this machine names (None for another host, or no port written)."""
    return urlsplit(url).port if is_local(url) else None


def local_url(plan: DRPlan, role: Role) -> str | None:
    """The URL of `role`'s endpoint when it is served on this machine (a model server of the local cloud)."""
    endpoint = plan.endpoint_for(role)
    if isinstance(endpoint, HttpEndpoint) and is_local(str(endpoint.url)):
        return str(endpoint.url)
    return None


def local_roles(plan: DRPlan) -> list[Role]:
    """The roles whose endpoint is served on this machine: the local cloud starts a model server for each."""
    return [role for role in ROLES if local_url(plan, role) is not None]


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


def on_ports(plan: DRPlan, ports: Mapping[Role, int], source: str = "<local cloud>") -> tuple[DRPlan, str]:
    """The plan with each local endpoint's URL on the port the local cloud got for it, and its YAML text.

    The text is what the local cloud stores as the plan (and what Lifeboat's functions read back); the plan
    returned is that text loaded again, so the plan the daemon uses is exactly the one stored.
    """
    moved: dict[str, HttpEndpoint] = {}
    for role, port in ports.items():
        url = local_url(plan, role)
        if url is None:
            raise ValueError(f"the {role} endpoint of {plan.workload} is not served on this machine")
        moved[role] = HttpEndpoint(kind="http", url=with_port(url, port))  # type: ignore[arg-type]
    endpoints = plan.endpoints.model_copy(update=moved)
    text = f"# {source} as the local cloud runs it: local endpoints on the ports it got\n" + plan_to_yaml(
        plan.model_copy(update={"endpoints": endpoints})
    )
    return load_plan_text(text, source), text


class PortReservation:
    """A free port on 127.0.0.1, held until `close()` so no other program (and no outgoing connection)
    takes it.

    The socket is bound with SO_REUSEADDR and never listens: on Linux a model server binding the same port
    with SO_REUSEADDR (as Python's HTTP servers do) can still listen on it, and a killed model server can be
    restarted on the same port (a drill's restore) because the port stayed reserved in between.
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((LOOPBACK, 0))
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]

    def hand_over(self) -> None:
        """The model server is about to bind the port: keep holding it where the kernel allows both."""
        if not SHARED_RESERVATIONS:
            self.close()

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
