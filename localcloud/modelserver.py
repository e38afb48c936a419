"""A real HTTP model server for the local cloud: SageMaker-style `/ping` and `/invocations` for one artifact,
fault injection (`/admin/faults`) so drills can break a region's model on purpose, and deployment
(`/admin/model`: load another artifact from S3, check its SHA-256, serve it; what a model rollback calls).

A deployment is durable, as a real endpoint's is: with `--deployment-file` (the local cloud gives one to each
server) the accepted artifact is recorded there before it is served, and a restarted server loads what that
record names instead of `--bucket/--key` (falling back to them, loudly, when the record's object is gone).

Run it as `python -m localcloud.modelserver --port 0 --region us-east-1 --bucket B --key K
--endpoint-url http://127.0.0.1:5000`; it prints `READY <port>` on stdout once it is listening (port 0: a
free one). Spawned by the local cloud, it also stops when the process that spawned it ends.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import IO, Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from localcloud.model import ModelArtifact, predict

LOOPBACK = "127.0.0.1"
MAX_BODY_BYTES = 1 << 20
READY_TIMEOUT_S = 15.0
STOP_GRACE_S = 5.0
EXIT_REFUSED = 2
_REPO_ROOT = Path(__file__).resolve().parent.parent
_ANSWERED = object()  # a request helper already sent the error response


class ArtifactError(RuntimeError):
    """The model artifact could not be read, parsed, or failed its integrity check."""


class ModelServerStartError(RuntimeError):
    """A model server subprocess exited or stayed silent instead of reporting READY."""


class Faults(BaseModel):
    """Faults injected into a running server. Strict, because `"true"` or `1` for a flag is a drill bug."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    latency_ms: int = Field(
        default=0, ge=0, le=300_000, description="Delay added to every /invocations request."
    )
    error_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of /invocations answered 503, spread evenly (no randomness).",
    )
    wrong_answers: bool = Field(default=False, description="Serve 1 - score with the label flipped.")
    down: bool = Field(default=False, description="Answer /ping and /invocations with 503 (dead container).")

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        return Faults.model_validate({**self.model_dump(), **changes})


def _fails(request_number: int, error_rate: Fraction) -> bool:
    # Bresenham-style: exactly floor(n * rate) of the first n requests fail (rate 1/4 -> every 4th request),
    # so tests and drills see the same pattern every run.
    return math.floor(request_number * error_rate) > math.floor((request_number - 1) * error_rate)


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors(include_url=False)
    )


Loader = Callable[[str, str], ModelArtifact]
"""(bucket, key) -> the artifact, checked against its sha256 metadata (load_artifact_from_s3)."""


def read_deployment(path: Path | None) -> str | None:
    """The artifact URI a deployment record names (None: no record, or an unreadable one)."""
    if path is None:
        return None
    try:
        uri = json.loads(path.read_text(encoding="utf-8")).get("artifact")
    except (OSError, ValueError, AttributeError):
        return None
    return uri if isinstance(uri, str) and uri.startswith("s3://") and "/" in uri[5:] else None


def write_deployment(path: Path, uri: str, artifact: ModelArtifact) -> None:
    """Record a deployment atomically (a restart never reads half a record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"artifact": uri, "sha256": artifact.sha256(), "version": artifact.version, "at": time.time()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def load_deployed(
    loader: Loader, deployment_file: Path | None, bucket: str, key: str
) -> tuple[ModelArtifact, str, str | None]:
    """What a (re)starting server serves: the recorded deployment, else `bucket/key`. Returns the artifact,
    its URI, and a warning when a record was there but its artifact could not be loaded."""
    uri = read_deployment(deployment_file)
    if uri is not None and uri != f"s3://{bucket}/{key}":
        deployed_bucket, _, deployed_key = uri[5:].partition("/")
        try:
            return loader(deployed_bucket, deployed_key), uri, None
        except ArtifactError as exc:
            warning = f"deployment record {deployment_file} names {uri}, which cannot be loaded ({exc})"
            return loader(bucket, key), f"s3://{bucket}/{key}", warning
    return loader(bucket, key), f"s3://{bucket}/{key}", None


class _ServerState:
    """What every request thread shares: the artifact, its hash, where it came from, and the faults."""

    def __init__(
        self,
        artifact: ModelArtifact,
        *,
        region: str,
        verbose: bool,
        sleep: Callable[[float], None],
        loader: Loader | None = None,
        artifact_uri: str | None = None,
        deployment_file: Path | None = None,
    ):
        self.artifact = artifact
        self.sha256 = artifact.sha256()
        self.artifact_uri = artifact_uri
        self.loader = loader
        self.deployment_file = deployment_file
        self.region = region
        self.verbose = verbose
        self.sleep = sleep
        self._lock = threading.Lock()
        self._faults = Faults()
        self._invocations = 0

    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def serving(self) -> tuple[ModelArtifact, str, str | None]:
        with self._lock:
            return self.artifact, self.sha256, self.artifact_uri

    def deploy(self, artifact: ModelArtifact, uri: str) -> None:
        """Serve `artifact` from the next request on (requests under way finish with the old one), recorded
        first when the server has a deployment file: a restart serves it too. OSError: nothing changed."""
        with self._lock:
            if self.deployment_file is not None:
                write_deployment(self.deployment_file, uri, artifact)
            self.artifact, self.sha256, self.artifact_uri = artifact, artifact.sha256(), uri

    def replace_faults(self, change: Callable[[Faults], Faults]) -> Faults:
        with self._lock:
            self._faults = change(self._faults)
            # A new fault setting starts a new error_rate pattern, so "every k-th request" counts from here.
            self._invocations = 0
            return self._faults

    def next_invocation(self) -> tuple[Faults, bool]:
        with self._lock:
            self._invocations += 1
            rate = Fraction(self._faults.error_rate).limit_denominator(10_000)
            return self._faults, _fails(self._invocations, rate)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: _ServerState):
        self.state = state
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can hang on a machine with slow DNS.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "LifeboatModelServer/1.0"

    _ROUTES: dict[str, dict[str, str]] = {
        "/ping": {"GET": "_ping"},
        "/invocations": {"POST": "_invoke"},
        "/admin/faults": {"GET": "_get_faults", "POST": "_post_faults", "DELETE": "_delete_faults"},
        "/admin/model": {"GET": "_get_model", "POST": "_post_model"},
    }

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PUT(self) -> None:
        self._route("PUT")

    @property
    def _state(self) -> _ServerState:
        return self.server.state

    def _route(self, method: str) -> None:
        methods = self._ROUTES.get(urlsplit(self.path).path)
        if methods is None:
            self._discard_body()
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path: {urlsplit(self.path).path}"})
            return
        handler = methods.get(method)
        if handler is None:
            self._discard_body()
            allowed = ", ".join(sorted(methods))
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"use {allowed}"}, headers={"Allow": allowed})
            return
        try:
            getattr(self, handler)()
        except Exception:  # a bug must answer 500, not drop the connection silently
            traceback.print_exc(file=sys.stderr)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error in the model server"})

    def _ping(self) -> None:
        state = self._state
        up = not state.faults().down
        self._send(
            HTTPStatus.OK if up else HTTPStatus.SERVICE_UNAVAILABLE,
            {"status": "healthy" if up else "down", **self._model(), "region": state.region},
        )

    def _model(self) -> dict[str, Any]:
        artifact, sha256, uri = self._state.serving()
        return {"model_version": artifact.version, "model_sha256": sha256, "model_artifact": uri}

    def _get_model(self) -> None:
        self._discard_body()
        self._send(HTTPStatus.OK, self._model())

    def _post_model(self) -> None:
        """Deploy: {"artifact": "s3://bucket/key", "sha256": "<hex>"} loaded, checked (its sha256 metadata and
        the one given), then served; any failure answers an error and leaves the served model as it was."""
        raw = self._read_body()
        if raw is None:
            return
        body = self._parse_json(raw)
        if body is _ANSWERED:
            return
        uri = body.get("artifact") if isinstance(body, dict) else None
        if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
            self._send(HTTPStatus.BAD_REQUEST, {"error": "body must name an artifact: s3://bucket/key"})
            return
        expected = body.get("sha256")
        loader = self._state.loader
        if loader is None:
            self._send(HTTPStatus.NOT_IMPLEMENTED, {"error": "this model server cannot load from S3"})
            return
        bucket, _, key = uri[5:].partition("/")
        try:
            artifact = loader(bucket, key)
        except ArtifactError as exc:
            self._send(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(exc)})
            return
        if expected and str(expected).lower() != artifact.sha256():
            self._send(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                {"error": f"{uri} hashes to {artifact.sha256()}, not the registered {expected}"},
            )
            return
        try:
            self._state.deploy(artifact, uri)
        except OSError as exc:
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"cannot record the deployment: {exc}"})
            return
        self.log_message("deployed %s (%s)", uri, artifact.version)
        self._send(HTTPStatus.OK, self._model())

    def _invoke(self) -> None:
        state = self._state
        raw = self._read_body()
        if raw is None:
            return
        faults, inject_error = state.next_invocation()
        if faults.latency_ms:
            state.sleep(faults.latency_ms / 1000)
        if faults.down:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "model server is down (injected fault)"})
            return
        if inject_error:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "injected fault: error_rate"})
            return
        body = self._parse_json(raw)
        if body is _ANSWERED:
            return
        if not isinstance(body, dict) or "features" not in body:
            self._send(
                HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object with a 'features' object"}
            )
            return
        extra = sorted(set(body) - {"features"})
        if extra:
            self._send(HTTPStatus.BAD_REQUEST, {"error": f"unexpected top-level key(s): {', '.join(extra)}"})
            return
        artifact, sha256, _ = state.serving()
        try:
            result = predict(artifact, body["features"], sha256=sha256)
        except ValueError as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        if faults.wrong_answers:
            result["score"] = round(1 - result["score"], 6)
            result["label"] = "legit" if result["label"] == "fraud" else "fraud"
        self._send(HTTPStatus.OK, result)

    def _get_faults(self) -> None:
        self._send(HTTPStatus.OK, self._state.faults().model_dump())

    def _post_faults(self) -> None:
        raw = self._read_body()
        if raw is None:
            return
        body = self._parse_json(raw)
        if body is _ANSWERED:
            return
        if not isinstance(body, dict):
            self._send(HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object of fault settings"})
            return
        try:
            faults = self._state.replace_faults(lambda current: current.updated(body))
        except ValidationError as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"error": _describe(exc)})
            return
        self.log_message("faults set: %s", json.dumps(faults.model_dump(), sort_keys=True))
        self._send(HTTPStatus.OK, faults.model_dump())

    def _delete_faults(self) -> None:
        self._discard_body()
        faults = self._state.replace_faults(lambda _: Faults())
        self._send(HTTPStatus.OK, faults.model_dump())

    def _content_length(self) -> int | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            return None
        return length

    def _discard_body(self) -> None:
        length = self._content_length()
        if length is None:
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    def _read_body(self) -> bytes | None:
        """The raw body, or None after answering 413 (the caller just returns)."""
        length = self._content_length()
        if length is None:
            # The body was not read, so this connection cannot carry another request.
            self.close_connection = True
            self._send(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"body must have a Content-Length of at most {MAX_BODY_BYTES} bytes"},
            )
            return None
        return self.rfile.read(length) if length else b""

    def _parse_json(self, raw: bytes) -> Any:
        """The parsed body, or _ANSWERED after answering 400 (the caller just returns)."""
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"error": f"body is not valid JSON: {exc}"})
            return _ANSWERED

    def _send(self, status: HTTPStatus, payload: Any, *, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (for example during injected latency); nothing left to tell it.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if self._state.verbose:
            sys.stderr.write(f"modelserver[{self.server.server_port}] {format % args}\n")

    def log_error(self, format: str, *args: Any) -> None:
        # Malformed requests are rare and worth seeing even without --verbose.
        sys.stderr.write(f"modelserver[{self.server.server_port}] {format % args}\n")


class ModelServer:
    """An in-process model server on 127.0.0.1, served from a background thread."""

    def __init__(
        self,
        artifact: ModelArtifact,
        *,
        region: str,
        host: str = LOOPBACK,
        port: int = 0,
        verbose: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        loader: Loader | None = None,
        artifact_uri: str | None = None,
        deployment_file: Path | None = None,
    ) -> None:
        """`loader` reads a deployed artifact (default: from S3 in `region`, through AWS_ENDPOINT_URL if
        set); `artifact_uri` says where `artifact` came from (GET /ping names it); `deployment_file`, if
        given, records every accepted deployment (load_deployed reads it back on a restart)."""
        if host != LOOPBACK:
            raise ValueError(f"the model server only binds {LOOPBACK} (it has no auth), not {host!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {port}")
        if loader is None:

            def loader(bucket: str, key: str) -> ModelArtifact:
                client = _s3_client(region, os.environ.get("AWS_ENDPOINT_URL"))
                return load_artifact_from_s3(client, bucket, key)

        self._state = _ServerState(
            artifact,
            region=region,
            verbose=verbose,
            sleep=sleep,
            loader=loader,
            artifact_uri=artifact_uri,
            deployment_file=deployment_file,
        )
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ModelServer:
        if self._httpd is not None:
            raise RuntimeError("model server already started")
        httpd = _HTTPServer(self._address, self._state)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"modelserver-{httpd.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd, self._thread = None, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("model server not started")
        return self._httpd.server_port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def artifact(self) -> ModelArtifact:
        return self._state.serving()[0]

    @property
    def artifact_uri(self) -> str | None:
        """Where the served artifact came from (the last deployment's, after one)."""
        return self._state.serving()[2]

    @property
    def deployment_file(self) -> Path | None:
        return self._state.deployment_file

    @property
    def faults(self) -> Faults:
        return self._state.faults()

    def set_faults(self, **changes: Any) -> Faults:
        """Partially update the faults, e.g. `set_faults(latency_ms=200)`; raises ValidationError."""
        return self._state.replace_faults(lambda current: current.updated(changes))

    def clear_faults(self) -> Faults:
        return self._state.replace_faults(lambda _: Faults())

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _verified_artifact(body: bytes, *, expected_sha256: str | None, source: str) -> ModelArtifact:
    actual = hashlib.sha256(body).hexdigest()
    if expected_sha256 is not None and expected_sha256.strip().lower() != actual:
        raise ArtifactError(
            f"SHA-256 mismatch for {source}: metadata says {expected_sha256}, the object hashes to {actual}; "
            "refusing to serve a tampered or corrupted artifact"
        )
    try:
        return ModelArtifact.from_json_bytes(body)
    except ValidationError as exc:
        raise ArtifactError(f"{source} is not a valid model artifact: {_describe(exc)}") from exc


def load_artifact_from_s3(s3_client: Any, bucket: str, key: str) -> ModelArtifact:
    """Fetch an artifact and check it against its `sha256` metadata when the object has one."""
    source = f"s3://{bucket}/{key}"
    try:
        response = s3_client.get_object(Bucket=bucket, Key=key)
        body = response["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        raise ArtifactError(f"cannot read {source}: {exc}") from exc
    return _verified_artifact(body, expected_sha256=response.get("Metadata", {}).get("sha256"), source=source)


def load_artifact_from_file(path: str | Path) -> ModelArtifact:
    try:
        body = Path(path).read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc
    return _verified_artifact(body, expected_sha256=None, source=str(path))


def publish_artifact(s3_client: Any, bucket: str, key: str, artifact: ModelArtifact) -> str:
    """Upload an artifact with its SHA-256 in the metadata (the server checks it); return the hash."""
    body = artifact.to_json_bytes()
    sha256 = hashlib.sha256(body).hexdigest()
    s3_client.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        Metadata={"sha256": sha256, "model-version": artifact.version},
        ChecksumAlgorithm="SHA256",
    )
    return sha256


def _s3_client(region: str, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=3,
        read_timeout=10,
        # The local cloud is addressed by IP, where virtual-hosted bucket names cannot resolve.
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.session.Session().client("s3", region_name=region, endpoint_url=endpoint_url, config=config)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localcloud.modelserver", description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (0 picks a free one)")
    parser.add_argument("--host", default=LOOPBACK, help=f"only {LOOPBACK} is accepted")
    parser.add_argument("--region", required=True, help="region this server pretends to run in")
    parser.add_argument("--bucket", help="S3 bucket holding the artifact")
    parser.add_argument("--key", help="S3 key of the artifact")
    parser.add_argument("--endpoint-url", help="S3 endpoint override (the local cloud)")
    parser.add_argument("--artifact", help="local artifact file, instead of --bucket/--key")
    parser.add_argument(
        "--deployment-file",
        type=Path,
        help="record of the last deployment (/admin/model): written on each, served instead of "
        "--bucket/--key on a restart",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one ends (nothing outlives a killed local cloud)",
    )
    args = parser.parse_args(argv)
    from_s3 = args.bucket is not None or args.key is not None
    if args.artifact is not None and from_s3:
        parser.error("give either --artifact or --bucket/--key, not both")
    if args.artifact is None and (args.bucket is None or args.key is None):
        parser.error("give --bucket and --key (or --artifact)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    parent = os.getppid()
    stopping = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    def loader(bucket: str, key: str) -> ModelArtifact:
        return load_artifact_from_s3(_s3_client(args.region, args.endpoint_url), bucket, key)

    try:
        uri: str | None = None
        if args.artifact is not None:
            artifact = load_artifact_from_file(args.artifact)
        else:
            artifact, uri, warning = load_deployed(loader, args.deployment_file, args.bucket, args.key)
            if warning:
                print(f"modelserver: {warning}; serving {uri}", file=sys.stderr, flush=True)
        server = ModelServer(
            artifact,
            region=args.region,
            host=args.host,
            port=args.port,
            verbose=args.verbose,
            loader=loader,
            artifact_uri=uri,
            deployment_file=args.deployment_file,
        ).start()
    except (ArtifactError, ValueError, OSError) as exc:
        print(f"modelserver: refusing to start: {exc}", file=sys.stderr, flush=True)
        return EXIT_REFUSED

    print(
        f"modelserver: serving {artifact.model_name} {artifact.version} sha256={artifact.sha256()} "
        f"on {server.url} region={args.region}",
        file=sys.stderr,
        flush=True,
    )
    print(f"READY {server.port}", flush=True)
    # Wait with a timeout so the signal handler's flag is seen promptly on every platform.
    while not stopping.wait(0.5):
        if args.exit_with_parent and os.getppid() != parent:  # orphaned: whoever owned us is gone
            print(f"modelserver: parent {parent} ended, stopping", file=sys.stderr, flush=True)
            break
    server.stop()
    print("modelserver: stopped", file=sys.stderr, flush=True)
    return 0


class ModelServerProcess(subprocess.Popen):
    """A model server subprocess; its stderr goes to a temporary file so it never blocks on a full pipe."""

    port: int = 0
    _stderr_log: IO[bytes] | None = None
    _stdout_pump: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stderr_text(self) -> str:
        if self._stderr_log is None or self._stderr_log.closed:
            return ""
        self._stderr_log.flush()
        self._stderr_log.seek(0)
        return self._stderr_log.read().decode("utf-8", errors="replace")


def spawn_model_server(
    port: int,
    region: str,
    bucket: str,
    key: str,
    endpoint_url: str | None,
    env: Mapping[str, str] | None = None,
    *,
    verbose: bool = False,
    timeout: float = READY_TIMEOUT_S,
    deployment_file: Path | str | None = None,
) -> ModelServerProcess:
    """Start `python -m localcloud.modelserver` and wait for READY. `env` is layered over this process's
    environment; `deployment_file` makes its deployments durable (see the module docstring). Raises
    ModelServerStartError (with the server's stderr) if it exits or stays silent."""
    command = [
        sys.executable,
        "-m",
        "localcloud.modelserver",
        "--port",
        str(port),
        "--region",
        region,
        "--bucket",
        bucket,
        "--key",
        key,
        "--exit-with-parent",  # a killed local cloud or test run leaves no model server behind
    ]
    if endpoint_url:
        command += ["--endpoint-url", endpoint_url]
    if verbose:
        command.append("--verbose")
    if deployment_file is not None:
        command += ["--deployment-file", str(deployment_file)]
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_REPO_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    # Outlives this function on purpose: stop_process() closes it.
    stderr_log = tempfile.TemporaryFile()  # noqa: SIM115
    proc = ModelServerProcess(
        command,
        cwd=_REPO_ROOT,
        env=child_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_log,
    )
    proc._stderr_log = stderr_log

    lines: queue.Queue[str | None] = queue.Queue()

    def _pump(stream: IO[bytes]) -> None:
        # Keep draining stdout after READY too, so the child can never block writing to it.
        for raw in iter(stream.readline, b""):
            lines.put(raw.decode("utf-8", errors="replace").strip())
        lines.put(None)

    assert proc.stdout is not None
    proc._stdout_pump = threading.Thread(
        target=_pump, args=(proc.stdout,), name="modelserver-stdout", daemon=True
    )
    proc._stdout_pump.start()

    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                problem = f"did not report READY within {timeout:g}s"
                break
            try:
                line = lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            if line is None:
                problem = f"exited with code {proc.wait()} before reporting READY"
                break
            if line.startswith("READY "):
                proc.port = int(line.split()[1])
                return proc
    except BaseException:  # interrupted while waiting (a test's timeout, Ctrl-C): nobody else can stop it
        stop_process(proc)
        raise

    stderr = proc.stderr_text()
    stop_process(proc)
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "no output")
    raise ModelServerStartError(
        f"model server for s3://{bucket}/{key} {problem}: {last}\nits stderr:\n{stderr}"
    )


def stop_process(proc: subprocess.Popen, grace: float = STOP_GRACE_S) -> int:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; release the pipes. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    pump = getattr(proc, "_stdout_pump", None)
    if pump is not None:
        pump.join(timeout=1)
    if proc.stdout is not None:
        proc.stdout.close()
    stderr_log = getattr(proc, "_stderr_log", None)
    if stderr_log is not None:
        stderr_log.close()
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
