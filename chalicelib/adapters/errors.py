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
    from botocore.exceptions import HTTPClientError

    # HTTPClientError covers read timeouts and connections closed before an answer; an adapter's own
    # TransientError (e.g. no endpoint of an ARC cluster answered) is transient by definition.
    if isinstance(exc, BotoConnectionError | HTTPClientError | TransientError):
        return True
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code in TRANSIENT_CODES or status >= 500


UNREACHABLE_CODES = frozenset(
    {"ServiceUnavailable", "InternalError", "InternalFailure", "InternalServerError"}
)
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",  # S3 throttles with a 503
    }
)


def unreachable(exc: BaseException) -> bool:
    """The region's API did not answer usefully: no connection, no response, or 5xx after the retries.

    What a regional outage looks like to a client; throttling (the API answered: slow down) is not."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    # ConnectionError: refused, DNS, connect timeout; HTTPClientError: connection closed, read timeout.
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in THROTTLING_CODES:
        return False
    return code in UNREACHABLE_CODES or status >= 500
