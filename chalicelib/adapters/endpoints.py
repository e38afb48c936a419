"""Calling inference endpoints: plain HTTP model servers and SageMaker real-time endpoints.

HTTP goes through `outbound.request`: only where the outbound rules allow, to the address that was checked,
never following a redirect (a 3xx is a failed case naming where it pointed)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from chalicelib.adapters import aws, outbound
from chalicelib.domain.smoke import Invocation
from chalicelib.models.plan import Endpoint, HttpEndpoint, SageMakerEndpoint

MAX_BODY = 1_000_000


class EndpointClient:
    """Sends one JSON payload to an endpoint and reports status, latency and the parsed answer."""

    def __init__(
        self,
        *,
        sagemaker_runtime: Callable[[str], Any] | None = None,
        timer: Callable[[], float] = time.perf_counter,
        http: Callable[..., outbound.Response] = outbound.request,
    ) -> None:
        # region -> sagemaker-runtime client; built lazily so HTTP-only plans never create one
        self._runtime = sagemaker_runtime or (lambda region: aws.client("sagemaker-runtime", region))
        self._timer = timer
        self._request = http

    def invoke(
        self, endpoint: Endpoint, region: str, case: str, payload: Any, timeout_s: float
    ) -> Invocation:
        runtime: Any = None
        if isinstance(endpoint, SageMakerEndpoint):
            # Built (or taken from the factory) before the clock starts: loading the service model takes
            # a second on a cold start, which is not the endpoint's latency.
            try:
                runtime = self._runtime(region)
            except Exception as exc:  # a client that cannot be built is a failed case, never a crash
                return Invocation(case=case, status=None, latency_ms=0.0, error=_describe(exc))
        start = self._timer()
        try:
            if isinstance(endpoint, HttpEndpoint):
                answer = self._http(endpoint.url, payload, timeout_s)
                if answer.redirect:
                    return Invocation(
                        case=case,
                        status=answer.status,
                        latency_ms=(self._timer() - start) * 1000,
                        error=outbound.describe_redirect(answer),
                    )
                status, body = answer.status, _parse(answer.body)
            elif isinstance(endpoint, SageMakerEndpoint):
                status, body = self._sagemaker(endpoint, runtime, payload)
            else:  # pragma: no cover - the plan model admits only the two kinds
                raise TypeError(f"unsupported endpoint kind {type(endpoint).__name__}")
        except Exception as exc:  # every transport failure is a failed case, never a crash
            return Invocation(
                case=case, status=None, latency_ms=(self._timer() - start) * 1000, error=_describe(exc)
            )
        return Invocation(case=case, status=status, latency_ms=(self._timer() - start) * 1000, body=body)

    def _http(self, url: str, payload: Any, timeout_s: float) -> outbound.Response:
        return self._request(
            "POST",
            url,
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            timeout=timeout_s,
            max_body=MAX_BODY,
        )

    def _sagemaker(self, endpoint: SageMakerEndpoint, runtime: Any, payload: Any) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {
            "EndpointName": endpoint.endpoint_name,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": json.dumps(payload).encode(),
        }
        if endpoint.variant_name:
            kwargs["TargetVariant"] = endpoint.variant_name
        resp = runtime.invoke_endpoint(**kwargs)
        return 200, _parse(resp["Body"].read(MAX_BODY))


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"raw": raw[:200].decode("utf-8", "replace")}


def _describe(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    text = f"{type(exc).__name__}: {reason or exc}"
    return text[:300]
