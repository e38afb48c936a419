"""Serving the dashboard: waitress on 127.0.0.1 only (port 0: a free one), in a thread of this process, so the
operator's credentials never leave it. `Dashboard` starts and stops one server."""

from __future__ import annotations

import threading
from typing import Any

from waitress import wasyncore
from waitress.server import TcpWSGIServer, create_server

HOST = "127.0.0.1"  # never anything else: the pages act with the operator's credentials


class Dashboard:
    """A running dashboard server: `url` once started; `stop()` closes every connection and the port."""

    def __init__(self, app: Any, *, port: int = 0, threads: int = 4) -> None:
        server = create_server(
            app,
            host=HOST,
            port=port,
            threads=threads,
            ident="lifeboat-dashboard",
            clear_untrusted_proxy_headers=True,
        )
        # One host and port make one TCP server (several would make a MultiSocketServer).
        assert isinstance(server, TcpWSGIServer), type(server)
        self.port = int(server.getsockname()[1])
        self._server: Any = server  # its loop's trigger and channel map are not in the type stubs
        self.url = f"http://{HOST}:{self.port}/"
        self._thread: threading.Thread | None = None

    def start(self) -> Dashboard:
        self._thread = threading.Thread(target=self._server.run, name="lifeboat-dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: int = 10) -> None:
        # The close runs on the server's own loop thread (its trigger), where the channels live.
        self._server.trigger.pull_trigger(lambda: wasyncore.close_all(self._server._map))
        if self._thread is not None:
            self._thread.join(timeout)
        self._server.task_dispatcher.shutdown(timeout=int(timeout))

    def __enter__(self) -> Dashboard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
