"""Logger, Tracer and Metrics, created once for every Lifeboat function."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "lifeboat"
NAMESPACE = "Lifeboat"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
