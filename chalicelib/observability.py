"""Logger and Metrics, created once for every Lifeboat function.

No Tracer: the functions run with X-Ray tracing PassThrough and hold no X-Ray permission (docs/deploy.md),
and powertools' Tracer imports the X-Ray SDK at every cold start (~0.1 s) for nothing.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "lifeboat"
NAMESPACE = "Lifeboat"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def emit(name: str, value: float, unit: str = "Count", **dimensions: str) -> None:
    """One EMF metric with its own dimensions (e.g. workload), flushed immediately.

    Honours POWERTOOLS_METRICS_DISABLED like the shared `metrics` object does (single_metric does not).
    """
    from aws_lambda_powertools.metrics import MetricUnit, single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if is_metrics_disabled():
        return

    with single_metric(name=name, unit=MetricUnit(unit), value=value, namespace=NAMESPACE) as metric:
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=str(dim))
