"""The demo model server as drills use it: a subprocess loading its artifact from (moto) S3, probed over HTTP,
broken on purpose through /admin/faults, and stopped without leaking processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from localcloud.model import ModelArtifact, default_artifact, golden_cases
from localcloud.modelserver import (
    ModelServer,
    ModelServerProcess,
    ModelServerStartError,
    publish_artifact,
    spawn_model_server,
    stop_process,
)
from localcloud.processes import alive

REGION = "us-east-1"
BUCKET = "lifeboat-modelserver-it"
KEY = "models/fraud-scorer/1.0.0/model.json"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
ROOT = Path(__file__).resolve().parents[2]
# Spawns a server, says its pid and port, and waits to be killed.
SPAWNER = f"""
import sys, time
from localcloud.modelserver import spawn_model_server
proc = spawn_model_server(0, {REGION!r}, {BUCKET!r}, {KEY!r}, sys.argv[1])
print(proc.pid, proc.port, flush=True)
time.sleep(600)
"""
VALID_FEATURES = {"amount": 1, "merchant_risk": 0.1, "foreign": 0, "night": 0, "velocity": 0}


def call(method: str, url: str, body: Any = None, *, raw: bytes | None = None) -> tuple[int, Any]:
    """One HTTP request; returns (status, parsed JSON body) for success and error statuses alike."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in CREDENTIALS.items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="module")
def s3(moto_endpoint: str) -> Any:
    client = boto3.session.Session().client(
        "s3",
        region_name=REGION,
        endpoint_url=moto_endpoint,
        config=Config(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def artifact() -> ModelArtifact:
    return default_artifact()


@pytest.fixture(scope="module")
def published(s3: Any, artifact: ModelArtifact) -> str:
    return publish_artifact(s3, BUCKET, KEY, artifact)


@pytest.fixture(scope="module")
def running_server(moto_endpoint: str, published: str) -> Iterator[ModelServerProcess]:
    proc = spawn_model_server(0, REGION, BUCKET, KEY, moto_endpoint, env=CREDENTIALS)
    try:
        yield proc
    finally:
        stop_process(proc)
        assert proc.poll() is not None


@pytest.fixture
def server(running_server: ModelServerProcess) -> str:
    """The shared server's URL, with no faults left over from an earlier test."""
    status, _ = call("DELETE", f"{running_server.url}/admin/faults")
    assert status == 200
    return running_server.url


def test_ping_reports_a_healthy_server_and_the_model_it_serves(server, published, artifact):
    # Given a server started from the published artifact
    # When it is pinged
    status, body = call("GET", f"{server}/ping")

    # Then it is healthy and names the exact model it loaded from S3
    assert status == 200
    assert body == {
        "status": "healthy",
        "model_version": artifact.version,
        "model_sha256": published,
        "model_artifact": f"s3://{BUCKET}/{KEY}",
        "region": REGION,
    }


def test_a_deployment_loads_another_artifact_checked_and_a_bad_one_changes_nothing(
    server, s3, published, artifact
):
    # Given another version published next to the served one
    other = artifact.model_copy(update={"version": "0.9.0", "bias": artifact.bias - 1})
    other_key = KEY.replace(artifact.version, "0.9.0") if artifact.version in KEY else f"{KEY}.0.9.0"
    other_sha = publish_artifact(s3, BUCKET, other_key, other)
    try:
        # When it is deployed with the wrong checksum, and when a missing artifact is deployed
        wrong = call(
            "POST", f"{server}/admin/model", {"artifact": f"s3://{BUCKET}/{other_key}", "sha256": "0" * 64}
        )
        missing = call("POST", f"{server}/admin/model", {"artifact": f"s3://{BUCKET}/nothing/here.json"})
        # Then both are refused and the server still serves what it served
        assert wrong[0] == missing[0] == 422, (wrong, missing)
        assert call("GET", f"{server}/ping")[1]["model_sha256"] == published
        # When it is deployed with its registered checksum
        status, body = call(
            "POST", f"{server}/admin/model", {"artifact": f"s3://{BUCKET}/{other_key}", "sha256": other_sha}
        )
        # Then the server serves it from the next request on, and says so
        assert status == 200 and (body["model_version"], body["model_sha256"]) == ("0.9.0", other_sha)
        assert call("GET", f"{server}/ping")[1]["model_artifact"] == f"s3://{BUCKET}/{other_key}"
    finally:
        assert call("POST", f"{server}/admin/model", {"artifact": f"s3://{BUCKET}/{KEY}"})[0] == 200


def test_a_restarted_server_serves_its_last_deployment_and_falls_back_when_it_is_gone(
    moto_endpoint, s3, published, artifact, tmp_path
):
    # Given a server with a deployment record (as the local cloud starts them), deployed with 0.8.0
    record = tmp_path / "deployments" / "fraud-scoring-primary.json"

    def start() -> ModelServerProcess:
        env = CREDENTIALS
        return spawn_model_server(0, REGION, BUCKET, KEY, moto_endpoint, env=env, deployment_file=record)

    def restarted() -> tuple[dict[str, Any], str]:
        proc = start()
        try:
            return call("GET", f"{proc.url}/ping")[1], proc.stderr_text()
        finally:
            stop_process(proc)

    older = artifact.model_copy(update={"version": "0.8.0", "bias": artifact.bias - 2})
    older_key = "models/fraud-scorer/0.8.0/model.json"
    older_sha = publish_artifact(s3, BUCKET, older_key, older)
    first = start()
    try:
        deployed = {"artifact": f"s3://{BUCKET}/{older_key}", "sha256": older_sha}
        assert call("POST", f"{first.url}/admin/model", deployed)[0] == 200
    finally:
        stop_process(first)
    # When it is started again from the same --bucket/--key and record (a restart, a drill's respawn)
    ping, _ = restarted()
    # Then it serves the deployed 0.8.0, not the artifact it was started with
    assert (ping["model_version"], ping["model_sha256"]) == ("0.8.0", older_sha)
    assert ping["model_artifact"] == f"s3://{BUCKET}/{older_key}"
    # When the deployed object is gone and it starts once more
    s3.delete_object(Bucket=BUCKET, Key=older_key)
    ping, log = restarted()
    # Then it serves --bucket/--key, and its log says why
    assert (ping["model_version"], ping["model_sha256"]) == (artifact.version, published)
    assert f"names s3://{BUCKET}/{older_key}, which cannot be loaded" in log


def test_invocations_return_the_golden_answers(server, artifact):
    # Given the golden cases of the published artifact
    for case in golden_cases(artifact):
        # When each payload is posted to /invocations
        status, body = call("POST", f"{server}/invocations", case["payload"])

        # Then the server answers exactly what the model predicts
        assert status == 200, case["name"]
        assert body == case["expected"], case["name"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"inputs": []}', "'features' object"),
        (b'{"features": {"amount": 1}}', "missing feature(s)"),
        (
            json.dumps({"features": {**VALID_FEATURES, "amount": "a lot"}}).encode(),
            "'amount' must be a finite number",
        ),
        (json.dumps({"features": VALID_FEATURES, "x": 1}).encode(), "unexpected top-level key(s): x"),
    ],
)
def test_bad_requests_get_400_with_a_reason(server, raw, message):
    # Given a malformed request body
    # When it is posted
    status, body = call("POST", f"{server}/invocations", raw=raw)

    # Then the caller gets a 400 explaining what to fix
    assert status == 400
    assert message in body["error"]


def test_unknown_paths_and_methods_are_refused(server):
    # Given a running server
    # When a client uses a path or method it does not serve
    # Then it gets 404 / 405 as JSON
    assert call("GET", f"{server}/models")[0] == 404
    assert call("GET", f"{server}/invocations")[0] == 405


def test_latency_fault_delays_invocations(server, artifact):
    # Given 300 ms of injected latency
    status, faults = call("POST", f"{server}/admin/faults", {"latency_ms": 300})
    assert status == 200 and faults["latency_ms"] == 300
    case = golden_cases(artifact)[0]

    # When a request is made
    started = time.monotonic()
    status, body = call("POST", f"{server}/invocations", case["payload"])
    elapsed = time.monotonic() - started

    # Then it takes at least that long and still answers correctly
    assert elapsed >= 0.3
    assert status == 200 and body == case["expected"]


def test_down_fault_fails_ping_and_invocations_until_cleared(server, artifact):
    # Given a server marked down (the process lives, the container is "dead")
    call("POST", f"{server}/admin/faults", {"down": True})
    case = golden_cases(artifact)[1]

    # When it is probed
    ping_status, ping = call("GET", f"{server}/ping")
    invoke_status, _ = call("POST", f"{server}/invocations", case["payload"])

    # Then health checks and traffic both see 503
    assert (ping_status, ping["status"]) == (503, "down")
    assert invoke_status == 503

    # And when the fault is cleared, it serves again
    assert call("DELETE", f"{server}/admin/faults")[0] == 200
    assert call("GET", f"{server}/ping")[0] == 200
    assert call("POST", f"{server}/invocations", case["payload"]) == (200, case["expected"])


def test_error_rate_fails_a_deterministic_share_of_requests(server, artifact):
    # Given a 25% injected error rate
    call("POST", f"{server}/admin/faults", {"error_rate": 0.25})
    payload = golden_cases(artifact)[1]["payload"]

    # When eight requests are made
    statuses = [call("POST", f"{server}/invocations", payload)[0] for _ in range(8)]

    # Then exactly every fourth one fails, the same way every run; health checks stay green (a gray failure)
    assert statuses == [200, 200, 200, 503, 200, 200, 200, 503]
    assert call("GET", f"{server}/ping")[0] == 200


def test_wrong_answers_fault_inverts_scores_and_labels(server, artifact):
    # Given a server told to answer wrongly
    call("POST", f"{server}/admin/faults", {"wrong_answers": True})

    for case in golden_cases(artifact):
        # When a golden case is scored
        status, body = call("POST", f"{server}/invocations", case["payload"])

        # Then the answer is plausible-looking but inverted, which only a golden-case check catches
        assert status == 200
        assert body["score"] == round(1 - case["expected"]["score"], 6)
        assert body["label"] != case["expected"]["label"]
        assert body["model_sha256"] == case["expected"]["model_sha256"]


def test_faults_update_partially_and_clear(server):
    # Given two partial fault updates
    call("POST", f"{server}/admin/faults", {"latency_ms": 5})
    call("POST", f"{server}/admin/faults", {"wrong_answers": True})

    # When the faults are read
    status, faults = call("GET", f"{server}/admin/faults")

    # Then both are in force
    assert status == 200
    assert faults == {"latency_ms": 5, "error_rate": 0.0, "wrong_answers": True, "down": False}

    # And DELETE restores a healthy server
    call("DELETE", f"{server}/admin/faults")
    assert call("GET", f"{server}/admin/faults")[1] == {
        "latency_ms": 0,
        "error_rate": 0.0,
        "wrong_answers": False,
        "down": False,
    }


@pytest.mark.parametrize(
    "update",
    [{"error_rate": 2}, {"latency_ms": -1}, {"latency_ms": "5"}, {"down": "yes"}, {"explode": True}, [1]],
)
def test_invalid_fault_settings_are_rejected(server, update):
    # Given an invalid fault update
    # When it is posted
    status, body = call("POST", f"{server}/admin/faults", update)

    # Then it is refused with a reason and the faults are unchanged
    assert status == 400 and body["error"]
    assert call("GET", f"{server}/admin/faults")[1]["down"] is False


def test_tampered_artifact_keeps_the_server_from_starting(moto_endpoint, s3, artifact, published):
    # Given an object whose bytes no longer match the sha256 recorded in its metadata
    key = "models/fraud-scorer/tampered/model.json"
    tampered = artifact.model_copy(update={"bias": artifact.bias + 5}).to_json_bytes()
    s3.put_object(
        Bucket=BUCKET,
        Key=key,
        Body=tampered,
        ContentType="application/json",
        Metadata={"sha256": published, "model-version": artifact.version},
    )

    # When a server is started against it
    with pytest.raises(ModelServerStartError) as excinfo:
        spawn_model_server(0, REGION, BUCKET, key, moto_endpoint, env=CREDENTIALS)

    # Then it refuses, and the error says why
    message = str(excinfo.value)
    assert "SHA-256 mismatch" in message
    assert f"s3://{BUCKET}/{key}" in message
    assert "before reporting READY" in message


def test_missing_artifact_keeps_the_server_from_starting(moto_endpoint, s3):
    # Given a key with no object
    # When a server is started against it
    with pytest.raises(ModelServerStartError) as excinfo:
        spawn_model_server(0, REGION, BUCKET, "models/nope.json", moto_endpoint, env=CREDENTIALS)

    # Then it refuses and names the object it could not read
    assert f"cannot read s3://{BUCKET}/models/nope.json" in str(excinfo.value)


def test_sigterm_stops_the_server_cleanly(moto_endpoint, published):
    # Given a second server process
    proc = spawn_model_server(0, REGION, BUCKET, KEY, moto_endpoint, env=CREDENTIALS)
    try:
        url = proc.url
        assert call("GET", f"{url}/ping")[0] == 200

        # When it is stopped
        code = stop_process(proc)
    finally:
        stop_process(proc)

    # Then it exited on SIGTERM with status 0 and the endpoint is gone (an outage, as in a dead region)
    assert proc.poll() is not None
    assert code == 0
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/ping", timeout=5)


def test_a_server_stops_when_the_process_that_spawned_it_is_killed(moto_endpoint, published):
    # Given a server spawned by another process (as the local cloud's daemon spawns them)
    spawner = subprocess.Popen(
        [sys.executable, "-c", SPAWNER, moto_endpoint],
        env={**os.environ, **CREDENTIALS, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert spawner.stdout is not None
        pid, port = (int(x) for x in spawner.stdout.readline().split())
        assert call("GET", f"http://127.0.0.1:{port}/ping")[0] == 200

        # When that process is killed outright (no cleanup of its own runs)
        spawner.kill()
        spawner.wait()

        # Then the server notices and stops too: nothing is left answering
        deadline = time.monotonic() + 15
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(pid)
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5)
    finally:
        if spawner.poll() is None:
            spawner.kill()
            spawner.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(spawner.pid, signal.SIGKILL)


def test_in_process_server_serves_and_takes_faults(artifact):
    # Given an in-process server on a free port
    with ModelServer(artifact, region="us-west-2") as server:
        case = golden_cases(artifact)[2]

        # When it is called directly and then marked down through the Python API
        healthy = call("GET", f"{server.url}/ping")
        answered = call("POST", f"{server.url}/invocations", case["payload"])
        server.set_faults(down=True)
        down = call("GET", f"{server.url}/ping")

        # Then it behaves like the subprocess server
        assert healthy[0] == 200 and healthy[1]["region"] == "us-west-2"
        assert answered == (200, case["expected"])
        assert down[0] == 503
        assert server.clear_faults().down is False

    # And once stopped, it is no longer running
    assert not server.running


def test_in_process_server_refuses_to_listen_beyond_loopback(artifact):
    # Given a request to bind every interface
    # When the server is created
    # Then it refuses: the model server has no authentication
    with pytest.raises(ValueError, match="only binds 127.0.0.1"):
        ModelServer(artifact, region=REGION, host="0.0.0.0")
