"""`lifeboat dashboard`: a local web console on 127.0.0.1, served by this CLI process with the operator's own
credentials: live status, executions with their step view, failback controls, ledger, drill and verification
reports. The web framework is imported only when the command runs."""

from __future__ import annotations

import argparse
from typing import Any

OK = 0


def operator_identity() -> str:
    """Who the controls are recorded as: the identity the CLI records for its own controls."""
    from lifeboat_cli.main import _caller

    return _caller()


def start(port: int = 0) -> Any:
    """A started `Dashboard` for the cloud the CLI selected (the demo's `--dashboard` uses it)."""
    from chalicelib.services.deps import deps
    from lifeboat_cli.dashboard.app import create_app
    from lifeboat_cli.dashboard.server import Dashboard
    from lifeboat_cli.dashboard.source import ServiceSource

    return Dashboard(create_app(ServiceSource(deps, operator_identity())), port=port).start()


def cmd_dashboard(args: argparse.Namespace) -> int:
    import time
    import webbrowser

    from lifeboat_cli.main import console

    dashboard = start(args.port)
    try:
        console.print(
            f"Lifeboat dashboard: {dashboard.url}  (127.0.0.1 only; Ctrl-C stops it)", soft_wrap=True
        )
        if args.open:
            webbrowser.open(dashboard.url)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("dashboard stopped")
        return OK
    finally:
        dashboard.stop()


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535 (got {text!r})") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535 (got {value})")
    return value


def register(sub: Any) -> None:
    """Add `dashboard` to the CLI's subcommands."""
    p = sub.add_parser("dashboard", help="a local web console (127.0.0.1) with live status and controls")
    p.add_argument("--port", type=_port, default=0, help="port on 127.0.0.1 (default 0: a free one)")
    p.add_argument("--open", action="store_true", help="open it in the default browser")
    p.set_defaults(func=cmd_dashboard)
