"""The local cloud's SageMaker: moto's control plane (models, endpoint configs, endpoints, variant weights,
the Model Registry) with `sagemaker-runtime` InvokeEndpoint answered by a real model server per endpoint
variant, and faults injectable per endpoint.

moto answers InvokeEndpoint with canned results; `install()` replaces its response (`GUARDED_INTERNALS`,
checked by tests/integration/test_moto_guard.py) with one that routes the call as SageMaker does: to the
variant named by TargetVariant, else to a variant chosen by the endpoint's current weights (so
UpdateEndpointWeightsAndCapacities moves real requests), then POSTs the body to that variant's model server
(`localcloud/modelserver.py`, registered with `SAGEMAKER.register`). A container answering an error becomes
SageMaker's `ModelError` (424, with the container's status), as in AWS.

Faults per endpoint (`SAGEMAKER.set_faults`): `throttling` and `model_error` act here, in the runtime (what
the service answers); `down`, `latency_ms`, `wrong_answers` and `error_rate` are the model servers' own faults
(their `/admin/faults`), applied to every variant of the endpoint.

UpdateEndpoint (which moto lacks) is added: the endpoint is Updating (for `SAGEMAKER.update_seconds`, serving
its old config meanwhile), then each variant's model server loads the model data the new config's model
names (its ModelDataUrl, or its model package's) and the new config is in service; a model server that
cannot load it leaves the old config in service with a FailureReason, as SageMaker does.

An endpoint no model server was registered for keeps moto's canned answer.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from http.client import HTTPException
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict

from chalicelib.models.plan import ROLES, DRPlan, Role, SageMakerEndpoint, SageMakerVariantsTraffic

DEFAULT_VARIANT = "AllTraffic"  # what SageMaker's own tools name a single-variant endpoint's variant
INSTANCE_TYPE = "ml.m5.large"
INVOCATION_TIMEOUT_S = 60.0  # SageMaker real-time endpoints give a container 60 s to answer
IMAGE = "lifeboat/model-server:local"  # the container image the local models name (not pulled: a process)
RUNTIME_FAULTS = ("throttling", "model_error")
SERVER_FAULTS = ("down", "latency_ms", "wrong_answers", "error_rate")

SERVING = ("InService", "Updating", "SystemUpdating", "RollingBack")  # statuses an endpoint answers in

GUARDED_INTERNALS: list[tuple[str, str, str]] = [
    (
        "moto.sagemakerruntime.responses",
        "SageMakerRuntimeResponse.invoke_endpoint",
        "(self) -> tuple[int, dict[str, typing.Any], str | bytes]",
    ),
    (
        "moto.sagemaker.models",
        "SageMakerModelBackend.update_endpoint_weights_and_capacities",
        "(self, endpoint_name: str, desired_weights_and_capacities: list[dict[str, typing.Any]]) -> str",
    ),
]


class RuntimeFaults(BaseModel):
    """What the SageMaker runtime itself answers for an endpoint instead of calling its containers."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    throttling: bool = False  # ThrottlingException (400), which botocore retries
    model_error: bool = False  # ModelError (424): the container failed the request


@dataclass(frozen=True)
class VariantBackend:
    """One production variant the local cloud serves with the model server of a plan's role."""

    role: Role
    region: str
    endpoint: str
    variant: str


def variant_backends(plan: DRPlan) -> list[VariantBackend]:
    """The SageMaker endpoint variants a plan names, each served by its role's model server: the endpoint of
    each role (its variant, else AllTraffic), and the two variants of a sagemaker-variants traffic switch."""
    found: dict[tuple[str, str, str], VariantBackend] = {}
    for role in ROLES:
        endpoint = plan.endpoint_for(role)
        if isinstance(endpoint, SageMakerEndpoint):
            backend = VariantBackend(
                role,
                plan.region_of(role),
                endpoint.endpoint_name,
                endpoint.variant_name or DEFAULT_VARIANT,
            )
            found.setdefault((backend.region, backend.endpoint, backend.variant), backend)
    traffic = plan.traffic
    if isinstance(traffic, SageMakerVariantsTraffic):
        for role in ROLES:
            backend = VariantBackend(
                role, traffic.region, traffic.endpoint_name, getattr(traffic.variants, role)
            )
            found.setdefault((backend.region, backend.endpoint, backend.variant), backend)
    return list(found.values())


def sagemaker_roles(plan: DRPlan) -> list[Role]:
    """The roles whose model server backs a SageMaker variant of the plan (the local cloud starts each)."""
    roles = {b.role for b in variant_backends(plan)}
    return [role for role in ROLES if role in roles]


# -- the runtime --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """An HTTP answer of the runtime API: status, headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def as_moto(self) -> tuple[int, dict[str, str], bytes]:
        # moto takes the status from the headers' "status" (200 when absent), whatever the tuple says
        return self.status, {**self.headers, "status": str(self.status)}, self.body


def error(status: int, code: str, message: str, **extra: Any) -> Answer:
    """An error in the rest-json shape botocore reads (`x-amzn-ErrorType`, `message`)."""
    body = json.dumps({"__type": code, "message": message, **extra}).encode()
    return Answer(status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, body)


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalSageMaker:
    """The routes from endpoint variants to model servers, and the faults per endpoint (process-wide)."""

    def __init__(self, *, choose: random.Random | None = None, update_seconds: float = 0.0) -> None:
        self.update_seconds = update_seconds
        """How long UpdateEndpointWeightsAndCapacities leaves an endpoint Updating before the new weights
        apply (0: at once, as moto does). In AWS it is seconds to minutes; a test sets it to watch Lifeboat
        wait for InService."""
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], dict[str, str]] = {}
        self._faults: dict[tuple[str, str], RuntimeFaults] = {}
        self._random = choose or random.Random()  # noqa: S311 - traffic split, not security
        self.invocations: dict[tuple[str, str, str], int] = {}

    # routes
    def register(self, region: str, endpoint: str, variant: str, url: str) -> None:
        """`url` (a model server: its /invocations, /admin/faults) serves `variant` of `endpoint`."""
        with self._lock:
            self._routes.setdefault((region, endpoint), {})[variant] = url.rstrip("/")

    def register_plan(self, plan: DRPlan, urls: Mapping[str, str]) -> list[VariantBackend]:
        """Route every variant the plan names to its role's model server (`urls`: role -> server URL)."""
        backends = variant_backends(plan)
        for b in backends:
            self.register(b.region, b.endpoint, b.variant, urls[b.role])
        return backends

    def backends(self, region: str, endpoint: str) -> dict[str, str]:
        with self._lock:
            return dict(self._routes.get((region, endpoint), {}))

    def reset(self) -> None:
        with self._lock:
            self._routes.clear()
            self._faults.clear()
            self.invocations.clear()

    # faults
    def faults(self, region: str, endpoint: str) -> dict[str, Any]:
        """The endpoint's runtime faults, and each variant's model-server faults."""
        with self._lock:
            runtime = self._faults.get((region, endpoint), RuntimeFaults())
        out: dict[str, Any] = runtime.model_dump()
        for variant, url in self.backends(region, endpoint).items():
            with contextlib.suppress(OSError, ValueError):
                out[variant] = _call(url + "/admin/faults", "GET")
        return out

    def set_faults(self, region: str, endpoint: str, **faults: Any) -> dict[str, Any]:
        """Break one endpoint: runtime faults here, model-server faults on every variant's server."""
        unknown = sorted(set(faults) - {*RUNTIME_FAULTS, *SERVER_FAULTS})
        if unknown:
            raise ValueError(
                f"unknown SageMaker endpoint fault(s) {', '.join(unknown)}; "
                f"known: {', '.join((*RUNTIME_FAULTS, *SERVER_FAULTS))}"
            )
        runtime = {k: v for k, v in faults.items() if k in RUNTIME_FAULTS}
        server = {k: v for k, v in faults.items() if k in SERVER_FAULTS}
        backends = self.backends(region, endpoint)
        if not backends:
            raise LookupError(f"the local cloud serves no SageMaker endpoint {endpoint} in {region}")
        if runtime:
            with self._lock:
                current = self._faults.get((region, endpoint), RuntimeFaults())
                self._faults[(region, endpoint)] = RuntimeFaults.model_validate(
                    {**current.model_dump(), **runtime}
                )
        if server:
            for url in backends.values():
                _call(url + "/admin/faults", "POST", server)
        return self.faults(region, endpoint)

    def clear_faults(self, region: str, endpoint: str) -> None:
        with self._lock:
            self._faults.pop((region, endpoint), None)
        for url in self.backends(region, endpoint).values():
            with contextlib.suppress(OSError):  # a killed server has no faults left to clear
                _call(url + "/admin/faults", "DELETE")

    # InvokeEndpoint
    def invoke(
        self,
        *,
        account: str,
        region: str,
        endpoint: str,
        body: bytes,
        content_type: str | None,
        target_variant: str | None,
    ) -> Answer | None:
        """SageMaker's answer to InvokeEndpoint; None when no model server serves the endpoint."""
        from moto.sagemaker.models import sagemaker_backends

        backends = self.backends(region, endpoint)
        if not backends:
            return None
        found = sagemaker_backends[account][region].endpoints.get(endpoint)
        if found is None:
            return error(400, "ValidationError", f"Endpoint {endpoint} of account {account} not found.")
        if found.endpoint_status not in SERVING:  # an endpoint being updated still serves, as in AWS
            return error(
                400,
                "ValidationError",
                f"Endpoint {endpoint} of account {account} is {found.endpoint_status}, not InService.",
            )
        with self._lock:
            faults = self._faults.get((region, endpoint), RuntimeFaults())
        if faults.throttling:
            return error(400, "ThrottlingException", "Rate exceeded")
        variants = {v["VariantName"]: v for v in found.production_variants}
        if target_variant:
            if target_variant not in variants:
                return error(
                    400,
                    "ValidationError",
                    f"Variant {target_variant} not found for Request: Endpoint {endpoint} of account "
                    f"{account}.",
                )
            variant = target_variant
        else:
            weights = {name: float(v.get("CurrentWeight", 1.0) or 0.0) for name, v in variants.items()}
            live = [name for name, weight in weights.items() if weight > 0]
            if not live:
                return error(400, "ValidationError", f"Endpoint {endpoint} has no variant with weight > 0.")
            with self._lock:
                variant = self._random.choices(live, weights=[weights[n] for n in live])[0]
        url = backends.get(variant)
        if url is None:
            return error(500, "InternalFailure", f"no model container serves variant {variant} of {endpoint}")
        with self._lock:
            key = (region, endpoint, variant)
            self.invocations[key] = self.invocations.get(key, 0) + 1
        if faults.model_error:
            return _model_error(variant, 500, "injected fault: ModelError", endpoint, region, account)
        return _forward(url, body, content_type, variant, endpoint, region, account)


def _forward(
    url: str, body: bytes, content_type: str | None, variant: str, endpoint: str, region: str, account: str
) -> Answer:
    request = urllib.request.Request(
        url + "/invocations",
        data=body,
        method="POST",
        headers={"Content-Type": content_type or "application/json"},
    )
    try:
        with _NO_PROXY.open(request, timeout=INVOCATION_TIMEOUT_S) as response:
            raw = response.read()
            media = response.headers.get("Content-Type", "application/json")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")[:500]
        exc.close()
        return _model_error(variant, exc.code, text, endpoint, region, account)
    except (OSError, HTTPException) as exc:  # refused (a dead container), timed out, cut short
        return _model_error(variant, 0, f"{type(exc).__name__}: {exc}", endpoint, region, account)
    headers = {"Content-Type": media, "x-Amzn-Invoked-Production-Variant": variant}
    return Answer(200, headers, raw)


def _model_error(variant: str, status: int, message: str, endpoint: str, region: str, account: str) -> Answer:
    log_url = (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
        f"group=/aws/sagemaker/Endpoints/{endpoint} in account {account}"
    )
    return error(
        424,
        "ModelError",
        f'Received server error ({status}) from {variant} with message "{message}". See {log_url} '
        "for more information.",
        OriginalStatusCode=status,
        OriginalMessage=message,
        LogStreamArn=f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{endpoint}",
    )


def _call(url: str, method: str, body: dict[str, Any] | None = None, *, timeout: float = 5) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"} if data else {}
    )
    with _NO_PROXY.open(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


SAGEMAKER = LocalSageMaker()
"""This process's SageMaker runtime routes and faults (the local cloud's, a test's)."""


# -- the moto patches ---------------------------------------------------------------------------------------
_install_lock = threading.Lock()
_original: Any = None
_original_update: Any = None


def _backend_update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> str:
    """SageMaker's UpdateEndpoint on moto's backend (see the module docstring)."""
    from moto.sagemaker.exceptions import ValidationError

    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        raise ValidationError(message=f"Could not find endpoint '{endpoint_name}'.")
    if endpoint.endpoint_status == "Updating":
        raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
    config = self.describe_endpoint_config(endpoint_config_name)  # ValidationError when missing
    endpoint.endpoint_status = "Updating"
    region = self.region_name

    def apply() -> None:
        try:
            for variant in config["ProductionVariants"]:
                url = _model_data(self, variant["ModelName"])
                server = SAGEMAKER.backends(region, endpoint_name).get(variant["VariantName"])
                if server is not None and url is not None:
                    _call(server + "/admin/model", "POST", {"artifact": url}, timeout=30)
        except Exception as exc:  # noqa: BLE001 - the update fails, the old config stays in service
            detail = exc.read().decode("utf-8", "replace") if isinstance(exc, urllib.error.HTTPError) else ""
            endpoint.failure_reason = f"the new model could not be loaded: {exc} {detail}".strip()[:1000]
        else:
            endpoint.endpoint_config_name = endpoint_config_name
            endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
            endpoint.failure_reason = None
        endpoint.endpoint_status = "InService"

    if SAGEMAKER.update_seconds <= 0:
        apply()
    else:
        timer = threading.Timer(SAGEMAKER.update_seconds, apply)
        timer.daemon = True
        timer.start()
    return str(endpoint.arn)


def _model_data(backend: Any, model_name: str) -> str | None:
    """The S3 URL of the model data a model names, directly or through its model package."""
    model = backend.describe_model(model_name)
    container = model.primary_container or (model.containers or [{}])[0]
    if container.get("ModelDataUrl"):
        return str(container["ModelDataUrl"])
    package = container.get("ModelPackageName")
    if not package:
        return None
    found = backend.describe_model_package(package)
    containers = (found.inference_specification or {}).get("Containers") or [{}]
    return containers[0].get("ModelDataUrl")


def _response_update_endpoint(self: Any) -> Any:
    from moto.core.responses import ActionResult

    arn = self.sagemaker_backend.update_endpoint(
        endpoint_name=self._get_param("EndpointName"),
        endpoint_config_name=self._get_param("EndpointConfigName"),
    )
    return ActionResult({"EndpointArn": arn})


def _update_weights(
    self: Any, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]
) -> str:
    """moto's update, then (with `SAGEMAKER.update_seconds`) the endpoint Updating, serving with its old
    weights, and refusing another update, until the new weights apply."""
    from moto.sagemaker.exceptions import ValidationError

    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is not None and endpoint.endpoint_status == "Updating":
        raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
    before = {
        v["VariantName"]: v.get("CurrentWeight") for v in (endpoint.production_variants if endpoint else [])
    }
    arn = _original_update(self, endpoint_name, desired_weights_and_capacities)
    delay = SAGEMAKER.update_seconds
    if delay <= 0 or endpoint is None:
        return str(arn)
    endpoint.endpoint_status = "Updating"
    for variant in endpoint.production_variants:
        variant["CurrentWeight"] = before.get(variant["VariantName"])

    def settle() -> None:
        for variant in endpoint.production_variants:
            variant["CurrentWeight"] = variant.get("DesiredWeight")
        endpoint.endpoint_status = "InService"

    timer = threading.Timer(delay, settle)
    timer.daemon = True
    timer.start()
    return str(arn)


def _invoke_endpoint(self: Any) -> Any:
    # /endpoints/<name>/invocations: the name is in the path (moto's own response looks in the parameters)
    name = unquote(urlsplit(self.path).path.split("/")[2])
    raw = getattr(self, "raw_body", self.body)
    raw = raw if isinstance(raw, bytes) else str(raw or "").encode()
    answer = SAGEMAKER.invoke(
        account=self.current_account,
        region=self.region,
        endpoint=name,
        body=raw,
        content_type=_header(self.headers, "Content-Type"),
        target_variant=_header(self.headers, "X-Amzn-SageMaker-Target-Variant"),
    )
    if answer is None:
        return _original(self)
    return answer.as_moto()


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def install() -> None:
    """Route InvokeEndpoint to the registered model servers, let weight updates take time (idempotent)."""
    global _original, _original_update
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    with _install_lock:
        if _original is None:
            _original = SageMakerRuntimeResponse.__dict__["invoke_endpoint"]
            SageMakerRuntimeResponse.invoke_endpoint = _invoke_endpoint  # type: ignore[method-assign]
            _original_update = SageMakerModelBackend.__dict__["update_endpoint_weights_and_capacities"]
            SageMakerModelBackend.update_endpoint_weights_and_capacities = _update_weights  # type: ignore[method-assign]
            # moto has no UpdateEndpoint: added (a later moto's own would be replaced, on purpose: it could
            # not reach the model servers)
            SageMakerModelBackend.update_endpoint = _backend_update_endpoint  # type: ignore[attr-defined]
            SageMakerResponse.update_endpoint = _response_update_endpoint  # type: ignore[attr-defined]


def uninstall() -> None:
    """moto's own InvokeEndpoint and weight updates again, no routes, no faults (idempotent)."""
    global _original, _original_update
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    with _install_lock:
        if _original is not None:
            SageMakerRuntimeResponse.invoke_endpoint = _original  # type: ignore[method-assign]
            SageMakerModelBackend.update_endpoint_weights_and_capacities = _original_update  # type: ignore[method-assign]
            ours = (_backend_update_endpoint, _response_update_endpoint)
            for cls in (SageMakerModelBackend, SageMakerResponse):
                if cls.__dict__.get("update_endpoint") in ours:
                    delattr(cls, "update_endpoint")
            _original = _original_update = None
    SAGEMAKER.reset()
    SAGEMAKER.update_seconds = 0.0


def original(module: str, qualname: str) -> Any:
    """The moto attribute as moto defines it, even while this module is installed."""
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if obj is _invoke_endpoint and _original is not None:
        return _original
    if obj is _update_weights and _original_update is not None:
        return _original_update
    return obj


# -- provisioning -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArtifactAt:
    """Where each region's copy of the model artifact is (the model data its SageMaker models name)."""

    by_region: dict[str, tuple[str, str]]  # region -> (bucket, key)

    def url(self, region: str) -> str:
        bucket, key = self.by_region[region]
        return f"s3://{bucket}/{key}"


def provision_endpoints(cloud: Any, plan: DRPlan, artifact: ArtifactAt) -> list[str]:
    """Create (idempotently) the model, endpoint config and endpoint of every SageMaker endpoint the plan
    names, one variant per `variant_backends` entry, each model naming its region's copy of the artifact.
    New endpoints start with every variant at weight 1 (the traffic switch sets its own weights)."""
    grouped: dict[tuple[str, str], list[VariantBackend]] = {}
    for backend in variant_backends(plan):
        grouped.setdefault((backend.region, backend.endpoint), []).append(backend)
    created: list[str] = []
    role_arn = f"arn:aws:iam::{cloud.account_id}:role/{plan.workload}-sagemaker"
    for (region, name), variants in grouped.items():
        sm = cloud.client("sagemaker", region)
        if _exists(partial(sm.describe_endpoint, EndpointName=name)):
            continue
        production = []
        for backend in variants:
            model = f"{name}-{backend.variant}"[:63]
            if not _exists(partial(sm.describe_model, ModelName=model)):
                sm.create_model(
                    ModelName=model,
                    ExecutionRoleArn=role_arn,
                    PrimaryContainer={"Image": IMAGE, "ModelDataUrl": artifact.url(region)},
                )
            production.append(
                {
                    "VariantName": backend.variant,
                    "ModelName": model,
                    "InitialInstanceCount": 1,
                    "InstanceType": INSTANCE_TYPE,
                    "InitialVariantWeight": 1.0,
                }
            )
        config = f"{name}-config"
        if not _exists(partial(sm.describe_endpoint_config, EndpointConfigName=config)):
            sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=production)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        created.append(f"{name} ({region})")
    return created


def _exists(describe: Any) -> bool:
    from botocore.exceptions import ClientError

    try:
        describe()
    except ClientError:
        return False
    return True
