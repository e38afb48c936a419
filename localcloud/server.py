"""`LocalCloud`: an in-process moto server on 127.0.0.1 that runs Step Functions and Lifeboat's handlers.

Four patches make moto behave like AWS where Lifeboat depends on it: `lambda_runner` (Lambda invocations run
the real handlers), `sfn_events` (executions send their status changes to EventBridge), `sqs_batches`
(queue batches honour partial-batch failures), `s3_replication_rules` (replication rules read back as
they were put) and `sagemaker` (InvokeEndpoint reaches a real model server); `sfn_programs` makes it faster (a
state machine's definition is parsed once, not once per execution).

One per process: moto's backends are process-wide and its Step Functions engine finds the server through the
MOTO_PORT environment variable.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from localcloud import (
    arc,
    lambda_runner,
    region_outage,
    s3_replication_rules,
    sagemaker,
    sfn_events,
    sfn_programs,
    sqs_batches,
)
from localcloud.iam import IamEnforcement, mode_from_env
from localcloud.resources import names

if TYPE_CHECKING:
    from moto.core.config import _sfn_config as SfnConfig  # moto names its own config type private

HOST = "127.0.0.1"
PRIMARY_REGION = "us-east-1"
SECONDARY_REGION = "us-west-2"
ACCOUNT_ID = "123456789012"  # moto's default account
CREDENTIALS = "testing"
METRICS_NAMESPACE = "Lifeboat"
SERVICE_NAME = "lifeboat"

STOP_TIMEOUT_S = 60.0  # bound on waiting for executions and asynchronous invocations at stop

logger = logging.getLogger(__name__)
_running_lock = threading.Lock()
_running: LocalCloud | None = None


class LocalCloudError(RuntimeError):
    """Raised when the local cloud cannot start (e.g. one is already running in this process)."""


class LocalCloud:
    """Context manager around moto's ThreadedMotoServer plus the in-process Lambda runner."""

    def __init__(
        self,
        *,
        stage: str = "dev",
        region: str = PRIMARY_REGION,
        secondary_region: str = SECONDARY_REGION,
        handler_module: str = lambda_runner.APP_MODULE,
        apply_environ: bool = True,
        reset_state: bool = True,
        iam: str | None = None,
        retry_cap_s: int | None = None,
    ) -> None:
        self.stage = stage
        # The generated state machines' retriers wait at most this long between attempts (None: as
        # generated, as deployed). moto really sleeps through them; the integration tests cap them.
        self.retry_cap_s = retry_cap_s
        self.region = region
        self.secondary_region = secondary_region
        self.handler_module = handler_module
        self.account_id = ACCOUNT_ID
        self._apply_environ = apply_environ
        self._reset_state = reset_state
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None
        self._environ_before: dict[str, str | None] = {}
        self._sfn_config_before: SfnConfig | None = None
        self._werkzeug_level: int | None = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()
        # What provision_base created (names and ARNs), keyed as its result.
        self.resources: dict[str, Any] = {}
        # Each function's calls are checked against its deployed role (localcloud/iam.py); `iam` (enforce,
        # log, off) defaults to LIFEBOAT_LOCAL_IAM, itself enforce.
        self.iam = IamEnforcement(self, mode=iam or mode_from_env())

    # ---------------------------------------------------------------------------------------- lifecycle

    def start(self) -> LocalCloud:
        global _running
        with _running_lock:
            if _running is not None:
                raise LocalCloudError(
                    "a LocalCloud is already running in this process (moto's backends and MOTO_PORT are "
                    "process-wide); stop it first"
                )
            _running = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        # Request lines from werkzeug would drown the test output.
        werkzeug_logger = logging.getLogger("werkzeug")
        self._werkzeug_level = werkzeug_logger.level
        werkzeug_logger.setLevel(logging.WARNING)

        server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        server.start()
        self._server = server
        _, self._port = server.get_host_and_port()
        # Route 53 ARC's configuration API (plan validation's reads), answered by this cloud's ARC clusters;
        # behind the outage middleware: it lives in us-west-2 and goes down with that region.
        arc.install_config(server, self)
        # Pass-through until a test or a drill takes a region's APIs down (localcloud/region_outage.py).
        region_outage.install(server)

        # In-process, the moto-api /moto-api/config endpoint would set this very dict; the SFN responses
        # read it on every request, so state machines must be created after this line to be executable.
        sfn_config = default_user_config.setdefault("stepfunctions", {})
        self._sfn_config_before = sfn_config.copy()
        sfn_config["execute_state_machine"] = True

        self._set_environ({"MOTO_PORT": str(self._port)})
        if self._apply_environ:
            self._set_environ(self.env())
        if self._reset_state:
            self._reset_moto()
        lambda_runner.install(handler_module=self.handler_module, home_region=self.region)
        sfn_events.install()  # Step Functions status changes reach EventBridge, as in AWS
        sfn_programs.install()
        sqs_batches.install()  # queue batches honour ReportBatchItemFailures, as Lambda does
        s3_replication_rules.install()  # replication rules read back as they were put, as in S3
        sagemaker.install()  # InvokeEndpoint reaches the variant's model server (localcloud/sagemaker.py)
        self.iam.start()  # before the clients are rebuilt: it watches the ones built from now on
        _reset_lifeboat_clients()

    def stop(self) -> None:
        """Stop the server, remove the runner patch and restore the environment (safe to call twice)."""
        global _running
        with _running_lock:
            if _running is not self:
                return  # never started, already stopped, or refused: the running cloud is not ours to touch
        region_outage.REGION_OUTAGE.end()  # an outage never outlives its cloud
        arc.stop_clusters(self)  # nor its ARC clusters' endpoints
        # Executions stopped below send no status change: no janitor runs against a cloud going away.
        sfn_events.uninstall()
        # moto's executions run in their own threads and find "the" server through MOTO_PORT: one left
        # running would call the next cloud's functions of the same names. Nothing outlives its cloud.
        if self._server is not None:
            self._stop_executions(timeout=STOP_TIMEOUT_S)
        if not lambda_runner.drain(timeout=STOP_TIMEOUT_S):
            logger.warning("asynchronous invocations still running after %ss", STOP_TIMEOUT_S)
        lambda_runner.uninstall()
        self.iam.stop()
        sfn_programs.uninstall()
        sqs_batches.uninstall()
        s3_replication_rules.uninstall()
        sagemaker.uninstall()
        if self._server is not None:
            self._server.stop()  # werkzeug closes the listening socket when serve_forever returns
            self._server = None
        if self._sfn_config_before is not None:
            default_user_config["stepfunctions"] = self._sfn_config_before
            self._sfn_config_before = None
        for key, value in self._environ_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._environ_before.clear()
        if self._werkzeug_level is not None:
            logging.getLogger("werkzeug").setLevel(self._werkzeug_level)
            self._werkzeug_level = None
        with self._clients_lock:
            self._clients.clear()
        _reset_lifeboat_clients()
        with _running_lock:
            _running = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --------------------------------------------------------------------------------------- properties

    @property
    def port(self) -> int:
        if self._port is None:
            raise LocalCloudError("the local cloud is not started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def env(self, stage: str | None = None) -> dict[str, str]:
        """Environment variables a Lambda function or the CLI needs to talk to this cloud."""
        resource_names = names(stage or self.stage)
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": CREDENTIALS,
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LIFEBOAT_STAGE": stage or self.stage,
            "LIFEBOAT_LEDGER_TABLE": resource_names.ledger_table,
            "LIFEBOAT_LOCK_TABLE": resource_names.lock_table,
            "LIFEBOAT_IDEMPOTENCY_TABLE": resource_names.idempotency_table,
            "LIFEBOAT_PLAN_BUCKET": resource_names.plan_bucket,
            "LIFEBOAT_EVIDENCE_BUCKET": resource_names.evidence_bucket,
            "LIFEBOAT_STATE_MACHINE_PREFIX": resource_names.prefix,
            # The plans' endpoints are model servers on 127.0.0.1 here; in AWS loopback is refused.
            "LIFEBOAT_OUTBOUND_ALLOW_LOOPBACK": "true",
        }

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client against the local cloud (cached per service and region; clients are thread-safe)."""
        key = (service, region or self.region)
        with self._clients_lock:
            existing = self._clients.get(key)
            if existing is None:
                existing = boto3.session.Session().client(
                    service,
                    region_name=key[1],
                    endpoint_url=self.endpoint_url,
                    aws_access_key_id=CREDENTIALS,
                    aws_secret_access_key=CREDENTIALS,
                    config=Config(retries={"mode": "standard", "max_attempts": 3}),
                )
                self._clients[key] = existing
            return existing

    def as_function(self, chalice_name: str, region: str | None = None) -> lambda_runner.Invocation:
        """The identity of one of the app's Lambda functions, for code a test runs in-process in its place
        (`lambda_runner.running_as`): the console API through chalice.test runs as the API function."""
        region = region or self.region
        name = names(self.stage).function(chalice_name)  # "api": the REST API's function
        return lambda_runner.Invocation(
            name, region, f"arn:aws:lambda:{region}:{self.account_id}:function:{name}"
        )

    # ------------------------------------------------------------------------------------------ helpers

    def _set_environ(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._environ_before.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _stop_executions(self, timeout: float) -> None:
        def running() -> list[str]:
            found = []
            for region in (self.region, self.secondary_region):
                sfn = self.client("stepfunctions", region)
                for machine in sfn.list_state_machines()["stateMachines"]:
                    found += [
                        e["executionArn"]
                        for e in sfn.list_executions(
                            stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
                        )["executions"]
                    ]
            return found

        try:
            for arn in running():
                self.client("stepfunctions", arn.split(":")[3]).stop_execution(
                    executionArn=arn, cause="the local cloud is stopping"
                )
            deadline = time.monotonic() + timeout
            while (left := running()) and time.monotonic() < deadline:
                time.sleep(0.1)
        except Exception:  # noqa: BLE001 - stopping must go on whatever the server says
            logger.exception("could not stop the executions still running")
            return
        if left:
            logger.warning("executions still running after %ss: %s", timeout, left)

    def _reset_moto(self) -> None:
        # Same effect as POST /moto-api/reset: a fresh cloud, whatever earlier tests left in the backends.
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()


def _reset_lifeboat_clients() -> None:
    try:
        from chalicelib.services import deps
    except ImportError:
        return
    deps.reset()  # adapters built for the previous cloud, then the client factory and settings
