"""Which AWS failures are worth retrying: the state machine retries `TransientError` with backoff."""

from __future__ import annotations

from typing import Any

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "PriorRequestNotComplete",  # Route 53: a change is still propagating
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
    }
)


class TransientError(RuntimeError):
    """A throttling or 5xx failure that outlived botocore's own bounded retries."""


def is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ReadTimeoutError

    if isinstance(exc, BotoConnectionError | ReadTimeoutError):
        return True
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code in TRANSIENT_CODES or status >= 500
