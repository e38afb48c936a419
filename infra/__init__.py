"""Deploying Lifeboat to AWS: merge template rendered from the plans, IAM, packaging (never in the zip)."""
