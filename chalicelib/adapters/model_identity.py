"""What model an inference endpoint serves: version and artifact checksum, read from the endpoint itself.

HTTP model servers answer `model_version` / `model_sha256` on GET /ping (and in every prediction, the fallback
when /ping says nothing). For SageMaker the endpoint config names the model, whose container names its model
data URL or model package; the URL's bucket is regional (replicas differ by bucket), so only its key is kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse, urlunparse

from chalicelib.adapters import aws, outbound
from chalicelib.domain.failback import ModelIdentity
from chalicelib.models.plan import Endpoint, HttpEndpoint

MAX_BODY = 1_000_000


def ping_url(invocations_url: str) -> str:
    """SageMaker-style containers serve /ping next to /invocations."""
    parsed = urlparse(invocations_url)
    path = parsed.path
    path = path[: -len("/invocations")] + "/ping" if path.endswith("/invocations") else "/ping"
    return urlunparse(parsed._replace(path=path, query="", fragment=""))


def _identity_fields(body: Any) -> dict[str, str | None]:
    if not isinstance(body, dict):
        return {}
    version, sha = body.get("model_version"), body.get("model_sha256")
    return {
        "version": str(version) if version is not None else None,
        "sha256": str(sha).lower() if sha is not None else None,
    }


class ModelInspector:
    def __init__(
        self,
        *,
        sagemaker: Callable[[str], Any] | None = None,
        s3: Callable[[str], Any] | None = None,
        http: Callable[..., outbound.Response] = outbound.request,
    ) -> None:
        self._sagemaker = sagemaker or (lambda region: aws.client("sagemaker", region))
        self._s3 = s3 or (lambda region: aws.client("s3", region))
        self._request = http

    def identify(
        self, role: str, endpoint: Endpoint, region: str, probe_payload: Any, timeout_s: float
    ) -> ModelIdentity:
        try:
            if isinstance(endpoint, HttpEndpoint):
                return self._http(role, endpoint.url, region, probe_payload, timeout_s)
            return self._sagemaker_identity(role, endpoint.endpoint_name, endpoint.variant_name, region)
        except Exception as exc:  # every failure to read is a reason, never a crash
            return ModelIdentity(role=role, region=region, error=f"{type(exc).__name__}: {exc}"[:300])

    # -- HTTP -----------------------------------------------------------------------------------------
    def _http(self, role: str, url: str, region: str, payload: Any, timeout_s: float) -> ModelIdentity:
        try:
            fields = _identity_fields(self._get_json(ping_url(url), timeout_s))
        except (OSError, ValueError):
            fields = {}
        source = "ping"
        if not any(fields.values()):
            fields = _identity_fields(self._post_json(url, payload, timeout_s))
            source = "prediction"
        return ModelIdentity(role=role, region=region, source=source, **fields)

    def _get_json(self, url: str, timeout_s: float) -> Any:
        return _json(self._request("GET", url, timeout=timeout_s, max_body=MAX_BODY), url)

    def _post_json(self, url: str, payload: Any, timeout_s: float) -> Any:
        answer = self._request(
            "POST",
            url,
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            timeout=timeout_s,
            max_body=MAX_BODY,
        )
        return _json(answer, url)

    # -- SageMaker ------------------------------------------------------------------------------------
    def _sagemaker_identity(self, role: str, name: str, variant: str | None, region: str) -> ModelIdentity:
        sm = self._sagemaker(region)
        config_name = sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        variants = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
        chosen = [v for v in variants if variant is None or v["VariantName"] == variant]
        if not chosen:
            raise LookupError(f"endpoint config {config_name} has no variant {variant}")
        models = {v["ModelName"] for v in chosen}
        if len(models) > 1:
            raise LookupError(f"variants of {name} serve different models: {sorted(models)}")
        model = sm.describe_model(ModelName=models.pop())
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        package = container.get("ModelPackageName")
        if package:
            # arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>: region-neutral tail
            tail = package.split(":model-package/", 1)[-1]
            version = tail.rsplit("/", 1)[-1] if "/" in tail else None
            return ModelIdentity(
                role=role, region=region, version=version, artifact=tail, source="endpoint-config"
            )
        data_url = container.get("ModelDataUrl")
        if not data_url:
            raise LookupError(f"model of {name} names neither a model package nor model data")
        parsed = urlparse(data_url)
        key = parsed.path.lstrip("/")
        sha = None
        try:
            head = self._s3(region).head_object(Bucket=parsed.netloc, Key=key)
            sha = (head.get("Metadata") or {}).get("sha256")
        except Exception:  # noqa: BLE001 - the checksum is a refinement; the key is still compared
            sha = None
        return ModelIdentity(role=role, region=region, artifact=key, sha256=sha, source="endpoint-config")


def _json(answer: outbound.Response, url: str) -> Any:
    if answer.redirect:
        raise OSError(outbound.describe_redirect(answer))
    if answer.status >= 400:
        raise OSError(f"HTTP {answer.status} from {url}")
    return json.loads(answer.body)
