"""The dashboard's web app (Flask): pages rendered from `Source`, refreshed by polling fragments, and the
operator's controls, each behind a confirmation page and a POST carrying this process's token."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from chalicelib.models.durations import format_seconds
from lifeboat_cli.dashboard.source import Overview, Refused, Source, UnknownItem
from lifeboat_cli.dashboard.steps import CONTROLS

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost"})
REFRESH_SECONDS = 2
MAX_NOTICES = 50
# Pages use only this package's own files: no inline script, no other origin, no framing.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# A drill report is a self-contained page of Lifeboat's own making: inline styles and SVG, never scripts.
REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"

CONFIRM_WORDS = {
    "approve": "Traffic starts moving back to the primary, step by step, with every gate checked.",
    "reject": "The failback ends without moving any traffic; the secondary keeps serving.",
    "pause": "The rollout holds at its current share at the next bake check until someone resumes it.",
    "resume": "The rollout continues (an inconclusive gate is evaluated again).",
    "fast-track": "The remaining bake and steps are skipped; the final validation at 100% still runs.",
    "abort": "All traffic goes back to the secondary now and the execution stops.",
}


class Throttled:
    """The overview read at most once per `seconds`, whatever the number of open pages polling it: each read
    costs a dozen AWS calls (Route 53's API allows five a second per account, and a failover needs some)."""

    def __init__(self, read: Callable[[], Overview], seconds: float, clock: Callable[[], float]) -> None:
        self._read, self._seconds, self._clock = read, seconds, clock
        self._lock = threading.Lock()
        self._value: Overview | None = None
        self._at = 0.0

    def __call__(self) -> Overview:
        with self._lock:
            now = self._clock()
            if self._value is None or now - self._at >= self._seconds:
                self._value, self._at = self._read(), now
            return self._value


def create_app(
    source: Source,
    *,
    token: str | None = None,
    min_read_seconds: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> Flask:
    """The app for one dashboard process; `token` (random when not given) must come with every POST."""
    app = Flask(__name__)
    csrf = token or secrets.token_urlsafe(32)
    overview_now = Throttled(source.overview, min_read_seconds, clock)
    notices: OrderedDict[str, tuple[str, str]] = OrderedDict()
    app.jinja_env.filters["hms"] = _hms
    app.jinja_env.filters["when"] = _when
    app.jinja_env.filters["seconds"] = format_seconds
    app.jinja_env.globals.update(
        identity=source.identity, csrf=csrf, refresh_ms=REFRESH_SECONDS * 1000, controls=CONTROLS
    )

    @app.before_request
    def only_loopback_and_own_origin() -> None:
        # A page of another site (or a name rebound to 127.0.0.1) reaching this port gets nothing.
        if _hostname(request.host) not in LOOPBACK_NAMES:
            abort(403, "this dashboard answers only to 127.0.0.1 / localhost")
        if request.method in ("GET", "HEAD"):
            return
        own = f"{request.scheme}://{request.host}"
        origin = request.headers.get("Origin")
        referer = request.headers.get("Referer")
        if origin is not None and origin != own:
            abort(403, f"requests from {origin} are refused")
        if origin is None and referer is not None and _origin_of(referer) != own:
            abort(403, "requests from other pages are refused")
        sent = request.form.get("token") or request.headers.get("X-Lifeboat-Token") or ""
        if not hmac.compare_digest(sent.encode(), csrf.encode()):
            abort(403, "missing or wrong dashboard token: reload the page and confirm again")

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(UnknownItem)
    def unknown(err: UnknownItem) -> tuple[str, int]:
        return render_template("error.html", title="Not found", message=str(err)), 404

    @app.errorhandler(Exception)
    def unreadable(err: Exception) -> Any:
        if isinstance(err, HTTPException):
            return err
        # AWS refused or failed (throttling, a region down, expired credentials): say so on the page; the
        # live part keeps its last rendering and greys out until a read succeeds again.
        app.logger.warning("dashboard read failed: %s: %s", type(err).__name__, err)
        return render_template(
            "error.html", title="Could not read", message=f"{type(err).__name__}: {err}"
        ), 502

    @app.errorhandler(403)
    def forbidden(err: Any) -> tuple[str, int]:
        return render_template("error.html", title="Refused", message=err.description), 403

    @app.get("/")
    def overview() -> str:
        return render_template("overview.html", o=overview_now())

    @app.get("/fragment/overview")
    def overview_fragment() -> str:
        return render_template("_overview.html", o=overview_now())

    @app.get("/executions/<ref>")
    def execution(ref: str) -> str:
        notice = notices.get(request.args.get("notice", ""))
        return render_template("execution.html", p=source.execution(ref), notice=notice)

    @app.get("/fragment/executions/<ref>")
    def execution_fragment(ref: str) -> str:
        return render_template("_execution.html", p=source.execution(ref))

    @app.get("/executions/<ref>/<action>")
    def confirm(ref: str, action: str) -> str:
        if action not in CONTROLS:
            raise UnknownItem(f"no control {action!r}")
        page = source.execution(ref)
        return render_template("confirm.html", p=page, action=action, words=CONFIRM_WORDS[action])

    @app.post("/executions/<ref>/<action>")
    def act(ref: str, action: str) -> Any:
        reason = (request.form.get("reason") or "").strip()[:1000]
        try:
            outcome = source.control(ref, action, reason)
            notice = ("done", f"{outcome.action}: {outcome.result}")
        except Refused as err:
            notice = ("refused", f"{action} refused: {err}")
        key = secrets.token_urlsafe(8)
        notices[key] = notice
        while len(notices) > MAX_NOTICES:
            notices.popitem(last=False)
        return redirect(url_for("execution", ref=ref, notice=key), code=303)

    @app.get("/workloads/<workload>/ledger")
    def ledger(workload: str) -> str:
        limit = min(max(request.args.get("limit", 50, type=int) or 50, 1), 500)
        return render_template("ledger.html", workload=workload, entries=source.ledger(workload, limit))

    @app.get("/workloads/<workload>/verification")
    def verification(workload: str) -> str:
        return render_template("verification.html", workload=workload, r=source.verification(workload))

    @app.get("/drills/<drill_id>")
    def drill(drill_id: str) -> Response:
        page = Response(source.drill_report(drill_id), mimetype="text/html")
        page.headers["Content-Security-Policy"] = REPORT_POLICY
        return page

    return app


def _hostname(host: str) -> str:
    return (urlsplit(f"//{host}").hostname or "").lower()


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _hms(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%H:%M:%S}"


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"
