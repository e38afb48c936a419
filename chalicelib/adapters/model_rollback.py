"""Model rollback's calls: the registry's versions (S3 manifests or a SageMaker model package group), what an
endpoint serves, and the deployment itself.

- An http endpoint runs Lifeboat's model-server container: GET /ping names the model it serves (version,
  SHA-256, artifact) and POST /admin/model {artifact, sha256} loads another artifact from S3, checks its
  SHA-256 and serves it from the next request on (or answers an error and keeps serving the old one).
- A SageMaker endpoint: a new model from the version's model package (or its model data), a new endpoint
  config (the current one with that model on the rolled-back variant), UpdateEndpoint; SageMaker keeps
  serving the old config until the new one is InService. Reverting is UpdateEndpoint to the old config.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse, urlunparse

from chalicelib.adapters import aws, outbound
from chalicelib.adapters.dynamo import error_code
from chalicelib.adapters.s3objects import get_json, iter_objects
from chalicelib.domain.assets.model_registry import package
from chalicelib.invariants import present
from chalicelib.models.plan import DRPlan, Endpoint, HttpEndpoint, ModelRegistryAsset, SageMakerEndpoint
from chalicelib.models.rollback import Deployed, RegistryVersion

MAX_BODY = 1_000_000
LOAD_TIMEOUT_S = 30.0  # an http model server loads and checks the artifact before answering


def admin_model_url(invocations_url: str) -> str:
    """`/admin/model` next to `/invocations` (Lifeboat's model-server container)."""
    parsed = urlparse(invocations_url)
    path = parsed.path
    path = path[: -len("/invocations")] if path.endswith("/invocations") else path.rstrip("/")
    return urlunparse(parsed._replace(path=path + "/admin/model", query="", fragment=""))


def ping_url(invocations_url: str) -> str:
    return admin_model_url(invocations_url).removesuffix("/admin/model") + "/ping"


class DeployError(RuntimeError):
    """The endpoint refused or failed the deployment (it serves what it served before)."""


class ModelRegistry:
    """The versions a registry holds in one region, oldest first."""

    def __init__(self, client: Callable[[str, str], Any] | None = None) -> None:
        self._client = client or (lambda service, region: aws.client(service, region))

    def versions(self, plan: DRPlan, asset: ModelRegistryAsset, region: str) -> list[RegistryVersion]:
        if asset.registry == "sagemaker":
            return self._packages(present(asset.model_package_group, "the group"), region)
        loc = asset.source if region == plan.regions.primary else asset.replica
        loc = present(loc, f"the manifest location of {asset.name}")
        s3 = self._client("s3", region)
        out: list[RegistryVersion] = []
        for manifest in iter_objects(s3, loc.bucket, loc.prefix):
            if not manifest.key.endswith(".json"):
                continue
            body = get_json(s3, loc.bucket, loc.prefix + manifest.key) or {}
            for index, entry in enumerate(body.get("versions") or []):
                deployable = bool(entry.get("deployable"))
                out.append(
                    RegistryVersion(
                        version=str(entry.get("version")),
                        approved=deployable,
                        status="deployable" if deployable else "not deployable",
                        order=index,
                        artifact=str(entry["artifact"]) if entry.get("artifact") else None,
                        sha256=str(entry["sha256"]).lower() if entry.get("sha256") else None,
                        model=str(body.get("model") or manifest.key.removesuffix(".json")),
                    )
                )
        return out

    def _packages(self, group: str, region: str) -> list[RegistryVersion]:
        sm = self._client("sagemaker", region)
        out: list[RegistryVersion] = []
        kwargs: dict[str, Any] = {"ModelPackageGroupName": group}
        while True:
            page = sm.list_model_packages(**kwargs)
            for summary in page.get("ModelPackageSummaryList", []):
                described = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
                found = package({"ModelPackageArn": summary["ModelPackageArn"], **described})
                number = int(described.get("ModelPackageVersion") or summary.get("ModelPackageVersion") or 0)
                bucket_key = found.artifact
                out.append(
                    RegistryVersion(
                        version=found.version or str(number),
                        approved=found.status == "Approved",
                        status=found.status or "unknown",
                        order=number,
                        artifact=f"s3://{bucket_key[0]}/{bucket_key[1]}" if bucket_key else None,
                        sha256=found.identity if found.identity and len(found.identity) == 64 else None,
                        package=found.arn,
                    )
                )
            token = page.get("NextToken")
            if not token:
                return sorted(out, key=lambda v: v.order)
            kwargs["NextToken"] = token


class ModelDeployer:
    """What an endpoint serves, and changing it."""

    def __init__(
        self,
        *,
        sagemaker: Callable[[str], Any] | None = None,
        http: Callable[..., outbound.Response] = outbound.request,
    ) -> None:
        self._sagemaker = sagemaker or (lambda region: aws.client("sagemaker", region))
        self._request = http

    # -- what it serves -------------------------------------------------------------------------------
    def current(self, endpoint: Endpoint, region: str, timeout_s: float = 5.0) -> Deployed:
        try:
            if isinstance(endpoint, HttpEndpoint):
                body = self._json("GET", ping_url(str(endpoint.url)), None, timeout_s)
                return Deployed(
                    version=_str(body.get("model_version")),
                    sha256=(_str(body.get("model_sha256")) or "").lower() or None,
                    artifact=_str(body.get("model_artifact")),
                )
            return self._sagemaker_current(endpoint, region)
        except Exception as exc:  # a reason, never a crash: a named version can still be deployed
            return Deployed(error=f"{type(exc).__name__}: {exc}"[:300])

    def _sagemaker_current(self, endpoint: SageMakerEndpoint, region: str) -> Deployed:
        sm = self._sagemaker(region)
        config = sm.describe_endpoint(EndpointName=endpoint.endpoint_name)["EndpointConfigName"]
        variants = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
        chosen = [v for v in variants if endpoint.variant_name in (None, v["VariantName"])]
        if not chosen:
            raise LookupError(f"endpoint config {config} has no variant {endpoint.variant_name}")
        model_name = chosen[0]["ModelName"]
        model = sm.describe_model(ModelName=model_name)
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        return Deployed(
            package=_str(container.get("ModelPackageName")),
            artifact=_str(container.get("ModelDataUrl")),
            endpoint_config=config,
            model_name=model_name,
        )

    # -- changing it ----------------------------------------------------------------------------------
    def deploy_http(self, endpoint: HttpEndpoint, artifact: str, sha256: str | None) -> Deployed:
        """Have the model server load `artifact` (checked against `sha256`); what it serves then."""
        body = self._json(
            "POST",
            admin_model_url(str(endpoint.url)),
            {"artifact": artifact, "sha256": sha256},
            LOAD_TIMEOUT_S,
        )
        return Deployed(
            version=_str(body.get("model_version")),
            sha256=_str(body.get("model_sha256")),
            artifact=_str(body.get("model_artifact")),
        )

    def deploy_sagemaker(
        self,
        endpoint: SageMakerEndpoint,
        region: str,
        current: Deployed,
        *,
        model_name: str,
        config_name: str,
        package_arn: str | None,
        artifact: str | None,
    ) -> None:
        """A model for the version, an endpoint config with it on the endpoint's variant, UpdateEndpoint."""
        sm = self._sagemaker(region)
        old_config = present(current.endpoint_config, "the endpoint's config")
        old_model = sm.describe_model(ModelName=present(current.model_name, "the endpoint's model"))
        container: dict[str, Any]
        if package_arn:
            container = {"ModelPackageName": package_arn}
        else:
            old = old_model.get("PrimaryContainer") or (old_model.get("Containers") or [{}])[0]
            container = {"Image": old.get("Image"), "ModelDataUrl": present(artifact, "the model data")}
        # A retried step finds what its first attempt created (the names are the run's own).
        if not _exists(lambda: sm.describe_model(ModelName=model_name)):
            sm.create_model(
                ModelName=model_name,
                ExecutionRoleArn=old_model["ExecutionRoleArn"],
                PrimaryContainer=container,
            )
        described = sm.describe_endpoint_config(EndpointConfigName=old_config)
        variants = []
        for variant in described["ProductionVariants"]:
            copy = {k: v for k, v in variant.items() if k in _VARIANT_KEYS}
            if endpoint.variant_name in (None, variant["VariantName"]):
                copy["ModelName"] = model_name
            variants.append(copy)
        if not _exists(lambda: sm.describe_endpoint_config(EndpointConfigName=config_name)):
            sm.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=variants)
        sm.update_endpoint(EndpointName=endpoint.endpoint_name, EndpointConfigName=config_name)

    def switch_config(self, endpoint: SageMakerEndpoint, region: str, config_name: str) -> None:
        """UpdateEndpoint to an existing config (reverting a rollback)."""
        self._sagemaker(region).update_endpoint(
            EndpointName=endpoint.endpoint_name, EndpointConfigName=config_name
        )

    def endpoint_state(self, endpoint: SageMakerEndpoint, region: str) -> tuple[str, str, str | None]:
        """(status, config name, failure reason) of a SageMaker endpoint."""
        found = self._sagemaker(region).describe_endpoint(EndpointName=endpoint.endpoint_name)
        return (
            str(found["EndpointStatus"]),
            str(found["EndpointConfigName"]),
            _str(found.get("FailureReason")),
        )

    def _json(self, method: str, url: str, body: dict[str, Any] | None, timeout_s: float) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        answer = self._request(
            method,
            url,
            body=data,
            headers={"Content-Type": "application/json"} if data else {},
            timeout=timeout_s,
            max_body=MAX_BODY,
        )
        if answer.redirect:
            raise DeployError(outbound.describe_redirect(answer))
        try:
            parsed = json.loads(answer.body or b"null")
        except ValueError:
            parsed = None
        if answer.status >= 400:
            why = parsed.get("error") if isinstance(parsed, dict) else None
            raise DeployError(f"HTTP {answer.status} from {url}" + (f": {why}" if why else ""))
        if not isinstance(parsed, dict):
            raise DeployError(f"{url} answered no JSON object")
        return parsed


# What CreateEndpointConfig takes back from DescribeEndpointConfig's variants.
_VARIANT_KEYS = frozenset(
    {
        "VariantName",
        "ModelName",
        "InitialInstanceCount",
        "InstanceType",
        "InitialVariantWeight",
        "AcceleratorType",
        "ServerlessConfig",
        "VolumeSizeInGB",
        "ModelDataDownloadTimeoutInSeconds",
        "ContainerStartupHealthCheckTimeoutInSeconds",
        "EnableSSMAccess",
        "InferenceAmiVersion",
    }
)


def _exists(describe: Callable[[], Any]) -> bool:
    try:
        describe()
    except Exception as exc:
        if error_code(exc) in ("ValidationException", "ResourceNotFound"):
            return False
        raise
    return True


def _str(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None
