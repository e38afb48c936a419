"""What the CLI says, in one line and with which exit code, for the errors an operator can meet and fix:
no or expired AWS credentials, no region, an unreachable endpoint (the network, a local cloud that went away),
an unknown workload. Anything else is a bug and keeps its traceback.

botocore is never imported here: its exceptions are recognised by module and class name, so a command that
never touched AWS does not pay for importing it.
"""

from __future__ import annotations

USAGE = 2

CREDENTIALS = {
    "NoCredentialsError",
    "PartialCredentialsError",
    "CredentialRetrievalError",
    "SSOTokenLoadError",
    "TokenRetrievalError",
    "UnauthorizedSSOTokenError",
    "InvalidConfigError",
    "ProfileNotFound",
}
NETWORK = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ProxyConnectionError",
    "SSLError",
    "HTTPClientError",
}
# Error codes AWS answers with when the caller's credentials are the problem.
REJECTED_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AuthFailure",
}


def _is_botocore(err: BaseException) -> bool:
    return any(cls.__module__.startswith("botocore") for cls in type(err).__mro__)


def _code(err: BaseException) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def explain(err: BaseException, cloud: str | None) -> tuple[int, str] | None:
    """(exit code, one line) for an error an operator can act on; None for anything else (a bug)."""
    from chalicelib.adapters.plan_store import UnknownWorkload

    where = {"local": "the local cloud", "aws": "AWS"}.get(cloud or "", "AWS")
    if isinstance(err, UnknownWorkload):
        return USAGE, f"{err} (`lifeboat status` lists the workloads)"
    name = type(err).__name__
    if _is_botocore(err) or name in CREDENTIALS | NETWORK:
        if name in CREDENTIALS:
            return USAGE, (
                f"no usable AWS credentials ({err}): configure them (aws configure, AWS_PROFILE, "
                "aws sso login) "
                "or start the local cloud with `lifeboat local up`"
            )
        if name == "NoRegionError":
            return USAGE, "no AWS region: set AWS_REGION or pass --region"
        if name in NETWORK:
            hint = "is it still up? `lifeboat local status`" if cloud == "local" else "check the network"
            return USAGE, f"cannot reach {where} ({err}): {hint}"
        if _code(err) in REJECTED_CREDENTIALS:
            return USAGE, f"{where} rejected the credentials ({_code(err)}): {err}"
        if _code(err) in ("AccessDenied", "AccessDeniedException"):
            return 1, f"{where} denied the call: {err}"
    if isinstance(err, ConnectionError | TimeoutError):
        return USAGE, f"cannot reach {where} ({err})"
    return None
